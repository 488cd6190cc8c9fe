"""Event → control rules: versioned data files, frozen once published, evaluated against event payloads.

A published version's file is pinned by its SHA-256 in `rulesets/published.json`; the loader refuses a
file that no longer matches, so evidence that names a rule version always means the same rule.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from vibethink.compliance.catalog import CatalogError, load_catalog

RULES_PACKAGE = "vibethink.compliance.rulesets"
ACTOR = "$actor"
MAX_STRING = 500
MAX_ITEMS = 50
SAFE_INTEGER = 2**53 - 1
VERSION_FILE = re.compile(r"v(\d+)\.yaml")


class EvidenceKind(enum.StrEnum):
    DESIGN = "DESIGN"  # the control is designed: a policy or procedure says how it works
    OPERATING = "OPERATING"  # the control operated: something happened the way the design says


class Outcome(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - an outcome, not a password
    FAIL = "FAIL"


class Op(enum.StrEnum):
    EQ = "eq"
    IN = "in"
    PRESENT = "present"
    COUNT_GTE = "count_gte"
    GTE = "gte"
    LTE = "lte"
    IS_TRUE = "is_true"
    NOT_FALSE = "not_false"


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    path: str
    op: Op
    value: Any = None

    def holds(self, value: Any) -> bool:
        op = self.op
        if op is Op.PRESENT:
            return value not in (None, "", [], {})
        if op is Op.EQ:
            return bool(value == self.value)
        if op is Op.IN:
            return value in self.value
        if op is Op.COUNT_GTE:
            return isinstance(value, list) and len(value) >= self.value
        if op is Op.IS_TRUE:
            return value is True
        if op is Op.NOT_FALSE:
            return value is not False
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return bool(value >= self.value if op is Op.GTE else value <= self.value)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    version: int
    event: str
    kind: EvidenceKind
    control: str | None  # fixed control, or
    control_from: str | None  # a payload path listing control ids (design evidence from policies)
    when: tuple[Condition, ...]
    checks: tuple[Condition, ...]
    facts: tuple[str, ...]
    people: tuple[str, ...]
    artifacts: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    version: int
    sha256: str
    rules: tuple[Rule, ...]
    by_event: dict[str, tuple[Rule, ...]]

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self.by_event)


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What a rule sees of an event: its type, payload and actor."""

    event_type: str
    payload: Mapping[str, Any]
    actor_user_id: uuid.UUID | None = None
    actor_ref: str | None = None  # an external actor (API key id, CI system)


@dataclass(frozen=True, slots=True)
class Observation:
    rule: Rule
    control_id: str
    kind: EvidenceKind
    outcome: Outcome
    checks: tuple[tuple[str, bool], ...]
    facts: dict[str, Any]
    artifacts: tuple[dict[str, str], ...]

    def document(self) -> dict[str, Any]:
        """The observation as recorded. It holds no floats (facts go through `plain`), which the
        ledger's writer relies on to canonicalise it without a walk."""
        return {
            "checks": [{"name": n, "passed": p} for n, p in self.checks],
            "facts": self.facts,
            "failed": [n for n, p in self.checks if not p],
        }


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, dict) or "path" not in raw or "op" not in raw:
        raise CatalogError(f"{where}: a condition has a path and an op")
    try:
        op = Op(raw["op"])
    except ValueError as exc:
        raise CatalogError(f"{where}: unknown operator {raw['op']!r}") from exc
    value = raw.get("value")
    if op in (Op.COUNT_GTE, Op.GTE, Op.LTE) and not isinstance(value, int | float):
        raise CatalogError(f"{where}: {op.value} needs a number")
    if op is Op.IN and not isinstance(value, list):
        raise CatalogError(f"{where}: in needs a list")
    return Condition(str(raw.get("name") or raw["path"]), str(raw["path"]), op, value)


def parse_rules(doc: dict[str, Any], *, sha256: str) -> RuleSet:
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise CatalogError("a rules file has a positive integer version")
    catalog = load_catalog()
    rules: list[Rule] = []
    ids: set[str] = set()
    for raw in doc.get("rules") or []:
        rid = str(raw.get("id") or "")
        where = f"rules v{version} {rid or '?'}"
        if not rid or rid in ids:
            raise CatalogError(f"{where}: every rule has a unique id")
        ids.add(rid)
        control, control_from = raw.get("control"), raw.get("control_from")
        if (control is None) == (control_from is None):
            raise CatalogError(f"{where}: a rule names exactly one of control or control_from")
        if control is not None and control not in catalog.controls:
            raise CatalogError(f"{where}: unknown platform control {control}")
        try:
            kind = EvidenceKind(raw.get("kind"))
        except ValueError as exc:
            raise CatalogError(f"{where}: kind is DESIGN or OPERATING") from exc
        rules.append(
            Rule(
                id=rid,
                version=version,
                event=str(raw["event"]),
                kind=kind,
                control=control,
                control_from=control_from,
                when=tuple(_condition(c, where) for c in raw.get("when") or []),
                checks=tuple(_condition(c, where) for c in raw.get("checks") or []),
                facts=tuple(str(f) for f in raw.get("facts") or []),
                people=tuple(str(p) for p in raw.get("people") or []),
                artifacts=tuple(str(a) for a in raw.get("artifacts") or []),
            )
        )
    by_event: dict[str, list[Rule]] = {}
    for rule in rules:
        by_event.setdefault(rule.event, []).append(rule)
    return RuleSet(version, sha256, tuple(rules), {k: tuple(v) for k, v in by_event.items()})


def published_hashes() -> dict[int, str]:
    raw = json.loads(resources.files(RULES_PACKAGE).joinpath("published.json").read_text())
    return {int(k): str(v) for k, v in raw.items()}


@lru_cache(maxsize=8)
def load_rules(version: int | None = None) -> RuleSet:
    """A published rules version (the newest when None); refuses a file changed after publication."""
    pinned = published_hashes()
    wanted = version if version is not None else max(pinned)
    if wanted not in pinned:
        raise CatalogError(f"rules v{wanted} is not published")
    data = resources.files(RULES_PACKAGE).joinpath(f"v{wanted}.yaml").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned[wanted]:
        raise CatalogError(f"rules v{wanted} changed after it was published: publish a new version instead")
    doc = yaml.safe_load(data)
    ruleset = parse_rules(doc, sha256=digest)
    if ruleset.version != wanted:
        raise CatalogError(f"v{wanted}.yaml declares version {ruleset.version}")
    return ruleset


@lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


@lru_cache(maxsize=4096)
def _top(path: str) -> str:
    """The payload key a fact or person path starts at (`approvals[].userId` → `approvals`)."""
    return path.split("[]")[0].split(".")[0]


def lookup(payload: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; None when any step is missing."""
    value: Any = payload
    for part in _steps(path):
        if type(value) is not dict and not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _people_at(payload: Mapping[str, Any], path: str) -> list[str]:
    head, _, rest = path.partition("[].")
    value = lookup(payload, head.removesuffix("[]"))
    if rest:
        if not isinstance(value, list):
            return []
        return [str(v) for item in value if isinstance(item, Mapping) and (v := lookup(item, rest))]
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return [str(value)] if value not in (None, "") else []


def people_of(ruleset: RuleSet, event: EventFacts) -> set[str]:
    """Every person identifier the event's rules would record: these get pseudonyms first."""
    found: set[str] = set()
    if event.actor_user_id is not None:
        found.add(str(event.actor_user_id))
    for rule in ruleset.by_event.get(event.event_type, ()):
        for path in rule.people:
            found.update(_people_at(event.payload, path))
    return found


def clean_text(value: str) -> str:
    """Valid UTF-8 text: lone surrogates (which JSON may carry) become U+FFFD instead of failing a hash."""
    if type(value) is str:
        if value.isascii():
            return value
        try:
            value.encode()
        except UnicodeEncodeError:  # surrogates: the UTF-16 round trip pairs what pairs, replaces the rest
            pass
        else:
            return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean(value: Any, *, depth: int = 0) -> Any:
    """A payload with every string and key made valid text; numbers and structure kept for the rules."""
    kind = type(value)
    if kind is str or isinstance(value, str):
        return clean_text(value)
    if depth >= 32:
        return None
    if kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {clean_text(str(k)): clean(v, depth=depth + 1) for k, v in value.items()}
    if kind is list or isinstance(value, list | tuple):
        return [clean(v, depth=depth + 1) for v in value]
    return value


def plain(value: Any, *, depth: int = 0) -> Any:
    """A JSON value that canonicalises the same everywhere: no floats, no unsafe integers, bounded size."""
    kind = type(value)  # exact types first: the common case, without isinstance's generality
    if kind is str:
        return value[:MAX_STRING]
    if kind is bool or value is None:
        return value
    if kind is int:
        return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else str(value)
    if kind is dict and depth < 6:
        items = value.items() if len(value) <= MAX_ITEMS else list(value.items())[:MAX_ITEMS]
        return {str(k)[:100]: plain(v, depth=depth + 1) for k, v in items}
    if kind is list and depth < 6:
        return [plain(v, depth=depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, bool | str):
        return value[:MAX_STRING] if isinstance(value, str) else value
    if isinstance(value, int):
        return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return repr(value)
    if depth >= 6:
        return str(value)[:MAX_STRING]
    if isinstance(value, Mapping):
        return {str(k)[:100]: plain(v, depth=depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, list | tuple):
        return [plain(v, depth=depth + 1) for v in list(value)[:MAX_ITEMS]]
    return str(value)[:MAX_STRING]


def _replace_people(value: Any, path: str, pseudonym: Callable[[str], str]) -> Any:
    """`value` (the fact at the top of `path`) with the person identifiers under `path` replaced."""
    _, _, rest = path.partition("[].")
    if rest:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, dict) and (v := item.get(rest)):
                item = {**item, rest: pseudonym(str(v))}
            out.append(item)
        return out
    if isinstance(value, list):
        return [pseudonym(str(v)) if v else v for v in value]
    return pseudonym(str(value)) if value not in (None, "") else value


def _artifact(name: str, value: Any) -> dict[str, str] | None:
    if value in (None, ""):
        return None
    ref = json.dumps(value, sort_keys=True, ensure_ascii=False) if not isinstance(value, str) else value
    return {"name": name, "ref_sha256": hashlib.sha256(ref.encode()).hexdigest()}


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _declared_artifacts(payload: Mapping[str, Any]) -> list[dict[str, str]]:
    """Artifacts the sender hashed itself: `artifacts: [{name, sha256}]`."""
    found = []
    raw = payload.get("artifacts")
    if isinstance(raw, list):
        for item in raw[:MAX_ITEMS]:
            if isinstance(item, Mapping) and isinstance(item.get("sha256"), str):
                digest = item["sha256"].lower().removeprefix("sha256:")
                if SHA256_HEX.fullmatch(digest):
                    found.append({"name": str(item.get("name") or "artifact")[:200], "sha256": digest})
    return found


def evaluate(ruleset: RuleSet, event: EventFacts, pseudonym: Callable[[str], str]) -> list[Observation]:
    """The observations `event` yields under `ruleset`: one per (rule, control) that applies."""
    catalog = load_catalog()
    actor = pseudonym(str(event.actor_user_id)) if event.actor_user_id is not None else event.actor_ref

    def value_at(path: str) -> Any:
        return actor if path == ACTOR else lookup(event.payload, path)

    observations: list[Observation] = []
    declared = _declared_artifacts(event.payload)
    for rule in ruleset.by_event.get(event.event_type, ()):
        if not all(c.holds(value_at(c.path)) for c in rule.when):
            continue
        checks = tuple((c.name, c.holds(value_at(c.path))) for c in rule.checks)
        facts: dict[str, Any] = {}
        for path in rule.facts:
            value = lookup(event.payload, path)
            if value is None:
                continue
            for person_path in rule.people:
                if _top(person_path) == _top(path):
                    value = _replace_people(value, person_path, pseudonym)
            facts[path] = plain(value)
        if actor is not None:
            facts["actor"] = actor
        artifacts = [a for name in rule.artifacts if (a := _artifact(name, lookup(event.payload, name)))]
        artifacts.extend(declared)
        outcome = Outcome.PASS if all(p for _, p in checks) else Outcome.FAIL
        if rule.control is not None:
            controls = [rule.control]
        else:
            listed = lookup(event.payload, rule.control_from or "")
            controls = (
                [str(c) for c in listed if str(c) in catalog.controls] if isinstance(listed, list) else []
            )
        for control_id in dict.fromkeys(controls):
            observations.append(
                Observation(rule, control_id, rule.kind, outcome, checks, facts, tuple(artifacts))
            )
    return observations
