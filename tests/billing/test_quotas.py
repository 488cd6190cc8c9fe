"""Quotas at the service level: the hot-path check the chat turn makes before answering a fan."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.billing.conftest import Talent, make_talent
from tests.factories import ADMIN
from vibethink.billing import quotas, service
from vibethink.billing.models import PricingTier
from vibethink.core.database import Database, RlsContext

NOW = datetime(2026, 7, 11, 20, 30, tzinfo=UTC)


async def _tiers(db: Database, talent: Talent, *, free_per_day: int = 3) -> dict[str, PricingTier]:
    rows = {
        "FREE": (0, {"messages_per_day": free_per_day}),
        "PREMIUM": (1_000, {"messages_per_day": None, "premium_content": True}),
    }
    made: dict[str, PricingTier] = {}
    async with db.transaction(ADMIN) as s:
        for code, (price, entitlements) in rows.items():
            tier = PricingTier(
                tenant_id=talent.tenant.id,
                id=uuid.uuid4(),
                celebrity_id=talent.celebrity_id,
                code=code,
                name=code.title(),
                monthly_price_cents=price,
                currency="USD",
                entitlements=entitlements,
                sort_order=len(made),
                is_active=True,
            )
            s.add(tier)
            made[code] = tier
    return made


def _context(talent: Talent) -> RlsContext:
    return RlsContext(tenant_id=talent.tenant.id, role="FAN")


async def _send(db: Database, talent: Talent, fan: str, *, now: datetime = NOW) -> quotas.Allowance:
    """What the chat turn does: check, then count the message in the turn's transaction."""
    async with db.transaction(_context(talent)) as s:
        allowance = await quotas.check_message(
            s, tenant_id=talent.tenant.id, celebrity_id=talent.celebrity_id, fan_key=fan, now=now
        )
        await quotas.record_message(
            s, tenant_id=talent.tenant.id, celebrity_id=talent.celebrity_id, fan_key=fan, now=now
        )
    return allowance


class TestDailyMessageQuota:
    async def test_the_free_fans_fourth_message_of_the_day_is_refused_with_the_reset_time(
        self, db: Database, unique: str
    ) -> None:
        talent = await make_talent(db, unique)
        await _tiers(db, talent, free_per_day=3)
        for _ in range(3):
            assert (await _send(db, talent, "anon:free-fan")).tier_code == "FREE"
        with pytest.raises(quotas.QuotaExceeded) as refused:
            await _send(db, talent, "anon:free-fan")
        error = refused.value
        assert error.status_code == 429
        assert error.code == "quota_exceeded"
        assert error.details["resets_at"] == "2026-07-12T00:00:00+00:00"
        assert error.headers["Retry-After"] == str(int(timedelta(hours=3, minutes=30).total_seconds()))
        assert [t["code"] for t in error.details["upgrade_tiers"]] == ["PREMIUM"]
        assert "PREMIUM" not in error.details["tier"]

    async def test_the_quota_resets_at_midnight_utc(self, db: Database, unique: str) -> None:
        talent = await make_talent(db, unique)
        await _tiers(db, talent, free_per_day=1)
        await _send(db, talent, "anon:night-owl")
        with pytest.raises(quotas.QuotaExceeded):
            await _send(db, talent, "anon:night-owl")
        assert (await _send(db, talent, "anon:night-owl", now=NOW + timedelta(hours=4))).tier_code == "FREE"

    async def test_a_premium_fan_is_not_refused(self, db: Database, unique: str) -> None:
        talent = await make_talent(db, unique)
        tiers = await _tiers(db, talent, free_per_day=3)
        async with db.transaction(_context(talent)) as s:
            await service.start_subscription(
                s,
                tenant_id=talent.tenant.id,
                celebrity_id=talent.celebrity_id,
                tier=tiers["PREMIUM"],
                fan_key="user:premium-fan",
                started_at=NOW - timedelta(days=3),
            )
        for _ in range(10):
            assert (await _send(db, talent, "user:premium-fan")).tier_code == "PREMIUM"

    async def test_a_new_subscription_lifts_the_limit_at_once_without_waiting_for_the_cache(
        self, db: Database, unique: str
    ) -> None:
        talent = await make_talent(db, unique)
        tiers = await _tiers(db, talent, free_per_day=1)
        await _send(db, talent, "user:upgrader")
        with pytest.raises(quotas.QuotaExceeded):
            await _send(db, talent, "user:upgrader")
        async with db.transaction(_context(talent)) as s:
            await service.start_subscription(
                s,
                tenant_id=talent.tenant.id,
                celebrity_id=talent.celebrity_id,
                tier=tiers["PREMIUM"],
                fan_key="user:upgrader",
                started_at=NOW,
            )
        assert (await _send(db, talent, "user:upgrader")).tier_code == "PREMIUM"

    async def test_a_talent_without_tiers_has_no_quota(self, db: Database, unique: str) -> None:
        talent = await make_talent(db, unique)
        for _ in range(5):
            allowance = await _send(db, talent, "anon:anyone")
        assert allowance.messages_per_day is None

    async def test_counts_are_per_talent(self, db: Database, unique: str) -> None:
        first, second = await make_talent(db, unique), await make_talent(db, f"{unique}2")
        await _tiers(db, first, free_per_day=1)
        await _tiers(db, second, free_per_day=1)
        await _send(db, first, "user:shared-fan")
        assert (await _send(db, second, "user:shared-fan")).tier_code == "FREE"

    async def test_a_cached_check_needs_no_database_round_trip(self, db: Database, unique: str) -> None:
        talent = await make_talent(db, unique)
        await _tiers(db, talent, free_per_day=5)
        await _send(db, talent, "anon:cached")
        async with db.transaction(_context(talent)) as s:
            connection = await s.connection()
            statements: list[str] = []

            def count(*args: object) -> None:
                statements.append(str(args[2]))

            from sqlalchemy import event

            event.listen(connection.sync_connection, "before_cursor_execute", count)
            try:
                await quotas.check_message(
                    s,
                    tenant_id=talent.tenant.id,
                    celebrity_id=talent.celebrity_id,
                    fan_key="anon:cached",
                    now=NOW,
                )
            finally:
                event.remove(connection.sync_connection, "before_cursor_execute", count)
        assert statements == []
