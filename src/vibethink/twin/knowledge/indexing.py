"""Writing a source's chunks: text-search vectors in the source's configuration, embeddings when configured.

Indexing goes in batches so a large source shows progress (`indexed_chunks` of `chunk_count`) and
each batch commits on its own; `generation` makes work for an older version of a source a no-op.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core import outbox
from vibethink.core.models import new_id
from vibethink.twin.knowledge.chunking import chunk_source
from vibethink.twin.knowledge.embeddings import Embedder, vector_literal
from vibethink.twin.models import KnowledgeChunk, KnowledgeSource, SourceStatus

BATCH_CHUNKS: Final = 64
SOURCE_CHANGED: Final = "KNOWLEDGE_SOURCE_CHANGED"
# Internal: the next batch of a source being indexed in the background.
INDEX_BATCH: Final = "KNOWLEDGE_INDEX_BATCH"
SYSTEM_ROLE: Final = "SYSTEM"

INSERT_CHUNKS_SQL = text(
    """
    INSERT INTO knowledge_chunks
        (tenant_id, id, celebrity_id, source_id, ordinal, content, search_config, tsv, embedding)
    SELECT :tenant_id, c.id, :celebrity_id, :source_id, c.ordinal, c.content, CAST(:config AS text),
           to_tsvector(CAST(CAST(:config AS text) AS regconfig), c.content), CAST(c.embedding AS vector)
      FROM unnest(CAST(:ids AS uuid[]), CAST(:ordinals AS integer[]), CAST(:contents AS text[]),
                  CAST(:embeddings AS text[])) AS c(id, ordinal, content, embedding)
    """
)


async def clear_chunks(session: AsyncSession, source: KnowledgeSource) -> None:
    await session.execute(
        delete(KnowledgeChunk).where(
            KnowledgeChunk.tenant_id == source.tenant_id,
            KnowledgeChunk.celebrity_id == source.celebrity_id,
            KnowledgeChunk.source_id == source.id,
        )
    )


async def write_chunks(
    session: AsyncSession,
    source: KnowledgeSource,
    chunks: list[str],
    *,
    start: int,
    embedder: Embedder | None,
) -> None:
    """Stores `chunks` as ordinals `start`…; embeds them first when an embedder is given."""
    if not chunks:
        return
    embeddings: list[str | None] = [None] * len(chunks)
    if embedder is not None:
        embeddings = [vector_literal(v) for v in await embedder.embed(chunks)]
    await session.execute(
        INSERT_CHUNKS_SQL,
        {
            "tenant_id": source.tenant_id,
            "celebrity_id": source.celebrity_id,
            "source_id": source.id,
            "config": source.search_config,
            "ids": [new_id() for _ in chunks],
            "ordinals": list(range(start, start + len(chunks))),
            "contents": chunks,
            "embeddings": embeddings,
        },
    )


def _finish(source: KnowledgeSource, indexed: int) -> None:
    source.indexed_chunks = indexed
    if indexed >= source.chunk_count:
        source.status = SourceStatus.READY
        source.indexed_at = datetime.now(UTC)
        source.error = None
    else:
        source.status = SourceStatus.INDEXING


async def index_all(session: AsyncSession, source: KnowledgeSource, *, embedder: Embedder | None) -> None:
    """Indexes the whole source in the caller's transaction (small sources, inline)."""
    chunks = chunk_source(source.kind, source.content)
    await write_chunks(session, source, chunks, start=0, embedder=embedder)
    source.chunk_count = len(chunks)
    _finish(source, len(chunks))


async def locked_source(
    session: AsyncSession, tenant_id: uuid.UUID, source_id: uuid.UUID
) -> KnowledgeSource | None:
    return await session.scalar(
        select(KnowledgeSource)
        .where(KnowledgeSource.tenant_id == tenant_id, KnowledgeSource.id == source_id)
        .with_for_update()
    )


async def index_next_batch(
    session: AsyncSession,
    source: KnowledgeSource,
    *,
    generation: int,
    start: int,
    embedder: Embedder | None,
) -> bool:
    """Indexes one batch from `start`; True when it did work. Stale or repeated work is skipped."""
    if source.generation != generation or source.indexed_chunks != start:
        return False
    if source.status not in (SourceStatus.PENDING, SourceStatus.INDEXING):
        return False
    chunks = chunk_source(source.kind, source.content)
    source.chunk_count = len(chunks)
    batch = chunks[start : start + BATCH_CHUNKS]
    await write_chunks(session, source, batch, start=start, embedder=embedder)
    _finish(source, start + len(batch))
    await session.flush()
    if source.status is SourceStatus.INDEXING:
        await outbox.emit(
            session,
            INDEX_BATCH,
            tenant_id=source.tenant_id,
            actor_role=SYSTEM_ROLE,
            subject_type="knowledge_source",
            subject_id=source.id,
            payload={"source_id": str(source.id), "generation": generation, "start": source.indexed_chunks},
        )
    return True
