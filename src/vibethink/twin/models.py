"""The twin's knowledge base: sources and their indexed chunks."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import (
    Base,
    created_at_column,
    new_id,
    pg_enum,
    tenant_id_column,
    updated_at_column,
)

EMBEDDING_DIMENSIONS = 384


class SourceKind(enum.StrEnum):
    TEXT = "TEXT"
    MARKDOWN = "MARKDOWN"
    PDF = "PDF"
    HTML = "HTML"
    QA = "QA"
    LOREBOOK = "LOREBOOK"


class SourceStatus(enum.StrEnum):
    PENDING = "PENDING"
    INDEXING = "INDEXING"
    READY = "READY"
    FAILED = "FAILED"


class KnowledgeSource(Base):
    __tablename__ = "knowledge_sources"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "celebrity_id"], ["celebrities.tenant_id", "celebrities.id"], ondelete="CASCADE"
        ),
        Index("ix_knowledge_sources_tenant_celebrity", "tenant_id", "celebrity_id", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    kind: Mapped[SourceKind] = mapped_column(pg_enum(SourceKind, "knowledge_source_kind"))
    title: Mapped[str] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(2000))
    file_name: Mapped[str | None] = mapped_column(String(300))
    # The extracted plain text, kept so a source can be re-chunked and re-indexed without the file.
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    last_updated_at: Mapped[datetime | None]
    status: Mapped[SourceStatus] = mapped_column(
        pg_enum(SourceStatus, "knowledge_source_status"), server_default=SourceStatus.PENDING.value
    )
    chunk_count: Mapped[int] = mapped_column(Integer, server_default="0")
    indexed_chunks: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    indexed_at: Mapped[datetime | None]
    # The text-search configuration of the twin's language when the source was last indexed.
    search_config: Mapped[str] = mapped_column(String(32), server_default=text("'simple'"))
    # Bumped by every replace and re-index, so indexing work for an older version is skipped.
    generation: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class KnowledgeChunk(Base):
    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "source_id"],
            ["knowledge_sources.tenant_id", "knowledge_sources.id"],
            ondelete="CASCADE",
        ),
        Index("ix_knowledge_chunks_tenant_celebrity", "tenant_id", "celebrity_id", "source_id"),
        Index("ix_knowledge_chunks_tsv", "tsv", postgresql_using="gin"),
        Index(
            "ix_knowledge_chunks_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    celebrity_id: Mapped[uuid.UUID]
    source_id: Mapped[uuid.UUID]
    ordinal: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    # PostgreSQL text-search configuration the chunk was indexed with ('spanish', 'english', 'simple').
    search_config: Mapped[str] = mapped_column(String(32), server_default=text("'simple'"))
    tsv: Mapped[str] = mapped_column(TSVECTOR)
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIMENSIONS))
    created_at: Mapped[datetime] = created_at_column()
