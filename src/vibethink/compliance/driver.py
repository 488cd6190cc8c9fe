"""Statements on the evidence hot path, sent straight through the session's asyncpg connection.

They run in the caller's transaction like any other statement of the session (same connection, same
RLS context), minus the ORM's per-statement work. A transaction the session has not begun yet is
begun by the first statement, sent through SQLAlchemy (which sends the RLS context with BEGIN); every
later one goes to the driver. SQL uses the driver's `$n` parameters, which SQLAlchemy's asyncpg
dialect passes through unchanged, so one text serves both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


class Bound:
    """One session's connection, looked up once for a series of statements in its transaction."""

    __slots__ = ("connection", "raw")

    def __init__(self, connection: AsyncConnection | None, raw: asyncpg.Connection) -> None:
        """`connection` is the session's, which begins its transaction; None: `raw` is already in one."""
        self.connection = connection
        self.raw = raw

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Rows of `sql` (positional access: `row[0]`)."""
        if self.connection is None or self.raw.is_in_transaction():
            return [tuple(record) for record in await self.raw.fetch(sql, *args)]
        return list((await self.connection.exec_driver_sql(sql, args)).all())

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        """The first row of `sql` by column name, or None."""
        if self.connection is None or self.raw.is_in_transaction():
            record = await self.raw.fetchrow(sql, *args)
            return dict(record) if record is not None else None
        row = (await self.connection.exec_driver_sql(sql, args)).first()
        return dict(row._mapping) if row is not None else None

    async def execute(self, sql: str, *args: Any) -> None:
        if self.connection is None or self.raw.is_in_transaction():
            await self.raw.execute(sql, *args)
        else:
            await self.connection.exec_driver_sql(sql, args)


async def bind(session: AsyncSession | Bound) -> Bound:
    """`session`'s connection for direct statements (a `Bound` is passed through)."""
    if isinstance(session, Bound):
        return session
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    if not isinstance(raw, asyncpg.Connection):  # pragma: no cover - the platform's engines are asyncpg
        raise TypeError("the compliance ledger needs an asyncpg connection")
    return Bound(connection, raw)


async def fetch(session: AsyncSession | Bound, sql: str, *args: Any) -> list[Sequence[Any]]:
    return await (await bind(session)).fetch(sql, *args)


async def fetch_one(session: AsyncSession | Bound, sql: str, *args: Any) -> dict[str, Any] | None:
    return await (await bind(session)).fetch_one(sql, *args)


async def execute(session: AsyncSession | Bound, sql: str, *args: Any) -> None:
    await (await bind(session)).execute(sql, *args)
