"""Conversations and their messages (separate rows, partitioned by month)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, func, text
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
        Index("ix_conversations_tenant_celebrity", "tenant_id", "celebrity_id", "updated_at"),
        Index("ix_conversations_tenant_user", "tenant_id", "user_id", "updated_at"),
        Index("ix_conversations_context_gin", "context", postgresql_using="gin"),
        Index("ix_conversations_context_brand", text("(context -> 'brandId')"), postgresql_using="gin"),
        Index("ix_conversations_context_campaign", text("(context -> 'campaignId')"), postgresql_using="gin"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    deployment_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    session_id: Mapped[str | None] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    message_count: Mapped[int] = mapped_column(Integer, server_default="0")
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

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
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
