"""One chat turn: check, read, stream through the output guard, then write once.

No database connection is held while the model streams. The turn costs two round trips
(`chat/store.py`): one call reads the conversation, block, history, memories and the twin's
passages; one call writes both messages, the counter with its limit, the interaction event, flags,
memories and a changed context. The limit is enforced by the write's conditional UPDATE, so
concurrent turns can never take a conversation past it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from vibethink.billing import quotas
from vibethink.chat import memory, store, twins
from vibethink.chat import service as chat_service
from vibethink.chat.models import MessageStatus
from vibethink.chat.tokens import Fan
from vibethink.chat.twins import DeployedTwin
from vibethink.core.database import Database, RlsContext
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
APOLOGIES: Final = {
    "es": (
        "Perdón, se me cortó la comunicación y ahora no puedo responderte."
        " ¿Lo intentamos de nuevo en un momento?"
    ),
    "en": "Sorry, I lost my connection and can't answer right now. Shall we try again in a moment?",
}


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
    provider: ModelProvider  # the twin's model, chosen once for the turn
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


def _stored_history(
    settings: Settings, provider: ModelProvider, given: tuple[HistoryTurn, ...] | None
) -> int:
    """How many stored messages the turn reads: none when the caller brings its own history or the
    model does not read one (`grounded` answers from the passages alone)."""
    if given is not None or not getattr(provider, "reads_history", True):
        return 0
    return 2 * settings.chat_history_turns


def _history(rows: Sequence[Sequence[str]]) -> tuple[HistoryTurn, ...]:
    return tuple(HistoryTurn("fan" if role == "FAN" else "twin", content) for role, content in rows)


async def _twin(db: Database, deployment_id: uuid.UUID, tenant_id: uuid.UUID) -> DeployedTwin:
    twin = twins.cache.get(deployment_id)
    if twin is None or twin.tenant_id != tenant_id:
        async with db.transaction(RlsContext()) as session:
            twin = await chat_service.deployed_twin(session, deployment_id, tenant_id=tenant_id)
    return twin


async def _locate(db: Database, fan: Fan, conversation_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID | None]:
    """(tenant, deployment) the turn starts from: the fan token's, or a signed-in fan's conversation's."""
    if fan.tenant_id is not None and fan.deployment_id is not None:
        return fan.tenant_id, fan.deployment_id
    found = await store.fan_conversation(await db.chat_pool(), conversation_id, fan.fan_key)
    if found is None or (fan.tenant_id is not None and found[0] != fan.tenant_id):
        raise NotFound("No such conversation.")
    return found


async def _retrieval(
    db: Database, settings: Settings, content: str, profile: PersonalityProfile
) -> tuple[store.Retrieval | None, bool]:
    """What the read should search for (None: nothing to search) and whether vectors were asked for."""
    cleaned = knowledge_search.clean_query(content)
    if not cleaned:
        return None, False
    embedding = await knowledge_search.query_embedding(_embedder(settings), cleaned)
    common = knowledge_search.fresh_common_lexemes()
    if common is None:
        common = knowledge_search.remember_common_lexemes(
            await store.common_lexemes(await db.driver_pool(), knowledge_search.COMMON_WORD_FREQUENCY)
        )
    retrieval = store.Retrieval(
        query=cleaned,
        config=knowledge_search.search_config(profile.language),
        depth=knowledge_search.candidate_depth(PASSAGES, hybrid=embedding is not None),
        common=common,
        embedding=embedding,
        exact_below=knowledge_search.EXACT_SEARCH_BELOW,
    )
    return retrieval, embedding is not None


async def _refuse_over_quota(
    db: Database, twin: DeployedTwin, fan: Fan, state: store.TurnState, now: datetime
) -> None:
    """Raises billing's 429 `quota_exceeded`, with the reset time and the tiers to upgrade to."""
    async with db.transaction(chat_service.fan_rls(fan, twin.tenant_id)) as session:
        error = await quotas.exceeded(
            session,
            tenant_id=twin.tenant_id,
            celebrity_id=twin.celebrity_id,
            allowance=state.allowance,
            used=state.used_today,
            now=now,
        )
    raise error


async def prepare(
    db: Database,
    settings: Settings,
    fan: Fan,
    conversation_id: uuid.UUID,
    *,
    content: str,
    history: tuple[HistoryTurn, ...] | None = None,
) -> PreparedTurn:
    """Reads and checks the turn in one round trip: conversation, blocked fan, limit, history,
    memories and, when the input guardrails let the message through, the twin's passages.
    `history` replaces the stored one."""
    started = time.perf_counter()
    received_at = datetime.now(UTC)
    tenant_id, deployment_id = await _locate(db, fan, conversation_id)
    if deployment_id is None:
        raise NotFound("This conversation's deployment no longer exists.")
    twin = await _twin(db, deployment_id, tenant_id)
    for _ in range(2):
        # The input checks need only the deployment's context: they run before the read, so a
        # blocked message costs no retrieval.
        profile = twin.profile
        outline = twin.context(
            fan_key=fan.fan_key, session_id=str(conversation_id), fan_tier=quotas.UNLIMITED.tier_code
        )
        decisions = guardrails.check_input(content, profile, outline)
        blocked_by = guardrails.first_block(decisions)
        retrieval, hybrid = (None, False) if blocked_by else await _retrieval(db, settings, content, profile)
        provider = provider_for(settings, twin.twin_config)
        state = await store.read_turn(
            await db.chat_pool(),
            tenant_id=tenant_id,
            user_id=fan.user_id,
            conversation_id=conversation_id,
            fan_key=fan.fan_key,
            history=_stored_history(settings, provider, history),
            retrieval=retrieval,
            day=received_at.date(),
        )
        if state is None:
            raise NotFound("No such conversation.")
        if state.deployment_id is None:
            raise NotFound("This conversation's deployment no longer exists.")
        if state.deployment_id == twin.deployment_id:
            break
        # A conversation of another deployment than the token's: read again as that one's twin.
        twin = await _twin(db, state.deployment_id, tenant_id)
    else:
        raise NotFound("No such conversation.")
    chat_service.require_live(twin)
    if state.blocked:
        raise FanBlocked()
    if state.message_count + TURN_MESSAGES > settings.chat_max_messages:
        raise ConversationFull()
    limit = state.allowance.messages_per_day
    if limit is not None and state.used_today >= limit:
        await _refuse_over_quota(db, twin, fan, state, received_at)
    tier = state.allowance.tier_code
    context = twin.context(
        fan_key=fan.fan_key,
        session_id=state.session_id or str(conversation_id),
        fan_tier=tier,
        history=_history(state.history) if history is None else history,
        memories=tuple(memory.describe(kind, value) for kind, value in state.memories),
    )
    prepared = PreparedTurn(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        fan=fan,
        twin=twin,
        provider=provider,
        profile=profile,
        context=context,
        content=content,
        received_at=received_at,
        started=started,
        message_count=state.message_count,
        stored_context=state.context,
        input_decisions=decisions,
        blocked_by=blocked_by,
    )
    if blocked_by is None:
        prepared.facts = memory.extract(content)
        prepared.passages = tuple(
            knowledge_search.ranked(state.lexical, state.semantic, k=PASSAGES, hybrid=hybrid)
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

    def __init__(self, settings: Settings, prepared: PreparedTurn) -> None:
        self.settings = settings
        self.prepared = prepared
        self.provider = prepared.provider
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
        input_notes = [d.as_json() for d in prepared.input_decisions]
        output_notes = [d.as_json() for d in streamed.decisions]
        guardrail_notes = input_notes + output_notes
        outcome = _outcome(prepared, streamed)
        fan_status = MessageStatus.BLOCKED if prepared.blocked_by is not None else MessageStatus.COMPLETE
        twin_at = max(datetime.now(UTC), prepared.received_at + timedelta(microseconds=1))
        citations = [
            {"n": c.number, "title": c.title, "url": c.url, "sourceId": c.source_id}
            for c in streamed.citations
        ]
        twin_details: dict[str, Any] = {
            "citations": citations,
            "guardrails": output_notes,
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
                "details": {"guardrails": input_notes},
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
        current = prepared.context.as_json()
        changed = current if current != prepared.stored_context else None
        if changed is not None:
            async with db.transaction(chat_service.fan_rls(prepared.fan, prepared.tenant_id)) as session:
                await chat_service.validate_context(session, changed)
        written = await store.write_turn(
            await db.chat_pool(),
            store.TurnWrite(
                tenant_id=prepared.tenant_id,
                user_id=prepared.fan.user_id,
                conversation_id=prepared.conversation_id,
                fan_key=prepared.fan.fan_key,
                added=TURN_MESSAGES,
                warn_at=warn_threshold(self.settings),
                max_messages=self.settings.chat_max_messages,
                messages=messages,
                event={
                    "id": str(uuid.uuid4()),
                    "deployment_id": str(twin.deployment_id),
                    "campaign_id": str(twin.campaign_id) if twin.campaign_id else None,
                    "fan_tier": prepared.context.fan_tier,
                    "outcome": outcome,
                    "provider": self.provider.name,
                    "latency_ms": latency_ms,
                    "input_tokens": streamed.usage.input_tokens,
                    "output_tokens": streamed.usage.output_tokens,
                    "guardrails": guardrail_notes,
                },
                flags=flags,
                facts=facts,
                context=changed,
                day=prepared.received_at.date(),
            ),
        )
        if written is None:
            raise ConversationFull()
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
