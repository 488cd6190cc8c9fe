"""Brands and their campaigns with talents."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import (
    Base,
    created_at_column,
    new_id,
    pg_enum,
    tenant_id_column,
    updated_at_column,
)


class CampaignStatus(enum.StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class Brand(Base):
    """A brand, owned by a tenant of kind BRAND."""

    __tablename__ = "brands"

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class BrandCampaign(Base):
    """Owned by the talent's tenant; the brand's tenant sees it too (policy on `brand_tenant_id`)."""

    __tablename__ = "brand_campaigns"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["brand_tenant_id", "brand_id"], ["brands.tenant_id", "brands.id"]),
        ForeignKeyConstraint(["tenant_id", "deployment_id"], ["deployments.tenant_id", "deployments.id"]),
        Index("ix_brand_campaigns_tenant_celebrity", "tenant_id", "celebrity_id", "starts_at"),
        Index("ix_brand_campaigns_brand_tenant", "brand_tenant_id", "starts_at"),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="window_order"),
        CheckConstraint("fee_cents >= 0 AND cpm_cents >= 0 AND cpc_cents >= 0", name="amounts_non_negative"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    brand_tenant_id: Mapped[uuid.UUID]
    brand_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    campaign_name: Mapped[str] = mapped_column(String(200))
    # The sponsor's name as the brand gave it, for the disclosure (the talent cannot read `brands`).
    brand_name: Mapped[str] = mapped_column(String(200), server_default="")
    slug: Mapped[str] = mapped_column(String(80), server_default="")
    requested_by: Mapped[uuid.UUID | None]
    decided_by: Mapped[uuid.UUID | None]
    category: Mapped[str | None] = mapped_column(String(100))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    is_exclusive: Mapped[bool] = mapped_column(server_default=text("false"))
    fee_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cpm_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cpc_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    guidelines: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[CampaignStatus] = mapped_column(
        pg_enum(CampaignStatus, "campaign_status"), server_default=CampaignStatus.REQUESTED.value
    )
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
