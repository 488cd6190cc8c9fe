"""Billing API: tiers, fees, subscriptions, purchases, the ledger, statements, payouts, fans' usage."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from vibethink.billing import ledger, payouts, periods, quotas, service, statements, webhooks
from vibethink.billing.models import FanSubscription, SubscriptionStatus
from vibethink.billing.providers import provider_for
from vibethink.billing.providers.stripe_gateway import StripeProvider
from vibethink.billing.schemas import (
    AmountsRead,
    BrandCostRead,
    CampaignClickCreate,
    CancelSubscription,
    CloseMonth,
    CloseResult,
    FanSubscribe,
    FeeScheduleRead,
    FeeScheduleWrite,
    ImportResult,
    MarkPaid,
    Month,
    PayoutBatchCreate,
    PayoutRead,
    PayoutSettingsRead,
    PayoutSettingsWrite,
    PortalLink,
    PurchaseCreate,
    PurchaseRead,
    Refund,
    RefundResult,
    StatementLineRead,
    StatementRead,
    SubscribeResult,
    SubscriptionImport,
    SubscriptionRead,
    TierChange,
    TierCreate,
    TierRead,
    TierUpdate,
    TotalRead,
    TransactionRead,
    UsageRead,
)
from vibethink.chat.routes import CurrentFan, fan_context
from vibethink.chat.tokens import Fan
from vibethink.core.database import apply_context
from vibethink.core.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from vibethink.core.pagination import MAX_PAGE, Page
from vibethink.deployments import service as deployment_service
from vibethink.talent import service as talent_service
from vibethink.tenancy.access import DbSession, Principal, enter_admin_context, require, settings_of
from vibethink.tenancy.permissions import Permission

router = APIRouter(tags=["billing"])
fan_router = APIRouter(tags=["fan billing"])

BillingReader = Annotated[Principal, Depends(require(Permission.BILLING_READ))]
BillingWriter = Annotated[Principal, Depends(require(Permission.BILLING_WRITE))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Cursor = Annotated[str | None, Query(max_length=512)]
MonthPath = Annotated[Month, Path(description="YYYY-MM")]


def _now() -> datetime:
    return datetime.now(UTC)


def _month(value: str) -> date:
    try:
        return statements.parse_month(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="month") from exc


def _tier_read(tier: object) -> TierRead:
    return TierRead.model_validate(tier)


async def _platform_admin(session: DbSession, principal: Principal, action: str, reason: str) -> Principal:
    if not principal.is_platform_admin:
        raise PermissionDenied("Only platform admins can do this.")
    return await enter_admin_context(session, principal, reason=reason, action=action)


# Pricing tiers


@router.get("/celebrities/{celebrity_id}/pricing-tiers")
async def list_tiers(celebrity_id: uuid.UUID, principal: BillingReader, session: DbSession) -> list[TierRead]:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    tiers = await service.list_tiers(session, tenant_id=principal.tenant_id, celebrity_id=celebrity.id)
    return [_tier_read(t) for t in tiers]


@router.post("/celebrities/{celebrity_id}/pricing-tiers", status_code=201)
async def create_tier(
    celebrity_id: uuid.UUID, body: TierCreate, principal: BillingWriter, session: DbSession
) -> TierRead:
    return _tier_read(await service.create_tier(session, principal, celebrity_id, body))


@router.patch("/pricing-tiers/{tier_id}")
async def update_tier(
    tier_id: uuid.UUID, body: TierUpdate, principal: BillingWriter, session: DbSession
) -> TierRead:
    return _tier_read(await service.update_tier(session, principal, tier_id, body))


# Fee schedule


@router.get("/celebrities/{celebrity_id}/fee-schedule")
async def get_fee_schedule(
    celebrity_id: uuid.UUID, principal: BillingReader, session: DbSession
) -> FeeScheduleRead:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    found = await service.fee_schedule(session, tenant_id=principal.tenant_id, celebrity_id=celebrity.id)
    return FeeScheduleRead.model_validate(found)


@router.put("/celebrities/{celebrity_id}/fee-schedule")
async def put_fee_schedule(
    celebrity_id: uuid.UUID, body: FeeScheduleWrite, principal: BillingWriter, session: DbSession
) -> FeeScheduleRead:
    return FeeScheduleRead.model_validate(
        await service.put_fee_schedule(session, principal, celebrity_id, body)
    )


# Subscriptions (talent side)


@router.get("/celebrities/{celebrity_id}/subscriptions")
async def list_subscriptions(
    celebrity_id: uuid.UUID,
    principal: BillingReader,
    session: DbSession,
    status: SubscriptionStatus | None = None,
    limit: Limit = service.DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[SubscriptionRead]:
    found = await service.page_subscriptions(
        session, principal, celebrity_id, status=status, cursor=cursor, limit=limit
    )
    return Page[SubscriptionRead](
        items=[SubscriptionRead.model_validate(s) for s in found.items], next_cursor=found.next_cursor
    )


@router.post("/celebrities/{celebrity_id}/subscriptions/import", status_code=201)
async def import_subscriptions(
    celebrity_id: uuid.UUID, body: SubscriptionImport, principal: BillingWriter, session: DbSession
) -> ImportResult:
    """Records subscriptions paid outside the platform (ledger provider), each with its first payment."""
    created, skipped = await service.import_subscriptions(session, principal, celebrity_id, body)
    return ImportResult(created=created, skipped=skipped)


async def _talent_subscription(
    session: DbSession, principal: Principal, subscription_id: uuid.UUID
) -> FanSubscription:
    return await service.get_subscription(session, principal.tenant_id, subscription_id, for_update=True)


@router.post("/subscriptions/{subscription_id}/cancel")
async def cancel_subscription(
    subscription_id: uuid.UUID, body: CancelSubscription, principal: BillingWriter, session: DbSession
) -> SubscriptionRead:
    """Cancels a fan's subscription at the end of its paid period (or now)."""
    found = await _talent_subscription(session, principal, subscription_id)
    await service.cancel(session, found, at_period_end=body.at_period_end, now=_now(), principal=principal)
    return SubscriptionRead.model_validate(found)


@router.post("/subscriptions/{subscription_id}/payment-failed")
async def subscription_payment_failed(
    subscription_id: uuid.UUID, principal: BillingWriter, session: DbSession, request: Request
) -> SubscriptionRead:
    """Records that a ledger renewal was not paid: PAST_DUE, the tier kept through the grace period."""
    found = await _talent_subscription(session, principal, subscription_id)
    if found.provider != "ledger":
        raise InvalidInput("Stripe reports failed payments itself.")
    grace = settings_of(request).subscription_grace_days
    await service.payment_failed(session, found, now=_now(), grace_days=grace)
    return SubscriptionRead.model_validate(found)


@router.post("/subscriptions/{subscription_id}/renewal-paid")
async def subscription_renewal_paid(
    subscription_id: uuid.UUID, principal: BillingWriter, session: DbSession
) -> SubscriptionRead:
    """Records a ledger renewal the fan paid (late, during grace): the next period starts, once."""
    found = await _talent_subscription(session, principal, subscription_id)
    if found.provider != "ledger":
        raise InvalidInput("Stripe reports payments itself.")
    await service.record_renewal(session, found, occurred_at=_now())
    return SubscriptionRead.model_validate(found)


# Purchases and the ledger


@router.post("/celebrities/{celebrity_id}/purchases", status_code=201)
async def record_purchase(
    celebrity_id: uuid.UUID,
    body: PurchaseCreate,
    principal: BillingWriter,
    session: DbSession,
    request: Request,
) -> PurchaseRead:
    """A one-time transaction: recorded as paid (ledger), or a Stripe Checkout link to hand the fan."""
    settings = settings_of(request)
    provider = provider_for(settings)
    purchase = await service.record_purchase(
        session, principal, celebrity_id, body, now=_now(), provider=provider.name
    )
    if not provider.pays_at_once:
        checkout = await provider.begin_purchase(
            purchase,
            success_url=f"{settings.public_url}/billing/thanks",
            cancel_url=f"{settings.public_url}/billing/cancelled",
        )
        purchase.checkout_url = checkout.url
        purchase.external_id = checkout.external_id
        await session.flush()
    return PurchaseRead.model_validate(purchase)


@router.get("/celebrities/{celebrity_id}/revenue-transactions")
async def list_transactions(
    celebrity_id: uuid.UUID,
    principal: BillingReader,
    session: DbSession,
    limit: Limit = service.DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[TransactionRead]:
    found = await service.page_transactions(session, principal, celebrity_id, cursor=cursor, limit=limit)
    return Page[TransactionRead](
        items=[TransactionRead.model_validate(t) for t in found.items], next_cursor=found.next_cursor
    )


@router.post("/revenue-transactions/{transaction_id}/refund", status_code=201)
async def refund(
    transaction_id: uuid.UUID, body: Refund, principal: BillingWriter, session: DbSession, request: Request
) -> RefundResult:
    """Refunds all or part of a payment. Ledger payments get their reversing transaction now (the
    original is never edited); Stripe payments are refunded at Stripe, whose webhook posts the reversal."""
    original = await ledger.get(session, principal.tenant_id, transaction_id)
    if original.provider == "stripe":
        charge = (original.external_ref or "").removeprefix("stripe:charge:")
        if not original.external_ref or charge == original.external_ref:
            raise InvalidInput("This Stripe payment has no charge to refund.")
        provider = provider_for(settings_of(request))
        refund_id = await provider.refund(
            charge, body.amount_cents, idempotency_key=f"refund-{original.id}-{body.amount_cents or 'all'}"
        )
        return RefundResult(status="requested", provider_refund_id=refund_id)
    posted = await service.refund(
        session, principal, transaction_id, amount_cents=body.amount_cents, reason=body.reason, now=_now()
    )
    return RefundResult(status="posted", transaction=TransactionRead.model_validate(posted))


# Statements


def _amounts(a: statements.Amounts) -> AmountsRead:
    return AmountsRead(
        count=a.count,
        gross_cents=a.gross_cents,
        fee_cents=a.fee_cents,
        net_cents=a.net_cents,
        celebrity_share_cents=a.celebrity_share_cents,
        platform_share_cents=a.platform_share_cents,
    )


def statement_read(found: statements.Statement) -> StatementRead:
    return StatementRead(
        celebrity_id=found.celebrity_id,
        month=found.month.strftime("%Y-%m"),
        lines=[
            StatementLineRead(
                type=line.type,
                currency=line.currency,
                source=line.source_name,
                source_kind=line.source_kind,
                source_id=line.source_id,
                amounts=_amounts(line.amounts),
            )
            for line in found.lines
        ],
        totals=[
            TotalRead(currency=currency, **_amounts(total).model_dump())
            for currency, total in sorted(found.totals.items())
        ],
        by_type=[
            StatementLineRead(
                type=kind, currency=currency, source="", source_kind="", source_id=None, amounts=_amounts(a)
            )
            for (kind, currency), a in sorted(found.by_type.items())
        ],
        is_balanced=found.is_balanced,
    )


async def _statement(
    session: DbSession, principal: Principal, celebrity_id: uuid.UUID, month: str
) -> tuple[statements.Statement, str]:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    found = await statements.statement(
        session, tenant_id=principal.tenant_id, celebrity_id=celebrity.id, month=_month(month)
    )
    return found, celebrity.name


@router.get("/celebrities/{celebrity_id}/statements/{month}")
async def get_statement(
    celebrity_id: uuid.UUID, month: MonthPath, principal: BillingReader, session: DbSession
) -> StatementRead:
    found, _ = await _statement(session, principal, celebrity_id, month)
    return statement_read(found)


@router.get(
    "/celebrities/{celebrity_id}/statements/{month}/csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_statement_csv(
    celebrity_id: uuid.UUID, month: MonthPath, principal: BillingReader, session: DbSession
) -> Response:
    found, _ = await _statement(session, principal, celebrity_id, month)
    return Response(
        statements.to_csv(found),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="statement-{month}.csv"'},
    )


@router.get(
    "/celebrities/{celebrity_id}/statements/{month}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def get_statement_pdf(
    celebrity_id: uuid.UUID, month: MonthPath, principal: BillingReader, session: DbSession
) -> Response:
    found, name = await _statement(session, principal, celebrity_id, month)
    return Response(
        statements.to_pdf(found, celebrity_name=name),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="statement-{month}.pdf"'},
    )


# Brands: what their campaigns cost


@router.get("/brand/campaign-costs")
async def brand_campaign_costs(
    principal: BillingReader,
    session: DbSession,
    start: Annotated[Month, Query(alias="from")] = "2000-01",
    end: Annotated[Month, Query(alias="to")] = "2999-12",
) -> list[BrandCostRead]:
    """Campaign fees and CPM/CPC charges of the calling brand's campaigns, by month (gross only)."""
    first, _ = statements.month_bounds(_month(start))
    _, last = statements.month_bounds(_month(end))
    rows = await payouts.brand_costs(session, start=first, end=last)
    return [BrandCostRead.model_validate(r, from_attributes=True) for r in rows]


# Platform operations (platform admins, audited)


@router.post("/billing/close-month")
async def close_month(body: CloseMonth, principal: BillingWriter, session: DbSession) -> CloseResult:
    """Posts the month's renewals, deployment fees and campaign billing for every talent, once."""
    await _platform_admin(session, principal, "BILLING_MONTH_CLOSED", f"close {body.month}")
    summary = await periods.close_month(session, month=_month(body.month))
    return CloseResult(
        month=body.month,
        renewed=summary.renewed,
        expired=summary.expired,
        deployment_fees=summary.deployment_fees,
        campaign_postings=summary.campaign_postings,
    )


@router.get("/billing/platform-report/{month}")
async def platform_report(
    month: MonthPath, principal: BillingReader, session: DbSession
) -> dict[str, object]:
    """Platform revenue by stream and by talent for a month (platform admins)."""
    await _platform_admin(session, principal, "BILLING_REPORT_VIEWED", f"platform report {month}")
    report = await statements.platform_report(session, month=_month(month))
    return {
        "month": month,
        "by_stream": [
            {"type": kind, "currency": currency, **_amounts(a).model_dump()}
            for (kind, currency), a in sorted(report.by_stream.items())
        ],
        "by_talent": [
            {
                "celebrity_id": str(cid),
                "celebrity_name": name,
                "currency": currency,
                **_amounts(a).model_dump(),
            }
            for (cid, name, currency), a in sorted(report.by_talent.items(), key=lambda kv: kv[0][1])
        ],
        "totals": [
            {"currency": currency, **_amounts(a).model_dump()}
            for currency, a in sorted(report.totals.items())
        ],
    }


# Payouts


@router.get("/celebrities/{celebrity_id}/payout-settings")
async def get_payout_settings(
    celebrity_id: uuid.UUID, principal: BillingReader, session: DbSession
) -> PayoutSettingsRead:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    found = await payouts.settings_of(session, tenant_id=principal.tenant_id, celebrity_id=celebrity.id)
    return PayoutSettingsRead.model_validate(found)


@router.put("/celebrities/{celebrity_id}/payout-settings")
async def put_payout_settings(
    celebrity_id: uuid.UUID, body: PayoutSettingsWrite, principal: BillingWriter, session: DbSession
) -> PayoutSettingsRead:
    found = await payouts.put_settings(session, principal, celebrity_id, body)
    return PayoutSettingsRead.model_validate(found)


@router.post("/billing/payout-batches", status_code=201)
async def create_payout_batch(
    body: PayoutBatchCreate, principal: BillingWriter, session: DbSession, request: Request
) -> list[PayoutRead]:
    """One payout per talent of what its celebrity share owes through the month, less earlier payouts."""
    await _platform_admin(session, principal, "PAYOUT_BATCH_CREATED", f"payouts {body.month}")
    created = await payouts.create_batch(session, month=_month(body.month))
    provider = provider_for(settings_of(request))
    await payouts.send_transfers(session, provider, created)
    return [PayoutRead.model_validate(p) for p in created]


@router.get("/celebrities/{celebrity_id}/payouts")
async def list_payouts(
    celebrity_id: uuid.UUID,
    principal: BillingReader,
    session: DbSession,
    limit: Limit = service.DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[PayoutRead]:
    await talent_service.get(session, principal, celebrity_id)
    items, next_cursor = await payouts.page(
        session, tenant_id=principal.tenant_id, celebrity_id=celebrity_id, cursor=cursor, limit=limit
    )
    return Page[PayoutRead](items=[PayoutRead.model_validate(p) for p in items], next_cursor=next_cursor)


@router.post("/payouts/{payout_id}/mark-paid")
async def mark_payout_paid(
    payout_id: uuid.UUID, body: MarkPaid, principal: BillingWriter, session: DbSession
) -> PayoutRead:
    await _platform_admin(session, principal, "PAYOUT_MARKED_PAID", f"payout {payout_id}")
    return PayoutRead.model_validate(await payouts.mark_paid(session, payout_id, reference=body.reference))


# Fans: tiers, usage and their own subscription (fan token or signed-in fan)


async def _fan_twin(session: DbSession, fan: Fan) -> tuple[uuid.UUID, uuid.UUID]:
    if fan.deployment_id is None:
        raise InvalidInput("Use the fan token of the twin's deployment.", field="x-fan-token")
    await apply_context(session, fan_context(fan))
    found = await deployment_service.public_lookup(session, fan.deployment_id)
    if found is None or found.tenant_id != fan.tenant_id:
        raise NotFound("This twin is not available.")
    return found.tenant_id, found.celebrity_id


@fan_router.get("/fan/tiers")
async def fan_tiers(fan: CurrentFan, session: DbSession) -> list[TierRead]:
    tenant_id, celebrity_id = await _fan_twin(session, fan)
    tiers = await service.list_tiers(
        session, tenant_id=tenant_id, celebrity_id=celebrity_id, active_only=True
    )
    return [_tier_read(t) for t in tiers]


@fan_router.get("/fan/usage")
async def fan_usage(fan: CurrentFan, session: DbSession) -> UsageRead:
    """The fan's tier, today's message quota, what was used and what remains, and the period."""
    tenant_id, celebrity_id = await _fan_twin(session, fan)
    found = await quotas.usage(session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan.fan_key)
    return UsageRead(
        tier=found.allowance.tier_code,
        tier_name=found.allowance.tier_name,
        quota=found.quota,
        used=found.used,
        remaining=found.remaining,
        period_start=found.period_start,
        period_end=found.resets_at,
        premium_content=found.allowance.premium_content,
        voice_minutes=found.allowance.voice_minutes,
        video_minutes=found.allowance.video_minutes,
    )


def _signed_in(fan: Fan) -> None:
    if fan.user_id is None:
        raise NotAuthenticated("Sign in to subscribe, so the subscription follows you to every device.")


@fan_router.post("/fan/subscriptions", status_code=201)
async def fan_subscribe(
    body: FanSubscribe, fan: CurrentFan, session: DbSession, request: Request
) -> SubscribeResult:
    """Subscribes the signed-in fan: paid at once (ledger), or a Stripe Checkout link to pay at."""
    _signed_in(fan)
    settings = settings_of(request)
    provider = provider_for(settings)
    tenant_id, celebrity_id = await _fan_twin(session, fan)
    tier = await service.tier_by_code(
        session, tenant_id=tenant_id, celebrity_id=celebrity_id, code=body.tier_code
    )
    subscription = await service.start_subscription(
        session,
        tenant_id=tenant_id,
        celebrity_id=celebrity_id,
        tier=tier,
        fan_key=fan.fan_key,
        started_at=_now(),
        deployment_id=fan.deployment_id,
        provider=provider.name,
    )
    checkout = await provider.begin_subscription(
        subscription,
        tier,
        success_url=f"{settings.public_url}/billing/thanks",
        cancel_url=f"{settings.public_url}/billing/cancelled",
    )
    return SubscribeResult(
        subscription=SubscriptionRead.model_validate(subscription), checkout_url=checkout.url
    )


@fan_router.get("/fan/billing-portal")
async def fan_billing_portal(fan: CurrentFan, session: DbSession, request: Request) -> PortalLink:
    """A link to the payment provider's customer portal (cards, invoices) for the fan's subscription."""
    settings = settings_of(request)
    tenant_id, celebrity_id = await _fan_twin(session, fan)
    found = await service.live_subscription(
        session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan.fan_key
    )
    if found is None:
        raise NotFound("You have no subscription to this twin.")
    url = await provider_for(settings).portal_link(found.external_customer_id, return_url=settings.public_url)
    return PortalLink(url=url)


async def _own_subscription(session: DbSession, fan: Fan, subscription_id: uuid.UUID) -> FanSubscription:
    tenant_id, _ = await _fan_twin(session, fan)
    found = await service.get_subscription(session, tenant_id, subscription_id, for_update=True)
    if found.fan_key != fan.fan_key:
        raise NotFound("No such subscription.")
    return found


@fan_router.get("/fan/subscription")
async def fan_subscription(fan: CurrentFan, session: DbSession) -> SubscriptionRead:
    tenant_id, celebrity_id = await _fan_twin(session, fan)
    found = await service.live_subscription(
        session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan.fan_key
    )
    if found is None:
        raise NotFound("You have no subscription to this twin.")
    return SubscriptionRead.model_validate(found)


@fan_router.post("/fan/subscriptions/{subscription_id}/change")
async def fan_change_tier(
    subscription_id: uuid.UUID, body: TierChange, fan: CurrentFan, session: DbSession, request: Request
) -> SubscriptionRead:
    """Upgrade or downgrade now, prorated over the rest of the paid period."""
    subscription = await _own_subscription(session, fan, subscription_id)
    tier = await service.tier_by_code(
        session, tenant_id=subscription.tenant_id, celebrity_id=subscription.celebrity_id, code=body.tier_code
    )
    if subscription.provider != "ledger":
        await provider_for(settings_of(request)).change_tier(subscription, tier)
    await service.change_tier(session, subscription, tier, now=_now())
    return SubscriptionRead.model_validate(subscription)


@fan_router.post("/fan/subscriptions/{subscription_id}/cancel")
async def fan_cancel(
    subscription_id: uuid.UUID, fan: CurrentFan, session: DbSession, request: Request
) -> SubscriptionRead:
    """Cancels at the end of the paid period; the tier stays until then."""
    subscription = await _own_subscription(session, fan, subscription_id)
    if subscription.provider != "ledger":
        await provider_for(settings_of(request)).set_cancel_at_period_end(subscription, True)
    await service.cancel(session, subscription, at_period_end=True, now=_now())
    return SubscriptionRead.model_validate(subscription)


@fan_router.post("/fan/subscriptions/{subscription_id}/resume")
async def fan_resume(
    subscription_id: uuid.UUID, fan: CurrentFan, session: DbSession, request: Request
) -> SubscriptionRead:
    subscription = await _own_subscription(session, fan, subscription_id)
    if subscription.provider != "ledger":
        await provider_for(settings_of(request)).set_cancel_at_period_end(subscription, False)
    await service.resume(session, subscription)
    return SubscriptionRead.model_validate(subscription)


@fan_router.post("/fan/campaign-clicks", status_code=201)
async def fan_campaign_click(
    body: CampaignClickCreate, fan: CurrentFan, session: DbSession
) -> dict[str, str]:
    """Counts the fan's click-through on the campaign's call to action (what CPC bills)."""
    tenant_id, _ = await _fan_twin(session, fan)
    if fan.deployment_id is None:  # pragma: no cover - _fan_twin refuses tokens without one
        raise NotFound("This twin is not available.")
    click_id = await service.record_click(
        session, tenant_id=tenant_id, deployment_id=fan.deployment_id, fan_key=fan.fan_key, target=body.target
    )
    return {"id": str(click_id)}


# Stripe webhooks (signed by Stripe; no API key)


@router.post("/billing/webhooks/stripe", include_in_schema=False)
async def stripe_webhook(request: Request, session: DbSession) -> dict[str, str]:
    settings = settings_of(request)
    event = webhooks.verify(
        await request.body(), request.headers.get("stripe-signature"), settings.stripe_webhook_secret
    )
    provider = provider_for(settings)
    if not isinstance(provider, StripeProvider):
        raise InvalidInput("Stripe is not the configured payment provider.")
    return {"status": await webhooks.handle(session, provider, event)}
