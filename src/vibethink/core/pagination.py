"""Cursor pagination: opaque cursors over a (timestamp, id) ordering, pages of at most 100."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vibethink.core.errors import InvalidInput

T = TypeVar("T")
MAX_PAGE = 100


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null at the end."
    )


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInput("The cursor is not valid.", field="cursor") from exc


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


K = TypeVar("K", bound=_Keyed)


async def newest_first(
    session: AsyncSession,
    query: Select[K],
    *,
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> tuple[list[K], str | None]:
    """One page of `query`, newest first over (created_at, id), and the cursor of the next page."""
    limit = max(1, min(limit, MAX_PAGE))
    if cursor is not None:
        at, after = decode_cursor(cursor)
        query = query.where(tuple_(created_at, row_id) < tuple_(at, after))
    query = query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit and items else None
    return items, next_cursor
