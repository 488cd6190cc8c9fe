"""The transactional outbox: `emit` writes an event in the caller's transaction.

Delivery lives in `core/dispatcher.py`; consumers register by event type and are idempotent by
event id (the dispatcher records each (event, consumer) delivery in the consumer's transaction).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.models import PlatformEvent, new_id

# A statement trigger on `platform_events` notifies this channel at commit, with no extra round trip.
NOTIFY_CHANNEL = "vibethink_outbox"


async def emit(
    session: AsyncSession,
    event_type: str,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None = None,
    actor_role: str | None = None,
    subject_type: str | None = None,
    subject_id: uuid.UUID | str | None = None,
    payload: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Records `event_type` with the current transaction; nothing is announced if it rolls back."""
    event_id = new_id()
    await session.execute(
        insert(PlatformEvent).values(
            tenant_id=tenant_id,
            id=event_id,
            event_type=event_type,
            actor_user_id=actor_user_id,
            actor_role=actor_role,
            subject_type=subject_type,
            subject_id=None if subject_id is None else str(subject_id),
            payload=payload or {},
        )
    )
    return event_id
