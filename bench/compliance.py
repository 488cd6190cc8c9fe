"""Compliance evidence: events → signed, chained evidence rows, and offline verification of a big export.

* `ledger`: events of several ENTERPRISE tenants (five frameworks enabled, signing on) appended by
  concurrent writers through `ledger.append` in one or more writer processes (one tenant per writer),
  each call one transaction of a batch of events: rows/s and the latency from an event's arrival to
  its evidence being committed. A warm-up is not counted.
* `api`: the same through `POST /api/v1/compliance/events` on one or more `vibethink serve` processes
  (API keys, JSON, validation, auth), batches of events per request, several clients in flight; then
  requests sent on a fixed schedule (open loop, no bound on how many are in flight) offering a given
  number of evidence rows a second, the latency counted from when each request was due.
* `outbox`: the platform's own path, end to end: platform events written into the outbox at a fixed
  rate over several tenants (by a light generator, or each in its own transaction through
  `outbox.emit`) while `vibethink worker` processes turn them into evidence; the latency runs from
  the event's transaction to the commit of its evidence (`processed_at - occurred_at`: the batch
  that appends the evidence also finishes the event, at its end).
* `verify`: `vibethink compliance verify` on a 1,000,000-record export (built once under bench/out/
  with the platform's own record, signing and checkpoint code), on every core.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.report import process_cpu_seconds, server_cpu_seconds
from bench.target import BenchTarget, bench_target, postmaster_pid
from vibethink.compliance import ledger, merkle
from vibethink.compliance.canonical import canonical
from vibethink.compliance.export import evidence_line
from vibethink.compliance.keys import KeyStore, SigningKey
from vibethink.compliance.verify import EXPORT_FORMAT
from vibethink.core import outbox
from vibethink.core.database import Database, RlsContext, asyncpg_connect_args
from vibethink.core.dispatcher import Dispatcher, default_registry
from vibethink.core.security import generate_api_key

OUT = Path(__file__).resolve().parent / "out"
FIVE = ["CMMI_ML3", "ISO_27001", "SOC2_TYPE2", "GDPR", "NIST_CSF"]
PEPPER = b"bench-pepper"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def deployment(n: int, *, approvals: int = 2) -> dict[str, Any]:
    return {
        "version": f"v2.{n // 100}.{n % 100}",
        "environment": "PRODUCTION",
        "deploymentType": "CANARY",
        "approvals": [
            {"userId": f"lead{j}@vibethink.com", "timestamp": "2026-01-10T00:25:00Z"}
            for j in range(approvals)
        ],
        "qualityGates": {
            "tests": "PASSED",
            "coverage": 0.87,
            "securityScan": "PASSED",
            "performanceTest": "PASSED",
        },
        "rollbackPlan": f"docs/runbooks/rollback-{n}.md",
    }


async def make_tenants(target: BenchTarget, count: int) -> list[tuple[uuid.UUID, str]]:
    """ENTERPRISE tenants with the five frameworks on and an API key each: (tenant id, key)."""
    conn = await target.connect_owner()
    made = []
    try:
        for _ in range(count):
            tenant_id = uuid.uuid4()
            key = generate_api_key()
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO tenants (id, kind, slug, name, tier)"
                    " VALUES ($1, 'BRAND', $2, 'Bench', 'ENTERPRISE')",
                    tenant_id,
                    f"cxbench-{tenant_id.hex[:12]}",
                )
                await conn.execute(
                    "INSERT INTO compliance_settings"
                    " (tenant_id, version, enabled_frameworks, retention_years)"
                    " VALUES ($1, 1, $2, 7)",
                    tenant_id,
                    FIVE,
                )
                await conn.execute(
                    "INSERT INTO api_keys (tenant_id, id, key_id, secret_hash, name, scopes)"
                    " VALUES ($1, $2, $3, $4, 'bench', $5)",
                    tenant_id,
                    uuid.uuid4(),
                    key.key_id,
                    key.secret_hash,
                    ["compliance:events", "compliance:read"],
                )
            made.append((tenant_id, key.plaintext))
    finally:
        await conn.close()
    return made


def _events(n: int, batch: int) -> list[ledger.IncomingEvent]:
    return [
        ledger.IncomingEvent(
            uuid.uuid4(), "CODE_DEPLOYMENT", datetime.now(UTC), deployment(n + i),
            ledger.Source.EXTERNAL, None, "john.doe@vibethink.com",
        )
        for i in range(batch)
    ]  # fmt: skip


def _ledger_process(
    target: BenchTarget,
    tenants: list[uuid.UUID],
    batch: int,
    seconds: float,
    start: Any,
    results: Any,
) -> None:
    """One writer process: a writer (coroutine) per tenant, each call one transaction of `batch` events.

    Like `vibethink serve` and `worker`, it freezes its startup objects out of the collector's full
    passes once warm; the calls made while warming up are not counted.
    """

    async def main() -> tuple[int, list[float], float]:
        keys = KeyStore(OUT / "bench-keys")
        db = Database(target.settings, owner=target.owner)
        latencies: list[float] = []
        rows = 0
        counting = False
        stop = 0.0

        async def writer(tenant_id: uuid.UUID, until: float) -> None:
            nonlocal rows
            n = 0
            while time.perf_counter() < until:
                arrived = time.perf_counter()
                events = _events(n, batch)
                n += batch
                async with db.transaction(RlsContext(tenant_id=tenant_id, role="SYSTEM")) as session:
                    result = await ledger.append(
                        session, keys, PEPPER, tenant_id, events, checkpoint_every=1000
                    )
                if counting:
                    latencies.append((time.perf_counter() - arrived) * 1000)
                    rows += result.count

        try:
            await asyncio.gather(*(writer(t, time.perf_counter() + 1.5) for t in tenants))  # warm-up
            gc.collect()
            gc.freeze()
            await asyncio.get_running_loop().run_in_executor(None, start.wait)
            counting = True
            began = time.perf_counter()
            stop = began + seconds
            await asyncio.gather(*(writer(t, stop) for t in tenants))
            return rows, latencies, time.perf_counter() - began
        finally:
            await db.dispose()

    results.put(asyncio.run(main()))


def run_ledger(target: BenchTarget, *, processes: int, writers: int, batch: int, seconds: float) -> str:
    """`processes` writer processes with `writers` tenants each, writing concurrently for `seconds`."""
    tenants = asyncio.run(make_tenants(target, processes * writers))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    children = [
        context.Process(
            target=_ledger_process,
            args=(
                target,
                [t for t, _ in tenants[i * writers : (i + 1) * writers]],
                batch,
                seconds,
                start,
                results,
            ),
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in children]
    for child in children:
        child.join(timeout=30)
    rows = sum(r for r, _, _ in outcomes)
    latencies = [ms for _, values, _ in outcomes for ms in values]
    elapsed = max(e for _, _, e in outcomes)
    return (
        f"| ledger.append | {processes} | {processes * writers} | {batch} | {rows:,}"
        f" | {rows / elapsed:,.0f} |"
        f" {statistics.median(latencies):.1f} | {percentile(latencies, 99):.1f} |"
    )


@contextmanager
def _servers(target: BenchTarget, count: int, *, offset: int = 0) -> Iterator[list[str]]:
    """`count` `vibethink serve` processes on the bench database, up and healthy; their base URLs."""
    ports = [18000 + (os.getpid() + 7 * i + offset) % 1000 for i in range(count)]
    env = {**os.environ, **target.service_env(as_owner=False)}
    processes = [
        subprocess.Popen(
            [str(Path(sys.executable).parent / "vibethink"), "serve", "--no-migrate", "--port", str(port)],
            env={**env, "VIBETHINK_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
        yield bases
    finally:
        for server in processes:
            server.terminate()
        for server in processes:
            server.wait(timeout=20)


def run_api(target: BenchTarget, *, servers: int, clients: int, batch: int, seconds: float) -> str:
    """`clients` concurrent clients (one tenant and API key each) over `servers` server processes."""
    tenants = asyncio.run(make_tenants(target, clients))
    with _servers(target, servers) as bases:
        latencies: list[float] = []
        rows = 0
        counting = False

        async def client(base: str, key: str, stop: float) -> None:
            nonlocal rows
            n = 0
            async with httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as http:
                while time.perf_counter() < stop:
                    body = {
                        "events": [
                            {"eventType": "CODE_DEPLOYMENT", "timestamp": datetime.now(UTC).isoformat(),
                             "actor": {"userId": "john.doe@vibethink.com"}, "payload": deployment(n + i)}
                            for i in range(batch)
                        ]
                    }  # fmt: skip
                    n += batch
                    sent = time.perf_counter()
                    response = await http.post("/api/v1/compliance/events", json=body)
                    if response.status_code != 201:
                        raise RuntimeError(response.text)
                    if counting:
                        latencies.append((time.perf_counter() - sent) * 1000)
                        rows += len(response.json()["evidence"])

        async def main() -> float:
            nonlocal counting
            pairs = [(bases[i % servers], key) for i, (_, key) in enumerate(tenants)]
            warm = time.perf_counter() + 2
            await asyncio.gather(*(client(base, key, warm) for base, key in pairs))  # warm-up
            counting = True
            started = time.perf_counter()
            stop = started + seconds
            await asyncio.gather(*(client(base, key, stop) for base, key in pairs))
            return time.perf_counter() - started

        elapsed = asyncio.run(main())
    return (
        f"| POST /compliance/events (HTTP) | {servers} | {clients} | {batch} | {rows:,}"
        f" | {rows / elapsed:,.0f} |"
        f" {statistics.median(latencies):.1f} | {percentile(latencies, 99):.1f} |"
    )


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request written whole, its response read by length.

    The open-loop load needs a client lighter than httpx: it shares the two cores with the servers
    and PostgreSQL, and its own cost would be counted in the latency it measures."""

    def __init__(self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.host, self.reader, self.writer = host, reader, writer

    @classmethod
    async def open(cls, base: str) -> _Connection:
        host = base.removeprefix("http://")
        name, port = host.split(":")
        return cls(host, *await asyncio.open_connection(name, int(port)))

    async def post(self, path: str, key: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"a response without Content-Length: {head!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def run_api_open(
    target: BenchTarget, *, servers: int, tenants: int, batch: int, rows_per_second: float, seconds: float
) -> str:
    """Requests of `batch` events sent on a fixed schedule (open loop) so that `rows_per_second`
    evidence rows are offered, over `tenants` API keys and `servers` server processes. A request's
    latency runs from the moment it was due, so a server that falls behind is charged for the wait."""
    made = asyncio.run(make_tenants(target, tenants))
    rows_per_request = 3 * batch  # each CODE_DEPLOYMENT yields 3 rows
    interval = rows_per_request / rows_per_second
    with _servers(target, servers, offset=3) as bases:
        latencies: list[float] = []
        outcome = {"rows": 0, "errors": 0, "late": 0}

        async def main(warm: float, window: float) -> float:
            idle: dict[str, list[_Connection]] = {base: [] for base in bases}
            pending: set[asyncio.Task[None]] = set()

            async def one(n: int, due: float, counting: bool) -> None:
                base = bases[n % len(bases)]
                _, key = made[n % len(made)]
                body = json.dumps(
                    {
                        "events": [
                            {"eventType": "CODE_DEPLOYMENT", "timestamp": datetime.now(UTC).isoformat(),
                             "actor": {"userId": "john.doe@vibethink.com"},
                             "payload": deployment(n * batch + i)}
                            for i in range(batch)
                        ]
                    }
                ).encode()  # fmt: skip
                connection = idle[base].pop() if idle[base] else await _Connection.open(base)
                status, answer = await connection.post("/api/v1/compliance/events", key, body)
                done = time.perf_counter()
                idle[base].append(connection)
                if not counting:
                    return
                if status != 201:
                    outcome["errors"] += 1
                    return
                latencies.append((done - due) * 1000)
                outcome["rows"] += len(json.loads(answer)["evidence"])

            began = time.perf_counter()
            n = 0
            while True:
                due = began + n * interval
                if due >= began + warm + window:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -interval:
                    outcome["late"] += 1  # the generator itself could not keep the schedule
                task = asyncio.create_task(one(n, due, due >= began + warm))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            await asyncio.gather(*pending)
            for connections in idle.values():
                for connection in connections:
                    connection.close()
            return window

        window = asyncio.run(main(5.0, seconds))
    return (
        f"| POST /compliance/events (HTTP, open loop) | {servers}"
        f" | {tenants} keys, {rows_per_second:,.0f} rows/s offered | {batch} | {outcome['rows']:,}"
        f" | {outcome['rows'] / window:,.0f} |"
        f" {statistics.median(latencies):.1f} | {percentile(latencies, 99):.1f} |"
        + (f" ({outcome['errors']} errors)" if outcome["errors"] else "")
        + (f" ({outcome['late']} sent late by the generator)" if outcome["late"] else "")
    )


def _start_workers(target: BenchTarget, count: int) -> list[subprocess.Popen[bytes]]:
    """`count` `vibethink worker` processes (no periodic jobs), signing with the bench's keys."""
    env = {
        **os.environ,
        **target.service_env(as_owner=False),
        "VIBETHINK_PERIODIC_JOBS": "false",
        "VIBETHINK_COMPLIANCE_KEYS_DIR": str(OUT / "bench-keys"),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [str(Path(sys.executable).parent / "vibethink"), "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(OUT / f"worker-{n}.log").open("wb"),  # its warnings, if any, for a look afterwards
        )
        for n in range(count)
    ]


def _payload(n: int) -> dict[str, Any]:
    return {**deployment(n), "actor": {"userId": "john.doe@vibethink.com"}}


# Events straight into the outbox as the owner (the light generator and the workers' probe).
_INSERT_EVENTS = (
    "INSERT INTO platform_events (tenant_id, id, event_type, actor_role, payload)"
    " SELECT t, i, 'CODE_DEPLOYMENT', 'SYSTEM', p::jsonb"
    "   FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(t, i, p)"
)


async def _insert_events(
    conn: asyncpg.Connection | asyncpg.Pool, tenants: list[uuid.UUID], first: int
) -> None:
    await conn.execute(
        _INSERT_EVENTS,
        tenants,
        [uuid.uuid4() for _ in tenants],
        [json.dumps(_payload(n)) for n in range(first, first + len(tenants))],
    )


async def _produce(
    target: BenchTarget,
    tenants: list[uuid.UUID],
    *,
    rate: float,
    until: float,
    each_alone: bool,
    connections: int = 8,
) -> int:
    """CODE_DEPLOYMENT events into the outbox at `rate` a second (open loop), spread over `tenants`;
    returns how many.

    `each_alone`: every event in its own transaction, written as the platform writes one
    (`outbox.emit` in a `Database.transaction` as the app role under the tenant's RLS context), at
    most `connections` at once: the generator's CPU and PostgreSQL's for it fall on the same 2 cores,
    and where it cannot keep the rate the table shows the events it wrote. Otherwise, every 5 ms one
    statement inserts the events due by then (as the owner): a light generator, so the CPU measured
    is the path's.
    """
    db = Database(target.settings.model_copy(update={"pool_size": connections}), owner=target.owner)
    pool = await asyncpg.create_pool(**asyncpg_connect_args(target.owner), min_size=1, max_size=2)
    emitted = 0

    async def emit(n: int) -> None:
        nonlocal emitted
        tenant_id = tenants[n % len(tenants)]
        async with db.transaction(RlsContext(tenant_id=tenant_id, role="SYSTEM")) as session:
            await outbox.emit(session, "CODE_DEPLOYMENT", tenant_id=tenant_id, payload=_payload(n))
        emitted += 1

    async def emit_due(first: int, upto: int) -> None:
        nonlocal emitted
        await _insert_events(pool, [tenants[n % len(tenants)] for n in range(first, upto)], first)
        emitted += upto - first

    try:
        began = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        n = 0
        while time.perf_counter() < until:
            if each_alone:
                delay = began + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if len(pending) >= connections:  # every connection busy: the rate falls to what they do
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.create_task(emit(n))
                n += 1
            else:
                await asyncio.sleep(0.005)
                due = int((time.perf_counter() - began) * rate)
                if due <= n:
                    continue
                task = asyncio.create_task(emit_due(n, due))
                n = due
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    finally:
        await pool.close()
        await db.dispose()
    return emitted


async def _outbox_outcome(
    target: BenchTarget, tenants: list[uuid.UUID], since: datetime, until: datetime
) -> tuple[int, int, list[float], int]:
    """(events emitted in the window, their evidence rows, event → evidence ms of each, not done yet)."""
    conn = await target.connect_owner()
    try:
        latencies = [
            row[0]
            for row in await conn.fetch(
                "SELECT extract(epoch FROM processed_at - occurred_at) * 1000 FROM platform_events"
                " WHERE tenant_id = ANY($1) AND occurred_at >= $2 AND occurred_at < $3 AND status = 'DONE'",
                tenants,
                since,
                until,
            )
        ]
        events, undone = await conn.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'DONE') FROM platform_events"
            " WHERE tenant_id = ANY($1) AND occurred_at >= $2 AND occurred_at < $3",
            tenants,
            since,
            until,
        )
        rows = await conn.fetchval(
            "SELECT count(*) FROM compliance_evidence e JOIN platform_events p"
            " ON p.tenant_id = e.tenant_id AND p.id = e.event_id"
            " WHERE p.tenant_id = ANY($1) AND p.occurred_at >= $2 AND p.occurred_at < $3",
            tenants,
            since,
            until,
        )
    finally:
        await conn.close()
    return events, rows, [float(ms) for ms in latencies], undone


async def _wait_for_workers(target: BenchTarget, tenant_id: uuid.UUID) -> None:
    """Until a first event has its evidence: the workers are up (and nothing older is pending)."""
    conn = await target.connect_owner()
    try:
        await _insert_events(conn, [tenant_id], 0)
        deadline = time.monotonic() + 120
        while await conn.fetchval(
            "SELECT count(*) FROM platform_events WHERE tenant_id = $1 AND status <> 'DONE'", tenant_id
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not deliver a first event within 2 minutes")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def run_outbox(
    target: BenchTarget, *, workers: int, tenants: int, rate: float, seconds: float, each_alone: bool
) -> str:
    """Events emitted into the outbox at `rate`/s while `workers` `vibethink worker` processes turn
    them into evidence: the platform's own events → evidence path, end to end."""
    tenant_ids = [t for t, _ in asyncio.run(make_tenants(target, tenants))]
    processes = _start_workers(target, workers)
    try:
        asyncio.run(_wait_for_workers(target, tenant_ids[0]))
        warm = time.perf_counter() + 3
        asyncio.run(_produce(target, tenant_ids, rate=rate, until=warm, each_alone=each_alone))
        time.sleep(1)
        cpu = -sum(process_cpu_seconds(p.pid) for p in processes)
        since = datetime.now(UTC)
        stop = time.perf_counter() + seconds
        asyncio.run(_produce(target, tenant_ids, rate=rate, until=stop, each_alone=each_alone))
        until = datetime.now(UTC)
        time.sleep(2)  # the last events' evidence
        cpu += sum(process_cpu_seconds(p.pid) for p in processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    events, rows, latencies, undone = asyncio.run(_outbox_outcome(target, tenant_ids, since, until))
    window = (until - since).total_seconds()
    return (
        f"| {workers} | {tenants} | {rate:,.0f} {'(each its own txn)' if each_alone else '(5 ms ticks)'}"
        f" | {events:,} | {rows:,} | {rows / window:,.0f} |"
        f" {statistics.median(latencies):.1f} | {percentile(latencies, 99):.1f} | {max(latencies):.1f} |"
        f" {undone} | {cpu / max(rows, 1) * 1e6:.0f} |"
    )


def run_drain(target: BenchTarget, *, events: int, tenants: int, batch: int) -> str:
    """A backlog of `events` over `tenants` drained by one dispatcher in this process, in claims of
    `batch`: the CPU an event costs the worker and the whole PostgreSQL server, free of any schedule
    (claims of 100 over 8 tenants are shares of ~12 events; claims of 16, shares of ~2)."""
    tenant_ids = [t for t, _ in asyncio.run(make_tenants(target, tenants))]
    postmaster = postmaster_pid(target)

    async def fill() -> None:
        conn = await target.connect_owner()
        try:
            for first in range(0, events, 500):
                upto = min(first + 500, events)
                await _insert_events(conn, [tenant_ids[n % tenants] for n in range(first, upto)], first)
        finally:
            await conn.close()

    async def drain() -> tuple[int, float, float]:
        db = Database(target.settings.model_copy(update={"outbox_batch_size": batch}))
        try:
            dispatcher = Dispatcher(db, default_registry(), worker_id="bench-drain")
            cpu, server = time.process_time(), server_cpu_seconds(postmaster) if postmaster else 0.0
            handled = await dispatcher.drain(max_batches=1_000_000)
            cpu = time.process_time() - cpu
            server = (server_cpu_seconds(postmaster) - server) if postmaster else float("nan")
        finally:
            await db.dispose()
        return handled, cpu, server

    asyncio.run(fill())
    handled, cpu, server = asyncio.run(drain())
    return (
        f"| {events:,} | {tenants} | {batch} | {handled:,} | {cpu / handled * 1e6:,.0f}"
        f" | {server / handled * 1e6:,.0f} |"
    )


# ------------------------------------------------------------------ a 1,000,000-record export


def build_export(path: Path, records: int, signer: SigningKey, keys: KeyStore) -> None:
    """Writes an export of `records` evidence rows exactly as `write_export` lays it out."""
    tenant = uuid.uuid4()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    leaves: list[bytes] = []
    checkpoints: list[tuple[int, bytes]] = []
    prev = ledger.GENESIS
    files: dict[str, dict[str, Any]] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("evidence.jsonl", "w", force_zip64=True) as raw:
            digest, size = hashlib.sha256(), 0
            frontier: merkle.Frontier = []
            for seq in range(1, records + 1):
                at = base + timedelta(seconds=seq)
                row = {
                    "tenant_id": tenant, "seq": seq, "prev_hash": prev, "event_id": uuid.UUID(int=seq),
                    "event_type": "CODE_DEPLOYMENT", "source": "EXTERNAL",
                    "event_hash": hashlib.sha256(str(seq).encode()).hexdigest(),
                    "control_id": ("CHG-01", "CHG-03", "TST-01")[seq % 3],
                    "rule_id": "deploy-change-approval",
                    "rule_version": 1, "kind": "OPERATING", "outcome": "PASS", "occurred_at": at,
                    "period_start": at, "period_end": at, "recorded_at": at,
                    "observation": {"checks": [{"name": "two_approvals", "passed": True}], "failed": [],
                                    "facts": {"version": f"v{seq}", "actor": "p_0123456789abcdef0123"}},
                    "artifacts": [{"name": "rollbackPlan", "ref_sha256": "ab" * 32}], "key_id": signer.key_id,
                }  # fmt: skip
                document = ledger.record_document(row)
                leaf = ledger.entry_hash_of(document)
                line = evidence_line(document, leaf.hex(), signer.sign(leaf).hex())
                raw.write(line)
                digest.update(line)
                size += len(line)
                leaves.append(leaf)
                frontier = merkle.extend(frontier, [leaf])
                if seq % 100_000 == 0 or seq == records:
                    checkpoints.append((seq, merkle.frontier_root(frontier)))
                prev = leaf.hex()
            files["evidence.jsonl"] = {"sha256": digest.hexdigest(), "bytes": size}
        lines = []
        previous = None
        for tree_size, root in checkpoints:
            document = ledger.checkpoint_document(tenant, tree_size, root.hex(), base, signer.key_id)
            item: dict[str, Any] = {
                "checkpoint": document,
                "signature": signer.sign(canonical(document)).hex(),
            }
            if previous is not None:
                item["consistency_proof"] = [
                    p.hex() for p in merkle.consistency_proof(leaves[:tree_size], previous)
                ]
            previous = tree_size
            lines.append(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        body = b"".join(lines)
        archive.writestr("checkpoints.jsonl", body)
        files["checkpoints.jsonl"] = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
        archive.writestr("notes.jsonl", b"")
        files["notes.jsonl"] = {"sha256": hashlib.sha256(b"").hexdigest(), "bytes": 0}
        public = {k: base64.b64encode(v).decode() for k, v in keys.public_keys().items()}
        keys_bytes = json.dumps({"keys": public}, indent=2, sort_keys=True).encode()
        archive.writestr("keys.json", keys_bytes)
        files["keys.json"] = {"sha256": hashlib.sha256(keys_bytes).hexdigest(), "bytes": len(keys_bytes)}
        manifest: dict[str, Any] = {
            "format": EXPORT_FORMAT, "tenant_id": str(tenant), "generated_at": ledger.iso(base),
            "tree_size": records,
            "checkpoint": {"tree_size": records, "root_hash": checkpoints[-1][1].hex()}, "files": files,
            "key_id": signer.key_id,
        }  # fmt: skip
        manifest["signature"] = signer.sign(canonical(manifest)).hex()
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))


def run_verify(records: int) -> str:
    keys = KeyStore(OUT / "bench-keys")
    path = OUT / f"export-{records}.zip"
    if not path.exists():
        print(f"building a {records:,}-record export under {path} (once) …", flush=True)
        started = time.perf_counter()
        build_export(path, records, keys.active(), keys)
        print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    trusted = OUT / "bench-trusted-keys.json"
    trusted.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in keys.public_keys().items()}))
    started = time.perf_counter()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "vibethink"), "compliance", "verify", str(path),
         "--trusted-keys", str(trusted), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    report = json.loads(result.stdout)
    return (
        f"| {report['records']:,} | {os.cpu_count()} | {elapsed:.1f} | {report['records'] / elapsed:,.0f} |"
        f" {'VERIFIED' if report['ok'] else 'FAILED: ' + str(report['first_problem'])} |"
        f" {path.stat().st_size / 1e6:,.0f} MB |"
    )


# (processes, writers per process, events per call) and (servers, clients, events per request)
LEDGER_RUNS = ((1, 2, 10), (1, 4, 10), (2, 1, 10), (2, 2, 10), (2, 2, 50), (2, 4, 1))
API_RUNS = ((1, 4, 50), (2, 4, 50), (2, 4, 10), (2, 8, 1))
# (servers, tenants, events per request, evidence rows offered per second), on a fixed schedule:
API_OPEN_RUNS = ((2, 4, 10, 3000), (2, 32, 10, 3000))
# (worker processes, tenants, events offered per second, each event its own transaction):
# 1,000 events/s are 3,000 evidence rows/s
# (events in the backlog, tenants, claim size): shares of ~12 and of ~2 events
DRAIN_RUNS = ((6000, 8, 100), (3000, 8, 16))
OUTBOX_RUNS = (
    (1, 8, 1000, False), (2, 8, 1000, False), (1, 8, 1300, False), (1, 50, 1000, False),
    (2, 50, 1000, False), (1, 8, 1000, True),
)  # fmt: skip


def run(*, quick: bool, parts: list[str], records: int) -> str:
    seconds = 5.0 if quick else 15.0
    out = []
    with bench_target() as target:
        header = (
            "| path | processes | writers / clients | events per call | evidence rows | rows/s"
            " | p50 ms per call | p99 ms per call |\n"
            "|---|---|---|---|---|---|---|---|"
        )
        lines = []
        if "ledger" in parts:
            for processes, writers, batch in LEDGER_RUNS:
                lines.append(
                    run_ledger(target, processes=processes, writers=writers, batch=batch, seconds=seconds)
                )
                print(lines[-1], flush=True)
        if "api" in parts:
            for servers, clients, batch in API_RUNS:
                lines.append(run_api(target, servers=servers, clients=clients, batch=batch, seconds=seconds))
                print(lines[-1], flush=True)
            for servers, tenants, batch, rate in API_OPEN_RUNS:
                lines.append(
                    run_api_open(
                        target,
                        servers=servers,
                        tenants=tenants,
                        batch=batch,
                        rows_per_second=rate,
                        seconds=seconds,
                    )
                )
                print(lines[-1], flush=True)
        if lines:
            out.append(
                "Each CODE_DEPLOYMENT event yields 3 evidence rows (CHG-01, CHG-03, TST-01),"
                " each mapped to the"
            )
            out.append(
                "five enabled frameworks, canonicalised, hashed, chained, Ed25519-signed and committed.\n"
            )
            out.append(header + "\n" + "\n".join(lines))
        if "outbox" in parts:
            outbox_lines = []
            for workers, tenants, rate, alone in OUTBOX_RUNS:
                outbox_lines.append(
                    run_outbox(
                        target, workers=workers, tenants=tenants, rate=rate, seconds=seconds, each_alone=alone
                    )
                )
                print(outbox_lines[-1], flush=True)
            out.append(
                "\nOutbox → `vibethink worker` → evidence (latency: the event's commit → its evidence's):\n"
                "| workers | tenants | events/s offered | events | evidence rows | rows/s | p50 ms | p99 ms"
                " | max ms | not done 2 s after | worker CPU µs/row |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(outbox_lines)
            )
    if "drain" in parts:
        with bench_target() as target:
            drain_lines = []
            for events, tenants, batch in DRAIN_RUNS:
                drain_lines.append(run_drain(target, events=events, tenants=tenants, batch=batch))
                print(drain_lines[-1], flush=True)
        out.append(
            "\nA backlog drained in process by one dispatcher (CPU per event: this process, the server):\n"
            "| events | tenants | claim size | handled | worker CPU µs/event | PostgreSQL CPU µs/event |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(drain_lines)
        )
    if "verify" in parts:
        out.append(
            "\n| records | cores | seconds | records/s | result | export size |\n|---|---|---|---|---|---|\n"
            + run_verify(records)
        )
    return "\n".join(out)
