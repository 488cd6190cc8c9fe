"""Knowledge rules: add, replace, delete and re-index a twin's sources; list them with their progress.

A write stores the extracted text as the source of truth, records `KNOWLEDGE_SOURCE_CHANGED` in the
same transaction and leaves the chunks to the background consumer (`tasks.py`), which indexes in
batches. A small source is indexed in the same transaction when no embedding provider is configured
(no network call then), so it is searchable as soon as the write returns. Nothing here commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core import outbox
from vibethink.core.errors import EmptyDocument, InvalidInput, NotFound
from vibethink.core.models import new_id
from vibethink.core.pagination import newest_first
from vibethink.core.settings import get_settings
from vibethink.talent import service as talent_service
from vibethink.talent.models import Celebrity, EntityStatus
from vibethink.twin.knowledge import ingest
from vibethink.twin.knowledge.chunking import chunk_source
from vibethink.twin.knowledge.indexing import SOURCE_CHANGED, clear_chunks, index_all
from vibethink.twin.knowledge.search import search_config
from vibethink.twin.models import KnowledgeChunk, KnowledgeSource, SourceKind, SourceStatus

if TYPE_CHECKING:
    from vibethink.tenancy.access import Principal

DEFAULT_PAGE: Final = 50
# Indexed in the request when no embedder is configured: at most this many chunks per source,
# and per request (a re-index of many sources leaves the rest to the background).
INLINE_CHUNKS: Final = 32
INLINE_BUDGET: Final = 256
MAX_TITLE: Final = 300
MAX_URL: Final = 2000
MAX_FILE_NAME: Final = 300


@dataclass(frozen=True, slots=True)
class SourcePage:
    items: list[KnowledgeSource]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ReindexResult:
    sources: int
    chunks: int
    ready: int


def twin_language(celebrity: Celebrity) -> str:
    """The twin's language from its configuration ('en' when it has none yet)."""
    profile = celebrity.twin_config.get("personalityProfile")
    language = profile.get("language") if isinstance(profile, Mapping) else None
    return str(language or "en")


def _text(value: str | None, *, field: str, limit: int, required: bool = False) -> str | None:
    cleaned = ingest.normalize(value).replace("\n", " ") if value else ""
    if not cleaned:
        if required:
            raise InvalidInput(f"The {field.replace('_', ' ')} must not be empty.", field=field)
        return None
    if len(cleaned) > limit:
        raise InvalidInput(f"The {field.replace('_', ' ')} is longer than {limit} characters.", field=field)
    return cleaned


def _url(value: str | None) -> str | None:
    url = _text(value, field="url", limit=MAX_URL)
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise InvalidInput("The URL must start with http:// or https://.", field="url")
    return url


def _kind(kind: SourceKind | str) -> SourceKind:
    try:
        return SourceKind(kind.upper() if isinstance(kind, str) else kind)
    except ValueError as exc:
        choices = ", ".join(k.value for k in SourceKind)
        raise InvalidInput(f"The kind must be one of {choices}.", field="kind") from exc


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _embedder_configured() -> bool:
    return get_settings().embedding_provider != "none"


async def _celebrity(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, *, write: bool
) -> Celebrity:
    celebrity = await talent_service.get(session, principal, celebrity_id)
    if write and celebrity.status is EntityStatus.ARCHIVED:
        raise talent_service.CelebrityArchived()
    return celebrity


async def _emit(session: AsyncSession, principal: Principal, source: KnowledgeSource, action: str) -> None:
    payload: dict[str, Any] = {
        "action": action,
        "source_id": str(source.id),
        "celebrity_id": str(source.celebrity_id),
        "kind": source.kind.value,
        "title": source.title,
        "generation": source.generation,
        "chunk_count": source.chunk_count,
        "status": source.status.value,
    }
    if principal.api_key_id is not None:
        payload["actor_api_key_id"] = str(principal.api_key_id)
    await outbox.emit(
        session,
        SOURCE_CHANGED,
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="knowledge_source",
        subject_id=source.id,
        payload=payload,
    )


async def _index_if_cheap(session: AsyncSession, source: KnowledgeSource, *, inline: bool | None) -> int:
    """Indexes `source` now when allowed and small; returns how many chunks it indexed."""
    if inline is False or (inline is None and (_embedder_configured() or source.chunk_count > INLINE_CHUNKS)):
        return 0
    await index_all(session, source, embedder=None)
    return source.chunk_count


@dataclass(frozen=True, slots=True)
class _Extracted:
    kind: SourceKind
    title: str
    text: str
    chunk_count: int
    url: str | None
    file_name: str | None


def _extract(
    kind: SourceKind | str,
    title: str,
    content: str | bytes | Sequence[Mapping[str, Any]] | Mapping[str, Any],
    url: str | None,
    file_name: str | None,
) -> _Extracted:
    chosen = _kind(kind)
    checked_title = _text(title, field="title", limit=MAX_TITLE, required=True)
    assert checked_title is not None
    checked_url = _url(url)
    checked_file = _text(file_name, field="file_name", limit=MAX_FILE_NAME)
    extracted = ingest.extract(chosen, content)
    chunks = chunk_source(chosen, extracted)
    if not chunks:
        raise EmptyDocument()
    return _Extracted(chosen, checked_title, extracted, len(chunks), checked_url, checked_file)


async def add_source(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    *,
    kind: SourceKind | str,
    title: str,
    content: str | bytes | Sequence[Mapping[str, Any]] | Mapping[str, Any],
    url: str | None = None,
    file_name: str | None = None,
    last_updated_at: datetime | None = None,
    inline: bool | None = None,
) -> KnowledgeSource:
    """A new source for the twin, PENDING until indexed (READY at once when small and no embedder).

    `content` is text for TEXT, MARKDOWN and HTML, bytes for uploads (PDF always), and for QA and
    LOREBOOK a list of `{question, answer}` pairs or character-book entries (or their JSON).
    `inline` forces (True) or forbids (False) indexing in this transaction.
    """
    celebrity = await _celebrity(session, principal, celebrity_id, write=True)
    extracted = _extract(kind, title, content, url, file_name)
    source = KnowledgeSource(
        tenant_id=principal.tenant_id,
        id=new_id(),
        celebrity_id=celebrity.id,
        kind=extracted.kind,
        title=extracted.title,
        url=extracted.url,
        file_name=extracted.file_name,
        content=extracted.text,
        content_hash=hashlib.sha256(extracted.text.encode()).hexdigest(),
        last_updated_at=_aware(last_updated_at),
        status=SourceStatus.PENDING,
        chunk_count=extracted.chunk_count,
        indexed_chunks=0,
        search_config=search_config(twin_language(celebrity)),
        generation=1,
    )
    session.add(source)
    await session.flush()
    await _index_if_cheap(session, source, inline=inline)
    await session.flush()
    await session.refresh(source, ["created_at", "updated_at"])
    await _emit(session, principal, source, "added")
    return source


async def get_source(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    source_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> KnowledgeSource:
    """The tenant's source of that celebrity; another tenant's is a 404 like a missing one."""
    query = select(KnowledgeSource).where(
        KnowledgeSource.tenant_id == principal.tenant_id,
        KnowledgeSource.celebrity_id == celebrity_id,
        KnowledgeSource.id == source_id,
    )
    if for_update:
        query = query.with_for_update()
    source = await session.scalar(query)
    if source is None:
        raise NotFound("No such knowledge source.")
    return source


async def replace_source(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    source_id: uuid.UUID,
    *,
    kind: SourceKind | str,
    title: str,
    content: str | bytes | Sequence[Mapping[str, Any]] | Mapping[str, Any],
    url: str | None = None,
    file_name: str | None = None,
    last_updated_at: datetime | None = None,
    inline: bool | None = None,
) -> KnowledgeSource:
    """New content for a source: its old chunks go in this transaction and it is indexed again."""
    celebrity = await _celebrity(session, principal, celebrity_id, write=True)
    source = await get_source(session, principal, celebrity_id, source_id, for_update=True)
    extracted = _extract(kind, title, content, url, file_name)
    await clear_chunks(session, source)
    source.kind = extracted.kind
    source.title = extracted.title
    source.url = extracted.url
    source.file_name = extracted.file_name
    source.content = extracted.text
    source.content_hash = hashlib.sha256(extracted.text.encode()).hexdigest()
    source.last_updated_at = _aware(last_updated_at)
    _restart(source, search_config(twin_language(celebrity)), extracted.chunk_count)
    await session.flush()
    await _index_if_cheap(session, source, inline=inline)
    await session.flush()
    await session.refresh(source, ["updated_at"])
    await _emit(session, principal, source, "replaced")
    return source


def _restart(source: KnowledgeSource, config: str, chunk_count: int) -> None:
    source.search_config = config
    source.generation += 1
    source.status = SourceStatus.PENDING
    source.chunk_count = chunk_count
    source.indexed_chunks = 0
    source.error = None
    source.indexed_at = None
    source.updated_at = datetime.now(UTC)


async def delete_source(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, source_id: uuid.UUID
) -> None:
    await _celebrity(session, principal, celebrity_id, write=True)
    source = await get_source(session, principal, celebrity_id, source_id, for_update=True)
    await clear_chunks(session, source)
    await session.execute(
        delete(KnowledgeSource).where(
            KnowledgeSource.tenant_id == principal.tenant_id, KnowledgeSource.id == source.id
        )
    )
    await _emit(session, principal, source, "deleted")


async def reindex(
    session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID, *, inline: bool | None = None
) -> ReindexResult:
    """Every source of the twin indexed again, in the twin's current language, in the background."""
    celebrity = await _celebrity(session, principal, celebrity_id, write=True)
    config = search_config(twin_language(celebrity))
    sources = list(
        (
            await session.scalars(
                select(KnowledgeSource)
                .where(
                    KnowledgeSource.tenant_id == principal.tenant_id,
                    KnowledgeSource.celebrity_id == celebrity.id,
                )
                .order_by(KnowledgeSource.created_at, KnowledgeSource.id)
                .with_for_update()
            )
        ).all()
    )
    await session.execute(
        delete(KnowledgeChunk).where(
            KnowledgeChunk.tenant_id == principal.tenant_id, KnowledgeChunk.celebrity_id == celebrity.id
        )
    )
    budget = INLINE_BUDGET
    ready = chunks = 0
    for source in sources:
        _restart(source, config, len(chunk_source(source.kind, source.content)))
        chunks += source.chunk_count
        allowed = inline if inline is not None else (None if source.chunk_count <= budget else False)
        indexed = await _index_if_cheap(session, source, inline=allowed)
        budget -= indexed
        ready += 1 if indexed else 0
    await session.flush()
    for source in sources:
        await _emit(session, principal, source, "reindex")
    return ReindexResult(sources=len(sources), chunks=chunks, ready=ready)


async def page(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    *,
    status: SourceStatus | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> SourcePage:
    """The twin's sources, newest first over (created_at, id)."""
    await _celebrity(session, principal, celebrity_id, write=False)
    query = select(KnowledgeSource).where(
        KnowledgeSource.tenant_id == principal.tenant_id, KnowledgeSource.celebrity_id == celebrity_id
    )
    if status is not None:
        query = query.where(KnowledgeSource.status == status)
    items, next_cursor = await newest_first(
        session,
        query,
        created_at=KnowledgeSource.created_at,
        row_id=KnowledgeSource.id,
        cursor=cursor,
        limit=limit,
    )
    return SourcePage(items=items, next_cursor=next_cursor)


async def twin_search_language(session: AsyncSession, principal: Principal, celebrity_id: uuid.UUID) -> str:
    """The language a search over this twin's knowledge should use; 404 for another tenant's twin."""
    return twin_language(await _celebrity(session, principal, celebrity_id, write=False))
