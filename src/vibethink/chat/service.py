"""Conversations: fan sessions, the deployed twin, conversation creation and history pages."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing import quotas
from vibethink.chat import twins
from vibethink.chat.models import Conversation, Message, MessageStatus
from vibethink.chat.tokens import Fan, FanTokens, IssuedToken
from vibethink.chat.twins import DeployedTwin
from vibethink.core import outbox
from vibethink.core.database import RlsContext, apply_context
from vibethink.core.errors import NotFound, TwinUnavailable
from vibethink.core.pagination import decode_cursor, encode_cursor
from vibethink.core.settings import Settings
from vibethink.deployments import service as deployments
from vibethink.deployments.models import DeploymentStatus
from vibethink.talent import schema_registry
from vibethink.talent.models import EntityStatus

CONTEXT_SCHEMA: Final = "conversation_context"
MAX_HISTORY_PAGE: Final = 50
FAN_ROLE: Final = "FAN"
# What a fan sees of their conversation: everything but what moderation hid (IN keeps the index).
FAN_VISIBLE: Final = (
    MessageStatus.COMPLETE,
    MessageStatus.FAILED,
    MessageStatus.BLOCKED,
    MessageStatus.STREAMING,
)
FAN_CONVERSATION_SQL = text("SELECT tenant_id, deployment_id FROM chat_fan_conversation(:id, :fan_key)")


def fan_tokens(settings: Settings) -> FanTokens:
    """The process's token signer for these settings (one, so verified tokens are remembered)."""
    return _fan_tokens(settings.secret_key, settings.fan_token_max_age_seconds)


@lru_cache(maxsize=8)
def _fan_tokens(secret_key: str, max_age_seconds: int) -> FanTokens:
    return FanTokens(secret_key, max_age_seconds)


async def deployed_twin(
    session: AsyncSession, deployment_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None
) -> DeployedTwin:
    """The twin behind a deployment, from the process cache or one definer lookup; 404 when unknown
    (or, with `tenant_id`, when it belongs to another tenant)."""
    twin = twins.cache.get(deployment_id)
    if twin is None:
        found = await deployments.public_lookup(session, deployment_id)
        if found is None:
            raise NotFound("No such deployment.")
        twin = twins.build(
            tenant_id=found.tenant_id,
            deployment_id=found.id,
            celebrity_id=found.celebrity_id,
            deployment_type=found.type,
            is_active=found.status is DeploymentStatus.ACTIVE
            and found.celebrity_status is EntityStatus.ACTIVE,
            window=(found.starts_at, found.ends_at),
            celebrity_name=found.celebrity_name,
            config=found.config,
            twin_config=found.twin_config,
        )
        twins.cache.put(twin)
    if tenant_id is not None and twin.tenant_id != tenant_id:
        raise NotFound("No such deployment.")
    return twin


def require_live(twin: DeployedTwin) -> DeployedTwin:
    if not twin.is_live(datetime.now(UTC)):
        raise TwinUnavailable()
    return twin


async def fan_tier(session: AsyncSession, twin: DeployedTwin, fan: Fan) -> str:
    """The fan's pricing tier for this twin (a live subscription's, else the talent's free tier);
    the session's RLS context must be the twin's tenant."""
    found = await quotas.allowance(
        session, tenant_id=twin.tenant_id, celebrity_id=twin.celebrity_id, fan_key=fan.fan_key
    )
    return found.tier_code


def fan_rls(fan: Fan, tenant_id: uuid.UUID) -> RlsContext:
    return RlsContext(tenant_id=tenant_id, user_id=fan.user_id, role=FAN_ROLE)


async def start_session(
    session: AsyncSession, settings: Settings, deployment_id: uuid.UUID, *, user_id: uuid.UUID | None
) -> IssuedToken:
    """A fan token for a live deployment: a new anonymous fan, or the signed-in user."""
    twin = require_live(await deployed_twin(session, deployment_id))
    fan_key = f"user:{user_id}" if user_id is not None else None
    return fan_tokens(settings).issue(
        tenant_id=twin.tenant_id, deployment_id=twin.deployment_id, fan_key=fan_key
    )


async def enter_fan_tenant(session: AsyncSession, fan: Fan, tenant_id: uuid.UUID) -> None:
    """Sets the RLS context to the tenant a fan is talking to (a no-op when it rode with BEGIN)."""
    if fan.tenant_id != tenant_id:
        await apply_context(session, fan_rls(fan, tenant_id))


async def create_conversation(session: AsyncSession, fan: Fan, deployment_id: uuid.UUID) -> Conversation:
    """A new conversation of `fan` with the twin of a live deployment; its context validated on write."""
    if fan.deployment_id is not None and fan.deployment_id != deployment_id:
        raise NotFound("No such deployment.")
    twin = require_live(await deployed_twin(session, deployment_id, tenant_id=fan.tenant_id))
    await enter_fan_tenant(session, fan, twin.tenant_id)
    context = twin.context(
        fan_key=fan.fan_key, session_id=secrets.token_hex(16), fan_tier=await fan_tier(session, twin, fan)
    )
    document = context.as_json()
    await schema_registry.validate(session, CONTEXT_SCHEMA, document, column="context")
    conversation = Conversation(
        tenant_id=twin.tenant_id,
        id=uuid.uuid4(),
        celebrity_id=twin.celebrity_id,
        deployment_id=twin.deployment_id,
        user_id=fan.user_id,
        fan_key=fan.fan_key,
        session_id=context.session_id,
        context=document,
        message_count=0,
    )
    session.add(conversation)
    await session.flush()
    await session.refresh(conversation, ["created_at", "updated_at"])
    await outbox.emit(
        session,
        "CONVERSATION_STARTED",
        tenant_id=twin.tenant_id,
        actor_user_id=fan.user_id,
        actor_role=FAN_ROLE,
        subject_type="conversation",
        subject_id=conversation.id,
        payload={
            "celebrity_id": str(twin.celebrity_id),
            "deployment_id": str(twin.deployment_id),
            "deployment_type": twin.deployment_type.value,
            "campaign_id": str(twin.campaign_id) if twin.campaign_id else None,
        },
    )
    return conversation


async def validate_context(session: AsyncSession, document: dict[str, Any]) -> None:
    """A changed context (a new tier, a deployment's new sponsor) is validated like any write."""
    await schema_registry.validate(session, CONTEXT_SCHEMA, document, column="context")


async def locate_conversation(session: AsyncSession, fan: Fan, conversation_id: uuid.UUID) -> uuid.UUID:
    """The tenant of the fan's conversation, with the RLS context set to it; 404 when not theirs.

    A fan token names its tenant; a signed-in fan's conversation is found by id and fan key alone.
    """
    if fan.tenant_id is not None:
        return fan.tenant_id
    row = (
        await session.execute(FAN_CONVERSATION_SQL, {"id": conversation_id, "fan_key": fan.fan_key})
    ).first()
    if row is None:
        raise NotFound("No such conversation.")
    await enter_fan_tenant(session, fan, row.tenant_id)
    return uuid.UUID(str(row.tenant_id))


async def get_conversation(session: AsyncSession, fan: Fan, conversation_id: uuid.UUID) -> Conversation:
    tenant_id = await locate_conversation(session, fan, conversation_id)
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.tenant_id == tenant_id,
            Conversation.id == conversation_id,
            Conversation.fan_key == fan.fan_key,
        )
    )
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


@dataclass(frozen=True, slots=True)
class MessagePage:
    items: list[Message]
    next_cursor: str | None


async def history_page(
    session: AsyncSession,
    fan: Fan,
    conversation_id: uuid.UUID,
    *,
    limit: int = MAX_HISTORY_PAGE,
    cursor: str | None = None,
) -> MessagePage:
    """The newest messages (at most 50), oldest first on the page; `next_cursor` goes further back."""
    conversation = await get_conversation(session, fan, conversation_id)
    limit = max(1, min(limit, MAX_HISTORY_PAGE))
    query = select(Message).where(
        Message.tenant_id == conversation.tenant_id,
        Message.conversation_id == conversation.id,
        Message.status.in_(FAN_VISIBLE),
    )
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        query = query.where(tuple_(Message.created_at, Message.id) < tuple_(at, row_id))
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    page.reverse()
    return MessagePage(items=page, next_cursor=next_cursor)
