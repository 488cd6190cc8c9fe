"""Public pages: the portal, campaign pages, white-label hosts (routed by Host), plain 404 elsewhere."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from tests.chat.conftest import ChatTwin
from tests.deployments.conftest import create, domain
from vibethink.core.database import Database, RlsContext


async def slug_of(db: Database, twin: ChatTwin) -> str:
    async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as s:
        found: str = (
            await s.execute(text("SELECT slug FROM celebrities WHERE id = :id"), {"id": twin.celebrity_id})
        ).scalar_one()
    return found


async def add_tiers(db: Database, twin: ChatTwin) -> None:
    async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as s:
        for order, (code, name, cents) in enumerate((("FAN", "Fan Club", 499), ("VIP", "VIP", 1999))):
            await s.execute(
                text(
                    "INSERT INTO pricing_tiers (tenant_id, id, celebrity_id, code, name, monthly_price_cents,"
                    " currency, entitlements, sort_order) VALUES (:t, :id, :c, :code, :name, :cents, 'USD',"
                    " CAST(:e AS jsonb), :o)"
                ),
                {
                    "t": twin.tenant.id,
                    "id": uuid.uuid4(),
                    "c": twin.celebrity_id,
                    "code": code,
                    "name": name,
                    "cents": cents,
                    "e": '{"perks": ["Unlimited chat"]}',
                    "o": order,
                },
            )


async def brand_portal(db: Database, client: httpx.AsyncClient, twin: ChatTwin) -> None:
    await client.patch(
        f"/api/v1/deployments/{twin.portal}",
        json={
            "config": {
                "theme": {"primaryColor": "#0a3d62", "textColor": "#fefefe", "backgroundColor": "#ffffff"},
                "branding": {"tagline": "The voice of the goal", "logoUrl": "/static/logo.png"},
                "premiumContent": [
                    {"title": "Free tip", "body": "Breathe before the goal.", "tier": "FREE"},
                    {
                        "title": "VIP story",
                        "teaser": "The 1994 final",
                        "body": "SECRET-VIP-BODY",
                        "tier": "VIP",
                    },
                ],
            }
        },
        headers=twin.headers,
    )


class TestPortal:
    async def test_the_portal_shows_the_twin_its_chat_tiers_and_open_graph(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        await add_tiers(db, talent)
        await brand_portal(db, client, talent)
        slug = await slug_of(db, talent)
        response = await client.get(f"/{slug}")
        assert response.status_code == 200, response.text
        page = response.text
        assert "<h1>Leo Voice</h1>" in page
        assert '<meta property="og:title" content="Leo Voice">' in page
        assert f'<meta property="og:url" content="http://127.0.0.1:8000/{slug}">' in page
        assert "The voice of the goal" in page
        assert f'data-deployment="{talent.portal}"' in page
        assert 'data-token="vt_fan_' in page
        assert '<label for="vt-message">' in page
        assert "Fan Club" in page
        assert "$4.99" in page
        assert "$19.99" in page
        assert "--vt-primary: #0a3d62" in page
        # White text on a white background would fail contrast: the page picks a readable one.
        assert "--vt-fg: #000000" in page
        assert response.headers["cache-control"] == "private, no-store"
        assert "Powered by" in page

    async def test_premium_content_is_withheld_below_its_tier(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        await add_tiers(db, talent)
        await brand_portal(db, client, talent)
        page = (await client.get(f"/{await slug_of(db, talent)}")).text
        assert "Breathe before the goal." in page
        assert "VIP story" in page
        assert "The 1994 final" in page
        assert "SECRET-VIP-BODY" not in page

    async def test_the_portal_chat_token_works_with_the_chat_api_and_persists(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        slug = await slug_of(db, talent)
        first = await client.get(f"/{slug}")
        token = first.text.split('data-token="')[1].split('"')[0]
        started = await client.post(
            "/api/v1/chat/conversations",
            json={"deployment_id": str(talent.portal)},
            headers={"X-Fan-Token": token},
        )
        assert started.status_code == 201
        again = await client.get(f"/{slug}")
        assert f'data-token="{token}"' in again.text

    async def test_a_subscribe_click_is_a_conversion_and_leads_to_sign_in(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        await add_tiers(db, talent)
        slug = await slug_of(db, talent)
        await client.get(f"/{slug}")
        response = await client.post(f"/{slug}/subscribe", data={"tier": "VIP"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
        stats = (
            await client.get(f"/api/v1/deployments/{talent.portal}/stats", headers=talent.headers)
        ).json()
        assert stats["conversions_by_kind"] == {"SUBSCRIBE_CLICK": 1}

    async def test_unknown_or_switched_off_portals_are_not_found(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        assert (await client.get("/no-such-twin", headers={"Accept": "text/html"})).status_code == 404
        await client.post(f"/api/v1/deployments/{talent.portal}/deactivate", headers=talent.headers)
        assert (await client.get(f"/{await slug_of(db, talent)}")).status_code == 404


class TestCampaignPage:
    async def test_the_campaign_page_discloses_the_sponsor(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        await create(
            client,
            talent,
            type="BRAND_CAMPAIGN",
            name="Cola",
            slug="mundial-2026",
            config={"brandName": "Coca-Cola", "disclosure": "Paid partnership with Coca-Cola"},
        )
        response = await client.get(f"/{await slug_of(db, talent)}/c/mundial-2026")
        assert response.status_code == 200
        assert (
            '<p class="vt-banner" role="note"><strong>Paid partnership with Coca-Cola</strong></p>'
            in response.text
        )


class TestWhiteLabel:
    async def _site(self, client: httpx.AsyncClient, db: Database, twin: ChatTwin, verified: bool) -> str:
        name = domain()
        created = await create(
            client,
            twin,
            type="WHITE_LABEL",
            name="Own site",
            custom_domain=name,
            config={"branding": {"title": "Leo's Corner", "hidePlatformMarks": True}},
        )
        if verified:
            async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as s:
                await s.execute(
                    text(
                        "UPDATE deployments SET domain_verified_at = now(), status = 'ACTIVE' WHERE id = :id"
                    ),
                    {"id": created["id"]},
                )
        return name

    async def test_a_verified_domain_serves_the_talents_site_without_platform_marks(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        name = await self._site(client, db, talent, verified=True)
        response = await client.get("/", headers={"Host": name})
        assert response.status_code == 200, response.text
        assert "Leo's Corner" in response.text or "Leo&#39;s Corner" in response.text
        assert "VibeThink" not in response.text
        assert (await client.get("/static/twin.css", headers={"Host": name})).status_code == 200
        assert (await client.get("/login", headers={"Host": name})).status_code == 404
        assert (await client.get("/api/v1/deployments", headers={"Host": name})).status_code == 404

    async def test_an_unverified_domain_is_not_served_but_answers_its_token(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        name = await self._site(client, db, talent, verified=False)
        response = await client.get("/", headers={"Host": name})
        assert response.status_code == 404
        assert "VibeThink" not in response.text
        assert "Leo" not in response.text
        token = await client.get("/.well-known/vibethink-verification", headers={"Host": name})
        assert token.status_code == 200
        assert token.text.startswith("vtv_")

    async def test_an_unknown_host_gets_a_plain_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/", headers={"Host": "unknown.example.net"})
        assert response.status_code == 404
        assert response.text.startswith("<!doctype html>")
        assert "VibeThink" not in response.text

    async def test_another_talents_domain_never_shows_this_talent(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin, other_talent: ChatTwin
    ) -> None:
        mine = await self._site(client, db, talent, verified=True)
        theirs = await self._site(client, db, other_talent, verified=True)
        page = (await client.get("/", headers={"Host": theirs})).text
        assert str(other_talent.portal) not in page
        assert mine not in page
        deployment_ids = [line for line in page.split() if line.startswith("data-deployment=")]
        mine_page = (await client.get("/", headers={"Host": mine})).text
        assert deployment_ids != [line for line in mine_page.split() if line.startswith("data-deployment=")]


class TestTlsAsk:
    async def test_the_proxy_gets_a_certificate_only_for_verified_domains(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        site = TestWhiteLabel()
        verified = await site._site(client, db, talent, verified=True)
        pending = await site._site(client, db, talent, verified=False)
        assert (await client.get("/internal/tls/ask", params={"domain": verified})).status_code == 200
        assert (await client.get("/internal/tls/ask", params={"domain": pending})).status_code == 404
        assert (
            await client.get("/internal/tls/ask", params={"domain": "nobody.example.net"})
        ).status_code == 404


class TestProbes:
    async def test_health_probes_answer_on_any_host(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"Host": "10.0.0.5:8000"})
        assert response.status_code == 200


class TestCampaignConversions:
    async def test_a_subscribe_click_on_a_campaign_page_counts_for_the_campaign(
        self, client: httpx.AsyncClient, db: Database, talent: ChatTwin
    ) -> None:
        await add_tiers(db, talent)
        made = await create(
            client,
            talent,
            type="BRAND_CAMPAIGN",
            name="Cola",
            slug="cola-cup",
            config={"brandName": "Coca-Cola"},
        )
        page = await client.get(f"/{await slug_of(db, talent)}/c/cola-cup")
        assert 'action="/' in page.text
        assert "/c/cola-cup/subscribe" in page.text
        clicked = await client.post(
            f"/{await slug_of(db, talent)}/c/cola-cup/subscribe", data={"tier": "VIP"}
        )
        assert clicked.status_code == 303
        stats = (await client.get(f"/api/v1/deployments/{made['id']}/stats", headers=talent.headers)).json()
        assert stats["conversions_by_kind"] == {"SUBSCRIBE_CLICK": 1}
