"""Readiness from evidence: freshness windows, failing and stale evidence as gaps, pinned assessments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.compliance.conftest import Ledger, context, deployment, make_ledger, owner
from tests.compliance.test_routes import spec_event, tenant_with_key
from vibethink.compliance import ledger, readiness, service
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.plans import PlanRestriction
from vibethink.compliance.schemas import CustomFrameworkCreate, SettingsUpdate
from vibethink.compliance.state import load_state
from vibethink.core.database import Database


async def iso(made: Ledger) -> readiness.FrameworkReadiness:
    async with made.db.transaction(context(made.tenant.id)) as session:
        state = await load_state(session, made.tenant.id)
        return await readiness.framework_readiness(session, state, "ISO_27001")


def requirement(result: readiness.FrameworkReadiness, rid: str) -> readiness.RequirementReadiness:
    return next(r for r in result.requirements if r.requirement_id == rid)


def old(event: ledger.IncomingEvent, days: int) -> ledger.IncomingEvent:
    moment = datetime.now(UTC) - timedelta(days=days)
    return ledger.IncomingEvent(
        event.event_id, event.event_type, moment, event.payload, event.source, None, event.actor_ref
    )


class TestRequirementStatusComesFromEvidence:
    async def test_a_passing_deployment_meets_change_management(self, enterprise: Ledger) -> None:
        await enterprise.record([deployment()])
        result = await iso(enterprise)
        assert requirement(result, "A.8.32").state is readiness.RequirementState.MET
        assert requirement(result, "A.5.1").state is readiness.RequirementState.NOT_ASSESSED
        assert requirement(result, "A.7.1").state is readiness.RequirementState.NOT_MAPPED
        assert 0 < result.coverage < 0.2
        assert result.score > 0.5
        assert result.freshness == 1.0
        assert result.automation == 1.0

    async def test_a_later_failing_deployment_is_a_critical_gap(self, enterprise: Ledger) -> None:
        await enterprise.record([deployment()])
        await enterprise.record([deployment(approvals=0)])
        result = await iso(enterprise)
        assert requirement(result, "A.8.32").state is readiness.RequirementState.FAILING
        gap = next(g for g in result.gaps if g.requirement_id == "A.8.32")
        assert gap.severity == "CRITICAL"
        assert "failed its checks" in gap.description
        assert gap.recommendation
        assert gap.estimated_effort == "1-2 weeks"
        assert result.gaps[0].severity == "CRITICAL"  # most severe first

    async def test_evidence_older_than_the_freshness_window_is_stale_and_a_gap(
        self, enterprise: Ledger
    ) -> None:
        await enterprise.record([old(deployment(), 45)])  # change management's window is 30 days
        result = await iso(enterprise)
        assert requirement(result, "A.8.32").state is readiness.RequirementState.STALE
        gap = next(g for g in result.gaps if g.requirement_id == "A.8.32")
        assert gap.severity == "HIGH"
        assert "older than the 30-day freshness window" in gap.description
        assert result.freshness == 0.0

    async def test_a_mapped_control_without_evidence_is_a_gap(self, enterprise: Ledger) -> None:
        result = await iso(enterprise)
        gap = next(g for g in result.gaps if g.requirement_id == "A.5.24")
        assert gap.control_id == "INC-01"
        assert "no evidence at all" in gap.description

    async def test_relationships_weigh_what_a_control_covers(self, enterprise: Ledger) -> None:
        await enterprise.record([deployment()])
        result = await iso(enterprise)
        assert requirement(result, "A.8.32").score == 1.0  # equal
        assert requirement(result, "8.1").score == 0.5  # subset
        assert requirement(result, "8.1").state is readiness.RequirementState.PARTIAL


class TestAssessmentsArePinned:
    async def test_an_assessment_recomputes_to_the_same_result_after_new_evidence(
        self, enterprise: Ledger
    ) -> None:
        await enterprise.record([deployment()])
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            assessment = await readiness.assess(session, enterprise.tenant.id, "ISO_27001")
        await enterprise.record([deployment(approvals=0)])
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            again = await readiness.recompute(session, assessment)
            newer = await readiness.assess(session, enterprise.tenant.id, "ISO_27001")
        assert again.score_bp == assessment.score_bp
        assert again.ledger_size == assessment.ledger_size == 3
        assert newer.ledger_size == 6
        assert newer.score_bp < assessment.score_bp


class TestPlans:
    async def test_a_free_member_cannot_enable_iso_27001(self, db: Database, keys: KeyStore) -> None:
        free = await make_ledger(db, keys, tier="FREE", frameworks=["GDPR"])
        async with db.transaction(context(free.tenant.id)) as session:
            with pytest.raises(PlanRestriction) as refused:
                await service.update_settings(
                    session, owner(free.tenant.id), SettingsUpdate(enabled_frameworks=["GDPR", "ISO_27001"])
                )
        assert "needs the PROFESSIONAL plan" in refused.value.message
        assert refused.value.details == {"required_plan": "PROFESSIONAL"}

    async def test_free_has_no_gap_analysis_and_retention_is_capped(
        self, db: Database, keys: KeyStore
    ) -> None:
        free = await make_ledger(db, keys, tier="FREE", frameworks=["GDPR"])
        async with db.transaction(context(free.tenant.id)) as session:
            state = await load_state(session, free.tenant.id)
            with pytest.raises(PlanRestriction, match="Gap analysis needs the PROFESSIONAL plan"):
                readiness.require_gap_analysis(state)
            with pytest.raises(PlanRestriction, match="3 years needs the PROFESSIONAL plan"):
                await service.update_settings(
                    session, owner(free.tenant.id), SettingsUpdate(retention_years=3)
                )

    async def test_professional_cannot_enable_soc2_or_a_sixth_framework(
        self, db: Database, keys: KeyStore
    ) -> None:
        pro = await make_ledger(db, keys, tier="PROFESSIONAL", frameworks=["GDPR"])
        async with db.transaction(context(pro.tenant.id)) as session:
            with pytest.raises(PlanRestriction, match="SOC2_TYPE2 framework needs the ENTERPRISE plan"):
                await service.update_settings(
                    session, owner(pro.tenant.id), SettingsUpdate(enabled_frameworks=["SOC2_TYPE2"])
                )


class TestCustomFrameworks:
    async def test_a_custom_framework_gets_readiness_from_its_mapped_controls(
        self, db: Database, keys: KeyStore
    ) -> None:
        made = await make_ledger(db, keys)
        body = CustomFrameworkCreate.model_validate(
            {
                "code": "VIBETHINK_INTERNAL",
                "name": "VibeThink Internal Quality Standards",
                "requirements": [
                    {"id": "VT-001", "title": "Code Review Mandatory", "controls": [{"control": "CHG-04"}]},
                    {
                        "id": "VT-002",
                        "title": "Security Scan on Every Commit",
                        "controls": [{"control": "CHG-03"}],
                    },
                ],
            }
        )
        async with db.transaction(context(made.tenant.id)) as session:
            await service.create_custom_framework(session, owner(made.tenant.id), body)
        await made.record([deployment()])
        async with db.transaction(context(made.tenant.id)) as session:
            state = await load_state(session, made.tenant.id)
            result = await readiness.framework_readiness(session, state, "CUSTOM:VIBETHINK_INTERNAL")
        assert requirement(result, "VT-002").state is readiness.RequirementState.MET
        assert requirement(result, "VT-001").state is readiness.RequirementState.NOT_ASSESSED
        assert result.coverage == 0.5


class TestReadinessApi:
    async def test_scores_are_per_framework_and_never_summed(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        five = ["CMMI_ML3", "ISO_27001", "SOC2_TYPE2", "GDPR", "NIST_CSF"]
        await client.patch("/api/v1/compliance/settings", json={"enabled_frameworks": five}, headers=headers)
        recent = {**spec_event(approvals=[]), "timestamp": datetime.now(UTC).isoformat()}
        await client.post("/api/v1/compliance/events", json={"events": [recent]}, headers=headers)
        response = await client.get("/api/v1/compliance/readiness", headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert isinstance(body, list)
        assert [f["framework"] for f in body] == five
        assert {"readiness_percent", "coverage_percent", "freshness_percent", "automation_percent"} <= set(
            body[0]
        )
        assert "compliant" not in response.text.lower()
        gaps = await client.get("/api/v1/compliance/gaps?severity=CRITICAL", headers=headers)
        assert gaps.status_code == 200
        assert any(g["requirement_id"] == "A.8.32" for g in gaps.json()["items"])
        ranked = await client.get("/api/v1/compliance/recommendations", headers=headers)
        assert ranked.json()[0]["control"] == "CHG-01"
        created = await client.post(
            "/api/v1/compliance/assessments", json={"framework": "ISO_27001"}, headers=headers
        )
        assert created.status_code == 201
        again = await client.get(
            f"/api/v1/compliance/assessments/{created.json()['id']}?recompute=true", headers=headers
        )
        assert again.json()["readiness_percent"] == created.json()["readiness_percent"]

    async def test_another_tenant_cannot_read_an_assessment(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, a = await tenant_with_key(db, "ENTERPRISE")
        _, b = await tenant_with_key(db, "ENTERPRISE")
        created = await client.post("/api/v1/compliance/assessments", json={"framework": "GDPR"}, headers=a)
        assert created.status_code == 201, created.text
        assert (
            await client.get(f"/api/v1/compliance/assessments/{created.json()['id']}", headers=b)
        ).status_code == 404
        assert (await client.get("/api/v1/compliance/assessments", headers=b)).json()["items"] == []
