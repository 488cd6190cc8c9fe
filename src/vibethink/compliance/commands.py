"""`vibethink compliance` (verify, export, keys, plans, reports, purge) and `vibethink events emit`."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from sqlalchemy import text

from vibethink.compliance.plans import Plan
from vibethink.core.database import Database, RlsContext, stop_embedded
from vibethink.core.errors import PlatformError
from vibethink.core.settings import Settings

compliance_app = typer.Typer(
    help="Compliance evidence: verify an export offline, export a ledger, keys, plans, reports.",
    no_args_is_help=True,
)
events_app = typer.Typer(
    help="Platform events: emit one from a release process or script.", no_args_is_help=True
)

T = TypeVar("T")
ADMIN = RlsContext(is_admin=True, role="PLATFORM_ADMIN")


def _run(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    settings = Settings()

    async def main() -> T:
        db = Database(settings)
        try:
            return await work(db, settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except PlatformError as exc:
        where = f" ({exc.field})" if exc.field else ""
        typer.secho(f"error{where}: {exc.message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from exc
    finally:
        stop_embedded()


async def tenant_id_of(db: Database, slug: str | None) -> uuid.UUID:
    """The tenant named by slug, or the platform's own tenant when none is named."""
    async with db.transaction(ADMIN) as session:
        if slug:
            found = await session.scalar(text("SELECT id FROM tenants WHERE slug = :s"), {"s": slug})
        else:
            found = await session.scalar(
                text("SELECT id FROM tenants WHERE kind = 'PLATFORM' ORDER BY created_at LIMIT 1")
            )
    if found is None:
        typer.secho(f"no tenant {slug or '(platform)'}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    return uuid.UUID(str(found))


@compliance_app.command("verify")
def verify(
    export: Path = typer.Argument(..., exists=True, help="The export (.zip or folder) to check."),
    trusted_keys: Path | None = typer.Option(
        None, "--trusted-keys", exists=True, help="Public keys obtained from the operator (keys.json)."
    ),
    workers: int = typer.Option(0, help="Processes to use (0: one per core)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check an export fully offline: signatures, chain, gaps, Merkle roots and proofs, file hashes."""
    from vibethink.compliance.verify import verify_export

    started = datetime.now(UTC)
    report = verify_export(export, trusted_keys=trusted_keys, workers=workers or None)
    seconds = (datetime.now(UTC) - started).total_seconds()
    if as_json:
        typer.echo(json.dumps({**report.as_dict(), "seconds": round(seconds, 3)}, indent=2))
    else:
        status = "VERIFIED" if report.ok else "FAILED"
        typer.echo(f"{status}: {export}")
        typer.echo(
            f"  tenant {report.tenant_id}: {report.records} records ({report.signed_records} signed),"
            f" {report.checkpoints} checkpoints, {report.notes} notes; tree size {report.tree_size},"
            f" root {report.root_hash}; {seconds:.1f} s"
        )
        if report.pruned_records or report.prunings:
            typer.echo(
                f"  {report.pruned_records} records past the retention were pruned by"
                f" {report.prunings} pruning(s): their hashes, signatures, chain and Merkle"
                " leaves verified, their content is gone"
            )
        for warning in report.warnings:
            typer.secho(f"  warning: {warning}", fg=typer.colors.YELLOW)
        if report.first_bad_record is not None:
            typer.secho(f"  first bad record: {report.first_bad_record}", fg=typer.colors.RED)
        for problem in report.problems[:20]:
            typer.echo(f"  problem: {problem}")
    raise typer.Exit(0 if report.ok else 1)


@compliance_app.command("export")
def export(
    out: Path = typer.Argument(..., help="Where to write the .zip."),
    tenant: str | None = typer.Option(None, help="Tenant slug (default: the platform's own tenant)."),
) -> None:
    """Write a tenant's whole evidence ledger as a verifiable .zip."""
    from vibethink.compliance.export import write_export
    from vibethink.compliance.keys import key_store

    async def work(db: Database, settings: Settings) -> None:
        tenant_id = await tenant_id_of(db, tenant)
        async with db.transaction(RlsContext(tenant_id=tenant_id, role="SYSTEM")) as session:
            summary = await write_export(session, key_store(settings), tenant_id, out)
        typer.echo(
            f"{summary.path}: {summary.tree_size} records, root {summary.root_hash}, sha256 {summary.sha256}"
        )

    _run(work)


@compliance_app.command("keys")
def keys() -> None:
    """Print the public keys (keys.json for auditors' --trusted-keys)."""
    import base64

    from vibethink.compliance.keys import key_store

    store = key_store(Settings())
    store.active()
    public = {k: base64.b64encode(v).decode() for k, v in store.public_keys().items()}
    typer.echo(json.dumps({"keys": public}, indent=2, sort_keys=True))


@compliance_app.command("rotate-key")
def rotate_key() -> None:
    """Start signing with a new key; the old private key is deleted, its public key kept."""
    from vibethink.compliance.keys import key_store

    key = key_store(Settings()).rotate()
    typer.echo(f"now signing with {key.key_id}")


@compliance_app.command("plan")
def set_plan(
    plan: Plan = typer.Argument(..., help="FREE, PROFESSIONAL or ENTERPRISE."),
    tenant: str | None = typer.Option(None, help="Tenant slug (default: the platform's own tenant)."),
) -> None:
    """Set a tenant's compliance plan (its tier)."""
    from vibethink.compliance import service

    async def work(db: Database, settings: Settings) -> None:
        tenant_id = await tenant_id_of(db, tenant)
        async with db.transaction(ADMIN) as session:
            await service.set_plan(session, tenant_id, plan)
        typer.echo(f"{tenant or 'platform'}: {plan.value}")

    _run(work)


def _assign(payload: dict[str, Any], dotted: str, raw: str) -> None:
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    target = payload
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise typer.BadParameter(f"{dotted}: {part} is not an object")
    target[parts[-1]] = value


def build_payload(
    payload_json: str | None, sets: list[str], approvals: list[str], now: datetime
) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if payload_json:
        source = sys.stdin.read() if payload_json == "-" else payload_json
        try:
            loaded = json.loads(source)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--json is not valid JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise typer.BadParameter("--json must be a JSON object")
        payload.update(loaded)
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set {item!r}: use key=value (dotted keys for nesting)")
        _assign(payload, key.strip(), value)
    if approvals:
        payload.setdefault("approvals", [])
        payload["approvals"].extend({"userId": a, "timestamp": now.isoformat()} for a in approvals)
    return payload


@events_app.command("emit")
def emit(
    event_type: str = typer.Argument(..., help="e.g. CODE_DEPLOYMENT, TRAINING_COMPLETED."),
    tenant: str | None = typer.Option(None, help="Tenant slug (default: the platform's own tenant)."),
    payload_json: str | None = typer.Option(
        None, "--json", help="The payload as a JSON object ('-': stdin)."
    ),
    sets: list[str] = typer.Option(
        [], "--set", help="key=value (value parsed as JSON when it is); repeatable."
    ),
    approvals: list[str] = typer.Option([], "--approval", help="An approver's id; repeatable."),
    actor: str | None = typer.Option(None, help="Who triggered it (recorded as a pseudonym)."),
    wait: bool = typer.Option(
        False, help="Deliver it now (run the outbox once) instead of leaving it to workers."
    ),
) -> None:
    """Record a platform event in the outbox, e.g. from the release pipeline."""
    import re

    from vibethink.core import outbox

    if not re.fullmatch(r"[A-Z][A-Z0-9_]{1,79}", event_type):
        raise typer.BadParameter("event types are UPPER_SNAKE_CASE")
    now = datetime.now(UTC)
    payload = build_payload(payload_json, sets, approvals, now)
    if actor:
        payload.setdefault("actor", {"userId": actor})

    async def work(db: Database, settings: Settings) -> None:
        tenant_id = await tenant_id_of(db, tenant)
        async with db.transaction(RlsContext(tenant_id=tenant_id, role="SYSTEM")) as session:
            event_id = await outbox.emit(
                session, event_type, tenant_id=tenant_id, actor_role="RELEASE_PROCESS", payload=payload
            )
        typer.echo(f"{event_type} {event_id} recorded for tenant {tenant_id}")
        if wait:
            from vibethink.core.dispatcher import Dispatcher, default_registry

            handled = await Dispatcher(db, default_registry(), worker_id="cli").drain()
            typer.echo(f"delivered {handled} pending event(s)")

    _run(work)


@compliance_app.command("send-reports")
def send_reports() -> None:
    """Build and e-mail every scheduled report that is due (run it hourly, e.g. from cron)."""
    from vibethink.compliance.keys import key_store
    from vibethink.compliance.schedule import send_due_reports

    async def work(db: Database, settings: Settings) -> None:
        sent = await send_due_reports(db, settings, key_store(settings))
        for item in sent:
            typer.echo(f"{item.tenant_id}: {', '.join(item.frameworks)} -> {', '.join(item.recipients)}")
        typer.echo(f"{len(sent)} tenant(s) sent")

    _run(work)


@compliance_app.command("purge")
def purge(
    tenant: str | None = typer.Option(
        None, help="Only this tenant (slug); default: every tenant with evidence past its retention."
    ),
) -> None:
    """Prune evidence past each tenant's retention (the background runner also does it periodically)."""
    from vibethink.compliance import retention
    from vibethink.compliance.keys import key_store

    async def work(db: Database, settings: Settings) -> None:
        tenant_ids = [await tenant_id_of(db, tenant)] if tenant else None
        pruned = await retention.purge(
            db, key_store(settings), tenant_ids=tenant_ids, batch=settings.compliance_purge_batch
        )
        for item in pruned:
            typer.echo(
                f"{item.tenant_id}: pruning {item.number} emptied {item.records} record(s)"
                f" {item.first_seq}..{item.last_seq} recorded before {item.cutoff.date()}"
                f" ({item.retention_years}-year retention), {item.notes} note(s) removed"
            )
        typer.echo(f"{sum(p.records for p in pruned)} expired evidence record(s) pruned")

    _run(work)
