"""The outbox and its dispatcher on the real database: committed events only, once per consumer.

Every test uses its own event types, so events other tests left behind never reach its consumers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from tests.core.schema_catalog import connect
from tests.factories import ADMIN, MadeTenant, make_tenant
from vibethink.core import outbox
from vibethink.core.database import Database, RlsContext
from vibethink.core.dispatcher import ConsumerRegistry, DeliveredEvent, Dispatcher
from vibethink.core.settings import Settings


@dataclass
class RecordingConsumer:
    """Records each call with the RLS tenant it ran under; fails its first `failures` calls."""

    failures: int = 0
    calls: list[uuid.UUID] = field(default_factory=list)
    tenants_seen: list[str] = field(default_factory=list)
    delivered: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, session: AsyncSession, event: DeliveredEvent) -> None:
        self.calls.append(event.id)
        self.tenants_seen.append(
            (await session.execute(text("SELECT current_setting('app.tenant_id')"))).scalar_one()
        )
        await asyncio.sleep(0)  # let a concurrent dispatcher run in between
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("consumer is down")
        self.delivered.set()


@pytest.fixture
def event_type(unique: str) -> str:
    return f"TEST_{unique.upper()}"


@pytest.fixture
async def tenant(db: Database, unique: str) -> MadeTenant:
    return await make_tenant(db, slug=f"outbox-{unique}")


@pytest.fixture
async def worker_db(test_settings: Settings, test_owner_url: URL) -> AsyncIterator[Database]:
    """A dispatcher's own Database, with three attempts before an event is dead."""
    database = Database(test_settings.model_copy(update={"outbox_max_attempts": 3}), owner=test_owner_url)
    yield database
    await database.dispose()


@pytest.fixture
async def owner(test_owner_url: URL) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(test_owner_url)
    yield conn
    await conn.close()


async def emit(db: Database, tenant_id: uuid.UUID, event_type: str, *, count: int = 1) -> list[uuid.UUID]:
    async with db.transaction(RlsContext(tenant_id=tenant_id, role="TALENT_OWNER")) as session:
        return [
            await outbox.emit(session, event_type, tenant_id=tenant_id, payload={"n": n})
            for n in range(count)
        ]


async def event_row(db: Database, event_id: uuid.UUID) -> dict[str, Any]:
    async with db.transaction(ADMIN) as session:
        row = (
            await session.execute(
                text(
                    "SELECT status::text AS status, attempts, processed_at, locked_by, locked_until,"
                    " last_error, next_attempt_at, now() AS now FROM platform_events WHERE id = :id"
                ),
                {"id": event_id},
            )
        ).one()
    return dict(row._mapping)


async def deliveries(db: Database, event_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, str]]:
    async with db.transaction(ADMIN) as session:
        rows = await session.execute(
            text("SELECT event_id, consumer FROM event_deliveries WHERE event_id = ANY(:ids)"),
            {"ids": event_ids},
        )
        return [(r.event_id, r.consumer) for r in rows]


async def writers(db: Database, event_ids: list[uuid.UUID]) -> int:
    """How many transactions last wrote these events."""
    async with db.transaction(ADMIN) as session:
        return int(
            (
                await session.execute(
                    text("SELECT count(DISTINCT xmin::text) FROM platform_events WHERE id = ANY(:ids)"),
                    {"ids": event_ids},
                )
            ).scalar_one()
        )


async def make_due(owner: asyncpg.Connection, event_id: uuid.UUID) -> None:
    """Skips the backoff wait: the event becomes due now."""
    async with owner.transaction():
        await owner.execute("UPDATE platform_events SET next_attempt_at = now() WHERE id = $1", event_id)


def registry(event_type: str, **consumers: RecordingConsumer) -> ConsumerRegistry:
    result = ConsumerRegistry()
    for name, consumer in consumers.items():
        result.register(name, consumer, event_types={event_type})
    return result


class TestOnlyCommittedEventsAreDelivered:
    async def test_an_event_written_in_a_rolled_back_transaction_is_never_delivered(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str
    ) -> None:
        consumer = RecordingConsumer()
        rolled_back: list[uuid.UUID] = []

        async def change_that_fails() -> None:
            async with db.transaction(RlsContext(tenant_id=tenant.id)) as session:
                rolled_back.append(await outbox.emit(session, event_type, tenant_id=tenant.id))
                raise RuntimeError("change failed")

        with pytest.raises(RuntimeError, match="change failed"):
            await change_that_fails()
        committed = await emit(db, tenant.id, event_type)

        await Dispatcher(worker_db, registry(event_type, audit=consumer)).drain()

        assert consumer.calls == committed
        async with db.transaction(ADMIN) as session:
            found = await session.execute(
                text("SELECT 1 FROM platform_events WHERE id = :id"), {"id": rolled_back[0]}
            )
            assert found.first() is None


class TestACommittedEventIsDeliveredOncePerConsumer:
    async def test_each_interested_consumer_gets_it_once_and_the_event_is_done(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str
    ) -> None:
        audit, webhooks, other = RecordingConsumer(), RecordingConsumer(), RecordingConsumer()
        consumers = registry(event_type, audit=audit, webhooks=webhooks)
        consumers.register("other", other, event_types={f"{event_type}_OTHER"})
        [event_id] = await emit(db, tenant.id, event_type)
        dispatcher = Dispatcher(worker_db, consumers)

        await dispatcher.drain()
        await dispatcher.drain()  # a second pass finds nothing to redo

        assert audit.calls == [event_id]
        assert webhooks.calls == [event_id]
        assert other.calls == []
        row = await event_row(db, event_id)
        assert row["status"] == "DONE"
        assert row["processed_at"] is not None
        assert row["attempts"] == 1
        assert (row["locked_by"], row["locked_until"], row["last_error"]) == (None, None, None)
        assert sorted(await deliveries(db, [event_id])) == [(event_id, "audit"), (event_id, "webhooks")]

    async def test_an_event_no_consumer_wants_is_marked_done(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str
    ) -> None:
        [event_id] = await emit(db, tenant.id, event_type)
        await Dispatcher(worker_db, ConsumerRegistry()).drain()
        assert (await event_row(db, event_id))["status"] == "DONE"
        assert await deliveries(db, [event_id]) == []

    async def test_consumers_run_under_the_events_tenant(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str, unique: str
    ) -> None:
        other_tenant = await make_tenant(db, slug=f"outbox-other-{unique}")
        seen_events: list[int] = []

        async def count_visible_events(session: AsyncSession, event: DeliveredEvent) -> None:
            visible = await session.execute(
                text("SELECT count(*) FROM platform_events WHERE tenant_id = :other"),
                {"other": other_tenant.id},
            )
            seen_events.append(visible.scalar_one())

        consumer = RecordingConsumer()
        consumers = registry(event_type, audit=consumer)
        consumers.register("probe", count_visible_events, event_types={event_type})
        await emit(db, other_tenant.id, f"{event_type}_ELSEWHERE")
        await emit(db, tenant.id, event_type)
        await emit(db, other_tenant.id, event_type)

        await Dispatcher(worker_db, consumers).drain()

        assert sorted(consumer.tenants_seen) == sorted([str(tenant.id), str(other_tenant.id)])
        # Under `tenant`, the other tenant's events are invisible; under the other tenant, visible.
        assert sorted(seen_events)[0] == 0
        assert sorted(seen_events)[1] >= 2


class TestAFailingConsumerIsRetried:
    async def test_a_failure_records_the_error_and_backs_off_then_the_retry_succeeds(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        consumer = RecordingConsumer(failures=1)
        dispatcher = Dispatcher(worker_db, registry(event_type, audit=consumer))
        [event_id] = await emit(db, tenant.id, event_type)

        before = (await event_row(db, event_id))["now"]
        await dispatcher.drain()
        failed = await event_row(db, event_id)
        assert failed["status"] == "PENDING"
        assert failed["attempts"] == 1
        assert "consumer is down" in failed["last_error"]
        assert failed["locked_by"] is None
        # First retry waits 1 s with jitter: between 0.5 s and 1 s after the failure.
        assert (
            before + timedelta(seconds=0.5)
            <= failed["next_attempt_at"]
            <= failed["now"] + timedelta(seconds=1)
        )

        await dispatcher.drain()
        assert consumer.calls == [event_id]  # not due yet: the backoff holds

        await make_due(owner, event_id)
        await dispatcher.drain()
        assert consumer.calls == [event_id, event_id]
        done = await event_row(db, event_id)
        assert (done["status"], done["attempts"], done["last_error"]) == ("DONE", 2, None)

    async def test_after_the_last_attempt_the_event_is_dead(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        consumer = RecordingConsumer(failures=100)
        dispatcher = Dispatcher(worker_db, registry(event_type, audit=consumer))
        [event_id] = await emit(db, tenant.id, event_type)

        for _ in range(worker_db.settings.outbox_max_attempts + 1):
            await dispatcher.drain()
            await make_due(owner, event_id)

        assert len(consumer.calls) == 3
        dead = await event_row(db, event_id)
        assert (dead["status"], dead["attempts"]) == ("DEAD", 3)
        assert "consumer is down" in dead["last_error"]
        assert await deliveries(db, [event_id]) == []

    async def test_a_consumer_that_already_succeeded_is_not_called_again_on_retry(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        steady, flaky = RecordingConsumer(), RecordingConsumer(failures=1)
        dispatcher = Dispatcher(worker_db, registry(event_type, steady=steady, flaky=flaky))
        [event_id] = await emit(db, tenant.id, event_type)

        await dispatcher.drain()
        await make_due(owner, event_id)
        await dispatcher.drain()

        assert steady.calls == [event_id]
        assert flaky.calls == [event_id, event_id]
        assert sorted(await deliveries(db, [event_id])) == [(event_id, "flaky"), (event_id, "steady")]
        assert (await event_row(db, event_id))["status"] == "DONE"


@dataclass
class BatchConsumer:
    """Takes a tenant's events in one call; a batch holding a `poison` event fails, as does that event."""

    poison: set[uuid.UUID] = field(default_factory=set)
    batches: list[tuple[str, list[uuid.UUID]]] = field(default_factory=list)
    singles: list[uuid.UUID] = field(default_factory=list)

    async def handle_many(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, events: Sequence[DeliveredEvent]
    ) -> None:
        context = await conn.fetchval("SELECT current_setting('app.tenant_id')")
        assert all(e.tenant_id == tenant_id for e in events)
        self.batches.append((context, [e.id for e in events]))
        if self.poison & {e.id for e in events}:
            raise RuntimeError("a bad event in the batch")

    async def handle(self, session: AsyncSession, event: DeliveredEvent) -> None:
        self.singles.append(event.id)
        if event.id in self.poison:
            raise RuntimeError("this event is bad")


def batch_registry(event_type: str, consumer: BatchConsumer, *, idempotent: bool = False) -> ConsumerRegistry:
    result = ConsumerRegistry()
    result.register(
        "ledger",
        consumer.handle,
        event_types={event_type},
        handle_many=consumer.handle_many,
        idempotent=idempotent,
    )
    return result


class TestBatchConsumers:
    async def test_a_tenants_events_arrive_in_one_call_under_its_context_and_finish_with_it(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str, unique: str
    ) -> None:
        other_tenant = await make_tenant(db, slug=f"outbox-batch-{unique}")
        mine = await emit(db, tenant.id, event_type, count=30)
        theirs = await emit(db, other_tenant.id, event_type, count=5)
        consumer = BatchConsumer()

        await Dispatcher(worker_db, batch_registry(event_type, consumer), batch_size=100).drain()

        # Events of one transaction share their time: their order among themselves is not defined.
        batches = sorted((context, sorted(ids)) for context, ids in consumer.batches)
        assert batches == sorted([(str(tenant.id), sorted(mine)), (str(other_tenant.id), sorted(theirs))])
        assert consumer.singles == []
        rows = [await event_row(db, event_id) for event_id in mine + theirs]
        assert {r["status"] for r in rows} == {"DONE"}
        assert all(r["locked_by"] is None and r["processed_at"] is not None for r in rows)
        assert len(await deliveries(db, mine + theirs)) == 35

    async def test_a_failed_batch_is_delivered_one_by_one_and_only_the_bad_event_is_retried(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str
    ) -> None:
        events = await emit(db, tenant.id, event_type, count=6)
        consumer = BatchConsumer(poison={events[2]})

        await Dispatcher(worker_db, batch_registry(event_type, consumer), batch_size=100).drain()

        assert [(context, sorted(ids)) for context, ids in consumer.batches] == [
            (str(tenant.id), sorted(events))
        ]
        assert sorted(consumer.singles) == sorted(events)  # then each alone; the batch left nothing
        statuses = [(await event_row(db, event_id))["status"] for event_id in events]
        assert statuses == ["DONE", "DONE", "PENDING", "DONE", "DONE", "DONE"]
        assert "this event is bad" in (await event_row(db, events[2]))["last_error"]
        assert sorted(e for e, _ in await deliveries(db, events)) == sorted(events[:2] + events[3:])

    @pytest.mark.parametrize("idempotent", [False, True], ids=["recorded", "idempotent"])
    async def test_a_retry_after_a_later_consumer_failed(
        self,
        idempotent: bool,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        # The batch consumer succeeds, a later single-event consumer fails once. On the retry a batch
        # consumer with a delivery record runs on nothing; one idempotent by itself keeps no record
        # and simply runs again. Either way the event finishes with the second consumer.
        [event_id] = await emit(db, tenant.id, event_type)
        batch, flaky = BatchConsumer(), RecordingConsumer(failures=1)
        consumers = batch_registry(event_type, batch, idempotent=idempotent)
        consumers.register("flaky", flaky, event_types={event_type})
        dispatcher = Dispatcher(worker_db, consumers)

        await dispatcher.drain()
        assert (await event_row(db, event_id))["status"] == "PENDING"
        await make_due(owner, event_id)
        await dispatcher.drain()

        assert batch.batches == [(str(tenant.id), [event_id])] * (2 if idempotent else 1)
        assert flaky.calls == [event_id, event_id]
        assert (await event_row(db, event_id))["status"] == "DONE"
        recorded = sorted(c for _, c in await deliveries(db, [event_id]))
        assert recorded == (["flaky"] if idempotent else ["flaky", "ledger"])

    async def test_a_worker_that_lost_its_lease_neither_redelivers_nor_finishes_the_batch(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        consumer = BatchConsumer()
        slow, fast = (Dispatcher(worker_db, batch_registry(event_type, consumer)) for _ in range(2))
        [event_id] = await emit(db, tenant.id, event_type)
        claimed = [e for e in await slow.claim() if e.id == event_id]
        await set_lease(owner, event_id, seconds_left=-1, attempts=1)  # the slow worker's lease runs out

        await fast.drain()
        finished_at = (await event_row(db, event_id))["processed_at"]
        await slow.process_tenant(tenant.id, claimed)

        assert consumer.batches == [(str(tenant.id), [event_id])]
        row = await event_row(db, event_id)
        assert (row["status"], row["processed_at"]) == ("DONE", finished_at)

    async def test_an_event_is_not_finished_by_the_batch_while_a_later_consumer_failed_it(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str
    ) -> None:
        [event_id] = await emit(db, tenant.id, event_type)
        flaky, batch = RecordingConsumer(failures=1), BatchConsumer()
        consumers = ConsumerRegistry()
        consumers.register("flaky", flaky, event_types={event_type})
        consumers.register("ledger", batch.handle, event_types={event_type}, handle_many=batch.handle_many)

        await Dispatcher(worker_db, consumers).drain()

        assert batch.batches == [(str(tenant.id), [event_id])]
        row = await event_row(db, event_id)
        assert (row["status"], row["processed_at"]) == ("PENDING", None)


@dataclass
class ClaimConsumer(BatchConsumer):
    """Also takes several tenants' events in one call (`handle_claim`), which fails on a `poison`
    event, and returns `last` as the statement to send with the finish and COMMIT."""

    claims: list[list[tuple[uuid.UUID, list[uuid.UUID]]]] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    last: str | None = "SELECT 1"

    async def handle_claim(
        self, conn: asyncpg.Connection, shares: Sequence[tuple[uuid.UUID, Sequence[DeliveredEvent]]]
    ) -> str | None:
        self.contexts.append(await conn.fetchval("SELECT current_setting('app.tenant_id', true)"))
        assert conn.is_in_transaction()
        assert all(e.tenant_id == tenant_id for tenant_id, events in shares for e in events)
        self.claims.append([(tenant_id, [e.id for e in events]) for tenant_id, events in shares])
        if self.poison & {e.id for _, events in shares for e in events}:
            raise RuntimeError("a bad event in the claim")
        return self.last


def claim_registry(event_type: str, consumer: ClaimConsumer) -> ConsumerRegistry:
    result = ConsumerRegistry()
    result.register(
        "ledger",
        consumer.handle,
        event_types={event_type},
        handle_many=consumer.handle_many,
        idempotent=True,
        handle_claim=consumer.handle_claim,
    )
    return result


class TestManyTenantConsumers:
    async def test_several_tenants_events_arrive_in_one_call_and_finish_with_it(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str, unique: str
    ) -> None:
        other_tenant = await make_tenant(db, slug=f"outbox-claim-{unique}")
        mine = await emit(db, tenant.id, event_type, count=4)
        theirs = await emit(db, other_tenant.id, event_type, count=3)
        consumer = ClaimConsumer()

        await Dispatcher(worker_db, claim_registry(event_type, consumer), batch_size=100).drain()

        [claim] = consumer.claims
        assert sorted((t, sorted(ids)) for t, ids in claim) == sorted(
            [(tenant.id, sorted(mine)), (other_tenant.id, sorted(theirs))]
        )
        assert consumer.contexts == [None]  # no tenant's context: the consumer sets each one itself
        assert consumer.batches == []
        assert consumer.singles == []
        rows = [await event_row(db, event_id) for event_id in mine + theirs]
        assert {r["status"] for r in rows} == {"DONE"}
        assert await writers(db, mine + theirs) == 1  # finished together, by one transaction
        assert await deliveries(db, mine + theirs) == []  # idempotent: no delivery records

    async def test_a_failed_claim_leaves_nothing_and_each_tenant_is_then_delivered_alone(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str, unique: str
    ) -> None:
        other_tenant = await make_tenant(db, slug=f"outbox-claim-{unique}")
        mine = await emit(db, tenant.id, event_type, count=3)
        theirs = await emit(db, other_tenant.id, event_type, count=2)
        consumer = ClaimConsumer(poison={mine[1]})

        await Dispatcher(worker_db, claim_registry(event_type, consumer), batch_size=100).drain()

        assert len(consumer.claims) == 1
        # Then each tenant on its own: the other tenant's batch succeeds; this one's fails, and its
        # events go one by one, so only the bad one is retried.
        assert sorted((context, sorted(ids)) for context, ids in consumer.batches) == sorted(
            [(str(tenant.id), sorted(mine)), (str(other_tenant.id), sorted(theirs))]
        )
        assert sorted(consumer.singles) == sorted(mine)
        statuses = {event_id: (await event_row(db, event_id))["status"] for event_id in mine + theirs}
        assert statuses == {**dict.fromkeys(mine + theirs, "DONE"), mine[1]: "PENDING"}
        assert "this event is bad" in (await event_row(db, mine[1]))["last_error"]

    async def test_a_last_statement_that_fails_undoes_the_finish_and_the_tenants_go_alone(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str
    ) -> None:
        events = await emit(db, tenant.id, event_type, count=2)
        consumer = ClaimConsumer(last="SELECT 1 / 0")  # sent in one message with the finish and COMMIT

        await Dispatcher(worker_db, claim_registry(event_type, consumer), batch_size=100).drain()

        assert len(consumer.claims) == 1
        assert consumer.batches == [(str(tenant.id), events)]
        assert {(await event_row(db, event_id))["status"] for event_id in events} == {"DONE"}

    async def test_a_tenant_with_an_event_another_consumer_wants_goes_alone(
        self, db: Database, worker_db: Database, tenant: MadeTenant, event_type: str, unique: str
    ) -> None:
        other_tenant = await make_tenant(db, slug=f"outbox-claim-{unique}")
        mine = await emit(db, tenant.id, event_type, count=2)
        theirs = await emit(db, other_tenant.id, event_type) + await emit(
            db, other_tenant.id, f"{event_type}_ALSO"
        )
        consumer, also = ClaimConsumer(), RecordingConsumer()
        consumers = ConsumerRegistry()
        consumers.register(
            "ledger",
            consumer.handle,
            event_types={event_type},
            handle_many=consumer.handle_many,
            idempotent=True,
            handle_claim=consumer.handle_claim,
        )
        consumers.register("also", also, event_types={f"{event_type}_ALSO"})

        await Dispatcher(worker_db, consumers, batch_size=100).drain()

        assert [[(t, sorted(ids)) for t, ids in claim] for claim in consumer.claims] == [
            [(tenant.id, sorted(mine))]
        ]
        assert consumer.batches == [(str(other_tenant.id), theirs[:1])]
        assert also.calls == theirs[1:]
        assert {(await event_row(db, event_id))["status"] for event_id in mine + theirs} == {"DONE"}

    def test_a_many_tenant_consumer_must_be_idempotent_and_take_batches(self) -> None:
        consumer = ClaimConsumer()
        with pytest.raises(ValueError, match="idempotent"):
            ConsumerRegistry().register(
                "ledger",
                consumer.handle,
                handle_many=consumer.handle_many,
                handle_claim=consumer.handle_claim,
            )
        with pytest.raises(ValueError, match="handle_many"):
            ConsumerRegistry().register(
                "ledger", consumer.handle, idempotent=True, handle_claim=consumer.handle_claim
            )

    async def test_a_running_worker_with_two_claims_in_hand_delivers_every_event_once(
        self, db: Database, test_settings: Settings, test_owner_url: URL, event_type: str, unique: str
    ) -> None:
        tenants = [await make_tenant(db, slug=f"outbox-hand-{unique}-{n}") for n in range(3)]
        database = Database(
            test_settings.model_copy(update={"outbox_batch_size": 4, "outbox_claims_at_once": 2}),
            owner=test_owner_url,
        )
        consumer = ClaimConsumer()
        dispatcher = Dispatcher(database, claim_registry(event_type, consumer))
        task = asyncio.create_task(dispatcher.run_forever())
        try:
            event_ids = [e for t in tenants for e in await emit(db, t.id, event_type, count=10)]
            deadline = time.monotonic() + 20
            while sum(len(ids) for claim in consumer.claims for _, ids in claim) < len(event_ids):
                assert time.monotonic() < deadline, "the worker did not deliver every event"
                await asyncio.sleep(0.05)
        finally:
            dispatcher.stop()
            await asyncio.wait_for(task, timeout=10)
            await database.dispose()

        delivered = Counter(e for claim in consumer.claims for _, ids in claim for e in ids)
        assert sorted(delivered) == sorted(event_ids)
        assert set(delivered.values()) == {1}
        assert len(consumer.claims) >= len(event_ids) // 4  # claims of at most 4
        assert {(await event_row(db, event_id))["status"] for event_id in event_ids} == {"DONE"}


async def set_lease(
    owner: asyncpg.Connection, event_id: uuid.UUID, *, seconds_left: float, attempts: int = 1
) -> None:
    """Makes the event look claimed by a worker whose lease ends `seconds_left` from now."""
    async with owner.transaction():
        await owner.execute(
            "UPDATE platform_events SET status = 'PROCESSING', locked_by = 'crashed-worker', attempts = $2,"
            " locked_until = now() + make_interval(secs => $3) WHERE id = $1",
            event_id,
            attempts,
            seconds_left,
        )


class TestLeases:
    async def test_an_expired_lease_is_reclaimed_and_delivered(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        consumer = RecordingConsumer()
        [event_id] = await emit(db, tenant.id, event_type)
        await set_lease(owner, event_id, seconds_left=-1)

        await Dispatcher(worker_db, registry(event_type, audit=consumer)).drain()

        assert consumer.calls == [event_id]
        row = await event_row(db, event_id)
        assert (row["status"], row["attempts"]) == ("DONE", 2)

    async def test_a_live_lease_is_left_to_its_worker(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        consumer = RecordingConsumer()
        [event_id] = await emit(db, tenant.id, event_type)
        await set_lease(owner, event_id, seconds_left=60)

        await Dispatcher(worker_db, registry(event_type, audit=consumer)).drain()

        assert consumer.calls == []
        assert (await event_row(db, event_id))["status"] == "PROCESSING"

    async def test_a_worker_that_lost_its_lease_neither_redelivers_nor_finishes(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        consumer = RecordingConsumer()
        consumers = registry(event_type, audit=consumer)
        slow, fast = Dispatcher(worker_db, consumers), Dispatcher(worker_db, consumers)
        [event_id] = await emit(db, tenant.id, event_type)
        claimed = [e for e in await slow.claim() if e.id == event_id]
        await set_lease(owner, event_id, seconds_left=-1, attempts=1)  # the slow worker's lease runs out

        await fast.drain()
        finished_at = (await event_row(db, event_id))["processed_at"]
        await slow.process_tenant(tenant.id, claimed)

        assert consumer.calls == [event_id]
        row = await event_row(db, event_id)
        assert (row["status"], row["processed_at"]) == ("DONE", finished_at)

    async def test_an_event_whose_lease_keeps_expiring_dies_after_the_last_attempt(
        self,
        db: Database,
        worker_db: Database,
        owner: asyncpg.Connection,
        tenant: MadeTenant,
        event_type: str,
    ) -> None:
        # A poison event that crashes its worker every time must not be retried forever.
        consumer = RecordingConsumer()
        [event_id] = await emit(db, tenant.id, event_type)
        await set_lease(owner, event_id, seconds_left=-1, attempts=worker_db.settings.outbox_max_attempts)

        await Dispatcher(worker_db, registry(event_type, audit=consumer)).drain()

        assert consumer.calls == []
        row = await event_row(db, event_id)
        assert row["status"] == "DEAD"
        assert "lease" in row["last_error"]


class TestConcurrentDispatchers:
    async def test_two_dispatchers_deliver_every_event_to_every_consumer_exactly_once(
        self,
        db: Database,
        test_settings: Settings,
        test_owner_url: URL,
        tenant: MadeTenant,
        event_type: str,
        unique: str,
    ) -> None:
        other_tenant = await make_tenant(db, slug=f"outbox-busy-{unique}")
        event_ids = [
            *await emit(db, tenant.id, event_type, count=250),
            *await emit(db, other_tenant.id, event_type, count=250),
        ]
        calls: Counter[tuple[uuid.UUID, str]] = Counter()

        def consumer(name: str) -> Any:
            async def handle(session: AsyncSession, event: DeliveredEvent) -> None:
                calls[(event.id, name)] += 1
                await asyncio.sleep(0)

            return handle

        consumers = ConsumerRegistry()
        for name in ("audit", "webhooks"):
            consumers.register(name, consumer(name), event_types={event_type})
        databases = [Database(test_settings, owner=test_owner_url) for _ in range(2)]
        try:
            dispatchers = [Dispatcher(d, consumers, batch_size=20) for d in databases]
            handled = await asyncio.gather(*(d.drain() for d in dispatchers))
        finally:
            for database in databases:
                await database.dispose()

        assert all(count > 0 for count in handled), handled  # both really took part
        wanted = {(event_id, name) for event_id in event_ids for name in ("audit", "webhooks")}
        assert set(calls) == wanted
        assert [key for key, n in calls.items() if n != 1] == []
        assert len(await deliveries(db, event_ids)) == len(wanted)
        async with db.transaction(ADMIN) as session:
            statuses = await session.execute(
                text("SELECT status::text, count(*) FROM platform_events WHERE id = ANY(:ids) GROUP BY 1"),
                {"ids": event_ids},
            )
            assert dict(statuses.all()) == {"DONE": 500}


class TestListenNotifyWakesTheDispatcher:
    async def test_a_waiting_dispatcher_delivers_a_new_event_long_before_its_next_poll(
        self, db: Database, test_settings: Settings, test_owner_url: URL, tenant: MadeTenant, event_type: str
    ) -> None:
        database = Database(
            test_settings.model_copy(update={"outbox_poll_seconds": 30.0}), owner=test_owner_url
        )
        first, second = RecordingConsumer(), RecordingConsumer()
        consumers = ConsumerRegistry()
        consumers.register("first", first, event_types={f"{event_type}_FIRST"})
        consumers.register("second", second, event_types={event_type})
        dispatcher = Dispatcher(database, consumers)
        task = asyncio.create_task(dispatcher.run_forever())
        try:
            await emit(db, tenant.id, f"{event_type}_FIRST")
            await asyncio.wait_for(first.delivered.wait(), timeout=5)
            await asyncio.sleep(0.3)  # the loop has found nothing more and is waiting (30 s poll)

            started = time.monotonic()
            await emit(db, tenant.id, event_type)
            await asyncio.wait_for(second.delivered.wait(), timeout=5)
            assert time.monotonic() - started < 3
        finally:
            dispatcher.stop()
            await asyncio.wait_for(task, timeout=5)
            await database.dispose()
