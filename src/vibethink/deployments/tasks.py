"""Background work of the deployments domain: moving schedules by the clock, a periodic job of the
background runner (`core.periodic`). Every app process also keeps its resolution caches honest
with `resolver.ChangeListener`, started by the app."""

from __future__ import annotations

from typing import Final

from vibethink.core.database import Database, RlsContext
from vibethink.core.periodic import PeriodicJob
from vibethink.core.settings import Settings
from vibethink.deployments import service

SWEEP_SECONDS: Final = 15.0


async def advance_schedules(db: Database) -> str:
    # Several runners may sweep at once: the UPDATE's row locks let each change happen once.
    async with db.transaction(RlsContext(role="SYSTEM")) as session:
        moved = await service.advance_schedules(session)
    return f"{moved} deployment schedule(s) moved"


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    del settings  # the sweep has no setting of its own
    return [PeriodicJob("deployments.schedules", SWEEP_SECONDS, advance_schedules)]
