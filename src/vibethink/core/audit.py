"""The audit log: who did what, written in the same transaction as the change."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.models import AuditLog, new_id


async def record(
    session: AsyncSession,
    action: str,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    actor_role: str | None = None,
    subject_type: str | None = None,
    subject_id: uuid.UUID | str | None = None,
    is_admin_context: bool = False,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    await session.execute(
        insert(AuditLog).values(
            tenant_id=tenant_id,
            id=new_id(),
            action=action,
            actor_user_id=actor_user_id,
            actor_role=actor_role,
            subject_type=subject_type,
            subject_id=None if subject_id is None else str(subject_id),
            is_admin_context=is_admin_context,
            reason=reason,
            details=details or {},
            ip=ip,
        )
    )
