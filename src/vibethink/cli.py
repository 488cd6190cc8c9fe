"""The `vibethink` command: serve, worker, database, demo data, users, API keys, schemas."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import warnings

import typer

from vibethink.billing.commands import billing_app
from vibethink.compliance.commands import compliance_app, events_app
from vibethink.core import migrations
from vibethink.core.database import Database, owner_url, stop_embedded
from vibethink.core.settings import get_settings
from vibethink.talent.commands import schemas_app
from vibethink.tenancy.commands import api_key_app, user_app

# The embedded server's helper libraries are chatty; their details belong in var/pg/log.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
logging.getLogger("pgserver").setLevel(logging.WARNING)

app = typer.Typer(help="VibeThink Digital Twin Platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database migrations (run as the owner role).", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data for trying the platform.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
app.add_typer(demo_app, name="demo")
app.add_typer(user_app, name="user")
app.add_typer(api_key_app, name="api-key")
app.add_typer(billing_app, name="billing")
app.add_typer(compliance_app, name="compliance")
app.add_typer(events_app, name="events")


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default from VIBETHINK_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default from VIBETHINK_PORT, 8000)."),
    migrate: bool = typer.Option(True, help="Apply pending migrations before serving."),
    demo: bool = typer.Option(False, help="Load the demo data (idempotent) before serving."),
) -> None:
    """Serve the web app and API; starts the embedded PostgreSQL when no database URL is set."""
    import uvicorn

    from vibethink.app import create_app

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        owner = owner_url(settings)
        if migrate:
            migrations.upgrade(owner)
            asyncio.run(_maintain_partitions(settings))
        if demo:
            from vibethink import demo as demo_data

            report = asyncio.run(demo_data.load(settings))
            typer.echo(report.describe(settings.public_url))
        bind_host = host or settings.host
        bind_port = port or settings.port
        typer.echo(f"VibeThink is serving on http://{bind_host}:{bind_port}  (Ctrl-C stops it)")
        web = create_app(settings)
        _freeze_startup_objects()
        uvicorn.run(web, host=bind_host, port=bind_port, log_level="info", proxy_headers=True)
    finally:
        stop_embedded()


async def _maintain_partitions(settings: object) -> None:
    from vibethink.core.settings import Settings

    assert isinstance(settings, Settings)
    db = Database(settings)
    try:
        async with db.owner_engine.begin() as conn:
            await migrations.ensure_message_partitions(conn)
    finally:
        await db.dispose()


@app.command()
def worker(
    once: bool = typer.Option(False, help="Deliver what is pending, then exit."),
) -> None:
    """Deliver outbox events to their consumers and run the periodic jobs; several workers may run at once."""
    from vibethink.core.dispatcher import Dispatcher, default_registry
    from vibethink.core.periodic import PeriodicRunner, default_jobs

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Before the freeze below: the consumers load their rules and catalogs (and the modules they
    # import), which live as long as the process and would otherwise be walked by every full pass.
    registry = default_registry()

    async def run() -> None:
        db = Database(settings)
        dispatcher = Dispatcher(db, registry, worker_id="worker")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, dispatcher.stop)
        periodic: PeriodicRunner | None = None
        try:
            if once:
                handled = await dispatcher.drain()
                typer.echo(f"delivered {handled} event(s)")
            else:
                typer.echo(f"worker {dispatcher.worker_id} is waiting for events (Ctrl-C stops it)")
                if settings.periodic_jobs:
                    # Scheduled reports and the evidence retention purge, beside event delivery.
                    periodic = PeriodicRunner(db, default_jobs(settings)).start()
                await dispatcher.run_forever()
        finally:
            if periodic is not None:
                await periodic.stop()
            await db.dispose()

    _freeze_startup_objects()
    try:
        asyncio.run(run())
    finally:
        stop_embedded()


def _freeze_startup_objects() -> None:
    """Moves what startup built (modules, models, the app) out of the garbage collector's full passes:
    those objects live as long as the process, and walking them made each full pass a 100 ms stall."""
    gc.collect()
    gc.freeze()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    try:
        migrations.upgrade(owner_url(get_settings()), revision)
        typer.echo(f"database upgraded to {revision}")
    finally:
        stop_embedded()


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base.")) -> None:
    """Revert migrations down to REVISION."""
    try:
        migrations.downgrade(owner_url(get_settings()), revision)
        typer.echo(f"database downgraded to {revision}")
    finally:
        stop_embedded()


@db_app.command("revision")
def db_revision(
    message: str = typer.Option(..., "-m", "--message", help="What the migration does."),
    autogenerate: bool = typer.Option(True, help="Compare the models with the database."),
) -> None:
    """Create a new migration file under migrations/versions."""
    try:
        migrations.new_revision(owner_url(get_settings()), message, autogenerate=autogenerate)
    finally:
        stop_embedded()


@demo_app.command("load")
def demo_load() -> None:
    """Load the demo tenants, talents, brands and one user per role (idempotent) and print the logins."""
    from vibethink import demo as demo_data

    settings = get_settings()
    try:
        owner_url(settings)
        report = asyncio.run(demo_data.load(settings))
        typer.echo(report.describe(settings.public_url))
    finally:
        stop_embedded()
