"""What every payment provider does for the billing rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vibethink.billing.models import FanSubscription, PricingTier, Purchase
from vibethink.core.errors import InvalidInput, ServiceUnavailable


class ProviderUnavailable(ServiceUnavailable):
    code = "payment_provider_unavailable"
    default_message = "The payment provider cannot be reached; try again in a moment."


class NotSupported(InvalidInput):
    code = "not_supported_by_provider"
    default_message = "The configured payment provider does not support this."


@dataclass(frozen=True, slots=True)
class Checkout:
    """Where the fan pays; `url` None means the provider recorded the payment already (ledger)."""

    url: str | None
    external_id: str | None = None


class PaymentProvider(Protocol):
    name: str

    @property
    def pays_at_once(self) -> bool:
        """True when starting a subscription or purchase records it as paid (ledger)."""

    async def begin_subscription(
        self, subscription: FanSubscription, tier: PricingTier, *, success_url: str, cancel_url: str
    ) -> Checkout: ...

    async def begin_purchase(self, purchase: Purchase, *, success_url: str, cancel_url: str) -> Checkout: ...

    async def portal_link(self, customer_id: str | None, *, return_url: str) -> str: ...

    async def set_cancel_at_period_end(self, subscription: FanSubscription, cancel: bool) -> None: ...

    async def change_tier(self, subscription: FanSubscription, tier: PricingTier) -> None: ...

    async def refund(
        self, charge_ref: str, amount_cents: int | None, *, idempotency_key: str
    ) -> str | None: ...

    async def transfer(
        self, amount_cents: int, currency: str, destination: str | None, *, idempotency_key: str
    ) -> str | None: ...
