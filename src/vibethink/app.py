"""FastAPI app factory: settings, database, error handling, every domain's routers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from vibethink.billing import pages as billing_pages
from vibethink.billing import routes as billing_routes
from vibethink.campaigns import routes as campaign_routes
from vibethink.chat import facade as chat_facade
from vibethink.chat import routes as chat_routes
from vibethink.compliance import pages as compliance_pages
from vibethink.compliance import routes as compliance_routes
from vibethink.core import ops
from vibethink.core.database import Database
from vibethink.core.dispatcher import Dispatcher, default_registry
from vibethink.core.http import install_error_handlers
from vibethink.core.periodic import PeriodicRunner, default_jobs
from vibethink.core.settings import Settings, get_settings
from vibethink.deployments import dashboard as deployment_dashboard
from vibethink.deployments import http as deployment_http
from vibethink.deployments import pages as deployment_pages
from vibethink.deployments import resolver as deployment_resolver
from vibethink.deployments import routes as deployment_routes
from vibethink.talent import routes as talent_routes
from vibethink.tenancy import pages as tenancy_pages
from vibethink.tenancy import routes as tenancy_routes
from vibethink.twin import providers as model_providers
from vibethink.twin import routes as twin_routes
from vibethink.twin.knowledge import routes as knowledge_routes
from vibethink.web import pages as web_pages

WEB_DIR = Path(__file__).resolve().parent / "web"


def install_api_docs(app: FastAPI) -> None:
    """`/docs` and `/redoc` with their scripts served from an installed package: no CDN, works offline."""
    import fastapi_offline

    assets = Path(fastapi_offline.__file__).resolve().parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="api-docs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="VibeThink API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="VibeThink API",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_db = db is None
        database = db or Database(settings)
        app.state.db = database
        dispatcher_task: asyncio.Task[None] | None = None
        dispatcher: Dispatcher | None = None
        if settings.in_process_dispatcher:
            dispatcher = Dispatcher(database, default_registry(), worker_id="serve")
            dispatcher_task = asyncio.create_task(dispatcher.run_forever())
        periodic: PeriodicRunner | None = None
        if settings.in_process_dispatcher and settings.periodic_jobs:
            periodic = PeriodicRunner(database, default_jobs(settings)).start()
        # Every process keeps its deployment resolution caches honest (changes arrive by NOTIFY).
        listener = deployment_resolver.ChangeListener(database).start()
        try:
            yield
        finally:
            await listener.stop()
            if periodic is not None:
                await periodic.stop()
            if dispatcher is not None and dispatcher_task is not None:
                dispatcher.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatcher_task
            await model_providers.aclose_all()
            if owns_db:
                await database.dispose()

    app = FastAPI(
        title="VibeThink Digital Twin Platform",
        version="0.1.0",
        description="Multi-tenant AI digital twins for talent, brands and fans.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Metrics are Prometheus (`/metrics`) and no OpenTelemetry provider is set up: without this,
        # FastAPI looks for one on every request (~13 µs each).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    if db is not None:
        app.state.db = db
    app.state.templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    install_error_handlers(app)
    # Routes are matched in order, each router's routes one by one: the chat, the busiest by far,
    # before everything else, then compliance event submission (machine traffic, in bulk).
    app.include_router(chat_routes.router, prefix="/api/v1")
    app.include_router(compliance_routes.ingest_router, prefix="/api/v1")
    ops.install(app)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    install_api_docs(app)
    app.include_router(tenancy_routes.router, prefix="/api/v1")
    app.include_router(talent_routes.router, prefix="/api/v1")
    app.include_router(twin_routes.router, prefix="/api/v1")
    app.include_router(knowledge_routes.router, prefix="/api/v1")
    app.include_router(chat_routes.moderation_router, prefix="/api/v1")
    app.include_router(deployment_routes.router, prefix="/api/v1")
    app.include_router(deployment_routes.widget_router, prefix="/api/v1")
    app.include_router(campaign_routes.router, prefix="/api/v1")
    app.include_router(billing_routes.router, prefix="/api/v1")
    app.include_router(billing_routes.fan_router, prefix="/api/v1")
    app.include_router(compliance_routes.router, prefix="/api/v1")
    app.include_router(chat_facade.router)
    app.include_router(tenancy_pages.router)
    app.include_router(billing_pages.router)
    app.include_router(compliance_pages.router)
    app.include_router(web_pages.router)
    app.include_router(deployment_dashboard.router)
    # Last: the portal's `/{slug}` must never shadow another page.
    app.include_router(deployment_pages.router)
    app.add_middleware(deployment_http.EmbedCors)
    app.add_middleware(deployment_http.HostRouting, settings=settings)
    return app
