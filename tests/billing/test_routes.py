"""The billing API: tiers, fans' usage and subscriptions, ledger refunds, and tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.billing.conftest import (
    Talent,
    create_tier,
    make_brand,
    make_campaign,
    make_deployment,
    make_talent,
)
from tests.factories import bearer, make_api_key, make_user
from tests.tenancy.test_routes import log_in
from vibethink.core.database import Database


async def _fan_token(http: httpx.AsyncClient, deployment_id: uuid.UUID) -> dict[str, str]:
    response = await http.post("/api/v1/chat/sessions", json={"deployment_id": str(deployment_id)})
    assert response.status_code == 201, response.text
    return {"X-Fan-Token": response.json()["token"]}


async def _signed_in_fan(app: Any, db: Database, deployment_id: uuid.UUID, unique: str) -> httpx.AsyncClient:
    user = await make_user(db, email=f"fan.{unique}.{uuid.uuid4().hex[:6]}@example.com")
    transport = httpx.ASGITransport(app=app, client=(f"10.7.{uuid.uuid4().int % 250}.9", 50000))
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    await log_in(http, user)
    http.headers.update(await _fan_token(http, deployment_id))
    http.cookies.clear()
    return http


class TestPricingTiers:
    async def test_a_talent_creates_lists_and_changes_its_tiers(
        self, client: httpx.AsyncClient, talent: Talent
    ) -> None:
        await create_tier(client, talent, "FREE", 0, 20)
        premium = await create_tier(client, talent, "PREMIUM", 1_000, 200)
        listed = await client.get(
            f"/api/v1/celebrities/{talent.celebrity_id}/pricing-tiers", headers=talent.headers
        )
        assert [t["code"] for t in listed.json()] == ["FREE", "PREMIUM"]
        changed = await client.patch(
            f"/api/v1/pricing-tiers/{premium['id']}",
            headers=talent.headers,
            json={
                "monthly_price_cents": 1_200,
                "entitlements": {"messages_per_day": None, "voice_minutes": 30},
            },
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["monthly_price_cents"] == 1_200
        assert changed.json()["entitlements"]["messages_per_day"] is None

    async def test_a_duplicate_code_is_a_clear_conflict(
        self, client: httpx.AsyncClient, talent: Talent
    ) -> None:
        await create_tier(client, talent, "VIP", 500, 50)
        again = await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/pricing-tiers",
            headers=talent.headers,
            json={"code": "VIP", "name": "Again", "monthly_price_cents": 1},
        )
        assert again.status_code == 409
        assert again.json()["error"] == {
            "code": "already_exists",
            "message": "The tier 'VIP' exists already.",
            "field": "code",
        }

    async def test_a_float_price_is_refused(self, client: httpx.AsyncClient, talent: Talent) -> None:
        response = await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/pricing-tiers",
            headers=talent.headers,
            json={"code": "GOLD", "name": "Gold", "monthly_price_cents": 9.99},
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "monthly_price_cents"


class TestFans:
    async def test_usage_shows_quota_used_remaining_and_period(
        self, client: httpx.AsyncClient, db: Database, talent: Talent
    ) -> None:
        await create_tier(client, talent, "FREE", 0, 20)
        portal = await make_deployment(db, talent.tenant.id, talent.celebrity_id)
        fan = await _fan_token(client, portal)
        usage = await client.get("/api/v1/fan/usage", headers=fan)
        assert usage.status_code == 200, usage.text
        body = usage.json()
        assert (body["tier"], body["quota"], body["used"], body["remaining"]) == ("FREE", 20, 0, 20)
        today = datetime.now(UTC).date().isoformat()
        assert body["period_start"].startswith(today)
        tiers = await client.get("/api/v1/fan/tiers", headers=fan)
        assert [t["code"] for t in tiers.json()] == ["FREE"]

    async def test_an_anonymous_fan_must_sign_in_to_subscribe(
        self, client: httpx.AsyncClient, db: Database, talent: Talent
    ) -> None:
        await create_tier(client, talent, "PREMIUM", 1_000, None)
        portal = await make_deployment(db, talent.tenant.id, talent.celebrity_id)
        response = await client.post(
            "/api/v1/fan/subscriptions",
            headers=await _fan_token(client, portal),
            json={"tier_code": "PREMIUM"},
        )
        assert response.status_code == 401

    async def test_a_signed_in_fan_subscribes_upgrades_prorated_and_cancels_at_period_end(
        self, app: Any, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        await create_tier(client, talent, "PREMIUM", 1_000, 200)
        await create_tier(client, talent, "VIP", 3_000, None)
        portal = await make_deployment(db, talent.tenant.id, talent.celebrity_id)
        fan = await _signed_in_fan(app, db, portal, unique)
        try:
            subscribed = await fan.post("/api/v1/fan/subscriptions", json={"tier_code": "PREMIUM"})
            assert subscribed.status_code == 201, subscribed.text
            subscription = subscribed.json()["subscription"]
            assert subscription["status"] == "ACTIVE"
            assert subscribed.json()["checkout_url"] is None
            twice = await fan.post("/api/v1/fan/subscriptions", json={"tier_code": "VIP"})
            assert twice.status_code == 409
            assert twice.json()["error"]["code"] == "already_subscribed"
            usage = (await fan.get("/api/v1/fan/usage")).json()
            assert (usage["tier"], usage["quota"]) == ("PREMIUM", 200)
            upgraded = await fan.post(
                f"/api/v1/fan/subscriptions/{subscription['id']}/change", json={"tier_code": "VIP"}
            )
            assert upgraded.status_code == 200, upgraded.text
            assert (await fan.get("/api/v1/fan/usage")).json()["quota"] is None
            cancelled = await fan.post(f"/api/v1/fan/subscriptions/{subscription['id']}/cancel")
            assert cancelled.json()["cancel_at_period_end"] is True
            assert cancelled.json()["status"] == "ACTIVE"
        finally:
            await fan.aclose()
        ledger = await client.get(
            f"/api/v1/celebrities/{talent.celebrity_id}/revenue-transactions", headers=talent.headers
        )
        amounts = sorted(t["gross_cents"] for t in ledger.json()["items"])
        # The upgrade charged the $20 difference for (nearly) the whole month left.
        assert amounts[0] == 1_000
        assert 1_990 <= amounts[1] <= 2_000
        assert all(
            t["celebrity_share_cents"] + t["platform_share_cents"] == t["net_cents"]
            for t in ledger.json()["items"]
        )


class TestRefunds:
    async def test_a_refund_posts_reversing_rows_that_undo_the_shares_exactly(
        self, client: httpx.AsyncClient, talent: Talent
    ) -> None:
        bought = await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/purchases",
            headers=talent.headers,
            json={
                "kind": "CONSULTATION",
                "description": "30 minutes with the talent",
                "amount_cents": 10_001,
            },
        )
        assert bought.status_code == 201, bought.text
        [paid] = (
            await client.get(
                f"/api/v1/celebrities/{talent.celebrity_id}/revenue-transactions", headers=talent.headers
            )
        ).json()["items"]
        assert (paid["type"], paid["celebrity_share_cents"], paid["platform_share_cents"]) == (
            "TRANSACTION_FEE",
            7_001,
            3_000,
        )
        for amount in (3_333, 3_333, None):
            response = await client.post(
                f"/api/v1/revenue-transactions/{paid['id']}/refund",
                headers=talent.headers,
                json={"amount_cents": amount, "reason": "partial"} if amount else {"reason": "rest"},
            )
            assert response.status_code == 201, response.text
            assert response.json()["transaction"]["reverses_id"] == paid["id"]
        rows = (
            await client.get(
                f"/api/v1/celebrities/{talent.celebrity_id}/revenue-transactions", headers=talent.headers
            )
        ).json()["items"]
        assert sum(r["gross_cents"] for r in rows) == 0
        assert sum(r["celebrity_share_cents"] for r in rows) == 0
        assert sum(r["platform_share_cents"] for r in rows) == 0
        more = await client.post(
            f"/api/v1/revenue-transactions/{paid['id']}/refund", headers=talent.headers, json={}
        )
        assert more.status_code == 409
        assert more.json()["error"]["code"] == "nothing_to_reverse"


class TestTenantIsolation:
    async def test_a_talent_never_sees_another_talents_revenue(
        self, client: httpx.AsyncClient, talent: Talent, other_talent: Talent
    ) -> None:
        await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/purchases",
            headers=talent.headers,
            json={"kind": "PREMIUM_CONTENT", "description": "Match analysis", "amount_cents": 500},
        )
        for path in (
            f"/api/v1/celebrities/{talent.celebrity_id}/revenue-transactions",
            f"/api/v1/celebrities/{talent.celebrity_id}/statements/2026-07",
            f"/api/v1/celebrities/{talent.celebrity_id}/statements/2026-07/csv",
            f"/api/v1/celebrities/{talent.celebrity_id}/pricing-tiers",
            f"/api/v1/celebrities/{talent.celebrity_id}/subscriptions",
            f"/api/v1/celebrities/{talent.celebrity_id}/payout-settings",
        ):
            response = await client.get(path, headers=other_talent.headers)
            assert response.status_code == 404, path
        [paid] = (
            await client.get(
                f"/api/v1/celebrities/{talent.celebrity_id}/revenue-transactions", headers=talent.headers
            )
        ).json()["items"]
        refund = await client.post(
            f"/api/v1/revenue-transactions/{paid['id']}/refund", headers=other_talent.headers, json={}
        )
        assert refund.status_code == 404

    async def test_a_brand_sees_only_its_own_campaign_costs(
        self, app: Any, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        from tests.billing.conftest import admin_client

        mine, my_brand = await make_brand(db, f"{unique}m")
        theirs, their_brand = await make_brand(db, f"{unique}t")
        month = datetime(2031, 3, 1, tzinfo=UTC)
        await make_campaign(
            db,
            talent.tenant.id,
            talent.celebrity_id,
            brand_tenant_id=mine.id,
            brand_id=my_brand,
            starts_at=month,
            ends_at=None,
            fee_cents=700_000,
            name="Mine",
        )
        await make_campaign(
            db,
            talent.tenant.id,
            talent.celebrity_id,
            brand_tenant_id=theirs.id,
            brand_id=their_brand,
            starts_at=month,
            ends_at=None,
            fee_cents=900_000,
            name="Theirs",
        )
        admin = await admin_client(app, db, unique)
        try:
            closed = await admin.post("/api/v1/billing/close-month", json={"month": "2031-03"})
            assert closed.status_code == 200, closed.text
        finally:
            await admin.aclose()
        brand_headers = bearer(await make_api_key(db, mine))
        costs = await client.get(
            "/api/v1/brand/campaign-costs?from=2031-03&to=2031-03", headers=brand_headers
        )
        assert costs.status_code == 200, costs.text
        assert [(c["campaign_name"], c["type"], c["gross_cents"]) for c in costs.json()] == [
            ("Mine", "CAMPAIGN_FEE", 700_000)
        ]
        statement = await client.get(
            f"/api/v1/celebrities/{talent.celebrity_id}/statements/2031-03", headers=brand_headers
        )
        assert statement.status_code == 404

    async def test_closing_a_month_is_for_platform_admins_only(
        self, client: httpx.AsyncClient, talent: Talent
    ) -> None:
        response = await client.post(
            "/api/v1/billing/close-month", headers=talent.headers, json={"month": "2026-01"}
        )
        assert response.status_code == 403


async def test_other_talent_fixture_is_distinct(db: Database, unique: str) -> None:
    a, b = await make_talent(db, unique), await make_talent(db, f"{unique}x")
    assert a.tenant.id != b.tenant.id


class TestCampaignClicks:
    async def test_a_fan_click_through_on_a_campaign_deployment_is_counted(
        self, client: httpx.AsyncClient, db: Database, talent: Talent, unique: str
    ) -> None:
        from sqlalchemy import text

        from tests.factories import ADMIN

        brand_tenant, brand = await make_brand(db, unique)
        deployment = await make_deployment(db, talent.tenant.id, talent.celebrity_id, type="BRAND_CAMPAIGN")
        campaign = await make_campaign(
            db,
            talent.tenant.id,
            talent.celebrity_id,
            brand_tenant_id=brand_tenant.id,
            brand_id=brand,
            starts_at=datetime(2026, 1, 1, tzinfo=UTC),
            ends_at=None,
            fee_cents=0,
            cpc_cents=40,
        )
        async with db.transaction(ADMIN) as s:
            await s.execute(
                text("UPDATE brand_campaigns SET deployment_id = :d WHERE id = :c"),
                {"d": deployment, "c": campaign},
            )
        fan = await _fan_token(client, deployment)
        clicked = await client.post(
            "/api/v1/fan/campaign-clicks", headers=fan, json={"target": "https://brand.test/promo"}
        )
        assert clicked.status_code == 201, clicked.text
        portal = await make_deployment(db, talent.tenant.id, talent.celebrity_id)
        elsewhere = await client.post(
            "/api/v1/fan/campaign-clicks", headers=await _fan_token(client, portal), json={}
        )
        assert elsewhere.status_code == 422
        assert elsewhere.json()["error"]["code"] == "not_a_campaign"
        async with db.transaction(ADMIN) as s:
            count = (
                await s.execute(
                    text("SELECT count(*) FROM campaign_clicks WHERE campaign_id = :c"), {"c": campaign}
                )
            ).scalar_one()
        assert count == 1


class TestTalentSubscriptionOperations:
    async def test_a_failed_renewal_goes_past_due_and_a_late_payment_renews(
        self, client: httpx.AsyncClient, talent: Talent
    ) -> None:
        await create_tier(client, talent, "PREMIUM", 1_000, None)
        started = datetime.now(UTC).replace(microsecond=0).isoformat()
        imported = await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/subscriptions/import",
            headers=talent.headers,
            json={"items": [{"subscriber": "member-1", "tier_code": "PREMIUM", "started_at": started}]},
        )
        assert imported.json() == {"created": 1, "skipped": 0}
        [subscription] = (
            await client.get(
                f"/api/v1/celebrities/{talent.celebrity_id}/subscriptions", headers=talent.headers
            )
        ).json()["items"]
        failed = await client.post(
            f"/api/v1/subscriptions/{subscription['id']}/payment-failed", headers=talent.headers
        )
        assert failed.json()["status"] == "PAST_DUE"
        assert failed.json()["grace_until"] is not None
        paid = await client.post(
            f"/api/v1/subscriptions/{subscription['id']}/renewal-paid", headers=talent.headers
        )
        assert paid.json()["status"] == "ACTIVE"
        assert paid.json()["current_period_start"] == subscription["current_period_end"]
        cancelled = await client.post(
            f"/api/v1/subscriptions/{subscription['id']}/cancel",
            headers=talent.headers,
            json={"at_period_end": False},
        )
        assert cancelled.json()["status"] == "CANCELED"
        again = await client.post(
            f"/api/v1/subscriptions/{subscription['id']}/cancel", headers=talent.headers, json={}
        )
        assert again.status_code == 409
        rows = (
            await client.get(
                f"/api/v1/celebrities/{talent.celebrity_id}/revenue-transactions", headers=talent.headers
            )
        ).json()["items"]
        assert sorted(r["gross_cents"] for r in rows) == [1_000, 1_000]

    async def test_another_talent_cannot_touch_the_subscription(
        self, client: httpx.AsyncClient, talent: Talent, other_talent: Talent
    ) -> None:
        await create_tier(client, talent, "PREMIUM", 1_000, None)
        await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/subscriptions/import",
            headers=talent.headers,
            json={
                "items": [
                    {"subscriber": "member-2", "tier_code": "PREMIUM", "started_at": "2026-01-01T00:00:00Z"}
                ]
            },
        )
        [subscription] = (
            await client.get(
                f"/api/v1/celebrities/{talent.celebrity_id}/subscriptions", headers=talent.headers
            )
        ).json()["items"]
        response = await client.post(
            f"/api/v1/subscriptions/{subscription['id']}/cancel", headers=other_talent.headers, json={}
        )
        assert response.status_code == 404
