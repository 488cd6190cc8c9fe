"""Deterministic chunks of about 800 characters along paragraph and sentence lines, with a small overlap."""

from __future__ import annotations

import re
from typing import Final

from vibethink.twin.knowledge.ingest import STRUCTURED_KINDS, records
from vibethink.twin.models import SourceKind

TARGET_CHARS: Final = 800
OVERLAP_CHARS: Final = 120
# A Q&A pair or lorebook entry stays one chunk up to this size; longer ones are split, each part
# keeping the record's first line (the question or the entry's keys) so it still says what it is about.
MAX_RECORD_CHARS: Final = 2000
MAX_HEADING_CHARS: Final = 100

_PARAGRAPHS = re.compile(r"\n\s*\n")
# After sentence-ending punctuation (and any closing quote or bracket), before the next word.
_SENTENCE_END = re.compile(r"(?<=[.!?…;:。！？])[\"'”’)\]]*\s+(?=\S)")


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def _hard_split(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at the last space where there is one."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind(" ", limit // 2, limit + 1)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        pieces.append(text)
    return pieces


def _units(text: str) -> list[str]:
    units: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= TARGET_CHARS:
            units.append(paragraph)
            continue
        for sentence in _sentences(paragraph):
            units.extend(_hard_split(sentence, TARGET_CHARS))
    return units


def _is_heading(unit: str) -> bool:
    return len(unit) <= MAX_HEADING_CHARS and "\n" not in unit and unit[-1] not in ".!?…;:,"


def _overlap(units: list[str]) -> list[str]:
    """The end of a finished chunk that the next one repeats: its last sentence, or its last words."""
    last = units[-1]
    if len(last) <= OVERLAP_CHARS:
        return [last]
    tail = last[-OVERLAP_CHARS:]
    space = tail.find(" ")
    return [tail[space + 1 :]] if 0 <= space < len(tail) - 1 else []


def chunk_text(text: str) -> list[str]:
    """Chunks of about `TARGET_CHARS`; the same text always gives the same chunks."""
    chunks: list[str] = []
    current: list[str] = []
    carried = 0  # how many units at the start of `current` repeat the previous chunk
    for unit in _units(text):
        size = sum(len(u) + 1 for u in current) + len(unit)
        if current and size > TARGET_CHARS and len(current) > carried:
            # A heading belongs with what follows it, not at the end of the previous chunk.
            moved = [current.pop()] if len(current) > carried + 1 and _is_heading(current[-1]) else []
            chunks.append("\n".join(current))
            current = [*(_overlap(current) if not moved else []), *moved]
            carried = len(current) - len(moved)
            if sum(len(u) + 1 for u in current) + len(unit) > TARGET_CHARS + OVERLAP_CHARS:
                current, carried = list(moved), 0
        current.append(unit)
    if len(current) > carried:
        chunks.append("\n".join(current))
    return chunks


def chunk_record(record: str) -> list[str]:
    if len(record) <= MAX_RECORD_CHARS:
        return [record]
    first, _, rest = record.partition("\n")
    if not rest or len(first) > MAX_HEADING_CHARS * 3:
        return chunk_text(record)
    return [f"{first}\n{part}" for part in chunk_text(rest)]


def chunk_source(kind: SourceKind, text: str) -> list[str]:
    """A source's chunks: one per record for Q&A pairs and lorebook entries, packed text otherwise."""
    if kind in STRUCTURED_KINDS:
        return [chunk for record in records(text) for chunk in chunk_record(record)]
    return chunk_text(text)
