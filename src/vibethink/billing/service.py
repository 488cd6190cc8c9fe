"""Billing rules: pricing tiers, fee schedules, fan subscriptions, one-time purchases and refunds.

Functions take the request's session first, write their platform event in the same transaction,
and never commit. Payments go through the configured provider (`billing/providers`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing import ledger, quotas
from vibethink.billing.models import (
    LIVE_SUBSCRIPTION_STATUSES,
    CampaignClick,
    FanSubscription,
    FeeSchedule,
    PricingTier,
    Purchase,
    PurchaseStatus,
    RevenueTransaction,
    SubscriptionStatus,
    TransactionType,
)
from vibethink.billing.schemas import (
    FeeScheduleWrite,
    PurchaseCreate,
    SubscriptionImport,
    TierCreate,
    TierUpdate,
)
from vibethink.campaigns.models import BrandCampaign, CampaignStatus
from vibethink.core import outbox
from vibethink.core.errors import AlreadyExists, Conflict, InvalidInput, InvalidTransition, NotFound
from vibethink.core.models import new_id
from vibethink.core.pagination import newest_first
from vibethink.talent import service as talent_service

if TYPE_CHECKING:
    from vibethink.tenancy.access import Principal

GRACE_DAYS: Final = 7
DEFAULT_PAGE: Final = 50


class AlreadySubscribed(Conflict):
    code = "already_subscribed"
    default_message = "The fan already has a subscription to this talent; change its tier instead."


class TierUnavailable(NotFound):
    code = "tier_unavailable"
    default_message = "No such active pricing tier for this talent."


def add_month(moment: datetime, months: int = 1) -> datetime:
    """The same day and time `months` later, clamped to the month's last day (Jan 31 → Feb 28)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = index // 12, index % 12 + 1
    days = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31]
    days += [30, 31, 30, 31]
    return moment.replace(year=year, month=month, day=min(moment.day, days[month - 1]))


async def _emit(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event_type: str,
    *,
    subject_type: str,
    subject_id: uuid.UUID,
    payload: dict[str, Any],
    principal: Principal | None = None,
) -> None:
    await outbox.emit(
        session,
        event_type,
        tenant_id=tenant_id,
        actor_user_id=principal.user_id if principal else None,
        actor_role=principal.actor_role if principal else None,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload,
    )


# Pricing tiers


async def list_tiers(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, active_only: bool = False
) -> list[PricingTier]:
    query = select(PricingTier).where(
        PricingTier.tenant_id == tenant_id, PricingTier.celebrity_id == celebrity_id
    )
    if active_only:
        query = query.where(PricingTier.is_active.is_(True))
    query = query.order_by(PricingTier.sort_order, PricingTier.monthly_price_cents, PricingTier.code)
    return list((await session.scalars(query)).all())


async def tier_by_code(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, code: str
) -> PricingTier:
    tier = await session.scalar(
        select(PricingTier).where(
            PricingTier.tenant_id == tenant_id,
            PricingTier.celebrity_id == celebrity_id,
            PricingTier.code == code,
            PricingTier.is_active.is_(True),
        )
    )
    if tier is None:
        raise TierUnavailable(f"No active tier '{code}' for this talent.", field="tier_code")
    return tier


async def create_tier(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, data: TierCreate
) -> PricingTier:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    tier = PricingTier(
        tenant_id=principal.tenant_id,
        id=new_id(),
        celebrity_id=celebrity.id,
        code=data.code,
        name=data.name,
        monthly_price_cents=data.monthly_price_cents,
        currency=data.currency,
        entitlements=data.entitlements.model_dump(),
        sort_order=data.sort_order,
        is_active=True,
    )
    session.add(tier)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"The tier '{data.code}' exists already.", field="code") from exc
    quotas.forget_celebrity(principal.tenant_id, celebrity.id)
    await _emit(
        session,
        principal.tenant_id,
        "PRICING_TIER_CREATED",
        subject_type="pricing_tier",
        subject_id=tier.id,
        payload={
            "code": tier.code,
            "monthly_price_cents": tier.monthly_price_cents,
            "currency": tier.currency,
        },
        principal=principal,
    )
    return tier


async def get_tier(session: AsyncSession, principal: Principal, tier_id: uuid.UUID) -> PricingTier:
    tier = await session.scalar(
        select(PricingTier).where(PricingTier.tenant_id == principal.tenant_id, PricingTier.id == tier_id)
    )
    if tier is None:
        raise NotFound("No such pricing tier.")
    return tier


async def update_tier(
    session: AsyncSession, principal: Principal, tier_id: uuid.UUID, data: TierUpdate
) -> PricingTier:
    """Changes a tier; a new price applies to new subscriptions and to renewals from the next period."""
    tier = await get_tier(session, principal, tier_id)
    changes = data.model_dump(exclude_none=True)
    if "entitlements" in changes:
        changes["entitlements"] = data.entitlements.model_dump() if data.entitlements else tier.entitlements
    changed = [k for k, v in changes.items() if getattr(tier, k) != v]
    for key in changed:
        setattr(tier, key, changes[key])
    if changed:
        await session.flush()
        quotas.forget_celebrity(principal.tenant_id, tier.celebrity_id)
        await _emit(
            session,
            principal.tenant_id,
            "PRICING_TIER_UPDATED",
            subject_type="pricing_tier",
            subject_id=tier.id,
            payload={"code": tier.code, "fields": changed},
            principal=principal,
        )
    return tier


# Fee schedules


async def fee_schedule(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID
) -> FeeSchedule:
    """The talent's deployment fees; the platform's standard fees when the contract sets none."""
    found = await session.scalar(
        select(FeeSchedule).where(
            FeeSchedule.tenant_id == tenant_id, FeeSchedule.celebrity_id == celebrity_id
        )
    )
    if found is not None:
        return found
    standard = FeeScheduleWrite()
    return FeeSchedule(tenant_id=tenant_id, celebrity_id=celebrity_id, **standard.model_dump())


async def put_fee_schedule(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, data: FeeScheduleWrite
) -> FeeSchedule:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    found = await session.scalar(
        select(FeeSchedule)
        .where(FeeSchedule.tenant_id == principal.tenant_id, FeeSchedule.celebrity_id == celebrity.id)
        .with_for_update()
    )
    if found is None:
        found = FeeSchedule(tenant_id=principal.tenant_id, celebrity_id=celebrity.id)
        session.add(found)
    for key, value in data.model_dump().items():
        setattr(found, key, value)
    await session.flush()
    await _emit(
        session,
        principal.tenant_id,
        "FEE_SCHEDULE_UPDATED",
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload=data.model_dump(),
        principal=principal,
    )
    return found


# Subscriptions


async def get_subscription(
    session: AsyncSession, tenant_id: uuid.UUID, subscription_id: uuid.UUID, *, for_update: bool = False
) -> FanSubscription:
    query = select(FanSubscription).where(
        FanSubscription.tenant_id == tenant_id, FanSubscription.id == subscription_id
    )
    if for_update:
        query = query.with_for_update()
    found = await session.scalar(query)
    if found is None:
        raise NotFound("No such subscription.")
    return found


async def live_subscription(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, fan_key: str
) -> FanSubscription | None:
    return await session.scalar(
        select(FanSubscription).where(
            FanSubscription.tenant_id == tenant_id,
            FanSubscription.celebrity_id == celebrity_id,
            FanSubscription.fan_key == fan_key,
            FanSubscription.status.in_(LIVE_SUBSCRIPTION_STATUSES),
        )
    )


def payment_posting(
    subscription: FanSubscription, *, gross_cents: int, occurred_at: datetime, ref: str, description: str
) -> ledger.Posting:
    return ledger.Posting(
        tenant_id=subscription.tenant_id,
        celebrity_id=subscription.celebrity_id,
        type=TransactionType.SUBSCRIPTION,
        gross_cents=gross_cents,
        occurred_at=occurred_at,
        currency=subscription.currency,
        external_ref=ref,
        deployment_id=subscription.deployment_id,
        subscription_id=subscription.id,
        fan_key=subscription.fan_key,
        provider=subscription.provider,
        description=description,
    )


def period_ref(subscription: FanSubscription, period_start: datetime) -> str:
    return f"subscription:{subscription.id}:{period_start.astimezone(UTC).isoformat()}"


async def start_subscription(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    celebrity_id: uuid.UUID,
    tier: PricingTier,
    fan_key: str,
    started_at: datetime,
    provider: str = "ledger",
    deployment_id: uuid.UUID | None = None,
    principal: Principal | None = None,
) -> FanSubscription:
    """A new subscription. Under `ledger` it is paid and ACTIVE now; other providers start INCOMPLETE."""
    if tier.monthly_price_cents <= 0:
        raise InvalidInput("A free tier needs no subscription.", field="tier_code")
    if await live_subscription(session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan_key):
        raise AlreadySubscribed()
    paid_now = provider == "ledger"
    subscription = FanSubscription(
        tenant_id=tenant_id,
        id=new_id(),
        celebrity_id=celebrity_id,
        tier_id=tier.id,
        deployment_id=deployment_id,
        fan_key=fan_key,
        status=SubscriptionStatus.ACTIVE if paid_now else SubscriptionStatus.INCOMPLETE,
        provider=provider,
        price_cents=tier.monthly_price_cents,
        currency=tier.currency,
        current_period_start=started_at,
        current_period_end=add_month(started_at),
        cancel_at_period_end=False,
    )
    session.add(subscription)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise AlreadySubscribed() from exc
    if paid_now:
        await ledger.post(
            session,
            payment_posting(
                subscription,
                gross_cents=subscription.price_cents,
                occurred_at=started_at,
                ref=period_ref(subscription, started_at),
                description=f"{tier.name} subscription",
            ),
        )
    quotas.forget_fan(tenant_id, celebrity_id, fan_key)
    await _emit(
        session,
        tenant_id,
        "SUBSCRIPTION_CREATED",
        subject_type="subscription",
        subject_id=subscription.id,
        payload={"tier": tier.code, "status": subscription.status.value, "provider": provider},
        principal=principal,
    )
    return subscription


async def import_subscriptions(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, data: SubscriptionImport
) -> tuple[int, int]:
    """Records subscriptions paid outside the platform (ledger), each with its first payment.

    A subscriber who already has a live subscription is skipped. Returns (created, skipped).
    """
    celebrity = await talent_service.get(session, principal, celebrity_id)
    tenant_id = principal.tenant_id
    tiers = {t.code: t for t in await list_tiers(session, tenant_id=tenant_id, celebrity_id=celebrity.id)}
    shares = await ledger.contract_shares(session, tenant_id=tenant_id, celebrity_id=celebrity.id)
    bp = ledger.celebrity_bp(TransactionType.SUBSCRIPTION, shares)
    wanted: dict[str, Any] = {}
    for position, item in enumerate(data.items):
        tier = tiers.get(item.tier_code)
        if tier is None or not tier.is_active or tier.monthly_price_cents <= 0:
            raise TierUnavailable(
                f"No active paid tier '{item.tier_code}'.", field=f"items.{position}.tier_code"
            )
        if item.started_at.tzinfo is None:
            raise InvalidInput("started_at needs a time zone.", field=f"items.{position}.started_at")
        wanted.setdefault(item.subscriber, item)
    existing = set(
        (
            await session.scalars(
                select(FanSubscription.fan_key).where(
                    FanSubscription.tenant_id == tenant_id,
                    FanSubscription.celebrity_id == celebrity.id,
                    FanSubscription.fan_key.in_(list(wanted)),
                    FanSubscription.status.in_(LIVE_SUBSCRIPTION_STATUSES),
                )
            )
        ).all()
    )
    subscriptions: list[FanSubscription] = []
    postings: list[ledger.Posting] = []
    for fan_key, item in wanted.items():
        if fan_key in existing:
            continue
        tier = tiers[item.tier_code]
        subscription = FanSubscription(
            tenant_id=tenant_id,
            id=new_id(),
            celebrity_id=celebrity.id,
            tier_id=tier.id,
            fan_key=fan_key,
            status=SubscriptionStatus.ACTIVE,
            provider="ledger",
            price_cents=tier.monthly_price_cents,
            currency=tier.currency,
            current_period_start=item.started_at,
            current_period_end=add_month(item.started_at),
            cancel_at_period_end=False,
        )
        subscriptions.append(subscription)
        postings.append(
            payment_posting(
                subscription,
                gross_cents=tier.monthly_price_cents,
                occurred_at=item.started_at,
                ref=period_ref(subscription, item.started_at),
                description=f"{tier.name} subscription",
            ).with_shares(bp)
        )
    session.add_all(subscriptions)
    await session.flush()
    await ledger.write(session, postings)
    for subscription in subscriptions:
        quotas.forget_fan(tenant_id, celebrity.id, subscription.fan_key)
    await _emit(
        session,
        tenant_id,
        "SUBSCRIPTIONS_IMPORTED",
        subject_type="celebrity",
        subject_id=celebrity.id,
        payload={"created": len(subscriptions), "skipped": len(data.items) - len(subscriptions)},
        principal=principal,
    )
    return len(subscriptions), len(data.items) - len(subscriptions)


@dataclass(frozen=True, slots=True)
class SubscriptionPage:
    items: list[FanSubscription]
    next_cursor: str | None


async def page_subscriptions(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    *,
    status: SubscriptionStatus | None,
    cursor: str | None,
    limit: int,
) -> SubscriptionPage:
    await talent_service.get(session, principal, celebrity_id)
    query = select(FanSubscription).where(
        FanSubscription.tenant_id == principal.tenant_id, FanSubscription.celebrity_id == celebrity_id
    )
    if status is not None:
        query = query.where(FanSubscription.status == status)
    items, next_cursor = await newest_first(
        session,
        query,
        created_at=FanSubscription.created_at,
        row_id=FanSubscription.id,
        cursor=cursor,
        limit=limit,
    )
    return SubscriptionPage(items, next_cursor)


async def _period_payment(session: AsyncSession, subscription: FanSubscription) -> RevenueTransaction | None:
    """The payment of the subscription's current period (what a downgrade credit reverses)."""
    return await session.scalar(
        select(RevenueTransaction)
        .where(
            RevenueTransaction.tenant_id == subscription.tenant_id,
            RevenueTransaction.subscription_id == subscription.id,
            RevenueTransaction.reverses_id.is_(None),
            RevenueTransaction.gross_cents > 0,
        )
        .order_by(RevenueTransaction.occurred_at.desc())
        .limit(1)
    )


async def change_tier(
    session: AsyncSession,
    subscription: FanSubscription,
    tier: PricingTier,
    *,
    now: datetime,
    principal: Principal | None = None,
) -> int:
    """Moves a live subscription to `tier` now, prorated over what is left of the period.

    An upgrade charges the difference for the rest of the period; a downgrade credits it back as a
    reversal of the period's payment. Returns the prorated amount (negative for a credit).
    """
    if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
        raise InvalidTransition("Only an active subscription can change tier.")
    if tier.id == subscription.tier_id:
        return 0
    if tier.currency != subscription.currency or tier.monthly_price_cents <= 0:
        raise InvalidInput("Choose a paid tier in the subscription's currency.", field="tier_code")
    whole = int((subscription.current_period_end - subscription.current_period_start).total_seconds())
    left = max(0, min(whole, int((subscription.current_period_end - now).total_seconds())))
    difference = (tier.monthly_price_cents - subscription.price_cents) * left
    amount = (abs(difference) * 2 + whole) // (2 * whole) * (1 if difference >= 0 else -1)
    ref = f"subscription:{subscription.id}:change:{now.astimezone(UTC).isoformat()}"
    if amount > 0 and subscription.provider == "ledger":
        await ledger.post(
            session,
            payment_posting(
                subscription,
                gross_cents=amount,
                occurred_at=now,
                ref=ref,
                description=f"Upgrade to {tier.name}, prorated",
            ),
        )
    elif amount < 0 and subscription.provider == "ledger":
        paid = await _period_payment(session, subscription)
        if paid is not None:
            left_to_reverse = paid.gross_cents - (await ledger.reversed_so_far(session, paid))[0]
            credit = min(-amount, left_to_reverse)
            if credit > 0:
                await ledger.reverse(
                    session,
                    paid,
                    occurred_at=now,
                    amount_cents=credit,
                    external_ref=ref,
                    description=f"Downgrade to {tier.name}, prorated credit",
                )
    previous = subscription.tier_id
    subscription.tier_id = tier.id
    subscription.price_cents = tier.monthly_price_cents
    await session.flush()
    quotas.forget_fan(subscription.tenant_id, subscription.celebrity_id, subscription.fan_key)
    await _emit(
        session,
        subscription.tenant_id,
        "SUBSCRIPTION_CHANGED",
        subject_type="subscription",
        subject_id=subscription.id,
        payload={"from_tier": str(previous), "to_tier": tier.code, "prorated_cents": amount},
        principal=principal,
    )
    return amount


async def cancel(
    session: AsyncSession,
    subscription: FanSubscription,
    *,
    at_period_end: bool = True,
    now: datetime,
    principal: Principal | None = None,
) -> FanSubscription:
    """Cancels at the end of the paid period (entitlements kept until then), or now."""
    if subscription.status not in LIVE_SUBSCRIPTION_STATUSES:
        raise InvalidTransition("This subscription has already ended.")
    if at_period_end:
        subscription.cancel_at_period_end = True
    else:
        subscription.status = SubscriptionStatus.CANCELED
        subscription.ended_at = now
    await session.flush()
    quotas.forget_fan(subscription.tenant_id, subscription.celebrity_id, subscription.fan_key)
    await _emit(
        session,
        subscription.tenant_id,
        "SUBSCRIPTION_CANCELED",
        subject_type="subscription",
        subject_id=subscription.id,
        payload={"at_period_end": at_period_end},
        principal=principal,
    )
    return subscription


async def resume(
    session: AsyncSession, subscription: FanSubscription, *, principal: Principal | None = None
) -> FanSubscription:
    if subscription.status not in LIVE_SUBSCRIPTION_STATUSES or not subscription.cancel_at_period_end:
        raise InvalidTransition("Only a subscription cancelled at period end can be resumed.")
    subscription.cancel_at_period_end = False
    await session.flush()
    await _emit(
        session,
        subscription.tenant_id,
        "SUBSCRIPTION_RESUMED",
        subject_type="subscription",
        subject_id=subscription.id,
        payload={},
        principal=principal,
    )
    return subscription


async def payment_failed(
    session: AsyncSession, subscription: FanSubscription, *, now: datetime, grace_days: int = GRACE_DAYS
) -> FanSubscription:
    """A renewal was not paid: PAST_DUE, entitlements kept until the grace period ends."""
    if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
        raise InvalidTransition("Only an active subscription can fall past due.")
    if subscription.status is SubscriptionStatus.ACTIVE:
        subscription.status = SubscriptionStatus.PAST_DUE
        subscription.past_due_since = now
        subscription.grace_until = now + timedelta(days=grace_days)
    await session.flush()
    quotas.forget_fan(subscription.tenant_id, subscription.celebrity_id, subscription.fan_key)
    await _emit(
        session,
        subscription.tenant_id,
        "SUBSCRIPTION_PAST_DUE",
        subject_type="subscription",
        subject_id=subscription.id,
        payload={"grace_until": subscription.grace_until.isoformat() if subscription.grace_until else None},
    )
    return subscription


async def record_renewal(
    session: AsyncSession, subscription: FanSubscription, *, occurred_at: datetime, fee_cents: int = 0
) -> bool:
    """The next period was paid: advance the period, back to ACTIVE, post the payment once."""
    if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
        raise InvalidTransition("Only an active or past-due subscription can be renewed.")
    start = subscription.current_period_end
    posted = await ledger.post(
        session,
        ledger.Posting(
            **{
                **_posting_fields(subscription),
                "gross_cents": subscription.price_cents,
                "fee_cents": fee_cents,
                "occurred_at": occurred_at,
                "external_ref": period_ref(subscription, start),
                "description": "Subscription renewal",
            }
        ),
    )
    subscription.current_period_start = start
    subscription.current_period_end = add_month(start)
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.past_due_since = None
    subscription.grace_until = None
    await session.flush()
    quotas.forget_fan(subscription.tenant_id, subscription.celebrity_id, subscription.fan_key)
    return posted


def _posting_fields(subscription: FanSubscription) -> dict[str, Any]:
    return {
        "tenant_id": subscription.tenant_id,
        "celebrity_id": subscription.celebrity_id,
        "type": TransactionType.SUBSCRIPTION,
        "currency": subscription.currency,
        "deployment_id": subscription.deployment_id,
        "subscription_id": subscription.id,
        "fan_key": subscription.fan_key,
        "provider": subscription.provider,
    }


# One-time purchases


async def record_purchase(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    data: PurchaseCreate,
    *,
    now: datetime,
    provider: str = "ledger",
) -> Purchase:
    """A one-time transaction. Under `ledger` it is paid now and posted; otherwise it waits for payment."""
    celebrity = await talent_service.get(session, principal, celebrity_id)
    paid_now = provider == "ledger"
    purchase = Purchase(
        tenant_id=principal.tenant_id,
        id=new_id(),
        celebrity_id=celebrity.id,
        deployment_id=data.deployment_id,
        fan_key=data.fan,
        kind=data.kind,
        description=data.description,
        amount_cents=data.amount_cents,
        currency=data.currency,
        status=PurchaseStatus.PAID if paid_now else PurchaseStatus.PENDING,
        provider=provider,
        paid_at=now if paid_now else None,
    )
    session.add(purchase)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise NotFound("No such deployment.", field="deployment_id") from exc
    if paid_now:
        await post_purchase(session, purchase, occurred_at=now, fee_cents=0, ref=f"purchase:{purchase.id}")
    await _emit(
        session,
        principal.tenant_id,
        "PURCHASE_CREATED",
        subject_type="purchase",
        subject_id=purchase.id,
        payload={
            "kind": purchase.kind.value,
            "amount_cents": purchase.amount_cents,
            "status": purchase.status,
        },
        principal=principal,
    )
    return purchase


async def post_purchase(
    session: AsyncSession, purchase: Purchase, *, occurred_at: datetime, fee_cents: int, ref: str
) -> bool:
    return await ledger.post(
        session,
        ledger.Posting(
            tenant_id=purchase.tenant_id,
            celebrity_id=purchase.celebrity_id,
            type=TransactionType.TRANSACTION_FEE,
            gross_cents=purchase.amount_cents,
            fee_cents=fee_cents,
            occurred_at=occurred_at,
            currency=purchase.currency,
            external_ref=ref,
            deployment_id=purchase.deployment_id,
            purchase_id=purchase.id,
            fan_key=purchase.fan_key,
            provider=purchase.provider,
            description=f"{purchase.kind.value.replace('_', ' ').title()}: {purchase.description}",
        ),
    )


# Ledger reads and refunds


@dataclass(frozen=True, slots=True)
class TransactionPage:
    items: list[RevenueTransaction]
    next_cursor: str | None


async def page_transactions(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, *, cursor: str | None, limit: int
) -> TransactionPage:
    await talent_service.get(session, principal, celebrity_id)
    query = select(RevenueTransaction).where(
        RevenueTransaction.tenant_id == principal.tenant_id, RevenueTransaction.celebrity_id == celebrity_id
    )
    items, next_cursor = await newest_first(
        session,
        query,
        created_at=RevenueTransaction.created_at,
        row_id=RevenueTransaction.id,
        cursor=cursor,
        limit=limit,
    )
    return TransactionPage(items, next_cursor)


async def refund(
    session: AsyncSession,
    principal: Principal,
    transaction_id: uuid.UUID,
    *,
    amount_cents: int | None,
    reason: str,
    now: datetime,
) -> RevenueTransaction:
    """A ledger refund: a reversing posting that undoes the shares; a fully refunded purchase is REFUNDED."""
    original = await ledger.get(session, principal.tenant_id, transaction_id)
    if original.provider != "ledger":
        raise InvalidInput("Refund provider payments through the provider; its webhook posts the reversal.")
    posting = await ledger.reverse(
        session,
        original,
        occurred_at=now,
        amount_cents=amount_cents,
        external_ref=f"refund:{original.id}:{new_id()}",
        description=f"Refund: {reason}" if reason else "",
    )
    if posting is None:  # pragma: no cover - the reference is fresh
        raise Conflict("The refund was already recorded.")
    if original.purchase_id is not None:
        gross_done, _, _ = await ledger.reversed_so_far(session, original)
        if gross_done >= original.gross_cents:
            purchase = await session.scalar(
                select(Purchase).where(
                    Purchase.tenant_id == original.tenant_id, Purchase.id == original.purchase_id
                )
            )
            if purchase is not None:
                purchase.status = PurchaseStatus.REFUNDED
                await session.flush()
    return await ledger.get(session, principal.tenant_id, posting.id)


# Campaign click-throughs


class NotACampaign(InvalidInput):
    code = "not_a_campaign"
    default_message = "Click-throughs are counted only on brand campaign deployments."


async def record_click(
    session: AsyncSession, *, tenant_id: uuid.UUID, deployment_id: uuid.UUID, fan_key: str, target: str
) -> uuid.UUID:
    """A fan's click-through on the campaign running at `deployment_id` (CPC billing counts these)."""
    campaign = await session.scalar(
        select(BrandCampaign.id).where(
            BrandCampaign.tenant_id == tenant_id,
            BrandCampaign.deployment_id == deployment_id,
            BrandCampaign.status.in_((CampaignStatus.APPROVED, CampaignStatus.ACTIVE)),
        )
    )
    if campaign is None:
        raise NotACampaign()
    click = CampaignClick(
        tenant_id=tenant_id, id=new_id(), campaign_id=campaign, fan_key=fan_key, target=target
    )
    session.add(click)
    await session.flush()
    return click.id
