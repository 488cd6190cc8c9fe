"""Pydantic shapes of brand campaign requests, decisions and the brand-safety preview."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from vibethink.campaigns.models import CampaignStatus


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_no_nul)]
Cents = Annotated[int, Field(ge=0, le=10**13)]


class Guidelines(BaseModel):
    """What the twin must do in the campaign's context; enforced by the engine's guardrails."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    mention_rules: list[Text] = Field(default_factory=list, max_length=20)
    competitors: list[Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)]] = Field(
        default_factory=list, max_length=50
    )
    themes: list[Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)]] = Field(
        default_factory=list, max_length=20
    )


class CampaignRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    celebrity_slug: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    campaign_name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
    starts_at: datetime
    ends_at: datetime
    fee_cents: Cents = 0
    cpm_cents: Cents = 0
    cpc_cents: Cents = 0
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    is_exclusive: bool = False
    category: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)]
    guidelines: Guidelines = Field(default_factory=Guidelines)

    @model_validator(mode="after")
    def _window(self) -> CampaignRequestCreate:
        for name in ("starts_at", "ends_at"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-06-11T18:00:00Z)")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CampaignDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)] = ""


class CampaignRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    celebrity_id: uuid.UUID
    brand_id: uuid.UUID
    brand_name: str
    campaign_name: str
    slug: str
    category: str | None
    starts_at: datetime
    ends_at: datetime | None
    is_exclusive: bool
    fee_cents: int
    cpm_cents: int
    cpc_cents: int
    currency: str
    guidelines: Guidelines
    status: CampaignStatus = Field(description="REQUESTED, APPROVED, REJECTED, CANCELLED as decided.")
    effective_status: CampaignStatus = Field(
        description="APPROVED becomes ACTIVE inside its window, then COMPLETED."
    )
    decision_note: str | None
    decided_at: datetime | None
    deployment_id: uuid.UUID | None
    disclosure: str
    created_at: datetime


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[Text] | None = Field(
        default=None, max_length=20, description="Probing prompts; the guidelines' own probes when absent."
    )


class PreviewItem(BaseModel):
    prompt: str
    reply: str
    guardrails: list[dict[str, str]]
    breaches: list[str] = Field(
        description="What the model tried that the guidelines forbid (caught or not)."
    )
    leaked: list[str] = Field(description="Forbidden names that reached the reply: must be empty.")


class PreviewRead(BaseModel):
    campaign_id: uuid.UUID
    disclosure: str
    items: list[PreviewItem]
    breaches: int
    leaked: int
