"""Clean text out of what a talent team uploads: text, Markdown, PDF, HTML, Q&A pairs and lorebooks.

Everything here is pure (no database): a source that cannot be read is refused before anything is
stored. Q&A pairs and lorebook entries become records joined by `RECORD_SEPARATOR`, so the stored
text can be re-chunked later one record per chunk without the original upload.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from typing import Any, Final

from vibethink.core.errors import DocumentTooLarge, EmptyDocument, InvalidInput, UnreadableDocument
from vibethink.twin.models import SourceKind

MAX_UPLOAD_BYTES: Final = 10 * 1024 * 1024
MAX_TEXT_CHARS: Final = 2_000_000
MAX_RECORDS: Final = 10_000
MAX_PDF_PAGES: Final = 2_000
RECORD_SEPARATOR: Final = "\x1e"
STRUCTURED_KINDS: Final = frozenset({SourceKind.QA, SourceKind.LOREBOOK})

Content = str | bytes | Sequence[Mapping[str, Any]] | Mapping[str, Any]

# Control characters other than tab and newline, and lone surrogates: PostgreSQL cannot store NUL
# and the rest only disturb chunking and search.
_UNWANTED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    """NFC, Unix newlines, no control characters, single spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", _UNWANTED.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    # Legacy uploads: Latin-1 never fails, and is what such files usually are.
    return data.decode("latin-1")


def _as_text(content: Content) -> str:
    if isinstance(content, bytes):
        if len(content) > MAX_UPLOAD_BYTES:
            raise DocumentTooLarge(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        return _decode(content)
    if isinstance(content, str):
        return content
    raise InvalidInput("This kind of source takes text, not a list.", field="content")


def _checked(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise DocumentTooLarge(f"The text is longer than {MAX_TEXT_CHARS:,} characters.")
    text = normalize(text)
    if not text:
        raise EmptyDocument()
    return text


def extract_plain(content: Content) -> str:
    return _checked(_as_text(content))


# --- Markdown -------------------------------------------------------------------------------------


def extract_markdown(content: Content) -> str:
    """The text of a Markdown document: headings stay as lines, markup, links and images go."""
    from markdown_it import MarkdownIt

    source = _as_text(content)
    if len(source) > MAX_TEXT_CHARS:
        raise DocumentTooLarge(f"The text is longer than {MAX_TEXT_CHARS:,} characters.")
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    blocks: list[str] = []
    row: list[str] | None = None
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            blocks.append(" | ".join(cell for cell in row if cell))
            row = None
        elif token.type == "inline":
            # Link targets and inline HTML go; link text, code spans and image alt text stay.
            text = "".join(
                "\n" if child.type in ("softbreak", "hardbreak") else child.content
                for child in token.children or ()
                if child.type in ("text", "code_inline", "softbreak", "hardbreak", "image")
            )
            if row is not None:
                row.append(text.strip())
            else:
                blocks.append(text)
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content.rstrip("\n"))
        elif token.type == "html_block":
            blocks.append(_html_text(token.content))
    return _checked("\n\n".join(b for b in blocks if b.strip()))


# --- HTML -----------------------------------------------------------------------------------------

_SKIPPED_TAGS: Final = frozenset(
    {"script", "style", "nav", "noscript", "template", "svg", "iframe", "head", "form", "button", "select"}
)
_BLOCK_TAGS: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul", "title",
    }
)  # fmt: skip
_VOID_TAGS: Final = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS and tag not in _VOID_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS and tag not in _VOID_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # Whitespace inside HTML text is layout, not content; blocks bring their own breaks.
            self.parts.append(re.sub(r"\s+", " ", data))


def _html_text(markup: str) -> str:
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return "".join(collector.parts)


def extract_html(content: Content) -> str:
    """The visible text of a page: scripts, styles, navigation and forms dropped, blocks kept apart."""
    markup = _as_text(content)
    if len(markup) > MAX_UPLOAD_BYTES:
        raise DocumentTooLarge(f"The page is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    return _checked(_html_text(markup))


# --- PDF ------------------------------------------------------------------------------------------


def extract_pdf(content: Content) -> str:
    if not isinstance(content, bytes):
        raise InvalidInput("A PDF source must be uploaded as a file.", field="file")
    if len(content) > MAX_UPLOAD_BYTES:
        raise DocumentTooLarge(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    if not content.lstrip()[:5].startswith(b"%PDF-"):
        raise UnreadableDocument("The file is not a PDF document.")
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("The PDF is encrypted with a password.")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise DocumentTooLarge(f"The PDF has more than {MAX_PDF_PAGES:,} pages.")
        pages: list[str] = []
        total = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            total += len(text)
            if total > MAX_TEXT_CHARS:
                raise DocumentTooLarge(f"The text is longer than {MAX_TEXT_CHARS:,} characters.")
            pages.append(text)
    except (UnreadableDocument, DocumentTooLarge):
        raise
    except Exception as exc:
        # pypdf raises many kinds of errors on damaged files; each one means the same to the client.
        raise UnreadableDocument("The PDF could not be read; it may be damaged.") from exc
    return _checked("\n\n".join(pages))


# --- Q&A pairs and lorebooks ----------------------------------------------------------------------


def _records_of(content: Content, *, field: str) -> list[Any]:
    value: Any = content
    if isinstance(content, str | bytes):
        text = _as_text(content)
        if len(text) > MAX_TEXT_CHARS:
            raise DocumentTooLarge(f"The text is longer than {MAX_TEXT_CHARS:,} characters.")
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise UnreadableDocument("The file is not valid JSON.") from exc
    if isinstance(value, Mapping):
        value = _unwrap(value, field)
    if not isinstance(value, list):
        raise InvalidInput(f"Expected a list of {field}.", field="content")
    if len(value) > MAX_RECORDS:
        raise DocumentTooLarge(f"At most {MAX_RECORDS:,} {field} per source.")
    return value


def _unwrap(value: Mapping[str, Any], field: str) -> Any:
    """Accepts a whole Character Card V2 (`data.character_book`), a character book, or `{pairs: [...]}`."""
    data = value.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("character_book"), Mapping):
        value = data["character_book"]
    elif isinstance(value.get("character_book"), Mapping):
        value = value["character_book"]
    for key in ("entries", "pairs", "qa", "items"):
        if key in value:
            return value[key]
    raise InvalidInput(f"Expected a list of {field}.", field="content")


def _text_field(record: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return normalize(value)
    return ""


def extract_qa(content: Content) -> str:
    """One record per question and answer: `Q: …` then `A: …`."""
    records: list[str] = []
    for index, pair in enumerate(_records_of(content, field="question and answer pairs")):
        if not isinstance(pair, Mapping):
            raise InvalidInput(
                "Each pair must be an object with a question and an answer.", field=f"content.{index}"
            )
        question = _text_field(pair, "question", "q")
        answer = _text_field(pair, "answer", "a")
        if not question or not answer:
            raise InvalidInput("Each pair needs a question and an answer.", field=f"content.{index}")
        records.append(f"Q: {question}\nA: {answer}")
    return _joined(records)


def extract_lorebook(content: Content) -> str:
    """One record per enabled character-book entry: its keys on the first line, then its content."""
    records: list[str] = []
    for index, entry in enumerate(_records_of(content, field="lorebook entries")):
        if not isinstance(entry, Mapping):
            raise InvalidInput("Each lorebook entry must be an object.", field=f"content.{index}")
        if entry.get("enabled") is False:
            continue
        body = _text_field(entry, "content")
        if not body:
            continue
        keys = [
            normalize(k)
            for k in [*(entry.get("keys") or ()), *(entry.get("secondary_keys") or ())]
            if isinstance(k, str) and k.strip()
        ]
        name = _text_field(entry, "name", "comment")
        heading = ", ".join(dict.fromkeys([*([name] if name else []), *keys]))
        records.append(f"{heading}\n{body}" if heading else body)
    return _joined(records)


def _joined(records: list[str]) -> str:
    records = [r.replace(RECORD_SEPARATOR, " ") for r in records if r.strip()]
    if not records:
        raise EmptyDocument()
    text = f"\n{RECORD_SEPARATOR}\n".join(records)
    if len(text) > MAX_TEXT_CHARS:
        raise DocumentTooLarge(f"The text is longer than {MAX_TEXT_CHARS:,} characters.")
    return text


def records(text: str) -> list[str]:
    """The records of a Q&A or lorebook source's stored text."""
    return [r.strip() for r in text.split(RECORD_SEPARATOR) if r.strip()]


_EXTRACTORS = {
    SourceKind.TEXT: extract_plain,
    SourceKind.MARKDOWN: extract_markdown,
    SourceKind.HTML: extract_html,
    SourceKind.PDF: extract_pdf,
    SourceKind.QA: extract_qa,
    SourceKind.LOREBOOK: extract_lorebook,
}


def extract(kind: SourceKind, content: Content) -> str:
    """The clean text of `content` read as `kind`; refuses unreadable, empty or oversized input (422)."""
    if not isinstance(content, str | bytes) and kind not in STRUCTURED_KINDS:
        raise InvalidInput(f"A {kind.value} source takes text, not a list.", field="content")
    return _EXTRACTORS[kind](content)


_EXTENSIONS: Final = {
    ".txt": SourceKind.TEXT,
    ".text": SourceKind.TEXT,
    ".md": SourceKind.MARKDOWN,
    ".markdown": SourceKind.MARKDOWN,
    ".pdf": SourceKind.PDF,
    ".html": SourceKind.HTML,
    ".htm": SourceKind.HTML,
}
_MEDIA_TYPES: Final = {
    "text/plain": SourceKind.TEXT,
    "text/markdown": SourceKind.MARKDOWN,
    "application/pdf": SourceKind.PDF,
    "text/html": SourceKind.HTML,
}


def kind_of_file(file_name: str | None, media_type: str | None, data: bytes) -> SourceKind | None:
    """A best guess from the file's name, its declared type, then its first bytes; None if unsure."""
    name = (file_name or "").lower()
    for extension, kind in _EXTENSIONS.items():
        if name.endswith(extension):
            return kind
    declared = (media_type or "").split(";")[0].strip().lower()
    if declared in _MEDIA_TYPES:
        return _MEDIA_TYPES[declared]
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return SourceKind.PDF
    if head.startswith((b"<!doctype html", b"<html")):
        return SourceKind.HTML
    return None
