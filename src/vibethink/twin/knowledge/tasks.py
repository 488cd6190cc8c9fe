"""The background indexer: consumes `KNOWLEDGE_SOURCE_CHANGED` and its own batch events.

Each delivery indexes one batch of one source in the dispatcher's transaction and, if more remain,
records the next batch's event in that same transaction: progress is visible batch by batch, and a
crash repeats at most one batch. An embedding provider that keeps failing marks the source FAILED.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.dispatcher import ConsumerRegistry, DeliveredEvent, Handler
from vibethink.core.errors import EmbeddingUnavailable
from vibethink.core.settings import get_settings
from vibethink.twin.knowledge.embeddings import Embedder, embedder_from_settings
from vibethink.twin.knowledge.indexing import INDEX_BATCH, SOURCE_CHANGED, index_next_batch, locked_source
from vibethink.twin.models import SourceStatus

log = logging.getLogger(__name__)

CONSUMER: Final = "knowledge_indexer"
# Deliveries of one batch before the source is marked FAILED instead of retried again.
ATTEMPTS_BEFORE_FAILED: Final = 3
INDEXED_ACTIONS: Final = frozenset({"added", "replaced", "reindex"})


def indexer(embedder: Callable[[], Embedder | None]) -> Handler:
    """The consumer, with the embedder it should use (resolved at delivery, so settings can change)."""

    async def handle(session: AsyncSession, event: DeliveredEvent) -> None:
        payload = event.payload
        if event.event_type == SOURCE_CHANGED and payload.get("action") not in INDEXED_ACTIONS:
            return
        try:
            source_id = uuid.UUID(str(payload["source_id"]))
            generation = int(payload["generation"])
            start = int(payload.get("start", 0))
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring %s %s without a source, generation or start", event.event_type, event.id)
            return
        source = await locked_source(session, event.tenant_id, source_id)
        if source is None:
            return  # deleted since: nothing to index
        try:
            await index_next_batch(session, source, generation=generation, start=start, embedder=embedder())
        except EmbeddingUnavailable as exc:
            if event.attempts < ATTEMPTS_BEFORE_FAILED:
                raise
            source.status = SourceStatus.FAILED
            source.error = exc.message
            await session.flush()

    return handle


def register(registry: ConsumerRegistry, *, embedder: Callable[[], Embedder | None] | None = None) -> None:
    registry.register(
        CONSUMER,
        indexer(embedder or (lambda: embedder_from_settings(get_settings()))),
        event_types={SOURCE_CHANGED, INDEX_BATCH},
    )
