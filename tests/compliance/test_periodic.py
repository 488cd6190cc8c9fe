"""The background runner's compliance jobs: due scheduled reports are mailed once, expired evidence pruned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
from sqlalchemy import func, select

from tests.compliance.conftest import Ledger, context, deployment, make_ledger, owner
from tests.compliance.test_reports import Inbox, smtp_server
from tests.compliance.test_retention import record_at, years_ago
from vibethink.compliance import service, tasks
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.models import Evidence, Report
from vibethink.compliance.schedule import send_due_reports
from vibethink.compliance.schemas import SettingsUpdate
from vibethink.core.database import Database
from vibethink.core.periodic import PeriodicRunner, default_jobs
from vibethink.core.settings import Settings

__all__ = ["smtp_server"]  # the local SMTP server fixture, shared with the report tests


@pytest.fixture
def mailing(test_settings: Settings, keys: KeyStore, smtp_server: tuple[int, Inbox]) -> Settings:
    """Settings that mail through the test's SMTP server and sign with the test's keys."""
    port, _ = smtp_server
    return test_settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "compliance_keys_dir": keys.directory,
        }
    )


async def weekly_reports(db: Database, keys: KeyStore) -> tuple[Ledger, str]:
    made = await make_ledger(db, keys, frameworks=["ISO_27001", "GDPR"])
    recipient = f"audit-{made.tenant.id.hex[:10]}@company.com"
    async with db.transaction(context(made.tenant.id)) as session:
        await service.update_settings(
            session,
            owner(made.tenant.id),
            SettingsUpdate(report_frequency="WEEKLY", report_recipients=[recipient]),
        )
    await made.record([deployment()])
    return made, recipient


def to(inbox: Inbox, recipient: str) -> list[Message]:
    return [m for m in inbox.messages if recipient in str(m["To"])]


class TestTheJobs:
    def test_the_runner_has_the_reports_and_the_purge_at_the_configured_intervals(
        self, test_settings: Settings
    ) -> None:
        settings = test_settings.model_copy(
            update={"compliance_reports_every_seconds": 60.0, "compliance_purge_every_seconds": 900.0}
        )
        jobs = {j.name: j.every_seconds for j in default_jobs(settings)}
        assert jobs == {
            "deployments.schedules": 15.0,
            "compliance.scheduled_reports": 60.0,
            "compliance.retention_purge": 900.0,
        }

    async def test_without_an_smtp_server_the_reports_job_waits_and_builds_nothing(
        self, db: Database, keys: KeyStore, test_settings: Settings
    ) -> None:
        made, _ = await weekly_reports(db, keys)
        runner = PeriodicRunner(db, tasks.periodic_jobs(test_settings.model_copy(update={"smtp_host": None})))
        run = await runner.run_job(runner.jobs[0])
        assert run.ok
        assert "no SMTP server" in run.summary
        async with db.transaction(context(made.tenant.id)) as session:
            assert await session.scalar(select(func.count()).select_from(Report)) == 0


class TestScheduledReportsSendThemselves:
    async def test_a_tick_of_two_runners_at_once_mails_a_due_report_once_and_not_again_before_due(
        self, db: Database, keys: KeyStore, mailing: Settings, smtp_server: tuple[int, Inbox]
    ) -> None:
        _, inbox = smtp_server
        made, recipient = await weekly_reports(db, keys)
        first = PeriodicRunner(db, tasks.periodic_jobs(mailing))
        second = PeriodicRunner(db, tasks.periodic_jobs(mailing))

        await asyncio.gather(first.run_all(), second.run_all())

        assert len(to(inbox, recipient)) == 1
        assert all(run.ok for r in (first, second) for run in r.last_runs.values())
        await first.run_all()  # the next tick, well before a week has passed
        await second.run_all()
        assert len(to(inbox, recipient)) == 1
        # A week on, it is due again.
        later = await send_due_reports(
            db, mailing, keys, now=datetime.now(UTC) + timedelta(days=7, minutes=1)
        )
        assert made.tenant.id in {s.tenant_id for s in later}
        assert len(to(inbox, recipient)) == 2

    async def test_the_running_loop_sends_it_by_itself(
        self, db: Database, keys: KeyStore, mailing: Settings, smtp_server: tuple[int, Inbox]
    ) -> None:
        _, inbox = smtp_server
        _, recipient = await weekly_reports(db, keys)
        fast = mailing.model_copy(
            update={"compliance_reports_every_seconds": 0.05, "compliance_purge_every_seconds": 0.05}
        )
        runners = [
            PeriodicRunner(db, tasks.periodic_jobs(fast), first_run_seconds=0.01).start() for _ in range(2)
        ]
        try:
            for _ in range(200):
                if to(inbox, recipient) and all(
                    r.last_runs.get("compliance.scheduled_reports") for r in runners
                ):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # several more ticks of both runners
        finally:
            for runner in runners:
                await runner.stop()
        message = to(inbox, recipient)
        assert len(message) == 1
        assert any(p.get_content_type() == "application/pdf" for p in message[0].walk())


class TestTheRetentionPurgeRunsItself:
    async def test_the_purge_tick_prunes_expired_evidence(
        self, db: Database, keys: KeyStore, mailing: Settings
    ) -> None:
        made = await make_ledger(db, keys)
        await made.configure(retention_years=1)
        old = await record_at(made, years_ago(2))
        recent = await record_at(made, years_ago(0.5))
        runner = PeriodicRunner(db, tasks.periodic_jobs(mailing))

        await runner.run_all()

        purge = runner.last_runs["compliance.retention_purge"]
        assert purge.ok, purge.summary
        async with db.transaction(context(made.tenant.id)) as session:
            pruned = dict(
                (
                    await session.execute(
                        select(Evidence.seq, Evidence.pruned_in).where(Evidence.tenant_id == made.tenant.id)
                    )
                ).all()
            )
        assert {s: pruned[s] for s in old} == dict.fromkeys(old, 1)
        assert {s: pruned[s] for s in recent} == dict.fromkeys(recent)
