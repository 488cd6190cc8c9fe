"""Stripe through its official SDK: Checkout Sessions, the customer portal, refunds, Connect transfers.

Every outgoing call that creates or changes something carries an idempotency key derived from what it
is for, so a retried request never charges, refunds or transfers twice. Payments themselves are
recorded from signed webhooks (`billing/webhooks.py`), never from these calls' answers.
"""

from __future__ import annotations

from typing import Any

import stripe

from vibethink.billing.models import FanSubscription, PricingTier, Purchase
from vibethink.billing.providers.base import Checkout, NotSupported, ProviderUnavailable
from vibethink.core.settings import Settings


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        self.client = stripe.StripeClient(
            api_key=settings.stripe_api_key or "",
            base_addresses={"api": settings.stripe_api_base},
            http_client=stripe.HTTPXClient(timeout=20),
            max_network_retries=2,
        )

    @property
    def pays_at_once(self) -> bool:
        return False

    async def _call(self, coroutine: Any) -> Any:
        try:
            return await coroutine
        except stripe.APIConnectionError as exc:
            raise ProviderUnavailable() from exc
        except stripe.StripeError as exc:
            raise ProviderUnavailable(f"Stripe refused the request: {exc.user_message or exc}") from exc

    async def begin_subscription(
        self, subscription: FanSubscription, tier: PricingTier, *, success_url: str, cancel_url: str
    ) -> Checkout:
        metadata = {
            "tenant_id": str(subscription.tenant_id),
            "subscription_id": str(subscription.id),
            "celebrity_id": str(subscription.celebrity_id),
            "kind": "subscription",
        }
        session = await self._call(
            self.client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "client_reference_id": str(subscription.id),
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": subscription.currency.lower(),
                                "unit_amount": subscription.price_cents,
                                "recurring": {"interval": "month"},
                                "product_data": {"name": tier.name},
                            },
                        }
                    ],
                    "metadata": metadata,
                    "subscription_data": {"metadata": metadata},
                },
                options={"idempotency_key": f"subscription-checkout-{subscription.id}"},
            )
        )
        return Checkout(url=session.url, external_id=session.id)

    async def begin_purchase(self, purchase: Purchase, *, success_url: str, cancel_url: str) -> Checkout:
        metadata = {
            "tenant_id": str(purchase.tenant_id),
            "purchase_id": str(purchase.id),
            "celebrity_id": str(purchase.celebrity_id),
            "kind": "purchase",
        }
        session = await self._call(
            self.client.v1.checkout.sessions.create_async(
                params={
                    "mode": "payment",
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "client_reference_id": str(purchase.id),
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": purchase.currency.lower(),
                                "unit_amount": purchase.amount_cents,
                                "product_data": {"name": purchase.description},
                            },
                        }
                    ],
                    "metadata": metadata,
                    "payment_intent_data": {"metadata": metadata},
                },
                options={"idempotency_key": f"purchase-checkout-{purchase.id}"},
            )
        )
        return Checkout(url=session.url, external_id=session.id)

    async def portal_link(self, customer_id: str | None, *, return_url: str) -> str:
        if not customer_id:
            raise NotSupported("There is no Stripe customer for this fan yet.")
        portal = await self._call(
            self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            )
        )
        return str(portal.url)

    async def set_cancel_at_period_end(self, subscription: FanSubscription, cancel: bool) -> None:
        if not subscription.external_id:
            return
        await self._call(
            self.client.v1.subscriptions.update_async(
                subscription.external_id,
                params={"cancel_at_period_end": cancel},
                options={"idempotency_key": f"subscription-cancel-{subscription.id}-{int(cancel)}"},
            )
        )

    async def change_tier(self, subscription: FanSubscription, tier: PricingTier) -> None:
        if not subscription.external_id:
            raise NotSupported("The subscription's checkout has not completed yet.")
        found = await self._call(self.client.v1.subscriptions.retrieve_async(subscription.external_id))
        item_id = found["items"]["data"][0]["id"]
        await self._call(
            self.client.v1.subscriptions.update_async(
                subscription.external_id,
                params={
                    "proration_behavior": "always_invoice",
                    "items": [
                        {
                            "id": item_id,
                            "price_data": {
                                "currency": tier.currency.lower(),
                                "unit_amount": tier.monthly_price_cents,
                                "recurring": {"interval": "month"},
                                "product": found["items"]["data"][0]["price"]["product"],
                            },
                        }
                    ],
                    "metadata": {"tier_id": str(tier.id)},
                },
                options={"idempotency_key": f"subscription-tier-{subscription.id}-{tier.id}"},
            )
        )

    async def refund(self, charge_ref: str, amount_cents: int | None, *, idempotency_key: str) -> str | None:
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        if amount_cents is None:
            request = self.client.v1.refunds.create_async(params={"charge": charge_ref}, options=options)
        else:
            request = self.client.v1.refunds.create_async(
                params={"charge": charge_ref, "amount": amount_cents}, options=options
            )
        refund = await self._call(request)
        return str(refund.id)

    async def transfer(
        self, amount_cents: int, currency: str, destination: str | None, *, idempotency_key: str
    ) -> str | None:
        if not destination:
            raise NotSupported("Stripe Connect payouts need the talent's connected account.")
        transfer = await self._call(
            self.client.v1.transfers.create_async(
                params={"amount": amount_cents, "currency": currency.lower(), "destination": destination},
                options={"idempotency_key": idempotency_key},
            )
        )
        return str(transfer.id)

    async def invoice_with_payments(self, invoice_id: str) -> dict[str, Any]:
        """The invoice with its payments expanded (where the charge of a paid invoice is named)."""
        invoice = await self._call(
            self.client.v1.invoices.retrieve_async(invoice_id, params={"expand": ["payments"]})
        )
        found: dict[str, Any] = invoice.to_dict()
        return found

    async def charge_fee(self, charge_id: str) -> int:
        """Stripe's processing fee for a charge, from its balance transaction."""
        charge = await self._call(
            self.client.v1.charges.retrieve_async(charge_id, params={"expand": ["balance_transaction"]})
        )
        balance = charge.to_dict().get("balance_transaction")
        return int(balance["fee"]) if balance and not isinstance(balance, str) else 0
