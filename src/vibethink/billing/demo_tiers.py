"""The demo talents' pricing tiers: FREE, PREMIUM ($10/month, the spec's example) and ENTERPRISE."""

from __future__ import annotations

import uuid
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.billing.models import PricingTier
from vibethink.talent.models import Celebrity

DEMO_TIERS: Final[tuple[dict[str, Any], ...]] = (
    {
        "code": "FREE",
        "name": "Free",
        "monthly_price_cents": 0,
        "sort_order": 0,
        "entitlements": {
            "messages_per_day": 20,
            "premium_content": False,
            "voice_minutes": 0,
            "video_minutes": 0,
        },
    },
    {
        "code": "PREMIUM",
        "name": "Premium",
        "monthly_price_cents": 1_000,
        "sort_order": 1,
        "entitlements": {
            "messages_per_day": 200,
            "premium_content": True,
            "voice_minutes": 30,
            "video_minutes": 0,
        },
    },
    {
        "code": "ENTERPRISE",
        "name": "Enterprise",
        "monthly_price_cents": 4_900,
        "sort_order": 2,
        "entitlements": {
            "messages_per_day": None,
            "premium_content": True,
            "voice_minutes": 300,
            "video_minutes": 60,
        },
    },
)


async def ensure_tiers(session: AsyncSession, tenant_id: uuid.UUID, celebrity_slug: str) -> list[str]:
    """Adds the demo tiers the talent lacks; returns what was created (nothing the second time)."""
    celebrity_id = await session.scalar(
        select(Celebrity.id).where(Celebrity.tenant_id == tenant_id, Celebrity.slug == celebrity_slug)
    )
    if celebrity_id is None:
        return []
    existing = set(
        (
            await session.scalars(
                select(PricingTier.code).where(
                    PricingTier.tenant_id == tenant_id, PricingTier.celebrity_id == celebrity_id
                )
            )
        ).all()
    )
    created: list[str] = []
    for tier in DEMO_TIERS:
        if tier["code"] in existing:
            continue
        session.add(
            PricingTier(
                tenant_id=tenant_id, id=uuid.uuid4(), celebrity_id=celebrity_id, currency="USD", **tier
            )
        )
        created.append(f"tier {celebrity_slug}/{tier['code']}")
    await session.flush()
    return created
