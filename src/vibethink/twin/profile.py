"""The twin's personality, read from `twin_config` and adjusted by a deployment's overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from vibethink.twin.context import BehaviourOverrides

DEFAULT_MAX_RESPONSE_LENGTH = 1200


@dataclass(frozen=True, slots=True)
class EmotionalRange:
    min: int = 3
    max: int = 8


@dataclass(frozen=True, slots=True)
class PersonalityProfile:
    name: str
    language: str  # BCP 47 primary tag, e.g. "es", "en"
    tone: str
    expertise: tuple[str, ...] = ()
    emotional_range: EmotionalRange = EmotionalRange()
    catchphrases: tuple[str, ...] = ()
    greeting: str | None = None
    always_does: tuple[str, ...] = ()
    never_does: tuple[str, ...] = ()
    banned_topics: tuple[str, ...] = ()
    content_rating: str = "PG"
    max_response_length: int = DEFAULT_MAX_RESPONSE_LENGTH
    voice_clone_id: str | None = None
    visual_avatar_id: str | None = None
    extra_instructions: str = ""

    @classmethod
    def from_twin_config(cls, name: str, config: Mapping[str, Any]) -> PersonalityProfile:
        personality = config.get("personalityProfile") or {}
        guardrails = config.get("guardrails") or {}
        emotional = config.get("emotionalRange") or personality.get("emotionalRange") or {}
        return cls(
            name=name,
            language=str(personality.get("language") or "en").split("-")[0].lower(),
            tone=str(personality.get("tone") or ""),
            expertise=tuple(str(x) for x in personality.get("expertise") or ()),
            emotional_range=EmotionalRange(int(emotional.get("min", 3)), int(emotional.get("max", 8))),
            catchphrases=tuple(str(x) for x in personality.get("catchphrases") or ()),
            greeting=personality.get("greeting"),
            always_does=tuple(str(x) for x in personality.get("alwaysDoes") or ()),
            never_does=tuple(str(x) for x in personality.get("neverDoes") or ()),
            banned_topics=tuple(str(x) for x in guardrails.get("bannedTopics") or ()),
            content_rating=str(guardrails.get("contentRating") or "PG"),
            max_response_length=int(guardrails.get("maxResponseLength") or DEFAULT_MAX_RESPONSE_LENGTH),
            voice_clone_id=config.get("voiceCloneId"),
            visual_avatar_id=config.get("visualAvatarId"),
        )

    def with_overrides(self, overrides: BehaviourOverrides) -> PersonalityProfile:
        return replace(
            self,
            greeting=overrides.greeting or self.greeting,
            tone=overrides.tone or self.tone,
            extra_instructions="\n".join(
                x for x in (self.extra_instructions, overrides.extra_instructions) if x
            ),
        )
