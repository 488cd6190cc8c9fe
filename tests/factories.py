"""Builders of test data through the app role in an explicit admin context (so policies apply)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from vibethink.billing.models import PricingTier
from vibethink.core.database import Database, RlsContext
from vibethink.core.security import generate_api_key, hash_password
from vibethink.tenancy.permissions import ALL_SCOPES

ADMIN = RlsContext(is_admin=True, role="PLATFORM_ADMIN")
PASSWORD = "correct horse battery staple"

COMPLETE_TWIN_CONFIG: dict[str, Any] = {
    "voiceCloneId": "voice-test",
    "visualAvatarId": "avatar-test",
    "personalityProfile": {"tone": "warm", "language": "en", "expertise": ["football"]},
    "knowledgeBase": {"sources": [], "lastUpdated": "2026-01-10T00:00:00Z"},
    "guardrails": {"maxResponseLength": 500, "bannedTopics": ["politics"], "contentRating": "PG"},
}


@dataclass
class MadeTenant:
    id: uuid.UUID
    slug: str


@dataclass
class MadeUser:
    id: uuid.UUID
    email: str
    password: str = PASSWORD


async def make_tenant(
    db: Database, *, slug: str, kind: str = "TALENT", name: str | None = None, tier: str = "FREE"
) -> MadeTenant:
    tenant_id = uuid.uuid4()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text("INSERT INTO tenants (id, kind, slug, name, tier) VALUES (:id, :k, :s, :n, :t)"),
            {"id": tenant_id, "k": kind, "s": slug, "n": name or slug.title(), "t": tier},
        )
    return MadeTenant(tenant_id, slug)


async def make_user(
    db: Database,
    *,
    email: str,
    tenant: MadeTenant | None = None,
    role: str = "TALENT_OWNER",
    password: str = PASSWORD,
) -> MadeUser:
    user_id = uuid.uuid4()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text("INSERT INTO users (id, email, display_name, password_hash) VALUES (:id, :e, :n, :h)"),
            {"id": user_id, "e": email, "n": email.split("@")[0], "h": hash_password(password)},
        )
        if tenant is not None:
            await s.execute(
                text("INSERT INTO memberships (tenant_id, user_id, role) VALUES (:t, :u, :r)"),
                {"t": tenant.id, "u": user_id, "r": role},
            )
    return MadeUser(user_id, email, password)


async def make_api_key(
    db: Database, tenant: MadeTenant, *, scopes: set[str] | None = None, revoked: bool = False
) -> str:
    key = generate_api_key()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text(
                "INSERT INTO api_keys (tenant_id, id, key_id, secret_hash, name, scopes, revoked_at)"
                " VALUES (:t, :id, :k, :h, 'test key', :sc, CASE WHEN :rev THEN now() END)"
            ),
            {
                "t": tenant.id,
                "id": uuid.uuid4(),
                "k": key.key_id,
                "h": key.secret_hash,
                "sc": sorted(scopes if scopes is not None else ALL_SCOPES),
                "rev": revoked,
            },
        )
    return key.plaintext


async def make_celebrity(
    db: Database,
    tenant: MadeTenant,
    *,
    slug: str,
    name: str = "Test Talent",
    twin_config: dict[str, Any] | None = None,
    status: str = "PENDING_SETUP",
) -> uuid.UUID:
    celebrity_id = uuid.uuid4()
    async with db.transaction(ADMIN) as s:
        await s.execute(
            text(
                "INSERT INTO celebrities (tenant_id, id, slug, name, type, status, twin_config,"
                " twin_config_version) VALUES (:t, :id, :s, :n, 'ATHLETE', :st, CAST(:c AS jsonb), 1)"
            ),
            {
                "t": tenant.id,
                "id": celebrity_id,
                "s": slug,
                "n": name,
                "st": status,
                "c": json.dumps(twin_config if twin_config is not None else COMPLETE_TWIN_CONFIG),
            },
        )
    return celebrity_id


async def make_tiers(
    db: Database, tenant_id: uuid.UUID, celebrity_id: uuid.UUID, *, free_per_day: int = 3
) -> dict[str, PricingTier]:
    """A FREE tier (`free_per_day` messages) and an unlimited PREMIUM tier at $10.00 a month."""
    rows = {
        "FREE": (0, {"messages_per_day": free_per_day}),
        "PREMIUM": (1_000, {"messages_per_day": None, "premium_content": True}),
    }
    made: dict[str, PricingTier] = {}
    async with db.transaction(RlsContext(tenant_id=tenant_id)) as s:
        for order, (code, (price, entitlements)) in enumerate(rows.items()):
            made[code] = PricingTier(
                tenant_id=tenant_id,
                id=uuid.uuid4(),
                celebrity_id=celebrity_id,
                code=code,
                name=code.title(),
                monthly_price_cents=price,
                currency="USD",
                entitlements=entitlements,
                sort_order=order,
                is_active=True,
            )
            s.add(made[code])
    return made


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
