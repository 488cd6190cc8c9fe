"""Which deployment a public request is for: by portal slug, widget key, Host, or campaign path.

Resolutions are cached per process (hits are a dict lookup). Every change to a deployment or a
celebrity NOTIFYs `vibethink_deployments` at commit (a trigger, migration 0007); each process LISTENs
and drops what changed, so several processes stay in step. A short TTL is the backstop for a missed
notification, and a (re)connected listener starts from an empty cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat import twins
from vibethink.core.database import Database, asyncpg_connect_args
from vibethink.deployments import origins
from vibethink.deployments.models import DeploymentStatus, DeploymentType
from vibethink.deployments.origins import OriginRule
from vibethink.talent.models import EntityStatus

log = logging.getLogger(__name__)

CHANNEL: Final = "vibethink_deployments"
TTL_SECONDS: Final = 60.0
MISS_TTL_SECONDS: Final = 10.0
MAX_ENTRIES: Final = 20_000
COLUMNS: Final = (
    "tenant_id, deployment_id, celebrity_id, celebrity_slug, celebrity_name, celebrity_bio, celebrity_status,"
    " twin_config, type, status, name, config, starts_at, ends_at, allowed_origins, require_identity,"
    " identity_salt, widget_key, custom_domain, domain_verified, domain_token, slug"
)
# Constant column and function names only; the values are always bound parameters.
LOOKUPS: Final = {
    "slug": text(f"SELECT {COLUMNS} FROM deployment_by_slug(:a)"),  # noqa: S608
    "widget": text(f"SELECT {COLUMNS} FROM deployment_by_widget_key(:a)"),  # noqa: S608
    "host": text(f"SELECT {COLUMNS} FROM deployment_by_host(:a)"),  # noqa: S608
    "id": text(f"SELECT {COLUMNS} FROM deployment_by_id(CAST(:a AS uuid))"),  # noqa: S608
    "campaign": text(f"SELECT {COLUMNS} FROM deployment_by_campaign(:a, :b)"),  # noqa: S608
}


@dataclass(frozen=True, slots=True)
class ResolvedDeployment:
    """What a public page needs of a deployment and its twin, read before any tenant context."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    celebrity_id: uuid.UUID
    celebrity_slug: str
    celebrity_name: str
    celebrity_bio: str
    celebrity_status: EntityStatus
    twin_config: dict[str, Any]
    type: DeploymentType
    status: DeploymentStatus
    name: str
    config: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None
    allowed_origins: tuple[OriginRule, ...]
    require_identity: bool
    identity_salt: str | None
    widget_key: str
    custom_domain: str | None
    domain_verified: bool
    # Public by design: served at /.well-known/vibethink-verification for the platform's own check.
    domain_token: str | None
    slug: str | None

    def is_live(self, now: datetime) -> bool:
        """Open to fans now: switched on (or scheduled and started), inside its window, its twin active."""
        switched_on = self.status is DeploymentStatus.ACTIVE or (
            self.status is DeploymentStatus.SCHEDULED and self.starts_at is not None and self.starts_at <= now
        )
        return (
            switched_on
            and self.celebrity_status is EntityStatus.ACTIVE
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )

    @property
    def language(self) -> str:
        profile = self.twin_config.get("personalityProfile")
        language = profile.get("language") if isinstance(profile, dict) else None
        return language if isinstance(language, str) and language else "en"

    def section(self, name: str) -> dict[str, Any]:
        found = self.config.get(name)
        return found if isinstance(found, dict) else {}

    @property
    def greeting(self) -> str | None:
        for candidate in (
            self.section("branding").get("greeting"),
            self.section("overrides").get("greeting"),
            (self.twin_config.get("personalityProfile") or {}).get("greeting"),
        ):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
        return None

    @property
    def brand_name(self) -> str | None:
        name = self.config.get("brandName")
        return name.strip() if isinstance(name, str) and name.strip() else None

    @property
    def disclosure(self) -> str | None:
        given = self.config.get("disclosure")
        if isinstance(given, str) and given.strip():
            return given.strip()
        return None


def _resolved(row: Any) -> ResolvedDeployment:
    return ResolvedDeployment(
        tenant_id=row.tenant_id,
        id=row.deployment_id,
        celebrity_id=row.celebrity_id,
        celebrity_slug=row.celebrity_slug,
        celebrity_name=row.celebrity_name,
        celebrity_bio=row.celebrity_bio or "",
        celebrity_status=EntityStatus(row.celebrity_status),
        twin_config=dict(row.twin_config or {}),
        type=DeploymentType(row.type),
        status=DeploymentStatus(row.status),
        name=row.name,
        config=dict(row.config or {}),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        # Stored rules were checked on write; one that no longer parses is dropped, never widened.
        allowed_origins=tuple(_rules(row.allowed_origins or [])),
        require_identity=bool(row.require_identity),
        identity_salt=row.identity_salt,
        widget_key=row.widget_key,
        custom_domain=row.custom_domain,
        domain_verified=bool(row.domain_verified),
        domain_token=row.domain_token,
        slug=row.slug,
    )


def _rules(values: list[str]) -> list[OriginRule]:
    found = []
    for value in values:
        with contextlib.suppress(Exception):
            found.append(origins.parse_rule(value))
    return found


Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Tier:
    """A pricing tier as the public pages show it (read-only here; billing owns the table)."""

    code: str
    name: str
    monthly_price_cents: int
    currency: str
    perks: tuple[str, ...]
    entitlements: dict[str, Any] = field(default_factory=dict)  # what billing says the tier unlocks


class ResolverCache:
    """Resolutions by (kind, value, extra); misses are cached briefly so unknown hosts stay cheap.
    Also a celebrity's public tiers, dropped with the celebrity."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, miss_ttl_seconds: float = MISS_TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self.miss_ttl_seconds = miss_ttl_seconds
        self._hits: dict[Key, tuple[float, ResolvedDeployment]] = {}
        self._misses: dict[Key, float] = {}
        self._tiers: dict[uuid.UUID, tuple[float, tuple[Tier, ...]]] = {}

    def tiers(self, celebrity_id: uuid.UUID) -> tuple[Tier, ...] | None:
        found = self._tiers.get(celebrity_id)
        if found is None or time.monotonic() - found[0] > self.ttl_seconds:
            return None
        return found[1]

    def put_tiers(self, celebrity_id: uuid.UUID, tiers: tuple[Tier, ...]) -> None:
        if len(self._tiers) >= MAX_ENTRIES:
            self._tiers.clear()
        self._tiers[celebrity_id] = (time.monotonic(), tiers)

    def get(self, key: Key) -> tuple[bool, ResolvedDeployment | None]:
        """(found in cache, resolution): (True, None) is a cached miss."""
        now = time.monotonic()
        hit = self._hits.get(key)
        if hit is not None:
            if now - hit[0] <= self.ttl_seconds:
                return True, hit[1]
            self._hits.pop(key, None)
        missed_at = self._misses.get(key)
        if missed_at is not None:
            if now - missed_at <= self.miss_ttl_seconds:
                return True, None
            self._misses.pop(key, None)
        return False, None

    def put(self, key: Key, value: ResolvedDeployment | None) -> None:
        if len(self._hits) + len(self._misses) >= MAX_ENTRIES:
            self.clear()
        if value is None:
            self._misses[key] = time.monotonic()
        else:
            self._hits[key] = (time.monotonic(), value)

    def _drop(self, keep: Callable[[ResolvedDeployment], bool]) -> None:
        for key in [k for k, (_, v) in self._hits.items() if not keep(v)]:
            self._hits.pop(key, None)
        # Any change may turn a miss into a hit (a new deployment, a verified domain).
        self._misses.clear()

    def forget_deployment(self, deployment_id: uuid.UUID) -> None:
        self._drop(lambda v: v.id != deployment_id)

    def forget_celebrity(self, celebrity_id: uuid.UUID) -> None:
        self._tiers.pop(celebrity_id, None)
        self._drop(lambda v: v.celebrity_id != celebrity_id)

    def clear(self) -> None:
        self._hits.clear()
        self._misses.clear()
        self._tiers.clear()


cache = ResolverCache()


def forget(message: str) -> None:
    """Applies one change notification (`d:<deployment id>` or `c:<celebrity id>`) to every cache."""
    kind, _, raw = message.partition(":")
    try:
        changed = uuid.UUID(raw)
    except ValueError:
        cache.clear()
        twins.cache.clear()
        return
    if kind == "d":
        cache.forget_deployment(changed)
        twins.forget_deployment(changed)
    else:
        cache.forget_celebrity(changed)
        twins.forget_celebrity(changed)


async def _lookup(session: AsyncSession, key: Key) -> ResolvedDeployment | None:
    found, value = cache.get(key)
    if found:
        return value
    kind, a, b = key
    row = (await session.execute(LOOKUPS[kind], {"a": a, "b": b})).first()
    value = _resolved(row) if row is not None else None
    cache.put(key, value)
    return value


async def by_slug(session: AsyncSession, slug: str) -> ResolvedDeployment | None:
    """The celebrity's portal deployment (the active one first)."""
    return await _lookup(session, ("slug", slug.lower(), ""))


async def by_widget_key(session: AsyncSession, key: str) -> ResolvedDeployment | None:
    return await _lookup(session, ("widget", key, ""))


async def by_id(session: AsyncSession, deployment_id: uuid.UUID) -> ResolvedDeployment | None:
    return await _lookup(session, ("id", str(deployment_id), ""))


async def by_host(session: AsyncSession, host: str) -> ResolvedDeployment | None:
    return await _lookup(session, ("host", host.lower(), ""))


async def by_campaign(session: AsyncSession, slug: str, campaign: str) -> ResolvedDeployment | None:
    return await _lookup(session, ("campaign", slug.lower(), campaign.lower()))


def cached_host(host: str) -> tuple[bool, ResolvedDeployment | None]:
    """A Host resolution without touching the database: (known, resolution)."""
    return cache.get(("host", host.lower(), ""))


class ChangeListener:
    """LISTENs for deployment changes on its own connection and keeps the caches honest."""

    def __init__(self, db: Database, *, retry_seconds: float = 2.0) -> None:
        self.db = db
        self.retry_seconds = retry_seconds
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> ChangeListener:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(**asyncpg_connect_args(self.db.app_url))
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *args: forget(str(args[-1])))
                # Whatever changed while nobody listened is unknown: start from nothing.
                cache.clear()
                twins.cache.clear()
                self.connected.set()
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("deployment change listener lost its connection: %s", exc)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(self.retry_seconds)
