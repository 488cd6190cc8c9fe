"""Moderation: the flags guardrails and limits raise, and what the talent team does about them.

Every action is audited and announced in the same transaction: resolve, hide the message, block the fan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat.models import BlockedFan, FlagStatus, Message, MessageStatus, ModerationFlag
from vibethink.core import audit, outbox
from vibethink.core.errors import Conflict, NotFound
from vibethink.core.pagination import newest_first
from vibethink.talent import service as talent_service
from vibethink.tenancy.access import Principal

MAX_PAGE: Final = 100
NEAR_LIMIT_RULE: Final = "limit.near_limit"
MAX_NOTE: Final = 2000


@dataclass(frozen=True, slots=True)
class FlagPage:
    items: list[ModerationFlag]
    next_cursor: str | None


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    celebrity_id: uuid.UUID,
    status: FlagStatus | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> FlagPage:
    """A celebrity's flags, newest first; another tenant's celebrity is a 404."""
    celebrity = await talent_service.get(session, principal, celebrity_id)
    query = select(ModerationFlag).where(
        ModerationFlag.tenant_id == principal.tenant_id, ModerationFlag.celebrity_id == celebrity.id
    )
    statuses = [status] if status is not None else list(FlagStatus)
    query = query.where(ModerationFlag.status.in_(statuses))
    items, next_cursor = await newest_first(
        session,
        query,
        created_at=ModerationFlag.created_at,
        row_id=ModerationFlag.id,
        cursor=cursor,
        limit=limit,
    )
    return FlagPage(items=items, next_cursor=next_cursor)


async def get(session: AsyncSession, principal: Principal, flag_id: uuid.UUID) -> ModerationFlag:
    flag = await session.scalar(
        select(ModerationFlag)
        .where(ModerationFlag.tenant_id == principal.tenant_id, ModerationFlag.id == flag_id)
        .with_for_update()
    )
    if flag is None:
        raise NotFound("No such flag.")
    return flag


def _note(note: str | None) -> str | None:
    cleaned = (note or "").replace("\x00", "").strip()
    return cleaned[:MAX_NOTE] or None


async def _record(
    session: AsyncSession,
    principal: Principal,
    flag: ModerationFlag,
    action: str,
    event_type: str,
    details: dict[str, Any],
) -> None:
    payload = {
        "flag_id": str(flag.id),
        "celebrity_id": str(flag.celebrity_id),
        "conversation_id": str(flag.conversation_id),
        "rule": flag.rule,
        **details,
    }
    if principal.api_key_id is not None:
        payload["actor_api_key_id"] = str(principal.api_key_id)
    await audit.record(
        session,
        action,
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="moderation_flag",
        subject_id=flag.id,
        is_admin_context=principal.admin_reason is not None,
        reason=principal.admin_reason,
        details=payload,
    )
    await outbox.emit(
        session,
        event_type,
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="moderation_flag",
        subject_id=flag.id,
        payload=payload,
    )


def _close(flag: ModerationFlag, principal: Principal, status: FlagStatus, note: str | None) -> None:
    flag.status = status
    flag.resolved_by = principal.user_id
    flag.resolved_at = datetime.now(UTC)
    if note is not None:
        flag.note = note


async def resolve(
    session: AsyncSession, principal: Principal, flag_id: uuid.UUID, *, note: str | None = None
) -> ModerationFlag:
    """Marks the flag as looked at, with nothing else done."""
    flag = await get(session, principal, flag_id)
    _close(flag, principal, FlagStatus.RESOLVED, _note(note))
    await session.flush()
    await _record(session, principal, flag, "moderation.flag_resolved", "MODERATION_FLAG_RESOLVED", {})
    return flag


async def hide_message(
    session: AsyncSession, principal: Principal, flag_id: uuid.UUID, *, note: str | None = None
) -> ModerationFlag:
    """Hides the flagged message from the fan's history (it stays for the team and the record)."""
    flag = await get(session, principal, flag_id)
    if flag.message_id is None:
        raise Conflict("This flag is not about a message.", field="flag_id")
    await session.execute(
        update(Message)
        .where(
            Message.tenant_id == flag.tenant_id,
            Message.conversation_id == flag.conversation_id,
            Message.id == flag.message_id,
        )
        .values(status=MessageStatus.HIDDEN, updated_at=datetime.now(UTC))
    )
    _close(flag, principal, FlagStatus.MESSAGE_HIDDEN, _note(note))
    await session.flush()
    await _record(
        session,
        principal,
        flag,
        "moderation.message_hidden",
        "MODERATION_MESSAGE_HIDDEN",
        {"message_id": str(flag.message_id)},
    )
    return flag


async def block_fan(
    session: AsyncSession, principal: Principal, flag_id: uuid.UUID, *, note: str | None = None
) -> ModerationFlag:
    """Blocks the flag's fan from this twin: their next message is refused with `fan_blocked`."""
    flag = await get(session, principal, flag_id)
    reason = _note(note)
    await session.execute(
        insert(BlockedFan)
        .values(
            tenant_id=flag.tenant_id,
            celebrity_id=flag.celebrity_id,
            fan_key=flag.fan_key,
            reason=reason or flag.reason,
            blocked_by=principal.user_id,
        )
        .on_conflict_do_nothing()
    )
    _close(flag, principal, FlagStatus.FAN_BLOCKED, reason)
    await session.flush()
    await _record(
        session,
        principal,
        flag,
        "moderation.fan_blocked",
        "MODERATION_FAN_BLOCKED",
        {"fan_key": flag.fan_key},
    )
    return flag
