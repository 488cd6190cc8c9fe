"""RLS overhead end to end: the real app under uvicorn, as the app role (RLS) and as the owner (no RLS).

Two `vibethink serve --no-migrate` processes serve the bench database side by side: one normally,
one with VIBETHINK_APP_DATABASE_URL set to the owner's URL (a superuser on the embedded server, so
no policy applies). An async httpx client with 8 requests in flight, over loopback, sends the same
requests to each in alternating rounds: GET /api/v1/celebrities/{id} and GET /api/v1/celebrities?limit=50,
each with the API key of the celebrity's tenant.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.datagen import Dataset, api_keys, celebrity_id
from bench.report import median, overhead, percentile, table
from bench.target import BenchTarget

CONCURRENCY = 8
ENDPOINTS = ("GET /api/v1/celebrities/{id}", "GET /api/v1/celebrities?limit=50")
MODES = ("app + RLS", "owner, no RLS")


@dataclass
class Server:
    mode: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Load:
    rps: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def mean_ms(self) -> float:
        return sum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else float("nan")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from vibethink.cli import app; app()",
        "serve",
        "--no-migrate",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


@contextmanager
def running_server(target: BenchTarget, mode: str, log_dir: Path) -> Iterator[Server]:
    """One app process; always stopped (SIGINT, then SIGKILL) when the block ends."""
    port = _free_port()
    env = {**os.environ, **target.service_env(as_owner=mode != MODES[0])}
    log_path = log_dir / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            serve_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(mode, f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the app exited early; see {server.log_path}:\n{server.log_path.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not become healthy in {timeout:.0f} s; see {server.log_path}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _request(
    endpoint: str, dataset: Dataset, keys: dict[int, str], rng: random.Random
) -> tuple[str, dict[str, str]]:
    n = rng.randint(1, dataset.rows)
    key = keys[dataset.tenant_of(n)]
    path = f"/api/v1/celebrities/{celebrity_id(n)}" if "{id}" in endpoint else "/api/v1/celebrities?limit=50"
    return path, {"Authorization": f"Bearer {key}"}


async def _load(
    base_url: str, endpoint: str, dataset: Dataset, keys: dict[int, str], *, seconds: float, seed: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        deadline = time.perf_counter() + seconds

        async def worker(worker_no: int) -> None:
            nonlocal errors
            rng = random.Random(seed * 100 + worker_no)
            while time.perf_counter() < deadline:
                path, headers = _request(endpoint, dataset, keys, rng)
                started = time.perf_counter()
                response = await client.get(path, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies, errors


async def _warm(base_url: str, dataset: Dataset, keys: dict[int, str]) -> None:
    """One request per tenant key (so each key's last-used touch happens now), then a few pages."""
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(tenant_n: int) -> None:
            n = (tenant_n - 1) * dataset.rows_per_tenant + 1
            async with semaphore:
                response = await client.get(
                    f"/api/v1/celebrities/{celebrity_id(n)}",
                    headers={"Authorization": f"Bearer {keys[tenant_n]}"},
                )
            if response.status_code != 200:
                raise RuntimeError(f"warm-up request failed: {response.status_code} {response.text[:300]}")

        await asyncio.gather(*(one(t) for t in sorted(keys)))
        for t in list(keys)[:50]:
            await client.get("/api/v1/celebrities?limit=50", headers={"Authorization": f"Bearer {keys[t]}"})


def run_api(target: BenchTarget, dataset: Dataset, *, seconds: float, rounds: int) -> str:
    keys = asyncio.run(api_keys(target))
    results: dict[tuple[str, str], Load] = {}
    with tempfile.TemporaryDirectory(prefix="vibethink-bench-serve-") as tmp, ExitStack() as stack:
        servers = {mode: stack.enter_context(running_server(target, mode, Path(tmp))) for mode in MODES}
        for server in servers.values():
            asyncio.run(_warm(server.base_url, dataset, keys))
        for round_no in range(rounds):
            for endpoint in ENDPOINTS:
                order = MODES if round_no % 2 == 0 else tuple(reversed(MODES))
                for mode in order:
                    rps, latencies, errors = asyncio.run(
                        _load(servers[mode].base_url, endpoint, dataset, keys, seconds=seconds, seed=round_no)
                    )
                    load = results.setdefault((endpoint, mode), Load())
                    load.rps.append(rps)
                    load.latencies_ms.extend(latencies)
                    load.errors += errors
                    print(f"  round {round_no + 1}/{rounds} {endpoint:<36} {mode:<14} {rps:>7.0f} req/s")
    rows: list[list[object]] = []
    for endpoint in ENDPOINTS:
        baseline = results[(endpoint, MODES[1])]
        for mode in MODES:
            load = results[(endpoint, mode)]
            ordered = sorted(load.latencies_ms)
            rows.append(
                [
                    endpoint,
                    mode,
                    f"{median(load.rps):,.0f}",
                    f"{load.mean_ms:.2f}",
                    f"{percentile(ordered, 0.5):.2f}",
                    f"{percentile(ordered, 0.99):.2f}",
                    load.errors,
                    "—" if mode == MODES[1] else overhead(load.mean_ms, baseline.mean_ms),
                ]
            )
    return table(
        ["request", "database role", "req/s (median)", "mean ms", "p50 ms", "p99 ms", "errors", "overhead"],
        rows,
    )
