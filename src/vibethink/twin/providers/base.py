"""The interface every model provider implements: a request in, text deltas out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from vibethink.twin.context import ConversationContext
from vibethink.twin.knowledge import Passage
from vibethink.twin.profile import PersonalityProfile


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


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


class ProviderUnavailable(Exception):
    """The model could not be reached or failed; the turn becomes an in-character apology."""


class ModelProvider(Protocol):
    name: str

    def stream(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[str]:
        """Yields text deltas; raises ProviderUnavailable on timeouts, connection and server errors."""
        ...

    async def aclose(self) -> None: ...
