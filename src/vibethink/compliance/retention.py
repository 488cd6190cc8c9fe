"""Evidence retention: content past the tenant's retention is pruned, the ledger stays verifiable.

A pruning keeps each expired row's sequence number, chain link, entry hash, key id and signature —
what the hash chain, the signatures and the Merkle tree rest on — and empties the rest (event,
observation, artifacts, pseudonyms, times). It is one signed document naming the ranges it covers,
their count and the SHA-256 of their entry hashes; `compliance_prune_evidence` (SECURITY DEFINER)
checks it against the rows and the tenant's retention and is the only path that may empty a row.
The offline verifier accepts an emptied row only when a pruning in the export covers it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import ledger
from vibethink.compliance.canonical import canonical
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.models import Pruning
from vibethink.compliance.state import TenantCompliance, load_state
from vibethink.compliance.verify import PRUNING_TYPE
from vibethink.core import audit, outbox
from vibethink.core.database import Database, RlsContext

log = logging.getLogger(__name__)
EVENT = "COMPLIANCE_EVIDENCE_PRUNED"
# Rows one pruning covers at most: a big backlog is pruned in several transactions of this size.
DEFAULT_BATCH = 50_000


async def lock_prunings(session: AsyncSession, tenant_id: uuid.UUID, *, shared: bool = False) -> None:
    """Prunings of a tenant take this lock alone; an export shares it, so it sees no half-pruned ledger."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await session.execute(
        text(f"SELECT {function}(hashtextextended(:key, 0))"), {"key": f"compliance-retention:{tenant_id}"}
    )


def retention_years(state: TenantCompliance) -> int:
    """The tenant's setting, capped by what its plan keeps (a downgraded plan keeps less)."""
    return min(state.retention_years, state.limits.retention_years)


def ranges_of(seqs: Sequence[int]) -> list[list[int]]:
    """Ascending sequence numbers as [first, last] runs: [1, 2, 3, 7] → [[1, 3], [7, 7]]."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs


def entries_digest(entry_hashes: Sequence[str]) -> str:
    """SHA-256 over the raw entry hashes, in sequence order: what a pruning's signature binds."""
    digest = hashlib.sha256()
    for h in entry_hashes:
        digest.update(bytes.fromhex(h))
    return digest.hexdigest()


def pruning_document(
    *,
    tenant_id: uuid.UUID,
    number: int,
    pruned_at: datetime,
    cutoff: datetime,
    retention_years: int,
    ranges: list[list[int]],
    records: int,
    entries_sha256: str,
    tree_size: int,
    key_id: str | None,
) -> dict[str, Any]:
    """The signed statement of a pruning (used by the pruner and the exporter alike)."""
    return {
        "type": PRUNING_TYPE,
        "tenant_id": str(tenant_id),
        "number": number,
        "pruned_at": ledger.iso(pruned_at),
        "cutoff": ledger.iso(cutoff),
        "retention_years": retention_years,
        "ranges": [[int(a), int(b)] for a, b in ranges],
        "records": records,
        "entries_sha256": entries_sha256,
        "tree_size": tree_size,
        "key_id": key_id,
    }


def document_of(pruning: Pruning) -> dict[str, Any]:
    return pruning_document(
        tenant_id=pruning.tenant_id,
        number=pruning.number,
        pruned_at=pruning.pruned_at,
        cutoff=pruning.cutoff,
        retention_years=pruning.retention_years,
        ranges=pruning.ranges,
        records=pruning.records,
        entries_sha256=pruning.entries_sha256,
        tree_size=pruning.tree_size,
        key_id=pruning.key_id,
    )


@dataclass(frozen=True, slots=True)
class Pruned:
    tenant_id: uuid.UUID
    number: int
    records: int
    notes: int
    first_seq: int
    last_seq: int
    cutoff: datetime
    retention_years: int


_EXPIRED = text(
    """
    SELECT seq, entry_hash, key_id FROM compliance_evidence
     WHERE tenant_id = :t AND pruned_in IS NULL AND recorded_at < :cutoff
       AND greatest(occurred_at, period_end, recorded_at) < :cutoff
     ORDER BY seq
     LIMIT :batch
    """
)


async def prune_expired(
    session: AsyncSession,
    keys: KeyStore,
    tenant_id: uuid.UUID,
    *,
    state: TenantCompliance | None = None,
    batch: int = DEFAULT_BATCH,
) -> Pruned | None:
    """Prunes up to `batch` of the tenant's expired rows in the caller's transaction; None when none are.

    A row has expired when the moment it happened, the end of the period it covers and when it was
    recorded are all older than the retention. Run again, it finds nothing more to prune.
    """
    state = state or await load_state(session, tenant_id)
    years = retention_years(state)
    await lock_prunings(session, tenant_id)
    await ledger.lock_tenant(session, tenant_id)
    # The database's clock: the pruning function checks the cutoff against the same `now()`.
    now, cutoff = (
        await session.execute(text("SELECT now(), now() - make_interval(years => :years)"), {"years": years})
    ).one()
    rows = (await session.execute(_EXPIRED, {"t": tenant_id, "cutoff": cutoff, "batch": max(1, batch)})).all()
    if not rows:
        return None
    number = (
        int(
            await session.scalar(
                select(func.coalesce(func.max(Pruning.number), 0)).where(Pruning.tenant_id == tenant_id)
            )
            or 0
        )
        + 1
    )
    ranges = ranges_of([int(r.seq) for r in rows])
    # Signed whenever the tenant signs or any pruned row was signed: a signed row is only ever
    # emptied by a statement the platform's key vouches for.
    signer = keys.active() if state.signs or any(r.key_id for r in rows) else None
    document = pruning_document(
        tenant_id=tenant_id,
        number=number,
        pruned_at=now,
        cutoff=cutoff,
        retention_years=years,
        ranges=ranges,
        records=len(rows),
        entries_sha256=entries_digest([r.entry_hash for r in rows]),
        tree_size=await ledger.head_size(session, tenant_id),
        key_id=signer.key_id if signer else None,
    )
    signature = signer.sign(canonical(document)).hex() if signer else None
    result = (
        await session.execute(
            text(
                "SELECT pruned_records, removed_notes"
                " FROM compliance_prune_evidence(CAST(:doc AS jsonb), :key_id, :signature)"
            ),
            {"doc": json.dumps(document), "key_id": document["key_id"], "signature": signature},
        )
    ).one()
    pruned = Pruned(
        tenant_id=tenant_id,
        number=number,
        records=int(result.pruned_records),
        notes=int(result.removed_notes),
        first_seq=ranges[0][0],
        last_seq=ranges[-1][1],
        cutoff=cutoff,
        retention_years=years,
    )
    payload = {
        "pruning": number,
        "records": pruned.records,
        "notes": pruned.notes,
        "first_seq": pruned.first_seq,
        "last_seq": pruned.last_seq,
        "ranges": len(ranges),
        "cutoff": ledger.iso(cutoff),
        "retention_years": years,
        "signed": signer is not None,
    }
    await outbox.emit(
        session,
        EVENT,
        tenant_id=tenant_id,
        actor_role="SYSTEM",
        subject_type="compliance_pruning",
        subject_id=str(number),
        payload=payload,
    )
    await audit.record(
        session,
        EVENT,
        tenant_id=tenant_id,
        actor_user_id=None,
        actor_role="SYSTEM",
        subject_type="compliance_pruning",
        subject_id=str(number),
        details=payload,
    )
    return pruned


async def due_tenants(db: Database) -> list[uuid.UUID]:
    """Tenants whose oldest live evidence is past their retention (read across tenants)."""
    async with db.transaction(RlsContext(role="SYSTEM")) as session:
        rows = (await session.execute(text("SELECT tenant_id FROM compliance_retention_due()"))).all()
    return [r.tenant_id for r in rows]


async def purge(
    db: Database,
    keys: KeyStore,
    *,
    tenant_ids: Sequence[uuid.UUID] | None = None,
    batch: int = DEFAULT_BATCH,
    max_batches: int = 100,
) -> list[Pruned]:
    """Prunes every due tenant's expired evidence (or these tenants'), one transaction per batch.

    Safe with several runners at once: a tenant's prunings take its ledger lock, and a runner that
    waited for it finds the rows already pruned.
    """
    done: list[Pruned] = []
    for tenant_id in tenant_ids if tenant_ids is not None else await due_tenants(db):
        for _ in range(max_batches):
            try:
                async with db.transaction(RlsContext(tenant_id=tenant_id, role="SYSTEM")) as session:
                    pruned = await prune_expired(session, keys, tenant_id, batch=batch)
            except Exception:
                log.exception("retention purge of tenant %s failed; it is retried next run", tenant_id)
                break
            if pruned is None:
                break
            log.info(
                "tenant %s: pruning %d emptied %d expired evidence records (%d..%d, %d notes)",
                tenant_id,
                pruned.number,
                pruned.records,
                pruned.first_seq,
                pruned.last_seq,
                pruned.notes,
            )
            done.append(pruned)
            if pruned.records < batch:
                break
    return done
