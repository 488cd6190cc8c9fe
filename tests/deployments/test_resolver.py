"""Resolution by slug, widget key, Host and campaign path: cached, and dropped on change everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from tests.chat.conftest import ChatTwin, owner_of
from tests.deployments.conftest import create
from vibethink.chat import twins
from vibethink.core.database import Database, RlsContext
from vibethink.deployments import resolver
from vibethink.deployments import service as deployments
from vibethink.deployments.schemas import DeploymentUpdate


@pytest.fixture
async def listener(db: Database) -> AsyncIterator[resolver.ChangeListener]:
    running = resolver.ChangeListener(db, retry_seconds=0.1).start()
    await asyncio.wait_for(running.connected.wait(), 10)
    yield running
    await running.stop()


async def resolve_widget(db: Database, key: str) -> resolver.ResolvedDeployment | None:
    async with db.transaction(RlsContext()) as s:
        return await resolver.by_widget_key(s, key)


async def eventually(check: object, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "the change never arrived"
        await asyncio.sleep(0.02)


class TestResolution:
    async def test_each_way_in_finds_its_deployment_and_unknown_ones_find_none(
        self, db: Database, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        widget = await create(client, talent, allowed_origins=["https://shop.example.com"])
        campaign = await create(client, talent, type="BRAND_CAMPAIGN", name="Cola", slug="summer-cola")
        async with db.transaction(RlsContext()) as s:
            slug = (
                await s.execute(
                    text("SELECT celebrity_slug FROM deployment_by_widget_key(:k)"),
                    {"k": widget["widget_key"]},
                )
            ).scalar_one()
            by_slug = await resolver.by_slug(s, slug)
            by_key = await resolver.by_widget_key(s, widget["widget_key"])
            by_campaign = await resolver.by_campaign(s, slug, "summer-cola")
            assert await resolver.by_widget_key(s, "vtw_unknown") is None
            assert await resolver.by_host(s, "nobody.example.org") is None
        assert by_slug is not None
        assert by_slug.id == talent.portal
        assert by_key is not None
        assert by_key.id.hex == widget["id"].replace("-", "")
        assert [r.text for r in by_key.allowed_origins] == ["https://shop.example.com"]
        assert by_campaign is not None
        assert str(by_campaign.id) == campaign["id"]

    async def test_a_second_resolution_is_served_from_the_cache(
        self, db: Database, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        widget = await create(client, talent)
        key = ("widget", widget["widget_key"], "")
        # A listener of this process (the app's) may still be on its way with the creation's own
        # notification, which drops what a first lookup cached: look up until an entry stays.
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            first = await resolve_widget(db, widget["widget_key"])
            await asyncio.sleep(0.05)
            if resolver.cache.get(key) == (True, first):
                break
            assert asyncio.get_running_loop().time() < deadline, "the lookup was never cached"
        second = await resolve_widget(db, widget["widget_key"])
        assert first is second


@pytest.mark.usefixtures("listener")
class TestInvalidation:
    async def test_a_committed_change_reaches_the_cache_through_the_notification(
        self, db: Database, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        widget = await create(client, talent, allowed_origins=["https://a.example.com"])
        before = await resolve_widget(db, widget["widget_key"])
        assert before is not None
        async with db.transaction(RlsContext(tenant_id=talent.tenant.id)) as s:
            await deployments.update(
                s,
                owner_of(talent.tenant),
                before.id,
                DeploymentUpdate(allowed_origins=["https://b.example.com"]),
            )
        await eventually(lambda: not resolver.cache.get(("widget", widget["widget_key"], ""))[0])
        after = await resolve_widget(db, widget["widget_key"])
        assert after is not None
        assert [r.text for r in after.allowed_origins] == ["https://b.example.com"]

    async def test_a_cached_miss_becomes_a_hit_once_the_deployment_exists(
        self, db: Database, client: httpx.AsyncClient, talent: ChatTwin
    ) -> None:
        async with db.transaction(RlsContext()) as s:
            assert await resolver.by_campaign(s, "nobody", "nothing") is None
        assert resolver.cache.get(("campaign", "nobody", "nothing")) == (True, None)
        await create(client, talent)
        await eventually(lambda: resolver.cache.get(("campaign", "nobody", "nothing")) == (False, None))

    async def test_a_celebrity_change_drops_its_deployments_and_the_chats_twins(
        self, db: Database, talent: ChatTwin
    ) -> None:
        async with db.transaction(RlsContext(tenant_id=talent.tenant.id)) as s:
            found = (
                await s.execute(
                    text("SELECT slug FROM celebrities WHERE id = :id"), {"id": talent.celebrity_id}
                )
            ).scalar_one()
        async with db.transaction(RlsContext()) as s:
            assert await resolver.by_slug(s, found) is not None
        twins.cache.put(
            twins.build(
                tenant_id=talent.tenant.id,
                deployment_id=talent.portal,
                celebrity_id=talent.celebrity_id,
                deployment_type=resolver.DeploymentType.VIBETHINK_PORTAL,
                is_active=True,
                window=(None, None),
                celebrity_name="Leo",
                config={},
                twin_config={},
            )
        )
        async with db.transaction(RlsContext(tenant_id=talent.tenant.id)) as s:
            await s.execute(
                text("UPDATE celebrities SET bio = 'new bio' WHERE id = :id"), {"id": talent.celebrity_id}
            )
        await eventually(lambda: twins.cache.get(talent.portal) is None)
        async with db.transaction(RlsContext()) as s:
            refreshed = await resolver.by_slug(s, found)
        assert refreshed is not None
        assert refreshed.celebrity_bio == "new bio"

    async def test_a_tier_change_drops_the_cached_tiers(self, db: Database, talent: ChatTwin) -> None:
        resolver.cache.put_tiers(talent.celebrity_id, ())
        async with db.transaction(RlsContext(tenant_id=talent.tenant.id)) as s:
            await s.execute(
                text(
                    "INSERT INTO pricing_tiers (tenant_id, id, celebrity_id, code, name, monthly_price_cents)"
                    " VALUES (:t, gen_random_uuid(), :c, 'VIP', 'VIP', 999)"
                ),
                {"t": talent.tenant.id, "c": talent.celebrity_id},
            )
        await eventually(lambda: resolver.cache.tiers(talent.celebrity_id) is None)
