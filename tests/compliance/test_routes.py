"""The compliance API: plans enforced by name, events in, evidence out, exports, isolation."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx

from tests.compliance.test_rules import spec_deployment
from tests.factories import MadeTenant, bearer, make_api_key, make_tenant
from vibethink.compliance.verify import verify_export
from vibethink.core.database import Database

FIVE = ["CMMI_ML3", "ISO_27001", "SOC2_TYPE2", "GDPR", "NIST_CSF"]


async def tenant_with_key(db: Database, tier: str, **kwargs: Any) -> tuple[MadeTenant, dict[str, str]]:
    tenant = await make_tenant(db, slug=f"c-{tier.lower()[:3]}-{uuid.uuid4().hex[:8]}", tier=tier)
    return tenant, bearer(await make_api_key(db, tenant, **kwargs))


def spec_event(**payload: Any) -> dict[str, Any]:
    return {
        "eventType": "CODE_DEPLOYMENT",
        "timestamp": "2026-01-10T00:30:00Z",
        "actor": {"userId": "john.doe@vibethink.com", "role": "SENIOR_ENGINEER"},
        "payload": spec_deployment(**payload),
    }


def framework(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"{code} standards",
        "requirements": [
            {"id": "VT-001", "title": "Code review mandatory", "controls": [{"control": "CHG-04"}]},
            {"id": "VT-002", "title": "Security scan on every commit", "controls": [{"control": "CHG-03"}]},
        ],
    }


class TestPlansAreEnforced:
    async def test_free_cannot_enable_iso_27001_and_the_error_names_the_plan(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        # FREE has no API access at all, so a member of the tenant asks through a session-less key check
        _, headers = await tenant_with_key(db, "FREE")
        response = await client.patch(
            "/api/v1/compliance/settings", json={"enabled_frameworks": ["ISO_27001"]}, headers=headers
        )
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "plan_restriction"
        assert "ENTERPRISE" in error["message"]  # FREE has no API writes: full CRUD is ENTERPRISE's

    async def test_professional_enables_its_five_but_not_soc2(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        ok = await client.patch(
            "/api/v1/compliance/settings",
            json={"enabled_frameworks": FIVE, "retention_years": 7},
            headers=headers,
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["enabled_frameworks"] == FIVE
        assert ok.json()["retention_years"] == 7

    async def test_professional_keys_are_read_only(self, client: httpx.AsyncClient, db: Database) -> None:
        _, headers = await tenant_with_key(db, "PROFESSIONAL")
        assert (await client.get("/api/v1/compliance/settings", headers=headers)).status_code == 200
        refused = await client.patch(
            "/api/v1/compliance/settings", json={"retention_years": 2}, headers=headers
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["details"] == {"required_plan": "ENTERPRISE"}

    async def test_enterprise_adds_a_third_custom_framework_but_not_a_fourth(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        for code in ("VT-A", "VT-B", "VT-C"):
            created = await client.post(
                "/api/v1/compliance/custom-frameworks", json=framework(code), headers=headers
            )
            assert created.status_code == 201, created.text
        fourth = await client.post(
            "/api/v1/compliance/custom-frameworks", json=framework("VT-D"), headers=headers
        )
        assert fourth.status_code == 403
        assert "at most 3 custom frameworks" in fourth.json()["error"]["message"]
        listed = await client.get("/api/v1/compliance/custom-frameworks", headers=headers)
        assert [f["code"] for f in listed.json()["items"]] == ["VT-A", "VT-B", "VT-C"]

    async def test_a_custom_framework_imports_from_csv(self, client: httpx.AsyncClient, db: Database) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        csv = (
            "framework,name,id,title,description,controls\n"
            "VT_INTERNAL,VibeThink Internal,VT-001,Code Review Mandatory,2+ approvals,CHG-04:equal\n"
            "VT_INTERNAL,VibeThink Internal,VT-002,Security Scan on Every Commit,,CHG-03\n"
        )
        response = await client.post(
            "/api/v1/compliance/custom-frameworks/import",
            files={"file": ("internal.csv", csv.encode(), "text/csv")},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        assert [r["id"] for r in response.json()["requirements"]] == ["VT-001", "VT-002"]

    async def test_a_custom_framework_naming_an_unknown_control_is_refused(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        body = framework("VT-X")
        body["requirements"][0]["controls"] = [{"control": "NOPE-1"}]
        response = await client.post("/api/v1/compliance/custom-frameworks", json=body, headers=headers)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "requirements.0.controls"

    async def test_professional_cannot_add_custom_frameworks(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "PROFESSIONAL")
        response = await client.post(
            "/api/v1/compliance/custom-frameworks", json=framework("VT-A"), headers=headers
        )
        assert response.status_code == 403


class TestEventsBecomeEvidence:
    async def test_the_specs_event_yields_verifiable_evidence_for_four_frameworks(
        self, client: httpx.AsyncClient, db: Database, tmp_path: Path
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        await client.patch("/api/v1/compliance/settings", json={"enabled_frameworks": FIVE}, headers=headers)
        sent = await client.post(
            "/api/v1/compliance/events", json={"events": [spec_event()]}, headers=headers
        )
        assert sent.status_code == 201, sent.text
        change = next(e for e in sent.json()["evidence"] if e["control_id"] == "CHG-01")
        assert change["outcome"] == "PASS"
        row = (await client.get(f"/api/v1/compliance/evidence/{change['seq']}", headers=headers)).json()
        assert {"ISO_27001 A.8.32", "SOC2_TYPE2 CC8.1", "GDPR Art.32"} <= set(row["requirements"])
        assert any(r.startswith("CMMI_ML3 PI.") for r in row["requirements"])
        assert "john.doe" not in str(row["observation"])
        proof = await client.get(f"/api/v1/compliance/proofs/inclusion?seq={change['seq']}", headers=headers)
        assert proof.status_code == 200, proof.text
        exported = await client.get("/api/v1/compliance/export", headers=headers)
        assert exported.status_code == 200
        path = tmp_path / "export.zip"
        path.write_bytes(exported.content)
        assert zipfile.ZipFile(io.BytesIO(exported.content)).namelist()[-1] == "manifest.json"
        report = verify_export(path, workers=1)
        assert report.ok, report.problems
        assert report.records == 3

    async def test_the_same_event_without_approvals_fails(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        await client.patch("/api/v1/compliance/settings", json={"enabled_frameworks": FIVE}, headers=headers)
        sent = await client.post(
            "/api/v1/compliance/events", json={"events": [spec_event(approvals=[])]}, headers=headers
        )
        change = next(e for e in sent.json()["evidence"] if e["control_id"] == "CHG-01")
        assert change["outcome"] == "FAIL"

    async def test_sending_the_same_event_twice_records_it_once(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        first = await client.post(
            "/api/v1/compliance/events", json={"events": [spec_event()]}, headers=headers
        )
        again = await client.post(
            "/api/v1/compliance/events", json={"events": [spec_event()]}, headers=headers
        )
        assert len(first.json()["evidence"]) == 2  # GDPR only by default: CHG-01 and CHG-03
        assert again.json()["evidence"] == []

    async def test_a_bad_event_type_is_a_clear_422(self, client: httpx.AsyncClient, db: Database) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        body = {"events": [{**spec_event(), "eventType": "not valid"}]}
        response = await client.post("/api/v1/compliance/events", json=body, headers=headers)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "events.0.eventType"


class TestTenantsAreIsolated:
    async def test_another_tenant_never_sees_the_evidence(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, a = await tenant_with_key(db, "ENTERPRISE")
        _, b = await tenant_with_key(db, "ENTERPRISE")
        sent = await client.post("/api/v1/compliance/events", json={"events": [spec_event()]}, headers=a)
        seq = sent.json()["evidence"][0]["seq"]
        assert (await client.get(f"/api/v1/compliance/evidence/{seq}", headers=b)).status_code == 404
        assert (await client.get("/api/v1/compliance/evidence", headers=b)).json()["items"] == []
        own = await client.get("/api/v1/compliance/evidence", headers=a)
        assert len(own.json()["items"]) == 2

    async def test_evidence_pages_walk_down_by_sequence(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        await client.post("/api/v1/compliance/events", json={"events": [spec_event()]}, headers=headers)
        first = (await client.get("/api/v1/compliance/evidence?limit=1", headers=headers)).json()
        assert len(first["items"]) == 1
        assert first["next_cursor"] == str(first["items"][0]["seq"])
        url = f"/api/v1/compliance/evidence?limit=1&cursor={first['next_cursor']}"
        second = (await client.get(url, headers=headers)).json()
        assert [r["seq"] for r in second["items"]] == [first["items"][0]["seq"] - 1]
        assert second["next_cursor"] is None

    async def test_notes_are_appended_and_listed(self, client: httpx.AsyncClient, db: Database) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        sent = await client.post(
            "/api/v1/compliance/events", json={"events": [spec_event()]}, headers=headers
        )
        seq = sent.json()["evidence"][0]["seq"]
        note = await client.post(
            f"/api/v1/compliance/evidence/{seq}/notes", json={"note": "Checked the runbook."}, headers=headers
        )
        assert note.status_code == 201
        listed = await client.get(f"/api/v1/compliance/evidence/{seq}/notes", headers=headers)
        assert [n["note"] for n in listed.json()["items"]] == ["Checked the runbook."]


class TestOddInput:
    async def test_lone_surrogates_odd_keys_and_ancient_dates_are_recorded_not_a_500(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        body = (
            '{"events": [{"eventType": "CODE_DEPLOYMENT", "timestamp": "0129-06-04T07:42:39Z",'
            ' "payload": {"environment": "PRODUCTION",'
            ' "approvals": [{"userId": "\\udab7\\udd9b\\udb45"}], "\\u00d5\\ue646": 12345678901234567890,'
            ' "rollbackPlan": "\\udc3a", "qualityGates": {"tests": "PASSED", "coverage": NaN}}}]}'
        )
        response = await client.post(
            "/api/v1/compliance/events", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 201, response.text
        assert {e["control_id"] for e in response.json()["evidence"]} == {"CHG-01", "CHG-03"}
