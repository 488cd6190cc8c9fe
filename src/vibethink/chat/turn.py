"""One chat turn: read, check, retrieve, stream through the output guard, then write once.

No database connection is held while the model streams: the turn reads in one short transaction
(conversation, block, history and memories in one statement, then retrieval), streams, and writes
everything in one statement of a second transaction (both messages, the counter with its limit,
the interaction event, flags and memories). The limit is enforced by that conditional UPDATE, so
concurrent turns can never take a conversation past it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat import memory, moderation
from vibethink.chat import service as chat_service
from vibethink.chat.models import MessageStatus
from vibethink.chat.tokens import Fan
from vibethink.chat.twins import DeployedTwin
from vibethink.core import outbox
from vibethink.core.database import Database
from vibethink.core.errors import ConversationFull, FanBlocked, NotFound
from vibethink.core.settings import Settings
from vibethink.twin import guardrails, prompt
from vibethink.twin.context import ConversationContext, HistoryTurn
from vibethink.twin.guardrails import Decision, OutputGuard, Stage
from vibethink.twin.knowledge import Passage
from vibethink.twin.knowledge import search as knowledge_search
from vibethink.twin.knowledge.embeddings import Embedder, embedder_from_settings
from vibethink.twin.profile import PersonalityProfile
from vibethink.twin.providers import (
    Citation,
    Generation,
    GenerationRequest,
    ModelProvider,
    ProviderUnavailable,
    Usage,
    provider_for,
)
from vibethink.twin.providers.base import cited

log = logging.getLogger(__name__)

TURN_MESSAGES: Final = 2  # the fan's message and the twin's reply
PASSAGES: Final = 5
NEAR_LIMIT_EVENT: Final = "CONVERSATION_NEAR_LIMIT"
APOLOGIES: Final = {
    "es": (
        "Perdón, se me cortó la comunicación y ahora no puedo responderte."
        " ¿Lo intentamos de nuevo en un momento?"
    ),
    "en": "Sorry, I lost my connection and can't answer right now. Shall we try again in a moment?",
}

READ_SQL = text(
    """
    SELECT c.deployment_id, c.message_count, c.session_id, c.context,
           EXISTS (SELECT 1 FROM blocked_fans b
                    WHERE b.tenant_id = c.tenant_id AND b.celebrity_id = c.celebrity_id
                      AND b.fan_key = c.fan_key) AS blocked,
           (SELECT coalesce(jsonb_agg(jsonb_build_array(h.role, h.content) ORDER BY h.created_at, h.id), '[]')
              FROM (SELECT m.role, m.content, m.created_at, m.id FROM messages m
                     WHERE m.tenant_id = c.tenant_id AND m.conversation_id = c.id AND m.status = 'COMPLETE'
                     ORDER BY m.created_at DESC, m.id DESC LIMIT :history) h) AS history,
           (SELECT coalesce(jsonb_agg(jsonb_build_array(f.kind, f.value) ORDER BY f.kind), '[]')
              FROM fan_memories f
             WHERE f.tenant_id = c.tenant_id AND f.celebrity_id = c.celebrity_id
               AND f.fan_key = c.fan_key) AS memories
      FROM conversations c
     WHERE c.tenant_id = :tenant AND c.id = :conversation AND c.fan_key = :fan_key
    """
)

WRITE_SQL = text(
    """
    WITH bump AS (
        UPDATE conversations
           SET message_count = message_count + :added, updated_at = now(),
               near_limit_at = CASE WHEN near_limit_at IS NULL AND message_count + :added >= :warn_at
                                    THEN now() ELSE near_limit_at END
         WHERE tenant_id = :tenant AND id = :conversation AND message_count + :added <= :max_messages
        RETURNING message_count, near_limit_at
    ), messages_in AS (
        INSERT INTO messages (tenant_id, id, created_at, updated_at, conversation_id, role, content, status,
                              details)
        SELECT CAST(:tenant AS uuid), m.id, m.created_at, m.created_at, CAST(:conversation AS uuid), m.role,
               m.content, m.status, m.details
          FROM bump, jsonb_to_recordset(CAST(:messages AS jsonb))
               AS m(id uuid, created_at timestamptz, role message_role, content text, status message_status,
                    details jsonb)
    ), event_in AS (
        INSERT INTO interaction_events (tenant_id, id, celebrity_id, deployment_id, campaign_id,
                                        conversation_id, fan_key, fan_tier, outcome, provider, latency_ms,
                                        input_tokens, output_tokens, guardrails)
        SELECT CAST(:tenant AS uuid), CAST(:event_id AS uuid), CAST(:celebrity AS uuid),
               CAST(:deployment AS uuid), CAST(:campaign AS uuid), CAST(:conversation AS uuid),
               CAST(:fan_key AS text), CAST(:tier AS text),
               CAST(:outcome AS text), CAST(:provider AS text), CAST(:latency_ms AS integer),
               CAST(:input_tokens AS integer), CAST(:output_tokens AS integer), CAST(:guardrails AS jsonb)
          FROM bump
    ), flags_in AS (
        INSERT INTO moderation_flags (tenant_id, id, celebrity_id, conversation_id, message_id, fan_key,
                                      stage, rule, reason, excerpt)
        SELECT CAST(:tenant AS uuid), gen_random_uuid(), CAST(:celebrity AS uuid),
               CAST(:conversation AS uuid),
               f.message_id, CAST(:fan_key AS text), f.stage, f.rule, f.reason, f.excerpt
          FROM bump, jsonb_to_recordset(CAST(:flags AS jsonb))
               AS f(message_id uuid, stage text, rule text, reason text, excerpt text)
    ), memories_in AS (
        INSERT INTO fan_memories (tenant_id, id, celebrity_id, fan_key, kind, value)
        SELECT CAST(:tenant AS uuid), gen_random_uuid(), CAST(:celebrity AS uuid), CAST(:fan_key AS text),
               f.kind, f.value
          FROM bump, jsonb_to_recordset(CAST(:facts AS jsonb)) AS f(kind text, value text)
        ON CONFLICT (tenant_id, celebrity_id, fan_key, kind)
        DO UPDATE SET value = excluded.value, updated_at = now()
    )
    SELECT message_count, near_limit_at = now() AS crossed FROM bump
    """
)


class TurnOutcome:
    ANSWERED = "answered"
    REWRITTEN = "rewritten"
    BLOCKED = "blocked"
    FAILED = "failed"


@dataclass(slots=True)
class PreparedTurn:
    """Everything the model call and the write need, read in the turn's first transaction."""

    tenant_id: uuid.UUID
    conversation_id: uuid.UUID
    fan: Fan
    twin: DeployedTwin
    profile: PersonalityProfile
    context: ConversationContext
    content: str
    received_at: datetime
    started: float
    message_count: int
    stored_context: dict[str, Any]
    input_decisions: list[Decision]
    blocked_by: Decision | None
    passages: tuple[Passage, ...] = ()
    facts: list[memory.Fact] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TurnResult:
    fan_message_id: uuid.UUID
    message_id: uuid.UUID
    text: str
    status: MessageStatus
    outcome: str
    citations: list[dict[str, Any]]
    guardrails: list[dict[str, Any]]
    usage: Usage
    model: str
    finish_reason: str
    disclosure: str | None
    error_code: str | None = None

    def done_event(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": str(self.message_id),
            "fan_message_id": str(self.fan_message_id),
            "citations": self.citations,
            "guardrails": self.guardrails,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
        }
        if self.disclosure:
            body["disclosure"] = self.disclosure
        return body


def apology(profile: PersonalityProfile) -> str:
    return APOLOGIES.get(profile.language, APOLOGIES["en"])


def warn_threshold(settings: Settings) -> int:
    return max(1, math.ceil(settings.chat_max_messages * settings.chat_warning_ratio))


_embedders: dict[int, Embedder | None] = {}


def _embedder(settings: Settings) -> Embedder | None:
    if settings.embedding_provider == "none":
        return None
    key = id(settings)
    if key not in _embedders:
        _embedders[key] = embedder_from_settings(settings)
    return _embedders[key]


def _history(rows: Sequence[Sequence[str]]) -> tuple[HistoryTurn, ...]:
    return tuple(HistoryTurn("fan" if role == "FAN" else "twin", content) for role, content in rows)


async def prepare(
    session: AsyncSession,
    settings: Settings,
    fan: Fan,
    conversation_id: uuid.UUID,
    *,
    content: str,
    history: tuple[HistoryTurn, ...] | None = None,
) -> PreparedTurn:
    """Reads and checks the turn in the caller's (short) transaction: blocked fan, limit, input
    guardrails, then retrieval when the message may be answered. `history` replaces the stored one."""
    started = time.perf_counter()
    received_at = datetime.now(UTC)
    tenant_id = await chat_service.locate_conversation(session, fan, conversation_id)
    row = (
        await session.execute(
            READ_SQL,
            {
                "tenant": tenant_id,
                "conversation": conversation_id,
                "fan_key": fan.fan_key,
                "history": 2 * settings.chat_history_turns,
            },
        )
    ).first()
    if row is None:
        raise NotFound("No such conversation.")
    if row.deployment_id is None:
        raise NotFound("This conversation's deployment no longer exists.")
    twin = chat_service.require_live(
        await chat_service.deployed_twin(session, row.deployment_id, tenant_id=tenant_id)
    )
    if row.blocked:
        raise FanBlocked()
    if row.message_count + TURN_MESSAGES > settings.chat_max_messages:
        raise ConversationFull()
    stored: dict[str, Any] = dict(row.context or {})
    context = twin.context(
        fan_key=fan.fan_key,
        session_id=row.session_id or str(conversation_id),
        fan_tier=await chat_service.fan_tier(session, twin, fan),
        history=_history(row.history) if history is None else history,
        memories=tuple(memory.describe(kind, value) for kind, value in row.memories),
    )
    profile = twin.profile
    decisions = guardrails.check_input(content, profile, context)
    blocked_by = guardrails.first_block(decisions)
    prepared = PreparedTurn(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        fan=fan,
        twin=twin,
        profile=profile,
        context=context,
        content=content,
        received_at=received_at,
        started=started,
        message_count=row.message_count,
        stored_context=stored,
        input_decisions=decisions,
        blocked_by=blocked_by,
    )
    if blocked_by is None:
        prepared.facts = memory.extract(content)
        prepared.passages = tuple(
            await knowledge_search.search(
                session,
                celebrity_id=twin.celebrity_id,
                query=content,
                language=profile.language,
                k=PASSAGES,
                embedder=_embedder(settings),
            )
        )
    return prepared


@dataclass(slots=True)
class _Streamed:
    text: str = ""
    status: MessageStatus = MessageStatus.COMPLETE
    decisions: list[Decision] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str = "stop"
    failed: bool = False
    partial: str = ""
    model_seconds: float = 0.0


class Turn:
    """A prepared turn's stream and its write: iterate `deltas()`, then `await finish(db)`."""

    def __init__(
        self, settings: Settings, prepared: PreparedTurn, *, provider: ModelProvider | None = None
    ) -> None:
        self.settings = settings
        self.prepared = prepared
        self.provider = provider or provider_for(settings, prepared.twin.twin_config)
        self.result: TurnResult | None = None
        self._streamed = _Streamed()
        self._finished = False

    @property
    def failed(self) -> bool:
        return self._streamed.failed

    def _system_prompt(self) -> str:
        # The grounded provider composes from the passages itself and never reads a system prompt.
        if self.provider.name == "grounded":
            return ""
        prepared = self.prepared
        return prompt.build_system_prompt(prepared.profile, prepared.context, prepared.passages)

    async def deltas(self) -> AsyncIterator[str]:
        """The reply as the fan may see it: the refusal for blocked input, else the guarded stream."""
        prepared, streamed = self.prepared, self._streamed
        if prepared.blocked_by is not None:
            streamed.text = guardrails.refusal(prepared.profile, prepared.input_decisions)
            streamed.finish_reason = "content_filter"
            yield streamed.text
            return
        guard = OutputGuard(prepared.profile, prepared.context)
        request = GenerationRequest(
            profile=prepared.profile,
            context=prepared.context,
            fan_message=prepared.content,
            passages=prepared.passages,
            system_prompt=self._system_prompt(),
            is_first_turn=prepared.message_count == 0,
        )
        generation = Generation()
        shown: list[str] = []
        began = time.perf_counter()
        stream = self.provider.stream(request, generation)
        try:
            async for delta in stream:
                safe = guard.feed(delta)
                if safe:
                    shown.append(safe)
                    yield safe
                if guard.stopped:
                    break
            tail = guard.finish()
            if tail:
                shown.append(tail)
                yield tail
        except ProviderUnavailable as exc:
            log.warning("model provider %s failed: %s", self.provider.name, exc)
            streamed.failed = True
        except Exception:
            # A provider bug must end the turn like an outage, never as a half answer stored as complete.
            log.exception("model provider %s raised unexpectedly", self.provider.name)
            streamed.failed = True
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
            streamed.model_seconds = time.perf_counter() - began
        streamed.decisions = list(guard.decisions)
        streamed.usage = generation.usage
        streamed.model = generation.model
        if streamed.failed:
            streamed.partial = "".join(shown)
            streamed.text = apology(prepared.profile)
            streamed.status = MessageStatus.FAILED
            streamed.finish_reason = "error"
            return
        streamed.text = "".join(shown)
        streamed.finish_reason = "length" if guard.stopped else (generation.finish_reason or "stop")
        if not streamed.text.strip():
            # Everything the model said was withheld: answer with the twin's own polite refusal.
            streamed.text = guardrails.refusal(prepared.profile, streamed.decisions)
            yield streamed.text
        streamed.citations = _citations(streamed.text, generation.citations, prepared.passages)

    async def finish(self, db: Database) -> TurnResult:
        """Writes the turn in one transaction; ConversationFull when a concurrent turn took the last room."""
        if self.result is not None:
            return self.result
        prepared, streamed = self.prepared, self._streamed
        fan_id, twin_id = uuid.uuid4(), uuid.uuid4()
        decisions = [*prepared.input_decisions, *streamed.decisions]
        guardrail_notes = [d.as_json() for d in decisions]
        outcome = _outcome(prepared, streamed)
        fan_status = MessageStatus.BLOCKED if prepared.blocked_by is not None else MessageStatus.COMPLETE
        twin_at = max(datetime.now(UTC), prepared.received_at + timedelta(microseconds=1))
        citations = [
            {"n": c.number, "title": c.title, "url": c.url, "sourceId": c.source_id}
            for c in streamed.citations
        ]
        twin_details: dict[str, Any] = {
            "citations": citations,
            "guardrails": [d.as_json() for d in streamed.decisions],
            "usage": {
                "input_tokens": streamed.usage.input_tokens,
                "output_tokens": streamed.usage.output_tokens,
            },
            "provider": self.provider.name,
            "model": streamed.model,
            "finish_reason": streamed.finish_reason,
        }
        if streamed.failed:
            twin_details["error"] = "provider_unavailable"
            twin_details["partial"] = streamed.partial
        messages = [
            {
                "id": str(fan_id),
                "created_at": prepared.received_at.isoformat(),
                "role": "FAN",
                "content": prepared.content,
                "status": fan_status.value,
                "details": {"guardrails": [d.as_json() for d in prepared.input_decisions]},
            },
            {
                "id": str(twin_id),
                "created_at": twin_at.isoformat(),
                "role": "TWIN",
                "content": streamed.text,
                "status": streamed.status.value,
                "details": twin_details,
            },
        ]
        flags = [
            {
                "message_id": str(fan_id if d.stage is Stage.INPUT else twin_id),
                "stage": d.stage.value,
                "rule": str(d.rule),
                "reason": d.reason,
                "excerpt": d.excerpt,
            }
            for d in decisions
            if d.blocks
        ]
        facts = [{"kind": f.kind, "value": f.value} for f in prepared.facts]
        latency_ms = int((time.perf_counter() - prepared.started) * 1000)
        twin = prepared.twin
        async with db.transaction(chat_service.fan_rls(prepared.fan, prepared.tenant_id)) as session:
            row = (
                await session.execute(
                    WRITE_SQL,
                    {
                        "added": TURN_MESSAGES,
                        "warn_at": warn_threshold(self.settings),
                        "max_messages": self.settings.chat_max_messages,
                        "tenant": prepared.tenant_id,
                        "conversation": prepared.conversation_id,
                        "messages": json.dumps(messages),
                        "event_id": uuid.uuid4(),
                        "celebrity": twin.celebrity_id,
                        "deployment": twin.deployment_id,
                        "campaign": twin.campaign_id,
                        "fan_key": prepared.fan.fan_key,
                        "tier": prepared.context.fan_tier,
                        "outcome": outcome,
                        "provider": self.provider.name,
                        "latency_ms": latency_ms,
                        "input_tokens": streamed.usage.input_tokens,
                        "output_tokens": streamed.usage.output_tokens,
                        "guardrails": json.dumps(guardrail_notes),
                        "flags": json.dumps(flags),
                        "facts": json.dumps(facts),
                    },
                )
            ).first()
            if row is None:
                raise ConversationFull()
            if row.crossed:
                await _near_limit(session, prepared, twin_id, row.message_count, self.settings)
            document = prepared.context.as_json()
            if document != prepared.stored_context:
                await chat_service.update_context(
                    session, prepared.conversation_id, prepared.tenant_id, document
                )
        self.result = TurnResult(
            fan_message_id=fan_id,
            message_id=twin_id,
            text=streamed.text,
            status=streamed.status,
            outcome=outcome,
            citations=[{"n": c["n"], "title": c["title"], "url": c["url"]} for c in citations],
            guardrails=guardrail_notes,
            usage=streamed.usage,
            model=streamed.model,
            finish_reason=streamed.finish_reason,
            disclosure=twin.disclosure,
            error_code="provider_unavailable" if streamed.failed else None,
        )
        return self.result

    async def finish_shielded(self, db: Database) -> TurnResult:
        """`finish`, carried through even when the client goes away mid-write."""
        return await asyncio.shield(self.finish(db))


def _outcome(prepared: PreparedTurn, streamed: _Streamed) -> str:
    if prepared.blocked_by is not None:
        return TurnOutcome.BLOCKED
    if streamed.failed:
        return TurnOutcome.FAILED
    if any(d.blocks for d in streamed.decisions):
        return TurnOutcome.BLOCKED
    if streamed.decisions and any(d.action.value != "ALLOW" for d in streamed.decisions):
        return TurnOutcome.REWRITTEN
    return TurnOutcome.ANSWERED


def _citations(reply: str, given: Sequence[Citation], passages: Sequence[Passage]) -> list[Citation]:
    """The citations whose `[n]` mark survived the output guard."""
    found = list(given) or cited(reply, passages)
    return [c for c in found if f"[{c.number}]" in reply]


async def _near_limit(
    session: AsyncSession, prepared: PreparedTurn, message_id: uuid.UUID, count: int, settings: Settings
) -> None:
    """The conversation just crossed the warning threshold (once: `near_limit_at` was unset)."""
    twin = prepared.twin
    reason = f"The conversation holds {count} of its {settings.chat_max_messages} messages."
    await session.execute(
        text(
            "INSERT INTO moderation_flags (tenant_id, id, celebrity_id, conversation_id, message_id, fan_key,"
            " stage, rule, reason, excerpt)"
            " VALUES (:t, :id, :c, :conv, :m, :fan, 'LIMIT', :rule, :reason, '')"
        ),
        {
            "t": prepared.tenant_id,
            "id": uuid.uuid4(),
            "c": twin.celebrity_id,
            "conv": prepared.conversation_id,
            "m": message_id,
            "fan": prepared.fan.fan_key,
            "rule": moderation.NEAR_LIMIT_RULE,
            "reason": reason,
        },
    )
    await outbox.emit(
        session,
        NEAR_LIMIT_EVENT,
        tenant_id=prepared.tenant_id,
        actor_user_id=prepared.fan.user_id,
        actor_role=chat_service.FAN_ROLE,
        subject_type="conversation",
        subject_id=prepared.conversation_id,
        payload={
            "celebrity_id": str(twin.celebrity_id),
            "deployment_id": str(twin.deployment_id),
            "message_count": count,
            "max_messages": settings.chat_max_messages,
        },
    )
