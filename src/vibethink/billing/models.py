"""Pricing tiers and the immutable revenue ledger. Money is integer minor units with a currency."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKeyConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import (
    Base,
    created_at_column,
    new_id,
    pg_enum,
    tenant_id_column,
    updated_at_column,
)


class TransactionType(enum.StrEnum):
    SUBSCRIPTION = "SUBSCRIPTION"
    CAMPAIGN_FEE = "CAMPAIGN_FEE"
    TRANSACTION_FEE = "TRANSACTION_FEE"
    SETUP_FEE = "SETUP_FEE"
    PLATFORM_FEE = "PLATFORM_FEE"
    CPM = "CPM"
    CPC = "CPC"


class PricingTier(Base):
    __tablename__ = "pricing_tiers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        Index("uq_pricing_tiers_celebrity_code", "tenant_id", "celebrity_id", "code", unique=True),
        CheckConstraint("monthly_price_cents >= 0", name="price_non_negative"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    monthly_price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    entitlements: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    sort_order: Mapped[int] = mapped_column(Integer, server_default="0")
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class RevenueTransaction(Base):
    """One immutable row per money movement; reversals are new rows pointing at what they undo."""

    __tablename__ = "revenue_transactions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"]),
        ForeignKeyConstraint(["tenant_id", "deployment_id"], ["deployments.tenant_id", "deployments.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "brand_campaign_id"], ["brand_campaigns.tenant_id", "brand_campaigns.id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "reverses_id"], ["revenue_transactions.tenant_id", "revenue_transactions.id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "subscription_id"], ["fan_subscriptions.tenant_id", "fan_subscriptions.id"]
        ),
        ForeignKeyConstraint(["tenant_id", "purchase_id"], ["purchases.tenant_id", "purchases.id"]),
        Index("ix_revenue_transactions_tenant_time", "tenant_id", "occurred_at"),
        Index("ix_revenue_transactions_celebrity_time", "tenant_id", "celebrity_id", "occurred_at"),
        # Each posting names what it is for (a renewal, a month's campaign share, a provider event),
        # so a retried posting is refused by the database instead of counted twice.
        # A provider's webhook names a charge before any tenant is known (billing_stripe_tenant).
        Index(
            "ix_revenue_transactions_external_ref",
            "external_ref",
            postgresql_where=text("external_ref IS NOT NULL"),
        ),
        Index(
            "uq_revenue_transactions_external_ref",
            "tenant_id",
            "external_ref",
            unique=True,
            postgresql_where=text("external_ref IS NOT NULL"),
        ),
        CheckConstraint("net_cents = gross_cents - fee_cents", name="net_is_gross_less_fee"),
        CheckConstraint("celebrity_share_cents + platform_share_cents = net_cents", name="shares_sum_to_net"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    brand_campaign_id: Mapped[uuid.UUID | None]
    reverses_id: Mapped[uuid.UUID | None]
    subscription_id: Mapped[uuid.UUID | None]
    purchase_id: Mapped[uuid.UUID | None]
    fan_key: Mapped[str | None] = mapped_column(String(80))
    provider: Mapped[str] = mapped_column(String(16), server_default="ledger")
    description: Mapped[str] = mapped_column(Text, server_default="")
    type: Mapped[TransactionType] = mapped_column(pg_enum(TransactionType, "transaction_type"))
    currency: Mapped[str] = mapped_column(String(3))
    gross_cents: Mapped[int] = mapped_column(BigInteger)
    fee_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    net_cents: Mapped[int] = mapped_column(BigInteger)
    celebrity_share_cents: Mapped[int] = mapped_column(BigInteger)
    platform_share_cents: Mapped[int] = mapped_column(BigInteger)
    external_ref: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_at_column()


class SubscriptionStatus(enum.StrEnum):
    INCOMPLETE = "INCOMPLETE"  # waiting for the provider's first payment (Stripe Checkout)
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"  # a renewal failed: entitlements kept until the grace period ends
    CANCELED = "CANCELED"  # ended early by a refund or dispute, or a checkout that never completed
    EXPIRED = "EXPIRED"  # reached its end (cancelled at period end, or grace ran out)


LIVE_SUBSCRIPTION_STATUSES = (
    SubscriptionStatus.INCOMPLETE,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
)


class FanSubscription(Base):
    """A fan's monthly subscription to one talent's pricing tier."""

    __tablename__ = "fan_subscriptions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "tier_id"], ["pricing_tiers.tenant_id", "pricing_tiers.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "deployment_id"], ["deployments.tenant_id", "deployments.id"], ondelete="SET NULL"
        ),
        Index("ix_fan_subscriptions_tenant_celebrity", "tenant_id", "celebrity_id", "created_at", "id"),
        Index("ix_fan_subscriptions_tenant_fan", "tenant_id", "celebrity_id", "fan_key"),
        Index("ix_fan_subscriptions_tenant_due", "tenant_id", "status", "current_period_end"),
        Index(
            "uq_fan_subscriptions_one_live",
            "tenant_id",
            "celebrity_id",
            "fan_key",
            unique=True,
            postgresql_where=text("status IN ('INCOMPLETE', 'ACTIVE', 'PAST_DUE')"),
        ),
        Index(
            "uq_fan_subscriptions_external",
            "tenant_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        CheckConstraint("current_period_end > current_period_start", name="period_order"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    tier_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    fan_key: Mapped[str] = mapped_column(String(80))
    status: Mapped[SubscriptionStatus] = mapped_column(pg_enum(SubscriptionStatus, "subscription_status"))
    provider: Mapped[str] = mapped_column(String(16), server_default="ledger")
    external_id: Mapped[str | None] = mapped_column(String(200))
    external_customer_id: Mapped[str | None] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime]
    cancel_at_period_end: Mapped[bool] = mapped_column(server_default=text("false"))
    past_due_since: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # The provider's clock for the last state applied: older webhook events never undo newer ones.
    provider_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class PurchaseKind(enum.StrEnum):
    PREMIUM_CONTENT = "PREMIUM_CONTENT"
    CONSULTATION = "CONSULTATION"
    OTHER = "OTHER"


class PurchaseStatus(enum.StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    REFUNDED = "REFUNDED"
    EXPIRED = "EXPIRED"


class Purchase(Base):
    """A one-time transaction: premium content or a consultation."""

    __tablename__ = "purchases"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "deployment_id"], ["deployments.tenant_id", "deployments.id"], ondelete="SET NULL"
        ),
        Index("ix_purchases_tenant_celebrity", "tenant_id", "celebrity_id", "created_at", "id"),
        Index(
            "uq_purchases_external",
            "tenant_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    fan_key: Mapped[str | None] = mapped_column(String(80))
    kind: Mapped[PurchaseKind] = mapped_column(pg_enum(PurchaseKind, "purchase_kind"))
    description: Mapped[str] = mapped_column(String(300))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    status: Mapped[PurchaseStatus] = mapped_column(pg_enum(PurchaseStatus, "purchase_status"))
    provider: Mapped[str] = mapped_column(String(16), server_default="ledger")
    external_id: Mapped[str | None] = mapped_column(String(200))
    checkout_url: Mapped[str | None] = mapped_column(Text)
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class FeeSchedule(Base):
    """Deployment fees of a talent's contract: outside the revenue share, 100 % platform."""

    __tablename__ = "fee_schedules"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        CheckConstraint(
            "widget_monthly_cents >= 0 AND white_label_monthly_cents >= 0 AND white_label_setup_cents >= 0",
            name="fees_non_negative",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    celebrity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    widget_monthly_cents: Mapped[int] = mapped_column(BigInteger, server_default="50000")
    white_label_monthly_cents: Mapped[int] = mapped_column(BigInteger, server_default="50000")
    white_label_setup_cents: Mapped[int] = mapped_column(BigInteger, server_default="500000")
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class FanUsage(Base):
    """What a fan used of a talent's twin on one (UTC) day: the quota's counter."""

    __tablename__ = "fan_usage"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column(tenant_key=False)  # implied by the celebrity's
    celebrity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    fan_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    messages: Mapped[int] = mapped_column(Integer, server_default="0")
    voice_seconds: Mapped[int] = mapped_column(Integer, server_default="0")
    video_seconds: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = updated_at_column()


class CampaignClick(Base):
    """A fan's click-through on a campaign's call to action: what CPC billing counts."""

    __tablename__ = "campaign_clicks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "campaign_id"],
            ["brand_campaigns.tenant_id", "brand_campaigns.id"],
            ondelete="CASCADE",
        ),
        Index("ix_campaign_clicks_tenant_campaign", "tenant_id", "campaign_id", "occurred_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID]
    fan_key: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(2000), server_default="")
    occurred_at: Mapped[datetime] = created_at_column()


class PaymentEvent(Base):
    """A provider webhook event applied once: the idempotency record, keyed by the provider's event id."""

    __tablename__ = "payment_events"

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(200))
    provider_created_at: Mapped[datetime]
    received_at: Mapped[datetime] = created_at_column()


class PayoutMethod(enum.StrEnum):
    LEDGER = "LEDGER"  # paid outside the platform, marked paid with a reference
    STRIPE_CONNECT = "STRIPE_CONNECT"  # a transfer to the talent's connected Stripe account


class PayoutSettings(Base):
    __tablename__ = "payout_settings"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        CheckConstraint("minimum_payout_cents >= 0", name="minimum_non_negative"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    celebrity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    method: Mapped[PayoutMethod] = mapped_column(pg_enum(PayoutMethod, "payout_method"))
    stripe_account_id: Mapped[str | None] = mapped_column(String(100))
    payee_name: Mapped[str] = mapped_column(String(200), server_default="")
    payee_email: Mapped[str | None] = mapped_column(String(320))
    minimum_payout_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class PayoutStatus(enum.StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    FAILED = "FAILED"


class Payout(Base):
    """What the talent is owed for one month: its celebrity share, less what earlier payouts covered."""

    __tablename__ = "payouts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        Index("ix_payouts_celebrity_month", "tenant_id", "celebrity_id", "month"),
        Index("ix_payouts_tenant_created", "tenant_id", "created_at", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    batch_id: Mapped[uuid.UUID]
    month: Mapped[date]
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    method: Mapped[PayoutMethod] = mapped_column(pg_enum(PayoutMethod, "payout_method"))
    status: Mapped[PayoutStatus] = mapped_column(pg_enum(PayoutStatus, "payout_status"))
    reference: Mapped[str | None] = mapped_column(String(200))
    transfer_id: Mapped[str | None] = mapped_column(String(200))
    failure: Mapped[str | None] = mapped_column(Text)
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
