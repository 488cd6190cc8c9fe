"""Compliance's background work: the evidence generator (an outbox consumer) and periodic jobs.

The generator consumes platform events and appends evidence for them. The periodic jobs, run by
`vibethink worker` and the in-process runner of `serve`, mail the scheduled reports that are due
and prune evidence past each tenant's retention.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Final

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import driver, ledger, retention, schedule
from vibethink.compliance.keys import KeyStore, key_store
from vibethink.compliance.rules import load_rules
from vibethink.core.database import Database
from vibethink.core.dispatcher import (
    BatchHandler,
    ClaimHandler,
    ConsumerRegistry,
    DeliveredEvent,
    Handler,
)
from vibethink.core.periodic import PeriodicJob
from vibethink.core.settings import Settings, get_settings

CONSUMER: Final = "compliance_evidence"


def _happened(event: DeliveredEvent) -> datetime:
    """When it happened: the payload's `occurredAt` (a release reporting a past deploy), else recorded."""
    raw = event.payload.get("occurredAt")
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return event.occurred_at
        if moment.tzinfo is not None and moment <= event.occurred_at + timedelta(minutes=5):
            return moment
    return event.occurred_at


def incoming(event: DeliveredEvent) -> ledger.IncomingEvent:
    """The ledger's view of an outbox event; an actor named in the payload (spec shape) is a person."""
    actor_ref = None
    if event.actor_user_id is None:
        named = event.payload.get("actor")
        if isinstance(named, dict) and named.get("userId"):
            actor_ref = str(named["userId"])
        elif event.payload.get("actor_api_key_id"):
            actor_ref = f"api_key:{event.payload['actor_api_key_id']}"
    return ledger.IncomingEvent(
        event_id=event.id,
        event_type=event.event_type,
        occurred_at=_happened(event),
        payload=event.payload,
        source=ledger.Source.PLATFORM,
        actor_user_id=event.actor_user_id,
        actor_ref=actor_ref,
    )


def evidence_consumer(
    settings: Callable[[], Settings], keys: Callable[[Settings], KeyStore]
) -> tuple[Handler, BatchHandler, ClaimHandler]:
    """The consumer, one event or a tenant's batch at a time (one append, one lock, one insert), or
    several tenants' batches in one transaction (`ledger.append_many`: two calls for all of them, the
    second returned for the dispatcher to send with the events' finish and COMMIT).

    Settings and keys are resolved at delivery, so a rotated key is picked up.
    """

    async def handle_many(
        conn: asyncpg.Connection, tenant_id: uuid.UUID, events: Sequence[DeliveredEvent]
    ) -> None:
        await append(driver.Bound(None, conn), tenant_id, events)

    async def append(
        session: AsyncSession | driver.Bound, tenant_id: uuid.UUID, events: Sequence[DeliveredEvent]
    ) -> None:
        current = settings()
        await ledger.append(
            session,
            keys(current),
            current.secret_key.encode(),
            tenant_id,
            [incoming(event) for event in events],
            checkpoint_every=current.compliance_checkpoint_every,
        )

    async def handle(session: AsyncSession, event: DeliveredEvent) -> None:
        await append(session, event.tenant_id, [event])

    async def handle_claim(
        conn: asyncpg.Connection, shares: Sequence[tuple[uuid.UUID, Sequence[DeliveredEvent]]]
    ) -> str | None:
        current = settings()
        appended = await ledger.append_many(
            driver.Bound(None, conn),
            keys(current),
            current.secret_key.encode(),
            [(tenant_id, [incoming(event) for event in events]) for tenant_id, events in shares],
            checkpoint_every=current.compliance_checkpoint_every,
        )
        return appended.insert

    return handle, handle_many, handle_claim


def register(registry: ConsumerRegistry, *, settings: Callable[[], Settings] = get_settings) -> None:
    handle, handle_many, handle_claim = evidence_consumer(settings, key_store)
    # Idempotent: the ledger records one row per (event, control), so its batches need no delivery record.
    registry.register(
        CONSUMER,
        handle,
        event_types=set(load_rules().event_types),
        handle_many=handle_many,
        idempotent=True,
        handle_claim=handle_claim,
    )


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    """Scheduled reports and the retention purge, at the intervals the settings give."""

    async def send_reports(db: Database) -> str:
        if not settings.smtp_host:
            # Nothing could be mailed: building every due report each tick would only be thrown away.
            return "no SMTP server is configured (VIBETHINK_SMTP_HOST): scheduled reports wait"
        sent = await schedule.send_due_reports(db, settings, key_store(settings))
        return f"{len(sent)} tenant(s) sent their scheduled reports"

    async def purge(db: Database) -> str:
        pruned = await retention.purge(db, key_store(settings), batch=settings.compliance_purge_batch)
        tenants = len({p.tenant_id for p in pruned})
        return f"{sum(p.records for p in pruned)} expired evidence record(s) pruned for {tenants} tenant(s)"

    return [
        PeriodicJob("compliance.scheduled_reports", settings.compliance_reports_every_seconds, send_reports),
        PeriodicJob("compliance.retention_purge", settings.compliance_purge_every_seconds, purge),
    ]
