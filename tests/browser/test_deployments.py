"""Deployments in a real browser: the widget on other sites, the portal, a campaign, a white-label site."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.browser.conftest import HostSite, LiveServer
from tests.chat.conftest import ChatTwin, make_chat_twin
from tests.deployments.conftest import create, domain
from vibethink.core.database import Database, RlsContext

pytestmark = pytest.mark.browser
REPLY = ".vt-msg.vt-twin:not(.vt-pending) >> nth=1"


def host_page(server: LiveServer, key: str, slug: str, **data: str) -> str:
    extra = "".join(f' data-{name.replace("_", "-")}="{value}"' for name, value in data.items())
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>A fan site</title>"
        "<body><h1>A fan site on another origin</h1>"
        f'<script src="{server.url}/widget.js" async></script>'
        f'<div id="vibethink-twin" data-celebrity-id="{slug}" data-theme="dark" data-position="bottom-right"'
        f' data-deployment-key="{key}"{extra}></div></body></html>'
    )


async def slug_of(db: Database, twin: ChatTwin) -> str:
    async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as s:
        found: str = (
            await s.execute(text("SELECT slug FROM celebrities WHERE id = :id"), {"id": twin.celebrity_id})
        ).scalar_one()
    return found


async def widget_state(page: Any) -> str:
    await page.wait_for_function(
        "['ready', 'refused'].includes(document.getElementById('vibethink-twin').dataset.vtState)",
        timeout=15000,
    )
    state: str = await page.eval_on_selector("#vibethink-twin", "el => el.dataset.vtState")
    return state


class TestWidget:
    async def test_a_host_page_on_an_allowed_origin_gets_a_streamed_reply(
        self,
        browser: Any,
        live_server: LiveServer,
        host_site: HostSite,
        db: Database,
        client: httpx.AsyncClient,
        artifacts: Path,
    ) -> None:
        twin = await make_chat_twin(db)
        made = await create(client, twin, allowed_origins=[host_site.origin("localhost")])
        host_site.pages["/allowed"] = host_page(live_server, made["widget_key"], await slug_of(db, twin))
        page = await browser.new_page()
        await page.goto(host_site.origin("localhost") + "/allowed")
        assert await widget_state(page) == "ready"
        await page.locator("#vibethink-twin button").click()
        frame = page.frame_locator("#vibethink-twin iframe")
        await frame.locator("#vt-message").fill("Who won the World Cup in 2022?")
        await frame.locator("form button").click()
        reply = frame.locator(REPLY)
        await reply.wait_for(timeout=15000)
        assert "2022" in await reply.inner_text()
        await page.screenshot(path=str(artifacts / "widget-allowed-origin.png"))

    async def test_a_host_page_on_another_origin_gets_no_chat_and_the_iframe_is_refused(
        self,
        browser: Any,
        live_server: LiveServer,
        host_site: HostSite,
        db: Database,
        client: httpx.AsyncClient,
        artifacts: Path,
    ) -> None:
        twin = await make_chat_twin(db)
        made = await create(client, twin, allowed_origins=[host_site.origin("localhost")])
        slug = await slug_of(db, twin)
        host_site.pages["/elsewhere"] = host_page(live_server, made["widget_key"], slug) + (
            f'<iframe id="forced" src="{live_server.url}/widget/frame/{made["widget_key"]}"></iframe>'
        )
        page = await browser.new_page()
        await page.goto(host_site.origin("127.0.0.1") + "/elsewhere")  # 127.0.0.1 is not localhost
        assert await widget_state(page) == "refused"
        assert await page.locator("#vibethink-twin button").count() == 0
        await page.wait_for_timeout(500)
        forced = next(f for f in page.frames if f != page.main_frame)
        # frame-ancestors: the browser refuses to render the chat inside this origin.
        assert forced.url.startswith("chrome-error://") or not await forced.locator("[data-vt-chat]").count()
        await page.screenshot(path=str(artifacts / "widget-refused-origin.png"))

    @pytest.mark.parametrize("tampered", [False, True])
    async def test_identity_verified_users_chat_and_tampered_signatures_are_refused(
        self,
        browser: Any,
        live_server: LiveServer,
        host_site: HostSite,
        db: Database,
        client: httpx.AsyncClient,
        artifacts: Path,
        tampered: bool,
    ) -> None:
        twin = await make_chat_twin(db)
        made = await create(
            client, twin, allowed_origins=[host_site.origin("localhost")], require_identity=True
        )
        secret = (
            await client.post(f"/api/v1/deployments/{made['id']}/identity-secret", headers=twin.headers)
        ).json()["secret"]
        signature = hmac.new(secret.encode(), b"member-7", hashlib.sha256).hexdigest()
        if tampered:
            signature = signature[::-1]
        path = f"/identity-{'tampered' if tampered else 'signed'}"
        host_site.pages[path] = host_page(
            live_server,
            made["widget_key"],
            await slug_of(db, twin),
            user_id="member-7",
            user_signature=signature,
        )
        page = await browser.new_page()
        await page.goto(host_site.origin("localhost") + path)
        state = await widget_state(page)
        await page.screenshot(
            path=str(artifacts / f"widget-identity-{'tampered' if tampered else 'signed'}.png")
        )
        assert state == ("refused" if tampered else "ready")
        if not tampered:
            await page.locator("#vibethink-twin button").click()
            frame = page.frame_locator("#vibethink-twin iframe")
            await frame.locator("#vt-message").fill("Which boots did Messi wear?")
            await frame.locator("form button").click()
            await frame.locator(REPLY).wait_for(timeout=15000)


class TestPages:
    async def test_the_portal_chat_streams_a_reply(
        self, browser: Any, live_server: LiveServer, db: Database, artifacts: Path
    ) -> None:
        twin = await make_chat_twin(db)
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        await page.goto(f"{live_server.url}/{await slug_of(db, twin)}")
        await page.get_by_label("Your message").fill("Who won the World Cup in 2022?")
        await page.keyboard.press("Enter")
        reply = page.locator(REPLY)
        await reply.wait_for(timeout=15000)
        assert "2022" in await reply.inner_text()
        await page.screenshot(path=str(artifacts / "portal-phone-chat.png"), full_page=True)

    async def test_the_campaign_page_shows_the_sponsor_disclosure(
        self, browser: Any, live_server: LiveServer, db: Database, client: httpx.AsyncClient, artifacts: Path
    ) -> None:
        twin = await make_chat_twin(db)
        await create(
            client,
            twin,
            type="BRAND_CAMPAIGN",
            name="Cola",
            slug="mundial-2026",
            config={"brandName": "Coca-Cola", "disclosure": "Paid partnership with Coca-Cola"},
        )
        page = await browser.new_page()
        await page.goto(f"{live_server.url}/{await slug_of(db, twin)}/c/mundial-2026")
        assert await page.get_by_role("note").first.inner_text() == "Paid partnership with Coca-Cola"
        await page.get_by_label("Your message").fill("Who has sponsored the World Cup since 1978?")
        await page.get_by_role("button", name="Send").click()
        await page.locator(".vt-sponsor").wait_for(timeout=15000)
        assert await page.locator(".vt-sponsor").inner_text() == "Paid partnership with Coca-Cola"
        await page.screenshot(path=str(artifacts / "campaign-disclosure.png"), full_page=True)

    async def test_a_white_label_host_shows_the_talents_branding_and_no_platform_marks(
        self, browser: Any, live_server: LiveServer, db: Database, client: httpx.AsyncClient, artifacts: Path
    ) -> None:
        twin = await make_chat_twin(db)
        name = domain()
        made = await create(
            client,
            twin,
            type="WHITE_LABEL",
            custom_domain=name,
            config={
                "theme": {"primaryColor": "#7a1f5c"},
                "branding": {"title": "Leo's Corner", "tagline": "Football talk, every day"},
            },
        )
        async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as s:
            await s.execute(
                text("UPDATE deployments SET domain_verified_at = now(), status = 'ACTIVE' WHERE id = :id"),
                {"id": made["id"]},
            )
        page = await browser.new_page()
        await page.goto(f"http://{name}:{live_server.port}/")
        assert await page.locator("h1").inner_text() == "Leo's Corner"
        assert "VibeThink" not in await page.content()
        assert "VibeThink" not in await page.title()
        await page.get_by_label("Your message").fill("Who won the World Cup in 2022?")
        await page.keyboard.press("Enter")
        await page.locator(REPLY).wait_for(timeout=15000)
        await page.screenshot(path=str(artifacts / "white-label.png"), full_page=True)
        unknown = await browser.new_page()
        response = await unknown.goto(f"http://nobody.{name}:{live_server.port}/")
        assert response is not None
        assert response.status == 404
