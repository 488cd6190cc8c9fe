"""Compliance plans: what each tier allows (the spec's pricing table), and refusals that name a plan."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vibethink.compliance.catalog import FrameworkCode
from vibethink.core.errors import PermissionDenied


class Plan(enum.StrEnum):
    FREE = "FREE"
    PROFESSIONAL = "PROFESSIONAL"
    ENTERPRISE = "ENTERPRISE"


class ReportCadence(enum.StrEnum):
    MANUAL = "MANUAL"  # manual export only
    MONTHLY = "MONTHLY"
    REAL_TIME = "REAL_TIME"  # any frequency, and reports on demand at any moment


class ApiAccess(enum.StrEnum):
    NONE = "NONE"
    READ_ONLY = "READ_ONLY"
    FULL = "FULL"


class ReportFrequency(enum.StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"


@dataclass(frozen=True, slots=True)
class PlanLimits:
    plan: Plan
    frameworks: frozenset[str]
    max_frameworks: int | None  # None: unlimited
    max_custom_frameworks: int
    retention_years: int
    auto_generation: bool
    signing: bool
    reports: ReportCadence
    gap_analysis: bool
    ranked_recommendations: bool
    api_access: ApiAccess
    support: str
    price: str

    def allows_frequency(self, frequency: ReportFrequency) -> bool:
        if self.reports is ReportCadence.REAL_TIME:
            return True
        if self.reports is ReportCadence.MONTHLY:
            return frequency in (ReportFrequency.MONTHLY, ReportFrequency.QUARTERLY)
        return False


F = FrameworkCode
# The spec's "Framework Availability by Tier" table; COBIT and ITIL are not listed there, so only
# ENTERPRISE ("all frameworks") has them.
PLANS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(
        plan=Plan.FREE,
        frameworks=frozenset({F.GDPR}),
        max_frameworks=1,
        max_custom_frameworks=0,
        retention_years=1,
        auto_generation=False,
        signing=False,
        reports=ReportCadence.MANUAL,
        gap_analysis=False,
        ranked_recommendations=False,
        api_access=ApiAccess.NONE,
        support="Community",
        price="$0/month",
    ),
    Plan.PROFESSIONAL: PlanLimits(
        plan=Plan.PROFESSIONAL,
        frameworks=frozenset({F.CMMI_ML3, F.ISO_27001, F.GDPR, F.NIST_CSF, F.ISO_9001}),
        max_frameworks=5,
        max_custom_frameworks=0,
        retention_years=3,
        auto_generation=True,
        signing=True,
        reports=ReportCadence.MONTHLY,
        gap_analysis=True,
        ranked_recommendations=False,
        api_access=ApiAccess.READ_ONLY,
        support="Email",
        price="$299/month",
    ),
    Plan.ENTERPRISE: PlanLimits(
        plan=Plan.ENTERPRISE,
        frameworks=frozenset(FrameworkCode),
        max_frameworks=None,
        max_custom_frameworks=3,
        retention_years=7,
        auto_generation=True,
        signing=True,
        reports=ReportCadence.REAL_TIME,
        gap_analysis=True,
        ranked_recommendations=True,
        api_access=ApiAccess.FULL,
        support="Dedicated CSM",
        price="Custom",
    ),
}
ORDER = (Plan.FREE, Plan.PROFESSIONAL, Plan.ENTERPRISE)


class PlanRestriction(PermissionDenied):
    """Refused by the tenant's compliance plan; the message names the plan that allows it."""

    code = "plan_restriction"
    default_message = "Your compliance plan does not include this."

    def __init__(self, message: str, *, required_plan: Plan | None, field: str | None = None) -> None:
        details = {"required_plan": required_plan.value} if required_plan else {}
        super().__init__(message, field=field, details=details)


def limits(plan: Plan) -> PlanLimits:
    return PLANS[plan]


def cheapest(predicate: object) -> Plan | None:
    """The first plan (cheapest first) for which `predicate(limits)` holds."""
    assert callable(predicate)
    return next((p for p in ORDER if predicate(PLANS[p])), None)


def _needs(what: str, plan: Plan | None, current: Plan, *, field: str | None = None) -> PlanRestriction:
    if plan is None:
        return PlanRestriction(f"{what} is not available on any plan.", required_plan=None, field=field)
    return PlanRestriction(
        f"{what} needs the {plan.value} plan (this tenant is on {current.value}).",
        required_plan=plan,
        field=field,
    )


def check_frameworks(plan: Plan, frameworks: list[str]) -> None:
    own = PLANS[plan]
    for code in frameworks:
        if code not in own.frameworks:
            needed = cheapest(lambda lim, c=code: c in lim.frameworks)
            raise _needs(f"The {code} framework", needed, plan, field="enabled_frameworks")
    if own.max_frameworks is not None and len(frameworks) > own.max_frameworks:
        needed = cheapest(lambda lim: lim.max_frameworks is None or lim.max_frameworks >= len(frameworks))
        raise _needs(f"Enabling {len(frameworks)} frameworks", needed, plan, field="enabled_frameworks")


def check_custom_frameworks(plan: Plan, count_after: int) -> None:
    own = PLANS[plan]
    if count_after > own.max_custom_frameworks:
        if own.max_custom_frameworks > 0:
            raise PlanRestriction(
                f"The {plan.value} plan allows at most {own.max_custom_frameworks} custom frameworks.",
                required_plan=None,
                field="custom_frameworks",
            )
        needed = cheapest(lambda lim: lim.max_custom_frameworks >= count_after)
        raise _needs("Custom frameworks", needed, plan, field="custom_frameworks")


def check_retention(plan: Plan, years: int) -> None:
    if years > PLANS[plan].retention_years:
        needed = cheapest(lambda lim: lim.retention_years >= years)
        raise _needs(f"Keeping evidence {years} years", needed, plan, field="retention_years")


def check_feature(plan: Plan, feature: str) -> None:
    """One of: auto_generation, signing, gap_analysis, ranked_recommendations."""
    if not getattr(PLANS[plan], feature):
        needed = cheapest(lambda lim: bool(getattr(lim, feature)))
        label = {
            "auto_generation": "Automatic evidence generation",
            "signing": "Cryptographic signing",
            "gap_analysis": "Gap analysis",
            "ranked_recommendations": "Recommendations ranked by impact",
        }[feature]
        raise _needs(label, needed, plan, field=feature)


def check_frequency(plan: Plan, frequency: ReportFrequency) -> None:
    if not PLANS[plan].allows_frequency(frequency):
        needed = cheapest(lambda lim: lim.allows_frequency(frequency))
        raise _needs(f"{frequency.value.title()} scheduled reports", needed, plan, field="report_frequency")


def check_api(plan: Plan, *, write: bool) -> None:
    access = PLANS[plan].api_access
    if access is ApiAccess.FULL or (access is ApiAccess.READ_ONLY and not write):
        return
    if write:
        raise _needs("Writing through the compliance API", Plan.ENTERPRISE, plan)
    raise _needs("The compliance API", Plan.PROFESSIONAL, plan)
