"""Deployments: resolution cost (path, widget key + origin, Host), public page times, widget size.

A database of its own (`vibethink_bench_deployments`, rebuilt every run) holds N talents, each with a
portal, a widget and a verified white-label domain. Resolution is timed in-process, cold (one
definer lookup) and warm (the process cache); pages are timed over HTTP against one uvicorn process
of the platform, one request at a time (client-observed latency bounds the server time from above).
"""

from __future__ import annotations

import asyncio
import gzip
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from bench.chat import started
from bench.report import percentile, table
from bench.target import BenchTarget, bench_target

DATABASE = "vibethink_bench_deployments"
ORIGIN = "https://fans.example.com"
# Pages are timed on this many talents' deployments (warmed first), picked at random.
WARM_SAMPLE = 200


def deployments_target() -> AbstractContextManager[BenchTarget]:
    return bench_target(database=DATABASE, recreate=True)


async def populate(target: BenchTarget, talents: int) -> list[tuple[str, str, str]]:
    """(slug, widget key, domain) per talent; every deployment live."""
    conn = await target.connect_owner()
    made = []
    try:
        async with conn.transaction():
            for n in range(talents):
                tenant, celebrity = uuid.uuid4(), uuid.uuid4()
                slug, key, domain = f"talent-{n:05d}", f"vtw_{uuid.uuid4().hex}", f"twin-{n:05d}.example.org"
                await conn.execute(
                    "INSERT INTO tenants (id, kind, slug, name, tier) VALUES ($1, 'TALENT', $2, $2, 'FREE')",
                    tenant,
                    slug,
                )
                await conn.execute(
                    "INSERT INTO celebrities (tenant_id, id, slug, name, type, status, bio, twin_config,"
                    " twin_config_version) VALUES ($1, $2, $3, $4, 'ATHLETE', 'ACTIVE', $5, $6::jsonb, 1)",
                    tenant,
                    celebrity,
                    slug,
                    f"Talent {n}",
                    "A talent of the benchmark, with a short biography.",
                    '{"voiceCloneId": "v", "visualAvatarId": "a",'
                    ' "personalityProfile": {"tone": "warm", "language": "en", "greeting": "Hi!"}}',
                )
                config = (
                    '{"theme": {"mode": "light", "primaryColor": "#1d3557"},'
                    ' "branding": {"tagline": "Bench"},'
                    ' "premiumContent": [{"title": "VIP", "body": "secret", "tier": "VIP"}]}'
                )
                for kind, extra in (
                    ("VIBETHINK_PORTAL", {}),
                    ("EMBEDDED_WIDGET", {"widget_key": key}),
                    ("WHITE_LABEL", {"custom_domain": domain}),
                ):
                    await conn.execute(
                        "INSERT INTO deployments (tenant_id, id, celebrity_id, type, name, config, status,"
                        " widget_key, analytics_key, allowed_origins, custom_domain, domain_token,"
                        " domain_verified_at) VALUES ($1, $2, $3, $4::deployment_type, $4::text, $5::jsonb,"
                        " 'ACTIVE', $6, $7, $8, $9::text, 'vtv_bench',"
                        " CASE WHEN $9::text IS NULL THEN NULL ELSE now() END)",
                        tenant,
                        uuid.uuid4(),
                        celebrity,
                        kind,
                        config,
                        extra.get("widget_key", f"vtw_{uuid.uuid4().hex}"),
                        f"vta_{uuid.uuid4().hex}",
                        [ORIGIN],
                        extra.get("custom_domain"),
                    )
                for order, (code, cents) in enumerate((("FAN", 499), ("VIP", 1999))):
                    await conn.execute(
                        "INSERT INTO pricing_tiers (tenant_id, id, celebrity_id, code, name,"
                        " monthly_price_cents, sort_order) VALUES ($1, $2, $3, $4, $4, $5, $6)",
                        tenant,
                        uuid.uuid4(),
                        celebrity,
                        code,
                        cents,
                        order,
                    )
                made.append((slug, key, domain))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return made


async def _samples(
    lookup: Callable[[tuple[str, str, str]], Awaitable[object]], picks: list[tuple[str, str, str]]
) -> list[float]:
    found = []
    for pick in picks:
        began = time.perf_counter_ns()
        await lookup(pick)
        found.append((time.perf_counter_ns() - began) / 1e6)
    return sorted(found)


async def resolution(target: BenchTarget, made: list[tuple[str, str, str]], *, lookups: int) -> str:
    from vibethink.core.database import Database, RlsContext
    from vibethink.deployments import origins, resolver

    db = Database(target.settings, owner=target.owner)
    rows = []
    origin = origins.parse_origin(ORIGIN)
    try:
        async with db.transaction(RlsContext()) as session:
            picks = [random.choice(made) for _ in range(lookups)]
            kinds: dict[str, Callable[[tuple[str, str, str]], Awaitable[object]]] = {
                "path /{slug}": lambda m: resolver.by_slug(session, m[0]),
                "widget key + Origin": lambda m: _widget(resolver, origins, session, m[1], origin),
                "Host (white-label)": lambda m: resolver.by_host(session, m[2]),
            }
            for name, lookup in kinds.items():
                resolver.cache.clear()
                cold: list[float] = []
                for pick in picks[: min(lookups, 500)]:
                    resolver.cache.clear()
                    began = time.perf_counter_ns()
                    await lookup(pick)
                    cold.append((time.perf_counter_ns() - began) / 1e6)
                cold.sort()
                for pick in made:
                    await lookup(pick)
                warm = await _samples(lookup, picks)
                rows.append(
                    [
                        name,
                        f"{percentile(cold, 0.5):.3f}",
                        f"{percentile(cold, 0.99):.3f}",
                        f"{percentile(warm, 0.5) * 1000:.1f}",
                        f"{percentile(warm, 0.99) * 1000:.1f}",
                    ]
                )
    finally:
        await db.dispose()
    return table(["resolution", "cold p50 ms", "cold p99 ms", "cached p50 µs", "cached p99 µs"], rows)


async def _widget(resolver: object, origins: object, session: object, key: str, origin: object) -> bool:
    found = await resolver.by_widget_key(session, key)  # type: ignore[attr-defined]
    return bool(found and origins.allows(found.allowed_origins, origin))  # type: ignore[attr-defined]


def pages(target: BenchTarget, made: list[tuple[str, str, str]], *, requests: int) -> str:
    code = "from bench.chat import serve_platform; serve_platform({port})"
    env = {**target.service_env(as_owner=False), "VIBETHINK_PLATFORM_HOSTS": '["127.0.0.1", "localhost"]'}
    rows = []
    with (
        tempfile.TemporaryDirectory() as logs,
        started(code, env, Path(logs), ready_path="/healthz") as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        if True:
            cases: dict[str, Callable[[tuple[str, str, str]], httpx.Response]] = {
                "GET /healthz (baseline)": lambda m: client.get("/healthz"),
                "GET /{slug} portal page": lambda m: client.get(f"/{m[0]}"),
                "GET / on a white-label Host": lambda m: client.get("/", headers={"Host": m[2]}),
                "GET /widget/frame/{key}": lambda m: client.get(f"/widget/frame/{m[1]}"),
                "POST /api/v1/widget/sessions": lambda m: client.post(
                    "/api/v1/widget/sessions", json={"deployment_key": m[1]}, headers={"Origin": ORIGIN}
                ),
            }
            sample = made[:WARM_SAMPLE]
            for name, call in cases.items():
                for pick in sample:  # warm the caches for the talents the requests visit
                    call(pick)
                latencies = []
                for _ in range(requests):
                    pick = random.choice(sample)
                    began = time.perf_counter_ns()
                    response = call(pick)
                    latencies.append((time.perf_counter_ns() - began) / 1e6)
                    if response.status_code >= 400:
                        raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
                latencies.sort()
                rows.append(
                    [
                        name,
                        f"{percentile(latencies, 0.5):.2f}",
                        f"{percentile(latencies, 0.95):.2f}",
                        f"{percentile(latencies, 0.99):.2f}",
                    ]
                )
    return table(["request (one client, sequential)", "p50 ms", "p95 ms", "p99 ms"], rows)


async def in_process(target: BenchTarget, made: list[tuple[str, str, str]], *, requests: int) -> str:
    """The same requests through the ASGI app in this process: server time without sockets."""
    from vibethink.app import create_app
    from vibethink.core.database import Database

    settings = target.settings.model_copy(update={"platform_hosts": ("testserver",)})
    db = Database(settings, owner=target.owner)
    rows = []
    try:
        transport = httpx.ASGITransport(app=create_app(settings, db=db))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            cases: dict[str, Callable[[tuple[str, str, str]], Awaitable[httpx.Response]]] = {
                "GET /healthz (baseline)": lambda m: client.get("/healthz"),
                "GET /{slug} portal page": lambda m: client.get(f"/{m[0]}"),
                "GET / on a white-label Host": lambda m: client.get("/", headers={"Host": m[2]}),
                "GET /widget/frame/{key}": lambda m: client.get(f"/widget/frame/{m[1]}"),
                "POST /api/v1/widget/sessions": lambda m: client.post(
                    "/api/v1/widget/sessions", json={"deployment_key": m[1]}, headers={"Origin": ORIGIN}
                ),
            }
            sample = made[:WARM_SAMPLE]
            for name, call in cases.items():
                for pick in sample:
                    await call(pick)
                latencies = []
                for _ in range(requests):
                    began = time.perf_counter_ns()
                    response = await call(random.choice(sample))
                    latencies.append((time.perf_counter_ns() - began) / 1e6)
                    if response.status_code >= 400:
                        raise RuntimeError(f"{name}: {response.status_code}")
                latencies.sort()
                rows.append(
                    [
                        name,
                        f"{percentile(latencies, 0.5):.2f}",
                        f"{percentile(latencies, 0.95):.2f}",
                        f"{percentile(latencies, 0.99):.2f}",
                    ]
                )
    finally:
        await db.dispose()
    return table(["request (in-process ASGI)", "p50 ms", "p95 ms", "p99 ms"], rows)


def widget_size() -> str:
    from vibethink.deployments.pages import WIDGET_JS

    packed = gzip.compress(WIDGET_JS, compresslevel=9)
    return table(
        ["asset", "bytes", "gzip -9 bytes", "budget"],
        [["/widget.js", f"{len(WIDGET_JS):,}", f"{len(packed):,}", "15,360 gzipped"]],
    )


def run(*, quick: bool = False, talents: int = 1000) -> str:
    talents = 100 if quick else talents
    with deployments_target() as target:
        made = asyncio.run(populate(target, talents))
        parts = [
            f"{talents:,} talents × (portal, widget, verified white-label domain)"
            f" = {3 * talents:,} deployments",
            "",
            "## Resolution in-process (the public request's first step)",
            asyncio.run(resolution(target, made, lookups=2_000 if quick else 10_000)),
            "",
            "## Public pages over HTTP (uvicorn, one process, one client)",
            pages(target, made, requests=200 if quick else 500),
            "",
            "## The same, in-process (server time without sockets or a competing client process)",
            asyncio.run(in_process(target, made, requests=200 if quick else 500)),
            "",
            "## Widget script",
            widget_size(),
        ]
    return "\n".join(parts)
