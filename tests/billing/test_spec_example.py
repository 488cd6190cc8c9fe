"""The spec's example revenue calculation, through the API, with 10,000 real subscription records.

Andrés Cantor (demo): 10,000 fans × $10/month portal subscriptions, a 3-month $50,000 Coca-Cola
campaign and the $500/month embedded widget, under the offline ledger provider (no processing fees).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from tests.billing.conftest import admin_client, make_campaign, make_deployment
from tests.factories import ADMIN, MadeTenant, bearer, make_api_key
from vibethink import demo
from vibethink.core.database import Database

FANS = 10_000
JUNE = datetime(2026, 6, 1, tzinfo=UTC)
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)


async def _andres(db: Database) -> tuple[MadeTenant, Any, Any, Any]:
    async with db.transaction(ADMIN) as s:
        andres = (
            await s.execute(text("SELECT tenant_id, id FROM celebrities WHERE slug = 'andres-cantor'"))
        ).one()
        coke = (
            await s.execute(
                text(
                    "SELECT b.tenant_id, b.id FROM brands b JOIN tenants t ON t.id = b.tenant_id"
                    " WHERE t.slug = 'coca-cola'"
                )
            )
        ).one()
    return MadeTenant(andres.tenant_id, "andres-cantor"), andres.id, coke.tenant_id, coke.id


def _total(statement: dict[str, Any]) -> dict[str, Any]:
    [total] = statement["totals"]
    assert total["currency"] == "USD"
    return dict(total)


class TestTheSpecsExampleRevenueCalculation:
    async def test_month_one_and_the_three_months_read_exactly(
        self, private_db: Database, private_app: Any, private_client: httpx.AsyncClient, test_settings: Any
    ) -> None:
        await demo.load(test_settings, db=private_db)
        tenant, celebrity_id, coke_tenant, coke_brand = await _andres(private_db)
        headers = bearer(await make_api_key(private_db, tenant))
        http = private_client

        tiers = (await http.get(f"/api/v1/celebrities/{celebrity_id}/pricing-tiers", headers=headers)).json()
        premium = next(t for t in tiers if t["code"] == "PREMIUM")
        assert (premium["monthly_price_cents"], premium["currency"]) == (1_000, "USD")

        for batch in range(0, FANS, 2_000):
            items = [
                {"subscriber": f"member-{n:05d}", "tier_code": "PREMIUM", "started_at": JUNE.isoformat()}
                for n in range(batch, batch + 2_000)
            ]
            response = await http.post(
                f"/api/v1/celebrities/{celebrity_id}/subscriptions/import",
                headers=headers,
                json={"items": items},
            )
            assert response.status_code == 201, response.text
            assert response.json() == {"created": 2_000, "skipped": 0}

        await make_deployment(
            private_db,
            tenant.id,
            celebrity_id,
            type="EMBEDDED_WIDGET",
            starts_at=JUNE,
            name="andrescantor.com",
        )
        await make_campaign(
            private_db,
            tenant.id,
            celebrity_id,
            brand_tenant_id=coke_tenant,
            brand_id=coke_brand,
            starts_at=JUNE,
            ends_at=SEPTEMBER,
            fee_cents=5_000_000,
            name="Coca-Cola Mundial 2026",
        )

        admin = await admin_client(private_app, private_db, "spec")
        try:
            for month in ("2026-06", "2026-07", "2026-08"):
                closed = await admin.post("/api/v1/billing/close-month", json={"month": month})
                assert closed.status_code == 200, closed.text
                assert closed.json()["renewed"] == FANS
            again = await admin.post("/api/v1/billing/close-month", json={"month": "2026-06"})
            assert again.json() == {
                "month": "2026-06",
                "renewed": 0,
                "expired": 0,
                "deployment_fees": 0,
                "campaign_postings": 0,
            }
        finally:
            await admin.aclose()

        statements = {}
        for month in ("2026-06", "2026-07", "2026-08"):
            response = await http.get(
                f"/api/v1/celebrities/{celebrity_id}/statements/{month}", headers=headers
            )
            assert response.status_code == 200, response.text
            statements[month] = response.json()
            assert statements[month]["is_balanced"] is True

        june = _total(statements["2026-06"])
        assert june["celebrity_share_cents"] == 8_333_334  # $83,333.34
        assert june["platform_share_cents"] == 3_383_333  # $33,833.33
        assert june["gross_cents"] == june["net_cents"] == 11_716_667  # $117,166.67, nothing lost
        assert june["fee_cents"] == 0

        by_type = {line["type"]: line["amounts"] for line in statements["2026-06"]["by_type"]}
        assert by_type["SUBSCRIPTION"]["count"] == FANS
        assert (
            by_type["SUBSCRIPTION"]["celebrity_share_cents"],
            by_type["SUBSCRIPTION"]["platform_share_cents"],
        ) == (
            7_000_000,
            3_000_000,
        )
        assert (
            by_type["CAMPAIGN_FEE"]["celebrity_share_cents"],
            by_type["CAMPAIGN_FEE"]["platform_share_cents"],
        ) == (
            1_333_334,
            333_333,
        )
        assert (
            by_type["PLATFORM_FEE"]["celebrity_share_cents"],
            by_type["PLATFORM_FEE"]["platform_share_cents"],
        ) == (
            0,
            50_000,
        )
        sources = {line["source"] for line in statements["2026-06"]["lines"]}
        assert {
            "Fan subscriptions",
            "Brand campaign: Coca-Cola Mundial 2026",
            "Deployment: andrescantor.com",
        } <= sources

        totals = [_total(s) for s in statements.values()]
        assert sum(t["celebrity_share_cents"] for t in totals) == 25_000_000  # $250,000.00
        assert sum(t["platform_share_cents"] for t in totals) == 10_150_000  # $101,500.00
        campaign = [
            {line["type"]: line["amounts"] for line in s["by_type"]}["CAMPAIGN_FEE"]
            for s in statements.values()
        ]
        assert sum(c["gross_cents"] for c in campaign) == 5_000_000
        assert sum(c["celebrity_share_cents"] for c in campaign) == 4_000_000

        csv = await http.get(f"/api/v1/celebrities/{celebrity_id}/statements/2026-06/csv", headers=headers)
        assert csv.status_code == 200
        assert csv.headers["content-type"].startswith("text/csv")
        assert "2026-06,TOTAL,,USD,10002,117166.67,0.00,117166.67,83333.34,33833.33\n" in csv.text
        pdf = await http.get(f"/api/v1/celebrities/{celebrity_id}/statements/2026-06/pdf", headers=headers)
        assert pdf.status_code == 200
        assert pdf.content.startswith(b"%PDF")
