"""The evidence ledger: signed, chained rows per (event, control), checkpoints, proofs, tampering caught."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from tests.compliance.conftest import PEPPER, Ledger, context, deployment, make_ledger, owner
from tests.core.schema_catalog import connect
from vibethink.compliance import driver, ledger, merkle, pseudonyms, service
from vibethink.compliance.canonical import canonical
from vibethink.compliance.catalog import load_catalog
from vibethink.compliance.export import write_export
from vibethink.compliance.keys import KeyStore, verify_signature
from vibethink.compliance.models import Checkpoint, Evidence
from vibethink.compliance.state import load_state
from vibethink.compliance.verify import verify_export
from vibethink.core.database import Database, RlsContext

PERMISSION_DENIED = re.compile("permission denied for table compliance_evidence")


async def rows_of(made: Ledger) -> list[Evidence]:
    async with made.db.transaction(context(made.tenant.id)) as session:
        return list(
            (
                await session.scalars(
                    select(Evidence).where(Evidence.tenant_id == made.tenant.id).order_by(Evidence.seq)
                )
            ).all()
        )


async def export(made: Ledger, tmp_path: Path) -> Path:
    destination = tmp_path / f"export-{uuid.uuid4().hex[:6]}.zip"
    async with made.db.transaction(context(made.tenant.id)) as session:
        await write_export(session, made.keys, made.tenant.id, destination)
    return destination


class TestTheSpecsDeploymentBecomesEvidence:
    async def test_one_row_per_event_and_control_mapped_to_every_enabled_framework(
        self, enterprise: Ledger
    ) -> None:
        result = await enterprise.record([deployment()])
        assert sorted(r["control_id"] for r in result.rows) == ["CHG-01", "CHG-03", "TST-01"]
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            state = await load_state(session, enterprise.tenant.id)
        targets = set(state.frameworks_for_control("CHG-01"))
        assert {("ISO_27001", "A.8.32"), ("SOC2_TYPE2", "CC8.1"), ("GDPR", "Art.32")} <= targets
        assert any(f == "CMMI_ML3" and r.startswith("PI.") for f, r in targets)
        change = next(r for r in result.rows if r["control_id"] == "CHG-01")
        assert change["outcome"] == "PASS"
        assert change["kind"] == "OPERATING"

    async def test_the_same_event_without_approvals_is_a_failing_observation(
        self, enterprise: Ledger
    ) -> None:
        result = await enterprise.record([deployment(approvals=0)])
        change = next(r for r in result.rows if r["control_id"] == "CHG-01")
        assert change["outcome"] == "FAIL"
        assert change["observation"]["failed"] == ["two_approvals"]

    async def test_every_row_is_signed_hashed_and_chained(self, enterprise: Ledger) -> None:
        await enterprise.record([deployment(), deployment()])
        rows = await rows_of(enterprise)
        assert [r.seq for r in rows] == list(range(1, 7))
        public = enterprise.keys.public_keys()
        previous = ledger.GENESIS
        for row in rows:
            values = {c.key: getattr(row, c.key) for c in Evidence.__table__.columns}
            digest = ledger.entry_hash_of(ledger.record_document(values))
            assert digest.hex() == row.entry_hash
            assert row.prev_hash == previous
            assert row.key_id in public
            assert row.signature is not None
            assert verify_signature(public[row.key_id], bytes.fromhex(row.signature), digest)
            previous = row.entry_hash

    async def test_a_redelivered_event_adds_nothing(self, enterprise: Ledger) -> None:
        event = deployment()
        assert (await enterprise.record([event])).count == 3
        assert (await enterprise.record([event])).count == 0
        assert len(await rows_of(enterprise)) == 3

    async def test_people_are_pseudonymised_and_erasure_keeps_the_chain(
        self, enterprise: Ledger, tmp_path: Path
    ) -> None:
        await enterprise.record([deployment()])
        stored = repr([r.observation for r in await rows_of(enterprise)])
        assert "vibethink.com" not in stored
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            before = await pseudonyms.resolve(
                session, PEPPER, enterprise.tenant.id, ["tech-lead@vibethink.com"]
            )
            assert before["tech-lead@vibethink.com"] in stored
            erased = await service.erase_people(
                session, owner(enterprise.tenant.id), ["tech-lead@vibethink.com"], pepper=PEPPER
            )
            assert erased == 1
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            after = await pseudonyms.resolve(
                session, PEPPER, enterprise.tenant.id, ["tech-lead@vibethink.com"]
            )
        assert after != before  # a new key: the old pseudonym can no longer be linked to the person
        report = verify_export(await export(enterprise, tmp_path), workers=1)
        assert report.ok, report.problems


class TestPlansDecideWhatIsRecorded:
    async def test_free_tenants_get_no_automatic_evidence_from_platform_events(
        self, db: Database, keys: KeyStore
    ) -> None:
        free = await make_ledger(db, keys, tier="FREE", frameworks=["GDPR"])
        platform_event = ledger.IncomingEvent(
            uuid.uuid4(), "CODE_DEPLOYMENT", deployment().occurred_at, deployment().payload
        )
        result = await free.record([platform_event])
        assert result.count == 0
        assert result.skipped_events == 1

    async def test_free_tenants_record_external_events_unsigned(self, db: Database, keys: KeyStore) -> None:
        free = await make_ledger(db, keys, tier="FREE", frameworks=["GDPR"])
        result = await free.record([deployment()])
        assert [r["control_id"] for r in result.rows] == [
            "CHG-01",
            "CHG-03",
        ]  # TST-01 maps to no GDPR article
        assert all(r["signature"] is None and r["key_id"] is None for r in result.rows)

    async def test_controls_mapping_to_nothing_enabled_produce_no_evidence(
        self, db: Database, keys: KeyStore
    ) -> None:
        made = await make_ledger(db, keys, frameworks=["HIPAA"])
        event = ledger.IncomingEvent(uuid.uuid4(), "SPRINT_STARTED", deployment().occurred_at, {"sprint": 4})
        assert (
            await made.record(
                [event],
            )
        ).count == 0


class TestCheckpointsAndProofs:
    async def test_checkpoints_are_signed_merkle_roots_at_intervals(self, enterprise: Ledger) -> None:
        for _ in range(3):
            await enterprise.record([deployment()], checkpoint_every=4)
        rows = await rows_of(enterprise)
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            checkpoints = list(
                (
                    await session.scalars(
                        select(Checkpoint)
                        .where(Checkpoint.tenant_id == enterprise.tenant.id)
                        .order_by(Checkpoint.tree_size)
                    )
                ).all()
            )
        assert [c.tree_size for c in checkpoints] == [4, 8]
        leaves = [bytes.fromhex(r.entry_hash) for r in rows]
        for cp in checkpoints:
            assert cp.root_hash == merkle.root(leaves[: cp.tree_size]).hex()
            document = ledger.checkpoint_document(
                enterprise.tenant.id, cp.tree_size, cp.root_hash, cp.issued_at, cp.key_id
            )
            assert cp.key_id is not None
            assert cp.signature is not None
            assert verify_signature(
                enterprise.keys.public_keys()[cp.key_id], bytes.fromhex(cp.signature), canonical(document)
            )

    async def test_inclusion_and_consistency_proofs_verify(self, enterprise: Ledger) -> None:
        for _ in range(3):
            await enterprise.record([deployment()], checkpoint_every=4)
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            proof = await ledger.inclusion_proof(
                session, enterprise.keys, enterprise.tenant.id, 3, tree_size=8
            )
            consistency = await ledger.consistency_proof(session, enterprise.tenant.id, 4, 8)
        assert merkle.verify_inclusion(
            bytes.fromhex(proof.leaf_hash),
            2,
            8,
            [bytes.fromhex(p) for p in proof.path],
            bytes.fromhex(proof.checkpoint.root_hash),
        )
        assert merkle.verify_consistency(
            4,
            8,
            bytes.fromhex(consistency.old.root_hash),
            bytes.fromhex(consistency.new.root_hash),
            [bytes.fromhex(p) for p in consistency.path],
        )


class TestSigning:
    def test_libsodium_signs_exactly_what_openssl_signs(self, tmp_path: Path) -> None:
        key = KeyStore(tmp_path / "keys").active()
        assert key.sodium_secret is not None  # the writer's path
        for message in (b"", b"x" * 32, bytes(range(256))):
            signature = key.sign(message)
            assert signature == key.private.sign(message)  # Ed25519 is deterministic (RFC 8032)
            assert verify_signature(key.public, signature, message)


class TestCheckpointsFromTheFrontierInMemory:
    """The writer keeps each tenant's Merkle frontier between calls; it must only ever use a current one."""

    async def roots_match_the_table(self, made: Ledger) -> list[int]:
        rows = await rows_of(made)
        leaves = [bytes.fromhex(r.entry_hash) for r in rows]
        async with made.db.transaction(context(made.tenant.id)) as session:
            checkpoints = (
                await session.scalars(
                    select(Checkpoint)
                    .where(Checkpoint.tenant_id == made.tenant.id)
                    .order_by(Checkpoint.tree_size)
                )
            ).all()
        for cp in checkpoints:
            assert cp.root_hash == merkle.root(leaves[: cp.tree_size]).hex()
            assert merkle.frontier_root([(s, bytes.fromhex(h)) for s, h in cp.frontier]).hex() == cp.root_hash
        return [cp.tree_size for cp in checkpoints]

    async def test_a_rolled_back_append_does_not_leak_into_the_next_checkpoint(
        self, enterprise: Ledger
    ) -> None:
        await enterprise.record([deployment()], checkpoint_every=5)  # rows 1-3, the frontier is kept

        async def append_then_fail() -> None:
            async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
                await ledger.append(
                    session, enterprise.keys, PEPPER, enterprise.tenant.id, [deployment()], checkpoint_every=5
                )
                raise RuntimeError("the caller's transaction fails after the append")

        with pytest.raises(RuntimeError):
            await append_then_fail()
        await enterprise.record([deployment()], checkpoint_every=5)  # rows 4-6 again, crossing 5
        await enterprise.record([deployment(), deployment()], checkpoint_every=5)  # rows 7-12, crossing 10
        assert await self.roots_match_the_table(enterprise) == [5, 10]

    async def test_rows_written_by_another_process_are_read_from_the_table(self, enterprise: Ledger) -> None:
        await enterprise.record([deployment()], checkpoint_every=4)  # 1-3
        ledger._TREES.keep(enterprise.tenant.id, 3, "f" * 64, [])  # what a stale process would hold
        await enterprise.record([deployment()], checkpoint_every=4)  # 4-6, crossing 4
        ledger._TREES.keep(enterprise.tenant.id, 6, "0" * 64, [])
        await enterprise.record([deployment(), deployment()], checkpoint_every=4)  # 7-12, crossing 12
        assert await self.roots_match_the_table(enterprise) == [4, 12]


class TestTheDatabaseKeepsTheLedgerAppendOnly:
    async def test_the_app_role_cannot_update_delete_or_truncate_evidence(
        self, enterprise: Ledger, db: Database
    ) -> None:
        await enterprise.record([deployment()])
        conn = await connect(db.app_url)
        try:
            for statement in (
                "UPDATE compliance_evidence SET outcome = 'PASS' WHERE tenant_id = $1",
                "DELETE FROM compliance_evidence WHERE tenant_id = $1",
            ):
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('app.tenant_id', $1, true)", str(enterprise.tenant.id)
                    )
                    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=PERMISSION_DENIED):
                        await conn.execute(statement, enterprise.tenant.id)
            async with conn.transaction():
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match=PERMISSION_DENIED):
                    await conn.execute("TRUNCATE compliance_evidence")
        finally:
            await conn.close()

    async def test_a_row_for_another_tenant_is_refused_on_insert(
        self, enterprise: Ledger, db: Database, keys: KeyStore
    ) -> None:
        other = await make_ledger(db, keys)
        with pytest.raises(Exception, match="row-level security"):
            async with db.transaction(context(other.tenant.id)) as session:
                await ledger.append(session, keys, PEPPER, enterprise.tenant.id, [deployment()])

    async def test_another_tenant_sees_none_of_the_evidence(
        self, enterprise: Ledger, db: Database, keys: KeyStore
    ) -> None:
        await enterprise.record([deployment()])
        other = await make_ledger(db, keys)
        async with db.transaction(context(other.tenant.id)) as session:
            seen = await session.scalar(text("SELECT count(*) FROM compliance_evidence"))
        assert seen == 0


async def as_superuser(url: URL, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Edits behind the ledger's back: a superuser with triggers and foreign keys switched off."""
    conn = await connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for sql, args in statements:
                await conn.execute(sql, *args)
    finally:
        await conn.close()


def rewrite_records(
    made: Ledger, source: Path, target: Path, line: Callable[[dict[str, Any]], bytes]
) -> None:
    """`source` with every evidence line rewritten by `line`, the manifest updated and signed again."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        manifest = json.loads(old.read("manifest.json"))
        for name in old.namelist():
            data = old.read(name)
            if name == "evidence.jsonl":
                data = b"".join(line(json.loads(raw)) for raw in data.splitlines())
                manifest["files"][name]["sha256"] = hashlib.sha256(data).hexdigest()
            if name != "manifest.json":
                new.writestr(name, data)
        manifest.pop("signature")
        manifest["signature"] = made.keys.active().sign(canonical(manifest)).hex()
        new.writestr("manifest.json", json.dumps(manifest))


class TestTheVerifierReadsRecordsAsWritten:
    """Records are exported as their canonical bytes; other layouts of the same content still verify."""

    async def test_records_in_another_key_order_with_spaces_verify(
        self, enterprise: Ledger, tmp_path: Path
    ) -> None:
        for _ in range(2):
            await enterprise.record([deployment()], checkpoint_every=4)
        original = await export(enterprise, tmp_path)
        with zipfile.ZipFile(original) as archive:
            first = archive.read("evidence.jsonl").splitlines()[0]
        record = json.loads(first)["record"]
        assert first.startswith(b'{"record":' + canonical(record) + b',"entry_hash":')

        def reordered(item: dict[str, Any]) -> bytes:
            item["record"] = dict(reversed(item["record"].items()))
            return json.dumps(item, separators=(", ", ": "), ensure_ascii=True).encode() + b"\n"

        relaid = tmp_path / "relaid.zip"
        rewrite_records(enterprise, original, relaid, reordered)
        report = verify_export(relaid, workers=1)
        assert report.ok, report.problems
        assert (report.records, report.signed_records) == (6, 6)

    async def test_a_changed_record_in_another_layout_is_still_named(
        self, enterprise: Ledger, tmp_path: Path
    ) -> None:
        await enterprise.record([deployment(), deployment()])

        def changed(item: dict[str, Any]) -> bytes:
            if item["record"]["seq"] == 4:
                item["record"]["outcome"] = "FAIL"
            return json.dumps(item).encode() + b"\n"

        relaid = tmp_path / "changed.zip"
        rewrite_records(enterprise, await export(enterprise, tmp_path), relaid, changed)
        report = verify_export(relaid, workers=2)
        assert str(report.first_problem) == (
            "record 4: content does not match its entry hash: the record was changed"
        )


class TestTheVerifierCatchesTampering:
    async def test_an_untouched_export_verifies(self, enterprise: Ledger, tmp_path: Path) -> None:
        for _ in range(3):
            await enterprise.record([deployment()], checkpoint_every=4)
        report = verify_export(await export(enterprise, tmp_path), trusted_keys=None, workers=2)
        assert report.ok, report.problems
        assert (report.records, report.signed_records, report.tree_size) == (9, 9, 9)
        assert report.checkpoints == 3

    async def test_a_superuser_edit_of_a_payload_is_named_by_its_row(
        self, enterprise: Ledger, tmp_path: Path, test_owner_url: URL
    ) -> None:
        await enterprise.record([deployment(), deployment(approvals=0)])
        failing = next(r for r in await rows_of(enterprise) if r.outcome == "FAIL")
        await as_superuser(
            test_owner_url,
            (
                "UPDATE compliance_evidence SET outcome = 'PASS',"
                " observation = jsonb_set(observation, '{failed}', '[]') WHERE tenant_id = $1 AND seq = $2",
                (enterprise.tenant.id, failing.seq),
            ),
        )
        report = verify_export(await export(enterprise, tmp_path), workers=1)
        assert not report.ok
        assert str(report.first_problem).startswith(f"record {failing.seq}: content does not match")

    async def test_a_deleted_row_is_a_gap(
        self, enterprise: Ledger, tmp_path: Path, test_owner_url: URL
    ) -> None:
        await enterprise.record([deployment(), deployment()])
        await as_superuser(
            test_owner_url,
            ("DELETE FROM compliance_evidence WHERE tenant_id = $1 AND seq = 4", (enterprise.tenant.id,)),
        )
        report = verify_export(await export(enterprise, tmp_path), workers=1)
        assert not report.ok
        assert str(report.first_problem) == "record 5: sequence gap: expected 4, found 5"

    async def test_a_row_re_signed_with_another_key_is_detected(
        self, enterprise: Ledger, tmp_path: Path, test_owner_url: URL
    ) -> None:
        await enterprise.record([deployment()])
        row = (await rows_of(enterprise))[1]
        forger = KeyStore(tmp_path / "forger").active()
        forged = forger.sign(bytes.fromhex(row.entry_hash)).hex()
        await as_superuser(
            test_owner_url,
            (
                "UPDATE compliance_evidence SET signature = $3 WHERE tenant_id = $1 AND seq = $2",
                (enterprise.tenant.id, row.seq, forged),
            ),
        )
        report = verify_export(await export(enterprise, tmp_path), workers=1)
        assert str(report.first_problem) == f"record 2: signature does not verify with key {row.key_id}"

    async def test_a_row_re_keyed_to_a_foreign_key_is_unknown_to_trusted_keys(
        self, enterprise: Ledger, tmp_path: Path, test_owner_url: URL
    ) -> None:
        await enterprise.record([deployment()])
        trusted = tmp_path / "trusted.json"
        import base64
        import json

        trusted.write_text(
            json.dumps({k: base64.b64encode(v).decode() for k, v in enterprise.keys.public_keys().items()})
        )
        forger = KeyStore(tmp_path / "forger")
        forger_key = forger.active()
        await as_superuser(
            test_owner_url,
            (
                "UPDATE compliance_evidence SET key_id = $2 WHERE tenant_id = $1 AND seq = 1",
                (enterprise.tenant.id, forger_key.key_id),
            ),
        )
        report = verify_export(await export(enterprise, tmp_path), trusted_keys=trusted, workers=1)
        assert str(report.first_problem).startswith("record 1: ")
        assert report.keys_trusted


class TestManyTenantsInOneTransaction:
    """`append_many`: several tenants' evidence in one transaction, each tenant under its own policies."""

    async def test_each_tenants_rows_continue_its_own_chain_and_verify(
        self, db: Database, keys: KeyStore, tmp_path: Path
    ) -> None:
        first, second = await make_ledger(db, keys), await make_ledger(db, keys)
        await first.record([deployment()])
        head = (await rows_of(first))[-1]
        shares = [
            (first.tenant.id, [deployment(), deployment(approvals=0)]),
            (second.tenant.id, [deployment(approvals=1), deployment()]),
        ]
        async with db.driver_transaction(RlsContext(role="SYSTEM")) as conn:
            appended = await ledger.append_many(
                driver.Bound(None, conn), keys, PEPPER, shares, checkpoint_every=4
            )
            assert appended.insert is not None
            await conn.execute(appended.insert)
            # The caller's setting (none) is its own again; the rows are visible to the transaction.
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in (None, "")
            again = await ledger.append_many(driver.Bound(None, conn), keys, PEPPER, shares)
            assert (again.count, again.insert) == (0, None)  # idempotent by (event, control)

        assert appended.results[first.tenant.id].count == 6
        assert appended.results[second.tenant.id].count == 6
        mine, theirs = await rows_of(first), await rows_of(second)
        assert [r.seq for r in mine] == list(range(1, len(mine) + 1))
        assert [r.seq for r in theirs] == list(range(1, len(theirs) + 1))
        assert mine[len(mine) - 6].prev_hash == head.entry_hash  # the first tenant's chain goes on
        assert {r.tenant_id for r in mine} == {first.tenant.id}
        assert len({r.recorded_at for r in mine[-6:] + theirs}) == 1  # recorded together
        assert "vibethink.com" not in repr([r.observation for r in mine + theirs])
        for made, boundary in ((first, 8), (second, 4)):  # rows 4-9 and 1-6, checkpoints every 4
            async with db.transaction(context(made.tenant.id)) as session:
                checkpoints = (
                    await session.scalars(select(Checkpoint).where(Checkpoint.tenant_id == made.tenant.id))
                ).all()
            assert [c.tree_size for c in checkpoints] == [boundary]  # the last boundary crossed
            report = verify_export(await export(made, tmp_path), workers=1)
            assert report.ok, report.problems

    async def test_a_tenant_whose_plan_generates_nothing_automatically_gets_nothing(
        self, db: Database, keys: KeyStore
    ) -> None:
        free, paying = (
            await make_ledger(db, keys, tier="FREE", frameworks=["GDPR"]),
            await make_ledger(db, keys),
        )
        platform = [
            ledger.IncomingEvent(
                event_id=uuid.uuid4(),
                event_type="CODE_DEPLOYMENT",
                occurred_at=deployment().occurred_at,
                payload=deployment().payload,
            )
        ]
        async with db.driver_transaction(RlsContext(role="SYSTEM")) as conn:
            appended = await ledger.append_many(
                driver.Bound(None, conn),
                keys,
                PEPPER,
                [(free.tenant.id, platform), (paying.tenant.id, platform)],
            )
            assert appended.insert is not None
            await conn.execute(appended.insert)
        assert (appended.results[free.tenant.id].count, appended.results[free.tenant.id].skipped_events) == (
            0,
            1,
        )
        assert await rows_of(free) == []
        assert len(await rows_of(paying)) == 3

    async def test_a_settings_change_applies_to_the_next_call(self, db: Database, keys: KeyStore) -> None:
        made = await make_ledger(db, keys)

        async def platform_deployment() -> ledger.AppendResult:
            event = deployment()
            platform = ledger.IncomingEvent(
                event.event_id, event.event_type, event.occurred_at, event.payload
            )
            async with db.driver_transaction(RlsContext(role="SYSTEM")) as conn:
                appended = await ledger.append_many(
                    driver.Bound(None, conn), keys, PEPPER, [(made.tenant.id, [platform])]
                )
                if appended.insert is not None:
                    await conn.execute(appended.insert)
            return appended.results[made.tenant.id]

        assert (await platform_deployment()).count == 3
        await made.configure(auto_generation=False)
        assert ((result := await platform_deployment()).count, result.skipped_events) == (0, 1)
        await made.configure(auto_generation=True, enabled_frameworks=["GDPR"])
        gdpr_only = [r["control_id"] for r in (await platform_deployment()).rows]
        mapped = {
            c.id for c in load_catalog().controls.values() if any(m.framework == "GDPR" for m in c.mappings)
        }
        assert set(gdpr_only) == {"CHG-01", "CHG-03", "TST-01"} & mapped  # only what maps to GDPR now
        assert 0 < len(gdpr_only) < 3

    async def test_the_functions_run_as_their_caller_and_only_the_app_roles_may_call_them(
        self, test_owner_url: URL
    ) -> None:
        conn = await connect(test_owner_url)
        try:
            rows = await conn.fetch(
                "SELECT p.proname, p.prosecdef, has_function_privilege('public', p.oid, 'EXECUTE') AS public"
                " FROM pg_proc p WHERE p.proname IN"
                " ('compliance_states_many', 'compliance_lock_heads', 'compliance_insert_many')"
            )
        finally:
            await conn.close()
        assert sorted((r["proname"], r["prosecdef"], r["public"]) for r in rows) == [
            ("compliance_insert_many", False, False),
            ("compliance_lock_heads", False, False),
            ("compliance_states_many", False, False),
        ]


class TestPersonKeysMadeAtTheSameMoment:
    async def test_a_key_another_transaction_made_first_is_read_back(
        self, enterprise: Ledger, db: Database
    ) -> None:
        tenant_id = enterprise.tenant.id
        async with db.transaction(context(tenant_id)) as first:
            made = await pseudonyms.resolve(first, PEPPER, tenant_id, ["new.person@vibethink.com"])

            async def second() -> dict[str, str]:
                async with db.transaction(context(tenant_id)) as session:
                    return await pseudonyms.resolve(session, PEPPER, tenant_id, ["new.person@vibethink.com"])

            waiting = asyncio.create_task(second())  # its insert waits for the first transaction
            await asyncio.sleep(0.3)
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, timeout=10) == made
