"""Chat turns against local fake model servers (OpenAI, Anthropic wire formats): order, slowness, failure."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.chat.conftest import FanClient, make_chat_twin, new_fan
from tests.factories import ADMIN
from tests.twin.fakes import DEFAULT_REPLY, FakeModelServer

from vibethink.core.database import Database

PROVIDERS = {
    "openai": {"provider": "openai", "model": "fake-gpt"},
    "anthropic": {"provider": "anthropic", "model": "fake-claude"},
}


def _settings_for(fake: FakeModelServer, **extra: Any) -> dict[str, Any]:
    return {
        "openai_base_url": fake.openai_base_url,
        "openai_api_key": "sk-test",
        "anthropic_base_url": fake.anthropic_base_url,
        "anthropic_api_key": "sk-ant-test",
        **extra,
    }


async def _fan(
    db: Database,
    client_for: Callable[..., httpx.AsyncClient],
    fake: FakeModelServer,
    provider: str,
    **extra: Any,
) -> FanClient:
    twin = await make_chat_twin(db, language="es", provider=PROVIDERS[provider])
    return await new_fan(client_for(**_settings_for(fake, **extra)), twin.portal)


async def _messages(db: Database, conversation_id: uuid.UUID) -> list[Any]:
    async with db.transaction(ADMIN) as s:
        return list(
            (
                await s.execute(
                    text(
                        "SELECT role, status, content, details FROM messages WHERE conversation_id = :c"
                        " ORDER BY created_at, id"
                    ),
                    {"c": conversation_id},
                )
            ).all()
        )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
class TestAFakeModelServer:
    async def test_the_stream_arrives_in_order_and_is_stored_whole(
        self,
        db: Database,
        client_for: Callable[..., httpx.AsyncClient],
        fake_model: FakeModelServer,
        provider: str,
    ) -> None:
        fan = await _fan(db, client_for, fake_model, provider)
        conversation_id = await fan.start()
        events = await fan.stream(conversation_id, "¿Qué pasó en el partido?")
        names = [name for name, _ in events]
        assert names[-2:] == ["done", None]
        assert names.count("delta") >= 2
        assert "".join(data["text"] for name, data in events if name == "delta") == DEFAULT_REPLY
        stored = await _messages(db, conversation_id)
        assert [(m.role, m.status) for m in stored] == [("FAN", "COMPLETE"), ("TWIN", "COMPLETE")]
        assert stored[1].content == DEFAULT_REPLY
        assert events[-2][1]["usage"]["output_tokens"] > 0
        sent = fake_model.requests[-1].body
        assert "¿Qué pasó en el partido?" in str(sent["messages"])

    async def test_the_next_turn_sends_the_model_the_conversation_so_far(
        self,
        db: Database,
        client_for: Callable[..., httpx.AsyncClient],
        fake_model: FakeModelServer,
        provider: str,
    ) -> None:
        fan = await _fan(db, client_for, fake_model, provider)
        conversation_id = await fan.start()
        await fan.stream(conversation_id, "¿Quién ganó la final?")
        await fan.stream(conversation_id, "¿Y quién marcó?")
        sent = str(fake_model.requests[-1].body["messages"])
        # Oldest first: the first question, the twin's answer, then the new question.
        assert sent.index("¿Quién ganó la final?") < sent.index(DEFAULT_REPLY) < sent.index("¿Y quién marcó?")

    async def test_a_slow_model_times_out_into_an_apology_and_a_failed_message(
        self,
        db: Database,
        client_for: Callable[..., httpx.AsyncClient],
        fake_model: FakeModelServer,
        provider: str,
    ) -> None:
        fake_model.mode = "slow"
        fake_model.chunk_delay = 2.0
        fan = await _fan(db, client_for, fake_model, provider, provider_timeout_seconds=0.3)
        conversation_id = await fan.start()
        events = await fan.stream(conversation_id, "¿Qué pasó en el partido?")
        error = next(data for name, data in events if name == "error")
        assert error["code"] == "provider_unavailable"
        assert "Perdón" in error["message"]
        assert events[-1] == (None, "[DONE]")
        stored = await _messages(db, conversation_id)
        assert [(m.role, m.status) for m in stored] == [("FAN", "COMPLETE"), ("TWIN", "FAILED")]
        assert stored[0].content == "¿Qué pasó en el partido?"
        assert stored[1].details["error"] == "provider_unavailable"

    async def test_a_failing_model_gives_503_provider_unavailable_without_streaming(
        self,
        db: Database,
        client_for: Callable[..., httpx.AsyncClient],
        fake_model: FakeModelServer,
        provider: str,
    ) -> None:
        fake_model.mode = "error"
        fake_model.status = 500
        fan = await _fan(db, client_for, fake_model, provider)
        conversation_id = await fan.start()
        response = await fan.say(conversation_id, "¿Qué pasó en el partido?")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "provider_unavailable"
        assert error["details"]["message_id"]
        stored = await _messages(db, conversation_id)
        assert [(m.role, m.status) for m in stored] == [("FAN", "COMPLETE"), ("TWIN", "FAILED")]

    async def test_a_stream_cut_halfway_is_never_stored_as_complete(
        self,
        db: Database,
        client_for: Callable[..., httpx.AsyncClient],
        fake_model: FakeModelServer,
        provider: str,
    ) -> None:
        fake_model.mode = "drop"
        fake_model.drop_after = 3
        fan = await _fan(db, client_for, fake_model, provider)
        conversation_id = await fan.start()
        events = await fan.stream(conversation_id, "¿Qué pasó en el partido?")
        assert "done" not in [name for name, _ in events]
        stored = await _messages(db, conversation_id)
        assert stored[1].status == "FAILED"
        assert stored[1].content != DEFAULT_REPLY
