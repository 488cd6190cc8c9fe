"""RLS overhead inside the database over the platform's own protocol: direct SQL through asyncpg.

pgbench cannot send what the platform sends (the context as `SET LOCAL` statements in BEGIN's
simple-query message, then the query as a prepared statement), so this part sends it itself:

- *owner, no RLS*: `BEGIN`, the prepared query naming its tenant, `COMMIT`; and the same with the
  app's `SET LOCAL` statements sent with BEGIN (no policy applies to the owner: what the context
  costs by itself);
- *app + RLS, as the platform sends it*: `BEGIN; SET LOCAL app.tenant_id = '…'; SET LOCAL app.role =
  'API_KEY'` (made by `core.database.context_statement`), the prepared query naming its tenant as
  the owner's does, `COMMIT`;
- *app + RLS, tenant left to the policy*: the same with the query not naming its tenant (the policy
  is then the index condition): measured, not what the platform sends (docs/decisions/007).

Each client holds one connection per shape and runs one transaction on each in turn (the same
celebrity, the order rotating), so the machine's drift in speed falls on every shape alike. The
headline is each backend's own CPU time per transaction (`/proc/<pid>/schedstat`, nanoseconds): the
client here is Python, so latencies include its time, but what PostgreSQL spends does not.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import asyncpg

from bench.datagen import Dataset, celebrity_id, tenant_id
from bench.report import backend_cpu_us, overhead, percentile, table
from bench.rls_overhead import COLUMNS, Measured
from bench.target import BenchTarget
from vibethink.core.database import RlsContext, context_statement

LISTED = "status IN ('ACTIVE', 'INACTIVE', 'PENDING_SETUP', 'SUSPENDED')"
ORDER = " ORDER BY created_at DESC, id DESC LIMIT 51"


@dataclass(frozen=True)
class Shape:
    name: str
    as_owner: bool
    names_tenant: bool
    sends_context: bool = True

    def query(self, workload: str) -> str:
        tenant = "tenant_id = $1 AND " if self.names_tenant else ""
        if workload == "by id":
            return f"SELECT {COLUMNS} FROM celebrities WHERE {tenant}id = ${2 if self.names_tenant else 1}"
        return f"SELECT {COLUMNS} FROM celebrities WHERE {tenant}{LISTED}{ORDER}"


OWNER = Shape("owner, no RLS", as_owner=True, names_tenant=True, sends_context=False)
SHAPES = (
    OWNER,
    Shape("owner, no RLS, the same SET LOCALs", as_owner=True, names_tenant=True),
    Shape("app + RLS, as the platform sends it", as_owner=False, names_tenant=True),
    Shape("app + RLS, tenant left to the policy", as_owner=False, names_tenant=False),
)
WORKLOADS = ("by id", "list page of 50")


@dataclass
class _Session:
    shape: Shape
    conn: asyncpg.Connection
    statement: asyncpg.prepared_stmt.PreparedStatement
    pid: int


async def _open(target: BenchTarget, shape: Shape, workload: str) -> _Session:
    conn = await (target.connect_owner() if shape.as_owner else target.connect_app())
    statement = await conn.prepare(shape.query(workload))
    return _Session(shape, conn, statement, int(await conn.fetchval("SELECT pg_backend_pid()")))


async def _transaction(session: _Session, workload: str, dataset: Dataset, n: int) -> None:
    shape = session.shape
    tenant = tenant_id(dataset.tenant_of(n))
    if not shape.sends_context:
        begin = "BEGIN"
    else:
        begin = f"BEGIN; {context_statement(RlsContext(tenant_id=tenant, role='API_KEY'))}"
    args: tuple[object, ...] = (tenant,) if shape.names_tenant else ()
    if workload == "by id":
        args = (*args, celebrity_id(n))
    await session.conn.execute(begin)
    rows = await session.statement.fetch(*args)
    await session.conn.execute("COMMIT")
    if not rows:
        raise RuntimeError(f"{shape.name}: no row for celebrity {n}")


async def _client(
    sessions: list[_Session],
    workload: str,
    dataset: Dataset,
    deadline: float,
    rng: random.Random,
    into: dict[str, Measured] | None,
) -> None:
    """One transaction on each shape's connection in turn (the order rotating), until the deadline."""
    turn = 0
    while time.perf_counter() < deadline:
        n = rng.randint(1, dataset.rows)
        turn += 1
        for session in sessions[turn % len(sessions) :] + sessions[: turn % len(sessions)]:
            started = time.perf_counter()
            await _transaction(session, workload, dataset, n)
            if into is not None:
                into[session.shape.name].latencies_ms.append((time.perf_counter() - started) * 1000)


async def _run(target: BenchTarget, dataset: Dataset, *, clients: int, seconds: float) -> str:
    rows: list[list[object]] = []
    for workload in WORKLOADS:
        results = {shape.name: Measured() for shape in SHAPES}
        per_client = [[await _open(target, shape, workload) for shape in SHAPES] for _ in range(clients)]
        try:
            rngs = [random.Random(c) for c in range(clients)]
            # A warm-up second: statements planned, caches filled.
            warm_until = time.perf_counter() + 1
            await asyncio.gather(
                *(
                    _client(s, workload, dataset, warm_until, rng, None)
                    for s, rng in zip(per_client, rngs, strict=True)
                )
            )
            before = {id(s): backend_cpu_us(s.pid) for sessions in per_client for s in sessions}
            deadline = time.perf_counter() + seconds
            await asyncio.gather(
                *(
                    _client(s, workload, dataset, deadline, rng, results)
                    for s, rng in zip(per_client, rngs, strict=True)
                )
            )
            for sessions in per_client:
                for s in sessions:
                    results[s.shape.name].server_cpu_s += (backend_cpu_us(s.pid) - before[id(s)]) / 1e6
        finally:
            for sessions in per_client:
                for s in sessions:
                    await s.conn.close()
        owner = results[OWNER.name]
        for shape in SHAPES:
            m = results[shape.name]
            ordered = sorted(m.latencies_ms)
            rows.append(
                [
                    workload,
                    shape.name,
                    f"{len(m.latencies_ms):,}",
                    f"{m.mean_ms:.3f}",
                    f"{percentile(ordered, 0.5):.3f}",
                    f"{percentile(ordered, 0.99):.3f}",
                    "—" if shape is OWNER else overhead(m.mean_ms, owner.mean_ms),
                    f"{m.cpu_us_per_transaction:.1f}",
                    "—"
                    if shape is OWNER
                    else f"{m.cpu_us_per_transaction - owner.cpu_us_per_transaction:+.1f} µs",
                    "—"
                    if shape is OWNER
                    else overhead(m.cpu_us_per_transaction, owner.cpu_us_per_transaction),
                ]
            )
        print(f"  {clients} client(s) {workload}: {len(owner.latencies_ms):,} transactions per shape")
    return table(
        [
            "workload",
            "role / context",
            "transactions",
            "mean ms",
            "p50 ms",
            "p99 ms",
            "latency overhead",
            "backend CPU µs / txn",
            "vs owner",
            "backend CPU overhead",
        ],
        rows,
    )


def run_protocol(target: BenchTarget, dataset: Dataset, *, clients: int, seconds: float) -> str:
    """Every shape interleaved transaction by transaction; returns the table (each backend's CPU per
    transaction beside latency)."""
    return asyncio.run(_run(target, dataset, clients=clients, seconds=seconds))
