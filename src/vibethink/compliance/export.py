"""Ledger exports an auditor verifies offline: records, checkpoints with consistency proofs, notes, keys.

An export is a .zip with `manifest.json` (file hashes, the checkpoint it rests on, signed),
`evidence.jsonl`, `checkpoints.jsonl`, `notes.jsonl`, `prunings.jsonl`, `keys.json` and `VERIFY.txt`.
It is written from the database rows as they are, so anything changed behind the ledger's back
shows up in it. A row emptied by a retention pruning is written as its stub (`"pruned"` instead of
`"record"`: sequence number, chain link, pruning number) with its entry hash and signature.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import ledger, merkle, retention
from vibethink.compliance.canonical import canonical
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.models import Checkpoint, Evidence, EvidenceNote, Pruning
from vibethink.compliance.state import load_state
from vibethink.compliance.verify import EXPORT_FORMAT

STREAM_BATCH = 5000
VERIFY_TEXT = """How to verify this export (no access to the platform needed)

1. Install the VibeThink package (pip install vibethink) on any machine.
2. Obtain the platform's public keys from the operator independently of this file
   (GET /api/v1/compliance/keys, or the operator's published keys.json).
3. Run:  vibethink compliance verify THIS_FILE.zip --trusted-keys keys.json

The verifier checks the file hashes and signature of manifest.json; for every record in
evidence.jsonl, that its content hashes to its entry hash (RFC 8785 canonical JSON, RFC 6962 leaf
hash), that its Ed25519 signature verifies, that sequence numbers have no gap and that each record
names the previous record's entry hash; for every record past the retention whose content was
pruned, that a signed pruning in prunings.jsonl covers it (its signature over the entry hash and
its place in the chain and the Merkle tree are still checked); for every checkpoint, its
signature, its Merkle root over the records it covers and the consistency proof from the previous
checkpoint; and the hash of each reviewer note. It names the first bad record and exits with
status 1 when anything fails.
"""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    tenant_id: uuid.UUID
    tree_size: int
    root_hash: str
    sha256: str


class _HashingWriter:
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.digest.update(data)
        self.size += len(data)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _line(item: dict[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def evidence_line(document: dict[str, Any], entry_hash: str, signature: str | None) -> bytes:
    """One line of evidence.jsonl: the record as its RFC 8785 bytes (the very bytes its entry hash
    covers, so a verifier can hash them as they stand), then its entry hash and signature."""
    return b"".join(
        (
            b'{"record":',
            ledger.record_bytes(document),
            b',"entry_hash":',
            orjson.dumps(entry_hash),
            b',"signature":',
            orjson.dumps(signature),
            b"}\n",
        )
    )


def evidence_row(row: Evidence) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in Evidence.__table__.columns}


def export_line(row: Evidence) -> bytes:
    """A record's line of evidence.jsonl, or the stub a retention pruning left of it."""
    if row.pruned_in is not None:
        return _line(
            {
                "pruned": {
                    "tenant_id": str(row.tenant_id),
                    "seq": row.seq,
                    "prev_hash": row.prev_hash,
                    "key_id": row.key_id,
                    "pruning": row.pruned_in,
                },
                "entry_hash": row.entry_hash,
                "signature": row.signature,
            }
        )
    return evidence_line(ledger.record_document(evidence_row(row)), row.entry_hash, row.signature)


def note_document(evidence_seq: int, author: str, note: str, created_at: datetime) -> dict[str, Any]:
    return {
        "evidence_seq": evidence_seq,
        "author": author,
        "note": note,
        "created_at": ledger.iso(created_at),
    }


async def write_export(
    session: AsyncSession, keys: KeyStore, tenant_id: uuid.UUID, destination: Path
) -> ExportSummary:
    """Writes the tenant's whole ledger to `destination` (.zip), after checkpointing its head."""
    state = await load_state(session, tenant_id)
    # Rows and prunings are read in several statements: no pruning may land between them.
    await retention.lock_prunings(session, tenant_id, shared=True)
    size = await ledger.head_size(session, tenant_id)
    head: Checkpoint | None = None
    if size:
        try:
            async with session.begin_nested():
                head = await ledger.issue_checkpoint(session, keys, tenant_id, size=size, sign=state.signs)
        except ledger.LedgerDamaged:
            # Export what is there anyway: the verifier will name what is missing.
            head = await ledger.latest_checkpoint(session, tenant_id, at_most=size)
    files: dict[str, dict[str, Any]] = {}
    leaves: list[bytes] = []
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("evidence.jsonl", "w", force_zip64=True) as raw:
            out = _HashingWriter(raw)
            after = 0
            while after < size:
                rows = (
                    await session.scalars(
                        select(Evidence)
                        .where(Evidence.tenant_id == tenant_id, Evidence.seq > after, Evidence.seq <= size)
                        .order_by(Evidence.seq)
                        .limit(STREAM_BATCH)
                    )
                ).all()
                if not rows:
                    break
                for row in rows:
                    leaves.append(bytes.fromhex(row.entry_hash))
                    out.write(export_line(row))
                after = rows[-1].seq
                session.expunge_all()
            files["evidence.jsonl"] = {"sha256": out.digest.hexdigest(), "bytes": out.size}
        checkpoints = (
            await session.scalars(
                select(Checkpoint)
                .where(Checkpoint.tenant_id == tenant_id, Checkpoint.tree_size <= size)
                .order_by(Checkpoint.tree_size)
            )
        ).all()
        with archive.open("checkpoints.jsonl", "w") as raw:
            out = _HashingWriter(raw)
            previous: Checkpoint | None = None
            for cp in checkpoints:
                document = ledger.checkpoint_document(
                    tenant_id, cp.tree_size, cp.root_hash, cp.issued_at, cp.key_id
                )
                item: dict[str, Any] = {"checkpoint": document, "signature": cp.signature}
                if previous is not None and cp.tree_size <= len(leaves):
                    proof = merkle.consistency_proof(leaves[: cp.tree_size], previous.tree_size)
                    item["consistency_proof"] = [p.hex() for p in proof]
                out.write(_line(item))
                previous = cp
            files["checkpoints.jsonl"] = {"sha256": out.digest.hexdigest(), "bytes": out.size}
        notes = (
            await session.scalars(
                select(EvidenceNote)
                .where(EvidenceNote.tenant_id == tenant_id, EvidenceNote.evidence_seq <= size)
                .order_by(EvidenceNote.created_at, EvidenceNote.id)
            )
        ).all()
        with archive.open("notes.jsonl", "w") as raw:
            out = _HashingWriter(raw)
            for note in notes:
                body = note_document(note.evidence_seq, note.author, note.note, note.created_at)
                out.write(_line({**body, "note_hash": note.note_hash}))
            files["notes.jsonl"] = {"sha256": out.digest.hexdigest(), "bytes": out.size}
        prunings = (
            await session.scalars(
                select(Pruning).where(Pruning.tenant_id == tenant_id).order_by(Pruning.number)
            )
        ).all()
        with archive.open("prunings.jsonl", "w") as raw:
            out = _HashingWriter(raw)
            for pruning in prunings:
                out.write(_line({"pruning": retention.document_of(pruning), "signature": pruning.signature}))
            files["prunings.jsonl"] = {"sha256": out.digest.hexdigest(), "bytes": out.size}
        public = {k: base64.b64encode(v).decode() for k, v in keys.public_keys().items()}
        keys_bytes = json.dumps({"keys": public}, indent=2, sort_keys=True).encode()
        archive.writestr("keys.json", keys_bytes)
        files["keys.json"] = {"sha256": hashlib.sha256(keys_bytes).hexdigest(), "bytes": len(keys_bytes)}
        archive.writestr("VERIFY.txt", VERIFY_TEXT)
        signer = keys.active() if state.signs else None
        manifest: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "tenant_id": str(tenant_id),
            "generated_at": ledger.iso(datetime.now(UTC)),
            "tree_size": size,
            "checkpoint": (
                {"tree_size": head.tree_size, "root_hash": head.root_hash} if head is not None else None
            ),
            "files": files,
            "key_id": signer.key_id if signer else None,
        }
        if signer is not None:
            manifest["signature"] = signer.sign(canonical(manifest)).hex()
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    digest = await asyncio.to_thread(_file_sha256, destination)
    return ExportSummary(
        destination, tenant_id, size, head.root_hash if head else merkle.EMPTY_ROOT.hex(), digest
    )
