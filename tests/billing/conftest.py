"""Billing fixtures: a talent with its API key and a celebrity, tiers, and a private database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from tests.conftest import _drop
from tests.factories import ADMIN, MadeTenant, bearer, make_api_key, make_celebrity, make_tenant, make_user
from tests.tenancy.test_routes import log_in
from vibethink.app import create_app
from vibethink.billing import quotas
from vibethink.core import migrations
from vibethink.core.database import Database, ensure_database
from vibethink.core.settings import Settings
from vibethink.deployments.models import new_key


@dataclass
class Talent:
    tenant: MadeTenant
    headers: dict[str, str]
    celebrity_id: uuid.UUID


async def make_talent(db: Database, unique: str) -> Talent:
    tenant = await make_tenant(db, slug=f"bill-{unique}-{uuid.uuid4().hex[:4]}")
    celebrity_id = await make_celebrity(db, tenant, slug=f"c-{tenant.slug}", status="ACTIVE")
    return Talent(tenant, bearer(await make_api_key(db, tenant)), celebrity_id)


@pytest.fixture
async def talent(db: Database, unique: str) -> Talent:
    return await make_talent(db, unique)


@pytest.fixture
async def other_talent(db: Database, unique: str) -> Talent:
    return await make_talent(db, f"{unique}o")


@pytest.fixture(autouse=True)
def fresh_quota_cache() -> Iterator[None]:
    quotas.clear()
    yield
    quotas.clear()


async def make_deployment(
    db: Database,
    tenant_id: uuid.UUID,
    celebrity_id: uuid.UUID,
    *,
    type: str = "VIBETHINK_PORTAL",
    starts_at: datetime | None = None,
    name: str = "deployment",
) -> uuid.UUID:
    deployment_id = uuid.uuid4()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text(
                "INSERT INTO deployments (tenant_id, id, celebrity_id, type, name, starts_at, widget_key,"
                " analytics_key) VALUES (:t, :id, :c, :type, :n, :s, :w, :a)"
            ),
            {
                "t": tenant_id,
                "id": deployment_id,
                "c": celebrity_id,
                "type": type,
                "n": name,
                "s": starts_at,
                "w": new_key("vtw_"),
                "a": new_key("vta_"),
            },
        )
    return deployment_id


async def make_campaign(
    db: Database,
    tenant_id: uuid.UUID,
    celebrity_id: uuid.UUID,
    *,
    brand_tenant_id: uuid.UUID,
    brand_id: uuid.UUID,
    starts_at: datetime,
    ends_at: datetime | None,
    fee_cents: int,
    cpm_cents: int = 0,
    cpc_cents: int = 0,
    name: str = "Campaign",
    status: str = "APPROVED",
) -> uuid.UUID:
    campaign_id = uuid.uuid4()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text(
                "INSERT INTO brand_campaigns (tenant_id, id, celebrity_id, brand_tenant_id, brand_id,"
                " campaign_name, starts_at, ends_at, fee_cents, cpm_cents, cpc_cents, status, guidelines)"
                " VALUES (:t, :id, :c, :bt, :b, :n, :s, :e, :fee, :cpm, :cpc, :st, CAST(:g AS jsonb))"
            ),
            {
                "t": tenant_id,
                "id": campaign_id,
                "c": celebrity_id,
                "bt": brand_tenant_id,
                "b": brand_id,
                "n": name,
                "s": starts_at,
                "e": ends_at,
                "fee": fee_cents,
                "cpm": cpm_cents,
                "cpc": cpc_cents,
                "st": status,
                "g": json.dumps({}),
            },
        )
    return campaign_id


async def make_brand(db: Database, unique: str) -> tuple[MadeTenant, uuid.UUID]:
    tenant = await make_tenant(db, slug=f"brand-{unique}-{uuid.uuid4().hex[:4]}", kind="BRAND")
    brand_id = uuid.uuid4()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text("INSERT INTO brands (tenant_id, id, name) VALUES (:t, :id, :n)"),
            {"t": tenant.id, "id": brand_id, "n": f"Brand {unique}"},
        )
    return tenant, brand_id


async def admin_client(app: Any, db: Database, unique: str) -> httpx.AsyncClient:
    """A signed-in platform admin's client (close the month, payouts, reports)."""
    platform = await make_tenant(db, slug=f"plat-{unique}-{uuid.uuid4().hex[:4]}", kind="PLATFORM")
    admin = await make_user(
        db, email=f"admin.{unique}.{uuid.uuid4().hex[:4]}@example.com", tenant=platform, role="PLATFORM_ADMIN"
    )
    transport = httpx.ASGITransport(
        app=app, client=(f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 50000)
    )
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    await log_in(http, admin)
    return http


async def create_tier(
    client: httpx.AsyncClient, talent: Talent, code: str, price: int, per_day: int | None
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/celebrities/{talent.celebrity_id}/pricing-tiers",
        headers=talent.headers,
        json={
            "code": code,
            "name": code.title(),
            "monthly_price_cents": price,
            "entitlements": {"messages_per_day": per_day, "premium_content": price > 0},
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def private_url(test_owner_url: URL) -> Iterator[URL]:
    """A database of this module's own: month closes touch every tenant in a database."""
    url = test_owner_url.set(database=f"{test_owner_url.database}_{uuid.uuid4().hex[:8]}")
    ensure_database(url, recreate=True)
    migrations.upgrade(url)
    yield url
    _drop(url)


@pytest.fixture(scope="module")
async def private_db(test_settings: Settings, private_url: URL) -> AsyncIterator[Database]:
    database = Database(test_settings, owner=private_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
def private_app(test_settings: Settings, private_db: Database) -> Any:
    return create_app(test_settings, db=private_db)


@pytest.fixture
async def private_client(private_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=private_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
