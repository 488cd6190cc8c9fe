"""Chat turn benchmark: the platform's full turn over HTTP/SSE beside a bare FastAPI + asyncpg ceiling.

Both servers run as their own uvicorn process (one worker, no access log) on the bench database; the
model is the zero-latency OpenAI-compatible fake (`tests/twin/fakes.py --burst`, its own process), so
a turn's latency is the platform's overhead plus one local HTTP round trip to the model. The ceiling
does, in one transaction, the same writes as a turn: fan message, twin message, counter, event.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench import wrk
from bench.api_overhead import _free_port, _stop
from bench.report import median, percentile, process_cpu_seconds, table
from bench.target import BenchTarget, bench_target

CONCURRENCIES = (8, 50, 200)
PROMPTS = ("Who won the World Cup in 2022?", "Tell me about Pelé in 1970", "What boots did Messi wear?")
KNOWLEDGE = (
    "Messi won the World Cup in Qatar in 2022 after a final against France decided on penalties. "
    "Pelé won his third World Cup in Mexico in 1970 with a team many call the best ever. "
    "Messi wore boots made for him in that final and lifted the trophy in Lusail."
)
CHAT_DATABASE = "vibethink_bench_chat"
PLATFORM_GROUNDED = "platform turn, grounded model (SSE)"
PLATFORM_OPENAI = "platform turn, OpenAI-compatible fake over HTTP (SSE)"
CEILING = "ceiling (FastAPI + asyncpg)"
REPLY = "What a final! Messi lifted the trophy in Qatar after penalties against France."


@dataclass
class Run:
    name: str
    concurrency: int
    turns: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cpu_seconds: float
    db_cpu_seconds: float = 0.0
    quantiles: tuple[float, float] | None = None  # (p50, p99) as wrk reports them
    round: int | None = None  # of the alternating platform / ceiling rounds

    @property
    def rate(self) -> float:
        return self.turns / self.seconds

    def p(self, fraction: float) -> float:
        if self.quantiles is not None:
            return self.quantiles[0] if fraction == 0.5 else self.quantiles[1]
        return percentile(sorted(self.latencies_ms), fraction)

    @property
    def cpu_ms_per_turn(self) -> float:
        return 1000 * self.cpu_seconds / max(1, self.turns)

    @property
    def db_cpu_ms_per_turn(self) -> float:
        return 1000 * self.db_cpu_seconds / max(1, self.turns)


# -- servers -------------------------------------------------------------------------------------


def serve_platform(port: int) -> None:
    """The platform app, as `vibethink serve` runs it (startup objects frozen out of the collector's
    full passes) but without per-request access logs."""
    import uvicorn

    from vibethink.app import create_app
    from vibethink.cli import _freeze_startup_objects
    from vibethink.core.settings import get_settings

    app = create_app(get_settings())
    _freeze_startup_objects()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def ceiling_app() -> Any:
    """Bare FastAPI + asyncpg: one transaction with the turn's writes, RLS context set as the app does."""
    app = FastAPI()
    url = os.environ["CEILING_DSN"]

    @app.on_event("startup")
    async def start() -> None:
        app.state.pool = await asyncpg.create_pool(url, min_size=10, max_size=20)

    @app.post("/turn/{tenant_id}/{conversation_id}")
    async def turn(tenant_id: uuid.UUID, conversation_id: uuid.UUID, request: Request) -> JSONResponse:
        body = await request.json()
        fan_id, twin_id = uuid.uuid4(), uuid.uuid4()
        async with app.state.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            await conn.execute(
                "INSERT INTO messages (tenant_id, id, conversation_id, role, content)"
                " VALUES ($1, $2, $3, 'FAN', $4), ($1, $5, $3, 'TWIN', $6)",
                tenant_id,
                fan_id,
                conversation_id,
                body["content"],
                twin_id,
                REPLY,
            )
            await conn.execute(
                "UPDATE conversations SET message_count = message_count + 2 WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                conversation_id,
            )
            await conn.execute(
                "INSERT INTO interaction_events (tenant_id, id, celebrity_id, conversation_id, fan_key,"
                " fan_tier, outcome, provider, latency_ms) SELECT $1, $2, celebrity_id, id, fan_key, 'FREE',"
                " 'answered', 'ceiling', 0 FROM conversations WHERE tenant_id = $1 AND id = $3",
                tenant_id,
                uuid.uuid4(),
                conversation_id,
            )
        return JSONResponse({"message_id": str(twin_id), "content": REPLY})

    return app


def serve_ceiling(port: int) -> None:
    """The ceiling, started like the platform (startup objects frozen) so the two compare evenly."""
    import uvicorn

    from vibethink.cli import _freeze_startup_objects

    app = ceiling_app()
    _freeze_startup_objects()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def database_cpu(database: str) -> dict[int, float]:
    """CPU time of each PostgreSQL backend connected to `database` (by their process titles)."""
    found: dict[int, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmd:
                title = cmd.read().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres: ") and f" {database} " in title:
                found[int(pid)] = process_cpu_seconds(pid)
        except OSError:
            continue
    return found


def database_cpu_since(database: str, before: dict[int, float]) -> float:
    """CPU the database's backends have used since `before`: a backend that has gone since (an
    autovacuum worker, a closed connection) drops out rather than making the sum negative."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in database_cpu(database).items())


@dataclass
class Process:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)


@contextmanager
def started(code: str, env: dict[str, str], log_dir: Path, *, ready_path: str) -> Iterator[Process]:
    port = _free_port()
    log = log_dir / f"server-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code.format(port=port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Process(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(server.base_url + ready_path, timeout=1.0).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready; see {log}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(process)


@contextmanager
def fake_model() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.twin.fakes", "--burst"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().decode().strip()
    finally:
        _stop(process)


# -- data ----------------------------------------------------------------------------------------


def chat_target() -> AbstractContextManager[BenchTarget]:
    """A database of this suite's own, rebuilt by the migrations on every run (chat writes pile up)."""
    return bench_target(database=CHAT_DATABASE, recreate=True)


async def make_twin(target: BenchTarget, provider: str = "openai") -> tuple[uuid.UUID, uuid.UUID]:
    """A talent with an ACTIVE twin (on the fake model, or grounded), a portal deployment and a
    little knowledge."""
    from sqlalchemy import text

    from vibethink.core.database import Database, RlsContext
    from vibethink.deployments import service as deployments
    from vibethink.deployments.models import DeploymentType
    from vibethink.tenancy.access import Principal
    from vibethink.tenancy.models import Role, TenantKind
    from vibethink.tenancy.permissions import ALL_SCOPES
    from vibethink.twin.knowledge import service as knowledge

    db = Database(target.settings, owner=target.owner)
    tenant_id, celebrity_id = uuid.uuid4(), uuid.uuid4()
    suffix = tenant_id.hex[:10]
    config = {
        "voiceCloneId": "voice-bench",
        "visualAvatarId": "avatar-bench",
        "personalityProfile": {"tone": "warm", "language": "en", "expertise": ["football"]},
        "guardrails": {"maxResponseLength": 600, "bannedTopics": ["politics"], "contentRating": "PG"},
        "model": {"provider": provider, **({"model": "fake-gpt"} if provider == "openai" else {})},
    }
    try:
        async with db.transaction(RlsContext(is_admin=True, role="PLATFORM_ADMIN")) as s:
            await s.execute(
                text("INSERT INTO tenants (id, kind, slug, name) VALUES (:id, 'TALENT', :s, 'Chat bench')"),
                {"id": tenant_id, "s": f"chat-bench-{suffix}"},
            )
            await s.execute(
                text(
                    "INSERT INTO celebrities (tenant_id, id, slug, name, type, status, twin_config,"
                    " twin_config_version) VALUES (:t, :id, :s, 'Bench Twin', 'ATHLETE', 'ACTIVE',"
                    " CAST(:c AS jsonb), 1)"
                ),
                {"t": tenant_id, "id": celebrity_id, "s": f"chat-bench-{suffix}", "c": json.dumps(config)},
            )
        owner = Principal(
            tenant_id=tenant_id,
            tenant_kind=TenantKind.TALENT,
            permissions=ALL_SCOPES,
            via="session",
            role=Role.TALENT_OWNER,
        )
        async with db.transaction(RlsContext(tenant_id=tenant_id)) as s:
            deployment = await deployments.create(
                s, owner, celebrity_id, type=DeploymentType.VIBETHINK_PORTAL, name="portal"
            )
            await knowledge.add_source(
                s, owner, celebrity_id, kind="TEXT", title="Football", content=KNOWLEDGE, inline=True
            )
        return tenant_id, deployment.id
    finally:
        await db.dispose()


# -- load ----------------------------------------------------------------------------------------


async def _fans(base_url: str, deployment_id: uuid.UUID, count: int) -> list[tuple[dict[str, str], str]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        made = []
        for _ in range(count):
            token = (
                await http.post("/api/v1/chat/sessions", json={"deployment_id": str(deployment_id)})
            ).json()
            headers = {"X-Fan-Token": token["token"], "Accept": "text/event-stream"}
            conversation = await http.post(
                "/api/v1/chat/conversations", json={"deployment_id": str(deployment_id)}, headers=headers
            )
            made.append((headers, f"/api/v1/chat/conversations/{conversation.json()['id']}/messages"))
        return made


async def _ceiling_fans(base_url: str, target: BenchTarget, tenant_id: uuid.UUID, count: int) -> list[str]:
    """Conversations for the ceiling, written directly (it has no API of its own for them)."""
    conn = await target.connect_owner()
    try:
        row = await conn.fetchrow(
            "SELECT celebrity_id, id FROM deployments WHERE tenant_id = $1 LIMIT 1", tenant_id
        )
        ids = [uuid.uuid4() for _ in range(count)]
        await conn.executemany(
            "INSERT INTO conversations (tenant_id, id, celebrity_id, deployment_id, fan_key, context)"
            " VALUES ($1, $2, $3, $4, $5, '{}')",
            [(tenant_id, i, row["celebrity_id"], row["id"], f"anon:ceiling-{i.hex[:12]}") for i in ids],
        )
    finally:
        await conn.close()
    return [f"/turn/{tenant_id}/{i}" for i in ids]


async def _drive(
    base_url: str, requests: list[tuple[dict[str, str], str]], *, seconds: float, streaming: bool
) -> tuple[int, int, float, list[float]]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
        deadline = time.perf_counter() + seconds

        async def fan(headers: dict[str, str], path: str, n: int) -> None:
            nonlocal errors
            i = n
            while time.perf_counter() < deadline:
                body = {"content": PROMPTS[i % len(PROMPTS)], "stream": streaming}
                i += 1
                began = time.perf_counter()
                try:
                    response = await http.post(path, json=body, headers=headers)
                    ok = response.status_code == 200 and (not streaming or b"event: done" in response.content)
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - began) * 1000)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(fan(h, p, n) for n, (h, p) in enumerate(requests)))
        elapsed = time.perf_counter() - began
    return len(latencies), errors, elapsed, latencies


def _measure(
    name: str, server: Process, requests: list[tuple[dict[str, str], str]], *, seconds: float, streaming: bool
) -> Run:
    if wrk.available():
        return _measure_with_wrk(name, server, requests, seconds=seconds, streaming=streaming)
    asyncio.run(_drive(server.base_url, requests, seconds=min(2.0, seconds), streaming=streaming))  # warm-up
    cpu_before, db_before = server.cpu_seconds(), database_cpu(CHAT_DATABASE)
    turns, errors, elapsed, latencies = asyncio.run(
        _drive(server.base_url, requests, seconds=seconds, streaming=streaming)
    )
    cpu, db_cpu = server.cpu_seconds() - cpu_before, database_cpu_since(CHAT_DATABASE, db_before)
    return Run(name, len(requests), turns, errors, elapsed, latencies, cpu, db_cpu)


def _measure_with_wrk(
    name: str, server: Process, requests: list[tuple[dict[str, str], str]], *, seconds: float, streaming: bool
) -> Run:
    load = [
        wrk.WrkRequest(
            path,
            {**headers, "Content-Type": "application/json"},
            json.dumps({"content": PROMPTS[n % len(PROMPTS)], "stream": streaming}),
        )
        for n, (headers, path) in enumerate(requests)
    ]
    marker = "event: done" if streaming else ""
    wrk.run(server.base_url, load, seconds=min(2.0, seconds), marker=marker)  # warm-up
    cpu_before, db_before = server.cpu_seconds(), database_cpu(CHAT_DATABASE)
    result = wrk.run(server.base_url, load, seconds=seconds, marker=marker)
    cpu, db_cpu = server.cpu_seconds() - cpu_before, database_cpu_since(CHAT_DATABASE, db_before)
    run = Run(name, len(requests), result.requests, result.errors, result.seconds, [], cpu, db_cpu)
    run.quantiles = (result.p50_ms, result.p99_ms)
    return run


def run_chat(
    target: BenchTarget, *, seconds: float, fans: tuple[int, ...] = CONCURRENCIES, rounds: int = 3
) -> str:
    """The grounded platform turn and the ceiling in `rounds` alternating rounds per concurrency (both
    servers up at once, the idle one waiting), so that what else the two cores do falls on both alike;
    then the turn with the OpenAI-compatible fake, one round per concurrency."""
    tenant_id, deployment_id = asyncio.run(make_twin(target, "openai"))
    _, grounded_deployment_id = asyncio.run(make_twin(target, "grounded"))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="vibethink-bench-chat-") as tmp, fake_model() as model_url:
        log_dir = Path(tmp)
        env = {
            **target.service_env(as_owner=False),
            "VIBETHINK_OPENAI_BASE_URL": model_url,
            "VIBETHINK_OPENAI_API_KEY": "sk-bench",
            "VIBETHINK_CHAT_MAX_MESSAGES": "10000000",
            "VIBETHINK_POOL_SIZE": "20",
        }
        app_url = target.app.set(drivername="postgresql").render_as_string(hide_password=False)
        ceiling_env = {**os.environ, "CEILING_DSN": app_url}
        platform_code = "from bench.chat import serve_platform; serve_platform({port})"
        ceiling_code = "from bench.chat import serve_ceiling; serve_ceiling({port})"
        with (
            started(platform_code, env, log_dir, ready_path="/healthz") as platform,
            started(ceiling_code, ceiling_env, log_dir, ready_path="/docs") as ceiling,
        ):
            for concurrency in fans:
                made = asyncio.run(_fans(platform.base_url, grounded_deployment_id, concurrency))
                paths = asyncio.run(_ceiling_fans(ceiling.base_url, target, tenant_id, concurrency))
                for n in range(rounds):
                    # Alternate who goes first, so neither always follows the other's leftovers.
                    order: list[tuple[str, Process, list[tuple[dict[str, str], str]]]] = [
                        (PLATFORM_GROUNDED, platform, made),
                        (CEILING, ceiling, [({}, p) for p in paths]),
                    ]
                    for name, server, requests in order if n % 2 == 0 else reversed(order):
                        run = _measure(name, server, requests, seconds=seconds, streaming=name != CEILING)
                        run.round = n + 1
                        runs.append(run)
                        print(
                            f"  {name}, {concurrency} fans, round {n + 1}: {run.rate:,.0f} turns/s",
                            flush=True,
                        )
            for concurrency in fans:
                made = asyncio.run(_fans(platform.base_url, deployment_id, concurrency))
                runs.append(_measure(PLATFORM_OPENAI, platform, made, seconds=seconds, streaming=True))
                print(f"  {PLATFORM_OPENAI}, {concurrency} fans: {runs[-1].rate:,.0f} turns/s", flush=True)
    return report(runs)


def report(runs: list[Run]) -> str:
    """One row per round; a round's ratio is against the ceiling's run of the same round. Then, per
    concurrency, the median of the rounds' ratios and of the grounded turn's p50."""
    rows = []
    by = {(r.name, r.concurrency, r.round): r for r in runs}
    for run in runs:
        ceiling = by.get((CEILING, run.concurrency, run.round))
        ratio = f"{run.rate / ceiling.rate:.2f}×" if ceiling and run is not ceiling else ""
        rows.append(
            [
                run.name,
                run.concurrency,
                run.round or "",
                f"{run.rate:,.0f}",
                ratio,
                f"{run.p(0.5):.1f}",
                f"{run.p(0.99):.1f}",
                f"{run.cpu_ms_per_turn:.2f}",
                f"{run.db_cpu_ms_per_turn:.2f}",
                run.errors,
            ]
        )
    summary = []
    for concurrency in dict.fromkeys(r.concurrency for r in runs):
        pairs = [
            (r, by[(CEILING, concurrency, r.round)])
            for r in runs
            if r.name == PLATFORM_GROUNDED
            and r.concurrency == concurrency
            and (CEILING, concurrency, r.round) in by
        ]
        if pairs:
            ratios = sorted(r.rate / c.rate for r, c in pairs)
            p50s = sorted(r.p(0.5) for r, _ in pairs)
            summary.append(
                f"- {concurrency} fans: grounded turn / ceiling {median(ratios):.2f}× (median of"
                f" {len(ratios)} rounds: {', '.join(f'{x:.2f}' for x in ratios)}), grounded p50"
                f" {median(p50s):.1f} ms (rounds: {', '.join(f'{x:.1f}' for x in p50s)})"
            )
    return (
        table(
            [
                "server",
                "fans",
                "round",
                "turns/s",
                "vs ceiling",
                "p50 ms",
                "p99 ms",
                "server CPU ms/turn",
                "PostgreSQL CPU ms/turn",
                "errors",
            ],
            rows,
        )
        + "\n\n"
        + "\n".join(summary)
    )
