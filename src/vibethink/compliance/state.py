"""A tenant's compliance state as the ledger and readiness read it: plan, settings, custom frameworks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import driver
from vibethink.compliance.catalog import (
    Framework,
    Licence,
    Relationship,
    RequirementGroup,
    TextPolicy,
    load_catalog,
)
from vibethink.compliance.catalog import Requirement as CatalogRequirement
from vibethink.compliance.plans import PLANS, Plan, PlanLimits, ReportFrequency

CUSTOM_PREFIX = "CUSTOM:"


@dataclass(frozen=True, slots=True)
class CustomMapping:
    control_id: str
    framework: str
    requirement_id: str
    relationship: Relationship


@dataclass(frozen=True)
class TenantCompliance:
    tenant_id: uuid.UUID
    plan: Plan
    version: int  # settings version; 0 when never saved
    enabled_frameworks: tuple[str, ...]
    enabled_at: dict[str, Any]
    auto_generation: bool
    signing_enabled: bool
    retention_years: int
    report_frequency: ReportFrequency
    report_recipients: tuple[str, ...]
    updated_at: datetime | None
    custom_frameworks: dict[str, Framework] = field(default_factory=dict)
    custom_mappings: tuple[CustomMapping, ...] = ()

    @property
    def limits(self) -> PlanLimits:
        return PLANS[self.plan]

    @property
    def signs(self) -> bool:
        return self.signing_enabled and self.limits.signing

    @property
    def generates_automatically(self) -> bool:
        return self.auto_generation and self.limits.auto_generation

    @property
    def tracked_frameworks(self) -> list[str]:
        """Enabled catalog frameworks the plan still allows, then the custom ones."""
        allowed = [f for f in self.enabled_frameworks if f in self.limits.frameworks]
        return allowed + list(self.custom_frameworks)

    def framework(self, code: str) -> Framework:
        if code in self.custom_frameworks:
            return self.custom_frameworks[code]
        return load_catalog().framework(code)

    def relevant_controls(self) -> set[str]:
        """Controls that map to something this tenant tracks: only these produce evidence."""
        catalog = load_catalog()
        tracked = set(self.tracked_frameworks)
        found = {c.id for c in catalog.controls.values() if any(m.framework in tracked for m in c.mappings)}
        found.update(m.control_id for m in self.custom_mappings)
        return found

    def mappings_for_requirement(self, framework: str, requirement_id: str) -> list[CustomMapping]:
        if framework in self.custom_frameworks:
            return [
                m
                for m in self.custom_mappings
                if m.framework == framework and m.requirement_id == requirement_id
            ]
        return [
            CustomMapping(m.control_id, m.framework, m.requirement_id, m.relationship)
            for m in load_catalog().mappings_for_requirement(framework, requirement_id)
        ]

    def frameworks_for_control(self, control_id: str) -> list[tuple[str, str]]:
        """(framework, requirement) pairs a control's evidence counts toward, for this tenant."""
        tracked = set(self.tracked_frameworks)
        pairs = (
            [
                (m.framework, m.requirement_id)
                for m in load_catalog().controls[control_id].mappings
                if m.framework in tracked
            ]
            if control_id in load_catalog().controls
            else []
        )
        pairs.extend(
            (m.framework, m.requirement_id) for m in self.custom_mappings if m.control_id == control_id
        )
        return pairs


def custom_framework(code: str, name: str, description: str, requirements: list[dict[str, Any]]) -> Framework:
    """A custom framework as a catalog Framework (one group), keyed `CUSTOM:<code>`."""
    key = CUSTOM_PREFIX + code
    reqs = {r["id"]: CatalogRequirement(key, r["id"], r["title"], code, name) for r in requirements}
    return Framework(
        code=key,
        name=name,
        edition="custom",
        catalog_version=1,
        licence=Licence(
            holder="tenant", text=TextPolicy.OWN, note=description or "The tenant's own framework."
        ),
        groups=(RequirementGroup(code, name, tuple(reqs)),),
        requirements=reqs,
        source_sha256="",
        is_custom=True,
    )


# Through the driver when the transaction is open (the evidence writer's path), `$1`: the tenant.
STATE_SQL = """
    SELECT t.tier::text AS tier, s.version, s.enabled_frameworks, s.enabled_at, s.auto_generation,
           s.signing_enabled, s.retention_years, s.report_frequency, s.report_recipients, s.created_at,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('code', f.code, 'name', f.name,
                    'description', f.description, 'requirements', f.requirements) ORDER BY f.code), '[]')
              FROM compliance_custom_frameworks f WHERE f.tenant_id = t.id) AS custom
      FROM tenants t
      LEFT JOIN LATERAL (
        SELECT * FROM compliance_settings cs WHERE cs.tenant_id = t.id ORDER BY cs.version DESC LIMIT 1
      ) s ON true
     WHERE t.id = $1
    """


def default_settings(plan: Plan) -> dict[str, Any]:
    """What a tenant that never saved settings gets: GDPR (every plan has it), plan-level features on."""
    limits = PLANS[plan]
    return {
        "enabled_frameworks": ["GDPR"],
        "enabled_at": {},
        "auto_generation": limits.auto_generation,
        "signing_enabled": limits.signing,
        "retention_years": limits.retention_years,
        "report_frequency": ReportFrequency.MONTHLY.value,
        "report_recipients": [],
    }


async def load_state(session: AsyncSession | driver.Bound, tenant_id: uuid.UUID) -> TenantCompliance:
    return state_from_row(tenant_id, await driver.fetch_one(session, STATE_SQL, tenant_id))


def state_from_row(tenant_id: uuid.UUID, row: dict[str, Any] | None) -> TenantCompliance:
    """The state from `STATE_SQL`'s row (None, or a null `tier`: no such tenant)."""
    if row is not None and row["tier"] is None:
        row = None
    plan = Plan(row["tier"]) if row is not None else Plan.FREE
    values = default_settings(plan)
    version, updated_at = 0, None
    custom_raw: list[dict[str, Any]] = []
    if row is not None:
        custom_raw = list(row["custom"] or [])
        if row["version"] is not None:
            version, updated_at = row["version"], row["created_at"]
            values = {
                "enabled_frameworks": list(row["enabled_frameworks"]),
                "enabled_at": dict(row["enabled_at"]),
                "auto_generation": row["auto_generation"],
                "signing_enabled": row["signing_enabled"],
                "retention_years": row["retention_years"],
                "report_frequency": row["report_frequency"],
                "report_recipients": list(row["report_recipients"]),
            }
    customs: dict[str, Framework] = {}
    mappings: list[CustomMapping] = []
    for raw in custom_raw:
        framework = custom_framework(
            raw["code"], raw["name"], raw.get("description", ""), raw["requirements"]
        )
        customs[framework.code] = framework
        for req in raw["requirements"]:
            for link in req.get("controls", []):
                mappings.append(
                    CustomMapping(
                        link["control"], framework.code, req["id"], Relationship(link["relationship"])
                    )
                )
    return TenantCompliance(
        tenant_id=tenant_id,
        plan=plan,
        version=version,
        enabled_frameworks=tuple(values["enabled_frameworks"]),
        enabled_at=values["enabled_at"],
        auto_generation=values["auto_generation"],
        signing_enabled=values["signing_enabled"],
        retention_years=values["retention_years"],
        report_frequency=ReportFrequency(values["report_frequency"]),
        report_recipients=tuple(values["report_recipients"]),
        updated_at=updated_at,
        custom_frameworks=customs if PLANS[plan].max_custom_frameworks else {},
        custom_mappings=tuple(mappings) if PLANS[plan].max_custom_frameworks else (),
    )
