"""Talent fixtures: a tenant with its API key, platform events, a private database for global changes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from tests.conftest import _drop
from tests.factories import ADMIN, MadeTenant, bearer, make_api_key, make_tenant
from vibethink.core import migrations
from vibethink.core.database import Database, ensure_database
from vibethink.core.models import PlatformEvent
from vibethink.core.settings import Settings
from vibethink.talent import schema_registry


@dataclass
class Talent:
    tenant: MadeTenant
    headers: dict[str, str]


async def make_talent(db: Database, unique: str, *, scopes: set[str] | None = None) -> Talent:
    tenant = await make_tenant(db, slug=f"talent-{unique}-{uuid.uuid4().hex[:4]}")
    return Talent(tenant, bearer(await make_api_key(db, tenant, scopes=scopes)))


@pytest.fixture
async def talent(db: Database, unique: str) -> Talent:
    return await make_talent(db, unique)


@pytest.fixture
async def other_talent(db: Database, unique: str) -> Talent:
    return await make_talent(db, f"{unique}-b")


async def events_of(db: Database, tenant_id: uuid.UUID, event_type: str | None = None) -> list[PlatformEvent]:
    async with db.transaction(ADMIN) as session:
        query = (
            select(PlatformEvent)
            .where(PlatformEvent.tenant_id == tenant_id)
            .order_by(PlatformEvent.occurred_at)
        )
        if event_type is not None:
            query = query.where(PlatformEvent.event_type == event_type)
        return list((await session.scalars(query)).all())


def change(event: PlatformEvent) -> dict[str, Any]:
    """The event's payload without the acting key's id, which every API-key write adds."""
    return {k: v for k, v in event.payload.items() if k != "actor_api_key_id"}


@pytest.fixture(scope="module")
def private_url(test_owner_url: URL) -> Iterator[URL]:
    """A database of this module's own: schema activation and backfill are global to a database."""
    url = test_owner_url.set(database=f"{test_owner_url.database}_{uuid.uuid4().hex[:8]}")
    ensure_database(url, recreate=True)
    migrations.upgrade(url)
    yield url
    _drop(url)


@pytest.fixture(scope="module")
async def private_db(test_settings: Settings, private_url: URL) -> AsyncIterator[Database]:
    database = Database(test_settings, owner=private_url)
    schema_registry.cache.invalidate()
    yield database
    schema_registry.cache.invalidate()
    await database.dispose()
