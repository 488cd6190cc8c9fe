"""Statements on the evidence hot path, sent straight through the session's asyncpg connection.

They run in the caller's transaction like any other statement of the session (same connection, same
RLS context), minus the ORM's per-statement work. A transaction the session has not begun yet is
begun by the first statement through SQLAlchemy (which sends the RLS context with BEGIN); every later
one goes to the driver. SQL uses the driver's `$n` parameters, which SQLAlchemy's asyncpg dialect
passes through unchanged, so one text serves both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


async def _driver(session: AsyncSession) -> asyncpg.Connection | None:
    """The session's asyncpg connection when its transaction is open there, else None."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if isinstance(driver, asyncpg.Connection) and driver.is_in_transaction():
        return driver
    return None


async def fetch(session: AsyncSession, sql: str, *args: Any) -> list[Sequence[Any]]:
    """Rows of `sql` (positional access: `row[0]`)."""
    driver = await _driver(session)
    if driver is not None:
        return [tuple(record) for record in await driver.fetch(sql, *args)]
    connection = await session.connection()
    return list((await connection.exec_driver_sql(sql, args)).all())


async def fetch_one(session: AsyncSession, sql: str, *args: Any) -> dict[str, Any] | None:
    """The first row of `sql` by column name, or None."""
    driver = await _driver(session)
    if driver is not None:
        record = await driver.fetchrow(sql, *args)
        return dict(record) if record is not None else None
    connection = await session.connection()
    row = (await connection.exec_driver_sql(sql, args)).first()
    return dict(row._mapping) if row is not None else None


async def execute(session: AsyncSession, sql: str, *args: Any) -> None:
    driver = await _driver(session)
    if driver is not None:
        await driver.execute(sql, *args)
        return
    connection = await session.connection()
    await connection.exec_driver_sql(sql, args)
