"""Subscription lifecycle and the ledger's balance under any sequence of payments and reversals."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.billing.conftest import Talent, make_talent
from tests.factories import make_tiers
from vibethink.billing import ledger, periods, service, statements
from vibethink.billing.models import RevenueTransaction, SubscriptionStatus, TransactionType
from vibethink.core.database import Database, RlsContext

START = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)


def _ctx(talent: Talent) -> RlsContext:
    return RlsContext(tenant_id=talent.tenant.id, role="TALENT_OWNER")


async def _subscribe(db: Database, talent: Talent, fan: str = "user:lifecycle") -> uuid.UUID:
    tiers = await make_tiers(db, talent.tenant.id, talent.celebrity_id)
    async with db.transaction(_ctx(talent)) as s:
        made = await service.start_subscription(
            s,
            tenant_id=talent.tenant.id,
            celebrity_id=talent.celebrity_id,
            tier=tiers["PREMIUM"],
            fan_key=fan,
            started_at=START,
        )
    return made.id


class TestLifecycle:
    def test_a_month_later_is_clamped_to_the_months_last_day(self) -> None:
        assert service.add_month(START) == datetime(2030, 2, 28, 12, 0, tzinfo=UTC)
        assert service.add_month(datetime(2032, 1, 31, tzinfo=UTC)) == datetime(2032, 2, 29, tzinfo=UTC)

    async def test_renewal_posts_each_period_once_and_advances(self, db: Database, unique: str) -> None:
        talent = await make_talent(db, unique)
        subscription_id = await _subscribe(db, talent)
        for _ in range(2):  # the second run finds nothing due
            async with db.transaction(_ctx(talent)) as s:
                await periods.renew_due(s, until=datetime(2030, 4, 1, tzinfo=UTC), tenant_id=talent.tenant.id)
        async with db.transaction(_ctx(talent)) as s:
            found = await service.get_subscription(s, talent.tenant.id, subscription_id)
            payments = await s.scalar(
                select(func.count()).where(
                    RevenueTransaction.tenant_id == talent.tenant.id,
                    RevenueTransaction.subscription_id == subscription_id,
                )
            )
        assert found.current_period_start == datetime(2030, 3, 28, 12, 0, tzinfo=UTC)
        assert payments == 3  # Jan 31, Feb 28, Mar 28

    async def test_cancel_at_period_end_keeps_the_tier_until_then_and_then_expires(
        self, db: Database, unique: str
    ) -> None:
        talent = await make_talent(db, unique)
        subscription_id = await _subscribe(db, talent)
        async with db.transaction(_ctx(talent)) as s:
            found = await service.get_subscription(s, talent.tenant.id, subscription_id)
            await service.cancel(s, found, at_period_end=True, now=START + timedelta(days=2))
            assert found.status is SubscriptionStatus.ACTIVE
            await service.resume(s, found)
            await service.cancel(s, found, at_period_end=True, now=START + timedelta(days=3))
        async with db.transaction(_ctx(talent)) as s:
            renewed, expired = await periods.renew_due(
                s, until=datetime(2030, 3, 1, tzinfo=UTC), tenant_id=talent.tenant.id
            )
            found = await service.get_subscription(s, talent.tenant.id, subscription_id)
        assert (renewed, expired) == (0, 1)
        assert found.status is SubscriptionStatus.EXPIRED
        assert found.ended_at == datetime(2030, 2, 28, 12, 0, tzinfo=UTC)

    async def test_past_due_keeps_entitlements_through_grace_then_expires(
        self, db: Database, unique: str
    ) -> None:
        talent = await make_talent(db, unique)
        subscription_id = await _subscribe(db, talent)
        failed_at = datetime(2030, 2, 28, 12, 5, tzinfo=UTC)
        async with db.transaction(_ctx(talent)) as s:
            found = await service.get_subscription(s, talent.tenant.id, subscription_id)
            await service.payment_failed(s, found, now=failed_at)
        assert found.status is SubscriptionStatus.PAST_DUE
        assert found.grace_until == failed_at + timedelta(days=service.GRACE_DAYS)
        async with db.transaction(_ctx(talent)) as s:
            _, expired = await periods.renew_due(
                s, until=failed_at + timedelta(days=8), tenant_id=talent.tenant.id
            )
            found = await service.get_subscription(s, talent.tenant.id, subscription_id)
        assert expired == 1
        assert found.status is SubscriptionStatus.EXPIRED

    async def test_a_late_payment_during_grace_renews(self, db: Database, unique: str) -> None:
        talent = await make_talent(db, unique)
        subscription_id = await _subscribe(db, talent)
        async with db.transaction(_ctx(talent)) as s:
            found = await service.get_subscription(s, talent.tenant.id, subscription_id)
            await service.payment_failed(s, found, now=datetime(2030, 2, 28, 13, tzinfo=UTC))
            assert await service.record_renewal(s, found, occurred_at=datetime(2030, 3, 2, tzinfo=UTC))
        assert found.status is SubscriptionStatus.ACTIVE
        assert found.current_period_end == datetime(2030, 3, 28, 12, 0, tzinfo=UTC)

    async def test_a_downgrade_credits_the_unused_difference_as_a_reversal(
        self, db: Database, unique: str
    ) -> None:
        talent = await make_talent(db, unique)
        tiers = await make_tiers(db, talent.tenant.id, talent.celebrity_id)
        async with db.transaction(_ctx(talent)) as s:
            from vibethink.billing.models import PricingTier

            basic = PricingTier(
                tenant_id=talent.tenant.id,
                id=uuid.uuid4(),
                celebrity_id=talent.celebrity_id,
                code="BASIC",
                name="Basic",
                monthly_price_cents=400,
                currency="USD",
                entitlements={"messages_per_day": 50},
                sort_order=1,
                is_active=True,
            )
            s.add(basic)
            found = await service.start_subscription(
                s,
                tenant_id=talent.tenant.id,
                celebrity_id=talent.celebrity_id,
                tier=tiers["PREMIUM"],
                fan_key="user:downgrader",
                started_at=datetime(2030, 4, 1, tzinfo=UTC),
            )
            half = datetime(2030, 4, 16, tzinfo=UTC)
            amount = await service.change_tier(s, found, basic, now=half)
            rows = list(
                (
                    await s.scalars(
                        select(RevenueTransaction).where(
                            RevenueTransaction.tenant_id == talent.tenant.id,
                            RevenueTransaction.subscription_id == found.id,
                        )
                    )
                ).all()
            )
        assert amount == -300  # half of the $6 difference
        credit = next(r for r in rows if r.reverses_id is not None)
        assert (credit.gross_cents, credit.celebrity_share_cents, credit.platform_share_cents) == (
            -300,
            -210,
            -90,
        )


events = st.lists(
    st.tuples(
        st.sampled_from(["pay", "refund", "dispute", "fee"]),
        st.integers(min_value=1, max_value=500_000),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=12,
)


class TestLedgerStaysBalanced:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(sequence=events)
    async def test_any_sequence_of_payments_refunds_and_disputes_leaves_the_statement_balanced(
        self, db: Database, unique: str, sequence: list[tuple[str, int, int]]
    ) -> None:
        talent = await make_talent(db, f"{unique}{uuid.uuid4().hex[:4]}")
        month = date(2030, 6, 1)
        at = datetime(2030, 6, 10, tzinfo=UTC)
        paid: list[RevenueTransaction] = []
        async with db.transaction(_ctx(talent)) as s:
            for action, amount, bp_or_fee in sequence:
                if action in ("pay", "fee") or not paid:
                    posting = ledger.Posting(
                        tenant_id=talent.tenant.id,
                        celebrity_id=talent.celebrity_id,
                        type=TransactionType.TRANSACTION_FEE
                        if action == "pay"
                        else TransactionType.SUBSCRIPTION,
                        gross_cents=amount,
                        fee_cents=min(amount, bp_or_fee) if action == "fee" else 0,
                        occurred_at=at,
                    )
                    await ledger.post(s, posting)
                    paid.append(await ledger.get(s, talent.tenant.id, posting.id))
                    continue
                original = paid[bp_or_fee % len(paid)]
                left = original.gross_cents - (await ledger.reversed_so_far(s, original))[0]
                if left <= 0:
                    continue
                part = None if action == "dispute" else min(left, max(1, amount % left or 1))
                await ledger.reverse(s, original, occurred_at=at, amount_cents=part)
            found = await statements.statement(
                s, tenant_id=talent.tenant.id, celebrity_id=talent.celebrity_id, month=month
            )
            for original in paid:
                gross, fee, celebrity = await ledger.reversed_so_far(s, original)
                assert 0 <= gross <= original.gross_cents
                if gross == original.gross_cents:  # fully reversed: every part undone exactly
                    assert (fee, celebrity) == (original.fee_cents, original.celebrity_share_cents)
        assert found.is_balanced
        total = found.totals["USD"]
        assert total.celebrity_share_cents + total.platform_share_cents == total.gross_cents - total.fee_cents


@pytest.mark.parametrize("bp", [0, 1, 7_000, 9_999, 10_000])
def test_platform_only_types_never_give_the_celebrity_anything(bp: int) -> None:
    shares = {"SUBSCRIPTION": bp, "TRANSACTION_FEE": bp, "CAMPAIGN_FEE": bp, "CPM": bp, "CPC": bp}
    assert ledger.celebrity_bp(TransactionType.SETUP_FEE, shares) == 0
    assert ledger.celebrity_bp(TransactionType.PLATFORM_FEE, shares) == 0
    assert ledger.celebrity_bp(TransactionType.SUBSCRIPTION, shares) == bp
