"""The evidence ledger: events become signed, hash-chained rows, and signed Merkle checkpoints rest on them.

Each row's *document* (every column but its hash and signature) is canonical JSON (RFC 8785); its
entry hash is the RFC 6962 leaf hash `SHA-256(0x00 || document)`, the document names the previous
row's entry hash, and the signature is Ed25519 over the entry hash. Writers of one tenant take a
transaction-scoped advisory lock, so sequence numbers are gapless and the chain has no forks.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import merkle, pseudonyms
from vibethink.compliance.canonical import canonical, canonical_record
from vibethink.compliance.keys import KeyStore, SigningKey
from vibethink.compliance.models import Checkpoint, Evidence
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
from vibethink.compliance.state import TenantCompliance, load_state
from vibethink.core.errors import NotFound

RECORD_FORMAT = 1
# Core insert on the table: a bulk of plain rows, without the ORM's unit-of-work machinery.
EVIDENCE_TABLE: Table = Evidence.__table__  # type: ignore[assignment]
CHECKPOINT_TABLE: Table = Checkpoint.__table__  # type: ignore[assignment]
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
        return hashlib.sha256(canonical(body)).hexdigest()


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


def entry_hash_of(document: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical_record(document, free_form=("observation", "artifacts")))


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


async def lock_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Serialises everything that changes the tenant's ledger (appends, prunings) until commit."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"compliance:{tenant_id}"},
    )


async def _lock_and_head(
    session: AsyncSession, tenant_id: uuid.UUID, event_ids: Sequence[uuid.UUID]
) -> tuple[int, str, set[tuple[uuid.UUID, str]]]:
    """Serialises the tenant's writers, then reads the chain's head and which (event, control) exist."""
    await lock_tenant(session, tenant_id)
    rows = (
        await session.execute(
            text(
                "(SELECT 'head' AS k, seq, entry_hash, NULL::uuid AS event_id, NULL::varchar AS control_id"
                "   FROM compliance_evidence WHERE tenant_id = :t ORDER BY seq DESC LIMIT 1)"
                " UNION ALL"
                " SELECT 'seen', NULL, NULL, event_id, control_id FROM compliance_evidence"
                "  WHERE tenant_id = :t AND event_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"t": tenant_id, "ids": list(event_ids)},
        )
    ).all()
    seq, head = 0, GENESIS
    seen: set[tuple[uuid.UUID, str]] = set()
    for r in rows:
        if r.k == "head":
            seq, head = int(r.seq), r.entry_hash
        else:
            seen.add((r.event_id, r.control_id))
    return seq, head, seen


async def append(
    session: AsyncSession,
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
    `clock` says when the rows are recorded (tests of retention move it years back).
    """
    result = AppendResult()
    events = [
        replace(
            e,
            payload=clean(e.payload),
            actor_ref=clean_text(e.actor_ref) if e.actor_ref else None,
        )
        for e in events
    ]
    state = state or await load_state(session, tenant_id)
    ruleset = ruleset or load_rules()
    wanted = [e for e in events if e.source != Source.PLATFORM or state.generates_automatically]
    result.skipped_events = len(events) - len(wanted)
    relevant = state.relevant_controls()
    facts = [EventFacts(e.event_type, e.payload, e.actor_user_id, e.actor_ref) for e in wanted]
    people: set[str] = set()
    for f in facts:
        people |= people_of(ruleset, f)
        if f.actor_ref:
            people.add(f.actor_ref)
    names = await pseudonyms.resolve(session, pepper, tenant_id, people)

    def pseudonym(identifier: str) -> str:
        return names.get(identifier) or names[identifier.strip()]

    planned: list[tuple[IncomingEvent, Observation]] = []
    for event, f in zip(wanted, facts, strict=True):
        if f.actor_ref:
            f = EventFacts(f.event_type, f.payload, f.actor_user_id, pseudonym(f.actor_ref))
        for observation in evaluate(ruleset, f, pseudonym):
            if observation.control_id in relevant:
                planned.append((event, observation))
    if not planned:
        return result
    seq, prev_hash, seen = await _lock_and_head(session, tenant_id, [e.event_id for e, _ in planned])
    signer: SigningKey | None = keys.active() if state.signs else None
    recorded_at = clock()
    event_hashes: dict[uuid.UUID, str] = {}
    for event, observation in planned:
        if (event.event_id, observation.control_id) in seen:
            continue
        seen.add((event.event_id, observation.control_id))
        seq += 1
        start, end = _period(event)
        row: dict[str, Any] = {
            "tenant_id": tenant_id,
            "seq": seq,
            "prev_seq": seq - 1 if seq > 1 else None,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "source": event.source,
            "event_hash": event_hashes.get(event.event_id)
            or event_hashes.setdefault(event.event_id, event.event_hash()),
            "control_id": observation.control_id,
            "rule_id": observation.rule.id,
            "rule_version": observation.rule.version,
            "kind": observation.kind.value,
            "outcome": observation.outcome.value,
            "occurred_at": event.occurred_at,
            "period_start": start,
            "period_end": end,
            "recorded_at": recorded_at,
            "observation": observation.document(),
            "artifacts": list(observation.artifacts),
            "prev_hash": prev_hash,
            "key_id": signer.key_id if signer else None,
        }
        digest = entry_hash_of(record_document(row))
        row["entry_hash"] = digest.hex()
        row["signature"] = signer.sign(digest).hex() if signer else None
        prev_hash = row["entry_hash"]
        result.rows.append(row)
    if not result.rows:
        return result
    await session.execute(insert(EVIDENCE_TABLE), result.rows)
    first = result.rows[0]["seq"]
    if (first - 1) // checkpoint_every != seq // checkpoint_every:
        boundary = seq // checkpoint_every * checkpoint_every
        result.checkpoint = await issue_checkpoint(session, keys, tenant_id, size=boundary, sign=state.signs)
    return result


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


async def head_size(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    found = await session.scalar(
        select(Evidence.seq).where(Evidence.tenant_id == tenant_id).order_by(Evidence.seq.desc()).limit(1)
    )
    return int(found or 0)


async def leaf_hashes(session: AsyncSession, tenant_id: uuid.UUID, after: int, upto: int) -> list[bytes]:
    """Entry hashes of rows `after < seq <= upto`, in order."""
    rows = await session.execute(
        select(Evidence.entry_hash)
        .where(Evidence.tenant_id == tenant_id, Evidence.seq > after, Evidence.seq <= upto)
        .order_by(Evidence.seq)
    )
    return [bytes.fromhex(h) for (h,) in rows]


async def latest_checkpoint(
    session: AsyncSession, tenant_id: uuid.UUID, *, at_most: int | None = None
) -> Checkpoint | None:
    query = select(Checkpoint).where(Checkpoint.tenant_id == tenant_id)
    if at_most is not None:
        query = query.where(Checkpoint.tree_size <= at_most)
    return await session.scalar(query.order_by(Checkpoint.tree_size.desc()).limit(1))


async def issue_checkpoint(
    session: AsyncSession,
    keys: KeyStore,
    tenant_id: uuid.UUID,
    *,
    size: int | None = None,
    sign: bool = True,
) -> Checkpoint:
    """A signed Merkle root over the first `size` rows (default: all); an existing one is reused."""
    size = size if size is not None else await head_size(session, tenant_id)
    if size < 1:
        raise NotFound("The ledger has no evidence yet, so there is nothing to checkpoint.")
    existing = await session.get(Checkpoint, (tenant_id, size))
    if existing is not None:
        return existing
    base = await latest_checkpoint(session, tenant_id, at_most=size)
    frontier: merkle.Frontier = (
        [(int(s), bytes.fromhex(h)) for s, h in base.frontier] if base is not None else []
    )
    start = base.tree_size if base is not None else 0
    # Rows this transaction just wrote are visible to it: the leaves come from the table either way.
    leaves = await leaf_hashes(session, tenant_id, start, size)
    frontier = merkle.extend(frontier, leaves)
    if merkle.frontier_size(frontier) != size:
        raise LedgerDamaged(
            f"checkpoint at {size} found {merkle.frontier_size(frontier)} rows: rows are missing"
        )
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
    values = {c.key: getattr(checkpoint, c.key) for c in CHECKPOINT_TABLE.columns}
    await session.execute(insert(CHECKPOINT_TABLE).values(**values))
    return checkpoint


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
