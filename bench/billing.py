"""`python -m bench billing [--only statements,quota]`: month-end statements for 1,000 talents × 10,000
transactions each, and the chat turn's quota lookup (the fan's tier and today's count, read inside
`chat_turn_read`), cut from the deployed function and timed inside PostgreSQL as the app role.

Statements run as the app does: the app role under RLS, one transaction per talent, the statement
query plus its CSV. The data lives in its own database (`vibethink_bench_billing`), built once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import URL

from bench.report import percentile, table
from bench.target import bench_target
from vibethink.billing import statements
from vibethink.core.database import (
    Database,
    RlsContext,
    app_url_for,
    asyncpg_connect_args,
)

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


async def ensure_data(owner: URL, data: BillingData) -> float | None:
    """Builds the talents and their month of transactions unless present; the load time, or None."""
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_connect_args(owner))
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


async def bench_talents(db: Database, data: BillingData) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_connect_args(db.owner_url))
    try:
        return [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM celebrities WHERE slug LIKE 'bill-t%' ORDER BY slug LIMIT $1", data.talents
            )
        ]
    finally:
        await conn.close()


async def run_statements(db: Database, talents: list[Any]) -> str:
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


TURN_QUOTA_START = "-- The fan's allowance"
TURN_QUOTA_END = "lexical := '[]';"
QUOTA_FANS_PER_TALENT = 100


async def ensure_quota_data(conn: Any, talents: list[Any]) -> None:
    """Every talent gets a FREE (50 a day) and a PREMIUM tier and 100 fans: 30 subscribed, 10 past due
    in grace, 10 canceled, the rest free; half of them have sent messages today."""
    label = f"{len(talents)}x{QUOTA_FANS_PER_TALENT}"
    if await conn.fetchval("SELECT value FROM bench_meta WHERE key = 'turn-quota'") == label:
        return
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM fan_usage WHERE fan_key LIKE 'user:quota-%';"
            " DELETE FROM fan_subscriptions WHERE fan_key LIKE 'user:quota-%';"
            " DELETE FROM pricing_tiers WHERE tenant_id IN (SELECT id FROM tenants WHERE slug LIKE 'bill-t%')"
        )
        await conn.execute(
            "INSERT INTO pricing_tiers (tenant_id, id, celebrity_id, code, name, monthly_price_cents,"
            " entitlements, sort_order, is_active)"
            " SELECT c.tenant_id, gen_random_uuid(), c.id, t.code, t.name, t.price, t.entitlements,"
            " t.sort, true"
            " FROM unnest($1::uuid[]) AS w(id) JOIN celebrities c ON c.id = w.id"
            " CROSS JOIN (VALUES ('FREE', 'Free', 0, '{\"messages_per_day\": 50}'::jsonb, 0),"
            "   ('PREMIUM', 'Premium', 999, '{\"messages_per_day\": null}'::jsonb, 1))"
            "   AS t(code, name, price, entitlements, sort)",
            talents,
        )
        await conn.execute(
            """
            INSERT INTO fan_subscriptions (tenant_id, id, celebrity_id, tier_id, fan_key, status, price_cents,
                   current_period_start, current_period_end, past_due_since, grace_until, ended_at)
            SELECT t.tenant_id, gen_random_uuid(), t.celebrity_id, t.id, 'user:quota-' || n,
                   (CASE WHEN n % 10 < 3 THEN 'ACTIVE' WHEN n % 10 = 3 THEN 'PAST_DUE'
                         ELSE 'CANCELED' END)::subscription_status,
                   999, now() - interval '10 days', now() + interval '20 days',
                   CASE WHEN n % 10 = 3 THEN now() - interval '1 day' END,
                   CASE WHEN n % 10 = 3 THEN now() + interval '2 days' END,
                   CASE WHEN n % 10 = 4 THEN now() - interval '1 day' END
              FROM pricing_tiers t CROSS JOIN generate_series(1, $2::int) n
             WHERE t.celebrity_id = ANY($1::uuid[]) AND t.code = 'PREMIUM' AND n % 10 < 5
            """,
            talents,
            QUOTA_FANS_PER_TALENT,
        )
        await conn.execute(
            "INSERT INTO fan_usage (tenant_id, celebrity_id, fan_key, day, messages)"
            " SELECT c.tenant_id, c.id, 'user:quota-' || n, current_date, n % 40"
            " FROM celebrities c CROSS JOIN generate_series(1, $2::int) n"
            " WHERE c.id = ANY($1::uuid[]) AND n % 2 = 0",
            talents,
            QUOTA_FANS_PER_TALENT,
        )
        await conn.execute(
            "INSERT INTO bench_meta (key, value) VALUES ('turn-quota', $1)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            label,
        )
    await conn.execute("ANALYZE pricing_tiers; ANALYZE fan_subscriptions; ANALYZE fan_usage")


async def install_turn_quota_probe(conn: Any, app_role: str) -> str:
    """`bench_turn_quota`: the quota lookup of the deployed `chat_turn_read`, cut from its own source
    (so the bench times exactly what the turn runs), in a loop over fans that times each lookup with
    `clock_timestamp()` under the fan's RLS context. Returns the lookup's text for the report."""
    source = await conn.fetchval(
        "SELECT prosrc FROM pg_proc WHERE proname = 'chat_turn_read' ORDER BY oid DESC LIMIT 1"
    )
    lookup = source[source.index(TURN_QUOTA_START) : source.index(TURN_QUOTA_END)]
    await conn.execute(
        f"""
        CREATE OR REPLACE FUNCTION bench_turn_quota(p_tenants uuid[], p_fans text[], p_day date)
        RETURNS TABLE(micros double precision, tier text, used integer)
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = public, pg_temp AS $fn$
        DECLARE
            v_conversation conversations%ROWTYPE;
            p_tenant uuid;
            p_fan_key text;
            tier_code text;
            tier_name text;
            tier_entitlements jsonb;
            subscription_id uuid;
            used_today integer;
            began timestamptz;
        BEGIN
            FOR i IN 1 .. cardinality(p_tenants) LOOP
                p_tenant := p_tenants[i];
                p_fan_key := p_fans[i];
                v_conversation.celebrity_id := p_tenant;  -- each bench talent is its own tenant
                PERFORM set_config('app.tenant_id', p_tenant::text, true),
                        set_config('app.user_id', '', true),
                        set_config('app.role', 'FAN', true);
                began := clock_timestamp();
                {lookup}
                micros := extract(epoch FROM clock_timestamp() - began) * 1000000;
                tier := tier_code;
                used := used_today;
                RETURN NEXT;
            END LOOP;
        END
        $fn$
        """
    )
    await conn.execute(f"GRANT EXECUTE ON FUNCTION bench_turn_quota(uuid[], text[], date) TO {app_role}")
    return lookup


async def run_turn_quota(db: Database, talents: list[Any], *, lookups: int = 100_000) -> str:
    """The chat turn's quota lookup (tier + today's count) timed inside PostgreSQL as the app role."""
    import random

    import asyncpg

    app_role = app_url_for(db.settings, db.owner_url).username
    conn = await asyncpg.connect(**asyncpg_connect_args(db.owner_url))
    try:
        await ensure_quota_data(conn, talents)
        await install_turn_quota_probe(conn, str(app_role))
    finally:
        await conn.close()
    picker = random.Random(7)
    fans = [
        (picker.choice(talents), f"user:quota-{picker.randint(1, QUOTA_FANS_PER_TALENT)}")
        for _ in range(lookups)
    ]
    today = datetime.now(UTC).date()
    timings: list[float] = []
    tiers: dict[str, int] = {}
    app = await asyncpg.connect(**asyncpg_connect_args(app_url_for(db.settings, db.owner_url)))
    try:
        batch = 1_000
        for start in range(0, lookups, batch):
            chunk = fans[start : start + batch]
            async with app.transaction():
                rows = await app.fetch(
                    "SELECT micros, tier, used FROM bench_turn_quota($1, $2, $3)",
                    [t for t, _ in chunk],
                    [f for _, f in chunk],
                    today,
                )
            for row in rows:
                timings.append(row["micros"] / 1000)
                tiers[row["tier"]] = tiers.get(row["tier"], 0) + 1
    finally:
        await app.close()
    timings.sort()
    p99 = percentile(timings, 0.99)
    mix = ", ".join(f"{count:,} {tier}" for tier, count in sorted(tiers.items()))
    return table(
        ["lookup", "talents × fans", "lookups", "p50", "p99", "max", "target"],
        [
            [
                "chat turn: tier + today's count",
                f"{len(talents):,} × {QUOTA_FANS_PER_TALENT}",
                f"{len(timings):,} ({mix})",
                f"{percentile(timings, 0.5):.4f} ms",
                f"{p99:.4f} ms",
                f"{timings[-1]:.3f} ms",
                "≤ 1 ms p99 " + ("met" if p99 <= 1 else "NOT met"),
            ]
        ],
    )


PARTS = ("statements", "quota")


def run(*, talents: int = 1_000, transactions: int = 10_000, parts: Iterable[str] = PARTS) -> str:
    data = BillingData(talents, transactions)
    wanted = set(parts)
    with bench_target(database=DATABASE) as target:
        settings, owner = target.settings, target.owner
        loaded = asyncio.run(ensure_data(owner, data))
        if loaded is not None:
            print(f"  loaded {talents:,} talents × {transactions:,} transactions in {loaded:.0f} s")

        async def measure() -> list[str]:
            db = Database(settings, owner=owner)
            sections: list[str] = []
            try:
                found = await bench_talents(db, data)
                if "statements" in wanted:
                    app = app_url_for(settings, owner)
                    sections.append(
                        f"### Month-end statements (app role `{app.username}`, RLS on)\n\n"
                        + await run_statements(db, found)
                    )
                if "quota" in wanted:
                    sections.append(
                        "### The chat turn's quota lookup (inside `chat_turn_read`, timed in PostgreSQL)\n\n"
                        + await run_turn_quota(db, found[:200])
                    )
            finally:
                await db.dispose()
            return sections

        return "\n\n".join(asyncio.run(measure()))
