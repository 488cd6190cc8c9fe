"""Closing a month: ledger renewals and expiries, deployment fees, campaign fee recognition, CPM/CPC.

Every posting names its month in `external_ref`, so closing a month twice posts nothing new. Runs in
the audited admin context for every talent tenant at once (or in one tenant's context for that tenant).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing import ledger, quotas
from vibethink.billing.models import FanSubscription, RevenueTransaction, SubscriptionStatus, TransactionType
from vibethink.billing.service import add_month, fee_schedule, period_ref
from vibethink.billing.statements import month_bounds, month_start, next_month
from vibethink.campaigns.models import BrandCampaign, CampaignStatus
from vibethink.core import outbox
from vibethink.core.money import evenly
from vibethink.deployments.models import Deployment, DeploymentStatus, DeploymentType

BILLABLE_CAMPAIGNS = (CampaignStatus.APPROVED, CampaignStatus.ACTIVE, CampaignStatus.COMPLETED)
IMPRESSIONS_SQL = text(
    # An impression is a reply the fan saw: answered, or answered after an output rewrite.
    "SELECT count(*) FROM interaction_events WHERE tenant_id = :tenant AND campaign_id = :campaign"
    " AND occurred_at < :end AND outcome IN ('answered', 'rewritten')"
)
CLICKS_SQL = text(
    "SELECT count(*) FROM campaign_clicks WHERE tenant_id = :tenant AND campaign_id = :campaign"
    " AND occurred_at < :end"
)


@dataclass
class CloseSummary:
    month: date
    renewed: int = 0
    expired: int = 0
    deployment_fees: int = 0
    campaign_postings: int = 0


def _month_key(month: date) -> str:
    return month.strftime("%Y-%m")


async def close_month(
    session: AsyncSession, *, month: date, tenant_id: uuid.UUID | None = None
) -> CloseSummary:
    """Posts everything the month owes, once. `tenant_id` limits the close to one tenant."""
    month = month_start(month)
    summary = CloseSummary(month=month)
    _, end = month_bounds(month)
    renewed, expired = await renew_due(session, until=end, tenant_id=tenant_id)
    summary.renewed, summary.expired = renewed, expired
    summary.deployment_fees = await post_deployment_fees(session, month=month, tenant_id=tenant_id)
    summary.campaign_postings = await post_campaigns(session, month=month, tenant_id=tenant_id)
    return summary


async def renew_due(
    session: AsyncSession, *, until: datetime, tenant_id: uuid.UUID | None = None
) -> tuple[int, int]:
    """Renews ledger subscriptions whose period ended before `until` (posting each period once),
    ends those cancelled at period end, and expires past-due ones whose grace ran out."""
    renewed = expired = 0
    shares_cache: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    per_tenant: dict[uuid.UUID, list[int]] = {}
    while True:
        query = (
            select(FanSubscription)
            .where(
                FanSubscription.status.in_((SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)),
                FanSubscription.current_period_end <= until,
            )
            .order_by(FanSubscription.tenant_id, FanSubscription.id)
            .limit(5_000)
            .with_for_update(skip_locked=True)
        )
        if tenant_id is not None:
            query = query.where(FanSubscription.tenant_id == tenant_id)
        due = list((await session.scalars(query)).all())
        postings: list[ledger.Posting] = []
        progressed = 0
        for subscription in due:
            end = subscription.current_period_end
            if subscription.cancel_at_period_end or (
                subscription.status is SubscriptionStatus.PAST_DUE
                and subscription.grace_until is not None
                and subscription.grace_until <= until
            ):
                subscription.status = SubscriptionStatus.EXPIRED
                subscription.ended_at = end
                expired += 1
                progressed += 1
                per_tenant.setdefault(subscription.tenant_id, [0, 0])[1] += 1
            elif subscription.provider == "ledger" and subscription.status is SubscriptionStatus.ACTIVE:
                key = (subscription.tenant_id, subscription.celebrity_id)
                if key not in shares_cache:
                    shares = await ledger.contract_shares(session, tenant_id=key[0], celebrity_id=key[1])
                    shares_cache[key] = ledger.celebrity_bp(TransactionType.SUBSCRIPTION, shares)
                postings.append(
                    ledger.Posting(
                        tenant_id=subscription.tenant_id,
                        celebrity_id=subscription.celebrity_id,
                        type=TransactionType.SUBSCRIPTION,
                        gross_cents=subscription.price_cents,
                        occurred_at=end,
                        currency=subscription.currency,
                        external_ref=period_ref(subscription, end),
                        deployment_id=subscription.deployment_id,
                        subscription_id=subscription.id,
                        fan_key=subscription.fan_key,
                        description="Subscription renewal",
                    ).with_shares(shares_cache[key])
                )
                subscription.current_period_start = end
                subscription.current_period_end = add_month(end)
                renewed += 1
                progressed += 1
                per_tenant.setdefault(subscription.tenant_id, [0, 0])[0] += 1
            quotas.forget_fan(subscription.tenant_id, subscription.celebrity_id, subscription.fan_key)
        await session.flush()
        await ledger.write(session, postings)
        if not due or not progressed:
            break
    for tenant, (count_renewed, count_expired) in per_tenant.items():
        # One event per tenant and run, not one per subscription: a month close renews thousands.
        await outbox.emit(
            session,
            "SUBSCRIPTIONS_RENEWED",
            tenant_id=tenant,
            actor_role="SYSTEM",
            subject_type="tenant",
            subject_id=tenant,
            payload={"renewed": count_renewed, "expired": count_expired, "until": until.isoformat()},
        )
    return renewed, expired


def _campaign_months(campaign: BrandCampaign) -> list[date]:
    first = month_start(campaign.starts_at.astimezone(UTC).date())
    if campaign.ends_at is None:
        return [first]
    last_moment = campaign.ends_at.astimezone(UTC)
    last = month_start(last_moment.date())
    if last_moment == datetime(last.year, last.month, 1, tzinfo=UTC) and last > first:
        last = month_start(date.fromordinal(last.toordinal() - 1))
    months = [first]
    while months[-1] < last:
        months.append(next_month(months[-1]))
    return months


async def _recognised(
    session: AsyncSession, campaign: BrandCampaign, kind: TransactionType, before: datetime
) -> tuple[int, int, int]:
    """(gross, celebrity, platform) already posted for the campaign's `kind` before `before`."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(RevenueTransaction.gross_cents), 0),
                func.coalesce(func.sum(RevenueTransaction.celebrity_share_cents), 0),
                func.coalesce(func.sum(RevenueTransaction.platform_share_cents), 0),
            ).where(
                RevenueTransaction.tenant_id == campaign.tenant_id,
                RevenueTransaction.brand_campaign_id == campaign.id,
                RevenueTransaction.type == kind,
                RevenueTransaction.occurred_at < before,
            )
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def post_campaigns(session: AsyncSession, *, month: date, tenant_id: uuid.UUID | None = None) -> int:
    """The month's part of each campaign's fee (even over its months, largest remainder) and its
    CPM/CPC charges for the interactions counted so far, each split by the cumulative method."""
    start, end = month_bounds(month)
    query = select(BrandCampaign).where(
        BrandCampaign.status.in_(BILLABLE_CAMPAIGNS),
        BrandCampaign.starts_at < end,
    )
    if tenant_id is not None:
        query = query.where(BrandCampaign.tenant_id == tenant_id)
    posted = 0
    for campaign in (await session.scalars(query)).all():
        before = posted
        months = _campaign_months(campaign)
        shares = await ledger.contract_shares(
            session, tenant_id=campaign.tenant_id, celebrity_id=campaign.celebrity_id
        )
        amounts: list[tuple[TransactionType, int, str]] = []
        if month in months and campaign.fee_cents > 0:
            amounts.append(
                (
                    TransactionType.CAMPAIGN_FEE,
                    evenly(campaign.fee_cents, len(months))[months.index(month)],
                    "fee",
                )
            )
        in_window = month <= months[-1]
        if in_window and campaign.cpm_cents > 0:
            impressions = int(await session.scalar(IMPRESSIONS_SQL, _counter(campaign, end)) or 0)
            billed, _, _ = await _recognised(session, campaign, TransactionType.CPM, start)
            amounts.append(
                (TransactionType.CPM, (impressions * campaign.cpm_cents + 500) // 1000 - billed, "cpm")
            )
        if in_window and campaign.cpc_cents > 0:
            clicks = int(await session.scalar(CLICKS_SQL, _counter(campaign, end)) or 0)
            billed, _, _ = await _recognised(session, campaign, TransactionType.CPC, start)
            amounts.append((TransactionType.CPC, clicks * campaign.cpc_cents - billed, "cpc"))
        for kind, amount, label in amounts:
            if amount == 0:
                continue
            _, celebrity_done, platform_done = await _recognised(session, campaign, kind, start)
            [(celebrity, platform)] = ledger.recognise(
                [amount],
                ledger.celebrity_bp(kind, shares),
                already_celebrity=celebrity_done,
                already_platform=platform_done,
            )
            written = await ledger.write(
                session,
                [
                    ledger.Posting(
                        tenant_id=campaign.tenant_id,
                        celebrity_id=campaign.celebrity_id,
                        type=kind,
                        gross_cents=amount,
                        occurred_at=start,
                        currency=campaign.currency,
                        external_ref=f"campaign:{campaign.id}:{label}:{_month_key(month)}",
                        deployment_id=campaign.deployment_id,
                        brand_campaign_id=campaign.id,
                        description=f"{campaign.campaign_name} — {label.upper()} {_month_key(month)}",
                        celebrity_share_cents=celebrity,
                        platform_share_cents=platform,
                    )
                ],
            )
            posted += len(written)
        if posted > before:
            await outbox.emit(
                session,
                "CAMPAIGN_BILLED",
                tenant_id=campaign.tenant_id,
                subject_type="brand_campaign",
                subject_id=campaign.id,
                payload={"month": _month_key(month), "brand_tenant_id": str(campaign.brand_tenant_id)},
            )
    return posted


def _counter(campaign: BrandCampaign, end: datetime) -> dict[str, Any]:
    return {"tenant": campaign.tenant_id, "campaign": campaign.id, "end": end}


async def post_deployment_fees(
    session: AsyncSession, *, month: date, tenant_id: uuid.UUID | None = None
) -> int:
    """The month's platform fee for each widget and white-label deployment live in the month, and
    each white-label deployment's setup fee in the month it was created: 100 % platform."""
    start, end = month_bounds(month)
    query = select(Deployment).where(
        Deployment.type.in_((DeploymentType.EMBEDDED_WIDGET, DeploymentType.WHITE_LABEL)),
        func.coalesce(Deployment.starts_at, Deployment.created_at) < end,
        Deployment.status.in_(
            (DeploymentStatus.ACTIVE, DeploymentStatus.INACTIVE, DeploymentStatus.SCHEDULED)
        ),
    )
    if tenant_id is not None:
        query = query.where(Deployment.tenant_id == tenant_id)
    postings: list[ledger.Posting] = []
    for deployment in (await session.scalars(query)).all():
        if deployment.ends_at is not None and deployment.ends_at <= start:
            continue
        fees = await fee_schedule(
            session, tenant_id=deployment.tenant_id, celebrity_id=deployment.celebrity_id
        )
        base: dict[str, Any] = {
            "tenant_id": deployment.tenant_id,
            "celebrity_id": deployment.celebrity_id,
            "deployment_id": deployment.id,
            "currency": fees.currency,
            "occurred_at": start,
            "celebrity_share_cents": 0,
        }
        if deployment.type is DeploymentType.EMBEDDED_WIDGET:
            monthly = fees.widget_monthly_cents
            label = "Embedded widget platform fee"
        else:
            monthly = fees.white_label_monthly_cents
            label = "White-label platform fee"
            billed_from = deployment.starts_at or deployment.created_at
            if billed_from >= start and fees.white_label_setup_cents > 0:
                postings.append(
                    ledger.Posting(
                        **base,
                        type=TransactionType.SETUP_FEE,
                        gross_cents=fees.white_label_setup_cents,
                        platform_share_cents=fees.white_label_setup_cents,
                        external_ref=f"deployment:{deployment.id}:setup",
                        description=f"White-label setup fee — {deployment.name}",
                    )
                )
        if monthly > 0:
            postings.append(
                ledger.Posting(
                    **base,
                    type=TransactionType.PLATFORM_FEE,
                    gross_cents=monthly,
                    platform_share_cents=monthly,
                    external_ref=f"deployment:{deployment.id}:fee:{_month_key(month)}",
                    description=f"{label} {_month_key(month)} — {deployment.name}",
                )
            )
    written = set(await ledger.write(session, postings))
    for tenant in {p.tenant_id for p in postings if p.id in written}:
        await outbox.emit(
            session,
            "DEPLOYMENT_FEES_POSTED",
            tenant_id=tenant,
            actor_role="SYSTEM",
            subject_type="tenant",
            subject_id=tenant,
            payload={
                "month": _month_key(month),
                "postings": [str(p.id) for p in postings if p.id in written and p.tenant_id == tenant],
            },
        )
    return len(written)
