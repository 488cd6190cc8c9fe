"""Event → control rules: frozen once published, and the spec's deployment event judged by its payload."""

from __future__ import annotations

import hashlib
import json
import uuid
from importlib import resources
from typing import Any

import pytest
import rfc8785

from vibethink.compliance.canonical import _floatless, canonical_plain
from vibethink.compliance.catalog import CatalogError, load_catalog
from vibethink.compliance.rules import (
    RULES_PACKAGE,
    EventFacts,
    EvidenceKind,
    Outcome,
    evaluate,
    load_rules,
    parse_rules,
    people_of,
    published_hashes,
)

SPEC_MAPPED_EVENTS = {
    # CMMI mapping in the spec
    "USER_STORY_CREATED", "REQUIREMENT_DOCUMENTED", "STAKEHOLDER_APPROVAL", "REQUIREMENT_REVIEW",
    "ADR_CREATED", "ARCHITECTURE_REVIEW", "CODE_DEPLOYMENT", "STAGING_VALIDATION", "TEST_EXECUTION",
    "CODE_REVIEW", "QA_VALIDATION", "USER_ACCEPTANCE_TEST", "RETROSPECTIVE_COMPLETED", "PROCESS_AUDIT",
    "PROCESS_DOCUMENTED", "STANDARD_UPDATED", "TRAINING_COMPLETED", "CERTIFICATION_ACHIEVED",
    "RELEASE_PLANNED", "SPRINT_STARTED", "INCIDENT_CREATED", "POST_MORTEM_COMPLETED", "ARB_MEETING",
    "ADR_APPROVED",
    # ISO mapping in the spec
    "SECURITY_POLICY_UPDATED", "POLICY_REVIEW", "USER_CREATED", "USER_DEACTIVATED", "ROLE_ASSIGNED",
    "CONFIGURATION_CHANGE", "AUDIT_LOG_CREATED", "SECURITY_EVENT", "INCIDENT_RESOLVED",
    "COMPLIANCE_AUDIT", "GDPR_ASSESSMENT",
    # the platform's own events
    "POLICY_UPDATED", "API_KEY_CREATED", "API_KEY_REVOKED", "TENANT_CREATED", "CELEBRITY_CREATED",
    "DEPLOYMENT_CREATED",
}  # fmt: skip


def spec_deployment(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "version": "v2.3.1",
        "environment": "PRODUCTION",
        "deploymentType": "CANARY",
        "approvals": [
            {"userId": "tech-lead@vibethink.com", "timestamp": "2026-01-10T00:25:00Z"},
            {"userId": "devops-lead@vibethink.com", "timestamp": "2026-01-10T00:27:00Z"},
        ],
        "qualityGates": {
            "tests": "PASSED",
            "coverage": 0.87,
            "securityScan": "PASSED",
            "performanceTest": "PASSED",
        },
        "rollbackPlan": "docs/runbooks/rollback-v2.3.1.md",
    }
    payload.update(overrides)
    return payload


def fake_pseudonym(value: str) -> str:
    return "p_" + hashlib.sha256(value.encode()).hexdigest()[:16]


class TestPublishedRulesAreFrozen:
    def test_every_published_version_matches_its_pinned_hash(self) -> None:
        for version, digest in published_hashes().items():
            data = resources.files(RULES_PACKAGE).joinpath(f"v{version}.yaml").read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest

    def test_the_newest_published_version_loads(self) -> None:
        rules = load_rules()
        assert rules.version == max(published_hashes())
        assert all(r.version == rules.version for r in rules.rules)

    def test_an_unpublished_version_does_not_load(self) -> None:
        with pytest.raises(CatalogError, match="not published"):
            load_rules(999)

    def test_the_spec_and_platform_event_types_all_have_rules(self) -> None:
        assert load_rules().event_types >= SPEC_MAPPED_EVENTS

    def test_every_rule_names_an_existing_control(self) -> None:
        controls = load_catalog().controls
        for rule in load_rules().rules:
            assert rule.control is None or rule.control in controls

    def test_a_rule_for_an_unknown_control_is_refused(self) -> None:
        doc = {"version": 7, "rules": [{"id": "x", "event": "E", "control": "NOPE", "kind": "OPERATING"}]}
        with pytest.raises(CatalogError, match="unknown platform control"):
            parse_rules(doc, sha256="0")


class TestTheSpecsDeploymentEvent:
    def test_a_fully_approved_deployment_is_passing_operating_evidence_for_change_management(self) -> None:
        event = EventFacts("CODE_DEPLOYMENT", spec_deployment(), uuid.uuid4())
        found = {o.control_id: o for o in evaluate(load_rules(), event, fake_pseudonym)}
        assert set(found) == {"CHG-01", "CHG-03", "TST-01"}
        change = found["CHG-01"]
        assert change.kind is EvidenceKind.OPERATING
        assert change.outcome is Outcome.PASS
        assert change.document()["failed"] == []
        assert change.artifacts[0]["name"] == "rollbackPlan"

    def test_missing_approvals_is_a_failing_observation_naming_the_check(self) -> None:
        event = EventFacts("CODE_DEPLOYMENT", spec_deployment(approvals=[]), uuid.uuid4())
        change = next(o for o in evaluate(load_rules(), event, fake_pseudonym) if o.control_id == "CHG-01")
        assert change.outcome is Outcome.FAIL
        assert change.document()["failed"] == ["two_approvals"]

    def test_failed_tests_and_no_rollback_plan_fail_their_checks(self) -> None:
        payload = spec_deployment(qualityGates={"tests": "FAILED"})
        del payload["rollbackPlan"]
        event = EventFacts("CODE_DEPLOYMENT", payload, uuid.uuid4())
        change = next(o for o in evaluate(load_rules(), event, fake_pseudonym) if o.control_id == "CHG-01")
        assert change.document()["failed"] == ["tests_passed", "rollback_plan"]

    def test_observations_hold_no_floats_whatever_the_payload_holds(self) -> None:
        # The ledger's writer canonicalises observations without checking for floats (RFC 8785 writes
        # them in a form orjson does not): every fact goes through `plain`, which turns them to text.
        payload = spec_deployment(
            qualityGates={"tests": "PASSED", "coverage": 0.87, "nested": {"ratio": 1e21, "list": [0.1, 2.5]}},
            version=3.0,
            environment="PRODUCTION",
        )
        event = EventFacts("CODE_DEPLOYMENT", payload, uuid.uuid4())
        observations = evaluate(load_rules(), event, fake_pseudonym)
        assert observations
        for observation in observations:
            document = observation.document()
            assert _floatless(document), document
            assert _floatless(list(observation.artifacts))
            assert canonical_plain(document) == rfc8785.dumps(document)
        tests = next(o for o in observations if o.control_id == "TST-01")
        assert tests.facts["qualityGates.coverage"] == "0.87"  # the float, as text

    def test_a_staging_deployment_is_not_production_change_evidence(self) -> None:
        event = EventFacts("CODE_DEPLOYMENT", spec_deployment(environment="STAGING"), uuid.uuid4())
        assert "CHG-01" not in {o.control_id for o in evaluate(load_rules(), event, fake_pseudonym)}

    def test_people_are_pseudonymised_and_numbers_are_never_floats(self) -> None:
        actor = uuid.uuid4()
        event = EventFacts("CODE_DEPLOYMENT", spec_deployment(), actor)
        assert people_of(load_rules(), event) == {
            str(actor),
            "tech-lead@vibethink.com",
            "devops-lead@vibethink.com",
        }
        change = next(o for o in evaluate(load_rules(), event, fake_pseudonym) if o.control_id == "CHG-01")
        text = repr(change.document())
        assert "vibethink.com" not in text
        assert str(actor) not in text
        assert change.facts["actor"] == fake_pseudonym(str(actor))
        assert change.facts["qualityGates"]["coverage"] == "0.87"


class TestPolicyDesignEvidence:
    def test_a_policy_listing_its_controls_is_design_evidence_for_each(self) -> None:
        payload = {"policy": "change-management", "version": "3", "approvedBy": "ciso@x.test",
                   "controls": ["CHG-01", "CHG-04", "NOT-A-CONTROL"]}  # fmt: skip
        found = evaluate(load_rules(), EventFacts("POLICY_UPDATED", payload, None, "ci"), fake_pseudonym)
        design = sorted(o.control_id for o in found if o.kind is EvidenceKind.DESIGN)
        assert design == ["CHG-01", "CHG-04"]
        operating = [o for o in found if o.kind is EvidenceKind.OPERATING]
        assert [o.control_id for o in operating] == ["POL-01"]
        assert operating[0].facts["approvedBy"] == fake_pseudonym("ciso@x.test")


class TestCanonicalJson:
    def test_the_fast_path_is_byte_identical_to_the_rfc8785_reference(self) -> None:
        import rfc8785

        from vibethink.compliance.canonical import canonical

        documents = [
            {"b": 1, "a": [True, None, "x"], "c": {"z": "ünïcødé ✓ 😀", "y": -(2**53) + 1}},
            {"quote": 'say "hi"\\n', "control": "\u0001\u001f\t", "empty": {}, "list": []},
            {"emoji_key_value": "𝄞", "nested": [{"k": "v"}, [1, 2, [3]]]},
        ]
        for document in documents:
            assert canonical(document) == rfc8785.dumps(document)

    def test_anything_else_goes_to_the_reference(self) -> None:
        import rfc8785

        from vibethink.compliance.canonical import canonical

        for document in ({"f": 0.1, "e": 1e21}, {"é": 1, "e": 2}, {"big": 2**53 - 1}):
            assert canonical(document) == rfc8785.dumps(document)

    def test_rfc8785s_own_examples(self) -> None:
        """RFC 8785 §3.2.2 (numbers, escaping) and §3.2.3 (sorting by UTF-16 code units)."""
        from vibethink.compliance.canonical import canonical, canonical_plain

        example = json.loads(
            r"""{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],"""
            r""" "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","""
            r""" "literals": [null, true, false]}"""
        )
        assert canonical(example) == (
            rb"""{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"""
            + '"string":"\u20ac'.encode()
            + rb"""$\u000f\nA'B\"\\\\\"/"}"""
        )
        sorting = json.loads(
            r'{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",'
            r' "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",'
            r' "\u00f6": "Latin Small Letter O With Diaeresis"}'
        )
        expected = (
            '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
            '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
            '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
        ).encode()
        assert canonical(sorting) == expected
        assert canonical_plain(sorting) == expected  # orjson sorts by code point: the reference decides

    def test_the_writers_path_matches_the_reference_on_generated_documents(self) -> None:
        import random

        import rfc8785

        from vibethink.compliance.canonical import canonical_plain

        rng = random.Random(8785)
        alphabet = ["a", "B", "1", " ", '"', "\\", "/", "\n", "\x00", "\x1f", "\x7f", "é", "€", "\u2028",
                    "\ue000", "\uffff", "דּ", "😀", "𝄞"]  # fmt: skip

        def text() -> str:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

        def value(depth: int) -> Any:
            kind = rng.randint(0, 7 if depth < 3 else 4)
            if kind == 0:
                return text()
            if kind == 1:
                return rng.choice([0, 1, -1, 2**53 - 1, -(2**53) + 1, rng.randint(-(10**12), 10**12)])
            if kind == 2:
                return rng.choice([True, False, None])
            if kind in (3, 4):
                return text()
            if kind in (5, 6):
                return {text(): value(depth + 1) for _ in range(rng.randint(0, 4))}
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]

        for _ in range(2000):
            document = {text(): value(0) for _ in range(rng.randint(1, 5))}
            assert canonical_plain(document) == rfc8785.dumps(document)

    def test_records_hash_the_same_through_the_writers_shortcut(self) -> None:
        from vibethink.compliance.canonical import canonical, canonical_record

        for observation in ({"facts": {"ü": 1}}, {"facts": {"a": "ü"}}, {"facts": {"n": 0.5}}):
            document = {"seq": 1, "key_id": None, "observation": observation, "artifacts": []}
            assert canonical_record(document, free_form=("observation", "artifacts")) == canonical(document)
