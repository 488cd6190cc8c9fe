"""The talent's revenue dashboard in a real browser: sign in, open the month, see shares and trend."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.billing.conftest import make_talent
from tests.browser.conftest import LiveServer
from tests.factories import PASSWORD, MadeTenant, make_user
from vibethink.core.database import Database

pytestmark = pytest.mark.browser


class TestRevenueDashboard:
    async def test_the_owner_signs_in_and_reads_this_months_revenue(
        self,
        browser: Any,
        live_server: LiveServer,
        db: Database,
        client: httpx.AsyncClient,
        artifacts: Path,
        unique: str,
    ) -> None:
        talent = await make_talent(db, unique)
        bought = await client.post(
            f"/api/v1/celebrities/{talent.celebrity_id}/purchases",
            headers=talent.headers,
            json={"kind": "CONSULTATION", "description": "Coaching call", "amount_cents": 25_000},
        )
        assert bought.status_code == 201, bought.text
        owner = await make_user(
            db,
            email=f"owner.{uuid.uuid4().hex[:8]}@example.com",
            tenant=MadeTenant(talent.tenant.id, talent.tenant.slug),
        )
        page = await browser.new_page()
        await page.goto(f"{live_server.url}/login?next=/studio/{talent.tenant.slug}/revenue")
        await page.fill("#email", owner.email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"**/studio/{talent.tenant.slug}/revenue")
        share = page.locator("[data-testid=celebrity-share]").first
        assert (await share.inner_text()).strip() == "$175.00"
        assert (await page.locator("[data-testid=platform-share]").first.inner_text()).strip() == "$75.00"
        assert await page.locator("svg.chart rect").count() == 12
        assert await page.get_by_text("One-time purchases").count() >= 1
        await page.screenshot(path=str(artifacts / "revenue-dashboard.png"), full_page=True)
        await page.close()
