"""Platform events reach the ledger through the outbox, and the CLI verifies an export offline."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from tests.compliance.conftest import FIVE, PEPPER, context, make_ledger, owner
from vibethink.cli import app as cli
from vibethink.compliance import service, tasks
from vibethink.compliance.export import write_export
from vibethink.compliance.keys import KeyStore
from vibethink.compliance.models import Evidence
from vibethink.core import outbox
from vibethink.core.database import Database
from vibethink.core.dispatcher import ConsumerRegistry, Dispatcher, default_registry
from vibethink.core.settings import Settings


class TestTheOutboxConsumer:
    def test_it_is_in_the_default_registry(self) -> None:
        assert any(c.name == tasks.CONSUMER for c in default_registry().for_event("CODE_DEPLOYMENT"))
        assert any(c.name == tasks.CONSUMER for c in default_registry().for_event("USER_CREATED"))
        assert not any(c.name == tasks.CONSUMER for c in default_registry().for_event("CONVERSATION_STARTED"))

    async def test_platform_events_become_evidence(
        self, db: Database, keys: KeyStore, test_settings: Settings, tmp_path: Path
    ) -> None:
        made = await make_ledger(db, keys, frameworks=FIVE)
        actor = uuid.uuid4()
        async with db.transaction(context(made.tenant.id)) as session:
            await outbox.emit(
                session,
                "ROLE_ASSIGNED",
                tenant_id=made.tenant.id,
                actor_user_id=actor,
                actor_role="TALENT_OWNER",
                subject_type="user",
                subject_id=uuid.uuid4(),
                payload={"role": "TALENT_MANAGER", "previous_role": None, "invited": True},
            )
        settings = test_settings.model_copy(update={"compliance_keys_dir": tmp_path / "keys"})
        registry = ConsumerRegistry()
        tasks.register(registry, settings=lambda: settings)
        await Dispatcher(db, registry, worker_id="test").drain()
        async with db.transaction(context(made.tenant.id)) as session:
            rows = list(
                (await session.scalars(select(Evidence).where(Evidence.tenant_id == made.tenant.id))).all()
            )
        # The settings change itself (CONFIGURATION_CHANGE) and the role assignment are both evidence.
        by_type = {r.event_type: r for r in rows}
        assert by_type["ROLE_ASSIGNED"].control_id == "IAM-01"
        assert by_type["ROLE_ASSIGNED"].outcome == "PASS"
        assert str(actor) not in str(by_type["ROLE_ASSIGNED"].observation)
        assert by_type["CONFIGURATION_CHANGE"].control_id == "CHG-02"

    async def test_a_tenants_claimed_events_become_one_gapless_run_of_evidence_in_their_order(
        self, db: Database, keys: KeyStore, test_settings: Settings, tmp_path: Path
    ) -> None:
        from tests.compliance.conftest import deployment

        made = await make_ledger(db, keys, frameworks=FIVE)
        versions = [f"v9.{n}.0" for n in range(12)]
        emitted = []
        for version in versions:  # one change each, as the platform makes them
            async with db.transaction(context(made.tenant.id)) as session:
                emitted.append(
                    await outbox.emit(
                        session,
                        "CODE_DEPLOYMENT",
                        tenant_id=made.tenant.id,
                        payload={**deployment().payload, "version": version},
                    )
                )
        settings = test_settings.model_copy(update={"compliance_keys_dir": tmp_path / "keys"})
        registry = ConsumerRegistry()
        tasks.register(registry, settings=lambda: settings)
        dispatcher = Dispatcher(db, registry, worker_id="test", batch_size=100)
        await dispatcher.drain()
        await dispatcher.drain()  # nothing is left to add

        async with db.transaction(context(made.tenant.id)) as session:
            rows = list(
                (
                    await session.scalars(
                        select(Evidence)
                        .where(Evidence.tenant_id == made.tenant.id, Evidence.event_type == "CODE_DEPLOYMENT")
                        .order_by(Evidence.seq)
                    )
                ).all()
            )
            path = tmp_path / "ledger.zip"
            await write_export(session, keys, made.tenant.id, path)
        assert len(rows) == 3 * len(emitted)  # three controls per deployment, once each
        assert [r.event_id for r in rows[::3]] == emitted
        assert [r.observation["facts"]["version"] for r in rows[::3]] == versions
        assert [r.seq for r in rows] == list(range(rows[0].seq, rows[0].seq + len(rows)))
        result = CliRunner().invoke(cli, ["compliance", "verify", str(path), "--workers", "1"])
        assert result.exit_code == 0, result.output

    async def test_a_claim_of_several_tenants_becomes_each_ones_verified_evidence_in_one_transaction(
        self, db: Database, keys: KeyStore, test_settings: Settings, tmp_path: Path
    ) -> None:
        from tests.compliance.conftest import deployment

        ledgers = [await make_ledger(db, keys, frameworks=FIVE) for _ in range(3)]
        await ledgers[0].record([deployment()])  # one chain already has a head
        emitted: dict[uuid.UUID, list[uuid.UUID]] = {made.tenant.id: [] for made in ledgers}
        for n in range(4):
            for made in ledgers:
                async with db.transaction(context(made.tenant.id)) as session:
                    emitted[made.tenant.id].append(
                        await outbox.emit(
                            session,
                            "CODE_DEPLOYMENT",
                            tenant_id=made.tenant.id,
                            payload={**deployment().payload, "version": f"v{n}"},
                        )
                    )
        settings = test_settings.model_copy(update={"compliance_keys_dir": tmp_path / "keys"})
        registry = ConsumerRegistry()
        tasks.register(registry, settings=lambda: settings)
        await Dispatcher(db, registry, worker_id="test", batch_size=1000).drain()

        recorded = set()
        for made in ledgers:
            async with db.transaction(context(made.tenant.id)) as session:
                rows = list(
                    (
                        await session.scalars(
                            select(Evidence)
                            .where(Evidence.tenant_id == made.tenant.id, Evidence.source == "PLATFORM")
                            .order_by(Evidence.seq)
                        )
                    ).all()
                )
                path = tmp_path / f"{made.tenant.id}.zip"
                await write_export(session, keys, made.tenant.id, path)
            deployments = [r for r in rows if r.event_type == "CODE_DEPLOYMENT"]
            assert [r.event_id for r in deployments[::3]] == emitted[made.tenant.id]  # in their order
            recorded |= {r.recorded_at for r in deployments}
            result = CliRunner().invoke(cli, ["compliance", "verify", str(path), "--workers", "1"])
            assert result.exit_code == 0, result.output
        assert len(recorded) == 1  # the claim's evidence, every tenant's, in one transaction


class TestTheVerifyCommand:
    async def test_it_verifies_an_export_and_names_the_first_bad_record(
        self, db: Database, keys: KeyStore, tmp_path: Path
    ) -> None:
        from tests.compliance.conftest import deployment

        made = await make_ledger(db, keys)
        await made.record([deployment(), deployment()])
        path = tmp_path / "ledger.zip"
        async with db.transaction(context(made.tenant.id)) as session:
            await write_export(session, keys, made.tenant.id, path)
            await service.add_note(session, owner(made.tenant.id), 1, "looked fine", pepper=PEPPER)
        runner = CliRunner()
        result = runner.invoke(cli, ["compliance", "verify", str(path), "--workers", "1"])
        assert result.exit_code == 0, result.output
        assert "VERIFIED" in result.output
        assert "6 records (6 signed)" in result.output

        broken = tmp_path / "broken"
        import zipfile

        zipfile.ZipFile(path).extractall(broken)
        lines = (broken / "evidence.jsonl").read_text().splitlines()
        lines[2] = lines[2].replace('"outcome":"PASS"', '"outcome":"FAIL"')
        (broken / "evidence.jsonl").write_text("\n".join(lines) + "\n")
        result = runner.invoke(cli, ["compliance", "verify", str(broken), "--workers", "1"])
        assert result.exit_code == 1
        assert "first bad record: record 3: content does not match its entry hash" in result.output
        assert "problem: file evidence.jsonl: its SHA-256 does not match the manifest" in result.output
