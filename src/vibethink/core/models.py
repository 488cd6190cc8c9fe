"""Declarative base, shared column types and the platform-wide tables (outbox, deliveries, audit log)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        uuid.UUID: UUID(as_uuid=True),
    }


def pg_enum(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A PostgreSQL ENUM type whose labels are the Python enum's values."""
    return Enum(enum_cls, name=name, values_callable=lambda members: [m.value for m in members])


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def tenant_id_column(*, tenant_key: bool = True) -> Mapped[uuid.UUID]:
    """Leads every primary key: Citus-ready distribution column and the RLS filter's index.

    `tenant_key=False` for a hot table whose composite key to a tenant table already implies its
    tenant (the parent row cannot exist without it, and deleting the tenant cascades through the
    parent): a second check of the one shared `tenants` row on every insert makes concurrent
    writers of a tenant share a lock on it (MultiXacts), for nothing the other key does not ensure.
    """
    if not tenant_key:
        return mapped_column(UUID(as_uuid=True), primary_key=True)
    return mapped_column(UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def updated_at_column() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class EventStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    DEAD = "DEAD"


class PlatformEvent(Base):
    """The transactional outbox: one row per state change that matters, written with the change."""

    __tablename__ = "platform_events"
    __table_args__ = (
        Index(
            "ix_platform_events_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('PENDING', 'PROCESSING')"),
        ),
        Index("ix_platform_events_tenant_type", "tenant_id", "event_type", "occurred_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    event_type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = created_at_column()
    actor_user_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str | None] = mapped_column(String(32))
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[EventStatus] = mapped_column(
        pg_enum(EventStatus, "event_status"), server_default=EventStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = created_at_column()
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]


class EventDelivery(Base):
    """One row per (event, consumer) once that consumer has handled the event: idempotency by event id."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["platform_events.tenant_id", "platform_events.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    consumer: Mapped[str] = mapped_column(String(128), primary_key=True)
    delivered_at: Mapped[datetime] = created_at_column()


class AuditLog(Base):
    """Who did what, append-only. Admin-context actions are always written here."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_time", "tenant_id", "occurred_at"),)

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = created_at_column()
    actor_user_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str | None] = mapped_column(String(32))
    is_admin_context: Mapped[bool] = mapped_column(server_default=text("false"))
    action: Mapped[str] = mapped_column(String(96))
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    ip: Mapped[str | None] = mapped_column(INET)
