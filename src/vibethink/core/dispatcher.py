"""Delivers outbox events to consumers: claims with SKIP LOCKED, wakes on NOTIFY, retries with backoff.

At-least-once: a consumer's work and its delivery record commit together, so a consumer that
already handled an event (by id) is skipped when the event comes round again.

A consumer that can take many events at once (`handle_many`) gets each tenant's share of a claimed
batch in one transaction, which also marks the events DONE when it is their last consumer; if the
batch fails, its events are retried one by one, so one bad event holds up no other.

A consumer that can take several tenants' events at once (`handle_claim`) gets every tenant of a
claim whose events only it wants in one transaction, which also finishes them: a claim's fixed costs
(BEGIN, locks, inserts, COMMIT) are paid once, not once per tenant. If that transaction fails, each
tenant's share goes through the path above on its own, so one tenant's failure costs no other its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.database import (
    Database,
    RlsContext,
    apply_context,
    array_literal,
    asyncpg_connect_args,
    sql_literal,
)
from vibethink.core.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveredEvent:
    tenant_id: uuid.UUID
    id: uuid.UUID
    event_type: str
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_role: str | None
    subject_type: str | None
    subject_id: str | None
    payload: dict[str, Any]
    attempts: int


Handler = Callable[[AsyncSession, DeliveredEvent], Awaitable[None]]
# One tenant's events, in the order they were claimed, on a plain asyncpg connection inside the
# delivery's transaction (whose RLS context is that tenant's, role SYSTEM). It must not commit.
BatchHandler = Callable[[asyncpg.Connection, uuid.UUID, Sequence[DeliveredEvent]], Awaitable[None]]
# Several tenants' events (each tenant's in the order claimed) in one transaction on a plain asyncpg
# connection, role SYSTEM and no tenant set: the handler acts under each tenant's context itself and
# leaves the transaction's setting as it found it. It must not commit; it may return one statement
# (values inlined) that the dispatcher sends last, in one message with the events' finish and COMMIT.
ClaimHandler = Callable[
    [asyncpg.Connection, Sequence[tuple[uuid.UUID, Sequence[DeliveredEvent]]]], Awaitable[str | None]
]


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    event_types: frozenset[str] | None  # None: every event
    handle: Handler
    handle_many: BatchHandler | None = None
    # Its batches record nothing twice for the same event by themselves (the evidence ledger is
    # unique by event and control): they keep no delivery record, and a retry simply runs them again.
    idempotent: bool = False
    handle_claim: ClaimHandler | None = None

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


class ConsumerRegistry:
    def __init__(self) -> None:
        self._consumers: dict[str, Consumer] = {}

    def register(
        self,
        name: str,
        handle: Handler,
        *,
        event_types: set[str] | None = None,
        handle_many: BatchHandler | None = None,
        idempotent: bool = False,
        handle_claim: ClaimHandler | None = None,
    ) -> None:
        """`handle` takes one event; `handle_many`, if given, must do the same for a tenant's batch,
        and `handle_claim` for several tenants' batches at once (only with `handle_many`, and only
        `idempotent`: it keeps no delivery record). `idempotent`: running `handle_many` (or
        `handle_claim`) again on events it handled changes nothing."""
        if name in self._consumers:
            raise ValueError(f"consumer {name!r} is already registered")
        if handle_claim is not None and (handle_many is None or not idempotent):
            raise ValueError(f"consumer {name!r}: handle_claim needs handle_many and idempotent=True")
        self._consumers[name] = Consumer(
            name,
            None if event_types is None else frozenset(event_types),
            handle,
            handle_many,
            idempotent,
            handle_claim,
        )

    def for_event(self, event_type: str) -> list[Consumer]:
        """The consumers of `event_type`, in the order they were registered (the order they run in)."""
        return [c for c in self._consumers.values() if c.wants(event_type)]

    def all(self) -> list[Consumer]:
        return list(self._consumers.values())

    def __len__(self) -> int:
        return len(self._consumers)


def default_registry() -> ConsumerRegistry:
    """Every domain's consumers. Domains add theirs here as they gain them."""
    # Imported here: the consumers import this module for its types.
    from vibethink.compliance import tasks as compliance_tasks
    from vibethink.twin.knowledge import tasks as knowledge_tasks

    registry = ConsumerRegistry()
    knowledge_tasks.register(registry)
    compliance_tasks.register(registry)
    return registry


def backoff_seconds(attempts: int) -> float:
    """Exponential with jitter: 1 s, 2 s, 4 s … capped at 5 minutes."""
    base: float = min(300.0, 2.0 ** max(0, attempts - 1))
    return base * (0.5 + random.random() / 2)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        registry: ConsumerRegistry,
        *,
        worker_id: str | None = None,
        batch_size: int | None = None,
        lease_seconds: int = 60,
    ) -> None:
        self.db = db
        self.registry = registry
        self.worker_id = (
            f"{worker_id or 'worker'}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self.batch_size = batch_size or db.settings.outbox_batch_size
        self.tenants_at_once = db.settings.outbox_tenants_at_once
        self.claims_at_once = db.settings.outbox_claims_at_once
        self.lease_seconds = lease_seconds
        self.max_attempts = db.settings.outbox_max_attempts
        self.poll_seconds = db.settings.outbox_poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def claim(self) -> list[DeliveredEvent]:
        """Leases up to `batch_size` due events: one statement, its own transaction."""
        pool = await self.db.driver_pool()
        rows = await pool.fetch(
            "SELECT tenant_id, id, event_type, occurred_at, actor_user_id, actor_role, subject_type,"
            " subject_id, payload, attempts FROM outbox_claim($1, $2, $3)",
            self.worker_id,
            self.batch_size,
            self.lease_seconds,
        )
        return [DeliveredEvent(**row) for row in rows]

    async def _deliver(self, event: DeliveredEvent, consumer: Consumer) -> None:
        context = RlsContext(tenant_id=event.tenant_id, role="SYSTEM")
        async with self.db.sessions() as session, session.begin():
            await apply_context(session, context)
            done = (
                await session.execute(
                    text(
                        "INSERT INTO event_deliveries (tenant_id, event_id, consumer) VALUES (:t, :e, :c)"
                        " ON CONFLICT DO NOTHING RETURNING 1"
                    ),
                    {"t": event.tenant_id, "e": event.id, "c": consumer.name},
                )
            ).first()
            if done is None:
                return  # already delivered to this consumer: idempotent by event id
            await consumer.handle(session, event)

    async def _deliver_many(
        self,
        tenant_id: uuid.UUID,
        events: Sequence[DeliveredEvent],
        consumer: Consumer,
        *,
        finish: Sequence[DeliveredEvent],
    ) -> None:
        """`consumer`'s batch of one tenant's events in one transaction, which also finishes `finish`.

        On the driver's plain connection: the batch path is the outbox's hot path, and each of its
        statements is one round trip with nothing in between.
        """
        assert consumer.handle_many is not None
        async with self.db.driver_transaction(RlsContext(tenant_id=tenant_id, role="SYSTEM")) as conn:
            if consumer.idempotent:
                todo = list(events)  # it records nothing twice by itself: no delivery record to keep
            else:
                fresh = {
                    row[0]
                    for row in await conn.fetch(
                        "INSERT INTO event_deliveries (tenant_id, event_id, consumer)"
                        " SELECT $1, unnest($2::uuid[]), $3 ON CONFLICT DO NOTHING RETURNING event_id",
                        tenant_id,
                        [e.id for e in events],
                        consumer.name,
                    )
                }
                todo = [e for e in events if e.id in fresh]  # the others were delivered before a retry
            if todo:
                await consumer.handle_many(conn, tenant_id, todo)
            if finish:  # DONE as the work commits, in the same message
                await conn.execute(f"{self._finish_statement(finish)}; COMMIT")

    async def _deliver_claim(
        self, consumer: Consumer, shares: Sequence[tuple[uuid.UUID, Sequence[DeliveredEvent]]]
    ) -> None:
        """Several tenants' events, which only `consumer` wants (or none), in one transaction that
        also finishes them all; if it fails, each tenant's share is processed on its own."""
        assert consumer.handle_claim is not None
        wanted: list[tuple[uuid.UUID, Sequence[DeliveredEvent]]] = []
        for tenant_id, events in shares:
            mine = [e for e in events if consumer.wants(e.event_type)]
            if mine:
                wanted.append((tenant_id, mine))
        try:
            async with self.db.driver_transaction(RlsContext(role="SYSTEM")) as conn:
                last = await consumer.handle_claim(conn, wanted) if wanted else None
                finish = self._finish_statement([e for _, events in shares for e in events])
                await conn.execute(f"{last}; {finish}; COMMIT" if last else f"{finish}; COMMIT")
        except Exception as exc:
            log.warning(
                "consumer %s failed on a claim of %d tenants, delivering each tenant's on its own: %s",
                consumer.name,
                len(shares),
                exc,
            )
            await self._process_tenants(shares)

    def _claimed_by(self, events: Sequence[DeliveredEvent]) -> Consumer | None:
        """The one consumer with `handle_claim` that alone wants every one of `events` (events no
        consumer wants may be among them), else None."""
        found: Consumer | None = None
        for event in events:
            consumers = self.registry.for_event(event.event_type)
            if not consumers:
                continue
            if len(consumers) > 1 or consumers[0].handle_claim is None:
                return None
            if found is not None and consumers[0] is not found:
                return None
            found = consumers[0]
        return found

    async def _process_tenants(self, shares: Sequence[tuple[uuid.UUID, Sequence[DeliveredEvent]]]) -> None:
        """Each tenant's share on its own (`process_tenant`), up to `tenants_at_once` side by side."""
        gate = asyncio.Semaphore(self.tenants_at_once)

        async def one(tenant_id: uuid.UUID, group: Sequence[DeliveredEvent]) -> None:
            async with gate:
                await self.process_tenant(tenant_id, group)

        outcomes = await asyncio.gather(*(one(t, g) for t, g in shares), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # the database failed under a tenant: after every other finished

    def _finish_statement(self, events: Sequence[DeliveredEvent]) -> str:
        """`outbox_finish_many` for `events` (only those this worker still holds), values inlined so
        that it can travel in one message with a COMMIT."""
        tenants = sql_literal(array_literal(e.tenant_id for e in events))
        ids = sql_literal(array_literal(e.id for e in events))
        return f"SELECT outbox_finish_many({sql_literal(self.worker_id)}, {tenants}::uuid[], {ids}::uuid[])"

    async def process_tenant(self, tenant_id: uuid.UUID, events: Sequence[DeliveredEvent]) -> None:
        """Every interested consumer on one tenant's claimed events, each consumer in turn.

        A consumer with `handle_many` takes them in one transaction, which finishes the events it is
        the last consumer of; when that batch fails, its events go through `handle` one at a time, so
        only the ones that fail alone are retried. The rest are finished together at the end.
        """
        last_consumer = {e.event_type: self.registry.for_event(e.event_type)[-1:] for e in events}
        failures: defaultdict[uuid.UUID, list[str]] = defaultdict(list)
        finished: set[uuid.UUID] = set()
        for consumer in self.registry.all():
            wanted = [e for e in events if consumer.wants(e.event_type)]
            if not wanted:
                continue
            if consumer.handle_many is not None:
                last = [e for e in wanted if last_consumer[e.event_type] == [consumer] and not failures[e.id]]
                try:
                    await self._deliver_many(tenant_id, wanted, consumer, finish=last)
                except Exception as exc:
                    log.warning(
                        "consumer %s failed on a batch of %d events, delivering them one by one: %s",
                        consumer.name,
                        len(wanted),
                        exc,
                    )
                else:
                    finished.update(e.id for e in last)
                    continue
            for event in wanted:
                try:
                    await self._deliver(event, consumer)
                except Exception as exc:
                    log.warning(
                        "consumer %s failed on %s %s: %s", consumer.name, event.event_type, event.id, exc
                    )
                    failures[event.id].append(f"{consumer.name}: {type(exc).__name__}: {exc}")
        for event in events:
            if failures[event.id]:
                await self._retry(event, "; ".join(failures[event.id]))
        rest = [e for e in events if e.id not in finished and not failures[e.id]]
        if rest:
            await (await self.db.driver_pool()).execute(self._finish_statement(rest))

    async def _retry(self, event: DeliveredEvent, error: str) -> None:
        """Releases the event for a later attempt after a backoff, or marks it DEAD after the last one."""
        async with self.db.sessions() as session, session.begin():
            await session.execute(
                text("SELECT outbox_retry(:t, :id, :w, :err, :delay, :max)"),
                {
                    "t": event.tenant_id,
                    "id": event.id,
                    "w": self.worker_id,
                    "err": error,
                    "delay": backoff_seconds(event.attempts),
                    "max": self.max_attempts,
                },
            )

    async def run_once(self) -> int:
        """Claims and processes one batch, tenant by tenant; returns how many events it handled."""
        events = await self.claim()
        await self.process_claim(events)
        return len(events)

    async def process_claim(self, events: Sequence[DeliveredEvent]) -> None:
        """Every consumer on a claim's events, tenant by tenant (or many tenants at once)."""
        by_tenant: dict[uuid.UUID, list[DeliveredEvent]] = {}
        # In the order they happened (their transactions' start), whatever order the claim returned.
        for event in sorted(events, key=lambda e: e.occurred_at):
            if event.attempts > self.max_attempts:
                # Claimed once more than allowed: earlier workers died holding it (their leases
                # expired) without recording a failure. A poison event must not crash workers forever.
                await self._retry(event, f"lease expired {event.attempts - 1} times without a result")
            else:
                by_tenant.setdefault(event.tenant_id, []).append(event)
        # Tenants whose events one many-tenant consumer alone wants go to it together, in one
        # transaction; the others' shares are independent (each its own transactions, chain and lock):
        # while one waits on the database another is worked on. Within a tenant the order above holds.
        together: dict[str, tuple[Consumer, list[tuple[uuid.UUID, Sequence[DeliveredEvent]]]]] = {}
        alone: list[tuple[uuid.UUID, Sequence[DeliveredEvent]]] = []
        for tenant_id, group in by_tenant.items():
            consumer = self._claimed_by(group)
            if consumer is None:
                alone.append((tenant_id, group))
            else:
                together.setdefault(consumer.name, (consumer, []))[1].append((tenant_id, group))
        work = [self._deliver_claim(consumer, shares) for consumer, shares in together.values()]
        if alone:
            work.append(self._process_tenants(alone))
        outcomes = await asyncio.gather(*work, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def drain(self, *, max_batches: int = 1000) -> int:
        handled = 0
        for _ in range(max_batches):
            count = await self.run_once()
            handled += count
            if count == 0:
                break
        return handled

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn: asyncpg.Connection = await asyncpg.connect(**asyncpg_connect_args(self.db.app_url))
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox dispatcher cannot LISTEN, polling only: %s", exc)
            return None
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        return conn

    async def run_forever(self) -> None:
        """Claims and processes until stopped, with up to `claims_at_once` claims in hand: the next
        claim is taken while the last one's work waits on the database, so the worker's CPU and the
        database's overlap. A claim that finds nothing waits for a NOTIFY (or the poll interval)."""
        listener: asyncpg.Connection | None = None
        slots = asyncio.Semaphore(self.claims_at_once)
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            slots.release()
            if not task.cancelled() and task.exception() is not None:
                log.error("outbox dispatch failed", exc_info=task.exception())

        try:
            while not self._stopping.is_set():
                if listener is None or listener.is_closed():
                    # (Re)connect: a dropped LISTEN connection would silently turn wake-ups into polls.
                    listener = await self._listen()
                await slots.acquire()
                if self._stopping.is_set():
                    slots.release()
                    break
                self._wake.clear()
                try:
                    events = await self.claim()
                except Exception:
                    log.exception("outbox claim failed; retrying after a pause")
                    events = []
                if events:
                    task = asyncio.create_task(self.process_claim(events))
                    running.add(task)
                    task.add_done_callback(finished)
                    continue
                slots.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            if listener is not None and not listener.is_closed():
                await listener.close()
