"""Profiles, contexts and a streaming driver shared by the guardrail tests."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable

from vibethink.deployments.models import DeploymentType
from vibethink.twin.context import ConversationContext
from vibethink.twin.guardrails import OutputGuard
from vibethink.twin.profile import PersonalityProfile

# Rates measured by the corpus tests, printed in the terminal summary (see conftest.py).
MEASURED: dict[str, str] = {}


def twin(
    *,
    language: str = "es",
    rating: str = "PG",
    banned: Iterable[str] = (),
    max_length: int = 1200,
    expertise: Iterable[str] = ("fútbol", "narración deportiva"),
) -> PersonalityProfile:
    return PersonalityProfile(
        name="Andrés Cantor",
        language=language,
        tone="apasionado",
        expertise=tuple(expertise),
        banned_topics=tuple(banned),
        content_rating=rating,
        max_response_length=max_length,
    )


def portal() -> ConversationContext:
    return ConversationContext(
        tenant_id=uuid.uuid4(),
        celebrity_id=uuid.uuid4(),
        deployment_id=uuid.uuid4(),
        deployment_type=DeploymentType.VIBETHINK_PORTAL,
        fan_key="anon:fan",
        session_id="session",
    )


def campaign(brand: str, guidelines: Iterable[str], competitors: Iterable[str] = ()) -> ConversationContext:
    return ConversationContext(
        tenant_id=uuid.uuid4(),
        celebrity_id=uuid.uuid4(),
        deployment_id=uuid.uuid4(),
        deployment_type=DeploymentType.BRAND_CAMPAIGN,
        fan_key="anon:fan",
        session_id="session",
        brand_id=uuid.uuid4(),
        brand_name=brand,
        campaign_id=uuid.uuid4(),
        guidelines=tuple(guidelines),
        competitors=tuple(competitors),
    )


# The spec's two campaigns, guidelines word for word.
COCA_COLA_GUIDELINES = (
    "Mention Coca-Cola positively when relevant",
    "Avoid mentioning competitors (Pepsi, etc.)",
    "Focus on football and celebration themes",
)
NIKE_GUIDELINES = (
    "Mention Nike when discussing football gear",
    "Avoid mentioning Adidas, Puma",
    "Focus on athlete performance",
)


def stream(guard: OutputGuard, text: str, sizes: Iterable[int]) -> tuple[str, list[str]]:
    """Feed `text` in deltas of the given sizes; return everything emitted and each emitted chunk."""
    chunks: list[str] = []
    position = 0
    for size in sizes:
        if position >= len(text):
            break
        chunks.append(guard.feed(text[position : position + size]))
        position += size
    if position < len(text):
        chunks.append(guard.feed(text[position:]))
    chunks.append(guard.finish())
    return "".join(chunks), chunks


def random_sizes(seed: int, low: int = 1, high: int = 12) -> Iterable[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randint(low, high)
