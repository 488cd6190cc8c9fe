"""Twin fixtures: local fake model servers (OpenAI and Anthropic wire formats) and request builders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.twin.fakes import FakeModelServer
from vibethink.deployments.models import DeploymentType
from vibethink.twin.context import BehaviourOverrides, ConversationContext, HistoryTurn
from vibethink.twin.knowledge import Passage
from vibethink.twin.profile import PersonalityProfile
from vibethink.twin.providers.base import GenerationRequest


@pytest.fixture(scope="session")
def fake_model_server() -> Iterator[FakeModelServer]:
    server = FakeModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_model(fake_model_server: FakeModelServer) -> Iterator[FakeModelServer]:
    """The shared fake, answering normally with nothing recorded; set `mode` etc. to change it."""
    fake_model_server.reset()
    yield fake_model_server
    fake_model_server.reset()


def make_profile(**changes: Any) -> PersonalityProfile:
    values: dict[str, Any] = {
        "name": "Andrés Cantor",
        "language": "es",
        "tone": "apasionado, cálido",
        "expertise": ("fútbol", "Mundiales"),
        "catchphrases": ("¡Gooooool!",),
        "greeting": "¡Hola, amigo futbolero!",
        "banned_topics": ("política",),
        "max_response_length": 500,
    }
    values.update(changes)
    return PersonalityProfile(**values)


def make_context(**changes: Any) -> ConversationContext:
    values: dict[str, Any] = {
        "tenant_id": uuid.UUID(int=1),
        "celebrity_id": uuid.UUID(int=2),
        "deployment_id": uuid.UUID(int=3),
        "deployment_type": DeploymentType.VIBETHINK_PORTAL,
        "fan_key": "anon:test",
        "session_id": "session-test",
    }
    values.update(changes)
    return ConversationContext(**values)


def make_passage(text: str, *, title: str = "Historia", url: str | None = None, n: int = 1) -> Passage:
    return Passage(
        chunk_id=uuid.UUID(int=100 + n),
        source_id=uuid.UUID(int=200 + n),
        title=title,
        url=url,
        text=text,
        score=1.0 / n,
    )


def make_request(
    fan_message: str = "¿Quién ganó el Mundial de 1986?",
    *,
    passages: tuple[Passage, ...] = (),
    profile: PersonalityProfile | None = None,
    context: ConversationContext | None = None,
    history: tuple[HistoryTurn, ...] = (),
    overrides: BehaviourOverrides | None = None,
    is_first_turn: bool = False,
    system_prompt: str = "Eres Andrés Cantor.",
) -> GenerationRequest:
    context = context or make_context()
    if history or overrides:
        context = make_context(history=history, overrides=overrides or BehaviourOverrides())
    return GenerationRequest(
        profile=profile or make_profile(),
        context=context,
        fan_message=fan_message,
        passages=passages,
        system_prompt=system_prompt,
        is_first_turn=is_first_turn,
    )
