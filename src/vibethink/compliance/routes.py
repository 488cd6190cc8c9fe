"""Compliance API: catalog, settings, custom frameworks, events, evidence, proofs, keys, exports."""

from __future__ import annotations

import base64
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from vibethink.compliance import ledger, service
from vibethink.compliance.catalog import load_catalog
from vibethink.compliance.export import write_export
from vibethink.compliance.keys import key_store
from vibethink.compliance.models import Checkpoint, CustomFramework, Evidence, EvidenceNote
from vibethink.compliance.schemas import (
    CheckpointRead,
    ConsistencyProofRead,
    CustomFrameworkCreate,
    CustomFrameworkRead,
    ErasureRead,
    ErasureRequest,
    EvidenceRead,
    ExternalEventBatch,
    InclusionProofRead,
    NoteCreate,
    NoteRead,
    PublicKeyRead,
    RecordedEvidence,
    SettingsRead,
    SettingsUpdate,
    SubmissionRead,
)
from vibethink.compliance.state import TenantCompliance, load_state
from vibethink.core.errors import InvalidInput, NotFound
from vibethink.core.pagination import MAX_PAGE, Page
from vibethink.core.settings import Settings
from vibethink.tenancy.access import DbSession, Principal, require, settings_of
from vibethink.tenancy.permissions import Permission

router = APIRouter(prefix="/compliance", tags=["compliance"])

Reader = Annotated[Principal, Depends(require(Permission.COMPLIANCE_READ))]
Writer = Annotated[Principal, Depends(require(Permission.COMPLIANCE_WRITE))]
EventSender = Annotated[Principal, Depends(require(Permission.COMPLIANCE_EVENTS))]
PlatformSettings = Annotated[Settings, Depends(settings_of)]
Seq = Annotated[int, Query(ge=1, le=2**62)]
MAX_FRAMEWORK_FILE = 512 * 1024


def evidence_read(row: Evidence, state: TenantCompliance) -> EvidenceRead:
    catalog = load_catalog()
    pairs = state.frameworks_for_control(row.control_id)
    control = catalog.controls.get(row.control_id)
    return EvidenceRead(
        seq=row.seq,
        event_id=row.event_id,
        event_type=row.event_type,
        source=row.source,
        control_id=row.control_id,
        control_title=control.title if control else row.control_id,
        frameworks=sorted({f for f, _ in pairs}),
        requirements=[f"{f} {r}" for f, r in pairs],
        rule=f"{row.rule_id}@v{row.rule_version}",
        kind=row.kind,
        outcome=row.outcome,
        occurred_at=row.occurred_at,
        period_start=row.period_start,
        period_end=row.period_end,
        recorded_at=row.recorded_at,
        observation=row.observation,
        artifacts=row.artifacts,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
        key_id=row.key_id,
        signature=row.signature,
    )


def checkpoint_read(cp: Checkpoint) -> CheckpointRead:
    return CheckpointRead(
        tree_size=cp.tree_size,
        root_hash=cp.root_hash,
        issued_at=cp.issued_at,
        key_id=cp.key_id,
        signature=cp.signature,
    )


def custom_read(framework: CustomFramework) -> CustomFrameworkRead:
    return CustomFrameworkRead(
        id=framework.id,
        code=framework.code,
        name=framework.name,
        description=framework.description,
        requirements=framework.requirements,
        created_at=framework.created_at,
    )


def note_read(note: EvidenceNote) -> NoteRead:
    return NoteRead(
        id=note.id,
        evidence_seq=note.evidence_seq,
        author=note.author,
        note=note.note,
        note_hash=note.note_hash,
        created_at=note.created_at,
    )


@router.get("/catalog/frameworks")
async def list_frameworks(principal: Reader) -> list[dict[str, Any]]:
    return [
        {
            "framework": f.code,
            "name": f.name,
            "edition": f.edition,
            "catalog_version": f.catalog_version,
            "licence": {"holder": f.licence.holder, "text": f.licence.text.value, "note": f.licence.note},
            "groups": len(f.groups),
            "requirements": len(f.requirements),
            "sha256": f.source_sha256,
        }
        for f in load_catalog().frameworks.values()
    ]


@router.get("/catalog/frameworks/{code}")
async def get_framework(code: str, principal: Reader) -> dict[str, Any]:
    framework = load_catalog().frameworks.get(code)
    if framework is None:
        raise NotFound("No such framework in the catalog.")
    catalog = load_catalog()
    return {
        "framework": framework.code,
        "name": framework.name,
        "edition": framework.edition,
        "licence": {"holder": framework.licence.holder, "text": framework.licence.text.value},
        "groups": [
            {
                "id": g.id,
                "title": g.title,
                "requirements": [
                    {
                        "id": rid,
                        "title": framework.requirements[rid].title,
                        "controls": [
                            {"control": m.control_id, "relationship": m.relationship.value}
                            for m in catalog.mappings_for_requirement(code, rid)
                        ],
                    }
                    for rid in g.requirement_ids
                ],
            }
            for g in framework.groups
        ],
    }


@router.get("/catalog/controls")
async def list_controls(principal: Reader) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "title": c.title,
            "description": c.description,
            "priority": c.priority.value,
            "freshness_days": c.freshness_days,
            "mappings": [
                {
                    "framework": m.framework,
                    "requirement": m.requirement_id,
                    "relationship": m.relationship.value,
                }
                for m in c.mappings
            ],
        }
        for c in load_catalog().controls.values()
    ]


@router.get("/settings")
async def get_settings(principal: Reader, session: DbSession) -> SettingsRead:
    state = await service.guarded_state(session, principal, write=False)
    return await service.settings_read(session, state)


@router.patch("/settings")
async def update_settings(body: SettingsUpdate, principal: Writer, session: DbSession) -> SettingsRead:
    state = await service.update_settings(session, principal, body)
    return await service.settings_read(session, state)


@router.get("/custom-frameworks")
async def list_custom_frameworks(principal: Reader, session: DbSession) -> Page[CustomFrameworkRead]:
    found = await service.list_custom_frameworks(session, principal)
    return Page[CustomFrameworkRead](items=[custom_read(f) for f in found], next_cursor=None)


@router.post("/custom-frameworks", status_code=201)
async def create_custom_framework(
    body: CustomFrameworkCreate, principal: Writer, session: DbSession
) -> CustomFrameworkRead:
    return custom_read(await service.create_custom_framework(session, principal, body))


@router.post(
    "/custom-frameworks/import",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
            "required": True,
        }
    },
)
async def import_custom_framework(
    request: Request, principal: Writer, session: DbSession
) -> CustomFrameworkRead:
    """A custom framework from a YAML or CSV file (form field `file`)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("Send the file as multipart/form-data in the field 'file'.", field="file")
    async with request.form(max_files=1, max_fields=5) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Attach the framework as the form field 'file'.", field="file")
        data = await upload.read(MAX_FRAMEWORK_FILE + 1)
        name = upload.filename or "framework.yaml"
    body = service.parse_framework_file(data, name)
    return custom_read(await service.create_custom_framework(session, principal, body))


@router.delete("/custom-frameworks/{framework_id}", status_code=204)
async def delete_custom_framework(framework_id: uuid.UUID, principal: Writer, session: DbSession) -> None:
    await service.delete_custom_framework(session, principal, framework_id)


@router.post("/events", status_code=201)
async def submit_events(
    body: ExternalEventBatch, principal: EventSender, session: DbSession, settings: PlatformSettings
) -> SubmissionRead:
    """Events from the tenant's own systems (CI deployments, trainings …) become evidence now."""
    result = await service.submit_events(
        session,
        principal,
        body,
        keys=key_store(settings),
        pepper=settings.secret_key.encode(),
        checkpoint_every=settings.compliance_checkpoint_every,
    )
    return SubmissionRead(
        accepted_events=len(body.events),
        evidence=[
            RecordedEvidence(
                seq=r["seq"],
                event_id=r["event_id"],
                event_type=r["event_type"],
                control_id=r["control_id"],
                outcome=r["outcome"],
                kind=r["kind"],
                entry_hash=r["entry_hash"],
            )
            for r in result.rows
        ],
    )


@router.get("/evidence")
async def list_evidence(
    principal: Reader,
    session: DbSession,
    control_id: Annotated[str | None, Query(max_length=40)] = None,
    event_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = service.DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[EvidenceRead]:
    page = await service.evidence_page(
        session, principal, control_id=control_id, event_id=event_id, cursor=cursor, limit=limit
    )
    state = await load_state(session, principal.tenant_id)
    return Page[EvidenceRead](
        items=[evidence_read(r, state) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/evidence/{seq}")
async def get_evidence(seq: int, principal: Reader, session: DbSession) -> EvidenceRead:
    if not 1 <= seq <= 2**62:
        raise NotFound("No such evidence.")
    row = await service.evidence(session, principal, seq)
    return evidence_read(row, await load_state(session, principal.tenant_id))


@router.get("/evidence/{seq}/notes")
async def list_notes(seq: int, principal: Reader, session: DbSession) -> Page[NoteRead]:
    if not 1 <= seq <= 2**62:
        raise NotFound("No such evidence.")
    return Page[NoteRead](items=[note_read(n) for n in await service.notes(session, principal, seq)])


@router.post("/evidence/{seq}/notes", status_code=201)
async def add_note(
    seq: int, body: NoteCreate, principal: Writer, session: DbSession, settings: PlatformSettings
) -> NoteRead:
    if not 1 <= seq <= 2**62:
        raise NotFound("No such evidence.")
    note = await service.add_note(session, principal, seq, body.note, pepper=settings.secret_key.encode())
    return note_read(note)


@router.get("/checkpoints")
async def list_checkpoints(
    principal: Reader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[CheckpointRead]:
    await service.guarded_state(session, principal, write=False)
    query = select(Checkpoint).where(Checkpoint.tenant_id == principal.tenant_id)
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 18:
            raise InvalidInput("The cursor is not valid.", field="cursor")
        query = query.where(Checkpoint.tree_size < int(cursor))
    rows = list((await session.scalars(query.order_by(Checkpoint.tree_size.desc()).limit(limit + 1))).all())
    items = rows[:limit]
    return Page[CheckpointRead](
        items=[checkpoint_read(c) for c in items],
        next_cursor=str(items[-1].tree_size) if len(rows) > limit and items else None,
    )


@router.post("/checkpoints", status_code=201)
async def issue_checkpoint(
    principal: Writer, session: DbSession, settings: PlatformSettings
) -> CheckpointRead:
    state = await service.guarded_state(session, principal, write=True)
    cp = await ledger.issue_checkpoint(session, key_store(settings), principal.tenant_id, sign=state.signs)
    return checkpoint_read(cp)


@router.get("/proofs/inclusion")
async def inclusion_proof(
    seq: Seq,
    principal: Reader,
    session: DbSession,
    settings: PlatformSettings,
    tree_size: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> InclusionProofRead:
    """RFC 9162 audit path of a record in a signed checkpoint's tree."""
    await service.guarded_state(session, principal, write=False)
    proof = await ledger.inclusion_proof(
        session, key_store(settings), principal.tenant_id, seq, tree_size=tree_size
    )
    return InclusionProofRead(
        seq=proof.seq,
        leaf_hash=proof.leaf_hash,
        tree_size=proof.tree_size,
        leaf_index=proof.seq - 1,
        audit_path=proof.path,
        checkpoint=checkpoint_read(proof.checkpoint),
    )


@router.get("/proofs/consistency")
async def consistency_proof(
    old_size: Seq, new_size: Seq, principal: Reader, session: DbSession
) -> ConsistencyProofRead:
    """RFC 9162 consistency proof between two signed checkpoints."""
    await service.guarded_state(session, principal, write=False)
    proof = await ledger.consistency_proof(session, principal.tenant_id, old_size, new_size)
    return ConsistencyProofRead(
        old=checkpoint_read(proof.old), new=checkpoint_read(proof.new), proof=proof.path
    )


@router.get("/keys")
async def public_keys(principal: Reader, settings: PlatformSettings) -> list[PublicKeyRead]:
    """Every public key the platform has signed evidence with (old ones stay after rotation)."""
    store = key_store(settings)
    active = store.active().key_id
    return [
        PublicKeyRead(key_id=k, public_key=base64.b64encode(v).decode(), active=k == active)
        for k, v in store.public_keys().items()
    ]


@router.get("/export", response_class=FileResponse)
async def export_ledger(principal: Reader, session: DbSession, settings: PlatformSettings) -> FileResponse:
    """The whole ledger as a .zip an auditor verifies offline with `vibethink compliance verify`."""
    await service.guarded_state(session, principal, write=False)
    folder = Path(tempfile.mkdtemp(prefix="vibethink-export-"))
    name = f"evidence-{principal.tenant_id}.zip"
    await write_export(session, key_store(settings), principal.tenant_id, folder / name)
    return FileResponse(
        folder / name,
        media_type="application/zip",
        filename=name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


@router.post("/erasure")
async def erase_people(
    body: ErasureRequest, principal: Writer, session: DbSession, settings: PlatformSettings
) -> ErasureRead:
    """Destroys the keys behind people's pseudonyms in evidence (GDPR erasure); the ledger is untouched."""
    erased = await service.erase_people(
        session, principal, body.identifiers, pepper=settings.secret_key.encode()
    )
    return ErasureRead(erased=erased)
