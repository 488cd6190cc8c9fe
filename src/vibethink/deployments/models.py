"""Where a twin lives: portal, embedded widget, brand campaign, white-label domain."""

from __future__ import annotations

import enum
import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import (
    Base,
    created_at_column,
    new_id,
    pg_enum,
    tenant_id_column,
    updated_at_column,
)


def new_key(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class DeploymentType(enum.StrEnum):
    VIBETHINK_PORTAL = "VIBETHINK_PORTAL"
    EMBEDDED_WIDGET = "EMBEDDED_WIDGET"
    BRAND_CAMPAIGN = "BRAND_CAMPAIGN"
    WHITE_LABEL = "WHITE_LABEL"


class DeploymentStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    ARCHIVED = "ARCHIVED"


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        Index("ix_deployments_tenant_celebrity", "tenant_id", "celebrity_id", "type"),
        # A fan arrives with a deployment id alone (chat_public_deployment, migration 0006).
        Index("ix_deployments_id", "id"),
        Index("ix_deployments_config_gin", "config", postgresql_using="gin"),
        Index("ix_deployments_config_domain", text("(config -> 'customDomain')"), postgresql_using="gin"),
        Index("ix_deployments_config_brand", text("(config -> 'brandId')"), postgresql_using="gin"),
        Index("ix_deployments_tenant_created", "tenant_id", "created_at", "id"),
        Index("uq_deployments_analytics_key", "tenant_id", "analytics_key", unique=True),
        # Campaign pages /{celebrity slug}/c/{slug}: unique per twin.
        Index(
            "uq_deployments_celebrity_slug",
            "tenant_id",
            "celebrity_id",
            "slug",
            unique=True,
            postgresql_where=text("slug IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    type: Mapped[DeploymentType] = mapped_column(pg_enum(DeploymentType, "deployment_type"))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[DeploymentStatus] = mapped_column(
        pg_enum(DeploymentStatus, "deployment_status"), server_default=DeploymentStatus.ACTIVE.value
    )
    # Host-routed white-label domain: a public identifier, globally unique by design.
    custom_domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    # The embed's public key (data-deployment-key): a public identifier, globally unique by design.
    widget_key: Mapped[str] = mapped_column(String(40), unique=True, default=lambda: new_key("vtw_"))
    analytics_key: Mapped[str] = mapped_column(String(40), default=lambda: new_key("vta_"))
    # Host pages allowed to embed: exact origins or hosts, and `*.example.com` wildcards.
    allowed_origins: Mapped[list[str]] = mapped_column(ARRAY(String(300)), server_default="{}")
    # The identity-verification secret is derived from this salt and the platform key, never stored.
    identity_salt: Mapped[str | None] = mapped_column(String(64))
    require_identity: Mapped[bool] = mapped_column(server_default=text("false"))
    slug: Mapped[str | None] = mapped_column(String(80))
    domain_token: Mapped[str | None] = mapped_column(String(64))
    domain_verified_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class ConversionKind(enum.StrEnum):
    SUBSCRIBE_CLICK = "SUBSCRIBE_CLICK"
    SUBSCRIBED = "SUBSCRIBED"
    LINK_CLICK = "LINK_CLICK"


class DeploymentConversion(Base):
    """A fan's step towards revenue on a deployment (a subscribe click, a subscription, a sponsor link)."""

    __tablename__ = "deployment_conversions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "deployment_id"], ["deployments.tenant_id", "deployments.id"], ondelete="CASCADE"
        ),
        Index("ix_deployment_conversions_tenant_deployment", "tenant_id", "deployment_id", "occurred_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    deployment_id: Mapped[uuid.UUID]
    fan_key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[ConversionKind] = mapped_column(pg_enum(ConversionKind, "conversion_kind"))
    detail: Mapped[str] = mapped_column(String(200), server_default="")
    occurred_at: Mapped[datetime] = created_at_column()
