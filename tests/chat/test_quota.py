"""The daily message quota inside the chat turn: counted with the turn, refused past it with 429."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from tests.chat.conftest import ChatTwin, new_fan
from tests.factories import ADMIN, make_tiers

from vibethink.billing import service as billing
from vibethink.billing.models import PricingTier
from vibethink.core.database import Database, RlsContext


async def _subscribe(db: Database, twin: ChatTwin, tier: PricingTier, fan_key: str) -> None:
    """The fan subscribes to `tier` now (the offline ledger provider)."""
    async with db.transaction(RlsContext(tenant_id=twin.tenant.id)) as s:
        await billing.start_subscription(
            s,
            tenant_id=twin.tenant.id,
            celebrity_id=twin.celebrity_id,
            tier=tier,
            fan_key=fan_key,
            started_at=datetime.now(UTC),
        )


async def test_a_free_fan_is_refused_past_the_quota_with_the_reset_time_and_upgrades(
    db: Database, client: httpx.AsyncClient, chat_twin: ChatTwin
) -> None:
    await make_tiers(db, chat_twin.tenant.id, chat_twin.celebrity_id, free_per_day=3)
    fan = await new_fan(client, chat_twin.portal)
    conversation = await fan.start()
    for _ in range(3):
        assert (await fan.say(conversation, "Who won the World Cup in 2022?")).status_code == 200
    refused = await fan.say(conversation, "And in 2018?")
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["quota"] == 3
    assert error["details"]["used"] == 3
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert datetime.fromisoformat(error["details"]["resets_at"]) == datetime(
        tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC
    )
    assert [t["code"] for t in error["details"]["upgrade_tiers"]] == ["PREMIUM"]
    assert int(refused.headers["Retry-After"]) > 0
    # Nothing of the refused turn was stored: still three turns (six messages).
    history = await client.get(f"/api/v1/chat/conversations/{conversation}/messages", headers=fan.headers)
    assert len(history.json()["items"]) == 6
    # The usage endpoint agrees.
    usage = await client.get("/api/v1/fan/usage", headers=fan.headers)
    assert usage.status_code == 200, usage.text
    assert (usage.json()["quota"], usage.json()["used"], usage.json()["remaining"]) == (3, 3, 0)


async def test_a_premium_fan_is_not_refused(
    db: Database, client: httpx.AsyncClient, chat_twin: ChatTwin
) -> None:
    tiers = await make_tiers(db, chat_twin.tenant.id, chat_twin.celebrity_id, free_per_day=1)
    fan = await new_fan(client, chat_twin.portal)
    await _subscribe(db, chat_twin, tiers["PREMIUM"], fan.fan_key)
    conversation = await fan.start()
    for _ in range(3):
        reply = await fan.say(conversation, "Who won the World Cup in 2022?")
        assert reply.status_code == 200, reply.text


async def test_a_talent_without_tiers_has_no_quota(client: httpx.AsyncClient, chat_twin: ChatTwin) -> None:
    fan = await new_fan(client, chat_twin.portal)
    conversation = await fan.start()
    for _ in range(4):
        assert (await fan.say(conversation, "Who won the World Cup in 2022?")).status_code == 200


async def test_a_fan_who_subscribes_mid_conversation_has_the_new_tier_in_its_context(
    db: Database, client: httpx.AsyncClient, chat_twin: ChatTwin
) -> None:
    tiers = await make_tiers(db, chat_twin.tenant.id, chat_twin.celebrity_id, free_per_day=1)
    fan = await new_fan(client, chat_twin.portal)
    conversation = await fan.start()
    url = f"/api/v1/chat/conversations/{conversation}"
    assert (await client.get(url, headers=fan.headers)).json()["context"]["userTier"] == "FREE"
    assert (await fan.say(conversation, "Who won the World Cup in 2022?")).status_code == 200
    assert (await fan.say(conversation, "And in 2018?")).status_code == 429
    await _subscribe(db, chat_twin, tiers["PREMIUM"], fan.fan_key)
    # The same conversation goes on, past the free quota, and stores its changed context.
    assert (await fan.say(conversation, "And in 2018?")).status_code == 200
    assert (await client.get(url, headers=fan.headers)).json()["context"]["userTier"] == "PREMIUM"


async def test_the_quota_counts_today_only_and_per_talent(
    db: Database, client: httpx.AsyncClient, chat_twin: ChatTwin, other_chat_twin: ChatTwin
) -> None:
    await make_tiers(db, chat_twin.tenant.id, chat_twin.celebrity_id, free_per_day=2)
    fan = await new_fan(client, chat_twin.portal)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    async with db.transaction(ADMIN) as s:
        # Yesterday's full quota with this talent, and today's messages with another talent.
        await s.execute(
            text(
                "INSERT INTO fan_usage (tenant_id, celebrity_id, fan_key, day, messages)"
                " VALUES (:t, :c, :f, :yesterday, 2), (:ot, :oc, :f, :today, 50)"
            ),
            {
                "t": chat_twin.tenant.id,
                "c": chat_twin.celebrity_id,
                "ot": other_chat_twin.tenant.id,
                "oc": other_chat_twin.celebrity_id,
                "f": fan.fan_key,
                "yesterday": yesterday,
                "today": datetime.now(UTC).date(),
            },
        )
    conversation = await fan.start()
    for _ in range(2):
        assert (await fan.say(conversation, "Who won the World Cup in 2022?")).status_code == 200
    assert (await fan.say(conversation, "And in 2018?")).status_code == 429
