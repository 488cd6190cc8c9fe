"""What the twin knows about where and with whom it is talking, resolved once per turn."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from vibethink.deployments.models import DeploymentType


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    role: str  # "fan" or "twin"
    content: str


@dataclass(frozen=True, slots=True)
class BehaviourOverrides:
    """A deployment's adjustments on top of the twin's own profile."""

    extra_instructions: str = ""
    greeting: str | None = None
    tone: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationContext:
    """The spec's ConversationContext: deployment, brand/campaign, fan and session."""

    tenant_id: uuid.UUID
    celebrity_id: uuid.UUID
    deployment_id: uuid.UUID | None
    deployment_type: DeploymentType
    fan_key: str  # "user:<uuid>" for signed-in fans, "anon:<random>" for anonymous ones
    session_id: str
    fan_tier: str = "FREE"
    brand_id: uuid.UUID | None = None
    brand_name: str | None = None
    campaign_id: uuid.UUID | None = None
    guidelines: tuple[str, ...] = ()
    competitors: tuple[str, ...] = ()  # names the twin must never say in this context
    overrides: BehaviourOverrides = field(default_factory=BehaviourOverrides)
    history: tuple[HistoryTurn, ...] = ()
    fan_memories: tuple[str, ...] = ()

    @property
    def is_brand_context(self) -> bool:
        return self.campaign_id is not None

    def as_json(self) -> dict[str, Any]:
        """The `conversations.context` document (validated against its schema on write)."""
        return {
            "deploymentId": str(self.deployment_id) if self.deployment_id else None,
            "deploymentType": self.deployment_type.value,
            "brandId": str(self.brand_id) if self.brand_id else None,
            "brandName": self.brand_name,
            "campaignId": str(self.campaign_id) if self.campaign_id else None,
            "brandGuidelines": list(self.guidelines),
            "competitors": list(self.competitors),
            "userTier": self.fan_tier,
            "sessionId": self.session_id,
        }
