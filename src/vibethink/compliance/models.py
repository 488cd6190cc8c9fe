"""Compliance tables: tenant settings, custom frameworks, the evidence ledger and what rests on it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vibethink.core.models import Base, created_at_column, new_id, tenant_id_column, updated_at_column


class ComplianceSettings(Base):
    """A tenant's compliance settings (the spec's ComplianceSettingsUI), one row per saved version.

    Saving appends a version, so who changed what and when stays on record; the newest row is current.
    """

    __tablename__ = "compliance_settings"
    __table_args__ = (CheckConstraint("retention_years BETWEEN 1 AND 7", name="retention_years_range"),)

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    enabled_frameworks: Mapped[list[str]] = mapped_column(
        ARRAY(String(40)), server_default=text("'{}'::varchar[]")
    )
    # When each enabled framework was switched on: {"ISO_27001": "2026-01-03T…"}.
    enabled_at: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    auto_generation: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    signing_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    retention_years: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    report_frequency: Mapped[str] = mapped_column(String(12), server_default="MONTHLY")
    report_recipients: Mapped[list[str]] = mapped_column(
        ARRAY(String(320)), server_default=text("'{}'::varchar[]")
    )
    changed_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = created_at_column()


class CustomFramework(Base):
    """A tenant's own framework (ENTERPRISE): requirements mapped to platform controls."""

    __tablename__ = "compliance_custom_frameworks"
    __table_args__ = (Index("uq_compliance_custom_frameworks_code", "tenant_id", "code", unique=True),)

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    # [{"id": "VT-001", "title": …, "description": …,
    #   "controls": [{"control": "CHG-04", "relationship": "equal"}]}]
    requirements: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


# The columns a retention pruning empties: a pruned row keeps only its place in the chain and tree.
CONTENT_COLUMNS = (
    "event_id",
    "event_type",
    "source",
    "event_hash",
    "control_id",
    "rule_id",
    "rule_version",
    "kind",
    "outcome",
    "occurred_at",
    "period_start",
    "period_end",
    "recorded_at",
    "observation",
    "artifacts",
)
_CONTENT = ", ".join(CONTENT_COLUMNS)


class Evidence(Base):
    """The ledger: one signed, chained row per (event, control); append-only, even for the owner.

    `prev_seq` references the row before, so a sequence cannot have a hole; the chain and the
    signatures make any edit visible to the offline verifier. Past the tenant's retention a signed
    pruning (`Pruning`) empties a row's content; its hashes and signature stay (`pruned_in` names it).
    """

    __tablename__ = "compliance_evidence"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "prev_seq"], ["compliance_evidence.tenant_id", "compliance_evidence.seq"]
        ),
        Index("uq_compliance_evidence_event_control", "tenant_id", "event_id", "control_id", unique=True),
        Index("ix_compliance_evidence_tenant_control", "tenant_id", "control_id", "occurred_at"),
        Index("ix_compliance_evidence_tenant_time", "tenant_id", "occurred_at"),
        Index(
            "ix_compliance_evidence_unpruned",
            "tenant_id",
            "recorded_at",
            postgresql_where=text("pruned_in IS NULL"),
        ),
        CheckConstraint(
            "(seq = 1 AND prev_seq IS NULL) OR (seq > 1 AND prev_seq = seq - 1)", name="gapless_sequence"
        ),
        CheckConstraint(
            f"(pruned_in IS NULL AND num_nulls({_CONTENT}) = 0)"
            f" OR (pruned_in IS NOT NULL AND num_nonnulls({_CONTENT}) = 0)",
            name="whole_or_pruned",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prev_seq: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[uuid.UUID | None]
    event_type: Mapped[str | None] = mapped_column(String(80))
    source: Mapped[str | None] = mapped_column(String(16))
    event_hash: Mapped[str | None] = mapped_column(String(64))
    control_id: Mapped[str | None] = mapped_column(String(40))
    rule_id: Mapped[str | None] = mapped_column(String(80))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(12))
    outcome: Mapped[str | None] = mapped_column(String(8))
    occurred_at: Mapped[datetime | None]
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    recorded_at: Mapped[datetime | None]
    observation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    artifacts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(40))
    signature: Mapped[str | None] = mapped_column(String(128))
    pruned_in: Mapped[int | None] = mapped_column(Integer)

    @property
    def is_pruned(self) -> bool:
        return self.pruned_in is not None


class Checkpoint(Base):
    """A signed Merkle root over the first `tree_size` evidence rows of a tenant."""

    __tablename__ = "compliance_checkpoints"

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    # The roots of the perfect subtrees at this size ([[size, hex], …]): the next checkpoint extends
    # them with the leaves since, instead of rehashing the whole ledger.
    frontier: Mapped[list[Any]] = mapped_column(JSONB)
    issued_at: Mapped[datetime]
    key_id: Mapped[str | None] = mapped_column(String(40))
    signature: Mapped[str | None] = mapped_column(String(128))


class Pruning(Base):
    """A retention pruning: which expired rows lost their content, when, under which retention, signed.

    Written only by `compliance_prune_evidence`; `entries_sha256` is the SHA-256 of the pruned rows'
    entry hashes (32 bytes each, in sequence order), so the signature binds exactly those rows.
    """

    __tablename__ = "compliance_prunings"

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    pruned_at: Mapped[datetime]
    cutoff: Mapped[datetime]
    retention_years: Mapped[int] = mapped_column(Integer)
    ranges: Mapped[list[list[int]]] = mapped_column(JSONB)  # [[first seq, last seq], …]
    records: Mapped[int] = mapped_column(BigInteger)
    entries_sha256: Mapped[str] = mapped_column(String(64))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str | None] = mapped_column(String(40))
    signature: Mapped[str | None] = mapped_column(String(128))


class EvidenceNote(Base):
    """A reviewer's note on an evidence row: appended, never edited."""

    __tablename__ = "compliance_evidence_notes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "evidence_seq"], ["compliance_evidence.tenant_id", "compliance_evidence.seq"]
        ),
        Index("ix_compliance_evidence_notes_evidence", "tenant_id", "evidence_seq"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    evidence_seq: Mapped[int] = mapped_column(BigInteger)
    author: Mapped[str] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(Text)
    note_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()


class PersonKey(Base):
    """A per-person secret that pseudonymises that person in evidence; destroying it is erasure."""

    __tablename__ = "compliance_person_keys"

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    person_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at_column()


class Assessment(Base):
    """A readiness assessment of one framework, pinned to the ledger size it read."""

    __tablename__ = "compliance_assessments"
    __table_args__ = (Index("ix_compliance_assessments_framework", "tenant_id", "framework", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    framework: Mapped[str] = mapped_column(String(40))
    ledger_size: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[datetime]
    catalog_version: Mapped[str] = mapped_column(String(64))
    score_bp: Mapped[int] = mapped_column(Integer)
    coverage_bp: Mapped[int] = mapped_column(Integer)
    freshness_bp: Mapped[int] = mapped_column(Integer)
    automation_bp: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()


class Report(Base):
    """An audit report (JSON + PDF) with its signed manifest."""

    __tablename__ = "compliance_reports"
    __table_args__ = (Index("ix_compliance_reports_tenant_time", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = tenant_id_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    framework: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONB)
    manifest_signature: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(40))
    document: Mapped[bytes] = mapped_column(LargeBinary)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at_column()
