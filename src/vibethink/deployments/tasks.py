"""Background work of every app process: keep the resolution caches honest, move schedules by the clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from vibethink.core.database import Database, RlsContext
from vibethink.deployments import resolver, service

log = logging.getLogger(__name__)

SWEEP_SECONDS: Final = 15.0


class Background:
    def __init__(self, db: Database, *, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self.db = db
        self.sweep_seconds = sweep_seconds
        self.listener = resolver.ChangeListener(db)
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> Background:
        self.listener.start()
        self._sweeper = asyncio.create_task(self._sweep_forever())
        return self

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.listener.stop()

    async def sweep_once(self) -> int:
        # Several processes may sweep at once: the UPDATE's row locks let each change happen once.
        async with self.db.transaction(RlsContext(role="SYSTEM")) as session:
            return await service.advance_schedules(session)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                moved = await self.sweep_once()
                if moved:
                    log.info("deployment schedules: %d moved", moved)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deployment schedule sweep failed")
            await asyncio.sleep(self.sweep_seconds)
