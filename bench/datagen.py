"""Bench data: N tenants × M celebrities, set-based, as the owner, plus one API key per tenant.

Ids are derived, not random: tenant n is `00000000-0000-0000-0000-` and celebrity n
`00000000-0000-0000-0001-` followed by the 12 digits of 100000000000 + n (celebrity n belongs to
tenant (n - 1) / M + 1). pgbench scripts and the HTTP load generator compute the ids they ask for
from a random number — pgbench by plain text substitution, so a script can also put a tenant id in
a `SET LOCAL` literal — and no lookup round trip dilutes what is measured.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass

import asyncpg

from bench.target import BenchTarget
from vibethink.core import migrations
from vibethink.core.database import ensure_database
from vibethink.core.security import generate_api_key
from vibethink.tenancy.permissions import ALL_SCOPES

DATASET_VERSION = "celebrities-v2"

TWIN_CONFIG = {
    "voiceCloneId": "voice-bench",
    "visualAvatarId": "avatar-bench",
    "personalityProfile": {"tone": "warm", "language": "en", "expertise": ["football"]},
    "knowledgeBase": {"sources": [], "lastUpdated": "2026-01-10T00:00:00Z"},
    "guardrails": {"maxResponseLength": 500, "bannedTopics": ["politics"], "contentRating": "PG"},
}


@dataclass(frozen=True)
class Dataset:
    tenants: int
    rows_per_tenant: int

    @property
    def rows(self) -> int:
        return self.tenants * self.rows_per_tenant

    @property
    def label(self) -> str:
        return f"{DATASET_VERSION}:{self.tenants}x{self.rows_per_tenant}"

    def tenant_of(self, row: int) -> int:
        return (row - 1) // self.rows_per_tenant + 1


ID_OFFSET = 100_000_000_000  # every n up to 899,999,999,999 keeps 12 digits
TENANT_PREFIX = "00000000-0000-0000-0000-"
CELEBRITY_PREFIX = "00000000-0000-0000-0001-"


def id_sql(prefix: str, n: str) -> str:
    """SQL for the id of number `n` (an expression or a pgbench variable)."""
    return f"('{prefix}' || ({ID_OFFSET} + {n}))::uuid"


def tenant_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"{TENANT_PREFIX}{ID_OFFSET + n}")


def celebrity_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"{CELEBRITY_PREFIX}{ID_OFFSET + n}")


def ensure_dataset(target: BenchTarget, dataset: Dataset) -> bool:
    """Loads the dataset unless the same one is already there; True when it (re)loaded.

    Another dataset is replaced by recreating the whole bench database: a cascade delete of a million
    rows is slower than building them.
    """
    present, has_tenants = asyncio.run(_present(target))
    if present == dataset.label:
        return False
    if has_tenants:
        ensure_database(target.owner, recreate=True)
        migrations.upgrade(target.owner)
    started = time.perf_counter()
    asyncio.run(_load(target, dataset))
    print(
        f"  loaded {dataset.tenants:,} tenants × {dataset.rows_per_tenant:,} celebrities"
        f" in {time.perf_counter() - started:.1f} s"
    )
    return True


async def _present(target: BenchTarget) -> tuple[str | None, bool]:
    conn = await target.connect_owner()
    try:
        meta = await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL")
        present = await conn.fetchval("SELECT value FROM bench_meta WHERE key = 'dataset'") if meta else None
        has_tenants = bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tenants)"))
    finally:
        await conn.close()
    return present, has_tenants


async def _load(target: BenchTarget, dataset: Dataset) -> None:
    conn = await target.connect_owner()
    try:
        await _load_on(conn, dataset)
    finally:
        await conn.close()


async def _load_on(conn: asyncpg.Connection, dataset: Dataset) -> None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL);"
        "CREATE TABLE IF NOT EXISTS bench_api_keys (tenant_n integer PRIMARY KEY, plaintext text NOT NULL);"
        # Plaintext keys are bench-only: never readable by the app role.
        "REVOKE ALL ON bench_meta, bench_api_keys FROM PUBLIC"
    )
    async with conn.transaction():
        # The owner (a superuser on the embedded server) loads directly: RLS does not filter it.
        await conn.execute("SET LOCAL synchronous_commit = off")
        await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Secondary indexes are rebuilt once after the load: far faster than a million GIN inserts.
        index_defs = [
            r["indexdef"]
            for r in await conn.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i"
                " WHERE i.tablename = 'celebrities' AND i.schemaname = current_schema()"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
        ]
        for r in await conn.fetch(
            "SELECT i.indexname FROM pg_indexes i WHERE i.tablename = 'celebrities'"
            " AND i.schemaname = current_schema()"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ):
            await conn.execute(f'DROP INDEX "{r["indexname"]}"')
        await conn.execute(
            "INSERT INTO tenants (id, kind, slug, name, tier)"
            f" SELECT {id_sql(TENANT_PREFIX, 'n')}, 'TALENT', 'bench-t' || n, 'Bench Tenant ' || n,"
            " 'PROFESSIONAL'"
            " FROM generate_series(1, $1::int) AS n",
            dataset.tenants,
        )
        await conn.execute(
            "INSERT INTO celebrities (tenant_id, id, slug, name, type, status, bio, twin_config,"
            " twin_config_version, created_at, updated_at)"
            f" SELECT {id_sql(TENANT_PREFIX, '((n - 1) / $2 + 1)')}, {id_sql(CELEBRITY_PREFIX, 'n')},"
            " 'bench-c' || n,"
            " 'Bench Talent ' || n,"
            " (enum_range(NULL::celebrity_type))[n % 6 + 1], 'ACTIVE',"
            " 'Commentator number ' || n || ', known for calls that fans remember.', $3::jsonb, 1,"
            " timestamptz '2026-01-01 00:00:00+00' + n * interval '1 second',"
            " timestamptz '2026-01-01 00:00:00+00' + n * interval '1 second'"
            " FROM generate_series(1, $1::int) AS n",
            dataset.rows,
            dataset.rows_per_tenant,
            json.dumps(TWIN_CONFIG),
        )
        for definition in index_defs:
            await conn.execute(definition)
        keys = [(n, generate_api_key()) for n in range(1, dataset.tenants + 1)]
        scopes = sorted(ALL_SCOPES)
        await conn.executemany(
            "INSERT INTO api_keys (tenant_id, id, key_id, secret_hash, name, scopes)"
            f" VALUES ({id_sql(TENANT_PREFIX, '$1::int')}, gen_random_uuid(), $2, $3, 'bench key', $4)",
            [(n, key.key_id, key.secret_hash, scopes) for n, key in keys],
        )
        await conn.executemany(
            "INSERT INTO bench_api_keys (tenant_n, plaintext) VALUES ($1, $2)",
            [(n, key.plaintext) for n, key in keys],
        )
        await conn.execute("INSERT INTO bench_meta (key, value) VALUES ('dataset', $1)", dataset.label)
    for table in ("tenants", "celebrities", "api_keys"):
        await conn.execute(f"VACUUM (ANALYZE) {table}")


async def api_keys(target: BenchTarget) -> dict[int, str]:
    """Tenant number → plaintext API key."""
    conn = await target.connect_owner()
    try:
        rows = await conn.fetch("SELECT tenant_n, plaintext FROM bench_api_keys ORDER BY tenant_n")
    finally:
        await conn.close()
    return {r["tenant_n"]: r["plaintext"] for r in rows}
