"""Campaign fixtures: a talent with a live twin, brands with API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.chat.conftest import ChatTwin, client_for, fresh_twin_cache, make_chat_twin
from tests.factories import ADMIN, bearer, make_api_key, make_tenant
from vibethink.core.database import Database, RlsContext
from vibethink.deployments import resolver

__all__ = ["client_for", "fresh_twin_cache"]


@dataclass
class MadeBrand:
    tenant_id: uuid.UUID
    brand_id: uuid.UUID
    name: str
    headers: dict[str, str]


async def make_brand(db: Database, name: str, category: str = "beverages") -> MadeBrand:
    tenant = await make_tenant(db, slug=f"brand-{uuid.uuid4().hex[:10]}", kind="BRAND", name=name)
    brand_id = uuid.uuid4()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text("INSERT INTO brands (tenant_id, id, name, category) VALUES (:t, :id, :n, :c)"),
            {"t": tenant.id, "id": brand_id, "n": name, "c": category},
        )
    return MadeBrand(tenant.id, brand_id, name, bearer(await make_api_key(db, tenant)))


@pytest.fixture(autouse=True)
def fresh_resolver_cache() -> Any:
    resolver.cache.clear()
    yield
    resolver.cache.clear()


@pytest.fixture
async def talent(db: Database) -> ChatTwin:
    return await make_chat_twin(db)


async def slug_of(db: Database, twin: ChatTwin) -> str:
    async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as s:
        found: str = (
            await s.execute(text("SELECT slug FROM celebrities WHERE id = :id"), {"id": twin.celebrity_id})
        ).scalar_one()
    return found


def days(n: float) -> str:
    return (datetime.now(UTC) + timedelta(days=n)).isoformat()


async def request_campaign(
    client: httpx.AsyncClient, brand: MadeBrand, slug: str, expected: int = 201, **body: Any
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "celebrity_slug": slug,
        "campaign_name": f"{brand.name} World Cup",
        "starts_at": days(-1),
        "ends_at": days(30),
        "fee_cents": 5_000_000,
        "cpm_cents": 1_200,
        "cpc_cents": 35,
        "category": "beverages",
        "guidelines": {
            "mention_rules": [f"Mention {brand.name} positively when relevant"],
            "competitors": ["Pepsi"],
            "themes": ["football", "celebration"],
        },
    }
    payload.update(body)
    response = await client.post("/api/v1/brand/campaigns", json=payload, headers=brand.headers)
    assert response.status_code == expected, response.text
    result: dict[str, Any] = response.json()
    return result
