"""RLS overhead inside the database: pgbench, the app role with RLS against the owner without it.

Every transaction reads what the celebrities API reads (`talent.service.get` and `.page`): one row by
(tenant_id, id), or a page of 50 (+1 to know if there is more) newest first over (created_at, id).
The owner runs it bare (BEGIN, query, COMMIT). The app role runs it with the RLS context:
- *SET LOCAL with BEGIN* (simple protocol): what `core.database.TenantConnection` sends, the
  context as `SET LOCAL` statements in the same message as BEGIN (`BEGIN; SET LOCAL app.tenant_id =
  '…'; SET LOCAL app.role = 'API_KEY'`), then the query and COMMIT — compared with the owner's
  BEGIN, query, COMMIT over the same protocol;
- *set_config own round trip* / *set_config pipelined with BEGIN* (prepared statements): the
  context as a `SELECT set_config(...)` statement of its own, sent alone or pipelined with BEGIN
  (what the platform did before);
- *set by the key lookup*: what an API-key request does. Its first statement looks the key up
  (`auth_find_api_key`) and sets the context in the same SELECT (`tenancy.access._from_api_key`);
  compared with the owner running the same lookup without the set_config calls.
pgbench cannot mix protocols in one script and a `SET` takes no bind parameter, so the app's own
path (context as a simple-query message, queries as prepared statements) runs over the simple
protocol for both roles; the prepared-statement rows show the same queries with the context as a
statement.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.datagen import CELEBRITY_PREFIX, ID_OFFSET, TENANT_PREFIX, Dataset, celebrity_id, tenant_id
from bench.report import median, overhead, percentile, server_cpu_seconds, table
from bench.target import BenchTarget, pg_binary, postmaster_pid
from vibethink.core.database import SET_CONTEXT_SQL, Database, RlsContext

COLUMNS = (
    "tenant_id, id, slug, name, type, status, bio, twin_config, twin_config_version,"
    " created_at, updated_at, archived_at"
)
TENANT = f"('{TENANT_PREFIX}' || :tt)::uuid"
BY_ID = (
    f"SELECT {COLUMNS} FROM celebrities WHERE tenant_id = {TENANT}"
    f" AND id = ('{CELEBRITY_PREFIX}' || :cc)::uuid;"
)
LIST_PAGE = (
    f"SELECT {COLUMNS} FROM celebrities WHERE tenant_id = {TENANT}"
    " AND status IN ('ACTIVE', 'INACTIVE', 'PENDING_SETUP', 'SUSPENDED')"
    " ORDER BY created_at DESC, id DESC LIMIT 51;"
)
# What the app sends with BEGIN for an API-key request: the tenant and the caller's role.
CONTEXT = (
    f"SELECT set_config('app.tenant_id', '{TENANT_PREFIX}' || :tt, true),"
    " set_config('app.role', 'API_KEY', true);"
)
# The same as the platform sends it now (simple protocol only: pgbench substitutes the variable
# into the literal, as the app inlines the tenant id).
SET_LOCAL_CONTEXT = f"SET LOCAL app.tenant_id = '{TENANT_PREFIX}:tt' \\; SET LOCAL app.role = 'API_KEY'"
KEY_LOOKUP = (
    "SELECT k.tenant_id, k.id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at{context}"
    " FROM auth_find_api_key((SELECT key_id FROM bench_key_ids WHERE tenant_n = :t)) k;"
)
KEY_CONTEXT = (
    ", set_config('app.tenant_id', k.tenant_id::text, true), set_config('app.role', 'API_KEY', true)"
)
WORKLOADS = {"by id": BY_ID, "list page of 50": LIST_PAGE}
# Key ids are lookup handles, not secrets: the scripts read them from here (bench database only).
KEY_IDS_SQL = (
    "CREATE TABLE IF NOT EXISTS bench_key_ids AS"
    " SELECT tenant_n, substr(plaintext, 9, 16) AS key_id FROM bench_api_keys;"
    "CREATE UNIQUE INDEX IF NOT EXISTS bench_key_ids_pkey ON bench_key_ids (tenant_n);"
    "GRANT SELECT ON bench_key_ids TO {app}"
)


@dataclass(frozen=True)
class Variant:
    name: str
    as_owner: bool
    context: str  # "none" | "own" | "pipelined" | "set-local" | "key-lookup"
    baseline: str = "owner, no RLS"
    mode: str = "prepared"  # pgbench -M

    def script(self, query: str, dataset: Dataset) -> str:
        head = (
            f"\\set n random(1, {dataset.rows})\n\\set t (:n - 1) / {dataset.rows_per_tenant} + 1\n"
            f"\\set tt :t + {ID_OFFSET}\n\\set cc :n + {ID_OFFSET}\n"
        )
        if self.context == "none":
            body = f"BEGIN;\n{query}\nCOMMIT;\n"
        elif self.context == "key-lookup":
            lookup = KEY_LOOKUP.format(context="" if self.as_owner else KEY_CONTEXT)
            body = f"BEGIN;\n{lookup}\n{query}\nCOMMIT;\n"
        elif self.context == "own":
            body = f"BEGIN;\n{CONTEXT}\n{query}\nCOMMIT;\n"
        elif self.context == "set-local":
            body = f"BEGIN \\; {SET_LOCAL_CONTEXT};\n{query}\nCOMMIT;\n"
        else:
            body = f"\\startpipeline\nBEGIN;\n{CONTEXT}\n\\endpipeline\n{query}\nCOMMIT;\n"
        return head + body


OWNER_SIMPLE = "owner, no RLS (simple protocol)"
OWNER_WITH_LOOKUP = "owner, no RLS, key lookup first"
VARIANTS = (
    Variant(OWNER_SIMPLE, as_owner=True, context="none", baseline=OWNER_SIMPLE, mode="simple"),
    Variant(
        "app + RLS, SET LOCAL with BEGIN (simple protocol)",
        as_owner=False,
        context="set-local",
        baseline=OWNER_SIMPLE,
        mode="simple",
    ),
    Variant("owner, no RLS", as_owner=True, context="none"),
    Variant("app + RLS, set_config own round trip", as_owner=False, context="own"),
    Variant("app + RLS, set_config pipelined with BEGIN", as_owner=False, context="pipelined"),
    Variant(OWNER_WITH_LOOKUP, as_owner=True, context="key-lookup", baseline=OWNER_WITH_LOOKUP),
    Variant(
        "app + RLS, context set by the key lookup",
        as_owner=False,
        context="key-lookup",
        baseline=OWNER_WITH_LOOKUP,
    ),
)


@dataclass
class Measured:
    tps: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0
    server_cpu_s: float = 0.0

    @property
    def cpu_us_per_transaction(self) -> float:
        return self.server_cpu_s / len(self.latencies_ms) * 1e6 if self.latencies_ms else float("nan")

    @property
    def mean_ms(self) -> float:
        return sum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else float("nan")


@dataclass(frozen=True)
class PgbenchPlan:
    seconds: int
    rounds: int
    clients: int = 8
    threads: int = 2


def pgbench_command(plan: PgbenchPlan, script: str, log_prefix: str, mode: str = "prepared") -> list[str]:
    return [
        pg_binary("pgbench"),
        "-n",
        "-M",
        mode,
        "-c",
        str(plan.clients),
        "-j",
        str(min(plan.threads, plan.clients)),
        "-T",
        str(plan.seconds),
        "-f",
        script,
        "-l",
        f"--log-prefix={log_prefix}",
    ]


def _run_pgbench(
    target: BenchTarget, url: URL, command: list[str], log_prefix: str
) -> tuple[float, list[float], int]:
    env = {**os.environ, **target.libpq_env(url)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stderr[-2000:]}")
    match = re.search(r"tps = ([0-9.]+)", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    latencies: list[float] = []
    for path in glob.glob(f"{log_prefix}.*"):
        with open(path, encoding="utf-8") as log:
            for row in log:
                parts = row.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    latencies.append(int(parts[2]) / 1000.0)
        os.unlink(path)
    return (
        (float(match.group(1)) if match else float("nan")),
        latencies,
        int(failed.group(1)) if failed else 0,
    )


def run_pgbench(target: BenchTarget, dataset: Dataset, plan: PgbenchPlan) -> str:
    """pgbench rounds, variants rotated each round so none always runs first; returns the table.

    Beside latency, the server's own CPU time per transaction (all of its processes, from /proc):
    what the database spends, whatever the load generator sharing the cores does.
    """
    results: dict[tuple[str, str], Measured] = {}
    asyncio.run(_key_ids(target))
    postmaster = postmaster_pid(target)
    with tempfile.TemporaryDirectory(prefix="vibethink-bench-") as work:
        for round_no in range(plan.rounds):
            for workload, query in WORKLOADS.items():
                order = VARIANTS[round_no % len(VARIANTS) :] + VARIANTS[: round_no % len(VARIANTS)]
                for variant in order:
                    script = os.path.join(work, "script.sql")
                    with open(script, "w", encoding="utf-8") as out:
                        out.write(variant.script(query, dataset))
                    prefix = os.path.join(work, "pgbench_log")
                    url = target.owner if variant.as_owner else target.app
                    cpu_before = server_cpu_seconds(postmaster) if postmaster else 0.0
                    tps, latencies, failed = _run_pgbench(
                        target, url, pgbench_command(plan, script, prefix, variant.mode), prefix
                    )
                    measured = results.setdefault((workload, variant.name), Measured())
                    if postmaster:
                        time.sleep(0.5)  # the closed connections' backends are reaped: counted
                        measured.server_cpu_s += server_cpu_seconds(postmaster) - cpu_before
                    measured.tps.append(tps)
                    measured.latencies_ms.extend(latencies)
                    measured.failed += failed
                    print(
                        f"  round {round_no + 1}/{plan.rounds} {workload:<16} {variant.name:<40}"
                        f" {tps:>9.0f} tps"
                    )
    rows: list[list[object]] = []
    for workload in WORKLOADS:
        for variant in VARIANTS:
            owner = results[(workload, variant.baseline)]
            m = results[(workload, variant.name)]
            lat = sorted(m.latencies_ms)
            cpu = m.cpu_us_per_transaction
            rows.append(
                [
                    workload,
                    variant.name,
                    f"{median(m.tps):,.0f}",
                    f"{m.mean_ms:.3f}",
                    f"{percentile(lat, 0.5):.3f}",
                    f"{percentile(lat, 0.99):.3f}",
                    m.failed,
                    "—" if variant.as_owner else overhead(m.mean_ms, owner.mean_ms),
                    f"{cpu:.0f}" if postmaster else "—",
                    "—"
                    if variant.as_owner or not postmaster
                    else overhead(cpu, owner.cpu_us_per_transaction),
                ]
            )
    return table(
        [
            "workload",
            "role / context",
            "TPS (median)",
            "mean ms",
            "p50 ms",
            "p99 ms",
            "failed",
            "latency overhead",
            "server CPU µs / txn",
            "server CPU overhead",
        ],
        rows,
    )


async def _key_ids(target: BenchTarget) -> None:
    conn = await target.connect_owner()
    try:
        await conn.execute(KEY_IDS_SQL.format(app=target.app.username))
    finally:
        await conn.close()


def pgbench_scripts(dataset: Dataset) -> str:
    """The exact scripts, for the record."""
    parts = []
    for workload, query in WORKLOADS.items():
        for variant in VARIANTS:
            parts.append(f"-- {workload} / {variant.name}\n{variant.script(query, dataset)}")
    return "\n".join(parts)


# --- the transaction wrapper, through SQLAlchemy: what a request pays before its first query ---------


async def _time_wrapper(db: Database, dataset: Dataset, transactions: int) -> str:
    import random

    rng = random.Random(7)
    picks = [rng.randint(1, dataset.rows) for _ in range(transactions)]
    query = text(f"SELECT {COLUMNS} FROM celebrities WHERE tenant_id = :t AND id = :id")

    def params(n: int) -> dict[str, Any]:
        return {"t": tenant_id(dataset.tenant_of(n)), "id": celebrity_id(n)}

    owner_sessions = async_sessionmaker(db.owner_engine, expire_on_commit=False, autoflush=False)

    async def owner_bare(n: int) -> None:
        # The same ORM session machinery as the app's path, so only RLS and its context differ.
        async with owner_sessions() as session, session.begin():
            (await session.execute(query, params(n))).one()

    async def app_own_round_trip(n: int) -> None:
        ctx = RlsContext(tenant_id=tenant_id(dataset.tenant_of(n)), role="API_KEY")
        async with db.sessions() as session, session.begin():
            await session.execute(SET_CONTEXT_SQL, ctx.settings_row())
            (await session.execute(query, params(n))).one()

    async def app_transaction(n: int) -> None:
        ctx = RlsContext(tenant_id=tenant_id(dataset.tenant_of(n)), role="API_KEY")
        async with db.transaction(ctx) as session:
            (await session.execute(query, params(n))).one()

    shapes = {
        "owner, no RLS (BEGIN, query, COMMIT)": owner_bare,
        "app + RLS, set_config as its own statement": app_own_round_trip,
        "app + RLS, Database.transaction(context)": app_transaction,
    }
    timings: dict[str, list[float]] = {name: [] for name in shapes}
    for name, shape in shapes.items():  # warm the pools and statement caches
        for n in picks[:200]:
            await shape(n)
        del name
    for round_no in range(3):
        for name, shape in list(shapes.items())[round_no % 3 :] + list(shapes.items())[: round_no % 3]:
            for n in picks[round_no::3]:
                started = time.perf_counter()
                await shape(n)
                timings[name].append((time.perf_counter() - started) * 1000)
    owner = timings[next(iter(shapes))]
    rows: list[list[object]] = []
    for name, values in timings.items():
        ordered = sorted(values)
        mean = sum(values) / len(values)
        rows.append(
            [
                name,
                len(values),
                f"{mean:.3f}",
                f"{percentile(ordered, 0.5):.3f}",
                f"{percentile(ordered, 0.99):.3f}",
                "—" if values is owner else overhead(mean, sum(owner) / len(owner)),
            ]
        )
    return table(
        ["transaction shape (one connection, sequential)", "n", "mean ms", "p50 ms", "p99 ms", "overhead"],
        rows,
    )


def run_wrapper(target: BenchTarget, dataset: Dataset, *, transactions: int) -> str:
    async def main() -> str:
        db = Database(target.settings.model_copy(update={"pool_size": 2}), owner=target.owner)
        try:
            return await _time_wrapper(db, dataset, transactions)
        finally:
            await db.dispose()

    return asyncio.run(main())


# --- what the policy itself costs: the by-id query in a PL/pgSQL loop, no protocol around it ---------

POLICY_LOOP = """
DO $loop$
DECLARE r record; began timestamptz; n int; t int;
BEGIN
    began := clock_timestamp();
    FOR i IN 1 .. {runs} LOOP
        n := (i * 7919) % {rows} + 1;
        t := (n - 1) / {per_tenant} + 1;
        PERFORM set_config('app.tenant_id', '{tenant_prefix}' || ({offset} + t), true);
        SELECT {columns} INTO r FROM celebrities
         WHERE {tenant_term} id = ('{celebrity_prefix}' || ({offset} + n))::uuid;
        IF r.id IS NULL THEN
            RAISE EXCEPTION 'celebrity % not found', n;
        END IF;
    END LOOP;
    RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - began) * 1000000 / {runs};
END
$loop$
"""
_INLINE = "tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid"
# (label, statements run first in the rolled-back transaction); the owner is a superuser. The last two
# are the tenant policy written without its subquery, measured beside the one the migrations install.
# Every query names its tenant, as the app's do, except the one labelled "policy alone" (measured,
# not taken: docs/decisions/007).
POLICY_ALONE = "app role, the tenant policy alone (query not naming the tenant)"
POLICY_SHAPES = (
    ("owner (superuser: no policy)", ()),
    ("app role, policy USING (true)", ("ALTER POLICY tenant_isolation ON celebrities USING (true)",)),
    ("app role, the tenant policy", ()),
    (POLICY_ALONE, ()),
    (
        "app role, policy inline nullif(…)::uuid",
        (f"ALTER POLICY tenant_isolation ON celebrities USING ({_INLINE})",),
    ),
    (
        "app role, policy inline current_setting(…)::uuid",
        (
            "ALTER POLICY tenant_isolation ON celebrities"
            " USING (tenant_id = current_setting('app.tenant_id', true)::uuid)",
        ),
    ),
)


async def _policy_loop(target: BenchTarget, dataset: Dataset, *, runs: int, rounds: int) -> str:
    loops = {
        alone: POLICY_LOOP.format(
            runs=runs,
            rows=dataset.rows,
            per_tenant=dataset.rows_per_tenant,
            tenant_prefix=TENANT_PREFIX,
            celebrity_prefix=CELEBRITY_PREFIX,
            offset=ID_OFFSET,
            columns=COLUMNS,
            tenant_term="" if alone else f"tenant_id = ('{TENANT_PREFIX}' || ({ID_OFFSET} + t))::uuid AND",
        )
        for alone in (False, True)
    }
    timings: dict[str, list[float]] = {label: [] for label, _ in POLICY_SHAPES}
    for round_no in range(rounds):
        turn = round_no % len(POLICY_SHAPES)
        shapes = POLICY_SHAPES[turn:] + POLICY_SHAPES[:turn]
        for label, setup in shapes:
            conn = await target.connect_owner()
            notices: list[str] = []
            conn.add_log_listener(lambda _c, message, into=notices: into.append(message.message))
            try:
                transaction = conn.transaction()
                await transaction.start()
                for statement in setup:
                    await conn.execute(statement)
                if not label.startswith("owner"):
                    await conn.execute(f"SET LOCAL ROLE {target.app.username}")
                await conn.execute(loops[label == POLICY_ALONE])
                await transaction.rollback()  # the altered policy never outlives the measurement
            finally:
                await conn.close()
            timings[label].append(float(notices[-1]))
    owner = median(timings[POLICY_SHAPES[0][0]])
    rows = [
        [
            label,
            f"{runs:,} × {rounds}",
            f"{median(values):.1f}",
            f"{min(values):.1f}–{max(values):.1f}",
            "—" if label.startswith("owner") else f"{median(values) - owner:+.1f} µs",
        ]
        for label, values in timings.items()
    ]
    return table(["role and policy", "queries", "µs per query (median)", "range", "vs owner"], rows)


def run_policy(target: BenchTarget, dataset: Dataset, *, runs: int = 40_000, rounds: int = 9) -> str:
    """The by-id query's own cost per role and policy, inside one PL/pgSQL loop (context set each time
    for every role alike), in transactions that roll back."""
    return asyncio.run(_policy_loop(target, dataset, runs=runs, rounds=rounds))
