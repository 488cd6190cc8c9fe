"""The interface every model provider implements: a request in, text deltas out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vibethink.twin.context import ConversationContext
from vibethink.twin.knowledge import Passage
from vibethink.twin.profile import PersonalityProfile

_CITATION_MARK = re.compile(r"\[(\d{1,3})\]")


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Citation:
    """`[number]` in the reply points at this passage's source."""

    number: int
    title: str
    url: str | None
    source_id: str
    chunk_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "url": self.url,
            "sourceId": self.source_id,
            "chunkId": self.chunk_id,
        }


def citation_for(number: int, passage: Passage) -> Citation:
    return Citation(number, passage.title, passage.url, str(passage.source_id), str(passage.chunk_id))


def cited(text: str, passages: Sequence[Passage]) -> list[Citation]:
    """The passages a model's reply cites as `[n]`, numbered as the prompt numbered them (1-based)."""
    numbers = sorted({int(m) for m in _CITATION_MARK.findall(text) if 1 <= int(m) <= len(passages)})
    return [citation_for(n, passages[n - 1]) for n in numbers]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    profile: PersonalityProfile
    context: ConversationContext
    fan_message: str
    passages: tuple[Passage, ...]
    # The assembled instructions for providers that take a system prompt (see twin/prompt.py).
    system_prompt: str
    is_first_turn: bool = False
    max_output_tokens: int = 600


@dataclass(slots=True)
class Generation:
    """Filled in by the provider while it streams; read after the stream ends."""

    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str | None = None
    citations: list[Citation] = field(default_factory=list)


class ProviderUnavailable(Exception):
    """The model could not be reached or failed; the turn becomes an in-character apology."""


class ModelProvider(Protocol):
    name: str

    def stream(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[str]:
        """Yields text deltas; raises ProviderUnavailable on timeouts, connection and server errors."""
        ...

    async def aclose(self) -> None: ...
