"""Compliance API: catalog, settings, custom frameworks, events, evidence, proofs, keys, exports."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import uuid
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from vibethink.compliance import ledger, plans, readiness, reports, retention, service
from vibethink.compliance.catalog import load_catalog
from vibethink.compliance.export import write_export
from vibethink.compliance.keys import key_store
from vibethink.compliance.models import (
    Assessment,
    Checkpoint,
    Evidence,
    Report,
)
from vibethink.compliance.schemas import (
    AssessmentCreate,
    AssessmentRead,
    CheckpointRead,
    ConsistencyProofRead,
    CustomFrameworkCreate,
    CustomFrameworkRead,
    ErasureRead,
    ErasureRequest,
    EvidenceRead,
    ExternalEventBatch,
    GapRead,
    InclusionProofRead,
    NoteCreate,
    NoteRead,
    PruningRead,
    PublicKeyRead,
    ReadinessSummary,
    RecordedEvidence,
    ReportCreate,
    ReportRead,
    SettingsRead,
    SettingsUpdate,
    SubmissionRead,
)
from vibethink.compliance.state import TenantCompliance
from vibethink.core.errors import InvalidInput, NotFound
from vibethink.core.pagination import MAX_PAGE, Page, newest_first
from vibethink.core.settings import Settings
from vibethink.tenancy.access import DbSession, Principal, require, settings_of
from vibethink.tenancy.permissions import Permission

router = APIRouter(prefix="/compliance", tags=["compliance"])
# Event submission alone: the machine-to-machine hot path, matched before the rest of the API.
ingest_router = APIRouter(prefix="/compliance", tags=["compliance"])

Reader = Annotated[Principal, Depends(require(Permission.COMPLIANCE_READ))]
Writer = Annotated[Principal, Depends(require(Permission.COMPLIANCE_WRITE))]
EventSender = Annotated[Principal, Depends(require(Permission.COMPLIANCE_EVENTS))]
PlatformSettings = Annotated[Settings, Depends(settings_of)]
Seq = Annotated[int, Query(ge=1, le=2**62)]
MAX_FRAMEWORK_FILE = 512 * 1024


def evidence_read(row: Evidence, state: TenantCompliance) -> EvidenceRead:
    """A live record (the service never hands out a pruned one: its content is gone)."""
    catalog = load_catalog()
    control_id = row.control_id or ""
    pairs = state.frameworks_for_control(control_id)
    control = catalog.controls.get(control_id)
    return EvidenceRead(
        seq=row.seq,
        event_id=row.event_id,
        event_type=row.event_type,
        source=row.source,
        control_id=control_id,
        control_title=control.title if control else control_id,
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
    return Page[CustomFrameworkRead](
        items=[CustomFrameworkRead.model_validate(f) for f in found], next_cursor=None
    )


@router.post("/custom-frameworks", status_code=201)
async def create_custom_framework(
    body: CustomFrameworkCreate, principal: Writer, session: DbSession
) -> CustomFrameworkRead:
    return CustomFrameworkRead.model_validate(await service.create_custom_framework(session, principal, body))


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
    return CustomFrameworkRead.model_validate(await service.create_custom_framework(session, principal, body))


@router.delete("/custom-frameworks/{framework_id}", status_code=204)
async def delete_custom_framework(framework_id: uuid.UUID, principal: Writer, session: DbSession) -> None:
    await service.delete_custom_framework(session, principal, framework_id)


@ingest_router.post("/events", status_code=201)
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
    return Page[EvidenceRead](
        items=[evidence_read(r, page.state) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/evidence/{seq}")
async def get_evidence(seq: int, principal: Reader, session: DbSession) -> EvidenceRead:
    if not 1 <= seq <= 2**62:
        raise NotFound("No such evidence.")
    row, state = await service.evidence(session, principal, seq)
    return evidence_read(row, state)


@router.get("/evidence/{seq}/notes")
async def list_notes(seq: int, principal: Reader, session: DbSession) -> Page[NoteRead]:
    if not 1 <= seq <= 2**62:
        raise NotFound("No such evidence.")
    return Page[NoteRead](
        items=[NoteRead.model_validate(n) for n in await service.notes(session, principal, seq)]
    )


@router.post("/evidence/{seq}/notes", status_code=201)
async def add_note(
    seq: int, body: NoteCreate, principal: Writer, session: DbSession, settings: PlatformSettings
) -> NoteRead:
    if not 1 <= seq <= 2**62:
        raise NotFound("No such evidence.")
    note = await service.add_note(session, principal, seq, body.note, pepper=settings.secret_key.encode())
    return NoteRead.model_validate(note)


@router.get("/checkpoints")
async def list_checkpoints(
    principal: Reader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[CheckpointRead]:
    await service.guarded_state(session, principal, write=False)
    query = select(Checkpoint).where(Checkpoint.tenant_id == principal.tenant_id)
    items, next_cursor = await service.highest_first(
        session, query, Checkpoint.tree_size, cursor=cursor, limit=limit
    )
    return Page[CheckpointRead](
        items=[CheckpointRead.model_validate(c) for c in items], next_cursor=next_cursor
    )


@router.get("/prunings")
async def list_prunings(
    principal: Reader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[PruningRead]:
    """Evidence past the retention whose content was pruned: one signed statement per pruning."""
    items, next_cursor = await service.prunings_page(session, principal, cursor=cursor, limit=limit)
    return Page[PruningRead](
        items=[
            PruningRead(
                number=p.number,
                pruned_at=p.pruned_at,
                cutoff=p.cutoff,
                retention_years=p.retention_years,
                records=p.records,
                ranges=p.ranges,
                entries_sha256=p.entries_sha256,
                tree_size=p.tree_size,
                key_id=p.key_id,
                signature=p.signature,
                document=retention.document_of(p),
            )
            for p in items
        ],
        next_cursor=next_cursor,
    )


@router.post("/checkpoints", status_code=201)
async def issue_checkpoint(
    principal: Writer, session: DbSession, settings: PlatformSettings
) -> CheckpointRead:
    state = await service.guarded_state(session, principal, write=True)
    cp = await ledger.issue_checkpoint(session, key_store(settings), principal.tenant_id, sign=state.signs)
    return CheckpointRead.model_validate(cp)


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
        checkpoint=CheckpointRead.model_validate(proof.checkpoint),
    )


@router.get("/proofs/consistency")
async def consistency_proof(
    old_size: Seq, new_size: Seq, principal: Reader, session: DbSession
) -> ConsistencyProofRead:
    """RFC 9162 consistency proof between two signed checkpoints."""
    await service.guarded_state(session, principal, write=False)
    proof = await ledger.consistency_proof(session, principal.tenant_id, old_size, new_size)
    return ConsistencyProofRead(
        old=CheckpointRead.model_validate(proof.old),
        new=CheckpointRead.model_validate(proof.new),
        proof=proof.path,
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


def summary_read(fr: readiness.FrameworkReadiness, last: datetime | None = None) -> ReadinessSummary:
    return ReadinessSummary(
        framework=fr.framework,
        name=fr.name,
        readiness_percent=round(fr.score * 100, 1),
        coverage_percent=round(fr.coverage * 100, 1),
        freshness_percent=round(fr.freshness * 100, 1),
        automation_percent=round(fr.automation * 100, 1),
        total_requirements=fr.total_requirements,
        assessed_requirements=fr.assessed_requirements,
        met_requirements=fr.met_requirements,
        gaps=len(fr.gaps),
        critical_gaps=sum(1 for g in fr.gaps if g.severity == "CRITICAL"),
        ledger_size=fr.ledger_size,
        as_of=fr.as_of,
        last_assessment_at=last,
    )


def assessment_read(a: Assessment, *, with_result: bool = False) -> AssessmentRead:
    return AssessmentRead(
        id=a.id,
        framework=a.framework,
        ledger_size=a.ledger_size,
        as_of=a.as_of,
        catalog_version=a.catalog_version,
        readiness_percent=a.score_bp / 100,
        coverage_percent=a.coverage_bp / 100,
        freshness_percent=a.freshness_bp / 100,
        automation_percent=a.automation_bp / 100,
        computed_at=a.created_at,
        result=a.result if with_result else None,
    )


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise InvalidInput("The cursor is not valid.", field="cursor")
    return int(cursor)


@router.get("/readiness")
async def readiness_overview(principal: Reader, session: DbSession) -> list[ReadinessSummary]:
    """Readiness per enabled framework, each with its coverage, freshness and automation (never summed)."""
    state = await service.guarded_state(session, principal, write=False)
    return [summary_read(fr) for fr in await readiness.tracked_readiness(session, state)]


@router.get("/readiness/{framework}")
async def framework_readiness(framework: str, principal: Reader, session: DbSession) -> dict[str, Any]:
    state = await service.guarded_state(session, principal, write=False)
    if framework not in state.tracked_frameworks:
        raise NotFound(f"{framework} is not enabled for this tenant.")
    result = await readiness.framework_readiness(session, state, framework)
    return {
        "summary": summary_read(result).model_dump(mode="json"),
        "requirements": result.as_dict()["requirements"],
    }


@router.get("/gaps")
async def list_gaps(
    principal: Reader,
    session: DbSession,
    framework: Annotated[str | None, Query(max_length=60)] = None,
    severity: Annotated[str | None, Query(pattern="^(CRITICAL|HIGH|MEDIUM|LOW)$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=12)] = None,
) -> Page[GapRead]:
    """Gaps with severity, description, recommendation and effort, most severe first (not on FREE)."""
    state = await service.guarded_state(session, principal, write=False)
    readiness.require_gap_analysis(state)
    codes = [framework] if framework else state.tracked_frameworks
    if framework and framework not in state.tracked_frameworks:
        raise NotFound(f"{framework} is not enabled for this tenant.")
    gaps = [g for fr in await readiness.tracked_readiness(session, state, codes) for g in fr.gaps]
    if severity:
        gaps = [g for g in gaps if g.severity == severity]
    gaps.sort(key=lambda g: (readiness.SEVERITY_ORDER[g.severity], -g.impact, g.framework, g.requirement_id))
    start = _offset(cursor)
    page = gaps[start : start + limit]
    return Page[GapRead](
        items=[GapRead(**asdict(g)) for g in page],
        next_cursor=str(start + limit) if start + limit < len(gaps) else None,
    )


@router.get("/recommendations")
async def ranked_recommendations(principal: Reader, session: DbSession) -> list[dict[str, Any]]:
    """Controls to fix first, ranked by impact across every enabled framework (ENTERPRISE)."""
    state = await service.guarded_state(session, principal, write=False)
    plans.check_feature(state.plan, "ranked_recommendations")
    return readiness.recommendations(await readiness.tracked_readiness(session, state))


@router.post("/assessments", status_code=201)
async def create_assessment(body: AssessmentCreate, principal: Writer, session: DbSession) -> AssessmentRead:
    await service.guarded_state(session, principal, write=True)
    return assessment_read(
        await readiness.assess(session, principal.tenant_id, body.framework), with_result=True
    )


@router.get("/assessments")
async def list_assessments(
    principal: Reader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[AssessmentRead]:
    await service.guarded_state(session, principal, write=False)
    items, next_cursor = await newest_first(
        session,
        select(Assessment).where(Assessment.tenant_id == principal.tenant_id),
        created_at=Assessment.created_at,
        row_id=Assessment.id,
        cursor=cursor,
        limit=limit,
    )
    return Page[AssessmentRead](items=[assessment_read(a) for a in items], next_cursor=next_cursor)


@router.get("/assessments/{assessment_id}")
async def get_assessment(
    assessment_id: uuid.UUID, principal: Reader, session: DbSession, recompute: bool = False
) -> AssessmentRead:
    """One assessment; `recompute=true` computes it again from the ledger prefix it pinned."""
    await service.guarded_state(session, principal, write=False)
    found = await session.get(Assessment, (principal.tenant_id, assessment_id))
    if found is None:
        raise NotFound("No such assessment.")
    read = assessment_read(found, with_result=True)
    if recompute:
        again = await readiness.recompute(session, found)
        read.result = {**again.as_dict(), "recomputed": True}
        read.readiness_percent = again.score_bp / 100
    return read


async def _report(session: DbSession, principal: Principal, report_id: uuid.UUID) -> Report:
    await service.guarded_state(session, principal, write=False)
    found = await session.get(Report, (principal.tenant_id, report_id))
    if found is None:
        raise NotFound("No such report.")
    return found


@router.post("/reports", status_code=201)
async def create_report(
    body: ReportCreate, principal: Writer, session: DbSession, settings: PlatformSettings
) -> ReportRead:
    """An audit report (JSON + PDF) for a framework and period, with a signed manifest."""
    await service.guarded_state(session, principal, write=True)
    built = await reports.build_report(
        session,
        key_store(settings),
        principal.tenant_id,
        body.framework,
        start=body.start,
        end=body.end,
        seed=body.seed,
    )
    return ReportRead.model_validate(built.report)


@router.get("/reports")
async def list_reports(
    principal: Reader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[ReportRead]:
    await service.guarded_state(session, principal, write=False)
    items, next_cursor = await newest_first(
        session,
        select(Report).where(Report.tenant_id == principal.tenant_id),
        created_at=Report.created_at,
        row_id=Report.id,
        cursor=cursor,
        limit=limit,
    )
    return Page[ReportRead](items=[ReportRead.model_validate(r) for r in items], next_cursor=next_cursor)


@router.get("/reports/{report_id}")
async def get_report(report_id: uuid.UUID, principal: Reader, session: DbSession) -> ReportRead:
    return ReportRead.model_validate(await _report(session, principal, report_id))


@router.get("/reports/{report_id}/report.json")
async def report_json(report_id: uuid.UUID, principal: Reader, session: DbSession) -> Response:
    found = await _report(session, principal, report_id)
    return Response(found.document, media_type="application/json")


@router.get("/reports/{report_id}/report.pdf")
async def report_pdf(report_id: uuid.UUID, principal: Reader, session: DbSession) -> Response:
    found = await _report(session, principal, report_id)
    name = f"readiness-{found.framework.replace(':', '-')}-{found.period_end.date()}.pdf"
    return Response(
        found.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/reports/{report_id}/oscal.json")
async def report_oscal(report_id: uuid.UUID, principal: Reader, session: DbSession) -> dict[str, Any]:
    """The report as OSCAL 1.1 assessment results."""
    found = await _report(session, principal, report_id)
    return reports.oscal_assessment_results(json.loads(found.document))


@router.get("/soa")
async def statement_of_applicability(principal: Reader, session: DbSession) -> dict[str, Any]:
    """ISO/IEC 27001:2022 Statement of Applicability with each Annex A control's readiness."""
    await service.guarded_state(session, principal, write=False)
    return await reports.statement_of_applicability(session, principal.tenant_id)
