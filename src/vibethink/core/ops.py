"""Operations endpoints: liveness, readiness, Prometheus metrics (requests, DB pool, outbox lag)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import text
from starlette.routing import Match

from vibethink.core import migrations
from vibethink.core.database import Database

router = APIRouter(tags=["ops"])


class Metrics:
    """One registry per app, so tests and several apps in a process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vibethink_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "vibethink_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.pool_size = Gauge(
            "vibethink_db_pool_size", "Connections held by the pool", registry=self.registry
        )
        self.pool_checked_out = Gauge(
            "vibethink_db_pool_checked_out", "Connections in use", registry=self.registry
        )
        self.outbox_pending = Gauge(
            "vibethink_outbox_pending", "Events not yet delivered", registry=self.registry
        )
        self.outbox_dead = Gauge(
            "vibethink_outbox_dead", "Events that exhausted their retries", registry=self.registry
        )
        self.outbox_lag = Gauge(
            "vibethink_outbox_lag_seconds", "Age of the oldest undelivered event", registry=self.registry
        )


def _route_of(request: Request) -> str:
    matched = request.scope.get("route")
    if matched is not None:
        return str(getattr(matched, "path", "unmatched"))
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


def install(app: FastAPI) -> None:
    metrics = Metrics()
    app.state.metrics = metrics

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = _route_of(request)
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)

    app.include_router(router)


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    db: Database = request.app.state.db
    try:
        async with db.engine.connect() as conn:
            current = await migrations.current_revision(conn)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}, status_code=503
        )
    head = migrations.head_revision()
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "database": "ok", "migrations": {"current": current, "head": head}},
            status_code=503,
        )
    return JSONResponse(
        {"status": "ready", "database": "ok", "migrations": {"current": current, "head": head}}
    )


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    db: Database = request.app.state.db
    pool = db.engine.pool
    metrics.pool_size.set(getattr(pool, "size", lambda: 0)())
    metrics.pool_checked_out.set(getattr(pool, "checkedout", lambda: 0)())
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT pending, dead, oldest_pending_seconds FROM outbox_stats()"))
        ).one()
    metrics.outbox_pending.set(row.pending)
    metrics.outbox_dead.set(row.dead)
    metrics.outbox_lag.set(row.oldest_pending_seconds)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
