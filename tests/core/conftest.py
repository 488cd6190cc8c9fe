"""Raw connections as the owner and as the app role, the catalog, and two seeded tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy.engine import URL

from tests.core.schema_catalog import RowBuilder, Table, TenantWorld, connect, describe
from vibethink.core.database import Database

Connect = Callable[[], Awaitable[asyncpg.Connection]]


@pytest.fixture
async def app_connect(db: Database) -> AsyncIterator[Connect]:
    """Opens raw asyncpg connections as the app role (no pool, no context set); closes them after."""
    opened: list[asyncpg.Connection] = []

    async def open_connection() -> asyncpg.Connection:
        conn = await connect(db.app_url)
        opened.append(conn)
        return conn

    yield open_connection
    for conn in opened:
        await conn.close()


@pytest.fixture
async def owner_conn(test_owner_url: URL) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(test_owner_url)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
async def catalog(test_owner_url: URL) -> dict[str, Table]:
    conn = await connect(test_owner_url)
    try:
        return await describe(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def row_builder(catalog: dict[str, Table]) -> RowBuilder:
    return RowBuilder(catalog)


@pytest.fixture(scope="session")
async def two_tenants(db: Database, row_builder: RowBuilder) -> tuple[TenantWorld, TenantWorld]:
    """Tenants A and B, each with one row in every tenant table, seeded through the app role as admin."""
    conn = await connect(db.app_url)
    try:
        return await row_builder.build_world(conn), await row_builder.build_world(conn)
    finally:
        await conn.close()
