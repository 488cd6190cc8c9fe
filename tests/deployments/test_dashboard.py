"""Dashboard pages: a talent team manages deployments and decides campaign requests; a brand requests."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from tests.campaigns.conftest import make_brand
from tests.chat.conftest import ChatTwin, make_chat_twin
from tests.factories import PASSWORD, MadeTenant, make_user
from vibethink.core.database import Database


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


@asynccontextmanager
async def signed_in(app: FastAPI, email: str) -> AsyncIterator[httpx.AsyncClient]:
    ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        page = await http.get("/login")
        form = {"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        done = await http.post("/login", data=form)
        assert done.status_code == 303, done.text
        yield http


async def talent_member(db: Database, twin: ChatTwin) -> str:
    email = f"owner.{uuid.uuid4().hex[:8]}@example.com"
    await make_user(db, email=email, tenant=twin.tenant, role="TALENT_OWNER")
    return email


class TestStudioDeployments:
    async def test_a_talent_creates_a_widget_copies_its_code_and_switches_it(
        self, app: FastAPI, db: Database
    ) -> None:
        twin = await make_chat_twin(db)
        async with signed_in(app, await talent_member(db, twin)) as http:
            path = f"/studio/{twin.tenant.slug}/deployments"
            page = await http.get(path)
            assert page.status_code == 200
            created = await http.post(
                path,
                data={
                    "csrf_token": csrf_of(page.text),
                    "celebrity_id": str(twin.celebrity_id),
                    "type": "EMBEDDED_WIDGET",
                    "name": "Club website",
                    "allowed_origins": "https://club.example.com\n*.fans.example.com",
                    "mode": "dark",
                    "primary_color": "#123456",
                },
            )
            assert created.status_code == 303
            assert "done=" in created.headers["location"]
            listing = await http.get(path)
            assert "Club website" in listing.text
            assert (
                "data-deployment-key=&#34;vtw_" in listing.text or 'data-deployment-key="vtw_' in listing.text
            )
            assert "Copy embed code" in listing.text
            widget_id = re.search(
                r"/deployments/([0-9a-f-]{36})/preview", listing.text.split("Club website")[1]
            )
            assert widget_id
            preview = await http.get(f"{path}/{widget_id.group(1)}/preview")
            assert "/widget/frame/vtw_" in preview.text
            off = await http.post(
                f"{path}/{widget_id.group(1)}/deactivate", data={"csrf_token": csrf_of(page.text)}
            )
            assert "done=" in off.headers["location"]

    async def test_a_refusal_is_shown_and_nothing_is_kept(self, app: FastAPI, db: Database) -> None:
        twin = await make_chat_twin(db)
        async with signed_in(app, await talent_member(db, twin)) as http:
            path = f"/studio/{twin.tenant.slug}/deployments"
            page = await http.get(path)
            refused = await http.post(
                path,
                data={
                    "csrf_token": csrf_of(page.text),
                    "celebrity_id": str(twin.celebrity_id),
                    "type": "EMBEDDED_WIDGET",
                    "name": "Bad origins",
                    "allowed_origins": "*",
                },
            )
            assert "error=" in refused.headers["location"]
            assert "Bad origins" not in (await http.get(path)).text

    async def test_forms_need_the_csrf_token_and_strangers_see_nothing(
        self, app: FastAPI, db: Database
    ) -> None:
        twin, other = await make_chat_twin(db), await make_chat_twin(db)
        async with signed_in(app, await talent_member(db, twin)) as http:
            forged = await http.post(
                f"/studio/{twin.tenant.slug}/deployments",
                data={"celebrity_id": str(twin.celebrity_id), "type": "EMBEDDED_WIDGET", "name": "x"},
            )
            assert forged.status_code == 403
            assert (await http.get(f"/studio/{other.tenant.slug}/deployments")).status_code == 404
        anonymous = await (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        ).get(f"/studio/{twin.tenant.slug}/deployments")
        assert anonymous.status_code == 303


class TestCampaignPages:
    async def test_a_brand_requests_and_the_talent_previews_and_approves(
        self, app: FastAPI, db: Database
    ) -> None:
        twin = await make_chat_twin(db)
        brand = await make_brand(db, "Coca-Cola")
        brand_email = f"brand.{uuid.uuid4().hex[:8]}@example.com"
        await make_user(db, email=brand_email, tenant=MadeTenant(brand.tenant_id, ""), role="BRAND_MANAGER")
        from sqlalchemy import text

        from tests.factories import ADMIN

        async with db.transaction(ADMIN) as s:
            brand_slug = (
                await s.execute(text("SELECT slug FROM tenants WHERE id = :id"), {"id": brand.tenant_id})
            ).scalar_one()
            twin_slug = (
                await s.execute(
                    text("SELECT slug FROM celebrities WHERE id = :id"), {"id": twin.celebrity_id}
                )
            ).scalar_one()
        async with signed_in(app, brand_email) as http:
            page = await http.get(f"/brand/{brand_slug}")
            assert page.status_code == 200
            sent = await http.post(
                f"/brand/{brand_slug}/campaigns",
                data={
                    "csrf_token": csrf_of(page.text),
                    "celebrity_slug": twin_slug,
                    "campaign_name": "Mundial 2026",
                    "starts_at": "2026-01-01T00:00",
                    "ends_at": "2030-01-01T00:00",
                    "category": "beverages",
                    "fee": "50000.00",
                    "competitors": "Pepsi",
                    "mention_rules": "Mention Coca-Cola positively when relevant",
                },
            )
            assert "done=" in sent.headers["location"], sent.headers["location"]
            assert "Mundial 2026" in (await http.get(f"/brand/{brand_slug}")).text
        async with signed_in(app, await talent_member(db, twin)) as http:
            listing = await http.get(f"/studio/{twin.tenant.slug}/campaigns")
            assert "Mundial 2026" in listing.text
            assert "5000000" not in listing.text
            assert "50000.00 USD" in listing.text
            campaign_id = re.search(r"/campaigns/([0-9a-f-]{36})/approve", listing.text)
            assert campaign_id
            preview = await http.get(f"/studio/{twin.tenant.slug}/campaigns/{campaign_id.group(1)}/preview")
            assert preview.status_code == 200
            assert "Pepsi" in preview.text
            assert "Leaked" not in preview.text
            approved = await http.post(
                f"/studio/{twin.tenant.slug}/campaigns/{campaign_id.group(1)}/approve",
                data={"csrf_token": csrf_of(listing.text), "note": "Welcome"},
            )
            assert "done=" in approved.headers["location"]
            assert "Active" in (await http.get(f"/studio/{twin.tenant.slug}/campaigns")).text
