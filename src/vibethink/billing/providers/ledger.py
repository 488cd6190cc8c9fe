"""The offline provider: payments are recorded by the platform when it is told of them."""

from __future__ import annotations

from vibethink.billing.models import FanSubscription, PricingTier, Purchase
from vibethink.billing.providers.base import Checkout, NotSupported


class LedgerProvider:
    name = "ledger"

    @property
    def pays_at_once(self) -> bool:
        return True

    async def begin_subscription(
        self, subscription: FanSubscription, tier: PricingTier, *, success_url: str, cancel_url: str
    ) -> Checkout:
        return Checkout(url=None)

    async def begin_purchase(self, purchase: Purchase, *, success_url: str, cancel_url: str) -> Checkout:
        return Checkout(url=None)

    async def portal_link(self, customer_id: str | None, *, return_url: str) -> str:
        raise NotSupported(
            "Subscriptions recorded by the platform are managed here, not in a payment portal."
        )

    async def set_cancel_at_period_end(self, subscription: FanSubscription, cancel: bool) -> None:
        return None

    async def change_tier(self, subscription: FanSubscription, tier: PricingTier) -> None:
        return None

    async def refund(self, charge_ref: str, amount_cents: int | None, *, idempotency_key: str) -> str | None:
        # The ledger posts the reversal itself (service.refund); nothing leaves the platform.
        return None

    async def transfer(
        self, amount_cents: int, currency: str, destination: str | None, *, idempotency_key: str
    ) -> str | None:
        # Paid outside the platform and marked paid with a reference.
        return None
