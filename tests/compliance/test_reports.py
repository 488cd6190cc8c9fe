"""Reports: signed manifests, populations and reproducible samples, OSCAL, the SoA, and scheduled e-mail."""

from __future__ import annotations

import email
import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from tests.compliance.conftest import Ledger, context, deployment, make_ledger, owner
from tests.compliance.test_routes import tenant_with_key
from vibethink.compliance import reports, service
from vibethink.compliance.canonical import canonical
from vibethink.compliance.keys import KeyStore, verify_signature
from vibethink.compliance.schedule import send_due_reports
from vibethink.compliance.schemas import SettingsUpdate
from vibethink.core.database import Database
from vibethink.core.settings import Settings

WEEK = timedelta(days=7)


async def build(made: Ledger, framework: str = "ISO_27001", **kwargs: Any) -> reports.BuiltReport:
    now = datetime.now(UTC)
    async with made.db.transaction(context(made.tenant.id)) as session:
        return await reports.build_report(
            session,
            made.keys,
            made.tenant.id,
            framework,
            start=now - WEEK,
            end=now + timedelta(minutes=1),
            **kwargs,
        )


class TestAuditReports:
    async def test_the_manifest_is_signed_and_names_file_hashes_and_the_checkpoint(
        self, enterprise: Ledger
    ) -> None:
        await enterprise.record([deployment(), deployment(approvals=0)])
        built = await build(enterprise)
        manifest = built.report.manifest
        assert manifest["checkpoint"]["tree_size"] == 6
        assert manifest["files"]["report.json"] == hashlib.sha256(built.report.document).hexdigest()
        assert manifest["files"]["report.pdf"] == hashlib.sha256(built.pdf).hexdigest()
        public = enterprise.keys.public_keys()[built.report.key_id or ""]
        assert verify_signature(
            public, bytes.fromhex(built.report.manifest_signature or ""), canonical(manifest)
        )

    async def test_the_population_lists_every_record_and_the_sample_is_reproducible(
        self, enterprise: Ledger
    ) -> None:
        await enterprise.record([deployment() for _ in range(30)])
        first = await build(enterprise, seed="audit-2026")
        again = await build(enterprise, seed="audit-2026")
        population = first.document["population"]["CHG-01"]
        assert len(population) == 30
        sample = first.document["sample"]["seqs"]["CHG-01"]
        assert len(sample) == reports.SAMPLE_SIZE
        assert set(sample) <= {r["seq"] for r in population}
        assert sample == again.document["sample"]["seqs"]["CHG-01"]
        other = await build(enterprise, seed="another-seed")
        assert other.document["sample"]["seqs"]["CHG-01"] != sample

    async def test_the_pdf_is_a_readiness_report_never_a_certificate(
        self, enterprise: Ledger, tmp_path: Path
    ) -> None:
        await enterprise.record([deployment()])
        built = await build(enterprise)
        path = tmp_path / "report.pdf"
        path.write_bytes(built.pdf)
        text = " ".join(page.extract_text() for page in PdfReader(path).pages)
        assert "Readiness report" in text
        assert "A.8.32" in text
        assert "compliant" not in text.lower()
        assert "certified" not in text.lower()

    async def test_oscal_assessment_results_have_findings_and_observations(self, enterprise: Ledger) -> None:
        await enterprise.record([deployment(approvals=0)])
        built = await build(enterprise)
        oscal = reports.oscal_assessment_results(built.document)["assessment-results"]
        assert oscal["metadata"]["oscal-version"] == "1.1.2"
        result = oscal["results"][0]
        finding = next(f for f in result["findings"] if f["target"]["target-id"] == "A.8.32")
        assert finding["target"]["status"]["state"] == "not-satisfied"
        observation_ids = {o["uuid"] for o in result["observations"]}
        assert {r["observation-uuid"] for r in finding["related-observations"]} <= observation_ids

    async def test_the_statement_of_applicability_lists_all_93_controls(self, enterprise: Ledger) -> None:
        await enterprise.record([deployment()])
        async with enterprise.db.transaction(context(enterprise.tenant.id)) as session:
            soa = await reports.statement_of_applicability(session, enterprise.tenant.id)
        assert len(soa["controls"]) == 93
        change = next(c for c in soa["controls"] if c["control"] == "A.8.32")
        assert change["implementation"] == "MET"
        assert "CHG-01" in change["justification"]


class TestReportsApi:
    async def test_reports_are_created_downloaded_and_isolated(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        _, headers = await tenant_with_key(db, "ENTERPRISE")
        _, other = await tenant_with_key(db, "ENTERPRISE")
        event = {
            "eventType": "TRAINING_COMPLETED",
            "timestamp": datetime.now(UTC).isoformat(),
            "payload": {"course": "Security awareness", "passed": True, "userId": "ana@x.test"},
        }
        assert (
            await client.post("/api/v1/compliance/events", json={"events": [event]}, headers=headers)
        ).status_code == 201
        now = datetime.now(UTC)
        body = {"framework": "GDPR", "start": (now - WEEK).isoformat(), "end": (now + WEEK).isoformat()}
        created = await client.post("/api/v1/compliance/reports", json=body, headers=headers)
        assert created.status_code == 201, created.text
        report_id = created.json()["id"]
        pdf = await client.get(f"/api/v1/compliance/reports/{report_id}/report.pdf", headers=headers)
        assert pdf.content.startswith(b"%PDF")
        oscal = await client.get(f"/api/v1/compliance/reports/{report_id}/oscal.json", headers=headers)
        assert "assessment-results" in oscal.json()
        assert (await client.get(f"/api/v1/compliance/reports/{report_id}", headers=other)).status_code == 404
        assert (await client.get("/api/v1/compliance/reports", headers=other)).json()["items"] == []


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


class TestScheduledReports:
    async def test_a_due_report_reaches_the_recipients_with_the_pdf_attached(
        self, db: Database, keys: KeyStore, test_settings: Settings, smtp_server: tuple[int, Inbox]
    ) -> None:
        port, inbox = smtp_server
        made = await make_ledger(db, keys, frameworks=["ISO_27001", "GDPR"])
        # Addresses of this test only: other tenants in the database may have reports due too.
        mine_to = f"compliance-{made.tenant.id.hex[:8]}@company.com"
        legal = f"legal-{made.tenant.id.hex[:8]}@company.com"
        async with db.transaction(context(made.tenant.id)) as session:
            await service.update_settings(
                session,
                owner(made.tenant.id),
                SettingsUpdate(
                    report_frequency="WEEKLY",
                    report_recipients=[mine_to, legal],
                ),
            )
        await made.record([deployment()])
        settings = test_settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
        )
        sent = await send_due_reports(db, settings, keys)
        mine = [s for s in sent if s.tenant_id == made.tenant.id]
        assert [sorted(s.frameworks) for s in mine] == [["GDPR", "ISO_27001"]]
        message = next(m for m in inbox.messages if mine_to in m["To"])
        assert legal in message["To"]
        pdfs = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
        assert sorted(p.get_filename() for p in pdfs) == ["readiness-GDPR.pdf", "readiness-ISO_27001.pdf"]
        assert all(p.get_payload(decode=True).startswith(b"%PDF") for p in pdfs)
        # Sent once per period: the next run finds nothing due for this tenant.
        again = await send_due_reports(db, settings, keys)
        assert made.tenant.id not in {s.tenant_id for s in again}

    async def test_free_tenants_get_no_scheduled_reports(
        self, db: Database, keys: KeyStore, test_settings: Settings, smtp_server: tuple[int, Inbox]
    ) -> None:
        port, _ = smtp_server
        free = await make_ledger(db, keys, tier="FREE", frameworks=["GDPR"])
        settings = test_settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
        )
        sent = await send_due_reports(db, settings, keys)
        assert free.tenant.id not in {s.tenant_id for s in sent}
