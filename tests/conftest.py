"""Test fixtures: a fresh database built by the migrations (embedded server or VIBETHINK_DATABASE_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.engine import URL

from vibethink.app import create_app
from vibethink.core import migrations
from vibethink.core.database import Database, ensure_database, owner_url, stop_embedded
from vibethink.core.settings import Settings

os.environ.setdefault("VIBETHINK_ENVIRONMENT", "test")


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return Settings(
        environment="test",
        # One database per test process, so parallel runs never drop each other's data.
        database_name=f"vibethink_test_{worker}_{os.getpid()}",
        in_process_dispatcher=False,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
    )


@pytest.fixture(scope="session")
def test_owner_url(test_settings: Settings) -> Iterator[URL]:
    base = owner_url(test_settings.model_copy(update={"database_name": "postgres"}))
    url = base.set(database=test_settings.database_name)
    ensure_database(url, recreate=True)
    migrations.upgrade(url)
    yield url
    _drop(url)
    stop_embedded()


def _drop(url: URL) -> None:
    import asyncio

    import asyncpg

    from vibethink.core.database import asyncpg_connect_args

    async def run() -> None:
        conn = await asyncpg.connect(**asyncpg_connect_args(url.set(database="postgres")))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
async def db(test_settings: Settings, test_owner_url: URL) -> AsyncIterator[Database]:
    database = Database(test_settings, owner=test_owner_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def app(test_settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    return create_app(test_settings, db=db)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def unique() -> str:
    """A short random suffix for slugs and e-mails, so tests never collide."""
    return uuid.uuid4().hex[:10]
