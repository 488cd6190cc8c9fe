"""Payment providers behind one interface: `ledger` (offline default) and `stripe`."""

from __future__ import annotations

from vibethink.billing.providers.base import PaymentProvider, ProviderUnavailable
from vibethink.billing.providers.ledger import LedgerProvider
from vibethink.core.settings import Settings

_stripe: dict[int, PaymentProvider] = {}


def provider_for(settings: Settings) -> PaymentProvider:
    """The configured provider; Stripe clients are made once per settings object."""
    if settings.payment_provider == "ledger":
        return LedgerProvider()
    if not settings.stripe_api_key:
        raise ProviderUnavailable("Stripe is the payment provider but VIBETHINK_STRIPE_API_KEY is not set.")
    key = id(settings)
    if key not in _stripe:
        from vibethink.billing.providers.stripe_gateway import StripeProvider

        _stripe[key] = StripeProvider(settings)
    return _stripe[key]


__all__ = ["LedgerProvider", "PaymentProvider", "ProviderUnavailable", "provider_for"]
