"""The compliance settings panel and dashboard in a real browser."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveServer
from tests.factories import PASSWORD, bearer, make_api_key, make_tenant, make_user
from vibethink.core.database import Database

pytestmark = pytest.mark.browser


class TestComplianceInTheBrowser:
    async def test_a_member_enables_frameworks_and_sees_readiness_on_the_dashboard(
        self, browser: Any, live_server: LiveServer, db: Database, artifacts: Path
    ) -> None:
        import httpx

        tenant = await make_tenant(
            db, slug=f"cxb-{uuid.uuid4().hex[:8]}", tier="ENTERPRISE", name="Brand Compliance"
        )
        user = await make_user(db, email=f"cxb.{uuid.uuid4().hex[:8]}@example.com", tenant=tenant)
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{live_server.url}/compliance/settings")
        await page.fill("#email", user.email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{live_server.url}/compliance/settings")
        assert await page.is_checked("input[value=GDPR]")
        for code in ("ISO_27001", "SOC2_TYPE2", "CMMI_ML3"):
            await page.check(f"input[value={code}]")
        await page.fill("textarea[name=report_recipients]", "compliance@company.com")
        await page.click("text=Save Changes")
        await page.wait_for_selector("text=Settings saved.")
        assert await page.is_checked("input[value=ISO_27001]")
        await page.screenshot(path=str(artifacts / "compliance-settings.png"), full_page=True)

        key = await make_api_key(db, tenant)
        event = {
            "eventType": "CODE_DEPLOYMENT",
            "timestamp": datetime.now(UTC).isoformat(),
            "actor": {"userId": "john.doe@vibethink.com"},
            "payload": {
                "version": "v2.3.1",
                "environment": "PRODUCTION",
                "approvals": [{"userId": "a@x.com"}, {"userId": "b@x.com"}],
                "qualityGates": {"tests": "PASSED", "securityScan": "PASSED"},
                "rollbackPlan": "docs/runbooks/rollback.md",
            },
        }
        async with httpx.AsyncClient(base_url=live_server.url) as api:
            sent = await api.post("/api/v1/compliance/events", json={"events": [event]}, headers=bearer(key))
            assert sent.status_code == 201, sent.text

        await page.goto(f"{live_server.url}/compliance")
        iso = page.locator("article[data-framework=ISO_27001]")
        await iso.wait_for()
        score = await iso.locator("[data-testid=score]").inner_text()
        assert score.startswith("Readiness ")
        assert float(score.removeprefix("Readiness ").rstrip("%")) > 0
        assert "Coverage" in await iso.inner_text()
        recent = await page.locator("[data-testid=recent]").inner_text()
        assert "Code Deployment" in recent
        assert await page.locator("article[data-framework=SOC2_TYPE2]").count() == 1
        await page.screenshot(path=str(artifacts / "compliance-dashboard.png"), full_page=True)
        async with page.expect_download() as download_info:
            await iso.locator("text=Export Report").click()
        download = await download_info.value
        assert download.suggested_filename.startswith("readiness-ISO_27001-")
        await context.close()
