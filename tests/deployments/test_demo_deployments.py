"""Every demo talent has a themed portal with tiers and an embeddable widget, all valid."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tests.factories import ADMIN
from vibethink import demo
from vibethink.core.database import Database
from vibethink.core.settings import Settings
from vibethink.talent import schema_registry


class TestDemoDeployments:
    async def test_each_demo_talent_has_a_live_portal_and_widget(
        self, db: Database, test_settings: Settings, client: httpx.AsyncClient
    ) -> None:
        report = await demo.load(test_settings, db=db)
        assert set(report.widgets) == {t.slug for t in demo.TALENTS}
        async with db.transaction(ADMIN) as s:
            schema = await schema_registry.active_schema(s, "deployment_config")
            rows = (
                (
                    await s.execute(
                        text(
                            "SELECT d.config FROM deployments d JOIN celebrities c"
                            " ON c.tenant_id = d.tenant_id AND c.id = d.celebrity_id WHERE c.slug = ANY(:s)"
                        ),
                        {"s": [t.slug for t in demo.TALENTS]},
                    )
                )
                .scalars()
                .all()
            )
        assert rows
        for config in rows:
            assert schema_registry.problems(schema, config, column="config") == []
        for talent in demo.TALENTS:
            page = await client.get(f"/{talent.slug}")
            assert page.status_code == 200, page.text
            assert "Premium" in page.text
            session = await client.post(
                "/api/v1/widget/sessions",
                json={"deployment_key": report.widgets[talent.slug]},
                headers={"Origin": "http://localhost:8001"},
            )
            assert session.status_code == 201, session.text
        assert "Widget keys" in report.describe("http://127.0.0.1:8000")

    async def test_andres_has_a_live_coca_cola_campaign_and_a_pending_nike_request(
        self, db: Database, test_settings: Settings, client: httpx.AsyncClient
    ) -> None:
        await demo.load(test_settings, db=db)
        async with db.transaction(ADMIN) as s:
            rows = (
                await s.execute(
                    text(
                        "SELECT b.brand_name, b.status::text, b.slug FROM brand_campaigns b"
                        " JOIN celebrities c ON c.tenant_id = b.tenant_id AND c.id = b.celebrity_id"
                        " WHERE c.slug = 'andres-cantor' ORDER BY b.brand_name"
                    )
                )
            ).all()
        assert [(r.brand_name, r.status) for r in rows] == [("Coca-Cola", "APPROVED"), ("Nike", "REQUESTED")]
        page = await client.get(f"/andres-cantor/c/{rows[0].slug}")
        assert page.status_code == 200
        assert "Paid partnership with Coca-Cola" in page.text
