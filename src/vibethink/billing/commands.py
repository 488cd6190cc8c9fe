"""`vibethink billing`: close a month and create payouts from a scheduler (cron), as the platform.

Both run in the explicit platform-admin RLS context on the app role, are written to the audit log,
and are safe to repeat: a month closed twice posts nothing new.
"""

from __future__ import annotations

import asyncio
from datetime import date

import typer

from vibethink.billing import payouts, periods, statements
from vibethink.billing.providers import provider_for
from vibethink.core import audit
from vibethink.core.database import Database, RlsContext, stop_embedded
from vibethink.core.settings import get_settings

billing_app = typer.Typer(help="Month close (renewals, fees, campaigns) and payouts.", no_args_is_help=True)
ADMIN = RlsContext(is_admin=True, role="PLATFORM_ADMIN")


def _month(value: str) -> date:
    try:
        return statements.parse_month(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@billing_app.command("close-month")
def close_month(month: str = typer.Argument(..., help="YYYY-MM")) -> None:
    """Posts the month's ledger renewals, deployment fees and campaign billing for every talent."""
    chosen = _month(month)

    async def run() -> periods.CloseSummary:
        db = Database(get_settings())
        try:
            async with db.transaction(ADMIN) as session:
                return await periods.close_month(session, month=chosen)
        finally:
            await db.dispose()

    try:
        summary = asyncio.run(run())
    finally:
        stop_embedded()
    typer.echo(
        f"{month}: {summary.renewed} renewals, {summary.expired} expired,"
        f" {summary.deployment_fees} deployment fees, {summary.campaign_postings} campaign postings"
    )


@billing_app.command("payouts")
def create_payouts(month: str = typer.Argument(..., help="YYYY-MM")) -> None:
    """Creates the month's payout batch (Stripe Connect payouts are transferred at once)."""
    chosen = _month(month)
    settings = get_settings()

    async def run() -> int:
        db = Database(settings)
        try:
            async with db.transaction(ADMIN) as session:
                created = await payouts.create_batch(session, month=chosen)
                await payouts.send_transfers(session, provider_for(settings), created)
                for payout in created:
                    await audit.record(
                        session,
                        "PAYOUT_BATCH_CREATED",
                        tenant_id=payout.tenant_id,
                        actor_user_id=None,
                        actor_role="SYSTEM",
                        is_admin_context=True,
                        reason=f"scheduled payouts {month}",
                    )
                return len(created)
        finally:
            await db.dispose()

    try:
        count = asyncio.run(run())
    finally:
        stop_embedded()
    typer.echo(f"{month}: {count} payouts created")
