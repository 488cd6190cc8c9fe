"""Compliance rules of the tenant-facing features: settings, custom frameworks, events, evidence, notes."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from sqlalchemy import Select, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vibethink.compliance import ledger, plans, pseudonyms
from vibethink.compliance.canonical import canonical, canonical_plain
from vibethink.compliance.catalog import FrameworkCode, load_catalog
from vibethink.compliance.export import note_document
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.models import (
    Assessment,
    ComplianceSettings,
    CustomFramework,
    Evidence,
    EvidenceNote,
    Pruning,
)
from vibethink.compliance.plans import Plan
from vibethink.compliance.rules import clean, plain
from vibethink.compliance.schemas import (
    CustomFrameworkCreate,
    ExternalEventBatch,
    FrameworkStatus,
    SettingsRead,
    SettingsUpdate,
)
from vibethink.compliance.state import CUSTOM_PREFIX, TenantCompliance, load_state
from vibethink.core import outbox
from vibethink.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PlatformError
from vibethink.core.pagination import MAX_PAGE
from vibethink.tenancy.access import Principal

R = TypeVar("R")


class EvidencePruned(PlatformError):
    status_code = 410
    code = "evidence_pruned"
    default_message = "This evidence is past the retention: its content was pruned."


DEFAULT_PAGE = 50
MAX_IMPORT_BYTES = 512 * 1024


async def guarded_state(session: AsyncSession, principal: Principal, *, write: bool) -> TenantCompliance:
    """The tenant's state, after checking the plan lets an API key do this (members always may)."""
    state = await load_state(session, principal.tenant_id)
    if principal.via == "api_key":
        plans.check_api(state.plan, write=write)
    return state


async def latest_assessments(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Assessment]:
    rows = (
        await session.scalars(
            select(Assessment)
            .where(Assessment.tenant_id == tenant_id)
            .order_by(Assessment.framework, Assessment.created_at.desc())
            .distinct(Assessment.framework)
        )
    ).all()
    return {a.framework: a for a in rows}


async def settings_read(session: AsyncSession, state: TenantCompliance) -> SettingsRead:
    catalog = load_catalog()
    assessments = await latest_assessments(session, state.tenant_id)
    frameworks = []
    for code in [*FrameworkCode, *state.custom_frameworks]:
        name = state.framework(code).name
        available = code in state.limits.frameworks or code.startswith(CUSTOM_PREFIX)
        needed = None if available else plans.cheapest(lambda lim, c=code: c in lim.frameworks)
        enabled_at = state.enabled_at.get(code)
        assessment = assessments.get(code)
        frameworks.append(
            FrameworkStatus(
                framework=code,
                name=name,
                enabled=code in state.tracked_frameworks,
                available=available,
                required_plan=needed.value if needed else None,
                configured_at=datetime.fromisoformat(enabled_at) if enabled_at else None,
                last_assessment_at=assessment.created_at if assessment else None,
                score_percent=assessment.score_bp / 100 if assessment else None,
            )
        )
    del catalog
    return SettingsRead(
        tenant_id=state.tenant_id,
        plan=state.plan.value,
        version=state.version,
        enabled_frameworks=list(state.enabled_frameworks),
        frameworks=frameworks,
        custom_frameworks=list(state.custom_frameworks),
        auto_generation=state.auto_generation,
        signing_enabled=state.signing_enabled,
        retention_years=state.retention_years,
        max_retention_years=state.limits.retention_years,
        report_frequency=state.report_frequency,
        report_recipients=list(state.report_recipients),
        updated_at=state.updated_at,
    )


async def update_settings(
    session: AsyncSession, principal: Principal, body: SettingsUpdate
) -> TenantCompliance:
    """Saves a new settings version after checking every change against the tenant's plan."""
    state = await guarded_state(session, principal, write=True)
    plan = state.plan
    enabled = list(dict.fromkeys(body.enabled_frameworks)) if body.enabled_frameworks is not None else None
    if enabled is not None:
        unknown = [f for f in enabled if f not in FrameworkCode.__members__]
        if unknown:
            raise InvalidInput(f"Unknown framework {unknown[0]!r}.", field="enabled_frameworks")
        plans.check_frameworks(plan, enabled)
    if body.auto_generation:
        plans.check_feature(plan, "auto_generation")
    if body.signing_enabled:
        plans.check_feature(plan, "signing")
    if body.retention_years is not None:
        plans.check_retention(plan, body.retention_years)
    if body.report_frequency is not None:
        plans.check_frequency(plan, body.report_frequency)
    now = datetime.now(UTC)
    new_enabled = enabled if enabled is not None else list(state.enabled_frameworks)
    enabled_at = {k: v for k, v in state.enabled_at.items() if k in new_enabled}
    for code in new_enabled:
        enabled_at.setdefault(code, now.isoformat())
    values: dict[str, Any] = {
        "enabled_frameworks": new_enabled,
        "enabled_at": enabled_at,
        "auto_generation": state.auto_generation if body.auto_generation is None else body.auto_generation,
        "signing_enabled": state.signing_enabled if body.signing_enabled is None else body.signing_enabled,
        "retention_years": min(
            state.retention_years if body.retention_years is None else body.retention_years,
            state.limits.retention_years,
        ),
        "report_frequency": (body.report_frequency or state.report_frequency).value,
        "report_recipients": (
            [str(r).lower() for r in body.report_recipients]
            if body.report_recipients is not None
            else list(state.report_recipients)
        ),
    }
    before = {
        "enabled_frameworks": list(state.enabled_frameworks),
        "auto_generation": state.auto_generation,
        "signing_enabled": state.signing_enabled,
        "retention_years": state.retention_years,
        "report_frequency": state.report_frequency.value,
        "report_recipients": list(state.report_recipients),
    }
    changes = {k: {"from": before[k], "to": values[k]} for k in before if before[k] != values[k]}
    try:
        async with session.begin_nested():
            await session.execute(
                insert(ComplianceSettings).values(
                    tenant_id=principal.tenant_id,
                    version=state.version + 1,
                    changed_by=principal.user_id,
                    **values,
                )
            )
    except IntegrityError as exc:
        raise Conflict("The settings were changed at the same time; reload and try again.") from exc
    if changes:
        await outbox.emit(
            session,
            "CONFIGURATION_CHANGE",
            tenant_id=principal.tenant_id,
            actor_user_id=principal.user_id,
            actor_role=principal.actor_role,
            subject_type="compliance_settings",
            subject_id=principal.tenant_id,
            payload={"change": "compliance_settings", "fields": sorted(changes), "changes": changes},
        )
    return await load_state(session, principal.tenant_id)


def _check_controls(body: CustomFrameworkCreate) -> None:
    controls = load_catalog().controls
    for index, requirement in enumerate(body.requirements):
        for link in requirement.controls:
            if link.control not in controls:
                raise InvalidInput(
                    f"Requirement {requirement.id} names unknown platform control {link.control!r}.",
                    field=f"requirements.{index}.controls",
                )


async def create_custom_framework(
    session: AsyncSession, principal: Principal, body: CustomFrameworkCreate
) -> CustomFramework:
    state = await guarded_state(session, principal, write=True)
    count = await session.scalar(
        select(func.count())
        .select_from(CustomFramework)
        .where(CustomFramework.tenant_id == principal.tenant_id)
    )
    plans.check_custom_frameworks(state.plan, int(count or 0) + 1)
    _check_controls(body)
    framework = CustomFramework(
        tenant_id=principal.tenant_id,
        code=body.code,
        name=body.name,
        description=body.description,
        requirements=[r.model_dump(mode="json") for r in body.requirements],
    )
    try:
        async with session.begin_nested():
            session.add(framework)
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"A custom framework {body.code} already exists.", field="code") from exc
    await outbox.emit(
        session,
        "CONFIGURATION_CHANGE",
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="compliance_custom_framework",
        subject_id=framework.id,
        payload={"change": "custom_framework_created", "fields": ["code"], "changes": {"code": body.code}},
    )
    return framework


def parse_framework_file(content: bytes, filename: str) -> CustomFrameworkCreate:
    """A custom framework from YAML (the create body) or CSV.

    CSV columns: framework, name, id, title, description, controls ("CHG-04:equal;CHG-03:subset").
    """
    if len(content) > MAX_IMPORT_BYTES:
        raise InvalidInput("The file is larger than 512 KiB.", field="file")
    try:
        decoded = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The file is not UTF-8 text.", field="file") from exc
    try:
        if filename.lower().endswith(".csv"):
            return _from_csv(decoded)
        raw = yaml.safe_load(decoded)
        if not isinstance(raw, dict):
            raise InvalidInput("The YAML file must hold one framework mapping.", field="file")
        return CustomFrameworkCreate.model_validate(raw)
    except yaml.YAMLError as exc:
        raise InvalidInput("The file is not valid YAML.", field="file") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}", field="file") from exc


def _from_csv(decoded: str) -> CustomFrameworkCreate:
    reader = csv.DictReader(io.StringIO(decoded))
    needed = {"framework", "name", "id", "title"}
    if reader.fieldnames is None or not needed <= set(reader.fieldnames):
        raise InvalidInput(f"The CSV needs the columns {sorted(needed)}.", field="file")
    code = name = None
    requirements: list[dict[str, Any]] = []
    for row in reader:
        code, name = code or row["framework"], name or row["name"]
        if row["framework"] != code:
            raise InvalidInput("A CSV file holds one framework.", field="file")
        links = []
        for item in (row.get("controls") or "").split(";"):
            control, _, relationship = item.strip().partition(":")
            if control:
                links.append({"control": control, "relationship": relationship or "equal"})
        requirements.append(
            {
                "id": row["id"],
                "title": row["title"],
                "description": row.get("description") or "",
                "controls": links,
            }
        )
    return CustomFrameworkCreate.model_validate({"code": code, "name": name, "requirements": requirements})


async def list_custom_frameworks(session: AsyncSession, principal: Principal) -> list[CustomFramework]:
    await guarded_state(session, principal, write=False)
    return list(
        (
            await session.scalars(
                select(CustomFramework)
                .where(CustomFramework.tenant_id == principal.tenant_id)
                .order_by(CustomFramework.code)
            )
        ).all()
    )


async def delete_custom_framework(
    session: AsyncSession, principal: Principal, framework_id: uuid.UUID
) -> None:
    await guarded_state(session, principal, write=True)
    framework = await session.get(CustomFramework, (principal.tenant_id, framework_id))
    if framework is None:
        raise NotFound("No such custom framework.")
    await session.delete(framework)
    await session.flush()
    await outbox.emit(
        session,
        "CONFIGURATION_CHANGE",
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="compliance_custom_framework",
        subject_id=framework_id,
        payload={
            "change": "custom_framework_deleted",
            "fields": ["code"],
            "changes": {"code": framework.code},
        },
    )


async def submit_events(
    session: AsyncSession,
    principal: Principal,
    batch: ExternalEventBatch,
    *,
    keys: KeyStore,
    pepper: bytes,
    checkpoint_every: int,
) -> ledger.AppendResult:
    """External (API key) or manual (member) events become evidence right away, in this transaction."""
    state = await guarded_state(session, principal, write=True)
    source = ledger.Source.EXTERNAL if principal.via == "api_key" else ledger.Source.MANUAL
    incoming = [
        ledger.IncomingEvent(
            event_id=e.event_id or _content_id(principal.tenant_id, e.model_dump(mode="json")),
            event_type=e.event_type,
            occurred_at=e.timestamp,
            payload=e.payload,
            source=source,
            actor_user_id=principal.user_id if source == ledger.Source.MANUAL else None,
            actor_ref=(e.actor.user_id if e.actor and e.actor.user_id else None),
        )
        for e in batch.events
    ]
    return await ledger.append(
        session, keys, pepper, principal.tenant_id, incoming, state=state, checkpoint_every=checkpoint_every
    )


def _content_id(tenant_id: uuid.UUID, event: dict[str, Any]) -> uuid.UUID:
    """An id for an event sent without one: the same event sent twice is recorded once."""
    digest = hashlib.sha256(canonical_plain(plain(clean(event)))).hexdigest()
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}:{digest}")


async def highest_first(
    session: AsyncSession,
    query: Select[R],
    key: InstrumentedAttribute[int],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[R], str | None]:
    """One page of `query` by descending integer `key`; the cursor is the last key seen."""
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 18:
            raise InvalidInput("The cursor is not valid.", field="cursor")
        query = query.where(key < int(cursor))
    limit = max(1, min(limit, MAX_PAGE))
    rows = list((await session.scalars(query.order_by(key.desc()).limit(limit + 1))).all())
    items = rows[:limit]
    return items, str(getattr(items[-1], key.key)) if len(rows) > limit and items else None


@dataclass(frozen=True, slots=True)
class EvidencePage:
    items: list[Evidence]
    next_cursor: str | None
    state: TenantCompliance


async def evidence_page(
    session: AsyncSession,
    principal: Principal,
    *,
    control_id: str | None = None,
    event_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> EvidencePage:
    """Live records newest first by sequence number; the cursor is the last seen sequence number."""
    state = await guarded_state(session, principal, write=False)
    query = select(Evidence).where(Evidence.tenant_id == principal.tenant_id, Evidence.pruned_in.is_(None))
    if control_id is not None:
        query = query.where(Evidence.control_id == control_id)
    if event_id is not None:
        query = query.where(Evidence.event_id == event_id)
    items, next_cursor = await highest_first(session, query, Evidence.seq, cursor=cursor, limit=limit)
    return EvidencePage(items, next_cursor, state)


async def evidence(
    session: AsyncSession, principal: Principal, seq: int
) -> tuple[Evidence, TenantCompliance]:
    """One live record and the tenant's state it is read against."""
    state = await guarded_state(session, principal, write=False)
    row = await session.get(Evidence, (principal.tenant_id, seq))
    if row is None:
        raise NotFound("No such evidence.")
    _refuse_pruned(row)
    return row, state


def _refuse_pruned(row: Evidence) -> None:
    if row.pruned_in is not None:
        raise EvidencePruned(
            f"Evidence {row.seq} is past the retention: retention pruning {row.pruned_in} removed its"
            " content and notes; its hashes and signature stay in the ledger and its proofs."
        )


async def prunings_page(
    session: AsyncSession, principal: Principal, *, cursor: str | None = None, limit: int = DEFAULT_PAGE
) -> tuple[list[Pruning], str | None]:
    """The tenant's retention prunings, newest first."""
    await guarded_state(session, principal, write=False)
    query = select(Pruning).where(Pruning.tenant_id == principal.tenant_id)
    return await highest_first(session, query, Pruning.number, cursor=cursor, limit=limit)


async def add_note(
    session: AsyncSession, principal: Principal, seq: int, note: str, *, pepper: bytes
) -> EvidenceNote:
    """A reviewer's note, appended beside the evidence (the evidence itself never changes)."""
    await guarded_state(session, principal, write=True)
    record = await session.get(Evidence, (principal.tenant_id, seq))
    if record is None:
        raise NotFound("No such evidence.")
    _refuse_pruned(record)
    who = str(principal.user_id or principal.api_key_id)
    author = (await pseudonyms.resolve(session, pepper, principal.tenant_id, [who]))[who]
    created_at = datetime.now(UTC)
    body = note_document(seq, author, note, created_at)
    row = EvidenceNote(
        tenant_id=principal.tenant_id,
        evidence_seq=seq,
        author=author,
        note=note,
        note_hash=hashlib.sha256(canonical(body)).hexdigest(),
        created_at=created_at,
    )
    session.add(row)
    await session.flush()
    return row


async def notes(session: AsyncSession, principal: Principal, seq: int) -> list[EvidenceNote]:
    await evidence(session, principal, seq)
    return list(
        (
            await session.scalars(
                select(EvidenceNote)
                .where(EvidenceNote.tenant_id == principal.tenant_id, EvidenceNote.evidence_seq == seq)
                .order_by(EvidenceNote.created_at, EvidenceNote.id)
                .limit(500)
            )
        ).all()
    )


async def erase_people(
    session: AsyncSession, principal: Principal, identifiers: list[str], *, pepper: bytes
) -> int:
    """Destroys the person keys behind these identifiers: their pseudonyms become unlinkable."""
    await guarded_state(session, principal, write=True)
    erased = 0
    for identifier in identifiers:
        erased += int(await pseudonyms.erase(session, pepper, principal.tenant_id, identifier))
    await outbox.emit(
        session,
        "DATA_ERASED",
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="compliance_person_keys",
        payload={"scope": "compliance_pseudonyms", "erased": erased},
    )
    return erased


async def set_plan(session: AsyncSession, tenant_id: uuid.UUID, plan: Plan) -> None:
    """The tenant's compliance plan is its tier (changed by billing or a platform admin)."""
    await session.execute(
        text("UPDATE tenants SET tier = CAST(:p AS tenant_tier) WHERE id = :t"),
        {"p": plan.value, "t": tenant_id},
    )
