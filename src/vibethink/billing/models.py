"""Pricing tiers and the immutable revenue ledger. Money is integer minor units with a currency."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKeyConstraint, Index, Integer, String, text
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
        Index("ix_revenue_transactions_tenant_time", "tenant_id", "occurred_at"),
        CheckConstraint("net_cents = gross_cents - fee_cents", name="net_is_gross_less_fee"),
        CheckConstraint("celebrity_share_cents + platform_share_cents = net_cents", name="shares_sum_to_net"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    brand_campaign_id: Mapped[uuid.UUID | None]
    reverses_id: Mapped[uuid.UUID | None]
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
