"""Celebrities (a tenant's twin owners), their contracts, and the JSON-schema registry."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import (
    Base,
    created_at_column,
    new_id,
    pg_enum,
    tenant_id_column,
    updated_at_column,
)


class CelebrityType(enum.StrEnum):
    SPORTS_COMMENTATOR = "SPORTS_COMMENTATOR"
    ATHLETE = "ATHLETE"
    COACH = "COACH"
    ENTERTAINER = "ENTERTAINER"
    INFLUENCER = "INFLUENCER"
    EXPERT = "EXPERT"


class EntityStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    PENDING_SETUP = "PENDING_SETUP"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


class Celebrity(Base):
    __tablename__ = "celebrities"
    __table_args__ = (
        Index("ix_celebrities_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_celebrities_twin_config_gin", "twin_config", postgresql_using="gin"),
        Index(
            "ix_celebrities_twin_config_voice",
            text("(twin_config -> 'voiceCloneId')"),
            postgresql_using="gin",
        ),
        Index(
            "ix_celebrities_twin_config_avatar",
            text("(twin_config -> 'visualAvatarId')"),
            postgresql_using="gin",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Portal path `/{slug}`: a public identifier, globally unique by design.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[CelebrityType] = mapped_column(pg_enum(CelebrityType, "celebrity_type"))
    status: Mapped[EntityStatus] = mapped_column(
        pg_enum(EntityStatus, "entity_status"), server_default=EntityStatus.PENDING_SETUP.value
    )
    bio: Mapped[str] = mapped_column(Text, server_default="")
    twin_config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    twin_config_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    archived_at: Mapped[datetime | None]


class Contract(Base):
    """Revenue shares in basis points per revenue type, exclusivity rules and the term."""

    __tablename__ = "contracts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        Index("ix_contracts_tenant_celebrity", "tenant_id", "celebrity_id", "starts_on"),
        CheckConstraint("ends_on IS NULL OR ends_on > starts_on", name="term_order"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    revenue_shares_bp: Mapped[dict[str, Any]]
    exclusivity_rules: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    starts_on: Mapped[date]
    ends_on: Mapped[date | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class JsonbSchema(Base):
    """Versioned JSON Schemas for the platform's JSONB columns; one active version per name."""

    __tablename__ = "jsonb_schemas"
    __table_args__ = (
        Index("uq_jsonb_schemas_name_version", "schema_name", "version", unique=True),
        Index(
            "uq_jsonb_schemas_one_active",
            "schema_name",
            unique=True,
            postgresql_where=text("is_active"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    schema_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    schema: Mapped[dict[str, Any]]
    defaults: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    is_active: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()
    activated_at: Mapped[datetime | None]
