"""Stripe webhooks: verified with Stripe's signature scheme, applied once per event id, order-safe.

- The signature (`Stripe-Signature`, HMAC-SHA256 over `timestamp.payload`, 5-minute tolerance) is
  checked by the official SDK before anything is read; a bad one records nothing.
- The event id is written to `payment_events` in the same transaction as its effects: a repeated
  event finds its id and changes nothing; a failed one leaves no trace and Stripe sends it again.
- Order: subscription states older than the last applied (`provider_updated_at`) are ignored;
  refunds reverse the cumulative refunded amount, so any order of partial refunds ends right; an
  event that needs a payment not yet recorded answers 503, and Stripe retries it later.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing import ledger, quotas, service
from vibethink.billing.models import (
    FanSubscription,
    PaymentEvent,
    Purchase,
    PurchaseStatus,
    RevenueTransaction,
    SubscriptionStatus,
    TransactionType,
)
from vibethink.billing.providers.stripe_gateway import StripeProvider
from vibethink.core import outbox
from vibethink.core.database import RlsContext, apply_context
from vibethink.core.errors import InvalidInput, ServiceUnavailable

PROVIDER = "stripe"
TENANT_BY_REF_SQL = text("SELECT billing_stripe_tenant(:ref)")


class BadSignature(InvalidInput):
    status_code = 400
    code = "invalid_signature"
    default_message = "The webhook signature is not valid."


class RetryLater(ServiceUnavailable):
    code = "retry_later"
    default_message = "This event depends on one not yet received; send it again later."


def verify(payload: bytes, signature: str | None, secret: str | None) -> dict[str, Any]:
    """The event, when `signature` is Stripe's for `payload` under `secret`; BadSignature otherwise."""
    if not secret:
        raise ServiceUnavailable("Stripe webhooks are not configured (VIBETHINK_STRIPE_WEBHOOK_SECRET).")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, 300)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise BadSignature() from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or "data" not in event:
        raise BadSignature("The webhook body is not a Stripe event.")
    return event


def _object(event: dict[str, Any]) -> dict[str, Any]:
    found = event.get("data", {}).get("object", {})
    return found if isinstance(found, dict) else {}


def _invoice_metadata(invoice: dict[str, Any]) -> dict[str, Any]:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    legacy = invoice.get("subscription_details") or {}
    return dict(parent.get("metadata") or legacy.get("metadata") or {})


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    value = parent.get("subscription") or invoice.get("subscription")
    return str(value) if value else None


def _invoice_charge(invoice: dict[str, Any]) -> str | None:
    if invoice.get("charge"):
        return str(invoice["charge"])
    for payment in (invoice.get("payments") or {}).get("data", []):
        charge = (payment.get("payment") or {}).get("charge")
        if charge:
            return str(charge)
    return None


def metadata_of(event: dict[str, Any]) -> dict[str, Any]:
    obj = _object(event)
    if event.get("type", "").startswith("invoice."):
        return _invoice_metadata(obj)
    return dict(obj.get("metadata") or {})


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


async def tenant_of(session: AsyncSession, event: dict[str, Any]) -> uuid.UUID | None:
    """The tenant an event belongs to: our metadata, else the tenant whose ledger holds its charge."""
    found = _uuid(metadata_of(event).get("tenant_id"))
    if found is not None:
        return found
    obj = _object(event)
    charge = obj.get("charge") if event.get("type", "").startswith("charge.dispute") else obj.get("id")
    if event.get("type", "").startswith("charge.") and charge:
        return _uuid(await session.scalar(TENANT_BY_REF_SQL, {"ref": f"stripe:charge:{charge}"}))
    return None


def _at(epoch: Any) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


async def handle(session: AsyncSession, provider: StripeProvider, event: dict[str, Any]) -> str:
    """Applies a verified event once in the caller's transaction: 'applied', 'duplicate' or 'ignored'."""
    kind = str(event.get("type", ""))
    tenant_id = await tenant_of(session, event)
    if tenant_id is None:
        if kind.startswith("charge."):
            raise RetryLater()
        return "ignored"
    await apply_context(session, RlsContext(tenant_id=tenant_id, role="PAYMENT_PROVIDER"))
    obj = _object(event)
    recorded = await session.scalar(
        insert(PaymentEvent)
        .values(
            tenant_id=tenant_id,
            provider=PROVIDER,
            event_id=event["id"],
            event_type=kind[:100],
            object_id=str(obj.get("id", ""))[:200] or None,
            provider_created_at=_at(event.get("created", 0)),
        )
        .on_conflict_do_nothing()
        .returning(PaymentEvent.event_id)
    )
    if recorded is None:
        return "duplicate"
    created = _at(event.get("created", 0))
    handlers = {
        "checkout.session.completed": _checkout_completed,
        "checkout.session.expired": _checkout_expired,
        "invoice.paid": _invoice_paid,
        "invoice.payment_failed": _invoice_failed,
        "customer.subscription.updated": _subscription_changed,
        "customer.subscription.deleted": _subscription_changed,
        "charge.refunded": _charge_refunded,
        "charge.dispute.created": _dispute_created,
        "charge.dispute.closed": _dispute_closed,
    }
    handler = handlers.get(kind)
    if handler is None:
        return "ignored"
    await handler(session, provider, tenant_id, obj, created)
    await outbox.emit(
        session,
        "PAYMENT_EVENT_APPLIED",
        tenant_id=tenant_id,
        actor_role="PAYMENT_PROVIDER",
        subject_type="payment_event",
        subject_id=str(event["id"]),
        payload={"provider": PROVIDER, "type": kind, "object": str(obj.get("id", ""))[:200]},
    )
    return "applied"


async def _subscription(
    session: AsyncSession, tenant_id: uuid.UUID, metadata: dict[str, Any], external_id: str | None
) -> FanSubscription | None:
    subscription_id = _uuid(metadata.get("subscription_id"))
    query = select(FanSubscription).where(FanSubscription.tenant_id == tenant_id).with_for_update()
    if subscription_id is not None:
        return await session.scalar(query.where(FanSubscription.id == subscription_id))
    if external_id:
        return await session.scalar(query.where(FanSubscription.external_id == external_id))
    return None


async def _checkout_completed(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    metadata = dict(obj.get("metadata") or {})
    if obj.get("mode") == "subscription":
        found = await _subscription(session, tenant_id, metadata, obj.get("subscription"))
        if found is None:
            return
        found.external_id = found.external_id or obj.get("subscription")
        found.external_customer_id = found.external_customer_id or obj.get("customer")
        await session.flush()
        return
    purchase = await session.scalar(
        select(Purchase)
        .where(Purchase.tenant_id == tenant_id, Purchase.id == _uuid(metadata.get("purchase_id")))
        .with_for_update()
    )
    if purchase is None or obj.get("payment_status") not in ("paid", "no_payment_required"):
        return
    charge, fee = await _charge_and_fee(provider, obj)
    purchase.status = PurchaseStatus.PAID
    purchase.paid_at = at
    purchase.external_id = purchase.external_id or obj.get("id")
    await session.flush()
    await service.post_purchase(
        session,
        purchase,
        occurred_at=at,
        fee_cents=fee,
        ref=f"stripe:charge:{charge}" if charge else f"stripe:checkout:{obj.get('id')}",
    )


async def _charge_and_fee(provider: StripeProvider, obj: dict[str, Any]) -> tuple[str | None, int]:
    intent = obj.get("payment_intent")
    charge: str | None = None
    if isinstance(intent, dict):
        latest = intent.get("latest_charge")
        charge = latest if isinstance(latest, str) else (latest or {}).get("id")
    elif intent:
        found = await provider._call(provider.client.v1.payment_intents.retrieve_async(str(intent)))
        latest = found.to_dict().get("latest_charge")
        charge = str(latest) if latest else None
    if charge is None:
        return None, 0
    return charge, await provider.charge_fee(charge)


async def _checkout_expired(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    metadata = dict(obj.get("metadata") or {})
    found = await _subscription(session, tenant_id, metadata, None)
    if found is not None and found.status is SubscriptionStatus.INCOMPLETE:
        found.status = SubscriptionStatus.CANCELED
        found.ended_at = at
        quotas.forget_fan(found.tenant_id, found.celebrity_id, found.fan_key)
    purchase_id = _uuid(metadata.get("purchase_id"))
    if purchase_id is not None:
        purchase = await session.scalar(
            select(Purchase).where(Purchase.tenant_id == tenant_id, Purchase.id == purchase_id)
        )
        if purchase is not None and purchase.status is PurchaseStatus.PENDING:
            purchase.status = PurchaseStatus.EXPIRED
    await session.flush()


async def _invoice_paid(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    found = await _subscription(session, tenant_id, _invoice_metadata(obj), _invoice_subscription(obj))
    if found is None:
        raise RetryLater("The subscription of this invoice is not known yet.")
    found.external_id = found.external_id or _invoice_subscription(obj)
    found.external_customer_id = found.external_customer_id or obj.get("customer")
    amount = int(obj.get("amount_paid", 0))
    charge = _invoice_charge(obj)
    if charge is None and amount > 0 and obj.get("id"):
        # Recent API versions list an invoice's payments only when asked: ask, to name the charge.
        charge = _invoice_charge(await provider.invoice_with_payments(str(obj["id"])))
    fee = await provider.charge_fee(charge) if charge else 0
    lines = (obj.get("lines") or {}).get("data") or [{}]
    period = lines[-1].get("period") or {}
    if period.get("start") and period.get("end"):
        start, end = _at(period["start"]), _at(period["end"])
        if found.status is SubscriptionStatus.INCOMPLETE or end > found.current_period_end:
            found.current_period_start, found.current_period_end = start, end
    if found.status in (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.PAST_DUE):
        found.status = SubscriptionStatus.ACTIVE
        found.past_due_since = found.grace_until = None
    await session.flush()
    quotas.forget_fan(found.tenant_id, found.celebrity_id, found.fan_key)
    if amount > 0:
        await ledger.post(
            session,
            ledger.Posting(
                tenant_id=found.tenant_id,
                celebrity_id=found.celebrity_id,
                type=TransactionType.SUBSCRIPTION,
                gross_cents=amount,
                fee_cents=fee,
                occurred_at=at,
                currency=str(obj.get("currency", found.currency)).upper(),
                external_ref=f"stripe:charge:{charge}" if charge else f"stripe:invoice:{obj.get('id')}",
                deployment_id=found.deployment_id,
                subscription_id=found.id,
                fan_key=found.fan_key,
                provider=PROVIDER,
                description="Subscription payment (Stripe)",
            ),
        )


async def _invoice_failed(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    found = await _subscription(session, tenant_id, _invoice_metadata(obj), _invoice_subscription(obj))
    if found is None or found.status is not SubscriptionStatus.ACTIVE:
        return
    if found.provider_updated_at is not None and at < found.provider_updated_at:
        return
    await service.payment_failed(session, found, now=at)


STRIPE_STATUSES = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.EXPIRED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}


async def _subscription_changed(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    found = await _subscription(session, tenant_id, dict(obj.get("metadata") or {}), obj.get("id"))
    if found is None:
        raise RetryLater("The subscription is not known yet.")
    if found.provider_updated_at is not None and at < found.provider_updated_at:
        return  # an older state than the one applied: out of order, ignored
    found.provider_updated_at = at
    found.external_id = found.external_id or obj.get("id")
    found.cancel_at_period_end = bool(obj.get("cancel_at_period_end", False))
    status = STRIPE_STATUSES.get(str(obj.get("status")))
    if status is SubscriptionStatus.EXPIRED and found.status is not SubscriptionStatus.EXPIRED:
        found.status = status
        found.ended_at = _at(obj["ended_at"]) if obj.get("ended_at") else at
    elif status is SubscriptionStatus.PAST_DUE and found.status is SubscriptionStatus.ACTIVE:
        await service.payment_failed(session, found, now=at)
    elif status is SubscriptionStatus.ACTIVE and found.status is SubscriptionStatus.PAST_DUE:
        found.status = SubscriptionStatus.ACTIVE
        found.past_due_since = found.grace_until = None
    await session.flush()
    quotas.forget_fan(found.tenant_id, found.celebrity_id, found.fan_key)


async def _original(session: AsyncSession, tenant_id: uuid.UUID, charge: Any) -> RevenueTransaction:
    original = await ledger.by_ref(session, tenant_id, f"stripe:charge:{charge}")
    if original is None:
        raise RetryLater("The payment of this charge is not recorded yet.")
    return original


async def _reversed_with(session: AsyncSession, original: RevenueTransaction, prefix: str) -> int:
    value = await session.scalar(
        select(func.coalesce(func.sum(RevenueTransaction.gross_cents), 0)).where(
            RevenueTransaction.tenant_id == original.tenant_id,
            RevenueTransaction.reverses_id == original.id,
            RevenueTransaction.external_ref.like(f"{prefix}%"),
        )
    )
    return -int(value or 0)


async def _charge_refunded(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    original = await _original(session, tenant_id, obj.get("id"))
    refunded = int(obj.get("amount_refunded", 0))
    prefix = f"stripe:refund:{obj.get('id')}:"
    more = refunded - await _reversed_with(session, original, prefix)
    if more <= 0:
        return  # an older refund total than already applied
    left = original.gross_cents - (await ledger.reversed_so_far(session, original))[0]
    if left <= 0:
        return
    await ledger.reverse(
        session,
        original,
        occurred_at=at,
        amount_cents=min(more, left),
        external_ref=f"{prefix}{refunded}",
        description="Refund (Stripe)",
        provider=PROVIDER,
    )
    await _purchase_refunded(session, original)


async def _purchase_refunded(session: AsyncSession, original: RevenueTransaction) -> None:
    if original.purchase_id is None:
        return
    gross, _, _ = await ledger.reversed_so_far(session, original)
    if gross >= original.gross_cents:
        purchase = await session.scalar(
            select(Purchase).where(
                Purchase.tenant_id == original.tenant_id, Purchase.id == original.purchase_id
            )
        )
        if purchase is not None:
            purchase.status = PurchaseStatus.REFUNDED
            await session.flush()


async def _dispute_created(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    original = await _original(session, tenant_id, obj.get("charge"))
    left = original.gross_cents - (await ledger.reversed_so_far(session, original))[0]
    amount = min(int(obj.get("amount", 0)), left)
    if amount <= 0:
        return
    await ledger.reverse(
        session,
        original,
        occurred_at=at,
        amount_cents=amount,
        external_ref=f"stripe:dispute:{obj.get('id')}",
        description="Disputed by the card holder (Stripe)",
        provider=PROVIDER,
    )


async def _dispute_closed(
    session: AsyncSession, provider: StripeProvider, tenant_id: uuid.UUID, obj: dict[str, Any], at: datetime
) -> None:
    if obj.get("status") != "won":
        return  # lost: the reversal posted when it opened stands
    original = await _original(session, tenant_id, obj.get("charge"))
    reversal = await ledger.by_ref(session, tenant_id, f"stripe:dispute:{obj.get('id')}")
    if reversal is None:
        raise RetryLater("The dispute's opening is not recorded yet.")
    await ledger.post(
        session,
        ledger.Posting(
            tenant_id=tenant_id,
            celebrity_id=original.celebrity_id,
            type=original.type,
            gross_cents=-reversal.gross_cents,
            fee_cents=-reversal.fee_cents,
            occurred_at=at,
            currency=original.currency,
            external_ref=f"stripe:dispute:{obj.get('id')}:won",
            deployment_id=original.deployment_id,
            brand_campaign_id=original.brand_campaign_id,
            subscription_id=original.subscription_id,
            purchase_id=original.purchase_id,
            fan_key=original.fan_key,
            provider=PROVIDER,
            description="Dispute won: funds returned (Stripe)",
            celebrity_share_cents=-reversal.celebrity_share_cents,
            platform_share_cents=-reversal.platform_share_cents,
        ),
    )
