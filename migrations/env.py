"""Alembic environment: runs as the database owner, never as the app role."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from vibethink.core.database import owner_url, to_async_url
from vibethink.core.registry import metadata
from vibethink.core.settings import get_settings

config = context.config


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # Monthly partitions of `messages` are created by a function, not described by the models.
    return not (type_ == "table" and name is not None and name.startswith("messages_"))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        # Fail fast instead of queueing behind a long transaction and blocking every request.
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(to_async_url(url), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


def run() -> None:
    url = config.attributes.get("owner_url") or owner_url(get_settings()).render_as_string(
        hide_password=False
    )
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run()
