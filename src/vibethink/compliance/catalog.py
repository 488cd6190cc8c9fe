"""The frameworks catalog: versioned, licence-tagged requirement trees and the platform controls.

The data lives in `catalogs/*.yaml` inside the package. Where a framework's text is copyrighted
(ISO, AICPA, PCI SSC, ISACA, AXELOS) the files hold only identifiers and short titles of our own.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

CATALOG_PACKAGE = "vibethink.compliance.catalogs"
CONTROLS_FILE = "platform-controls.yaml"
MAX_OWN_TITLE = 90


class FrameworkCode(enum.StrEnum):
    CMMI_ML3 = "CMMI_ML3"
    ISO_27001 = "ISO_27001"
    SOC2_TYPE2 = "SOC2_TYPE2"
    GDPR = "GDPR"
    HIPAA = "HIPAA"
    PCI_DSS = "PCI_DSS"
    NIST_CSF = "NIST_CSF"
    ISO_9001 = "ISO_9001"
    COBIT = "COBIT"
    ITIL = "ITIL"


class Relationship(enum.StrEnum):
    EQUAL = "equal"
    SUBSET = "subset"
    SUPERSET = "superset"
    INTERSECT = "intersect"

    @property
    def weight(self) -> float:
        """How much of a requirement one satisfied control covers (readiness adds them, capped at 1)."""
        return {"equal": 1.0, "superset": 1.0, "subset": 0.5, "intersect": 0.34}[self.value]


class Priority(enum.StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class TextPolicy(enum.StrEnum):
    PUBLIC = "public"  # public-domain or freely reusable text (NIST, EU law, US regulation)
    IDS_AND_OWN_TITLES = "ids-and-own-titles"  # copyrighted: identifiers plus our own short titles
    OWN = "own"  # our own writing


class CatalogError(ValueError):
    """A catalog file is malformed or inconsistent; raised at load time, never at request time."""


@dataclass(frozen=True, slots=True)
class Licence:
    holder: str
    text: TextPolicy
    note: str


@dataclass(frozen=True, slots=True)
class Requirement:
    framework: str
    id: str
    title: str
    group_id: str
    group_title: str
    annex: bool = False


@dataclass(frozen=True, slots=True)
class RequirementGroup:
    id: str
    title: str
    requirement_ids: tuple[str, ...]
    annex: bool = False


@dataclass(frozen=True, slots=True)
class Framework:
    code: str
    name: str
    edition: str
    catalog_version: int
    licence: Licence
    groups: tuple[RequirementGroup, ...]
    requirements: dict[str, Requirement]
    source_sha256: str
    is_custom: bool = False

    def requirement(self, requirement_id: str) -> Requirement:
        return self.requirements[requirement_id]


@dataclass(frozen=True, slots=True)
class Mapping:
    control_id: str
    framework: str
    requirement_id: str
    relationship: Relationship


@dataclass(frozen=True, slots=True)
class PlatformControl:
    id: str
    title: str
    description: str
    priority: Priority
    freshness_days: int
    recommendation: str
    effort: str
    mappings: tuple[Mapping, ...]


@dataclass(frozen=True)
class Catalog:
    frameworks: dict[str, Framework]
    controls: dict[str, PlatformControl]
    version: str  # SHA-256 over every catalog file: names exactly the data an assessment used
    _by_requirement: dict[tuple[str, str], tuple[Mapping, ...]] = field(default_factory=dict)

    def framework(self, code: str) -> Framework:
        return self.frameworks[code]

    def mappings_for_requirement(self, framework: str, requirement_id: str) -> tuple[Mapping, ...]:
        return self._by_requirement.get((framework, requirement_id), ())

    def mappings_for_control(self, control_id: str, frameworks: Iterable[str]) -> list[Mapping]:
        wanted = set(frameworks)
        return [m for m in self.controls[control_id].mappings if m.framework in wanted]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool) or str(value).strip() == "":
        raise CatalogError(f"{where}: expected a non-empty string, got {value!r}")
    return str(value).strip()


def _requirement_entry(entry: Any, where: str) -> tuple[str, str]:
    if isinstance(entry, list) and len(entry) == 2:
        return _text(entry[0], where), _text(entry[1], where)
    if isinstance(entry, dict) and set(entry) <= {"id", "title"}:
        return _text(entry.get("id"), where), _text(entry.get("title"), where)
    raise CatalogError(f"{where}: a requirement is [id, title] or {{id, title}}, got {entry!r}")


def parse_framework(raw: dict[str, Any], *, source: str, sha256: str, is_custom: bool = False) -> Framework:
    """A framework from its YAML document; every identifier unique, titles short where text is copyrighted."""
    code = _text(raw.get("framework"), f"{source}: framework")
    licence_raw = raw.get("licence")
    if not isinstance(licence_raw, dict):
        raise CatalogError(f"{source}: every framework names its licence")
    try:
        licence = Licence(
            holder=_text(licence_raw.get("holder"), f"{source}: licence.holder"),
            text=TextPolicy(str(licence_raw.get("text"))),
            note=_text(licence_raw.get("note"), f"{source}: licence.note"),
        )
    except ValueError as exc:
        raise CatalogError(f"{source}: licence.text must be one of {[p.value for p in TextPolicy]}") from exc
    version = raw.get("catalog_version")
    if not isinstance(version, int) or version < 1:
        raise CatalogError(f"{source}: catalog_version must be a positive integer")
    groups: list[RequirementGroup] = []
    requirements: dict[str, Requirement] = {}
    raw_groups = raw.get("groups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise CatalogError(f"{source}: a framework has at least one group of requirements")
    for g in raw_groups:
        if not isinstance(g, dict):
            raise CatalogError(f"{source}: a group is a mapping, got {g!r}")
        group_id = _text(g.get("id"), f"{source}: group id")
        group_title = _text(g.get("title"), f"{source}: group {group_id} title")
        annex = bool(g.get("annex", False))
        ids: list[str] = []
        for entry in g.get("requirements") or []:
            rid, title = _requirement_entry(entry, f"{source}: group {group_id}")
            if rid in requirements:
                raise CatalogError(f"{source}: requirement {rid} appears twice")
            if licence.text is TextPolicy.IDS_AND_OWN_TITLES and len(title) > MAX_OWN_TITLE:
                raise CatalogError(f"{source}: {rid} title is longer than a short title of our own")
            requirements[rid] = Requirement(code, rid, title, group_id, group_title, annex)
            ids.append(rid)
        if not ids:
            raise CatalogError(f"{source}: group {group_id} has no requirements")
        groups.append(RequirementGroup(group_id, group_title, tuple(ids), annex))
    return Framework(
        code=code,
        name=_text(raw.get("name"), f"{source}: name"),
        edition=_text(raw.get("edition", ""), f"{source}: edition") if raw.get("edition") else "",
        catalog_version=version,
        licence=licence,
        groups=tuple(groups),
        requirements=requirements,
        source_sha256=sha256,
        is_custom=is_custom,
    )


def _parse_controls(raw: dict[str, Any], frameworks: dict[str, Framework]) -> dict[str, PlatformControl]:
    controls: dict[str, PlatformControl] = {}
    for c in raw.get("controls") or []:
        cid = _text(c.get("id"), "platform control id")
        if cid in controls:
            raise CatalogError(f"platform control {cid} appears twice")
        mappings: list[Mapping] = []
        seen: set[tuple[str, str]] = set()
        for m in c.get("mappings") or []:
            fw = _text(m.get("framework"), f"{cid}: mapping framework")
            rid = _text(m.get("requirement"), f"{cid}: mapping requirement")
            if fw not in frameworks:
                raise CatalogError(f"{cid}: maps to unknown framework {fw}")
            if rid not in frameworks[fw].requirements:
                raise CatalogError(f"{cid}: maps to {fw} {rid}, which the catalog does not have")
            if (fw, rid) in seen:
                raise CatalogError(f"{cid}: maps to {fw} {rid} twice")
            seen.add((fw, rid))
            try:
                relationship = Relationship(m.get("relationship"))
            except ValueError as exc:
                raise CatalogError(
                    f"{cid}: relationship must be one of {[r.value for r in Relationship]}"
                ) from exc
            mappings.append(Mapping(cid, fw, rid, relationship))
        freshness = c.get("freshness_days")
        if not isinstance(freshness, int) or freshness < 1:
            raise CatalogError(f"{cid}: freshness_days must be a positive integer")
        try:
            priority = Priority(c.get("priority"))
        except ValueError as exc:
            raise CatalogError(f"{cid}: priority must be one of {[p.value for p in Priority]}") from exc
        controls[cid] = PlatformControl(
            id=cid,
            title=_text(c.get("title"), f"{cid}: title"),
            description=_text(c.get("description"), f"{cid}: description"),
            priority=priority,
            freshness_days=freshness,
            recommendation=_text(c.get("recommendation"), f"{cid}: recommendation"),
            effort=_text(c.get("effort"), f"{cid}: effort"),
            mappings=tuple(mappings),
        )
    if not controls:
        raise CatalogError("the platform controls file has no controls")
    return controls


def _read(name: str) -> tuple[bytes, dict[str, Any]]:
    data = resources.files(CATALOG_PACKAGE).joinpath(name).read_bytes()
    doc = yaml.safe_load(data)
    if not isinstance(doc, dict):
        raise CatalogError(f"{name}: not a YAML mapping")
    return data, doc


def catalog_files() -> list[str]:
    return sorted(p.name for p in resources.files(CATALOG_PACKAGE).iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Every framework and the platform controls, validated; cached for the life of the process."""
    digest = hashlib.sha256()
    frameworks: dict[str, Framework] = {}
    controls_doc: dict[str, Any] | None = None
    for name in catalog_files():
        data, doc = _read(name)
        digest.update(name.encode() + b"\0" + data)
        if name == CONTROLS_FILE:
            controls_doc = doc
            continue
        framework = parse_framework(doc, source=name, sha256=hashlib.sha256(data).hexdigest())
        if framework.code not in FrameworkCode.__members__:
            raise CatalogError(f"{name}: {framework.code} is not a supported framework")
        if framework.code in frameworks:
            raise CatalogError(f"{name}: framework {framework.code} is defined twice")
        frameworks[framework.code] = framework
    missing = set(FrameworkCode) - set(frameworks)
    if missing:
        raise CatalogError(f"catalog lacks frameworks: {sorted(missing)}")
    if controls_doc is None:
        raise CatalogError(f"catalog lacks {CONTROLS_FILE}")
    controls = _parse_controls(controls_doc, frameworks)
    by_requirement: dict[tuple[str, str], list[Mapping]] = {}
    for control in controls.values():
        for m in control.mappings:
            by_requirement.setdefault((m.framework, m.requirement_id), []).append(m)
    ordered = {code.value: frameworks[code.value] for code in FrameworkCode}
    return Catalog(
        frameworks=ordered,
        controls=controls,
        version=digest.hexdigest(),
        _by_requirement={k: tuple(v) for k, v in by_requirement.items()},
    )
