"""The evidence ledger: events become signed, hash-chained rows, and signed Merkle checkpoints rest on them.

Each row's *document* (every column but its hash and signature) is canonical JSON (RFC 8785); its
entry hash is the RFC 6962 leaf hash `SHA-256(0x00 || document)`, the document names the previous
row's entry hash, and the signature is Ed25519 over the entry hash. Writers of one tenant take a
transaction-scoped advisory lock, so sequence numbers are gapless and the chain has no forks.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import driver, merkle, pseudonyms
from vibethink.compliance.canonical import canonical, canonical_plain, canonical_record
from vibethink.compliance.catalog import load_catalog
from vibethink.compliance.keys import KeyStore, SigningKey
from vibethink.compliance.models import Checkpoint
from vibethink.compliance.rules import (
    EventFacts,
    Observation,
    RuleSet,
    clean,
    clean_text,
    evaluate,
    load_rules,
    people_of,
    plain,
)
from vibethink.compliance.state import STATE_SQL, TenantCompliance, load_state, state_from_row
from vibethink.core.database import sql_literal
from vibethink.core.errors import NotFound

RECORD_FORMAT = 1
GENESIS = "0" * 64
CHECKPOINT_TYPE = "vibethink.compliance.checkpoint/v1"


class LedgerDamaged(RuntimeError):
    """The stored rows contradict the ledger's own structure (rows missing behind its back)."""


class Source:
    PLATFORM = "PLATFORM"  # the platform's own outbox events
    EXTERNAL = "EXTERNAL"  # submitted by the tenant's systems through the API
    MANUAL = "MANUAL"  # recorded by a member in the dashboard


def iso(moment: datetime) -> str:
    """UTC, microseconds, `Z`: the one text form of a time inside signed documents."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]
    source: str = Source.PLATFORM
    actor_user_id: uuid.UUID | None = None
    actor_ref: str | None = None  # an external actor's identifier (a person: pseudonymised)
    period: tuple[datetime, datetime] | None = None

    def event_hash(self) -> str:
        """SHA-256 of the source event as received, so a record can be matched to it."""
        body = {
            "id": str(self.event_id),
            "type": self.event_type,
            "occurred_at": iso(self.occurred_at),
            "payload": plain(self.payload),
        }
        return hashlib.sha256(canonical_plain(body)).hexdigest()


def record_document(row: dict[str, Any]) -> dict[str, Any]:
    """The signed document of an evidence row, from its column values (used by writer and exporter alike)."""

    def when(value: Any) -> str:
        return iso(value) if isinstance(value, datetime) else str(value)

    return {
        "format": RECORD_FORMAT,
        "tenant_id": str(row["tenant_id"]),
        "seq": int(row["seq"]),
        "prev_hash": row["prev_hash"],
        "event_id": str(row["event_id"]),
        "event_type": row["event_type"],
        "source": row["source"],
        "event_hash": row["event_hash"],
        "control_id": row["control_id"],
        "rule": {"id": row["rule_id"], "version": int(row["rule_version"])},
        "kind": row["kind"],
        "outcome": row["outcome"],
        "occurred_at": when(row["occurred_at"]),
        "period": {"start": when(row["period_start"]), "end": when(row["period_end"])},
        "recorded_at": when(row["recorded_at"]),
        "observation": row["observation"],
        "artifacts": row["artifacts"],
        "key_id": row["key_id"],
    }


def record_bytes(document: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes of a record document: what its entry hash covers."""
    return canonical_record(document, free_form=("observation", "artifacts"))


def entry_hash_of(document: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(record_bytes(document))


@dataclass
class AppendResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped_events: int = 0
    checkpoint: Checkpoint | None = None

    @property
    def count(self) -> int:
        return len(self.rows)


def _period(event: IncomingEvent) -> tuple[datetime, datetime]:
    if event.period is not None:
        return event.period
    raw = event.payload.get("period")
    if isinstance(raw, dict):
        try:
            start = datetime.fromisoformat(str(raw["start"]))
            end = datetime.fromisoformat(str(raw["end"]))
        except (KeyError, ValueError):
            return event.occurred_at, event.occurred_at
        if start.tzinfo is not None and end.tzinfo is not None and start <= end:
            return start, end
    return event.occurred_at, event.occurred_at


# The tenant's lock, then (a new snapshot: everything committed before it was granted) the chain's
# head and which (event, control) pairs exist: one call (migration 0016).
_LOCK_AND_HEAD = "SELECT seq, entry_hash, event_id, control_id FROM compliance_lock_head($1, $2::uuid[])"
# Everything an append reads, in one round trip: the lock with the head and the pairs that exist
# (aggregated: `seqs`/`entry_hashes` hold the head, `events`/`controls` the pairs), the existing keys
# of the people its events name (`$3`: their person hashes; keys of people seen for the first time
# are made afterwards, only if needed) and, in `_OPEN_WITH_STATE`, the tenant's state. The function
# scan runs once; its reads take their snapshot after the lock, the rest reads what it may.
_OPEN = (
    "SELECT h.seqs, h.entry_hashes, h.events, h.controls, p.hashes, p.secrets"
    "  FROM (SELECT array_agg(l.seq) AS seqs, array_agg(l.entry_hash) AS entry_hashes,"
    "               array_agg(l.event_id) AS events, array_agg(l.control_id) AS controls"
    "          FROM compliance_lock_head($1, $2::uuid[]) l) h"
    " CROSS JOIN (SELECT coalesce(array_agg(k.person_hash), '{}') AS hashes,"
    "                    coalesce(array_agg(k.secret), '{}') AS secrets"
    "               FROM compliance_person_keys k"
    "              WHERE k.tenant_id = $1 AND k.person_hash = ANY($3::varchar[])) p"
)
_OPEN_WITH_STATE = f"SELECT o.*, st.* FROM ({_OPEN}) o LEFT JOIN LATERAL ({STATE_SQL}) st ON true"  # noqa: S608 - constants
# One statement for a whole batch, one parameter: each row's signed document (the canonical bytes
# already made for its hash, so nothing is serialised twice) with its entry hash and signature, as
# JSON. The columns are read out of the documents by PostgreSQL: one text value to send instead of
# an array per column, whose elements the driver would check one by one.
_INSERT = (
    "INSERT INTO compliance_evidence (tenant_id, seq, prev_seq, event_id, event_type, source, event_hash,"
    " control_id, rule_id, rule_version, kind, outcome, occurred_at, period_start, period_end, recorded_at,"
    " observation, artifacts, prev_hash, entry_hash, key_id, signature)"
    " SELECT $1, n.seq, NULLIF(n.seq - 1, 0), (x.d ->> 'event_id')::uuid, x.d ->> 'event_type',"
    "        x.d ->> 'source', x.d ->> 'event_hash', x.d ->> 'control_id', x.d -> 'rule' ->> 'id',"
    "        (x.d -> 'rule' ->> 'version')::int, x.d ->> 'kind', x.d ->> 'outcome',"
    "        (x.d ->> 'occurred_at')::timestamptz, (x.d -> 'period' ->> 'start')::timestamptz,"
    "        (x.d -> 'period' ->> 'end')::timestamptz, $2, x.d -> 'observation', x.d -> 'artifacts',"
    "        x.d ->> 'prev_hash', x.h, $3, x.s"
    "   FROM jsonb_to_recordset($4::text::jsonb) AS x(d jsonb, h text, s text),"
    "        LATERAL (SELECT (x.d ->> 'seq')::bigint AS seq) n"
)


async def lock_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Serialises everything that changes the tenant's ledger (appends, prunings) until commit:
    the lock `append` takes, through the same function (which also reads the head, unused here)."""
    await driver.fetch(session, _LOCK_AND_HEAD, tenant_id, [])


@dataclass(slots=True)
class _Opened:
    """What `_open` read under the tenant's lock."""

    state: TenantCompliance | None
    keys: dict[str, bytes]  # person hash → secret, of the people asked about who have one
    seq: int  # the chain's head: its sequence number (0: empty) and entry hash
    head: str
    seen: set[tuple[uuid.UUID, str]]  # (event, control) pairs already in the ledger


async def _open(
    bound: driver.Bound,
    tenant_id: uuid.UUID,
    event_ids: Sequence[uuid.UUID],
    person_hashes: list[str],
    *,
    with_state: bool,
) -> _Opened:
    """Takes the tenant's lock and reads what an append needs (the state only `with_state`)."""
    row = await bound.fetch_one(
        _OPEN_WITH_STATE if with_state else _OPEN, tenant_id, list(dict.fromkeys(event_ids)), person_hashes
    )
    assert row is not None  # aggregates over a cross join: always one row
    seq, head = 0, GENESIS
    seen: set[tuple[uuid.UUID, str]] = set()
    for s, h, e, c in zip(
        row["seqs"] or (), row["entry_hashes"] or (), row["events"] or (), row["controls"] or (), strict=True
    ):
        if e is None:
            seq, head = int(s), h
        else:
            seen.add((e, c))
    return _Opened(
        state=state_from_row(tenant_id, row) if with_state else None,
        keys=dict(zip(row["hashes"], map(bytes, row["secrets"]), strict=True)),
        seq=seq,
        head=head,
        seen=seen,
    )


def _signatures(signer: SigningKey | None, digests: list[bytes]) -> list[str | None]:
    if signer is None:
        return [None] * len(digests)
    return [signer.sign(d).hex() for d in digests]


@lru_cache(maxsize=256)
def _relevant(tracked: frozenset[str], custom: frozenset[str]) -> frozenset[str]:
    """Controls mapped to a tracked framework: the catalog walk once per set of enabled frameworks."""
    catalog = load_catalog()
    found = {c.id for c in catalog.controls.values() if any(m.framework in tracked for m in c.mappings)}
    return frozenset(found | custom)


@dataclass(slots=True)
class _Draft:
    """A row before its place in the chain: everything but seq, prev_hash, recorded_at and what follows."""

    row: dict[str, Any]
    document: dict[str, Any]


def _drafts(
    tenant_id: uuid.UUID, planned: Sequence[tuple[IncomingEvent, Observation]], key_id: str | None
) -> list[_Draft]:
    """The rows' content and signed documents, prepared before the tenant's lock is taken."""
    tenant = str(tenant_id)
    by_event: dict[uuid.UUID, tuple[str, str, str, str, str, datetime, datetime]] = {}
    drafts: list[_Draft] = []
    for event, observation in planned:
        known = by_event.get(event.event_id)
        if known is None:
            start, end = _period(event)
            occurred = iso(event.occurred_at)
            # The same instant has the same text: most events cover only the moment they happened.
            known = by_event[event.event_id] = (
                str(event.event_id), event.event_hash(), occurred,
                occurred if start == event.occurred_at else iso(start),
                occurred if end == event.occurred_at else iso(end),
                start, end,
            )  # fmt: skip
        event_id, event_hash, occurred, period_start, period_end, start, end = known
        observed = observation.document()
        artifacts = list(observation.artifacts)
        rule = observation.rule
        row: dict[str, Any] = {
            "tenant_id": tenant_id,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "source": event.source,
            "event_hash": event_hash,
            "control_id": observation.control_id,
            "rule_id": rule.id,
            "rule_version": rule.version,
            "kind": observation.kind.value,
            "outcome": observation.outcome.value,
            "occurred_at": event.occurred_at,
            "period_start": start,
            "period_end": end,
            "observation": observed,
            "artifacts": artifacts,
            "key_id": key_id,
        }
        # The same document `record_document` builds from stored columns, with the same values.
        document: dict[str, Any] = {
            "format": RECORD_FORMAT,
            "tenant_id": tenant,
            "event_id": event_id,
            "event_type": event.event_type,
            "source": event.source,
            "event_hash": event_hash,
            "control_id": observation.control_id,
            "rule": {"id": rule.id, "version": rule.version},
            "kind": row["kind"],
            "outcome": row["outcome"],
            "occurred_at": occurred,
            "period": {"start": period_start, "end": period_end},
            "observation": observed,
            "artifacts": artifacts,
            "key_id": key_id,
        }
        drafts.append(_Draft(row, document))
    return drafts


@dataclass(slots=True)
class _Prepared:
    """One tenant's events made ready before its lock: cleaned, their facts and the people they name."""

    tenant_id: uuid.UUID
    events: list[IncomingEvent]
    facts: list[EventFacts]
    named: list[set[str]]
    hashes: dict[str, str]  # identifier → person hash


def _prepare(
    pepper: bytes, tenant_id: uuid.UUID, events: Sequence[IncomingEvent], ruleset: RuleSet
) -> _Prepared:
    cleaned = [
        replace(
            e,
            payload=clean(e.payload),
            actor_ref=clean_text(e.actor_ref) if e.actor_ref else None,
        )
        for e in events
    ]
    facts = [EventFacts(e.event_type, e.payload, e.actor_user_id, e.actor_ref) for e in cleaned]
    named = [people_of(ruleset, f) | ({f.actor_ref} if f.actor_ref else set()) for f in facts]
    hashes = {i: pseudonyms.person_hash(pepper, tenant_id, i) for i in set().union(*named)}
    return _Prepared(tenant_id, cleaned, facts, named, hashes)


@dataclass(slots=True)
class _Planned:
    """A tenant's rows before its lock: their content and documents, waiting for their place in the chain."""

    state: TenantCompliance
    drafts: list[_Draft]
    signer: SigningKey | None
    skipped_events: int


@dataclass(slots=True)
class _Chained:
    """A tenant's new rows, chained and signed under its lock, not yet inserted."""

    result: AppendResult
    documents: list[bytes]  # each row's canonical document: what its entry hash covers
    digests: list[bytes]
    state: TenantCompliance


# Acting for one tenant inside a transaction that serves several (`append_many`): the rare statements
# that run outside the many-tenant functions (keys of people named for the first time, checkpoints).
# The setting it replaces comes back, so that the caller's can be restored.
_ACT_AS = "SELECT current_setting('app.tenant_id', true), set_config('app.tenant_id', $1::text, true)"
_RESTORE = "SELECT set_config('app.tenant_id', $1::text, true)"
ActAs = Callable[[uuid.UUID], Awaitable[None]]


async def _plan(
    bound: driver.Bound,
    active: Callable[[], SigningKey],
    pepper: bytes,
    prepared: _Prepared,
    known: dict[str, bytes],
    state: TenantCompliance,
    ruleset: RuleSet,
    *,
    act_as: ActAs | None,
) -> _Planned:
    """The observations the tenant's events yield under its state, as draft rows. `known`: the keys
    of the people named that exist (person hash → secret); the others' are made here. `act_as`, when the
    transaction serves several tenants: sets this tenant's context for that statement."""
    tenant_id = prepared.tenant_id
    kept = [
        (e, f, people)
        for e, f, people in zip(prepared.events, prepared.facts, prepared.named, strict=True)
        if e.source != Source.PLATFORM or state.generates_automatically
    ]
    relevant = _relevant(
        frozenset(state.tracked_frameworks), frozenset(m.control_id for m in state.custom_mappings)
    )
    hashes = prepared.hashes
    needed = {i for _, _, people in kept for i in people if i}
    names = {i: pseudonyms.pseudonym(known[hashes[i]], i) for i in needed if hashes[i] in known}
    if len(names) < len(needed):  # people named for the first time: their keys are made now
        if act_as is not None:
            await act_as(tenant_id)
        names |= await pseudonyms.resolve(bound, pepper, tenant_id, needed - names.keys())

    def pseudonym(identifier: str) -> str:
        return names.get(identifier) or names[identifier.strip()]

    planned: list[tuple[IncomingEvent, Observation]] = []
    for event, f, _ in kept:
        if f.actor_ref:
            f = EventFacts(f.event_type, f.payload, f.actor_user_id, pseudonym(f.actor_ref))
        for observation in evaluate(ruleset, f, pseudonym):
            if observation.control_id in relevant:
                planned.append((event, observation))
    skipped = len(prepared.events) - len(kept)
    if not planned:
        return _Planned(state, [], None, skipped)
    signer: SigningKey | None = active() if state.signs else None
    return _Planned(state, _drafts(tenant_id, planned, signer.key_id if signer else None), signer, skipped)


def _link(planned: _Planned, opened: _Opened, recorded_at: datetime) -> _Chained:
    """The planned rows not recorded yet, in the chain after the head `opened` read under the lock:
    numbered, hashed and signed."""
    result = AppendResult(skipped_events=planned.skipped_events)
    chained = _Chained(result, [], [], planned.state)
    seq, prev_hash, seen = opened.seq, opened.head, opened.seen
    recorded = iso(recorded_at)
    rows = result.rows
    digests, documents = chained.digests, chained.documents
    for draft in planned.drafts:
        row, document = draft.row, draft.document
        key = (row["event_id"], row["control_id"])
        if key in seen:
            continue
        seen.add(key)
        seq += 1
        document["seq"] = seq
        document["prev_hash"] = prev_hash
        document["recorded_at"] = recorded
        # No walk for floats: observations come from `rules.evaluate` (facts through `rules.plain`)
        # and artifacts are strings, so `canonical_plain` gives `record_bytes`' bytes (tested).
        data = canonical_plain(document)
        digest = merkle.leaf_hash(data)
        documents.append(data)
        digests.append(digest)
        prev_hash_of_row, prev_hash = prev_hash, digest.hex()
        row["seq"] = seq
        row["prev_seq"] = seq - 1 if seq > 1 else None
        row["recorded_at"] = recorded_at
        row["prev_hash"] = prev_hash_of_row
        row["entry_hash"] = prev_hash
        rows.append(row)
    for row, signature in zip(rows, _signatures(planned.signer, digests), strict=True):
        row["signature"] = signature
    return chained


def _rows_json(chained: _Chained) -> str:
    """The rows as the insert reads them: each signed document (its canonical bytes, as hashed) with
    its entry hash and signature, one JSON text."""
    return orjson.dumps(
        [
            {"d": orjson.Fragment(data), "h": row["entry_hash"], "s": row["signature"]}
            for data, row in zip(chained.documents, chained.result.rows, strict=True)
        ]
    ).decode()


async def _checkpoint(
    bound: driver.Bound,
    keys: KeyStore,
    tenant_id: uuid.UUID,
    chained: _Chained,
    checkpoint_every: int,
    *,
    act_as: ActAs | None,
) -> None:
    """Extends the tenant's Merkle frontier by the new rows and signs a checkpoint at the (last)
    boundary they cross. Its statements read only rows before the new ones, so they may run before
    the rows are inserted."""
    rows, digests = chained.result.rows, chained.digests
    first, seq = rows[0]["seq"], rows[-1]["seq"]
    crossed = (first - 1) // checkpoint_every != seq // checkpoint_every
    boundary = seq // checkpoint_every * checkpoint_every
    frontier = _TREES.frontier(tenant_id, first - 1, rows[0]["prev_hash"])
    if crossed and act_as is not None:  # the statements below are this tenant's
        await act_as(tenant_id)
    if frontier is None and crossed:
        frontier = await _frontier_from_table(bound, tenant_id, first - 1)
    if frontier is not None:
        if crossed:  # the tree at the (last) boundary the batch crossed gets its signed checkpoint
            frontier = merkle.extend(frontier, digests[: boundary - first + 1])
            chained.result.checkpoint = await _sign_checkpoint(
                bound, keys, tenant_id, frontier, sign=chained.state.signs
            )
            frontier = merkle.extend(frontier, digests[boundary - first + 1 :])
        else:
            frontier = merkle.extend(frontier, digests)
        _TREES.keep(tenant_id, seq, rows[-1]["entry_hash"], frontier)


async def append(
    session: AsyncSession | driver.Bound,
    keys: KeyStore,
    pepper: bytes,
    tenant_id: uuid.UUID,
    events: Sequence[IncomingEvent],
    *,
    state: TenantCompliance | None = None,
    ruleset: RuleSet | None = None,
    checkpoint_every: int = 1000,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AppendResult:
    """Evidence for `events` of one tenant, in the caller's transaction: one row per (event, control).

    Platform events only produce evidence when the tenant's plan and settings turn automatic generation
    on; controls that map to nothing the tenant tracks produce none. Idempotent by (event, control).
    Its first statement takes the tenant's lock and reads, in the same round trip, the chain's head,
    the (event, control) pairs already recorded, the keys of the people the events name and (unless
    given) the tenant's state: round trips cost more than the work done while the lock is held (on two
    cores each one is a send and a wake-up on both sides). `clock` says when the rows are recorded
    (tests of retention move it years back).
    """
    bound = await driver.bind(session)
    ruleset = ruleset or load_rules()
    prepared = _prepare(pepper, tenant_id, events, ruleset)
    opened = await _open(
        bound,
        tenant_id,
        [e.event_id for e in prepared.events],
        sorted(set(prepared.hashes.values())),
        with_state=state is None,
    )
    if state is None:
        assert opened.state is not None  # asked for
        state = opened.state
    planned = await _plan(bound, keys.active, pepper, prepared, opened.keys, state, ruleset, act_as=None)
    chained = _link(planned, opened, clock())
    rows = chained.result.rows
    if not rows:
        return chained.result
    signer_key = rows[0]["key_id"]
    await bound.execute(_INSERT, tenant_id, rows[0]["recorded_at"], signer_key, _rows_json(chained))
    await _checkpoint(bound, keys, tenant_id, chained, checkpoint_every, act_as=None)
    return chained.result


# Every tenant's state and the keys of the people its events name that exist: one call, no lock.
_STATES_MANY = (
    "SELECT tenant_id, key_hashes, key_secrets, state::text"
    " FROM compliance_states_many($1::uuid[], $2::uuid[], $3::text[])"
)
# Every tenant's lock (in tenant order), then its head and the (event, control) pairs recorded: one call.
_LOCK_HEADS = (
    "SELECT tenant_id, head_seq, head_hash, seen_events, seen_controls"
    " FROM compliance_lock_heads($1::uuid[], $2::uuid[], $3::uuid[])"
)


@dataclass
class ManyAppended:
    """What `append_many` did: each tenant's result, and the statement that inserts their rows."""

    results: dict[uuid.UUID, AppendResult]
    insert: str | None  # None: no rows to insert

    @property
    def count(self) -> int:
        return sum(r.count for r in self.results.values())


async def append_many(
    session: AsyncSession | driver.Bound,
    keys: KeyStore,
    pepper: bytes,
    shares: Sequence[tuple[uuid.UUID, Sequence[IncomingEvent]]],
    *,
    ruleset: RuleSet | None = None,
    checkpoint_every: int = 1000,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ManyAppended:
    """`append` for several tenants' events in one transaction, in three calls for all of them.

    The first reads every tenant's state and the keys of the people named (no lock is held while
    the rules run: a concurrent writer of the same tenants waits only for the chaining, the
    signatures and the insert); the second takes every tenant's lock (in one fixed order) and reads
    its chain's head and the (event, control) pairs already recorded; the rows are then chained and
    signed here; the third inserts every tenant's rows, each under its own tenant's policies. That
    third call is returned, not sent, as one self-contained statement (values inlined): the caller
    sends it in the same transaction, where it can travel in one message with what else ends the
    transaction. The transaction's tenant setting is the caller's again after each call and after
    the returned statement (the rare statements in between, for new person keys and checkpoints,
    set it; the returned statement restores it first). A tenant listed twice has its shares taken
    together, in order.
    """
    bound = await driver.bind(session)
    ruleset = ruleset or load_rules()
    grouped: dict[uuid.UUID, list[IncomingEvent]] = {}
    for tenant_id, events in shares:
        grouped.setdefault(tenant_id, []).extend(events)
    prepared = {t: _prepare(pepper, t, events, ruleset) for t, events in grouped.items()}
    callers: list[str] = []  # the caller's tenant setting, once a statement had to change it
    signers: list[SigningKey] = []

    def active() -> SigningKey:
        """The signing key, looked up once for the whole call (the lookup checks the key folder)."""
        if not signers:
            signers.append(keys.active())
        return signers[0]

    async def act_as(tenant_id: uuid.UUID) -> None:
        [(replaced, _)] = await bound.fetch(_ACT_AS, str(tenant_id))
        if not callers:
            callers.append(replaced or "")

    person_pairs = [(t, h) for t, p in prepared.items() for h in sorted(set(p.hashes.values()))]
    planned: dict[uuid.UUID, _Planned] = {}
    for tenant_id, key_hashes, secrets, raw in await bound.fetch(
        _STATES_MANY, list(prepared), [t for t, _ in person_pairs], [h for _, h in person_pairs]
    ):
        state = _STATES.get(tenant_id, raw)
        known = dict(zip(key_hashes, map(bytes, secrets), strict=True))
        planned[tenant_id] = await _plan(
            bound, active, pepper, prepared[tenant_id], known, state, ruleset, act_as=act_as
        )
    if len(planned) != len(prepared):  # pragma: no cover - the function returns a row per tenant
        raise LedgerDamaged("the compliance state of some tenants was not read")
    results = {t: AppendResult(skipped_events=p.skipped_events) for t, p in planned.items() if not p.drafts}
    writing = {t: p for t, p in planned.items() if p.drafts}
    if not writing:
        if callers:
            await bound.execute(_RESTORE, callers[0])
        return ManyAppended(results, None)
    event_pairs = [(t, e.event_id) for t in writing for e in prepared[t].events]
    heads = await bound.fetch(
        _LOCK_HEADS, list(writing), [t for t, _ in event_pairs], [e for _, e in event_pairs]
    )
    recorded_at = clock()
    tenants: list[str] = []
    texts: list[str] = []
    for tenant_id, head_seq, head_hash, events_seen, controls_seen in heads:
        opened = _Opened(
            state=None,
            keys={},
            seq=int(head_seq) if head_seq is not None else 0,
            head=head_hash if head_hash is not None else GENESIS,
            seen=set(zip(events_seen or (), controls_seen or (), strict=True)),
        )
        chained = _link(writing[tenant_id], opened, recorded_at)
        results[tenant_id] = chained.result
        if chained.result.rows:
            await _checkpoint(bound, keys, tenant_id, chained, checkpoint_every, act_as=act_as)
            tenants.append(sql_literal(str(tenant_id)))
            texts.append(sql_literal(_rows_json(chained)))
    if len(results) != len(prepared):  # pragma: no cover - the function returns a row per tenant
        raise LedgerDamaged("the ledger heads of some tenants were not read")
    if not tenants:
        if callers:
            await bound.execute(_RESTORE, callers[0])
        return ManyAppended(results, None)
    insert = (
        f"SELECT compliance_insert_many(ARRAY[{','.join(tenants)}]::uuid[], ARRAY[{','.join(texts)}]::text[])"
    )
    if callers:  # the function restores the setting it finds: the caller's, first
        insert = f"SELECT set_config('app.tenant_id', {sql_literal(callers[0])}, true); {insert}"
    return ManyAppended(results, insert)


class _States:
    """Tenants' compliance states as last built, keyed by the JSON text they were built from
    (`compliance_states_many`): the same text is the same state, so it is built once, not per claim."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._states: dict[uuid.UUID, tuple[str | None, TenantCompliance]] = {}

    def get(self, tenant_id: uuid.UUID, raw: str | None) -> TenantCompliance:
        known = self._states.get(tenant_id)
        if known is not None and known[0] == raw:
            return known[1]
        state = state_from_row(tenant_id, _state_row(raw))
        self._states.pop(tenant_id, None)
        if len(self._states) >= self.limit:
            del self._states[next(iter(self._states))]
        self._states[tenant_id] = (raw, state)
        return state


def _state_row(raw: str | None) -> dict[str, Any] | None:
    """`STATE_SQL`'s row from its JSON text (`compliance_states_many`): its one timestamp parsed back."""
    if raw is None:
        return None
    row: dict[str, Any] = orjson.loads(raw)
    if isinstance(row.get("created_at"), str):
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


_STATES = _States()


def checkpoint_document(
    tenant_id: uuid.UUID, tree_size: int, root_hash: str, issued_at: datetime, key_id: str | None
) -> dict[str, Any]:
    return {
        "type": CHECKPOINT_TYPE,
        "tenant_id": str(tenant_id),
        "tree_size": tree_size,
        "root_hash": root_hash,
        "issued_at": iso(issued_at),
        "key_id": key_id,
    }


async def head_size(session: AsyncSession | driver.Bound, tenant_id: uuid.UUID) -> int:
    found = await driver.fetch(session, _HEAD_SIZE, tenant_id)
    return int(found[0][0]) if found else 0


_HEAD_SIZE = "SELECT seq FROM compliance_evidence WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1"
_LEAVES = (
    "SELECT entry_hash FROM compliance_evidence WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq"
)
_CHECKPOINT_AT_MOST = (
    "SELECT tree_size, root_hash, frontier, issued_at, key_id, signature FROM compliance_checkpoints"
    " WHERE tenant_id = $1 AND tree_size <= $2 ORDER BY tree_size DESC LIMIT 1"
)
_INSERT_CHECKPOINT = (
    "INSERT INTO compliance_checkpoints"
    " (tenant_id, tree_size, root_hash, frontier, issued_at, key_id, signature)"
    " VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7)"
)


async def leaf_hashes(
    session: AsyncSession | driver.Bound, tenant_id: uuid.UUID, after: int, upto: int
) -> list[bytes]:
    """Entry hashes of rows `after < seq <= upto`, in order."""
    return [bytes.fromhex(r[0]) for r in await driver.fetch(session, _LEAVES, tenant_id, after, upto)]


async def latest_checkpoint(
    session: AsyncSession, tenant_id: uuid.UUID, *, at_most: int | None = None
) -> Checkpoint | None:
    query = select(Checkpoint).where(Checkpoint.tenant_id == tenant_id)
    if at_most is not None:
        query = query.where(Checkpoint.tree_size <= at_most)
    return await session.scalar(query.order_by(Checkpoint.tree_size.desc()).limit(1))


async def issue_checkpoint(
    session: AsyncSession | driver.Bound,
    keys: KeyStore,
    tenant_id: uuid.UUID,
    *,
    size: int | None = None,
    sign: bool = True,
) -> Checkpoint:
    """A signed Merkle root over the first `size` rows (default: all); an existing one is reused."""
    bound = await driver.bind(session)
    if size is None:
        size = await head_size(bound, tenant_id)
    if size < 1:
        raise NotFound("The ledger has no evidence yet, so there is nothing to checkpoint.")
    base = await bound.fetch_one(_CHECKPOINT_AT_MOST, tenant_id, size)
    if base is not None and base["tree_size"] == size:
        return Checkpoint(tenant_id=tenant_id, **base)
    frontier = await _extend_checkpoint(bound, tenant_id, base, size)
    return await _sign_checkpoint(bound, keys, tenant_id, frontier, sign=sign)


async def _sign_checkpoint(
    bound: driver.Bound, keys: KeyStore, tenant_id: uuid.UUID, frontier: merkle.Frontier, *, sign: bool
) -> Checkpoint:
    """Signs and stores the checkpoint of the tree `frontier` describes."""
    size = merkle.frontier_size(frontier)
    issued_at = datetime.now(UTC)
    signer = keys.active() if sign else None
    root_hex = merkle.frontier_root(frontier).hex()
    document = checkpoint_document(tenant_id, size, root_hex, issued_at, signer.key_id if signer else None)
    checkpoint = Checkpoint(
        tenant_id=tenant_id,
        tree_size=size,
        root_hash=root_hex,
        frontier=[[s, h.hex()] for s, h in frontier],
        issued_at=issued_at,
        key_id=signer.key_id if signer else None,
        signature=signer.sign(canonical(document)).hex() if signer else None,
    )
    await bound.execute(
        _INSERT_CHECKPOINT,
        tenant_id,
        size,
        root_hex,
        orjson.dumps(checkpoint.frontier).decode(),
        issued_at,
        checkpoint.key_id,
        checkpoint.signature,
    )
    return checkpoint


async def _frontier_from_table(bound: driver.Bound, tenant_id: uuid.UUID, size: int) -> merkle.Frontier:
    """The Merkle frontier of the first `size` rows: the last checkpoint's, extended by the rows since."""
    base = await bound.fetch_one(_CHECKPOINT_AT_MOST, tenant_id, size)
    return await _extend_checkpoint(bound, tenant_id, base, size)


async def _extend_checkpoint(
    bound: driver.Bound, tenant_id: uuid.UUID, base: dict[str, Any] | None, size: int
) -> merkle.Frontier:
    """The frontier of checkpoint row `base` (None: the empty tree) extended to the first `size` rows.

    Rows this transaction just wrote are visible to it: the leaves come from the table either way.
    """
    frontier: merkle.Frontier = (
        [(int(s), bytes.fromhex(h)) for s, h in base["frontier"]] if base is not None else []
    )
    start = base["tree_size"] if base is not None else 0
    frontier = merkle.extend(frontier, await leaf_hashes(bound, tenant_id, start, size))
    if merkle.frontier_size(frontier) != size:
        raise LedgerDamaged(
            f"checkpoint at {size} found {merkle.frontier_size(frontier)} rows: rows are missing"
        )
    return frontier


class _Trees:
    """Each tenant's Merkle frontier as this process last extended it, keyed by the chain head it ends at.

    The head's entry hash commits to every row before it (each names the previous one's hash), so a
    frontier whose size and last leaf match the head read under the tenant's lock is the frontier of
    the stored ledger. Otherwise (another process wrote since, or the transaction that extended it
    rolled back) it is not used: the next checkpoint reads the table as before.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._trees: dict[uuid.UUID, tuple[int, str, merkle.Frontier]] = {}

    def frontier(self, tenant_id: uuid.UUID, size: int, head: str) -> merkle.Frontier | None:
        known = self._trees.get(tenant_id)
        if size == 0:
            return []
        if known is None or known[0] != size or known[1] != head:
            return None
        return known[2]

    def keep(self, tenant_id: uuid.UUID, size: int, head: str, frontier: merkle.Frontier) -> None:
        self._trees.pop(tenant_id, None)
        if len(self._trees) >= self.limit:
            del self._trees[next(iter(self._trees))]
        self._trees[tenant_id] = (size, head, frontier)


_TREES = _Trees()


@dataclass(frozen=True, slots=True)
class InclusionProof:
    seq: int
    leaf_hash: str
    tree_size: int
    path: list[str]
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old: Checkpoint
    new: Checkpoint
    path: list[str]


async def inclusion_proof(
    session: AsyncSession, keys: KeyStore, tenant_id: uuid.UUID, seq: int, *, tree_size: int | None = None
) -> InclusionProof:
    """The audit path of row `seq` in the tree of a signed checkpoint (the newest covering it by default)."""
    checkpoint = (
        await session.get(Checkpoint, (tenant_id, tree_size))
        if tree_size is not None
        else await latest_checkpoint(session, tenant_id)
    )
    if checkpoint is None or checkpoint.tree_size < seq:
        state = await load_state(session, tenant_id)
        if tree_size is not None:
            raise NotFound(f"There is no checkpoint at tree size {tree_size}.", field="tree_size")
        checkpoint = await issue_checkpoint(session, keys, tenant_id, sign=state.signs)
    if not 1 <= seq <= checkpoint.tree_size:
        raise NotFound(f"Evidence {seq} is not in the checkpointed ledger.", field="seq")
    leaves = await leaf_hashes(session, tenant_id, 0, checkpoint.tree_size)
    path = merkle.inclusion_proof(leaves, seq - 1)
    return InclusionProof(
        seq, leaves[seq - 1].hex(), checkpoint.tree_size, [p.hex() for p in path], checkpoint
    )


async def consistency_proof(
    session: AsyncSession, tenant_id: uuid.UUID, old_size: int, new_size: int
) -> ConsistencyProof:
    """Proof that the checkpoint at `new_size` extends the one at `old_size` without rewriting it."""
    old = await session.get(Checkpoint, (tenant_id, old_size))
    new = await session.get(Checkpoint, (tenant_id, new_size))
    if old is None or new is None:
        raise NotFound(
            "Both sizes must name existing checkpoints.", field="old_size" if old is None else "new_size"
        )
    if old_size > new_size:
        raise NotFound("The old checkpoint must not be larger than the new one.", field="old_size")
    leaves = await leaf_hashes(session, tenant_id, 0, new_size)
    path = merkle.consistency_proof(leaves, old_size) if old_size < new_size else []
    return ConsistencyProof(old, new, [p.hex() for p in path])
