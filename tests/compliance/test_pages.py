"""The settings panel and the dashboard, through the pages a signed-in member uses."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx

from tests.factories import PASSWORD, make_tenant, make_user
from tests.tenancy.test_pages import csrf_of, sign_in_form
from vibethink.core.database import Database


@asynccontextmanager
async def signed_in(app: object, db: Database, tier: str) -> AsyncIterator[httpx.AsyncClient]:
    tenant = await make_tenant(db, slug=f"cxp-{uuid.uuid4().hex[:8]}", tier=tier)
    user = await make_user(db, email=f"cx.{uuid.uuid4().hex[:8]}@example.com", tenant=tenant)
    transport = httpx.ASGITransport(
        app=app, client=(f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", 50000)
    )  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await sign_in_form(http, user.email, PASSWORD)).status_code == 303
        yield http


class TestSettingsPanel:
    async def test_signed_out_visitors_are_sent_to_sign_in(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/compliance/settings")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/compliance/settings"

    async def test_a_free_tenant_sees_which_plan_each_framework_needs(
        self, app: object, db: Database
    ) -> None:
        async with signed_in(app, db, "FREE") as http:
            page = await http.get("/compliance/settings")
        assert page.status_code == 200
        assert re.search(r'value="GDPR" checked', page.text)
        assert "⚠ Requires Professional plan" in page.text  # ISO 27001, CMMI …
        assert "⚠ Requires Enterprise plan" in page.text  # SOC 2, HIPAA, PCI DSS
        assert re.search(r'value="ISO_27001"\s+disabled', page.text)

    async def test_saving_enables_frameworks_and_a_refusal_names_the_plan(
        self, app: object, db: Database
    ) -> None:
        async with signed_in(app, db, "PROFESSIONAL") as http:
            page = await http.get("/compliance/settings")
            form = {
                "csrf_token": csrf_of(page.text),
                "frameworks": ["GDPR", "ISO_27001", "CMMI_ML3"],
                "auto_generation": "on",
                "signing_enabled": "on",
                "retention_years": "3",
                "report_frequency": "MONTHLY",
                "report_recipients": "compliance@company.com\nlegal@company.com",
            }
            saved = await http.post("/compliance/settings", data=form)
            assert saved.status_code == 303
            after = await http.get("/compliance/settings?saved=1")
            assert "Settings saved." in after.text
            assert re.search(r'value="ISO_27001" checked', after.text)
            assert "legal@company.com" in after.text
            refused = await http.post("/compliance/settings", data={**form, "frameworks": ["SOC2_TYPE2"]})
            assert refused.status_code == 422
            assert "needs the ENTERPRISE plan" in refused.text
            forged = await http.post("/compliance/settings", data={**form, "csrf_token": "nope"})
            assert forged.status_code == 403


class TestDashboard:
    async def test_it_shows_each_framework_with_coverage_recent_evidence_and_critical_gaps(
        self, app: object, db: Database
    ) -> None:
        async with signed_in(app, db, "ENTERPRISE") as http:
            page = await http.get("/compliance/settings")
            await http.post(
                "/compliance/settings",
                data={
                    "csrf_token": csrf_of(page.text),
                    "frameworks": ["ISO_27001", "GDPR"],
                    "retention_years": "7",
                    "auto_generation": "on",
                    "signing_enabled": "on",
                    "report_frequency": "MONTHLY",
                },
            )
            event = {
                "eventType": "CODE_DEPLOYMENT",
                "timestamp": datetime.now(UTC).isoformat(),
                "payload": {"environment": "PRODUCTION", "approvals": []},
            }
            sent = await http.post("/api/v1/compliance/events", json={"events": [event]})
            assert sent.status_code == 201, sent.text
            dashboard = await http.get("/compliance")
            assert dashboard.status_code == 200
            assert 'data-framework="ISO_27001"' in dashboard.text
            assert "Coverage" in dashboard.text
            assert (
                "Code Deployment → Change approved and tested before production deploy (FAIL"
                in dashboard.text
            )
            assert "A.8.32" in dashboard.text  # a critical gap
            assert "compliant" not in dashboard.text.lower().replace("compliance", "")
            pdf = await http.post(
                "/compliance/report", data={"csrf_token": csrf_of(dashboard.text), "framework": "ISO_27001"}
            )
            assert pdf.status_code == 200
            assert pdf.content.startswith(b"%PDF")
