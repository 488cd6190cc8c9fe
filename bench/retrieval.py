"""Retrieval latency: full-text, vector and hybrid search through `search()`, with RLS context set.

Data (built once, set-based, in its own database `vibethink_bench_retrieval`): 1,000 tenants with one
twin each; one twin holds 100,000 chunks, the other 999 hold 100 each (≈ 200,000 chunks in all). Chunk
text is ~70 words drawn with a skewed (Zipf-like) frequency from a football vocabulary plus rarer
terms, so common words match most chunks, as in real text. Embeddings are random 384-d vectors:
enough to time the HNSW and exact paths (their recall on random data is not what is measured).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from bench.report import percentile, table
from bench.target import bench_target
from vibethink.core.database import (
    Database,
    RlsContext,
    asyncpg_connect_args,
)
from vibethink.core.settings import Settings
from vibethink.twin.knowledge import Passage
from vibethink.twin.knowledge.search import search, vector_search

DATABASE = "vibethink_bench_retrieval"
DATASET_VERSION = "retrieval-v1"
DIMENSIONS = 384
Search = Callable[[AsyncSession, int], Awaitable[list[Passage]]]

FOOTBALL = [
    "goal", "goals", "match", "final", "league", "cup", "stadium", "fans", "coach", "team", "player",
    "players", "striker", "keeper", "defender", "midfield", "penalty", "corner", "free", "kick", "header",
    "volley", "assist", "season", "derby", "title", "champion", "champions", "trophy", "transfer",
    "contract", "captain", "referee", "whistle", "var", "offside", "foul", "card", "yellow", "red",
    "injury", "training", "tactics", "formation", "pressing", "counter", "attack", "possession", "pass",
    "passing", "dribble", "shot", "shots", "save", "saves", "clean", "sheet", "draw", "win", "loss",
    "victory", "defeat", "minute", "minutes", "half", "time", "extra", "shootout", "world", "national",
    "squad", "debut", "record", "scorer", "hat", "trick", "career", "club", "academy", "youth", "manager",
    "president", "board", "supporters", "chant", "anthem", "rivalry", "rival", "ultras", "kit", "jersey",
    "boots", "pitch", "grass", "rain", "night", "morning", "crowd", "roar", "silence", "tears", "joy",
]  # fmt: skip


TEXT_WARMUP = 50
# A vector search touches ~1,600 pages of the HNSW index (390 MB here) scattered over it: the first few
# hundred searches read it in from disk or the OS cache. Production runs with the index in memory.
VECTOR_WARMUP = 400


@dataclass(frozen=True)
class Shape:
    tenants: int = 1000
    big_chunks: int = 100_000
    small_chunks: int = 100
    words_per_chunk: int = 70
    rare_terms: int = 20_000

    @property
    def label(self) -> str:
        return (
            f"{DATASET_VERSION}:{self.tenants}:{self.big_chunks}:{self.small_chunks}:{self.words_per_chunk}"
        )


def tenant_of(n: int) -> uuid.UUID:
    return uuid.UUID(bytes=uuid.uuid5(uuid.NAMESPACE_URL, f"bench-retrieval-t{n}").bytes)


def vocabulary(shape: Shape) -> list[str]:
    """Common football words first, then rarer synthetic terms: rank drives frequency."""
    return FOOTBALL + [f"term{n}" for n in range(shape.rare_terms)]


async def _present(conn: asyncpg.Connection) -> str | None:
    if not await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL"):
        return None
    value: str | None = await conn.fetchval("SELECT value FROM bench_meta WHERE key = 'retrieval'")
    return value


async def ensure_data(owner_args: dict[str, Any], shape: Shape) -> None:
    conn = await asyncpg.connect(**owner_args)
    try:
        if await _present(conn) == shape.label:
            return
        started = time.perf_counter()
        await _load(conn, shape)
        print(f"  loaded {shape.tenants:,} twins and their chunks in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()


async def _load(conn: asyncpg.Connection, shape: Shape) -> None:
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
    await conn.execute("REVOKE ALL ON bench_meta FROM PUBLIC")
    await conn.execute("DELETE FROM tenants WHERE slug LIKE 'bench-kb-%'")
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    index_defs = [
        r["indexdef"]
        for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'knowledge_chunks'"
            " AND indexname NOT LIKE 'pk_%'"
        )
    ]
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes"
            " WHERE tablename = 'knowledge_chunks' AND indexname NOT LIKE 'pk_%'"
        ):
            await conn.execute(f'DROP INDEX "{r["indexname"]}"')
        ids = [tenant_of(n) for n in range(1, shape.tenants + 1)]
        await conn.execute(
            "INSERT INTO tenants (id, kind, slug, name, tier)"
            " SELECT t.id, 'TALENT', 'bench-kb-' || t.n, 'Bench KB ' || t.n, 'PROFESSIONAL'"
            " FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)",
            ids,
        )
        # One twin per tenant, the same id as its tenant; one source per twin.
        await conn.execute(
            "INSERT INTO celebrities"
            " (tenant_id, id, slug, name, type, status, twin_config, twin_config_version)"
            " SELECT t.id, t.id, 'bench-kb-c' || t.n, 'Bench Twin ' || t.n, 'ATHLETE', 'ACTIVE',"
            ' \'{"personalityProfile": {"language": "en"}}\'::jsonb, 1'
            " FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)",
            ids,
        )
        await conn.execute(
            "INSERT INTO knowledge_sources (tenant_id, id, celebrity_id, kind, title, content, content_hash,"
            " status, chunk_count, indexed_chunks, search_config, generation)"
            " SELECT t.id, t.id, t.id, 'TEXT', 'Bench source ' || t.n, 'bench', 'bench', 'READY',"
            " s.chunks, s.chunks, 'english', 1"
            " FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n),"
            " LATERAL (SELECT CASE WHEN t.n = 1 THEN $2::int ELSE $3::int END AS chunks) s",
            ids,
            shape.big_chunks,
            shape.small_chunks,
        )
        # Word rank r is drawn with probability ~ 1/r (Zipf): exp(random() * ln(V)) picks ranks that way.
        await conn.execute(
            """
            INSERT INTO knowledge_chunks
                (tenant_id, id, celebrity_id, source_id, ordinal, content, search_config, tsv, embedding)
            SELECT c.tenant_id, gen_random_uuid(), c.tenant_id, c.tenant_id, c.ordinal, b.body, 'english',
                   to_tsvector('english', b.body),
                   (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, $3::int) d
                     WHERE c.ordinal > 0)
              FROM (
                    SELECT t.id AS tenant_id, g.ordinal
                      FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n),
                           LATERAL generate_series(
                               1, CASE WHEN t.n = 1 THEN $4::int ELSE $5::int END) AS g(ordinal)
                   ) c,
                   LATERAL (
                    SELECT string_agg(CASE WHEN p.r <= cardinality($7::text[]) THEN ($7::text[])[p.r]
                                           ELSE 'term' || (p.r - cardinality($7::text[]) - 1) END,
                                      ' ' ORDER BY p.w) AS body
                      FROM (SELECT w, least($6::int, floor(exp(random() * ln($6::int)))::int) AS r
                              FROM generate_series(1, $2::int) w WHERE c.ordinal > 0) p
                   ) b
            """,
            ids,
            shape.words_per_chunk,
            DIMENSIONS,
            shape.big_chunks,
            shape.small_chunks,
            len(vocabulary(shape)),
            FOOTBALL,
        )
        for definition in index_defs:
            started = time.perf_counter()
            await conn.execute(definition)
            print(f"  {definition.split(' USING ')[0]}: {time.perf_counter() - started:.0f} s")
        await conn.execute(
            "INSERT INTO bench_meta (key, value) VALUES ('retrieval', $1)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            shape.label,
        )
    for name in ("tenants", "celebrities", "knowledge_sources", "knowledge_chunks"):
        await conn.execute(f"VACUUM (ANALYZE) {name}")


def fan_questions(shape: Shape, count: int, seed: int) -> list[str]:
    """Questions of 3–6 words: a common word or two, the rest from the long tail."""
    rng = random.Random(seed)
    words = vocabulary(shape)
    questions = []
    for _ in range(count):
        picked = [words[min(len(words) - 1, int(math.exp(rng.random() * math.log(len(words)))))]]
        picked += rng.sample(FOOTBALL, rng.randint(1, 2))
        picked += [f"term{rng.randrange(shape.rare_terms)}" for _ in range(rng.randint(0, 3))]
        questions.append("What about the " + " ".join(picked) + "?")
    return questions


def random_vector(rng: random.Random) -> list[float]:
    return [rng.random() - 0.5 for _ in range(DIMENSIONS)]


class FixedEmbedder:
    """Returns prepared vectors: the hybrid case then times the database, not an embedding service."""

    name = "bench"

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [random_vector(self.rng) for _ in texts]


@dataclass
class Case:
    name: str
    twin: str
    tenant_id: uuid.UUID
    run: Search


async def measure(db: Database, case: Case, *, queries: int, warmup: int) -> list[object]:
    context = RlsContext(tenant_id=case.tenant_id, role="API_KEY")
    timings: list[float] = []
    results = 0
    for i in range(warmup + queries):
        async with db.transaction(context) as session:
            started = time.perf_counter()
            found = await case.run(session, i)
            elapsed = (time.perf_counter() - started) * 1000
        if i >= warmup:
            timings.append(elapsed)
            results += len(found)
    timings.sort()
    return [
        case.name,
        case.twin,
        f"{percentile(timings, 0.5):.2f}",
        f"{percentile(timings, 0.95):.2f}",
        f"{percentile(timings, 0.99):.2f}",
        f"{results / queries:.1f}",
    ]


async def run_cases(
    settings: Settings, owner: URL, shape: Shape, *, queries: int, kinds: tuple[str, ...]
) -> str:
    db = Database(settings, owner=owner)
    try:
        big, small = tenant_of(1), tenant_of(shape.tenants // 2)
        questions = fan_questions(shape, queries + VECTOR_WARMUP, seed=7)
        rng = random.Random(11)
        vectors = [random_vector(rng) for _ in range(queries + VECTOR_WARMUP)]

        def text_case(celebrity: uuid.UUID) -> Search:
            async def run(session: AsyncSession, i: int) -> list[Passage]:
                return await search(session, celebrity_id=celebrity, query=questions[i], language="en")

            return run

        def vector_case(celebrity: uuid.UUID) -> Search:
            async def run(session: AsyncSession, i: int) -> list[Passage]:
                return await vector_search(session, celebrity_id=celebrity, embedding=vectors[i], k=5)

            return run

        def hybrid_case(celebrity: uuid.UUID) -> Search:
            embedder = FixedEmbedder(13)

            async def run(session: AsyncSession, i: int) -> list[Passage]:
                return await search(
                    session,
                    celebrity_id=celebrity,
                    query=questions[i],
                    language="en",
                    embedder=embedder,
                )

            return run

        big_label = f"{shape.big_chunks:,} chunks"
        small_label = f"{shape.small_chunks:,} chunks"
        every = [
            ("text", Case("full text", big_label, big, text_case(big))),
            ("text", Case("full text", small_label, small, text_case(small))),
            ("vector", Case("vector (HNSW)", big_label, big, vector_case(big))),
            ("vector", Case("vector (exact)", small_label, small, vector_case(small))),
            ("hybrid", Case("hybrid (RRF, 20 + 20 candidates)", big_label, big, hybrid_case(big))),
            ("hybrid", Case("hybrid (RRF, 20 + 20 candidates)", small_label, small, hybrid_case(small))),
        ]
        rows = []
        for kind, case in ((k, c) for k, c in every if k in kinds):
            warmup = TEXT_WARMUP if kind == "text" else VECTOR_WARMUP
            rows.append(await measure(db, case, queries=queries, warmup=warmup))
            print(f"  {case.name} — {case.twin}: p95 {rows[-1][3]} ms")
        return table(["search, k = 5", "twin", "p50 ms", "p95 ms", "p99 ms", "results / query"], rows)
    finally:
        await db.dispose()


async def _totals(owner_args: dict[str, Any]) -> str:
    conn = await asyncpg.connect(**owner_args)
    try:
        chunks = await conn.fetchval("SELECT count(*) FROM knowledge_chunks")
        twins = await conn.fetchval("SELECT count(DISTINCT celebrity_id) FROM knowledge_chunks")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('knowledge_chunks'))")
    finally:
        await conn.close()
    return f"{chunks:,} chunks of {twins:,} twins in the table ({size} with indexes)"


def run(*, quick: bool = False, kinds: tuple[str, ...] = ("text", "vector", "hybrid")) -> str:
    """Builds the data if needed and returns the Markdown table of latencies (of the `kinds` asked)."""
    shape = Shape()
    queries = 200 if quick else 1000
    with bench_target(database=DATABASE, pool_size=2, pool_max_overflow=0) as target:
        settings, owner = target.settings, target.owner
        owner_args = asyncpg_connect_args(owner)
        asyncio.run(ensure_data(owner_args, shape))
        totals = asyncio.run(_totals(owner_args))
        print(f"  {totals}")
        result = asyncio.run(run_cases(settings, owner, shape, queries=queries, kinds=kinds))
    return (
        f"{totals}; one client, {queries} queries per row after {TEXT_WARMUP} warm-up ones"
        f" ({VECTOR_WARMUP} for vector and hybrid rows), each in its own"
        f" transaction with the tenant's RLS context; time of the `search()` / `vector_search()` call.\n\n"
        + result
    )
