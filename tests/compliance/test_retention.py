"""Evidence retention: expired content is pruned by a signed pruning, the ledger still verifies."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from tests.compliance.conftest import PEPPER, Ledger, context, deployment, make_ledger, owner
from tests.compliance.test_ledger import as_superuser, export
from tests.core.schema_catalog import connect
from tests.factories import bearer, make_api_key
from vibethink.compliance import ledger, merkle, readiness, retention, service
from vibethink.compliance.canonical import canonical
from vibethink.compliance.catalog import load_catalog
from vibethink.compliance.keys import KeyStore, verify_signature
from vibethink.compliance.models import CONTENT_COLUMNS, Evidence, EvidenceNote, Pruning
from vibethink.compliance.plans import PLANS, Plan
from vibethink.compliance.state import load_state
from vibethink.compliance.verify import verify_export
from vibethink.core.database import Database, RlsContext

NOW = datetime.now(UTC)
# What the purge does to a row, done by hand: emptied and pointing at pruning 1.
EMPTY_ROW = (
    f"UPDATE compliance_evidence SET pruned_in = 1, {', '.join(f'{c} = NULL' for c in CONTENT_COLUMNS)}"
    " WHERE tenant_id = $1 AND seq = $2"
)


def years_ago(years: float) -> datetime:
    return NOW - timedelta(days=round(365.25 * years))


def deployment_at(moment: datetime, **kwargs: Any) -> ledger.IncomingEvent:
    return dataclasses.replace(deployment(**kwargs), occurred_at=moment)


async def record_at(made: Ledger, moment: datetime, count: int = 1, **kwargs: Any) -> list[int]:
    """`count` deployments that happened and were recorded at `moment`; their sequence numbers."""
    result = await made.record([deployment_at(moment) for _ in range(count)], clock=lambda: moment, **kwargs)
    return [int(r["seq"]) for r in result.rows]


async def rows_of(made: Ledger) -> dict[int, dict[str, Any]]:
    async with made.db.transaction(context(made.tenant.id)) as session:
        rows = (
            await session.scalars(
                select(Evidence).where(Evidence.tenant_id == made.tenant.id).order_by(Evidence.seq)
            )
        ).all()
    return {r.seq: {c.key: getattr(r, c.key) for c in Evidence.__table__.columns} for r in rows}


async def prune(made: Ledger, **kwargs: Any) -> retention.Pruned | None:
    async with made.db.transaction(context(made.tenant.id)) as session:
        return await retention.prune_expired(session, made.keys, made.tenant.id, **kwargs)


@pytest.fixture
async def one_year(db: Database, keys: KeyStore) -> Ledger:
    made = await make_ledger(db, keys)
    await made.configure(retention_years=1)
    return made


class TestExpiredEvidenceIsPruned:
    async def test_rows_older_than_the_retention_lose_their_content_and_the_rest_stay_untouched(
        self, one_year: Ledger
    ) -> None:
        old = await record_at(one_year, years_ago(2), count=2)
        recent = await record_at(one_year, years_ago(0.5))
        async with one_year.db.transaction(context(one_year.tenant.id)) as session:
            for seq in (old[0], recent[0]):
                await service.add_note(session, owner(one_year.tenant.id), seq, "reviewed", pepper=PEPPER)
        before = await rows_of(one_year)

        pruned = await prune(one_year)

        assert pruned is not None
        assert (pruned.number, pruned.records, pruned.notes) == (1, len(old), 1)
        assert (pruned.first_seq, pruned.last_seq, pruned.retention_years) == (old[0], old[-1], 1)
        after = await rows_of(one_year)
        for seq in old:
            assert after[seq]["pruned_in"] == 1
            assert all(after[seq][c] is None for c in CONTENT_COLUMNS)
            kept = ("tenant_id", "seq", "prev_seq", "prev_hash", "entry_hash", "key_id", "signature")
            assert {k: after[seq][k] for k in kept} == {k: before[seq][k] for k in kept}
        for seq in recent:
            assert after[seq] == before[seq]
        async with one_year.db.transaction(context(one_year.tenant.id)) as session:
            notes = (await session.scalars(select(EvidenceNote.evidence_seq))).all()
            events = (
                await session.execute(
                    text(
                        "SELECT payload FROM platform_events WHERE tenant_id = :t"
                        " AND event_type = 'COMPLIANCE_EVIDENCE_PRUNED'"
                    ),
                    {"t": one_year.tenant.id},
                )
            ).all()
            audited = await session.scalar(
                text("SELECT count(*) FROM audit_log WHERE action = 'COMPLIANCE_EVIDENCE_PRUNED'")
            )
        assert list(notes) == [recent[0]]  # the pruned row's note went with its content
        assert [e.payload["records"] for e in events] == [len(old)]
        assert audited == 1

    async def test_the_pruning_is_signed_over_exactly_the_pruned_entry_hashes(self, one_year: Ledger) -> None:
        old = await record_at(one_year, years_ago(3))
        before = await rows_of(one_year)
        await prune(one_year)
        async with one_year.db.transaction(context(one_year.tenant.id)) as session:
            pruning = await session.get(Pruning, (one_year.tenant.id, 1))
        assert pruning is not None
        assert pruning.key_id is not None
        assert pruning.signature is not None
        assert pruning.ranges == [[old[0], old[-1]]]
        assert pruning.entries_sha256 == retention.entries_digest([before[s]["entry_hash"] for s in old])
        document = retention.document_of(pruning)
        public = one_year.keys.public_keys()[pruning.key_id]
        assert verify_signature(public, bytes.fromhex(pruning.signature), canonical(document))

    async def test_running_the_purge_twice_changes_nothing(self, one_year: Ledger) -> None:
        await record_at(one_year, years_ago(2))
        await record_at(one_year, years_ago(0.1))
        assert await prune(one_year) is not None
        once = await rows_of(one_year)
        assert await prune(one_year) is None
        assert await rows_of(one_year) == once
        async with one_year.db.transaction(context(one_year.tenant.id)) as session:
            assert await session.scalar(text("SELECT count(*) FROM compliance_prunings")) == 1

    async def test_another_tenants_evidence_is_untouched(
        self, one_year: Ledger, db: Database, keys: KeyStore
    ) -> None:
        other = await make_ledger(db, keys)
        await other.configure(retention_years=1)
        await record_at(one_year, years_ago(2))
        await record_at(other, years_ago(2))
        before = await rows_of(other)
        assert await prune(one_year) is not None
        assert await rows_of(other) == before
        assert all(r["pruned_in"] is None for r in before.values())

    async def test_a_big_backlog_is_pruned_in_batches_of_the_size_asked(self, one_year: Ledger) -> None:
        old = await record_at(one_year, years_ago(2), count=3)  # 9 rows
        first = await prune(one_year, batch=4)
        second = await prune(one_year, batch=4)
        third = await prune(one_year, batch=4)
        assert [p.records if p else 0 for p in (first, second, third)] == [4, 4, 1]
        assert await prune(one_year, batch=4) is None
        assert all(r["pruned_in"] is not None for s, r in (await rows_of(one_year)).items() if s in old)

    async def test_evidence_whose_period_reaches_into_the_retention_is_kept(self, one_year: Ledger) -> None:
        moment = years_ago(2)
        event = dataclasses.replace(deployment_at(moment), period=(moment, years_ago(0.5)))
        await one_year.record([event], clock=lambda: moment)
        assert await prune(one_year) is None

    async def test_the_retention_is_the_setting_capped_by_the_plan(
        self, db: Database, keys: KeyStore
    ) -> None:
        made = await make_ledger(db, keys)  # ENTERPRISE keeps 7 years by default
        await record_at(made, years_ago(4))
        assert await prune(made) is None
        async with db.transaction(RlsContext(is_admin=True, role="PLATFORM_ADMIN")) as session:
            await service.set_plan(session, made.tenant.id, Plan.PROFESSIONAL)  # keeps 3 years
        pruned = await prune(made)
        assert pruned is not None
        assert pruned.retention_years == 3

    async def test_the_databases_retention_matches_the_plans(
        self, db: Database, keys: KeyStore, test_owner_url: URL
    ) -> None:
        conn = await connect(test_owner_url)
        try:
            for plan in Plan:
                made = await make_ledger(db, keys, tier=plan.value, frameworks=["GDPR"])
                async with db.transaction(context(made.tenant.id)) as session:
                    state = await load_state(session, made.tenant.id)
                in_sql = await conn.fetchval("SELECT compliance_retention_years($1)", made.tenant.id)
                assert in_sql == retention.retention_years(state) == PLANS[plan].retention_years
        finally:
            await conn.close()


class TestPrunedEvidenceStillVerifies:
    async def test_an_export_after_pruning_verifies_through_the_pruned_range(
        self, one_year: Ledger, tmp_path: Path
    ) -> None:
        # Four appends of three rows, a checkpoint every four: at 4 (on pruned rows only), 8 and 12.
        old = [s for _ in range(2) for s in await record_at(one_year, years_ago(2), checkpoint_every=4)]
        for _ in range(2):
            await record_at(one_year, years_ago(0.2), checkpoint_every=4)
        await prune(one_year)
        report = verify_export(await export(one_year, tmp_path), workers=2)
        assert report.ok, report.problems
        assert (report.records, report.signed_records, report.tree_size) == (12, 12, 12)
        assert (report.pruned_records, report.prunings) == (len(old), 1)
        assert report.checkpoints == 3

    async def test_an_inclusion_proof_of_a_pruned_row_still_verifies(self, one_year: Ledger) -> None:
        old = await record_at(one_year, years_ago(2))
        await record_at(one_year, years_ago(0.2))
        await prune(one_year)
        async with one_year.db.transaction(context(one_year.tenant.id)) as session:
            proof = await ledger.inclusion_proof(session, one_year.keys, one_year.tenant.id, old[0])
        assert merkle.verify_inclusion(
            bytes.fromhex(proof.leaf_hash),
            old[0] - 1,
            proof.tree_size,
            [bytes.fromhex(p) for p in proof.path],
            bytes.fromhex(proof.checkpoint.root_hash),
        )

    async def test_an_unsigned_ledger_gets_an_unsigned_pruning_that_verifies(
        self, db: Database, keys: KeyStore, tmp_path: Path
    ) -> None:
        free = await make_ledger(db, keys, tier="FREE", frameworks=["GDPR"])
        await record_at(free, years_ago(2))
        await record_at(free, years_ago(0.2))
        pruned = await prune(free)
        assert pruned is not None
        assert pruned.retention_years == 1
        report = verify_export(await export(free, tmp_path), workers=1)
        assert report.ok, report.problems
        assert (report.signed_records, report.pruned_records) == (0, pruned.records)

    async def test_a_superuser_emptying_a_row_outside_the_purge_is_named(
        self, one_year: Ledger, tmp_path: Path, test_owner_url: URL
    ) -> None:
        await record_at(one_year, years_ago(2))
        recent = await record_at(one_year, years_ago(0.2))
        await prune(one_year)
        # Made to look like the purge's work: emptied and pointing at the existing pruning.
        await as_superuser(
            test_owner_url,
            (
                EMPTY_ROW,
                (one_year.tenant.id, recent[1]),
            ),
        )
        report = verify_export(await export(one_year, tmp_path), workers=1)
        assert not report.ok
        assert str(report.first_bad_record) == (
            f"record {recent[1]}: its content was removed outside a retention pruning"
        )

    async def test_a_superuser_emptying_a_row_of_a_never_pruned_ledger_is_named(
        self, one_year: Ledger, tmp_path: Path, test_owner_url: URL
    ) -> None:
        seqs = await record_at(one_year, years_ago(0.2))
        await as_superuser(
            test_owner_url,
            (
                EMPTY_ROW,
                (one_year.tenant.id, seqs[0]),
            ),
        )
        report = verify_export(await export(one_year, tmp_path), workers=1)
        assert (
            str(report.first_problem)
            == f"record {seqs[0]}: its content was removed outside a retention pruning"
        )

    async def test_a_pruning_widened_behind_the_platforms_back_fails_its_signature(
        self, one_year: Ledger, tmp_path: Path, test_owner_url: URL
    ) -> None:
        old = await record_at(one_year, years_ago(2))
        recent = await record_at(one_year, years_ago(0.2))
        await prune(one_year)
        await as_superuser(
            test_owner_url,
            (
                "UPDATE compliance_prunings SET ranges = $2::jsonb, records = records + 1"
                " WHERE tenant_id = $1 AND number = 1",
                (one_year.tenant.id, json.dumps([[old[0], recent[0]]])),
            ),
            (EMPTY_ROW, (one_year.tenant.id, recent[0])),
        )
        report = verify_export(await export(one_year, tmp_path), workers=1)
        problems = [str(p) for p in report.problems]
        assert any(p.startswith("pruning 1: signature does not verify") for p in problems), problems
        assert str(report.first_bad_record).startswith(
            f"record {old[0]}: its content was removed by pruning 1"
        )


class TestOnlyThePurgeMayEmptyEvidence:
    async def test_the_app_role_still_cannot_update_or_delete_evidence(
        self, one_year: Ledger, db: Database
    ) -> None:
        await record_at(one_year, years_ago(2))
        conn = await connect(db.app_url)
        try:
            for statement in (
                "UPDATE compliance_evidence SET pruned_in = 1 WHERE tenant_id = $1",
                "DELETE FROM compliance_evidence WHERE tenant_id = $1",
                "DELETE FROM compliance_prunings WHERE tenant_id = $1",
            ):
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('app.tenant_id', $1, true)", str(one_year.tenant.id)
                    )
                    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                        await conn.execute(statement, one_year.tenant.id)
        finally:
            await conn.close()

    async def test_the_owner_cannot_empty_a_row_either(self, one_year: Ledger, test_owner_url: URL) -> None:
        seqs = await record_at(one_year, years_ago(2))
        conn = await connect(test_owner_url)
        try:
            with pytest.raises(
                asyncpg.InsufficientPrivilegeError, match="compliance_evidence is append-only"
            ):
                await conn.execute(
                    EMPTY_ROW,
                    one_year.tenant.id,
                    seqs[0],
                )
        finally:
            await conn.close()

    async def test_the_pruning_function_refuses_evidence_that_has_not_expired(self, one_year: Ledger) -> None:
        seqs = await record_at(one_year, years_ago(0.5))
        rows = await rows_of(one_year)
        with pytest.raises(Exception, match="exactly expired, unpruned evidence"):
            async with one_year.db.transaction(context(one_year.tenant.id)) as session:
                await _call_prune(session, one_year, seqs, rows)

    async def test_the_pruning_function_refuses_another_tenants_rows(
        self, one_year: Ledger, db: Database, keys: KeyStore
    ) -> None:
        other = await make_ledger(db, keys)
        await other.configure(retention_years=1)
        seqs = await record_at(other, years_ago(2))
        rows = await rows_of(other)
        with pytest.raises(Exception, match="must name the tenant of its transaction"):
            async with db.transaction(context(one_year.tenant.id)) as session:
                await _call_prune(session, other, seqs, rows)
        assert await rows_of(other) == rows


async def _call_prune(session: Any, made: Ledger, seqs: list[int], rows: dict[int, dict[str, Any]]) -> None:
    """The pruning function called directly by the app role, with a well-formed document."""
    now, cutoff = (await session.execute(text("SELECT now(), now() - make_interval(years => 1)"))).one()
    document = retention.pruning_document(
        tenant_id=made.tenant.id,
        number=1,
        pruned_at=now,
        cutoff=cutoff,
        retention_years=1,
        ranges=retention.ranges_of(seqs),
        records=len(seqs),
        entries_sha256=retention.entries_digest([rows[s]["entry_hash"] for s in seqs]),
        tree_size=max(rows),
        key_id=None,
    )
    await session.execute(
        text("SELECT * FROM compliance_prune_evidence(CAST(:d AS jsonb), NULL, NULL)"),
        {"d": json.dumps(document)},
    )


class TestReadinessAndTheApiAfterPruning:
    def test_every_freshness_window_is_shorter_than_the_shortest_retention(self) -> None:
        shortest = min(p.retention_years for p in PLANS.values())
        windows = [c.freshness_days for c in load_catalog().controls.values()]
        assert max([*windows, readiness.DESIGN_FRESHNESS_DAYS]) <= 365 * shortest

    async def test_readiness_does_not_count_pruned_evidence(self, one_year: Ledger) -> None:
        await record_at(one_year, years_ago(2))
        async with one_year.db.transaction(context(one_year.tenant.id)) as session:
            size = await ledger.head_size(session, one_year.tenant.id)
            before = await readiness.control_evidence(
                session, one_year.tenant.id, ["CHG-01"], size=size, as_of=NOW
            )
        assert before["CHG-01"].state is readiness.ControlState.STALE  # past its window, not yet pruned
        await prune(one_year)
        async with one_year.db.transaction(context(one_year.tenant.id)) as session:
            after = await readiness.control_evidence(
                session, one_year.tenant.id, ["CHG-01"], size=size, as_of=NOW
            )
        assert after["CHG-01"].state is readiness.ControlState.NOT_ASSESSED
        assert after["CHG-01"].last_evidence_at is None

    async def test_the_api_lists_live_evidence_answers_410_for_pruned_and_lists_prunings(
        self, client: httpx.AsyncClient, one_year: Ledger, db: Database
    ) -> None:
        old = await record_at(one_year, years_ago(2))
        recent = await record_at(one_year, years_ago(0.2))
        await prune(one_year)
        headers = bearer(await make_api_key(db, one_year.tenant))
        listed = (await client.get("/api/v1/compliance/evidence", headers=headers)).json()
        assert sorted(e["seq"] for e in listed["items"]) == recent
        gone = await client.get(f"/api/v1/compliance/evidence/{old[0]}", headers=headers)
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "evidence_pruned"
        note = await client.post(
            f"/api/v1/compliance/evidence/{old[0]}/notes", json={"note": "late"}, headers=headers
        )
        assert note.status_code == 410
        prunings = (await client.get("/api/v1/compliance/prunings", headers=headers)).json()["items"]
        assert [(p["number"], p["records"], p["ranges"]) for p in prunings] == [
            (1, len(old), [[old[0], old[-1]]])
        ]
        assert prunings[0]["document"]["entries_sha256"] == prunings[0]["entries_sha256"]
        other = bearer(await make_api_key(db, (await make_ledger(db, one_year.keys)).tenant))
        assert (await client.get("/api/v1/compliance/prunings", headers=other)).json()["items"] == []
        assert (await client.get(f"/api/v1/compliance/evidence/{old[0]}", headers=other)).status_code == 404


class TestThePurgeAcrossTenants:
    async def test_the_purge_prunes_every_due_tenant_and_is_idempotent(
        self, one_year: Ledger, db: Database
    ) -> None:
        old = await record_at(one_year, years_ago(2))
        pruned = await retention.purge(db, one_year.keys)
        mine = [p for p in pruned if p.tenant_id == one_year.tenant.id]
        assert [(p.records, p.first_seq) for p in mine] == [(len(old), old[0])]
        assert one_year.tenant.id not in await retention.due_tenants(db)
        again = await retention.purge(db, one_year.keys)
        assert one_year.tenant.id not in {p.tenant_id for p in again}
