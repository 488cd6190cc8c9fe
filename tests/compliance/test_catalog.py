"""The frameworks catalog: complete trees, licence rules, and mappings that point at real requirements."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest
import yaml

from vibethink.compliance.catalog import (
    CATALOG_PACKAGE,
    CatalogError,
    FrameworkCode,
    Relationship,
    TextPolicy,
    catalog_files,
    load_catalog,
    parse_framework,
)
from vibethink.compliance.plans import PLANS, Plan

COPYRIGHTED = {"ISO_27001", "SOC2_TYPE2", "PCI_DSS", "CMMI_ML3", "ISO_9001", "COBIT", "ITIL"}


class TestTheCatalogHoldsTheTenFrameworks:
    def test_every_supported_framework_is_in_the_catalog(self) -> None:
        assert list(load_catalog().frameworks) == [f.value for f in FrameworkCode]

    def test_iso_27001_2022_has_exactly_93_annex_a_controls_in_four_themes(self) -> None:
        iso = load_catalog().framework("ISO_27001")
        annex = [r for r in iso.requirements.values() if r.annex]
        assert len(annex) == 93
        by_theme = {g.id: len(g.requirement_ids) for g in iso.groups if g.annex}
        assert by_theme == {"A.5": 37, "A.6": 8, "A.7": 14, "A.8": 34}
        assert iso.edition == "2022"
        assert iso.requirement("A.8.32").title == "Change management"

    def test_iso_27001_has_the_management_clauses_4_to_10(self) -> None:
        iso = load_catalog().framework("ISO_27001")
        clauses = [g.id for g in iso.groups if not g.annex]
        assert clauses == ["4", "5", "6", "7", "8", "9", "10"]

    def test_no_2013_identifiers_survive(self) -> None:
        iso = load_catalog().framework("ISO_27001")
        assert "A.12.1.2" not in iso.requirements
        assert not any(r.startswith(("A.9", "A.1")) for r in iso.requirements if r.startswith("A."))

    def test_nist_csf_is_version_2_with_its_six_functions(self) -> None:
        csf = load_catalog().framework("NIST_CSF")
        assert csf.edition == "2.0"
        assert {g.id.split(".")[0] for g in csf.groups} == {"GV", "ID", "PR", "DE", "RS", "RC"}
        assert len(csf.requirements) == 106
        assert "PR.IP-12" not in csf.requirements

    def test_cmmi_level_3_includes_the_level_2_process_areas(self) -> None:
        cmmi = load_catalog().framework("CMMI_ML3")
        areas = {g.id for g in cmmi.groups}
        assert {"REQM", "PP", "PMC", "SAM", "MA", "PPQA", "CM"} <= areas
        assert {"RD", "TS", "PI", "VER", "VAL", "OPF", "OPD", "OT", "IPM", "RSKM", "DAR"} <= areas

    def test_soc2_has_the_common_criteria_cc1_to_cc9(self) -> None:
        soc2 = load_catalog().framework("SOC2_TYPE2")
        assert {g.id for g in soc2.groups} >= {f"CC{i}" for i in range(1, 10)}
        assert "CC8.1" in soc2.requirements

    def test_the_other_frameworks_have_their_structure(self) -> None:
        catalog = load_catalog()
        assert len(catalog.framework("COBIT").requirements) == 40
        assert len(catalog.framework("ITIL").requirements) == 34
        assert len(catalog.framework("PCI_DSS").groups) == 12
        assert "Art.32" in catalog.framework("GDPR").requirements
        assert "164.312(b)" in catalog.framework("HIPAA").requirements


class TestLicences:
    def test_every_framework_names_its_licence(self) -> None:
        for framework in load_catalog().frameworks.values():
            assert framework.licence.holder
            assert framework.licence.note

    def test_copyrighted_frameworks_ship_only_ids_and_our_short_titles(self) -> None:
        for code in COPYRIGHTED:
            framework = load_catalog().framework(code)
            assert framework.licence.text is TextPolicy.IDS_AND_OWN_TITLES, code
            for name in catalog_files():
                raw = yaml.safe_load(resources.files(CATALOG_PACKAGE).joinpath(name).read_bytes())
                if raw.get("framework") == code:
                    for group in raw["groups"]:
                        for entry in group["requirements"]:
                            assert len(entry) == 2, (code, entry)  # id and title, nothing more

    def test_a_long_title_in_a_copyrighted_framework_is_refused(self) -> None:
        raw = {
            "framework": "ISO_27001",
            "name": "x",
            "catalog_version": 1,
            "licence": {"holder": "ISO", "text": "ids-and-own-titles", "note": "ids only"},
            "groups": [{"id": "A.5", "title": "t", "requirements": [["A.5.1", "word " * 40]]}],
        }
        with pytest.raises(CatalogError, match="short title"):
            parse_framework(raw, source="test", sha256="0")

    def test_a_framework_without_a_licence_is_refused(self) -> None:
        raw = {"framework": "X", "name": "x", "catalog_version": 1, "groups": []}
        with pytest.raises(CatalogError, match="licence"):
            parse_framework(raw, source="test", sha256="0")


class TestPlatformControls:
    def test_every_mapping_points_at_an_existing_requirement(self) -> None:
        catalog = load_catalog()
        for control in catalog.controls.values():
            assert control.mappings, control.id
            for m in control.mappings:
                assert m.requirement_id in catalog.framework(m.framework).requirements, m
                assert isinstance(m.relationship, Relationship)

    def test_change_management_maps_to_the_issue_s_requirements(self) -> None:
        catalog = load_catalog()
        targets = {(m.framework, m.requirement_id) for m in catalog.controls["CHG-01"].mappings}
        assert ("ISO_27001", "A.8.32") in targets
        assert ("SOC2_TYPE2", "CC8.1") in targets
        assert ("GDPR", "Art.32") in targets
        assert any(f == "CMMI_ML3" and r.startswith("PI.") for f, r in targets)

    def test_requirements_can_be_looked_up_from_the_mapping_side(self) -> None:
        mapped = load_catalog().mappings_for_requirement("ISO_27001", "A.8.32")
        assert [m.control_id for m in mapped] == ["CHG-01"]

    def test_every_framework_has_requirements_mapped_to_controls(self) -> None:
        catalog = load_catalog()
        for code in catalog.frameworks:
            assert any(
                catalog.mappings_for_requirement(code, r) for r in catalog.framework(code).requirements
            )

    def test_the_catalog_version_is_the_hash_of_its_files(self) -> None:
        digest = hashlib.sha256()
        for name in catalog_files():
            digest.update(
                name.encode() + b"\0" + resources.files(CATALOG_PACKAGE).joinpath(name).read_bytes()
            )
        assert load_catalog().version == digest.hexdigest()


class TestTierAvailabilityIsTheSpecsTable:
    def test_framework_availability(self) -> None:
        assert PLANS[Plan.FREE].frameworks == {"GDPR"}
        assert PLANS[Plan.PROFESSIONAL].frameworks == {
            "CMMI_ML3",
            "ISO_27001",
            "GDPR",
            "NIST_CSF",
            "ISO_9001",
        }
        assert PLANS[Plan.ENTERPRISE].frameworks == set(FrameworkCode)

    def test_limits(self) -> None:
        assert [PLANS[p].retention_years for p in Plan] == [1, 3, 7]
        assert [PLANS[p].max_custom_frameworks for p in Plan] == [0, 0, 3]
        assert [PLANS[p].signing for p in Plan] == [False, True, True]
        assert [PLANS[p].auto_generation for p in Plan] == [False, True, True]
        assert [PLANS[p].gap_analysis for p in Plan] == [False, True, True]
