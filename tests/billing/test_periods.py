"""Month close: deployment fees outside the share, CPM/CPC from counted interactions by the
cumulative method, and ledger payout batches."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import select, text

from tests.billing.conftest import Talent, make_brand, make_campaign, make_deployment
from tests.factories import ADMIN
from vibethink.billing import payouts, periods
from vibethink.billing.models import PayoutStatus, RevenueTransaction, TransactionType
from vibethink.core.database import Database, RlsContext

MARCH, APRIL, MAY = date(2031, 3, 1), date(2031, 4, 1), date(2031, 5, 1)


def _ctx(talent: Talent) -> RlsContext:
    return RlsContext(tenant_id=talent.tenant.id, role="TALENT_OWNER")


async def _close(db: Database, talent: Talent, month: date) -> periods.CloseSummary:
    async with db.transaction(_ctx(talent)) as s:
        return await periods.close_month(s, month=month, tenant_id=talent.tenant.id)


async def _rows(db: Database, talent: Talent, kind: TransactionType) -> list[RevenueTransaction]:
    async with db.transaction(_ctx(talent)) as s:
        return list(
            (
                await s.scalars(
                    select(RevenueTransaction)
                    .where(RevenueTransaction.tenant_id == talent.tenant.id, RevenueTransaction.type == kind)
                    .order_by(RevenueTransaction.occurred_at)
                )
            ).all()
        )


async def _interactions(db: Database, talent: Talent, campaign: uuid.UUID, count: int, at: datetime) -> None:
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text(
                "INSERT INTO interaction_events (tenant_id, id, occurred_at, celebrity_id, campaign_id,"
                " conversation_id, fan_key, fan_tier, outcome, provider, latency_ms)"
                " SELECT :t, gen_random_uuid(), :at, :c, :campaign, gen_random_uuid(), 'anon:x', 'FREE',"
                " 'answered', 'grounded', 5 FROM generate_series(1, :n)"
            ),
            {"t": talent.tenant.id, "at": at, "c": talent.celebrity_id, "campaign": campaign, "n": count},
        )


async def _clicks(db: Database, talent: Talent, campaign: uuid.UUID, count: int, at: datetime) -> None:
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text(
                "INSERT INTO campaign_clicks (tenant_id, id, campaign_id, fan_key, occurred_at)"
                " SELECT :t, gen_random_uuid(), :campaign, 'anon:x', :at FROM generate_series(1, :n)"
            ),
            {"t": talent.tenant.id, "campaign": campaign, "at": at, "n": count},
        )


class TestDeploymentFees:
    async def test_widget_and_white_label_fees_are_the_platforms_and_the_setup_fee_is_charged_once(
        self, db: Database, talent: Talent
    ) -> None:
        start = datetime(2031, 3, 10, tzinfo=UTC)
        await make_deployment(
            db, talent.tenant.id, talent.celebrity_id, type="EMBEDDED_WIDGET", starts_at=start
        )
        await make_deployment(db, talent.tenant.id, talent.celebrity_id, type="WHITE_LABEL", starts_at=start)
        async with db.transaction(_ctx(talent)) as s:
            await s.execute(
                text(
                    "INSERT INTO fee_schedules (tenant_id, celebrity_id, white_label_monthly_cents,"
                    " white_label_setup_cents) VALUES (:t, :c, 150000, 1200000)"
                ),
                {"t": talent.tenant.id, "c": talent.celebrity_id},
            )
        for month in (MARCH, APRIL, APRIL):
            await _close(db, talent, month)
        fees = await _rows(db, talent, TransactionType.PLATFORM_FEE)
        setup = await _rows(db, talent, TransactionType.SETUP_FEE)
        assert sorted(f.gross_cents for f in fees) == [50_000, 50_000, 150_000, 150_000]
        assert [s.gross_cents for s in setup] == [1_200_000]
        assert all(
            r.celebrity_share_cents == 0 and r.platform_share_cents == r.net_cents for r in fees + setup
        )


class TestCampaignBilling:
    async def test_cpm_and_cpc_follow_counted_interactions_split_80_20_by_the_cumulative_method(
        self, db: Database, talent: Talent, unique: str
    ) -> None:
        brand_tenant, brand = await make_brand(db, unique)
        campaign = await make_campaign(
            db,
            talent.tenant.id,
            talent.celebrity_id,
            brand_tenant_id=brand_tenant.id,
            brand_id=brand,
            starts_at=datetime(2031, 3, 1, tzinfo=UTC),
            ends_at=datetime(2031, 5, 1, tzinfo=UTC),
            fee_cents=1_000_001,
            cpm_cents=2_500,
            cpc_cents=45,
        )
        await _interactions(db, talent, campaign, 1_234, datetime(2031, 3, 15, tzinfo=UTC))
        await _clicks(db, talent, campaign, 7, datetime(2031, 3, 16, tzinfo=UTC))
        await _close(db, talent, MARCH)
        await _interactions(db, talent, campaign, 766, datetime(2031, 4, 2, tzinfo=UTC))
        await _clicks(db, talent, campaign, 3, datetime(2031, 4, 3, tzinfo=UTC))
        await _close(db, talent, APRIL)
        await _close(db, talent, MAY)  # after the campaign: nothing more
        fee = await _rows(db, talent, TransactionType.CAMPAIGN_FEE)
        cpm = await _rows(db, talent, TransactionType.CPM)
        cpc = await _rows(db, talent, TransactionType.CPC)
        assert [r.gross_cents for r in fee] == [500_001, 500_000]
        assert [(r.celebrity_share_cents, r.platform_share_cents) for r in fee] == [
            (400_001, 100_000),
            (400_000, 100_000),
        ]
        # 1,234 impressions at $25 CPM = $30.85; 2,000 in all = $50.00.
        assert [r.gross_cents for r in cpm] == [3_085, 1_915]
        assert [(r.celebrity_share_cents, r.platform_share_cents) for r in cpm] == [
            (2_468, 617),
            (1_532, 383),
        ]
        assert [r.gross_cents for r in cpc] == [315, 135]
        assert sum(r.celebrity_share_cents for r in cpc) == 360


class TestPayouts:
    async def test_a_ledger_payout_pays_the_celebrity_share_once_and_is_marked_paid(
        self, db: Database, talent: Talent
    ) -> None:
        from vibethink.billing import ledger

        async with db.transaction(_ctx(talent)) as s:
            await ledger.post(
                s,
                ledger.Posting(
                    tenant_id=talent.tenant.id,
                    celebrity_id=talent.celebrity_id,
                    type=TransactionType.TRANSACTION_FEE,
                    gross_cents=12_345,
                    occurred_at=datetime(2031, 6, 5, tzinfo=UTC),
                ),
            )
        async with db.transaction(ADMIN) as s:
            created = [
                p
                for p in await payouts.create_batch(s, month=date(2031, 6, 1))
                if p.tenant_id == talent.tenant.id
            ]
        assert [(p.amount_cents, p.status) for p in created] == [(8_642, PayoutStatus.PENDING)]
        async with db.transaction(ADMIN) as s:
            paid = await payouts.mark_paid(s, created[0].id, reference="SEPA-2031-06-0042")
            again = [
                p
                for p in await payouts.create_batch(s, month=date(2031, 6, 1))
                if p.tenant_id == talent.tenant.id
            ]
        assert (paid.status, paid.reference) == (PayoutStatus.PAID, "SEPA-2031-06-0042")
        assert again == []
