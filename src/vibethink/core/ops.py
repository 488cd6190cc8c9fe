"""Operations endpoints: liveness, readiness, Prometheus metrics (requests, DB pool, outbox lag)."""

from __future__ import annotations

import time
from typing import Any

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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class RequestMetrics:
    """Counts and times every HTTP request by route template.

    A plain ASGI middleware: `BaseHTTPMiddleware` wraps each response in an extra task and stream,
    which costs every request (chat turns included) and gets in the way of SSE.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled series, looked up once each: `labels()` validates and locks on every call.
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            # The router records the matched route in the scope; unmatched paths share one label.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            method = scope["method"]
            count = self._counts.get((method, route, status))
            if count is None:
                count = self._counts[method, route, status] = self.metrics.requests.labels(
                    method, route, str(status)
                )
            latency = self._latencies.get((method, route))
            if latency is None:
                latency = self._latencies[method, route] = self.metrics.latency.labels(method, route)
            count.inc()
            latency.observe(time.perf_counter() - started)


def install(app: FastAPI) -> None:
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
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
