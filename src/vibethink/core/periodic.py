"""Periodic jobs of the background runner (`vibethink worker`, or in-process beside `serve`).

Each job runs every `every_seconds`, first a few seconds after start. Jobs must be safe with several
runners at once (each claims its work in PostgreSQL: an advisory lock, a row lock); a failing run is
logged and retried at the next interval. Every run is logged with its outcome and kept as the
runner's last run of that job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from vibethink.core.database import Database
from vibethink.core.settings import Settings

log = logging.getLogger(__name__)
FIRST_RUN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[Database], Awaitable[str]]  # returns a one-line summary of what it did


@dataclass(frozen=True, slots=True)
class JobRun:
    job: str
    started_at: datetime
    finished_at: datetime
    ok: bool
    summary: str


def default_jobs(settings: Settings) -> list[PeriodicJob]:
    """Every domain's periodic jobs. Domains add theirs here as they gain them."""
    # Imported here: the jobs import domain services, which import core.
    from vibethink.compliance import tasks as compliance_tasks
    from vibethink.deployments import tasks as deployment_tasks

    return [*deployment_tasks.periodic_jobs(settings), *compliance_tasks.periodic_jobs(settings)]


class PeriodicRunner:
    def __init__(
        self, db: Database, jobs: Sequence[PeriodicJob], *, first_run_seconds: float = FIRST_RUN_SECONDS
    ) -> None:
        self.db = db
        self.jobs = list(jobs)
        self.first_run_seconds = first_run_seconds
        self.last_runs: dict[str, JobRun] = {}
        self._task: asyncio.Task[None] | None = None

    async def run_job(self, job: PeriodicJob) -> JobRun:
        started = datetime.now(UTC)
        try:
            summary, ok = await job.run(self.db), True
        except Exception as exc:
            log.exception("periodic job %s failed; it runs again in %.0f s", job.name, job.every_seconds)
            summary, ok = f"{type(exc).__name__}: {exc}", False
        else:
            log.info("periodic job %s: %s", job.name, summary)
        run = JobRun(job.name, started, datetime.now(UTC), ok, summary)
        self.last_runs[job.name] = run
        return run

    async def run_all(self) -> list[JobRun]:
        """Runs every job once, now (a tick regardless of the intervals)."""
        return [await self.run_job(job) for job in self.jobs]

    async def run_forever(self) -> None:
        if not self.jobs:
            return
        loop = asyncio.get_running_loop()
        # Jittered, so runners started together do not all query at the same instant.
        due = {j.name: loop.time() + self.first_run_seconds * (0.5 + random.random() / 2) for j in self.jobs}
        while True:
            now = loop.time()
            for job in self.jobs:
                if due[job.name] <= now:
                    await self.run_job(job)
                    due[job.name] = loop.time() + job.every_seconds
            await asyncio.sleep(max(0.0, min(due.values()) - loop.time()))

    def start(self) -> PeriodicRunner:
        self._task = asyncio.create_task(self.run_forever())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
