"""Readiness: per framework and requirement, computed from the evidence, never stored as a verdict in it.

A platform control is MET when it has passing operating evidence within its freshness window and its
latest observation there passed; FAILING when that latest observation failed; STALE when its evidence
is older than the window; DESIGN_ONLY when only design evidence (a policy naming it) exists; and
NOT_ASSESSED without evidence. A requirement's score adds its controls' contributions weighted by
their relationship (equal/superset 1, subset ½, intersect ⅓), capped at 1. A framework's score is
the priority-weighted mean over the requirements that have evidence, shown beside its *coverage*
(how many requirements have evidence), *freshness* and *automation*. Scores of different frameworks
are never added together. An assessment pins the ledger size and moment it used, so it can be
recomputed exactly.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import ledger, plans
from vibethink.compliance.catalog import Priority, load_catalog
from vibethink.compliance.models import Assessment
from vibethink.compliance.state import TenantCompliance, load_state
from vibethink.core.errors import NotFound

DESIGN_FRESHNESS_DAYS = 365
DESIGN_ONLY_SCORE = 0.3
PRIORITY_WEIGHT = {Priority.CRITICAL: 4, Priority.HIGH: 3, Priority.MEDIUM: 2, Priority.LOW: 1}
SEVERITY_ORDER = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}


class ControlState(enum.StrEnum):
    MET = "MET"
    FAILING = "FAILING"
    STALE = "STALE"
    DESIGN_ONLY = "DESIGN_ONLY"
    NOT_ASSESSED = "NOT_ASSESSED"


class RequirementState(enum.StrEnum):
    MET = "MET"
    PARTIAL = "PARTIAL"
    FAILING = "FAILING"
    STALE = "STALE"
    NOT_ASSESSED = "NOT_ASSESSED"  # mapped to controls, but none has evidence
    NOT_MAPPED = "NOT_MAPPED"  # no platform control observes it: evidence must come another way


@dataclass(frozen=True, slots=True)
class ControlEvidence:
    control_id: str
    state: ControlState
    score: float
    last_evidence_at: datetime | None
    last_pass_at: datetime | None
    last_fail_at: datetime | None
    has_design: bool
    fresh: bool
    evidence_in_window: int
    automated_in_window: int


@dataclass(frozen=True, slots=True)
class RequirementReadiness:
    requirement_id: str
    title: str
    group: str
    state: RequirementState
    score: float
    weight: int
    controls: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Gap:
    framework: str
    requirement_id: str
    requirement_title: str
    control_id: str | None
    severity: str
    description: str
    recommendation: str
    estimated_effort: str
    impact: float


@dataclass
class FrameworkReadiness:
    framework: str
    name: str
    ledger_size: int
    as_of: datetime
    score: float  # 0..1 over assessed requirements
    coverage: float  # assessed / all requirements
    freshness: float  # fresh / evidenced controls
    automation: float  # automated / all evidence in windows
    total_requirements: int
    assessed_requirements: int
    met_requirements: int
    requirements: list[RequirementReadiness] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def score_bp(self) -> int:
        return round(self.score * 10_000)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = ledger.iso(self.as_of)
        return data


_EVIDENCE = text(
    """
    SELECT e.control_id, e.kind, e.outcome, e.source, count(*) AS n, max(e.occurred_at) AS last_at,
           count(*) FILTER (WHERE e.occurred_at >= w.window_start) AS n_window
      FROM compliance_evidence e
      JOIN unnest(CAST(:controls AS varchar[]), CAST(:windows AS timestamptz[]))
           AS w(control_id, window_start) ON w.control_id = e.control_id
     WHERE e.tenant_id = :t AND e.seq <= :size AND e.occurred_at <= :as_of
     GROUP BY e.control_id, e.kind, e.outcome, e.source
    """
)
_LATEST = text(
    """
    SELECT DISTINCT ON (control_id) control_id, outcome, occurred_at
      FROM compliance_evidence
     WHERE tenant_id = :t AND seq <= :size AND kind = 'OPERATING'
       AND control_id = ANY(CAST(:controls AS varchar[])) AND occurred_at <= :as_of
     ORDER BY control_id, occurred_at DESC, seq DESC
    """
)


async def control_evidence(
    session: AsyncSession, tenant_id: uuid.UUID, controls: list[str], *, size: int, as_of: datetime
) -> dict[str, ControlEvidence]:
    catalog = load_catalog()
    windows = [as_of - timedelta(days=catalog.controls[c].freshness_days) for c in controls]
    params = {"t": tenant_id, "size": size, "controls": controls, "windows": windows, "as_of": as_of}
    groups = (await session.execute(_EVIDENCE, params)).all()
    latest = {r.control_id: r for r in (await session.execute(_LATEST, params)).all()}
    by_control: dict[str, list[Any]] = {}
    for row in groups:
        by_control.setdefault(row.control_id, []).append(row)
    found: dict[str, ControlEvidence] = {}
    for control_id in controls:
        rows = by_control.get(control_id, [])
        window = as_of - timedelta(days=catalog.controls[control_id].freshness_days)
        operating = [r for r in rows if r.kind == "OPERATING"]
        passes = [r.last_at for r in operating if r.outcome == "PASS"]
        fails = [r.last_at for r in operating if r.outcome == "FAIL"]
        design = [r.last_at for r in rows if r.kind == "DESIGN"]
        has_design = any(d >= as_of - timedelta(days=DESIGN_FRESHNESS_DAYS) for d in design)
        last_pass, last_fail = max(passes, default=None), max(fails, default=None)
        last = max([*(r.last_at for r in rows)], default=None)
        newest = latest.get(control_id)
        in_window = sum(r.n_window for r in operating)
        automated = sum(r.n_window for r in operating if r.source != ledger.Source.MANUAL)
        if newest is not None and newest.occurred_at >= window:
            fresh = True
            state = ControlState.MET if newest.outcome == "PASS" else ControlState.FAILING
            score = 1.0 if state is ControlState.MET else 0.0
        elif operating:
            fresh, state, score = False, ControlState.STALE, 0.0
        elif has_design:
            fresh, state, score = True, ControlState.DESIGN_ONLY, DESIGN_ONLY_SCORE
        elif design:
            fresh, state, score = False, ControlState.STALE, 0.0
        else:
            fresh, state, score = False, ControlState.NOT_ASSESSED, 0.0
        found[control_id] = ControlEvidence(
            control_id, state, score, last, last_pass, last_fail, has_design, fresh, in_window, automated
        )
    return found


def _requirement_state(score: float, states: list[ControlState]) -> RequirementState:
    if not states:
        return RequirementState.NOT_MAPPED
    if score >= 0.999:
        return RequirementState.MET
    if ControlState.FAILING in states:
        return RequirementState.FAILING
    if score > 0:
        return RequirementState.PARTIAL
    if ControlState.STALE in states:
        return RequirementState.STALE
    return RequirementState.NOT_ASSESSED


def _gaps_for(framework: str, req: RequirementReadiness, evidence: dict[str, ControlEvidence]) -> list[Gap]:
    catalog = load_catalog()
    if req.state is RequirementState.MET:
        return []
    if req.state is RequirementState.NOT_MAPPED:
        return [
            Gap(
                framework,
                req.requirement_id,
                req.title,
                None,
                "LOW",
                "No platform control observes this requirement, so it has no evidence yet.",
                "Send events that show it operating (POST /api/v1/compliance/events), or map it to a"
                " platform control in a custom framework.",
                "depends on the requirement",
                round(req.weight * 0.25, 3),
            )
        ]
    gaps = []
    for link in req.controls:
        control = catalog.controls.get(link["control"])
        status = evidence.get(link["control"])
        if control is None or status is None or status.state is ControlState.MET:
            continue
        if status.state is ControlState.FAILING:
            severity = "CRITICAL" if control.priority in (Priority.CRITICAL, Priority.HIGH) else "HIGH"
            when = status.last_fail_at.date().isoformat() if status.last_fail_at else "recently"
            description = f"{control.title}: the latest observation ({when}) failed its checks."
        elif status.state is ControlState.STALE:
            severity = "HIGH"
            last = status.last_evidence_at.date().isoformat() if status.last_evidence_at else "?"
            description = (
                f"{control.title}: the newest evidence ({last}) is older than the"
                f" {control.freshness_days}-day freshness window."
            )
        elif status.state is ControlState.DESIGN_ONLY:
            severity = "MEDIUM"
            description = f"{control.title}: a policy describes it, but nothing shows it operating."
        else:
            severity = {"CRITICAL": "HIGH", "HIGH": "MEDIUM"}.get(control.priority.value, "LOW")
            description = f"{control.title}: no evidence at all, so readiness cannot be shown."
        impact = PRIORITY_WEIGHT[control.priority] * (4 - SEVERITY_ORDER[severity]) * req.weight / 4
        gaps.append(
            Gap(
                framework,
                req.requirement_id,
                req.title,
                control.id,
                severity,
                description,
                control.recommendation,
                control.effort,
                round(impact, 3),
            )
        )
    return gaps


async def framework_readiness(
    session: AsyncSession,
    state: TenantCompliance,
    framework_code: str,
    *,
    size: int | None = None,
    as_of: datetime | None = None,
) -> FrameworkReadiness:
    catalog = load_catalog()
    framework = state.framework(framework_code)
    size = size if size is not None else await ledger.head_size(session, state.tenant_id)
    as_of = as_of or datetime.now(UTC)
    links = {rid: state.mappings_for_requirement(framework_code, rid) for rid in framework.requirements}
    controls = sorted({m.control_id for ms in links.values() for m in ms if m.control_id in catalog.controls})
    evidence = await control_evidence(session, state.tenant_id, controls, size=size, as_of=as_of)
    requirements: list[RequirementReadiness] = []
    gaps: list[Gap] = []
    for rid, req in framework.requirements.items():
        mapped = [m for m in links[rid] if m.control_id in evidence]
        score = min(1.0, sum(m.relationship.weight * evidence[m.control_id].score for m in mapped))
        states = [evidence[m.control_id].state for m in mapped]
        weight = max((PRIORITY_WEIGHT[catalog.controls[m.control_id].priority] for m in mapped), default=1)
        readiness = RequirementReadiness(
            rid,
            req.title,
            req.group_title,
            _requirement_state(score, states),
            round(score, 4),
            weight,
            [
                {
                    "control": m.control_id,
                    "relationship": m.relationship.value,
                    "state": evidence[m.control_id].state,
                }
                for m in mapped
            ],
        )
        requirements.append(readiness)
        gaps.extend(_gaps_for(framework_code, readiness, evidence))
    assessed = [
        r for r in requirements if r.state not in (RequirementState.NOT_MAPPED, RequirementState.NOT_ASSESSED)
    ]
    total_weight = sum(r.weight for r in assessed)
    evidenced = [e for e in evidence.values() if e.state is not ControlState.NOT_ASSESSED]
    in_window = sum(e.evidence_in_window for e in evidence.values())
    gaps.sort(key=lambda g: (SEVERITY_ORDER[g.severity], -g.impact, g.requirement_id))
    return FrameworkReadiness(
        framework=framework_code,
        name=framework.name,
        ledger_size=size,
        as_of=as_of,
        score=sum(r.score * r.weight for r in assessed) / total_weight if total_weight else 0.0,
        coverage=len(assessed) / len(requirements) if requirements else 0.0,
        freshness=sum(1 for e in evidenced if e.fresh) / len(evidenced) if evidenced else 0.0,
        automation=sum(e.automated_in_window for e in evidence.values()) / in_window if in_window else 0.0,
        total_requirements=len(requirements),
        assessed_requirements=len(assessed),
        met_requirements=sum(1 for r in requirements if r.state is RequirementState.MET),
        requirements=requirements,
        gaps=gaps,
    )


async def tracked_readiness(
    session: AsyncSession, state: TenantCompliance, codes: list[str] | None = None
) -> list[FrameworkReadiness]:
    """Readiness of each of `codes` (default: every enabled framework) against one ledger head."""
    size = await ledger.head_size(session, state.tenant_id)
    chosen = state.tracked_frameworks if codes is None else codes
    return [await framework_readiness(session, state, code, size=size) for code in chosen]


def recommendations(readiness: list[FrameworkReadiness]) -> list[dict[str, Any]]:
    """Controls to fix first, ranked by the readiness they would add across the tenant's frameworks."""
    catalog = load_catalog()
    by_control: dict[str, dict[str, Any]] = {}
    for fr in readiness:
        for gap in fr.gaps:
            if gap.control_id is None:
                continue
            item = by_control.setdefault(
                gap.control_id,
                {
                    "control": gap.control_id,
                    "title": catalog.controls[gap.control_id].title,
                    "recommendation": gap.recommendation,
                    "estimated_effort": gap.estimated_effort,
                    "impact": 0.0,
                    "frameworks": set(),
                    "requirements": 0,
                },
            )
            item["impact"] += gap.impact
            item["frameworks"].add(fr.framework)
            item["requirements"] += 1
    ranked = sorted(by_control.values(), key=lambda i: (-i["impact"], i["control"]))
    return [{**i, "impact": round(i["impact"], 2), "frameworks": sorted(i["frameworks"])} for i in ranked]


async def assess(session: AsyncSession, tenant_id: uuid.UUID, framework_code: str) -> Assessment:
    """Computes and keeps a readiness assessment, pinned to the ledger size and moment it read."""
    state = await load_state(session, tenant_id)
    if framework_code not in state.tracked_frameworks:
        raise NotFound(f"{framework_code} is not enabled for this tenant.", field="framework")
    result = await framework_readiness(session, state, framework_code)
    assessment = Assessment(
        tenant_id=tenant_id,
        framework=framework_code,
        ledger_size=result.ledger_size,
        as_of=result.as_of,
        catalog_version=load_catalog().version,
        score_bp=result.score_bp,
        coverage_bp=round(result.coverage * 10_000),
        freshness_bp=round(result.freshness * 10_000),
        automation_bp=round(result.automation * 10_000),
        result=result.as_dict(),
    )
    session.add(assessment)
    await session.flush()
    return assessment


async def recompute(session: AsyncSession, assessment: Assessment) -> FrameworkReadiness:
    """The same assessment again, from the same ledger prefix and moment."""
    state = await load_state(session, assessment.tenant_id)
    return await framework_readiness(
        session, state, assessment.framework, size=assessment.ledger_size, as_of=assessment.as_of
    )


def require_gap_analysis(state: TenantCompliance) -> None:
    plans.check_feature(state.plan, "gap_analysis")
