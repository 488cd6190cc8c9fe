"""A fan's tier allowance and daily message quota.

The chat turn reads the fan's tier and today's count inside its own database call
(`chat_turn_read`) and counts the message in its write, so the turn's check needs no cache and
cannot go stale. This module builds the allowance and the 429 from what the turn read, and serves
the usage endpoint: there the allowance (the fan's live subscription's tier, else the talent's free
tier) is cached per fan for `ALLOWANCE_TTL` seconds and dropped explicitly when a subscription or
tier changes in this process; the day's count is read from `fan_usage`, the truth.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.errors import PlatformError

ALLOWANCE_TTL: Final = 30.0
MAX_ENTRIES: Final = 200_000

ALLOWANCE_SQL = text(
    """
    (SELECT 0 AS rank, t.code, t.name, t.entitlements, s.id AS subscription_id
       FROM fan_subscriptions s
       JOIN pricing_tiers t ON t.tenant_id = s.tenant_id AND t.id = s.tier_id
      WHERE s.tenant_id = :tenant AND s.celebrity_id = :celebrity AND s.fan_key = :fan
        AND (s.status = 'ACTIVE' OR (s.status = 'PAST_DUE' AND s.grace_until > now()))
      LIMIT 1)
    UNION ALL
    (SELECT 1, t.code, t.name, t.entitlements, NULL
       FROM pricing_tiers t
      WHERE t.tenant_id = :tenant AND t.celebrity_id = :celebrity AND t.is_active
        AND t.monthly_price_cents = 0
      ORDER BY (t.code = 'FREE') DESC, t.sort_order
      LIMIT 1)
    ORDER BY 1 LIMIT 1
    """
)
UPGRADES_SQL = text(
    "SELECT code, name, monthly_price_cents, currency, entitlements FROM pricing_tiers"
    " WHERE tenant_id = :tenant AND celebrity_id = :celebrity AND is_active"
    " ORDER BY sort_order, monthly_price_cents"
)
USAGE_SQL = text(
    "SELECT messages FROM fan_usage WHERE tenant_id = :tenant AND celebrity_id = :celebrity"
    " AND fan_key = :fan AND day = :day"
)


@dataclass(frozen=True, slots=True)
class Allowance:
    """What the fan's tier unlocks; `messages_per_day` None means no daily limit."""

    tier_code: str
    tier_name: str
    messages_per_day: int | None
    premium_content: bool
    voice_minutes: int
    video_minutes: int
    subscription_id: uuid.UUID | None = None


UNLIMITED = Allowance("FREE", "Free", None, False, 0, 0)


@dataclass(frozen=True, slots=True)
class Usage:
    allowance: Allowance
    used: int
    period_start: datetime
    resets_at: datetime

    @property
    def quota(self) -> int | None:
        return self.allowance.messages_per_day

    @property
    def remaining(self) -> int | None:
        return None if self.quota is None else max(0, self.quota - self.used)


class QuotaExceeded(PlatformError):
    status_code = 429
    code = "quota_exceeded"
    default_message = "You have used today's messages for your tier."


def allowance_from(code: str, name: str, entitlements: dict[str, Any], subscription_id: Any) -> Allowance:
    limit = entitlements.get("messages_per_day")
    return Allowance(
        tier_code=code,
        tier_name=name,
        messages_per_day=None if limit is None else int(limit),
        premium_content=bool(entitlements.get("premium_content", False)),
        voice_minutes=int(entitlements.get("voice_minutes", 0)),
        video_minutes=int(entitlements.get("video_minutes", 0)),
        subscription_id=subscription_id,
    )


FanRef = tuple[uuid.UUID, uuid.UUID, str]
_allowances: dict[FanRef, tuple[Allowance, float]] = {}


def _bounded(cache: dict[Any, Any]) -> None:
    if len(cache) >= MAX_ENTRIES:
        cache.clear()


def forget_fan(tenant_id: uuid.UUID, celebrity_id: uuid.UUID, fan_key: str) -> None:
    """Call when the fan's subscription changes: the next check reads the new tier."""
    _allowances.pop((tenant_id, celebrity_id, fan_key), None)


def forget_celebrity(tenant_id: uuid.UUID, celebrity_id: uuid.UUID) -> None:
    """Call when a talent's tiers change: every fan of that talent is read again."""
    for key in [k for k in _allowances if k[0] == tenant_id and k[1] == celebrity_id]:
        _allowances.pop(key, None)


def clear() -> None:
    _allowances.clear()


def day_bounds(now: datetime) -> tuple[date, datetime, datetime]:
    day = now.astimezone(UTC).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return day, start, start + timedelta(days=1)


async def allowance(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, fan_key: str
) -> Allowance:
    key = (tenant_id, celebrity_id, fan_key)
    cached = _allowances.get(key)
    clock = time.monotonic()
    if cached is not None and cached[1] > clock:
        return cached[0]
    row = (
        await session.execute(ALLOWANCE_SQL, {"tenant": tenant_id, "celebrity": celebrity_id, "fan": fan_key})
    ).first()
    found = (
        UNLIMITED
        if row is None
        else allowance_from(row.code, row.name, row.entitlements, row.subscription_id)
    )
    _bounded(_allowances)
    _allowances[key] = (found, clock + ALLOWANCE_TTL)
    return found


async def used_today(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, fan_key: str, day: date
) -> int:
    value = await session.scalar(
        USAGE_SQL, {"tenant": tenant_id, "celebrity": celebrity_id, "fan": fan_key, "day": day}
    )
    return int(value or 0)


async def exceeded(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    celebrity_id: uuid.UUID,
    allowance: Allowance,
    used: int,
    now: datetime | None = None,
) -> QuotaExceeded:
    """The 429 for a fan past today's quota: the reset time (`Retry-After`, `details.resets_at`)
    and the tiers to upgrade to (the fan's upgrade prompt)."""
    moment = now or datetime.now(UTC)
    _, _, resets_at = day_bounds(moment)
    upgrades = await upgrade_options(
        session, tenant_id=tenant_id, celebrity_id=celebrity_id, current=allowance
    )
    wait = max(1, int((resets_at - moment).total_seconds()))
    names = ", ".join(u["name"] for u in upgrades)
    return QuotaExceeded(
        f"You have used your {allowance.messages_per_day} messages for today"
        f" on the {allowance.tier_name} tier."
        f" More at {resets_at.strftime('%H:%M UTC')}" + (f", or upgrade to {names}." if names else "."),
        headers={"Retry-After": str(wait)},
        details={
            "tier": allowance.tier_code,
            "quota": allowance.messages_per_day,
            "used": used,
            "resets_at": resets_at.isoformat(),
            "upgrade_tiers": upgrades,
        },
    )


async def upgrade_options(
    session: AsyncSession, *, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, current: Allowance
) -> list[dict[str, Any]]:
    """Tiers that allow more messages per day than `current` (the fan's upgrade prompt)."""
    rows = (await session.execute(UPGRADES_SQL, {"tenant": tenant_id, "celebrity": celebrity_id})).all()
    options: list[dict[str, Any]] = []
    for row in rows:
        limit = row.entitlements.get("messages_per_day")
        more = limit is None or (
            current.messages_per_day is not None and int(limit) > current.messages_per_day
        )
        if row.code != current.tier_code and more:
            options.append(
                {
                    "code": row.code,
                    "name": row.name,
                    "monthly_price_cents": int(row.monthly_price_cents),
                    "currency": row.currency,
                    "messages_per_day": limit,
                }
            )
    return options


async def usage(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    celebrity_id: uuid.UUID,
    fan_key: str,
    now: datetime | None = None,
) -> Usage:
    found = await allowance(session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan_key)
    day, start, resets_at = day_bounds(now or datetime.now(UTC))
    used = await used_today(session, tenant_id=tenant_id, celebrity_id=celebrity_id, fan_key=fan_key, day=day)
    return Usage(allowance=found, used=used, period_start=start, resets_at=resets_at)
