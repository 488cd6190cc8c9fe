"""Conversations and their messages (separate rows, partitioned by month)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import (
    Base,
    created_at_column,
    new_id,
    pg_enum,
    tenant_id_column,
    updated_at_column,
)


class MessageRole(enum.StrEnum):
    FAN = "FAN"
    TWIN = "TWIN"
    SYSTEM = "SYSTEM"


class MessageStatus(enum.StrEnum):
    COMPLETE = "COMPLETE"
    STREAMING = "STREAMING"
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"
    HIDDEN = "HIDDEN"


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "deployment_id"], ["deployments.tenant_id", "deployments.id"], ondelete="SET NULL"
        ),
        # On created_at, not updated_at: a turn updates its conversation row, and with no indexed
        # column changed (and free room in the page, fillfactor 80) that update is HOT, touching
        # none of the table's eight indexes (three of them GIN). Migration 0013.
        Index("ix_conversations_tenant_celebrity", "tenant_id", "celebrity_id", "created_at"),
        Index("ix_conversations_tenant_user", "tenant_id", "user_id", "created_at"),
        Index("ix_conversations_tenant_fan", "tenant_id", "fan_key", "created_at"),
        # A signed-in fan names a conversation by id alone (chat_fan_conversation, migration 0006).
        Index("ix_conversations_id", "id"),
        Index("ix_conversations_context_gin", "context", postgresql_using="gin"),
        Index("ix_conversations_context_brand", text("(context -> 'brandId')"), postgresql_using="gin"),
        Index("ix_conversations_context_campaign", text("(context -> 'campaignId')"), postgresql_using="gin"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who the fan is: "user:<uuid>" when signed in, "anon:<random>" for an anonymous fan token.
    fan_key: Mapped[str] = mapped_column(String(80), server_default="")
    session_id: Mapped[str | None] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    message_count: Mapped[int] = mapped_column(Integer, server_default="0")
    near_limit_at: Mapped[datetime | None]
    is_archived: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Message(Base):
    """Partitioned by month on `created_at`, so the partition key is part of the primary key."""

    __tablename__ = "messages"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "conversation_id"],
            ["conversations.tenant_id", "conversations.id"],
            ondelete="CASCADE",
        ),
        Index("ix_messages_tenant_conversation", "tenant_id", "conversation_id", "created_at", "id"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column(tenant_key=False)  # implied by the conversation's
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=func.now()
    )
    conversation_id: Mapped[uuid.UUID]
    role: Mapped[MessageRole] = mapped_column(pg_enum(MessageRole, "message_role"))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(
        pg_enum(MessageStatus, "message_status"), server_default=MessageStatus.COMPLETE.value
    )
    details: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = updated_at_column()


class FlagStatus(enum.StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"
    MESSAGE_HIDDEN = "MESSAGE_HIDDEN"
    FAN_BLOCKED = "FAN_BLOCKED"


class ModerationFlag(Base):
    """A guardrail decision (or a limit) that the talent team should look at."""

    __tablename__ = "moderation_flags"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "conversation_id"],
            ["conversations.tenant_id", "conversations.id"],
            ondelete="CASCADE",
        ),
        Index("ix_moderation_flags_tenant_status", "tenant_id", "celebrity_id", "status", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    conversation_id: Mapped[uuid.UUID]
    message_id: Mapped[uuid.UUID | None]
    fan_key: Mapped[str] = mapped_column(String(80))
    stage: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[FlagStatus] = mapped_column(
        pg_enum(FlagStatus, "flag_status"), server_default=FlagStatus.OPEN.value
    )
    resolved_by: Mapped[uuid.UUID | None]
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class BlockedFan(Base):
    __tablename__ = "blocked_fans"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    celebrity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    fan_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    blocked_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = created_at_column()


class FanMemory(Base):
    """A fact a fan shared (name, team, goal), kept per fan per twin; the fan can see and delete it."""

    __tablename__ = "fan_memories"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        Index("uq_fan_memories_fact", "tenant_id", "celebrity_id", "fan_key", "kind", unique=True),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    fan_key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class InteractionEvent(Base):
    """One row per chat turn, written with the turn's messages, for analytics."""

    __tablename__ = "interaction_events"
    __table_args__ = (
        Index("ix_interaction_events_tenant_time", "tenant_id", "occurred_at"),
        Index("ix_interaction_events_tenant_deployment", "tenant_id", "deployment_id", "occurred_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = created_at_column()
    celebrity_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    conversation_id: Mapped[uuid.UUID]
    fan_key: Mapped[str] = mapped_column(String(80))
    fan_tier: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(24))
    provider: Mapped[str] = mapped_column(String(40))
    latency_ms: Mapped[int] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    guardrails: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
