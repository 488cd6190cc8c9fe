"""Conversation growth: the message limit (409 past it), the warning at 90 %, history pages of at most 50."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text
from tests.chat.conftest import ChatTwin, FanClient, new_fan
from tests.factories import ADMIN

from vibethink.core.database import Database


async def events_of(db: Database, tenant_id: uuid.UUID, event_type: str) -> list[Any]:
    async with db.transaction(ADMIN) as s:
        return list(
            (
                await s.execute(
                    text("SELECT payload FROM platform_events WHERE tenant_id = :t AND event_type = :e"),
                    {"t": tenant_id, "e": event_type},
                )
            ).all()
        )


async def flags_of(db: Database, conversation_id: uuid.UUID, rule: str) -> list[Any]:
    async with db.transaction(ADMIN) as s:
        return list(
            (
                await s.execute(
                    text("SELECT reason FROM moderation_flags WHERE conversation_id = :c AND rule = :r"),
                    {"c": conversation_id, "r": rule},
                )
            ).all()
        )


async def fill(db: Database, chat_twin: ChatTwin, conversation_id: uuid.UUID, count: int) -> None:
    """Brings the conversation to `count` messages, written set-based as alternating fan/twin rows."""
    async with db.transaction(ADMIN) as s:
        existing = await s.scalar(
            text("SELECT message_count FROM conversations WHERE id = :c"), {"c": conversation_id}
        )
        await s.execute(
            text(
                "INSERT INTO messages (tenant_id, id, created_at, conversation_id, role, content, status)"
                " SELECT :t, gen_random_uuid(),"
                " now() - interval '1 day' + make_interval(secs => n::double precision),"
                " :c, CASE WHEN n % 2 = 1 THEN 'FAN' ELSE 'TWIN' END::message_role, 'message ' || n,"
                " 'COMPLETE'"
                " FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n"
            ),
            {"t": chat_twin.tenant.id, "c": conversation_id, "first": existing + 1, "last": count},
        )
        await s.execute(
            text("UPDATE conversations SET message_count = :n WHERE id = :c"),
            {"n": count, "c": conversation_id},
        )


class TestTheMessageLimit:
    async def test_the_last_turn_that_fits_is_accepted_and_the_next_is_refused(
        self, client_for: Callable[..., httpx.AsyncClient], db: Database, chat_twin: ChatTwin
    ) -> None:
        http = client_for(chat_max_messages=20)
        fan = await new_fan(http, chat_twin.portal)
        conversation_id = await fan.start()
        for _ in range(10):
            assert (await fan.say(conversation_id, "Who won the World Cup in 2022?")).status_code == 200
        refused = await fan.say(conversation_id, "One more?")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "conversation_full"
        page = await http.get(f"/api/v1/chat/conversations/{conversation_id}", headers=fan.headers)
        assert page.json()["message_count"] == 20

    async def test_the_warning_comes_once_at_ninety_percent_with_an_event_and_a_flag(
        self, client_for: Callable[..., httpx.AsyncClient], db: Database, chat_twin: ChatTwin
    ) -> None:
        http = client_for(chat_max_messages=20)
        fan = await new_fan(http, chat_twin.portal)
        conversation_id = await fan.start()
        for turn in range(1, 11):
            await fan.say(conversation_id, "Who won the World Cup in 2022?")
            warned = await events_of(db, chat_twin.tenant.id, "CONVERSATION_NEAR_LIMIT")
            # 18 of 20 messages (90 %) are reached by the ninth turn.
            assert len(warned) == (1 if turn >= 9 else 0)
        assert warned[0].payload["message_count"] == 18
        assert len(await flags_of(db, conversation_id, "limit.near_limit")) == 1

    async def test_concurrent_turns_never_take_a_conversation_past_its_limit(
        self, client_for: Callable[..., httpx.AsyncClient], db: Database, chat_twin: ChatTwin
    ) -> None:
        http = client_for(chat_max_messages=6)
        fan = await new_fan(http, chat_twin.portal)
        conversation_id = await fan.start()
        replies = await asyncio.gather(
            *(fan.say(conversation_id, f"Question {i} about Messi") for i in range(8))
        )
        codes = sorted(r.status_code for r in replies)
        assert codes == [200, 200, 200, 409, 409, 409, 409, 409]
        async with db.transaction(ADMIN) as s:
            stored = await s.scalar(
                text("SELECT count(*) FROM messages WHERE conversation_id = :c"), {"c": conversation_id}
            )
            counted = await s.scalar(
                text("SELECT message_count FROM conversations WHERE id = :c"), {"c": conversation_id}
            )
        assert stored == counted == 6


class TestTheRealLimitOfOneThousand:
    async def test_message_1000_is_accepted_1001_refused_and_900_warned(
        self, client: httpx.AsyncClient, db: Database, chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        await fill(db, chat_twin, conversation_id, 898)
        assert (await fan.say(conversation_id, "Who won the World Cup in 2022?")).status_code == 200
        warned = await events_of(db, chat_twin.tenant.id, "CONVERSATION_NEAR_LIMIT")
        assert [w.payload["message_count"] for w in warned] == [900]

        await fill(db, chat_twin, conversation_id, 998)
        accepted = await fan.say(conversation_id, "Who won the World Cup in 2022?")
        assert accepted.status_code == 200
        refused = await fan.say(conversation_id, "And now?")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "conversation_full"
        assert len(await events_of(db, chat_twin.tenant.id, "CONVERSATION_NEAR_LIMIT")) == 1

        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"cursor": cursor} if cursor else {}
            page = await client.get(
                f"/api/v1/chat/conversations/{conversation_id}/messages", params=params, headers=fan.headers
            )
            body = page.json()
            assert 0 < len(body["items"]) <= 50
            seen = [m["id"] for m in body["items"]] + seen
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 1000

    async def test_a_page_never_exceeds_50_even_when_more_are_asked(
        self, client: httpx.AsyncClient, db: Database, chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        await fill(db, chat_twin, conversation_id, 120)
        url = f"/api/v1/chat/conversations/{conversation_id}/messages"
        assert (await client.get(url, params={"limit": 51}, headers=fan.headers)).status_code == 422
        body = (await client.get(url, headers=fan.headers)).json()
        assert len(body["items"]) == 50
        assert body["items"][-1]["content"] == "message 120"
