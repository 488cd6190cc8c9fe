"""Revenue dashboard pages: the talent's month, trend and sources; the admin's platform report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.billing.conftest import Talent, admin_client, create_tier
from tests.factories import make_user
from tests.tenancy.test_routes import log_in
from vibethink.core.database import Database


async def _owner_client(app: Any, db: Database, talent: Talent) -> httpx.AsyncClient:
    from tests.factories import MadeTenant

    owner = await make_user(
        db,
        email=f"owner.{uuid.uuid4().hex[:8]}@example.com",
        tenant=MadeTenant(talent.tenant.id, talent.tenant.slug),
    )
    transport = httpx.ASGITransport(app=app, client=(f"10.8.{uuid.uuid4().int % 250}.3", 50000))
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    await log_in(http, owner, tenant=talent.tenant.slug)
    return http


class TestTalentRevenuePage:
    async def test_shows_this_month_the_trend_sources_and_tiers(
        self, app: Any, client: httpx.AsyncClient, db: Database, talent: Talent
    ) -> None:
        await create_tier(client, talent, "PREMIUM", 1_000, 200)
        await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/purchases",
            headers=talent.headers,
            json={"kind": "CONSULTATION", "description": "Coaching call", "amount_cents": 25_000},
        )
        owner = await _owner_client(app, db, talent)
        try:
            page = await owner.get(f"/studio/{talent.tenant.slug}/revenue", headers={"accept": "text/html"})
            assert page.status_code == 200, page.text
            html = page.text
            assert "$250.00" in html  # gross
            assert "$175.00" in html  # the celebrity's 70 %
            assert "$75.00" in html
            assert "One-time purchases" in html
            assert "<svg" in html
            assert html.count("<rect") == 12
            assert "Premium" in html
            assert "200 messages/day" in html
            month = datetime.now(UTC).strftime("%Y-%m")
            csv = await owner.get(f"/api/v1/celebrities/{talent.celebrity_id}/statements/{month}/csv")
            assert csv.status_code == 200
            assert "250.00" in csv.text
        finally:
            await owner.aclose()

    async def test_a_signed_out_visitor_is_sent_to_sign_in(
        self, client: httpx.AsyncClient, talent: Talent
    ) -> None:
        page = await client.get(f"/studio/{talent.tenant.slug}/revenue")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")

    async def test_another_talents_revenue_page_is_not_found(
        self, app: Any, db: Database, talent: Talent, other_talent: Talent
    ) -> None:
        owner = await _owner_client(app, db, talent)
        try:
            page = await owner.get(f"/studio/{other_talent.tenant.slug}/revenue")
            assert page.status_code == 404
        finally:
            await owner.aclose()


class TestAdminRevenuePage:
    async def test_the_admin_sees_streams_and_talents_and_a_talent_owner_cannot(
        self, app: Any, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/purchases",
            headers=talent.headers,
            json={"kind": "PREMIUM_CONTENT", "description": "Match notes", "amount_cents": 1_000},
        )
        admin = await admin_client(app, db, unique)
        try:
            page = await admin.get("/admin/revenue")
            assert page.status_code == 200, page.text
            assert "transaction fee" in page.text
            assert "Test Talent" in page.text
        finally:
            await admin.aclose()
        owner = await _owner_client(app, db, talent)
        try:
            assert (await owner.get("/admin/revenue")).status_code == 403
        finally:
            await owner.aclose()
