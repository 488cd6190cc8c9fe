"""The isolation traps in DESIGN ("Known traps"), shown with EXPLAIN ANALYZE on the bench data.

1. The tenant policy is `tenant_id = <setting> OR <admin setting> = 'on'`: an OR with a second
   initplan, so PostgreSQL cannot turn it into an index condition. A query that relies on RLS alone
   to pick the tenant's rows reads the whole table; the same query with an explicit
   `tenant_id = …` (what the services write) uses the `tenant_id`-led index.
2. Full-text search: `@@` is not leakproof, so under RLS it must run after the policy and cannot use
   the GIN index; a SECURITY DEFINER function that filters on the tenant itself restores the index.
   A throwaway table `bench_passages` (100 tenants × 2,000 passages of 60 words) holds the text; it
   lives only in the bench database and carries the same policy as the platform's tenant tables.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
import uuid
from collections.abc import Sequence

import asyncpg

from bench.datagen import TENANT_PREFIX, Dataset, celebrity_id, id_sql, tenant_id
from bench.report import table
from bench.target import BenchTarget
from vibethink.core.database import DEFINER_ROLE

PASSAGES_VERSION = "passages-v1:100x2000x60"
PASSAGE_TENANTS = 100
PASSAGES_PER_TENANT = 2000
WORDS_PER_PASSAGE = 60
VOCABULARY = 20000
# A word of middling rarity: about 4 passages of each tenant contain it (a log-uniform vocabulary).
SEARCH = "w3000"
EXPLAIN_RUNS = 5

KEY_LINE = re.compile(
    r"(Scan|Index Cond|Recheck Cond|Filter|Rows Removed|Function|Execution Time|Sort Method)"
)


async def _explain(conn: asyncpg.Connection, sql: str, *args: object) -> tuple[float, list[str]]:
    """Median execution time over a few runs (the first warms the cache), and the plan's key lines."""
    times: list[float] = []
    lines: list[str] = []
    for _ in range(EXPLAIN_RUNS + 1):
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", *args)
        lines = [r[0] for r in rows]
        found = next(line for line in lines if line.startswith("Execution Time"))
        times.append(float(found.split(":")[1].strip().split()[0]))
    key = [line.rstrip() for line in lines if KEY_LINE.search(line)]
    return statistics.median(times[1:]), key


async def _in_context(conn: asyncpg.Connection, tenant: uuid.UUID) -> None:
    await conn.execute(
        "SELECT set_config('app.tenant_id', $1, true), set_config('app.role', 'API_KEY', true)", str(tenant)
    )


async def _policy_trap(target: BenchTarget, dataset: Dataset) -> list[tuple[str, str, float, list[str]]]:
    n = dataset.rows_per_tenant * 41 + 17
    tenant = tenant_id(dataset.tenant_of(n))
    cols = "tenant_id, id, slug, name, type, status, twin_config, created_at"
    cases = [
        ("by id, RLS alone", f"SELECT {cols} FROM celebrities WHERE id = $1", (celebrity_id(n),)),
        (
            "by id, explicit tenant_id",
            f"SELECT {cols} FROM celebrities WHERE tenant_id = $2 AND id = $1",
            (celebrity_id(n), tenant),
        ),
        (
            "page of 50, RLS alone",
            f"SELECT {cols} FROM celebrities WHERE status <> 'ARCHIVED'"
            " ORDER BY created_at DESC, id DESC LIMIT 51",
            (),
        ),
        (
            "page of 50, explicit tenant_id",
            f"SELECT {cols} FROM celebrities WHERE tenant_id = $1 AND status <> 'ARCHIVED'"
            " ORDER BY created_at DESC, id DESC LIMIT 51",
            (tenant,),
        ),
    ]
    results = []
    conn = await target.connect_app()
    try:
        for name, sql, args in cases:
            async with conn.transaction():
                await _in_context(conn, tenant)
                ms, lines = await _explain(conn, sql, *args)
            results.append((name, "app + RLS", ms, lines))
    finally:
        await conn.close()
    owner = await target.connect_owner()
    try:
        for name, sql, args in cases[1::2]:
            ms, lines = await _explain(owner, sql, *args)
            results.append((name, "owner, no RLS", ms, lines))
    finally:
        await owner.close()
    return results


async def _ensure_passages(target: BenchTarget) -> None:
    conn = await target.connect_owner()
    try:
        present = await conn.fetchval("SELECT value FROM bench_meta WHERE key = 'passages'")
        if present == PASSAGES_VERSION:
            return
        started = time.perf_counter()
        policy = await conn.fetchval(
            "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy"
            " WHERE polrelid = 'celebrities'::regclass AND polname = 'tenant_isolation'"
        )
        async with conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            await conn.execute("DROP FUNCTION IF EXISTS bench_search_passages(text)")
            await conn.execute("DROP TABLE IF EXISTS bench_passages")
            await conn.execute(
                "CREATE TABLE bench_passages (tenant_id uuid NOT NULL, id uuid NOT NULL, body text NOT NULL,"
                " tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,"
                " PRIMARY KEY (tenant_id, id))"
            )
            await conn.execute(
                "INSERT INTO bench_passages (tenant_id, id, body)"
                f" SELECT {id_sql(TENANT_PREFIX, 't')}, gen_random_uuid(),"
                f" (SELECT string_agg('w' || floor(exp(random() * ln({VOCABULARY})))::int, ' ')"
                f"  FROM generate_series(1, {WORDS_PER_PASSAGE}) AS w WHERE p > 0)"
                f" FROM generate_series(1, {PASSAGE_TENANTS}) AS t,"
                f" generate_series(1, {PASSAGES_PER_TENANT}) AS p"
            )
            await conn.execute("CREATE INDEX bench_passages_tsv ON bench_passages USING gin (tsv)")
            # The same policy as the platform's tenant tables, forced like theirs.
            await conn.execute("ALTER TABLE bench_passages ENABLE ROW LEVEL SECURITY")
            await conn.execute("ALTER TABLE bench_passages FORCE ROW LEVEL SECURITY")
            await conn.execute(f"CREATE POLICY tenant_isolation ON bench_passages USING ({policy})")
            await conn.execute(f"GRANT SELECT ON bench_passages TO {target.app.username}, {DEFINER_ROLE}")
            # Retrieval as DESIGN prescribes: the tenant from the setting, filtered explicitly.
            await conn.execute(
                "CREATE FUNCTION bench_search_passages(p_query text) RETURNS TABLE(id uuid, rank real)"
                " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $fn$"
                " SELECT p.id, ts_rank(p.tsv, q) FROM bench_passages p,"
                " websearch_to_tsquery('simple', p_query) AS q"
                " WHERE p.tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid AND p.tsv @@ q"
                " ORDER BY 2 DESC LIMIT 10 $fn$"
            )
            await conn.execute(f"ALTER FUNCTION bench_search_passages(text) OWNER TO {DEFINER_ROLE}")
            await conn.execute("REVOKE ALL ON FUNCTION bench_search_passages(text) FROM PUBLIC")
            await conn.execute(
                f"GRANT EXECUTE ON FUNCTION bench_search_passages(text) TO {target.app.username}"
            )
            await conn.execute(
                "INSERT INTO bench_meta (key, value) VALUES ('passages', $1)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                PASSAGES_VERSION,
            )
        await conn.execute("VACUUM (ANALYZE) bench_passages")
        print(f"  built bench_passages in {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()


SEARCH_SQL = (
    "SELECT p.id, ts_rank(p.tsv, q) FROM bench_passages p, websearch_to_tsquery('simple', $2) AS q"
    " WHERE p.tenant_id = $1 AND p.tsv @@ q ORDER BY 2 DESC LIMIT 10"
)
DEFINER_BODY_SQL = (
    "SELECT p.id, ts_rank(p.tsv, q) FROM bench_passages p, websearch_to_tsquery('simple', $1) AS q"
    " WHERE p.tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid AND p.tsv @@ q"
    " ORDER BY 2 DESC LIMIT 10"
)


async def _search_trap(target: BenchTarget) -> list[tuple[str, str, float, list[str]]]:
    await _ensure_passages(target)
    tenant = tenant_id(37)
    results = []
    app = await target.connect_app()
    owner = await target.connect_owner()
    try:
        async with app.transaction():
            await _in_context(app, tenant)
            ms, lines = await _explain(app, SEARCH_SQL, tenant, SEARCH)
            matches = len(await app.fetch(SEARCH_SQL, tenant, SEARCH))
        results.append((f"search '{SEARCH}' ({matches} hits), query as written", "app + RLS", ms, lines))
        async with owner.transaction():
            ms, lines = await _explain(owner, SEARCH_SQL, tenant, SEARCH)
        results.append(("same query", "owner, no RLS", ms, lines))
        async with app.transaction():
            await _in_context(app, tenant)
            ms, lines = await _explain(app, "SELECT * FROM bench_search_passages($1)", SEARCH)
            definer_hits = len(await app.fetch("SELECT * FROM bench_search_passages($1)", SEARCH))
        results.append(
            (f"SECURITY DEFINER function ({definer_hits} hits)", "app + RLS (calls it)", ms, lines)
        )
        async with owner.transaction():
            # The function's body as the definer role runs it: its own plan, with the tenant filter.
            await _in_context(owner, tenant)
            await owner.execute(f"SET LOCAL ROLE {DEFINER_ROLE}")
            ms, lines = await _explain(owner, DEFINER_BODY_SQL, SEARCH)
        results.append(("the function's body", DEFINER_ROLE, ms, lines))
    finally:
        await app.close()
        await owner.close()
    return results


def _render(title: str, results: Sequence[tuple[str, str, float, list[str]]]) -> str:
    rows = [
        [name, role, f"{ms:.3f}", "<br>".join(f"`{line.strip()}`" for line in lines)]
        for name, role, ms, lines in results
    ]
    return f"#### {title}\n\n" + table(["query", "role", "execution ms (median)", "key plan lines"], rows)


def run(target: BenchTarget, dataset: Dataset) -> str:
    async def main() -> str:
        policy = await _policy_trap(target, dataset)
        search = await _search_trap(target)
        return "\n\n".join(
            [
                "### Known traps (EXPLAIN ANALYZE, median of 5 runs after one warm-up)",
                _render("1. The tenant policy's OR admin branch is no index condition", policy),
                _render("2. Full-text `@@` under RLS, and the SECURITY DEFINER way out", search),
                "pgvector HNSW under RLS (too few or no rows for small tenants) is measured with the"
                " retrieval work, not here.",
            ]
        )

    return asyncio.run(main())
