"""The twin as a deployment shows it: profile with overrides, sponsor context, provider choice.

Resolved from the deployment and its celebrity once and kept per process, because it changes rarely
and every chat turn needs it. Talent writes call `forget_celebrity`; a short TTL is the backstop for
changes made by another process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from vibethink.deployments.models import DeploymentType
from vibethink.twin.context import BehaviourOverrides, ConversationContext, HistoryTurn
from vibethink.twin.guardrails import competitors_from_guidelines
from vibethink.twin.profile import PersonalityProfile

TTL_SECONDS: Final = 30.0
MAX_ENTRIES: Final = 10_000


@dataclass(frozen=True, slots=True)
class DeployedTwin:
    tenant_id: uuid.UUID
    deployment_id: uuid.UUID
    celebrity_id: uuid.UUID
    deployment_type: DeploymentType
    # Active deployment of an active twin; the window is checked per turn, the clock moves.
    is_active: bool
    window: tuple[datetime | None, datetime | None]
    profile: PersonalityProfile
    overrides: BehaviourOverrides
    twin_config: Mapping[str, Any]
    brand_id: uuid.UUID | None = None
    brand_name: str | None = None
    campaign_id: uuid.UUID | None = None
    guidelines: tuple[str, ...] = ()
    competitors: tuple[str, ...] = ()
    disclosure: str | None = None

    def is_live(self, now: datetime) -> bool:
        starts_at, ends_at = self.window
        return (
            self.is_active and (starts_at is None or starts_at <= now) and (ends_at is None or now < ends_at)
        )

    def context(
        self,
        *,
        fan_key: str,
        session_id: str,
        fan_tier: str,
        history: tuple[HistoryTurn, ...] = (),
        memories: tuple[str, ...] = (),
    ) -> ConversationContext:
        return ConversationContext(
            tenant_id=self.tenant_id,
            celebrity_id=self.celebrity_id,
            deployment_id=self.deployment_id,
            deployment_type=self.deployment_type,
            fan_key=fan_key,
            session_id=session_id,
            fan_tier=fan_tier,
            brand_id=self.brand_id,
            brand_name=self.brand_name,
            campaign_id=self.campaign_id,
            guidelines=self.guidelines,
            competitors=self.competitors,
            overrides=self.overrides,
            history=history,
            fan_memories=memories,
        )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    return tuple(s.strip() for s in value if isinstance(s, str) and s.strip())


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


# The endorsement disclosure a campaign's replies carry (the campaigns domain writes the same).
DISCLOSURES: Final = {
    "es": "Colaboración pagada con {brand}",
    "en": "Paid partnership with {brand}",
}


def build(
    *,
    tenant_id: uuid.UUID,
    deployment_id: uuid.UUID,
    celebrity_id: uuid.UUID,
    deployment_type: DeploymentType,
    is_active: bool,
    window: tuple[datetime | None, datetime | None],
    celebrity_name: str,
    config: Mapping[str, Any],
    twin_config: Mapping[str, Any],
) -> DeployedTwin:
    """The twin for one deployment: `config.overrides` on its profile, and for a brand campaign the
    sponsor's ids, guidelines and competitors (the listed ones plus those the guidelines name)."""
    raw = config.get("overrides")
    overrides_doc: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    overrides = BehaviourOverrides(
        extra_instructions=_text(overrides_doc.get("extraInstructions")) or "",
        greeting=_text(overrides_doc.get("greeting")),
        tone=_text(overrides_doc.get("tone")),
    )
    profile = PersonalityProfile.from_twin_config(celebrity_name, twin_config).with_overrides(overrides)
    if deployment_type is not DeploymentType.BRAND_CAMPAIGN:
        return DeployedTwin(
            tenant_id,
            deployment_id,
            celebrity_id,
            deployment_type,
            is_active,
            window,
            profile,
            overrides,
            twin_config,
        )
    guidelines = _strings(config.get("guidelines"))
    brand_name = _text(config.get("brandName"))
    listed = [*_strings(config.get("competitors")), *competitors_from_guidelines(guidelines)]
    competitors = tuple(dict.fromkeys(n for n in listed if n.casefold() != (brand_name or "").casefold()))
    language = profile.language if profile.language in DISCLOSURES else "en"
    disclosure = _text(config.get("disclosure")) or (
        DISCLOSURES[language].format(brand=brand_name) if brand_name else None
    )
    return DeployedTwin(
        tenant_id=tenant_id,
        deployment_id=deployment_id,
        celebrity_id=celebrity_id,
        deployment_type=deployment_type,
        is_active=is_active,
        window=window,
        profile=profile,
        overrides=overrides,
        twin_config=twin_config,
        brand_id=_uuid(config.get("brandId")),
        brand_name=brand_name,
        # Until campaigns have their own rows, a campaign deployment is its own campaign.
        campaign_id=_uuid(config.get("campaignId")) or deployment_id,
        guidelines=guidelines,
        competitors=competitors,
        disclosure=disclosure,
    )


class TwinCache:
    """Deployed twins by deployment id, with explicit invalidation and a TTL backstop."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[uuid.UUID, tuple[float, DeployedTwin]] = {}

    def get(self, deployment_id: uuid.UUID) -> DeployedTwin | None:
        found = self._entries.get(deployment_id)
        if found is None:
            return None
        if time.monotonic() - found[0] > self.ttl_seconds:
            self._entries.pop(deployment_id, None)
            return None
        return found[1]

    def put(self, twin: DeployedTwin) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[twin.deployment_id] = (time.monotonic(), twin)

    def forget_deployment(self, deployment_id: uuid.UUID) -> None:
        self._entries.pop(deployment_id, None)

    def forget_celebrity(self, celebrity_id: uuid.UUID) -> None:
        for key in [k for k, (_, twin) in self._entries.items() if twin.celebrity_id == celebrity_id]:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


cache = TwinCache()


def forget_celebrity(celebrity_id: uuid.UUID) -> None:
    """Call after a change to a celebrity or its twin config: its deployments are re-read."""
    cache.forget_celebrity(celebrity_id)


def forget_deployment(deployment_id: uuid.UUID) -> None:
    """Call after a change to a deployment (config, status, window)."""
    cache.forget_deployment(deployment_id)
