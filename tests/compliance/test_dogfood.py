"""Dogfooding: the platform tenant tracks its own compliance, fed by its own events and release process."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.compliance.conftest import context
from tests.factories import ADMIN
from vibethink import demo
from vibethink.cli import app as cli
from vibethink.compliance import readiness, tasks
from vibethink.compliance.commands import build_payload
from vibethink.compliance.models import Evidence
from vibethink.compliance.state import load_state
from vibethink.core.database import Database
from vibethink.core.dispatcher import ConsumerRegistry, Dispatcher
from vibethink.core.settings import Settings


async def platform_tenant(db: Database) -> object:
    async with db.transaction(ADMIN) as session:
        return await session.scalar(text("SELECT id FROM tenants WHERE slug = 'vibethink'"))


class TestThePlatformUsesItsOwnModule:
    async def test_the_demo_gives_the_platform_the_specs_config_and_evidence(
        self, db: Database, test_settings: Settings, tmp_path: Path
    ) -> None:
        await demo.load(test_settings, db=db)
        tenant_id = await platform_tenant(db)
        settings = test_settings.model_copy(update={"compliance_keys_dir": tmp_path / "keys"})
        registry = ConsumerRegistry()
        tasks.register(registry, settings=lambda: settings)
        await Dispatcher(db, registry, worker_id="dogfood").drain()
        async with db.transaction(context(tenant_id)) as session:  # type: ignore[arg-type]
            state = await load_state(session, tenant_id)  # type: ignore[arg-type]
            assert state.plan.value == "ENTERPRISE"
            assert list(state.enabled_frameworks) == [
                "CMMI_ML3",
                "ISO_27001",
                "SOC2_TYPE2",
                "GDPR",
                "NIST_CSF",
            ]
            assert state.retention_years == 7
            internal = state.framework("CUSTOM:VIBETHINK_INTERNAL")
            assert list(internal.requirements) == ["VT-001", "VT-002"]
            rows = (await session.scalars(select(Evidence).where(Evidence.tenant_id == tenant_id))).all()
            assert {"CODE_DEPLOYMENT", "PULL_REQUEST_MERGED", "TRAINING_COMPLETED"} <= {
                r.event_type for r in rows
            }
            custom = await readiness.framework_readiness(session, state, "CUSTOM:VIBETHINK_INTERNAL")
        assert custom.met_requirements == 2
        again = await demo.load(test_settings, db=db)
        assert not [c for c in again.created if "compliance" in c]

    def test_the_release_process_emits_a_deployment_from_the_command_line(self) -> None:
        payload = build_payload(
            None,
            [
                "version=v2.4.0",
                "environment=PRODUCTION",
                "qualityGates.tests=PASSED",
                "qualityGates.coverage=0.9",
            ],
            ["tech-lead@vibethink.com", "devops-lead@vibethink.com"],
            datetime.now(UTC),
        )
        assert payload["qualityGates"] == {"tests": "PASSED", "coverage": 0.9}
        assert [a["userId"] for a in payload["approvals"]] == [
            "tech-lead@vibethink.com",
            "devops-lead@vibethink.com",
        ]
        refused = CliRunner().invoke(cli, ["events", "emit", "bad type"])
        assert refused.exit_code != 0
        assert "UPPER_SNAKE_CASE" in refused.output
