"""Pydantic shapes of the compliance API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, field_validator

from vibethink.compliance.catalog import Relationship
from vibethink.compliance.plans import ReportFrequency

EVENT_TYPE_PATTERN = r"^[A-Z][A-Z0-9_]{1,79}$"
CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{1,39}$"
REQUIREMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,39}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SettingsUpdate(Strict):
    enabled_frameworks: list[str] | None = Field(default=None, max_length=20)
    auto_generation: bool | None = None
    signing_enabled: bool | None = None
    retention_years: int | None = Field(default=None, ge=1, le=7)
    report_frequency: ReportFrequency | None = None
    report_recipients: list[EmailStr] | None = Field(default=None, max_length=20)


class FrameworkStatus(BaseModel):
    framework: str
    name: str
    enabled: bool
    available: bool
    required_plan: str | None
    configured_at: datetime | None
    last_assessment_at: datetime | None
    score_percent: float | None


class SettingsRead(BaseModel):
    tenant_id: uuid.UUID
    plan: str
    version: int
    enabled_frameworks: list[str]
    frameworks: list[FrameworkStatus]
    custom_frameworks: list[str]
    auto_generation: bool
    signing_enabled: bool
    retention_years: int
    max_retention_years: int
    report_frequency: ReportFrequency
    report_recipients: list[str]
    immutable_storage: bool = True
    updated_at: datetime | None


class ControlLink(Strict):
    control: str = Field(max_length=40)
    relationship: Relationship = Relationship.EQUAL


class CustomRequirement(Strict):
    id: str = Field(pattern=REQUIREMENT_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    controls: list[ControlLink] = Field(default_factory=list, max_length=20)
    evidence_types: list[str] = Field(default_factory=list, max_length=20)


class CustomFrameworkCreate(Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    requirements: list[CustomRequirement] = Field(min_length=1, max_length=500)

    @field_validator("requirements")
    @classmethod
    def _unique_ids(cls, value: list[CustomRequirement]) -> list[CustomRequirement]:
        ids = [r.id for r in value]
        if len(ids) != len(set(ids)):
            raise ValueError("requirement ids must be unique")
        return value


class CustomFrameworkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    description: str
    requirements: list[dict[str, Any]]
    created_at: datetime


class ActorIn(Strict):
    user_id: str | None = Field(default=None, alias="userId", max_length=320)
    role: str | None = Field(default=None, max_length=80)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExternalEvent(Strict):
    """An event from the tenant's own systems (CI, HR, training), in the spec's shape."""

    event_id: uuid.UUID | None = Field(default=None, alias="eventId")
    event_type: str = Field(alias="eventType", pattern=EVENT_TYPE_PATTERN)
    timestamp: AwareDatetime
    actor: ActorIn | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExternalEventBatch(Strict):
    events: list[ExternalEvent] = Field(min_length=1, max_length=500)


class RecordedEvidence(BaseModel):
    seq: int
    event_id: uuid.UUID
    event_type: str
    control_id: str
    outcome: str
    kind: str
    entry_hash: str


class SubmissionRead(BaseModel):
    accepted_events: int
    evidence: list[RecordedEvidence]


class EvidenceRead(BaseModel):
    seq: int
    event_id: uuid.UUID
    event_type: str
    source: str
    control_id: str
    control_title: str
    frameworks: list[str]
    requirements: list[str]
    rule: str
    kind: str
    outcome: str
    occurred_at: datetime
    period_start: datetime
    period_end: datetime
    recorded_at: datetime
    observation: dict[str, Any]
    artifacts: list[dict[str, Any]]
    prev_hash: str
    entry_hash: str
    key_id: str | None
    signature: str | None


class NoteCreate(Strict):
    note: str = Field(min_length=1, max_length=4000)


class NoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    evidence_seq: int
    author: str
    note: str
    note_hash: str
    created_at: datetime


class CheckpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tree_size: int
    root_hash: str
    issued_at: datetime
    key_id: str | None
    signature: str | None


class PruningRead(BaseModel):
    """A retention pruning: the signed statement (`document`, canonical JSON signed with Ed25519)."""

    number: int
    pruned_at: datetime
    cutoff: datetime
    retention_years: int
    records: int
    ranges: list[list[int]]
    entries_sha256: str
    tree_size: int
    key_id: str | None
    signature: str | None
    document: dict[str, Any]


class InclusionProofRead(BaseModel):
    seq: int
    leaf_hash: str
    tree_size: int
    leaf_index: int
    audit_path: list[str]
    checkpoint: CheckpointRead


class ConsistencyProofRead(BaseModel):
    old: CheckpointRead
    new: CheckpointRead
    proof: list[str]


class PublicKeyRead(BaseModel):
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str
    active: bool


class ErasureRequest(Strict):
    identifiers: list[str] = Field(min_length=1, max_length=20)


class ErasureRead(BaseModel):
    erased: int


class ReadinessSummary(BaseModel):
    framework: str
    name: str
    readiness_percent: float
    coverage_percent: float
    freshness_percent: float
    automation_percent: float
    total_requirements: int
    assessed_requirements: int
    met_requirements: int
    gaps: int
    critical_gaps: int
    ledger_size: int
    as_of: datetime
    last_assessment_at: datetime | None = None


class GapRead(BaseModel):
    framework: str
    requirement_id: str
    requirement_title: str
    control_id: str | None
    severity: str
    description: str
    recommendation: str
    estimated_effort: str
    impact: float


class AssessmentCreate(Strict):
    framework: str = Field(min_length=2, max_length=60)


class AssessmentRead(BaseModel):
    id: uuid.UUID
    framework: str
    ledger_size: int
    as_of: datetime
    catalog_version: str
    readiness_percent: float
    coverage_percent: float
    freshness_percent: float
    automation_percent: float
    computed_at: datetime
    result: dict[str, Any] | None = None


class ReportCreate(Strict):
    framework: str = Field(min_length=2, max_length=60)
    start: AwareDatetime
    end: AwareDatetime
    seed: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class ReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    framework: str
    period_start: datetime
    period_end: datetime
    trigger: str
    manifest: dict[str, Any]
    manifest_signature: str | None
    key_id: str | None
    created_at: datetime
