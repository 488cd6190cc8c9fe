"""The platform's own compliance configuration (the spec's ViTo config): it uses its own module."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance.models import ComplianceSettings, CustomFramework
from vibethink.core import outbox

PLATFORM_FRAMEWORKS = ["CMMI_ML3", "ISO_27001", "SOC2_TYPE2", "GDPR", "NIST_CSF"]
INTERNAL_STANDARDS: dict[str, Any] = {
    "code": "VIBETHINK_INTERNAL",
    "name": "VibeThink Internal Quality Standards",
    "description": "The platform team's own engineering rules.",
    "requirements": [
        {
            "id": "VT-001",
            "title": "Code Review Mandatory",
            "description": "All code must have 2+ approvals before merge",
            "controls": [{"control": "CHG-04", "relationship": "equal"}],
            "evidence_types": ["PR_APPROVAL_LOG"],
        },
        {
            "id": "VT-002",
            "title": "Security Scan on Every Commit",
            "description": "SAST/DAST scan required for all commits",
            "controls": [{"control": "CHG-03", "relationship": "equal"}],
            "evidence_types": ["SECURITY_SCAN_REPORT"],
        },
    ],
}


def _history(now: datetime) -> list[tuple[str, datetime, dict[str, Any]]]:
    """A first few weeks of the platform's own engineering events, so its dashboard starts populated."""
    day = timedelta(days=1)
    return [
        (
            "SECURITY_POLICY_UPDATED",
            now - 20 * day,
            {
                "policy": "information-security",
                "version": "4",
                "approvedBy": "ciso@vibethink.com",
                "document": "handbook/security-policy.md",
                "controls": ["CHG-01", "IAM-02", "LOG-01", "INC-01"],
            },
        ),
        (
            "TRAINING_COMPLETED",
            now - 12 * day,
            {"course": "Security awareness 2026", "passed": True, "userId": "john.doe@vibethink.com"},
        ),
        (
            "ACCESS_REVIEW_COMPLETED",
            now - 9 * day,
            {
                "scope": "production",
                "accountsReviewed": 14,
                "accessRemoved": 1,
                "reviewer": "cto@vibethink.com",
            },
        ),
        (
            "PULL_REQUEST_MERGED",
            now - 3 * day,
            {
                "repository": "vibethink/platform",
                "pullRequest": 812,
                "author": "john.doe@vibethink.com",
                "approvals": [{"userId": "tech-lead@vibethink.com"}, {"userId": "devops-lead@vibethink.com"}],
            },
        ),
        (
            "SECURITY_SCAN_COMPLETED",
            now - 3 * day,
            {"tool": "semgrep", "commit": "9f2c1ab", "critical": 0, "high": 1},
        ),
        (
            "CODE_DEPLOYMENT",
            now - 2 * day,
            {
                "version": "v2.3.1",
                "environment": "PRODUCTION",
                "deploymentType": "CANARY",
                "approvals": [
                    {"userId": "tech-lead@vibethink.com", "timestamp": (now - 2 * day).isoformat()},
                    {"userId": "devops-lead@vibethink.com", "timestamp": (now - 2 * day).isoformat()},
                ],
                "qualityGates": {
                    "tests": "PASSED",
                    "coverage": 0.87,
                    "securityScan": "PASSED",
                    "performanceTest": "PASSED",
                },
                "rollbackPlan": "docs/runbooks/rollback-v2.3.1.md",
                "actor": {"userId": "john.doe@vibethink.com"},
            },
        ),
        (
            "INCIDENT_CREATED",
            now - day,
            {"incident": "INC-42", "severity": "SEV3", "category": "availability"},
        ),
        (
            "INCIDENT_RESOLVED",
            now - day / 2,
            {"incident": "INC-42", "severity": "SEV3", "rootCause": "pool exhausted"},
        ),
    ]


async def configure_platform(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    """Gives the platform tenant its compliance config once; running it again changes nothing."""
    created: list[str] = []
    has_settings = await session.scalar(
        select(ComplianceSettings.version).where(ComplianceSettings.tenant_id == tenant_id).limit(1)
    )
    now = datetime.now(UTC)
    if has_settings is None:
        session.add(
            ComplianceSettings(
                tenant_id=tenant_id,
                version=1,
                enabled_frameworks=PLATFORM_FRAMEWORKS,
                enabled_at={code: now.isoformat() for code in PLATFORM_FRAMEWORKS},
                auto_generation=True,
                signing_enabled=True,
                retention_years=7,
                report_frequency="MONTHLY",
                report_recipients=["compliance@vibethink.com"],
            )
        )
        created.append("compliance settings for the platform")
    has_internal = await session.scalar(
        select(CustomFramework.id).where(
            CustomFramework.tenant_id == tenant_id, CustomFramework.code == INTERNAL_STANDARDS["code"]
        )
    )
    if has_internal is None:
        session.add(CustomFramework(tenant_id=tenant_id, **INTERNAL_STANDARDS))
        created.append("custom framework VIBETHINK_INTERNAL")
    await session.flush()
    if has_settings is None:
        for event_type, occurred_at, payload in _history(now):
            await outbox.emit(
                session,
                event_type,
                tenant_id=tenant_id,
                actor_role="RELEASE_PROCESS",
                payload={**payload, "occurredAt": occurred_at.isoformat()},
            )
    return created
