"""A chat turn's database work: one call to read, one to write, straight on the driver.

`chat_turn_read` and `chat_turn_write` (migrations 0010, 0012) are SECURITY INVOKER functions that
set the fan's RLS context as their first step and run in the implicit transaction of the single
call, so the app role's tenant policies still filter every row while a turn costs two round trips
in all. The read also brings the fan's tier and today's message count; the write counts the message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Final

import asyncpg

from vibethink.billing.quotas import UNLIMITED, Allowance, allowance_from
from vibethink.core.database import array_literal
from vibethink.twin.knowledge import Passage
from vibethink.twin.knowledge.embeddings import vector_literal

READ_SQL: Final = (
    "SELECT * FROM chat_turn_read($1, $2, $3, $4, $5, $6::text::regconfig, $7, $8, $9::text::text[],"
    " $10::text::vector, $11, $12)"
)
WRITE_SQL: Final = "SELECT * FROM chat_turn_write($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
FAN_CONVERSATION_SQL: Final = "SELECT tenant_id, deployment_id FROM chat_fan_conversation($1, $2)"
COMMON_LEXEMES_SQL: Final = "SELECT knowledge_common_lexemes($1::real)"


@dataclass(frozen=True, slots=True)
class TurnState:
    """What a turn reads about its conversation, fan and twin before the model is called."""

    deployment_id: uuid.UUID | None
    celebrity_id: uuid.UUID
    message_count: int
    session_id: str | None
    context: dict[str, Any]
    blocked: bool
    history: list[tuple[str, str]]  # (role, content), oldest first
    memories: list[list[str]]
    lexical: list[Passage]
    semantic: list[Passage]
    allowance: Allowance  # the fan's tier and what it unlocks
    used_today: int  # the fan's messages to this twin today (UTC)


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What to search for in the read: a query in a text-search configuration, optionally a vector."""

    query: str
    config: str
    depth: int
    common: Sequence[str]
    embedding: Sequence[float] | None = None
    exact_below: int = 0


def _passages(rows: Sequence[Sequence[Any]]) -> list[Passage]:
    return [
        Passage(
            chunk_id=uuid.UUID(chunk_id),
            source_id=uuid.UUID(source_id),
            title=title,
            url=url,
            text=content,
            score=float(score),
        )
        for chunk_id, source_id, title, url, content, score in rows
    ]


def _user(user_id: uuid.UUID | None) -> str:
    return "" if user_id is None else str(user_id)


@lru_cache(maxsize=8)
def common_words_literal(words: tuple[str, ...]) -> str:
    """The common words as one `text[]` literal, made once per list (it stays the same for minutes):
    a list would make the driver check each of its few hundred elements on every turn."""
    return array_literal(words)


async def read_turn(
    pool: asyncpg.Pool,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    conversation_id: uuid.UUID,
    fan_key: str,
    history: int,
    retrieval: Retrieval | None,
    day: date,
) -> TurnState | None:
    """The turn's state, or None when the conversation is not this fan's (or does not exist)."""
    embedding = None
    if retrieval is not None and retrieval.embedding is not None:
        embedding = vector_literal(retrieval.embedding)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            READ_SQL,
            tenant_id,
            _user(user_id),
            conversation_id,
            fan_key,
            history,
            retrieval.config if retrieval else "simple",
            retrieval.query if retrieval else None,
            retrieval.depth if retrieval else 0,
            common_words_literal(tuple(retrieval.common)) if retrieval else "{}",
            embedding,
            retrieval.exact_below if retrieval else 0,
            day,
        )
    if row is None:
        return None
    allowance = UNLIMITED
    if row["tier_code"] is not None:
        allowance = allowance_from(
            row["tier_code"], row["tier_name"], dict(row["tier_entitlements"] or {}), row["subscription_id"]
        )
    return TurnState(
        deployment_id=row["deployment_id"],
        celebrity_id=row["celebrity_id"],
        message_count=row["message_count"],
        session_id=row["session_id"],
        context=dict(row["context"] or {}),
        blocked=row["blocked"],
        # Newest first from the read (the conversation index's order): oldest first here.
        history=list(zip(reversed(row["history_roles"]), reversed(row["history"]), strict=True)),
        memories=row["memories"],
        lexical=_passages(row["lexical"]),
        semantic=_passages(row["semantic"]),
        allowance=allowance,
        used_today=row["used_today"],
    )


@dataclass(frozen=True, slots=True)
class TurnWrite:
    """Everything one turn stores, in the shapes `chat_turn_write` takes."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    conversation_id: uuid.UUID
    fan_key: str
    added: int
    warn_at: int
    max_messages: int
    messages: list[dict[str, Any]]
    event: dict[str, Any]
    flags: list[dict[str, Any]]
    facts: list[dict[str, str]]
    context: dict[str, Any] | None  # None: unchanged
    day: date  # the day (UTC) the fan's message counts against


async def write_turn(pool: asyncpg.Pool, write: TurnWrite) -> tuple[int, bool] | None:
    """(message count, crossed the warning threshold now), or None when the limit left no room."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            WRITE_SQL,
            write.tenant_id,
            _user(write.user_id),
            write.conversation_id,
            write.fan_key,
            write.added,
            write.warn_at,
            write.max_messages,
            write.messages,
            write.event,
            write.flags,
            write.facts,
            write.context,
            write.day,
        )
    if row is None:
        return None
    return row["message_count"], bool(row["crossed"])


async def fan_conversation(
    pool: asyncpg.Pool, conversation_id: uuid.UUID, fan_key: str
) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """(tenant, deployment) of a signed-in fan's conversation found by id and fan key alone."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(FAN_CONVERSATION_SQL, conversation_id, fan_key)
    if row is None:
        return None
    return row["tenant_id"], row["deployment_id"]


async def common_lexemes(pool: asyncpg.Pool, frequency: float) -> list[str]:
    async with pool.acquire() as conn:
        found = await conn.fetchval(COMMON_LEXEMES_SQL, frequency)
    return list(found or ())
