"""The turn's two database calls: one round trip each, and still inside the fan's tenant and key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from tests.chat.conftest import ChatTwin, FanClient, new_fan

from vibethink.chat import store
from vibethink.core.database import Database, RlsContext

TODAY = datetime.now(UTC).date()


def _write(twin: ChatTwin, fan: FanClient, conversation_id: uuid.UUID, **changes: object) -> store.TurnWrite:
    now = datetime.now(UTC).isoformat()
    values: dict[str, object] = {
        "tenant_id": twin.tenant.id,
        "user_id": None,
        "conversation_id": conversation_id,
        "fan_key": fan.fan_key,
        "added": 2,
        "warn_at": 900,
        "max_messages": 1000,
        "messages": [
            {
                "id": str(uuid.uuid4()),
                "created_at": now,
                "role": "FAN",
                "content": "hi",
                "status": "COMPLETE",
                "details": {},
            },
            {
                "id": str(uuid.uuid4()),
                "created_at": now,
                "role": "TWIN",
                "content": "hello",
                "status": "COMPLETE",
                "details": {},
            },
        ],
        "event": {
            "id": str(uuid.uuid4()),
            "deployment_id": str(twin.portal),
            "campaign_id": None,
            "fan_tier": "FREE",
            "outcome": "answered",
            "provider": "grounded",
            "latency_ms": 1,
            "input_tokens": 1,
            "output_tokens": 1,
            "guardrails": [],
        },
        "flags": [],
        "facts": [],
        "context": None,
        "day": TODAY,
    }
    values.update(changes)
    return store.TurnWrite(**values)  # type: ignore[arg-type]


async def _count(db: Database, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> tuple[int, int]:
    async with db.transaction(RlsContext(tenant_id=tenant_id)) as session:
        stored = await session.scalar(
            text("SELECT message_count FROM conversations WHERE tenant_id = :t AND id = :c"),
            {"t": tenant_id, "c": conversation_id},
        )
        rows = await session.scalar(
            text("SELECT count(*) FROM messages WHERE tenant_id = :t AND conversation_id = :c"),
            {"t": tenant_id, "c": conversation_id},
        )
    return int(stored or 0), int(rows or 0)


@pytest.fixture
async def pool(db: Database):  # type: ignore[no-untyped-def]
    return await db.driver_pool()


@pytest.mark.parametrize(
    "values",
    [
        (),
        ("goal",),
        ("o'neil", 'say "hi"', "back\\slash", "a,b", "two words", "{brace}", "", "NULL", "fútbol"),
    ],
    ids=["empty", "one", "awkward"],
)
async def test_the_common_words_reach_the_database_as_they_are(pool: object, values: tuple[str, ...]) -> None:
    # Sent as one text value and parsed by PostgreSQL as an array: nothing may be split or unescaped.
    found = await pool.fetchval("SELECT $1::text::text[]", store.common_words_literal(values))  # type: ignore[attr-defined]
    assert list(found) == list(values)


class TestRead:
    async def test_it_reads_the_fans_own_conversation_with_passages(
        self, pool: object, chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        state = await store.read_turn(
            pool,  # type: ignore[arg-type]
            tenant_id=chat_twin.tenant.id,
            user_id=None,
            conversation_id=conversation_id,
            fan_key=fan.fan_key,
            history=10,
            retrieval=store.Retrieval(query="World Cup Qatar", config="english", depth=5, common=()),
            day=TODAY,
        )
        assert state is not None
        assert (state.deployment_id, state.celebrity_id, state.message_count) == (
            chat_twin.portal,
            chat_twin.celebrity_id,
            0,
        )
        assert state.lexical
        assert "Qatar" in state.lexical[0].text

    async def test_the_history_is_read_only_when_asked_for(
        self, pool: object, chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        for turn in range(2):
            # As a turn writes them: the twin's reply just after the fan's message.
            messages = [
                {
                    **message,
                    "id": str(uuid.uuid4()),
                    "created_at": (datetime.now(UTC) + timedelta(milliseconds=n)).isoformat(),
                    "content": f"{message['role']} {turn}",
                }
                for n, message in enumerate(_write(chat_twin, fan, conversation_id).messages)
            ]
            await store.write_turn(pool, _write(chat_twin, fan, conversation_id, messages=messages))  # type: ignore[arg-type]

        async def read(history: int) -> store.TurnState | None:
            return await store.read_turn(
                pool,  # type: ignore[arg-type]
                tenant_id=chat_twin.tenant.id,
                user_id=None,
                conversation_id=conversation_id,
                fan_key=fan.fan_key,
                history=history,
                retrieval=None,
                day=TODAY,
            )

        none, some = await read(0), await read(3)
        assert none is not None
        assert some is not None
        assert none.history == []
        # The last three complete messages, oldest first; everything else read the same either way.
        assert [content for _, content in some.history] == ["TWIN 0", "FAN 1", "TWIN 1"]
        assert (none.message_count, none.used_today, none.memories) == (4, 2, some.memories)
        assert (none.blocked, none.allowance) == (some.blocked, some.allowance)

    @pytest.mark.parametrize("who", ["another fan key", "another tenant"])
    async def test_nothing_comes_back_for_anyone_else(
        self,
        who: str,
        pool: object,
        client: httpx.AsyncClient,
        chat_twin: ChatTwin,
        other_chat_twin: ChatTwin,
        fan: FanClient,
    ) -> None:
        conversation_id = await fan.start()
        outsider = await new_fan(client, chat_twin.portal)
        tenant = other_chat_twin.tenant.id if who == "another tenant" else chat_twin.tenant.id
        key = fan.fan_key if who == "another tenant" else outsider.fan_key
        state = await store.read_turn(
            pool,  # type: ignore[arg-type]
            tenant_id=tenant,
            user_id=None,
            conversation_id=conversation_id,
            fan_key=key,
            history=10,
            retrieval=store.Retrieval(query="World Cup", config="english", depth=5, common=()),
            day=TODAY,
        )
        assert state is None


class TestWrite:
    async def test_a_turn_is_written_whole(
        self, db: Database, pool: object, chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        written = await store.write_turn(pool, _write(chat_twin, fan, conversation_id))  # type: ignore[arg-type]
        assert written == (2, False)
        assert await _count(db, chat_twin.tenant.id, conversation_id) == (2, 2)

    async def test_another_tenants_context_writes_nothing(
        self, db: Database, pool: object, chat_twin: ChatTwin, other_chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        # The tenant policy hides the conversation from the other tenant's context: no row, no write.
        wrong = _write(chat_twin, fan, conversation_id, tenant_id=other_chat_twin.tenant.id)
        assert await store.write_turn(pool, wrong) is None  # type: ignore[arg-type]
        assert await _count(db, chat_twin.tenant.id, conversation_id) == (0, 0)

    async def test_a_failing_statement_leaves_nothing_half_written(
        self, db: Database, pool: object, chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        broken = _write(chat_twin, fan, conversation_id, facts=[{"kind": None, "value": "x"}])
        with pytest.raises(Exception, match="null value"):
            await store.write_turn(pool, broken)  # type: ignore[arg-type]
        assert await _count(db, chat_twin.tenant.id, conversation_id) == (0, 0)

    async def test_the_limit_holds_and_the_warning_fires_once(
        self, db: Database, pool: object, chat_twin: ChatTwin, fan: FanClient
    ) -> None:
        conversation_id = await fan.start()
        results = [
            await store.write_turn(pool, _write(chat_twin, fan, conversation_id, warn_at=4, max_messages=6))  # type: ignore[arg-type]
            for _ in range(4)
        ]
        assert results == [(2, False), (4, True), (6, False), None]
        async with db.transaction(RlsContext(tenant_id=chat_twin.tenant.id)) as session:
            events = await session.scalar(
                text(
                    "SELECT count(*) FROM platform_events WHERE tenant_id = :t"
                    " AND event_type = 'CONVERSATION_NEAR_LIMIT' AND subject_id = :c"
                ),
                {"t": chat_twin.tenant.id, "c": str(conversation_id)},
            )
            flags = await session.scalar(
                text("SELECT count(*) FROM moderation_flags WHERE tenant_id = :t AND conversation_id = :c"),
                {"t": chat_twin.tenant.id, "c": conversation_id},
            )
        assert (events, flags) == (1, 1)
