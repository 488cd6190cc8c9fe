"""Compliance fixtures: tenants on each plan, a key folder of their own, and helpers to record evidence."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.factories import MadeTenant, make_tenant
from vibethink.compliance import ledger, service
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.schemas import SettingsUpdate
from vibethink.core.database import Database, RlsContext
from vibethink.tenancy.access import Principal
from vibethink.tenancy.models import Role, TenantKind
from vibethink.tenancy.permissions import ALL_SCOPES

PEPPER = b"test-pepper"
FIVE = ["CMMI_ML3", "ISO_27001", "SOC2_TYPE2", "GDPR", "NIST_CSF"]


def owner(tenant_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        tenant_id=tenant_id,
        tenant_kind=TenantKind.TALENT,
        permissions=ALL_SCOPES,
        via="session",
        user_id=user_id or uuid.uuid4(),
        role=Role.TALENT_OWNER,
    )


def context(tenant_id: uuid.UUID) -> RlsContext:
    return RlsContext(tenant_id=tenant_id, role="TALENT_OWNER")


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys")


@dataclass
class Ledger:
    db: Database
    keys: KeyStore
    tenant: MadeTenant

    async def record(self, events: Sequence[ledger.IncomingEvent], **kwargs: Any) -> ledger.AppendResult:
        async with self.db.transaction(context(self.tenant.id)) as session:
            return await ledger.append(session, self.keys, PEPPER, self.tenant.id, events, **kwargs)

    async def configure(self, **changes: Any) -> None:
        async with self.db.transaction(context(self.tenant.id)) as session:
            await service.update_settings(session, owner(self.tenant.id), SettingsUpdate(**changes))


async def make_ledger(
    db: Database, keys: KeyStore, *, tier: str = "ENTERPRISE", frameworks: list[str] | None = None
) -> Ledger:
    tenant = await make_tenant(db, slug=f"compliance-{uuid.uuid4().hex[:10]}", tier=tier)
    made = Ledger(db, keys, tenant)
    await made.configure(enabled_frameworks=frameworks if frameworks is not None else FIVE)
    return made


@pytest.fixture
async def enterprise(db: Database, keys: KeyStore) -> Ledger:
    return await make_ledger(db, keys)


def deployment(
    *, approvals: int = 2, event_id: uuid.UUID | None = None, **overrides: Any
) -> ledger.IncomingEvent:
    payload: dict[str, Any] = {
        "version": "v2.3.1",
        "environment": "PRODUCTION",
        "deploymentType": "CANARY",
        "approvals": [
            {"userId": "tech-lead@vibethink.com", "timestamp": "2026-01-10T00:25:00Z"},
            {"userId": "devops-lead@vibethink.com", "timestamp": "2026-01-10T00:27:00Z"},
        ][:approvals],
        "qualityGates": {"tests": "PASSED", "coverage": 0.87, "securityScan": "PASSED"},
        "rollbackPlan": "docs/runbooks/rollback-v2.3.1.md",
        **overrides,
    }
    return ledger.IncomingEvent(
        event_id=event_id or uuid.uuid4(),
        event_type="CODE_DEPLOYMENT",
        occurred_at=datetime.now(UTC),
        payload=payload,
        source=ledger.Source.EXTERNAL,
        actor_ref="john.doe@vibethink.com",
    )
