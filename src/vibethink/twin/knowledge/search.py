"""Retrieval for a chat turn: full-text search in the twin's language, vector similarity, fused by RRF.

Both searches run through SECURITY DEFINER functions (migration 0005) that take the tenant from the
transaction's `app.tenant_id` and filter on it explicitly: under RLS PostgreSQL would give up the
GIN index, and a filtered HNSW scan can come back short for a small tenant.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.errors import EmbeddingUnavailable
from vibethink.twin.knowledge import Passage
from vibethink.twin.knowledge.embeddings import Embedder, vector_literal

log = logging.getLogger(__name__)

# PostgreSQL's built-in text-search configurations by language; any other language is 'simple'.
SEARCH_CONFIGS: Final[Mapping[str, str]] = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "nb": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
RRF_K: Final = 60
MAX_K: Final = 50
MAX_QUERY_CHARS: Final = 2000
# Below this many chunks a twin's vectors are compared exactly: cheap, and never short of k.
EXACT_SEARCH_BELOW: Final = 2000

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")

# A word in more than this share of all chunks does not choose full-text candidates on its own.
COMMON_WORD_FREQUENCY: Final = 0.05
COMMON_LEXEMES_TTL_SECONDS: Final = 300.0

TEXT_SEARCH_SQL = text(
    "SELECT chunk_id, source_id, title, url, content, score FROM knowledge_search_text("
    ":celebrity_id, CAST(:config AS regconfig), :query, :k, CAST(:common AS text[]))"
)
COMMON_LEXEMES_SQL = text("SELECT knowledge_common_lexemes(CAST(:frequency AS real))")
VECTOR_SEARCH_SQL = text(
    "SELECT chunk_id, source_id, title, url, content, score"
    " FROM knowledge_search_vector(:celebrity_id, CAST(:embedding AS vector), :k, :exact_below)"
)


@dataclass
class _CommonLexemes:
    lexemes: list[str] = field(default_factory=list)
    fetched_at: float = -math.inf


_common = _CommonLexemes()


async def common_lexemes(session: AsyncSession) -> list[str]:
    """The platform's most common lexemes (from ANALYZE), re-read every few minutes per process."""
    cached = fresh_common_lexemes()
    if cached is None:
        found = await session.scalar(COMMON_LEXEMES_SQL, {"frequency": COMMON_WORD_FREQUENCY})
        cached = remember_common_lexemes(found or ())
    return cached


def fresh_common_lexemes() -> list[str] | None:
    """The cached common lexemes while fresh; None when they are due to be read again."""
    if time.monotonic() - _common.fetched_at > COMMON_LEXEMES_TTL_SECONDS:
        return None
    return _common.lexemes


def remember_common_lexemes(lexemes: Sequence[str]) -> list[str]:
    _common.lexemes, _common.fetched_at = list(lexemes), time.monotonic()
    return _common.lexemes


def forget_common_lexemes() -> None:
    """Drops the cached list, so the next search reads the statistics again (after ANALYZE)."""
    _common.fetched_at = -math.inf


def search_config(language: str | None) -> str:
    """The text-search configuration for a BCP 47 language tag ('es-MX' → 'spanish')."""
    primary = (language or "").strip().replace("_", "-").split("-")[0].lower()
    return SEARCH_CONFIGS.get(primary, "simple")


def clean_query(query: str) -> str:
    """The query as PostgreSQL can take it: no NUL or lone surrogates, bounded, trimmed."""
    return _UNSTORABLE.sub(" ", query[:MAX_QUERY_CHARS]).strip()


def _passages(rows: Sequence[Any]) -> list[Passage]:
    return [
        Passage(
            chunk_id=row.chunk_id,
            source_id=row.source_id,
            title=row.title,
            url=row.url,
            text=row.content,
            score=float(row.score),
        )
        for row in rows
    ]


def fuse(rankings: Sequence[Sequence[Passage]], *, k: int, rrf_k: int = RRF_K) -> list[Passage]:
    """Reciprocal rank fusion: each list adds 1 / (rrf_k + rank); ties go to the better best rank."""
    scores: dict[uuid.UUID, float] = {}
    best_rank: dict[uuid.UUID, int] = {}
    first_seen: dict[uuid.UUID, Passage] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking, start=1):
            key = passage.chunk_id
            scores[key] = scores.get(key, 0.0) + 1.0 / (rrf_k + rank)
            best_rank[key] = min(best_rank.get(key, rank), rank)
            first_seen.setdefault(key, passage)
    ordered = sorted(scores, key=lambda key: (-scores[key], best_rank[key], str(key)))
    return [replace(first_seen[key], score=scores[key]) for key in ordered[:k]]


def candidate_depth(k: int, *, hybrid: bool) -> int:
    """How many candidates each search returns: k alone, more when two lists are fused
    (fusion needs more than k from each, or a chunk ranked k+1 by both is lost)."""
    return min(max(2 * k, 20), 100) if hybrid else k


async def text_search(
    session: AsyncSession, *, celebrity_id: uuid.UUID, query: str, language: str | None, k: int
) -> list[Passage]:
    """Full-text matches ranked by cover density; chunks holding every query word come first."""
    parameters = {
        "celebrity_id": celebrity_id,
        "config": search_config(language),
        "query": query,
        "k": k,
        "common": await common_lexemes(session),
    }
    rows = (await session.execute(TEXT_SEARCH_SQL, parameters)).all()
    return _passages(rows)


async def vector_search(
    session: AsyncSession,
    *,
    celebrity_id: uuid.UUID,
    embedding: Sequence[float],
    k: int,
    exact_below: int = EXACT_SEARCH_BELOW,
) -> list[Passage]:
    """The k nearest chunks by cosine distance (score = cosine similarity)."""
    rows = (
        await session.execute(
            VECTOR_SEARCH_SQL,
            {
                "celebrity_id": celebrity_id,
                "embedding": vector_literal(embedding),
                "k": k,
                "exact_below": exact_below,
            },
        )
    ).all()
    return _passages(rows)


async def search(
    session: AsyncSession,
    *,
    celebrity_id: uuid.UUID,
    query: str,
    language: str | None,
    k: int = 5,
    embedder: Embedder | None = None,
    exact_below: int = EXACT_SEARCH_BELOW,
) -> list[Passage]:
    """The twin's k most relevant passages for `query`; an empty or meaningless query finds nothing.

    Without an embedder this is full-text search (score: cover density, +1 when every word matches).
    With one, full-text and vector results are fused by RRF (score: the fused score); if the
    embedder fails, the turn still gets the full-text results.
    """
    cleaned = clean_query(query)
    k = min(k, MAX_K)
    if not cleaned or k <= 0:
        return []
    depth = candidate_depth(k, hybrid=embedder is not None)
    lexical = await text_search(session, celebrity_id=celebrity_id, query=cleaned, language=language, k=depth)
    embedding = await query_embedding(embedder, cleaned)
    if embedding is None:
        return ranked(lexical, [], k=k, hybrid=False)
    semantic = await vector_search(
        session, celebrity_id=celebrity_id, embedding=embedding, k=depth, exact_below=exact_below
    )
    return ranked(lexical, semantic, k=k, hybrid=True)


async def query_embedding(embedder: Embedder | None, cleaned: str) -> list[float] | None:
    """The query's vector, or None without an embedder or when it fails (full text alone then)."""
    if embedder is None:
        return None
    try:
        return list((await embedder.embed([cleaned]))[0])
    except EmbeddingUnavailable as exc:
        log.warning("embedding the query failed, using full-text results only: %s", exc)
        return None


def ranked(lexical: Sequence[Passage], semantic: Sequence[Passage], *, k: int, hybrid: bool) -> list[Passage]:
    """The k passages to answer from: the full-text order alone, or both lists fused by RRF."""
    return fuse([lexical, semantic], k=k) if hybrid else list(lexical[:k])
