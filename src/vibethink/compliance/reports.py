"""Audit reports (JSON + PDF) with a signed manifest, OSCAL assessment results, the ISO 27001 SoA.

A report rests on a signed checkpoint: its readiness is computed from exactly the ledger prefix that
checkpoint covers, its evidence population lists every record of the period per control, and its
sample is drawn with a seed recorded in the manifest, so anyone can draw the same sample again.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import ledger, readiness
from vibethink.compliance.canonical import canonical
from vibethink.compliance.catalog import load_catalog
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.models import Evidence, Report
from vibethink.compliance.state import TenantCompliance, load_state
from vibethink.core.errors import InvalidInput, NotFound

REPORT_TYPE = "vibethink.compliance.report/v1"
SAMPLE_SIZE = 25
OSCAL_VERSION = "1.1.2"
OSCAL_NAMESPACE = uuid.UUID("6f1d6c1e-2a8e-4d0b-9a3c-5b7e2f0c4d11")


class Trigger:
    MANUAL = "MANUAL"
    SCHEDULED = "SCHEDULED"


@dataclass(frozen=True, slots=True)
class BuiltReport:
    report: Report
    document: dict[str, Any]
    pdf: bytes


def sample_seed(root_hash: str, framework: str, start: datetime, end: datetime) -> str:
    """The default seed: fixed by what the report rests on, so the same report draws the same sample."""
    return hashlib.sha256(
        f"{root_hash}|{framework}|{ledger.iso(start)}|{ledger.iso(end)}".encode()
    ).hexdigest()[:16]


def draw_sample(population: list[int], seed: str, control_id: str, size: int = SAMPLE_SIZE) -> list[int]:
    """A reproducible sample of sequence numbers (the population sorted first, so order never matters)."""
    ordered = sorted(population)
    if len(ordered) <= size:
        return ordered
    return sorted(random.Random(f"{seed}:{control_id}").sample(ordered, size))


async def _population(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    controls: list[str],
    size: int,
    start: datetime,
    end: datetime,
) -> dict[str, list[dict[str, Any]]]:
    rows = await session.execute(
        select(
            Evidence.seq,
            Evidence.control_id,
            Evidence.event_type,
            Evidence.kind,
            Evidence.outcome,
            Evidence.occurred_at,
            Evidence.source,
            Evidence.entry_hash,
        )
        .where(
            Evidence.tenant_id == tenant_id,
            Evidence.seq <= size,
            Evidence.control_id.in_(controls),
            Evidence.occurred_at >= start,
            Evidence.occurred_at <= end,
        )
        .order_by(Evidence.control_id, Evidence.seq)
    )
    found: dict[str, list[dict[str, Any]]] = {c: [] for c in controls}
    for r in rows:
        found[r.control_id].append(
            {
                "seq": r.seq,
                "event_type": r.event_type,
                "kind": r.kind,
                "outcome": r.outcome,
                "occurred_at": ledger.iso(r.occurred_at),
                "source": r.source,
                "entry_hash": r.entry_hash,
            }
        )
    return found


def _controls_of(state: TenantCompliance, framework: str) -> list[str]:
    catalog = load_catalog()
    fw = state.framework(framework)
    return sorted(
        {
            m.control_id
            for rid in fw.requirements
            for m in state.mappings_for_requirement(framework, rid)
            if m.control_id in catalog.controls
        }
    )


async def build_report(
    session: AsyncSession,
    keys: KeyStore,
    tenant_id: uuid.UUID,
    framework: str,
    *,
    start: datetime,
    end: datetime,
    trigger: str = Trigger.MANUAL,
    seed: str | None = None,
    recipients: list[str] | None = None,
) -> BuiltReport:
    if end <= start:
        raise InvalidInput("The period must end after it starts.", field="end")
    state = await load_state(session, tenant_id)
    if framework not in state.tracked_frameworks:
        raise NotFound(f"{framework} is not enabled for this tenant.", field="framework")
    size = await ledger.head_size(session, tenant_id)
    if size == 0:
        raise NotFound("There is no evidence yet to report on.", field="framework")
    checkpoint = await ledger.issue_checkpoint(session, keys, tenant_id, size=size, sign=state.signs)
    result = await readiness.framework_readiness(
        session, state, framework, size=checkpoint.tree_size, as_of=min(end, datetime.now(UTC))
    )
    controls = _controls_of(state, framework)
    population = await _population(session, tenant_id, controls, checkpoint.tree_size, start, end)
    seed = seed or sample_seed(checkpoint.root_hash, framework, start, end)
    sample = {c: draw_sample([e["seq"] for e in rows], seed, c) for c, rows in population.items() if rows}
    generated_at = datetime.now(UTC)
    document: dict[str, Any] = {
        "type": "vibethink.compliance.audit-report/v1",
        "tenant_id": str(tenant_id),
        "framework": framework,
        "framework_name": result.name,
        "period": {"start": ledger.iso(start), "end": ledger.iso(end)},
        "generated_at": ledger.iso(generated_at),
        "basis": {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "checkpoint_signature": checkpoint.signature,
            "key_id": checkpoint.key_id,
            "catalog_version": load_catalog().version,
        },
        "readiness": {
            "readiness_percent": round(result.score * 100, 1),
            "coverage_percent": round(result.coverage * 100, 1),
            "freshness_percent": round(result.freshness * 100, 1),
            "automation_percent": round(result.automation * 100, 1),
            "total_requirements": result.total_requirements,
            "assessed_requirements": result.assessed_requirements,
            "met_requirements": result.met_requirements,
        },
        "requirements": [asdict(r) for r in result.requirements],
        "gaps": [asdict(g) for g in result.gaps],
        "population": population,
        "sample": {"seed": seed, "size_per_control": SAMPLE_SIZE, "seqs": sample},
        "statement": (
            "Readiness is computed from the evidence recorded in the ledger; it is not a certification"
            " and does not replace an auditor's opinion."
        ),
    }
    json_bytes = json.dumps(document, indent=2, ensure_ascii=False, default=str).encode()
    pdf_bytes = render_pdf(document)
    signer = keys.active() if state.signs else None
    manifest: dict[str, Any] = {
        "type": REPORT_TYPE,
        "tenant_id": str(tenant_id),
        "framework": framework,
        "period": document["period"],
        "generated_at": document["generated_at"],
        "parameters": {
            "trigger": trigger,
            "sample_seed": seed,
            "sample_size_per_control": SAMPLE_SIZE,
            "recipients": sorted(recipients or []),
        },
        "checkpoint": {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "signature": checkpoint.signature,
            "key_id": checkpoint.key_id,
        },
        "files": {
            "report.json": hashlib.sha256(json_bytes).hexdigest(),
            "report.pdf": hashlib.sha256(pdf_bytes).hexdigest(),
        },
        "key_id": signer.key_id if signer else None,
    }
    report = Report(
        tenant_id=tenant_id,
        framework=framework,
        period_start=start,
        period_end=end,
        trigger=trigger,
        manifest=manifest,
        manifest_signature=signer.sign(canonical(manifest)).hex() if signer else None,
        key_id=signer.key_id if signer else None,
        document=json_bytes,
        pdf=pdf_bytes,
    )
    session.add(report)
    await session.flush()
    return BuiltReport(report, document, pdf_bytes)


def _latin(text: Any) -> str:
    """fpdf2's core fonts are Latin-1: anything else becomes '?' instead of failing the report."""
    return (
        str(text).replace("\u2013", "-").replace("\u2014", "-").encode("latin-1", "replace").decode("latin-1")
    )


def render_pdf(document: dict[str, Any]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(_latin(f"Readiness report: {document['framework_name']}"))
    pdf.set_creator("VibeThink Compliance")
    pdf.add_page()
    width = pdf.epw

    def line(text: str, *, size: int = 10, style: str = "", height: float = 5.5) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, height, _latin(text), new_x="LMARGIN", new_y="NEXT")

    line(f"Readiness report - {document['framework_name']}", size=16, style="B", height=8)
    period = document["period"]
    line(f"Period {period['start']} to {period['end']}; generated {document['generated_at']}")
    basis = document["basis"]
    line(
        f"Rests on signed checkpoint: tree size {basis['tree_size']}, root {basis['root_hash']}"
        f" (key {basis['key_id'] or 'unsigned'})",
        size=8,
    )
    pdf.ln(3)
    r = document["readiness"]
    line("Summary", size=12, style="B")
    line(
        f"Readiness {r['readiness_percent']}% over the assessed requirements; coverage"
        f" {r['coverage_percent']}% ({r['assessed_requirements']} of {r['total_requirements']} requirements"
        f" have evidence); freshness {r['freshness_percent']}%; automation {r['automation_percent']}%;"
        f" {r['met_requirements']} requirements met."
    )
    line(document["statement"], size=8)
    pdf.ln(2)
    line(f"Gaps ({len(document['gaps'])})", size=12, style="B")
    for gap in document["gaps"][:60]:
        line(
            f"[{gap['severity']}] {gap['requirement_id']} {gap['requirement_title']}: {gap['description']}"
            f" Recommendation: {gap['recommendation']} Effort: {gap['estimated_effort']}.",
            size=8,
            height=4.5,
        )
    if len(document["gaps"]) > 60:
        line(f"... and {len(document['gaps']) - 60} more in report.json", size=8)
    pdf.ln(2)
    line("Evidence population and sample per control", size=12, style="B")
    sample = document["sample"]
    line(f"Sample seed {sample['seed']}, at most {sample['size_per_control']} records per control.", size=8)
    for control, rows in document["population"].items():
        passed = sum(1 for x in rows if x["outcome"] == "PASS")
        chosen = sample["seqs"].get(control, [])
        line(
            f"{control}: {len(rows)} records ({passed} passing);"
            f" sample: {', '.join(map(str, chosen)) or '-'}",
            size=8,
            height=4.5,
        )
    pdf.ln(2)
    line("Requirements", size=12, style="B")
    for req in document["requirements"]:
        line(
            f"{req['requirement_id']} {req['title']}: {req['state']} ({round(req['score'] * 100)}%)",
            size=7,
            height=4,
        )
    return bytes(pdf.output())


def _oscal_uuid(*parts: Any) -> str:
    return str(uuid.uuid5(OSCAL_NAMESPACE, "|".join(str(p) for p in parts)))


def oscal_assessment_results(document: dict[str, Any]) -> dict[str, Any]:
    """The report as an OSCAL 1.1 assessment-results document."""
    key = (
        document["tenant_id"],
        document["framework"],
        document["period"]["start"],
        document["basis"]["root_hash"],
    )
    observations = []
    findings = []
    for control, rows in document["population"].items():
        if not rows:
            continue
        observation_id = _oscal_uuid(*key, "observation", control)
        passed = sum(1 for x in rows if x["outcome"] == "PASS")
        observations.append(
            {
                "uuid": observation_id,
                "title": f"Platform control {control}",
                "description": f"{len(rows)} evidence records in the period, {passed} passing their checks.",
                "methods": ["TEST"],
                "types": ["control-objective"],
                "collected": rows[-1]["occurred_at"],
                "relevant-evidence": [
                    {
                        "href": f"#evidence-{x['seq']}",
                        "description": f"record {x['seq']} sha256 {x['entry_hash']}",
                    }
                    for x in rows[:SAMPLE_SIZE]
                ],
            }
        )
    for req in document["requirements"]:
        if req["state"] in ("NOT_MAPPED", "NOT_ASSESSED"):
            continue
        related = [
            {"observation-uuid": _oscal_uuid(*key, "observation", c["control"])}
            for c in req["controls"]
            if document["population"].get(c["control"])
        ]
        findings.append(
            {
                "uuid": _oscal_uuid(*key, "finding", req["requirement_id"]),
                "title": f"{req['requirement_id']} {req['title']}",
                "description": f"Readiness {round(req['score'] * 100)}% ({req['state']}).",
                "target": {
                    "type": "objective-id",
                    "target-id": req["requirement_id"],
                    "status": {"state": "satisfied" if req["state"] == "MET" else "not-satisfied"},
                },
                **({"related-observations": related} if related else {}),
            }
        )
    return {
        "assessment-results": {
            "uuid": _oscal_uuid(*key, "assessment-results"),
            "metadata": {
                "title": f"Readiness assessment results: {document['framework_name']}",
                "last-modified": document["generated_at"],
                "version": str(document["basis"]["tree_size"]),
                "oscal-version": OSCAL_VERSION,
                "remarks": document["statement"],
            },
            "import-ap": {"href": f"#assessment-plan-{document['framework']}"},
            "results": [
                {
                    "uuid": _oscal_uuid(*key, "result"),
                    "title": f"{document['framework_name']} readiness",
                    "description": (
                        f"Computed from ledger tree size {document['basis']['tree_size']},"
                        f" root {document['basis']['root_hash']}."
                    ),
                    "start": document["period"]["start"],
                    "end": document["period"]["end"],
                    "reviewed-controls": {
                        "control-selections": [
                            {
                                "include-controls": [
                                    {"control-id": r["requirement_id"]} for r in document["requirements"]
                                ]
                            }
                        ]
                    },
                    **({"observations": observations} if observations else {}),
                    **({"findings": findings} if findings else {}),
                }
            ],
        }
    }


async def statement_of_applicability(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any]:
    """ISO/IEC 27001:2022 Statement of Applicability: every Annex A control, why it applies, its status."""
    state = await load_state(session, tenant_id)
    if "ISO_27001" not in state.tracked_frameworks:
        raise NotFound("ISO_27001 is not enabled for this tenant.", field="framework")
    result = await readiness.framework_readiness(session, state, "ISO_27001")
    iso = load_catalog().framework("ISO_27001")
    by_id = {r.requirement_id: r for r in result.requirements}
    entries = []
    for rid, req in iso.requirements.items():
        if not req.annex:
            continue
        status = by_id[rid]
        observed = [c["control"] for c in status.controls]
        entries.append(
            {
                "control": rid,
                "title": req.title,
                "theme": req.group_title,
                "applicable": True,
                "justification": (
                    f"Applies to the platform; observed through {', '.join(observed)}."
                    if observed
                    else "Applies; evidence is collected outside the platform's automatic controls."
                ),
                "implementation": status.state.value,
                "readiness_percent": round(status.score * 100),
                "platform_controls": status.controls,
            }
        )
    return {
        "type": "vibethink.compliance.soa/v1",
        "standard": "ISO/IEC 27001:2022",
        "tenant_id": str(tenant_id),
        "generated_at": ledger.iso(datetime.now(UTC)),
        "ledger_size": result.ledger_size,
        "controls": entries,
    }


def period_for(frequency: str, now: datetime) -> tuple[datetime, datetime]:
    days = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 30, "QUARTERLY": 91}[frequency]
    return now - timedelta(days=days), now
