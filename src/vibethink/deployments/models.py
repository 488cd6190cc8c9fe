"""Where a twin lives: portal, embedded widget, brand campaign, white-label domain."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import (
    Base,
    created_at_column,
    new_id,
    pg_enum,
    tenant_id_column,
    updated_at_column,
)


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
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
