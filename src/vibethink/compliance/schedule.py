"""Scheduled reports: each tenant's chosen frequency, one report per tracked framework, mailed with PDFs.

The background runner sends them by itself (`tasks.periodic_jobs`); `vibethink compliance
send-reports` does the same from cron. Several senders may run at once: a tenant's sending is
claimed with a transaction-scoped advisory lock and its last scheduled report is read again under
it, so each report is mailed once. The last-sent time is the newest SCHEDULED report's creation.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import mailer, reports
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.models import Report
from vibethink.compliance.plans import PLANS, Plan, ReportFrequency
from vibethink.compliance.state import load_state
from vibethink.core import outbox
from vibethink.core.database import Database, RlsContext
from vibethink.core.errors import NotFound
from vibethink.core.settings import Settings

log = logging.getLogger(__name__)
INTERVAL = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 30, "QUARTERLY": 91}


@dataclass
class Sent:
    tenant_id: uuid.UUID
    recipients: list[str]
    frameworks: list[str] = field(default_factory=list)


def _summary_line(built: reports.BuiltReport) -> str:
    r = built.document["readiness"]
    return (
        f"- {built.document['framework_name']}: readiness {r['readiness_percent']}%,"
        f" coverage {r['coverage_percent']}%, {len(built.document['gaps'])} gaps"
    )


async def due_tenants(db: Database, now: datetime) -> list[tuple[uuid.UUID, str, list[str]]]:
    async with db.transaction(RlsContext(role="SYSTEM")) as session:
        rows = (await session.execute(text("SELECT * FROM compliance_report_schedule()"))).all()
    due = []
    for r in rows:
        plan = PLANS[Plan(r.tier)]
        frequency = ReportFrequency(r.report_frequency)
        if plan.allows_frequency(frequency) and is_due(r.last_scheduled_at, frequency, now):
            due.append((r.tenant_id, frequency.value, list(r.report_recipients)))
    return due


def is_due(last_scheduled_at: datetime | None, frequency: ReportFrequency, now: datetime) -> bool:
    return last_scheduled_at is None or last_scheduled_at <= now - timedelta(days=INTERVAL[frequency.value])


async def _claim(
    session: AsyncSession, tenant_id: uuid.UUID, frequency: ReportFrequency, now: datetime
) -> bool:
    """This sender's turn for the tenant: no other sender holds it, and it is still due once locked."""
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"compliance-report:{tenant_id}"},
    )
    if not locked:
        return False
    # A new statement sees what a sender that held the lock before us committed.
    last = await session.scalar(
        select(func.max(Report.created_at)).where(
            Report.tenant_id == tenant_id, Report.trigger == reports.Trigger.SCHEDULED
        )
    )
    return is_due(last, frequency, now)


async def send_due_reports(
    db: Database, settings: Settings, keys: KeyStore, *, now: datetime | None = None
) -> list[Sent]:
    """Builds and mails every report that is due; a tenant whose mail fails is retried next run."""
    now = now or datetime.now(UTC)
    sent: list[Sent] = []
    for tenant_id, frequency, recipients in await due_tenants(db, now):
        start, end = reports.period_for(frequency, now)
        context = RlsContext(tenant_id=tenant_id, role="SYSTEM")
        try:
            async with db.transaction(context) as session:
                if not await _claim(session, tenant_id, ReportFrequency(frequency), now):
                    continue  # another sender has it, or has just sent it
                state = await load_state(session, tenant_id)
                built = []
                for framework in state.tracked_frameworks:
                    try:
                        built.append(
                            await reports.build_report(
                                session,
                                keys,
                                tenant_id,
                                framework,
                                start=start,
                                end=end,
                                trigger=reports.Trigger.SCHEDULED,
                                recipients=recipients,
                            )
                        )
                    except NotFound:
                        continue  # no evidence yet
                if not built:
                    continue
                attachments = [
                    mailer.Attachment(
                        f"readiness-{b.report.framework.replace(':', '-')}.pdf", b.pdf, "application", "pdf"
                    )
                    for b in built
                ]
                lines = [_summary_line(b) for b in built]
                await mailer.send(
                    settings,
                    to=recipients,
                    subject=f"{frequency.title()} compliance readiness report",
                    body="Readiness from the evidence ledger for the period"
                    f" {start.date()} to {end.date()}:\n\n"
                    + "\n".join(lines)
                    + "\n\nEach PDF names the signed ledger checkpoint it rests on.\n",
                    attachments=attachments,
                )
                await outbox.emit(
                    session,
                    "COMPLIANCE_REPORT_SENT",
                    tenant_id=tenant_id,
                    actor_role="SYSTEM",
                    payload={
                        "frequency": frequency,
                        "frameworks": [b.report.framework for b in built],
                        "recipients": len(recipients),
                    },
                )
                sent.append(Sent(tenant_id, recipients, [b.report.framework for b in built]))
        except mailer.MailUnavailable as exc:
            log.warning("scheduled compliance report for %s not sent: %s", tenant_id, exc.message)
    return sent
