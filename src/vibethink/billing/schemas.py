"""Billing API shapes. Amounts are integer minor units (`*_cents`) with an ISO currency."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vibethink.billing.models import (
    PayoutMethod,
    PayoutStatus,
    PurchaseKind,
    PurchaseStatus,
    SubscriptionStatus,
    TransactionType,
)

Cents = Annotated[int, Field(ge=0, le=10**12)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
TierCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")]
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
FanRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:@+-]{1,70}$")]


class Entitlements(BaseModel):
    """What a tier unlocks. `messages_per_day` null means no daily limit; minutes are per month."""

    model_config = ConfigDict(extra="forbid")

    messages_per_day: int | None = Field(default=20, ge=0, le=1_000_000)
    premium_content: bool = False
    voice_minutes: int = Field(default=0, ge=0, le=1_000_000)
    video_minutes: int = Field(default=0, ge=0, le=1_000_000)
    perks: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="What the portal lists for the tier."
    )


class EntitlementsRead(Entitlements):
    # Stored entitlements may carry keys a newer version added: reads never fail on them.
    model_config = ConfigDict(extra="ignore")


class TierCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: TierCode
    name: str = Field(min_length=1, max_length=100)
    monthly_price_cents: Cents
    currency: Currency = "USD"
    entitlements: Entitlements = Field(default_factory=Entitlements)
    sort_order: int = Field(default=0, ge=0, le=1000)


class TierUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    monthly_price_cents: Cents | None = None
    entitlements: Entitlements | None = None
    sort_order: int | None = Field(default=None, ge=0, le=1000)
    is_active: bool | None = None


class TierRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    code: str
    name: str
    monthly_price_cents: int
    currency: str
    entitlements: EntitlementsRead
    sort_order: int
    is_active: bool


class FeeScheduleWrite(BaseModel):
    """Deployment fees set by the contract: the widget fee, and the white-label monthly and setup fees."""

    model_config = ConfigDict(extra="forbid")

    widget_monthly_cents: Cents = 50_000
    white_label_monthly_cents: Annotated[int, Field(ge=50_000, le=200_000)] = 50_000
    white_label_setup_cents: Annotated[int, Field(ge=500_000, le=1_500_000)] = 500_000
    currency: Currency = "USD"


class FeeScheduleRead(FeeScheduleWrite):
    model_config = ConfigDict(from_attributes=True)

    celebrity_id: uuid.UUID


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    tier_id: uuid.UUID
    fan_key: str
    status: SubscriptionStatus
    provider: str
    price_cents: int
    currency: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    grace_until: datetime | None
    ended_at: datetime | None
    created_at: datetime


class SubscriptionImportItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriber: FanRef = Field(description="The fan: `user:<uuid>` or the talent's own subscriber reference.")
    tier_code: TierCode
    started_at: datetime


class SubscriptionImport(BaseModel):
    """Subscriptions the talent was paid for outside the platform (ledger provider): recorded as paid."""

    model_config = ConfigDict(extra="forbid")

    items: list[SubscriptionImportItem] = Field(min_length=1, max_length=2_000)


class ImportResult(BaseModel):
    created: int
    skipped: int


class FanSubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier_code: TierCode


class SubscribeResult(BaseModel):
    subscription: SubscriptionRead
    checkout_url: str | None = Field(default=None, description="Where the fan pays (Stripe); null when paid.")


class CancelSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at_period_end: bool = True


class TierChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier_code: TierCode


class PurchaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: PurchaseKind
    description: str = Field(min_length=1, max_length=300)
    amount_cents: Annotated[int, Field(gt=0, le=10**10)]
    currency: Currency = "USD"
    fan: FanRef | None = None
    deployment_id: uuid.UUID | None = None


class PurchaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    kind: PurchaseKind
    description: str
    amount_cents: int
    currency: str
    status: PurchaseStatus
    provider: str
    checkout_url: str | None
    paid_at: datetime | None
    created_at: datetime


class TransactionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    type: TransactionType
    currency: str
    gross_cents: int
    fee_cents: int
    net_cents: int
    celebrity_share_cents: int
    platform_share_cents: int
    deployment_id: uuid.UUID | None
    brand_campaign_id: uuid.UUID | None
    subscription_id: uuid.UUID | None
    purchase_id: uuid.UUID | None
    reverses_id: uuid.UUID | None
    provider: str
    description: str
    occurred_at: datetime
    created_at: datetime


class Refund(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Annotated[int, Field(gt=0, le=10**12)] | None = None
    reason: str = Field(default="", max_length=300)


class CampaignClickCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    target: str = Field(default="", max_length=2000, description="Where the call to action led.")


class RefundResult(BaseModel):
    status: str = Field(
        description="`posted`: the reversal is in the ledger; `requested`: the provider's webhook posts it."
    )
    transaction: TransactionRead | None = None
    provider_refund_id: str | None = None


class PortalLink(BaseModel):
    url: str


class AmountsRead(BaseModel):
    count: int
    gross_cents: int
    fee_cents: int
    net_cents: int
    celebrity_share_cents: int
    platform_share_cents: int


class StatementLineRead(BaseModel):
    type: str
    currency: str
    source: str
    source_kind: str
    source_id: uuid.UUID | None
    amounts: AmountsRead


class TotalRead(AmountsRead):
    currency: str


class StatementRead(BaseModel):
    celebrity_id: uuid.UUID
    month: str
    lines: list[StatementLineRead]
    totals: list[TotalRead]
    by_type: list[StatementLineRead]
    is_balanced: bool


class CloseMonth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month


class CloseResult(BaseModel):
    month: str
    renewed: int
    expired: int
    deployment_fees: int
    campaign_postings: int


class PayoutSettingsWrite(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    method: PayoutMethod = PayoutMethod.LEDGER
    stripe_account_id: Annotated[str, StringConstraints(pattern=r"^acct_[A-Za-z0-9]{1,60}$")] | None = None
    payee_name: str = Field(default="", max_length=200)
    payee_email: str | None = Field(default=None, max_length=320)
    minimum_payout_cents: Cents = 0
    currency: Currency = "USD"


class PayoutSettingsRead(PayoutSettingsWrite):
    model_config = ConfigDict(from_attributes=True)

    celebrity_id: uuid.UUID


class PayoutRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    batch_id: uuid.UUID
    month: date
    amount_cents: int
    currency: str
    method: PayoutMethod
    status: PayoutStatus
    reference: str | None
    transfer_id: str | None
    paid_at: datetime | None
    created_at: datetime


class PayoutBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month


class MarkPaid(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: str = Field(min_length=1, max_length=200)


class UsageRead(BaseModel):
    tier: str
    tier_name: str
    quota: int | None = Field(description="Messages per day; null when the tier has no daily limit.")
    used: int
    remaining: int | None
    period_start: datetime
    period_end: datetime
    premium_content: bool
    voice_minutes: int
    video_minutes: int


class BrandCostRead(BaseModel):
    campaign_id: uuid.UUID
    campaign_name: str
    celebrity_name: str
    type: TransactionType
    month: date
    currency: str
    gross_cents: int
