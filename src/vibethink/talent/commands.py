"""`vibethink schemas`: list, add, activate and backfill versions of the JSONB schemas.

These run as the database owner (the app role may only read `jsonb_schemas`) in the explicit
platform-admin RLS context.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vibethink.core.database import Database, stop_embedded
from vibethink.core.errors import PlatformError
from vibethink.core.settings import Settings
from vibethink.talent import schema_registry

schemas_app = typer.Typer(
    help="Versioned JSON Schemas of the JSONB columns (twin_config, ...): list, add, activate, backfill.",
    no_args_is_help=True,
)

T = TypeVar("T")


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Runs `work` with the platform's database, reports domain errors plainly, stops the embedded server."""

    # Read afresh, so the command always follows the environment it was started with.
    settings = Settings()

    async def main() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except PlatformError as exc:
        where = f" ({exc.field})" if exc.field else ""
        typer.secho(f"error{where}: {exc.message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from exc
    finally:
        # Only a server this command started: with a database URL set there is none to stop.
        if settings.is_embedded_database:
            stop_embedded()


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {what} file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} file {path} is not JSON: {exc}") from exc


@schemas_app.command("list")
def list_schemas(
    name: str | None = typer.Option(None, "--name", help="Only this schema, e.g. twin_config."),
) -> None:
    """List every schema version: which one is active, when it was added and activated."""

    async def work(db: Database) -> list[schema_registry.SchemaVersion]:
        async with schema_registry.admin_session(
            db.owner_engine, context=schema_registry.OWNER_CONTEXT
        ) as session:
            return await schema_registry.versions(session, name=name)

    found = _run(work)
    table = Table("name", "version", "active", "created", "activated", "defaults")
    for row in found:
        table.add_row(
            row.name,
            str(row.version),
            "yes" if row.is_active else "",
            row.created_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
            row.activated_at.strftime("%Y-%m-%d %H:%M:%S %Z") if row.activated_at else "",
            json.dumps(row.defaults) if row.defaults else "",
        )
    Console(width=160).print(table)


@schemas_app.command("add")
def add_schema(
    name: str = typer.Argument(..., help="Schema name, e.g. twin_config."),
    file: Path | None = typer.Argument(None, help="JSON Schema (Draft 2020-12) file; omit with --builtin."),
    defaults: Path | None = typer.Option(
        None,
        "--defaults",
        help="JSON file of defaults for backfill (default: top-level `default` annotations).",
    ),
    builtin: str | None = typer.Option(
        None, "--builtin", help="A schema shipped with the platform, e.g. v2."
    ),
) -> None:
    """Add a new, inactive version of schema NAME from FILE (or a built-in one); activate it separately."""
    if (file is None) == (builtin is None):
        raise typer.BadParameter("give either FILE or --builtin, not both or neither")
    document = _read_json(file, "schema") if file is not None else None
    defaults_document = _read_json(defaults, "defaults") if defaults is not None else None

    async def work(db: Database) -> schema_registry.SchemaVersion:
        schema = document if builtin is None else schema_registry.builtin_schema(name, builtin)
        async with schema_registry.admin_session(
            db.owner_engine, context=schema_registry.OWNER_CONTEXT
        ) as session:
            return await schema_registry.add(session, name, schema, defaults=defaults_document)

    added = _run(work)
    typer.echo(
        f"added {added.name} version {added.version} (inactive); defaults: {json.dumps(added.defaults)}"
    )
    typer.echo(f"activate it with: vibethink schemas activate {added.name} {added.version}")


@schemas_app.command("activate")
def activate_schema(
    name: str = typer.Argument(..., help="Schema name, e.g. twin_config."),
    version: int = typer.Argument(..., min=1, help="The version to make active."),
) -> None:
    """Make VERSION the active version of NAME: every later write is validated against it."""

    async def work(db: Database) -> schema_registry.SchemaVersion:
        async with schema_registry.admin_session(
            db.owner_engine, context=schema_registry.OWNER_CONTEXT
        ) as session:
            return await schema_registry.activate(session, name, version)

    activated = _run(work)
    typer.echo(f"{activated.name} version {activated.version} is active")


@schemas_app.command("backfill")
def backfill_schema(
    name: str = typer.Argument(schema_registry.TWIN_CONFIG, help="Schema name (twin_config)."),
    version: int | None = typer.Option(
        None, "--version", min=1, help="Version whose defaults to apply (default: the active one)."
    ),
    batch_size: int = typer.Option(
        schema_registry.BATCH_SIZE, "--batch-size", min=1, max=10_000, help="Rows per transaction."
    ),
) -> None:
    """Fill a version's defaults into every celebrity's config where missing, in batches; safe to rerun."""
    with Progress(
        TextColumn("[bold]backfill[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(name, total=None)

        def report_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async def work(db: Database) -> schema_registry.BackfillReport:
            # The app role in the admin context: every tenant's rows, under the same policies as the app.
            return await schema_registry.backfill(
                db.engine, name, version=version, batch_size=batch_size, progress=report_progress
            )

        report = _run(work)
    typer.echo(
        f"{report.name} v{report.version}: scanned {report.scanned} celebrities"
        f" in {report.batches} batch(es),"
        f" updated {report.updated} across {len(report.tenants)} tenant(s),"
        f" {report.not_matching} still incomplete for this version"
    )
