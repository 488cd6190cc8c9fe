"""`python -m bench billing`: month-end statements for 1,000 talents × 10,000 transactions each, and
billing's own quota check (`quotas.check_message`, cached and uncached; the usage endpoint's path —
the chat turn reads the tier and the day's count inside its own database call instead).

Statements run as the app does: the app role under RLS, one transaction per talent, the statement
query plus its CSV. The data lives in its own database (`vibethink_bench_billing`), built once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bench.report import percentile, table
from vibethink.billing import quotas, statements
from vibethink.core import migrations
from vibethink.core.database import (
    Database,
    RlsContext,
    app_url_for,
    asyncpg_connect_args,
    ensure_database,
    owner_url,
    stop_embedded,
)
from vibethink.core.settings import Settings

DATABASE = "vibethink_bench_billing"
MONTH = date(2026, 10, 1)
DATA_VERSION = "billing-v1"


@dataclass(frozen=True)
class BillingData:
    talents: int
    transactions: int

    @property
    def label(self) -> str:
        return f"{DATA_VERSION}:{self.talents}x{self.transactions}"


@contextmanager
def billing_database() -> Iterator[tuple[Settings, object]]:
    settings = Settings(database_name=DATABASE, in_process_dispatcher=False)
    try:
        owner = owner_url(settings).set(database=DATABASE)
        ensure_database(owner)
        migrations.upgrade(owner)
        yield settings, owner
    finally:
        stop_embedded()


async def ensure_data(owner: object, data: BillingData) -> float | None:
    """Builds the talents and their month of transactions unless present; the load time, or None."""
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_connect_args(owner))  # type: ignore[arg-type]
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        await conn.execute("REVOKE ALL ON bench_meta FROM PUBLIC")
        if await conn.fetchval("SELECT value FROM bench_meta WHERE key = 'billing'") == data.label:
            await conn.execute("ANALYZE revenue_transactions")
            return None
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            # The owner (superuser on the embedded server) loads directly; triggers forbid only rewrites.
            await conn.execute(
                "INSERT INTO tenants (id, kind, slug, name, tier)"
                " SELECT overlay(lpad(to_hex(n), 32, '0') placing 'b' from 1)::uuid, 'TALENT',"
                " 'bill-t' || n, 'Billing Talent ' || n, 'PROFESSIONAL' FROM generate_series(1, $1::int) n",
                data.talents,
            )
            await conn.execute(
                "INSERT INTO celebrities (tenant_id, id, slug, name, type, status)"
                " SELECT t.id, t.id, t.slug, t.name, 'SPORTS_COMMENTATOR', 'ACTIVE' FROM tenants t"
                " WHERE t.slug LIKE 'bill-t%'"
            )
            await conn.execute(
                "INSERT INTO deployments (tenant_id, id, celebrity_id, type, name, widget_key, analytics_key)"
                " SELECT c.tenant_id, gen_random_uuid(), c.id, d.type::deployment_type, d.type,"
                " 'vtw_' || substr(md5(random()::text), 1, 32), 'vta_' || substr(md5(random()::text), 1, 32)"
                " FROM celebrities c CROSS JOIN (VALUES ('VIBETHINK_PORTAL'), ('EMBEDDED_WIDGET')) d(type)"
                " WHERE c.slug LIKE 'bill-t%'"
            )
            for index in ("ix_revenue_transactions_tenant_time", "ix_revenue_transactions_celebrity_time"):
                await conn.execute(f"DROP INDEX IF EXISTS {index}")
            # 10,000 postings per talent over the month: subscriptions (3 % processing fee),
            # one-time purchases, campaign CPM; shares 70/30 or 80/20 of net, parts summing to net.
            await conn.execute(
                """
                INSERT INTO revenue_transactions (tenant_id, id, celebrity_id, deployment_id, type, currency,
                       gross_cents, fee_cents, net_cents, celebrity_share_cents, platform_share_cents,
                       description, occurred_at, fan_key)
                SELECT c.tenant_id, gen_random_uuid(), c.id,
                       CASE WHEN i % 2 = 0 THEN d.id END,
                       (CASE WHEN i % 10 < 7 THEN 'SUBSCRIPTION' WHEN i % 10 < 9 THEN 'TRANSACTION_FEE'
                             ELSE 'CPM' END)::transaction_type,
                       'USD', g.gross, g.fee, g.gross - g.fee,
                       (g.gross - g.fee) * (CASE WHEN i % 10 = 9 THEN 8 ELSE 7 END) / 10,
                       (g.gross - g.fee) - (g.gross - g.fee) * (CASE WHEN i % 10 = 9 THEN 8 ELSE 7 END) / 10,
                       'bench', $2::timestamptz + (i * interval '250 seconds'), 'user:bench-' || i
                  FROM celebrities c
                  JOIN LATERAL (SELECT id FROM deployments WHERE tenant_id = c.tenant_id
                                 AND type = 'VIBETHINK_PORTAL' LIMIT 1) d ON true
                  CROSS JOIN generate_series(1, $1::int) i
                  CROSS JOIN LATERAL (SELECT 500 + (i % 37) * 100 AS gross,
                                             CASE WHEN i % 10 < 7 THEN (500 + (i % 37) * 100) * 3 / 100
                                                  ELSE 0 END AS fee) g
                 WHERE c.slug LIKE 'bill-t%'
                """,
                data.transactions,
                datetime(MONTH.year, MONTH.month, 1, tzinfo=UTC),
            )
            await conn.execute(
                "CREATE INDEX ix_revenue_transactions_tenant_time"
                " ON revenue_transactions (tenant_id, occurred_at)"
            )
            await conn.execute(
                "CREATE INDEX ix_revenue_transactions_celebrity_time"
                " ON revenue_transactions (tenant_id, celebrity_id, occurred_at)"
            )
            await conn.execute(
                "INSERT INTO bench_meta (key, value) VALUES ('billing', $1)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                data.label,
            )
        await conn.execute("VACUUM (ANALYZE) revenue_transactions")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run_statements(db: Database, data: BillingData) -> str:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_connect_args(db.owner_url))
    try:
        talents = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM celebrities WHERE slug LIKE 'bill-t%' ORDER BY slug LIMIT $1", data.talents
            )
        ]
    finally:
        await conn.close()
    rows = [await _statements_with(db, talents, workers) for workers in (1, 2)]
    return table(
        ["connections", "talents", "postings read", "total", "per statement p50", "p99", "max", "target"],
        rows,
    )


async def _statements_with(db: Database, talents: list[Any], workers: int) -> list[str]:
    """Every talent's statement and CSV, `workers` connections at a time; one table row."""
    timings: list[float] = []
    postings = 0

    async def worker(share: list[Any]) -> None:
        nonlocal postings
        for celebrity in share:
            began = time.perf_counter()
            async with db.transaction(RlsContext(tenant_id=celebrity, role="TALENT_OWNER")) as session:
                found = await statements.statement(
                    session, tenant_id=celebrity, celebrity_id=celebrity, month=MONTH
                )
            statements.to_csv(found)
            assert found.is_balanced
            postings += sum(t.count for t in found.totals.values())
            timings.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(worker(talents[i::workers]) for i in range(workers)))
    total = time.perf_counter() - started
    timings.sort()
    return [
        str(workers),
        f"{len(talents):,}",
        f"{postings:,}",
        f"{total:.1f} s",
        f"{percentile(timings, 0.5) * 1000:.1f} ms",
        f"{percentile(timings, 0.99) * 1000:.1f} ms",
        f"{timings[-1] * 1000:.1f} ms",
        "≤ 30 s " + ("met" if total <= 30 else "NOT met"),
    ]


async def run_quota(db: Database, *, fans: int = 1_000, checks: int = 100_000) -> str:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_connect_args(db.owner_url))
    try:
        celebrity = await conn.fetchval("SELECT id FROM celebrities WHERE slug = 'bill-t1'")
        await conn.execute(
            "INSERT INTO pricing_tiers (tenant_id, id, celebrity_id, code, name, monthly_price_cents,"
            " entitlements) VALUES ($1, gen_random_uuid(), $1, 'FREE', 'Free', 0,"
            " jsonb_build_object('messages_per_day', 1000000)) ON CONFLICT DO NOTHING",
            celebrity,
        )
    finally:
        await conn.close()
    keys = [f"anon:bench-{n}" for n in range(fans)]
    now = datetime.now(UTC)
    quotas.clear()
    cold: list[float] = []
    hot: list[float] = []
    async with db.transaction(RlsContext(tenant_id=celebrity, role="FAN")) as session:
        for key in keys:
            began = time.perf_counter_ns()
            await quotas.check_message(
                session, tenant_id=celebrity, celebrity_id=celebrity, fan_key=key, now=now
            )
            cold.append((time.perf_counter_ns() - began) / 1e6)
        for n in range(checks):
            key = keys[n % fans]
            began = time.perf_counter_ns()
            await quotas.check_message(
                session, tenant_id=celebrity, celebrity_id=celebrity, fan_key=key, now=now
            )
            hot.append((time.perf_counter_ns() - began) / 1e6)
    cold.sort()
    hot.sort()
    rows = [
        [
            label,
            f"{len(values):,}",
            f"{percentile(values, 0.5):.4f} ms",
            f"{percentile(values, 0.99):.4f} ms",
            f"{values[-1]:.3f} ms",
            target,
        ]
        for label, values, target in (
            ("cached", hot, "≤ 1 ms p99 " + ("met" if percentile(hot, 0.99) <= 1 else "NOT met")),
            ("uncached (allowance + usage read)", cold, "—"),
        )
    ]
    return table(["check", "calls", "p50", "p99", "max", "target"], rows)


def run(*, talents: int = 1_000, transactions: int = 10_000) -> str:
    data = BillingData(talents, transactions)
    with billing_database() as (settings, owner):
        loaded = asyncio.run(ensure_data(owner, data))
        if loaded is not None:
            print(f"  loaded {talents:,} talents × {transactions:,} transactions in {loaded:.0f} s")

        async def measure() -> tuple[str, str]:
            db = Database(settings, owner=owner)  # type: ignore[arg-type]
            try:
                return await run_statements(db, data), await run_quota(db)
            finally:
                await db.dispose()

        statement_table, quota_table = asyncio.run(measure())
    app = app_url_for(settings, owner)  # type: ignore[arg-type]
    return (
        f"### Month-end statements (app role `{app.username}`, RLS on)\n\n{statement_table}\n\n"
        f"### Billing's quota check (`quotas.check_message`)\n\n{quota_table}"
    )
