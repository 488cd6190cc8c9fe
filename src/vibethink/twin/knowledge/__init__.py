"""The twin's knowledge base: sources, chunks, full-text and vector retrieval."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved chunk, with what a citation needs."""

    chunk_id: uuid.UUID
    source_id: uuid.UUID
    title: str
    url: str | None
    text: str
    score: float
