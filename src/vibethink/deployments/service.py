"""Deployments of a tenant's twin: create, configure, schedule, switch on and off, archive;
widget keys, allowed origins, identity verification and custom domains.

Every function takes the request's session and the acting principal, writes its platform event in
the same transaction and never commits. Changes reach every process's caches through the
`vibethink_deployments` notification (a trigger), so no function here clears a cache by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core import outbox
from vibethink.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from vibethink.core.models import new_id
from vibethink.core.pagination import newest_first
from vibethink.deployments import origins
from vibethink.deployments.models import (
    ConversionKind,
    Deployment,
    DeploymentConversion,
    DeploymentStatus,
    DeploymentType,
    new_key,
)
from vibethink.deployments.schemas import DeploymentUpdate
from vibethink.talent import schema_registry
from vibethink.talent import service as talent_service
from vibethink.talent.models import EntityStatus
from vibethink.tenancy.access import Principal

CONFIG_SCHEMA: Final = "deployment_config"
DEFAULT_PAGE: Final = 50
VERIFICATION_PATH: Final = "/.well-known/vibethink-verification"
LISTED_STATUSES: Final = (DeploymentStatus.SCHEDULED, DeploymentStatus.ACTIVE, DeploymentStatus.INACTIVE)
SWEEP_SQL = text("SELECT tenant_id, deployment_id, status FROM deployment_advance_schedules()")


class DomainNotVerified(Conflict):
    code = "domain_not_verified"
    default_message = "Prove you own the custom domain before switching this deployment on."


class DomainVerificationFailed(Conflict):
    code = "domain_verification_failed"
    default_message = "The verification token was not found on the domain."


class DeploymentArchived(Conflict):
    code = "deployment_archived"
    default_message = "The deployment is archived and can no longer be changed."


class WindowEnded(Conflict):
    code = "window_ended"
    default_message = "The deployment's window has ended; schedule a new one first."


PUBLIC_LOOKUP_SQL = text(
    "SELECT tenant_id, deployment_id, celebrity_id, type, status, config, starts_at, ends_at,"
    " celebrity_name, celebrity_status, twin_config FROM chat_public_deployment(:id)"
)


@dataclass(frozen=True, slots=True)
class PublicDeployment:
    """What a fan's request may know about a deployment before any tenant context is set."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    celebrity_id: uuid.UUID
    type: DeploymentType
    status: DeploymentStatus
    config: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None
    celebrity_name: str
    celebrity_status: EntityStatus
    twin_config: dict[str, Any]

    def is_live(self, now: datetime) -> bool:
        """Open to fans: active, its twin active, and inside its window when it has one."""
        return (
            self.status is DeploymentStatus.ACTIVE
            and self.celebrity_status is EntityStatus.ACTIVE
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


async def public_lookup(session: AsyncSession, deployment_id: uuid.UUID) -> PublicDeployment | None:
    """The deployment and its twin by id alone (a SECURITY DEFINER lookup); None when there is none."""
    row = (await session.execute(PUBLIC_LOOKUP_SQL, {"id": deployment_id})).first()
    if row is None:
        return None
    return PublicDeployment(
        tenant_id=row.tenant_id,
        id=row.deployment_id,
        celebrity_id=row.celebrity_id,
        type=DeploymentType(row.type),
        status=DeploymentStatus(row.status),
        config=dict(row.config or {}),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        celebrity_name=row.celebrity_name,
        celebrity_status=EntityStatus(row.celebrity_status),
        twin_config=dict(row.twin_config or {}),
    )


_key = new_key


def effective_status(deployment: Deployment, now: datetime | None = None) -> DeploymentStatus:
    """What fans see now: a started schedule is ACTIVE, a finished window INACTIVE."""
    now = now or datetime.now(UTC)
    status = deployment.status
    if status in (DeploymentStatus.ARCHIVED, DeploymentStatus.INACTIVE):
        return status
    if deployment.ends_at is not None and deployment.ends_at <= now:
        return DeploymentStatus.INACTIVE
    if deployment.starts_at is not None and now < deployment.starts_at:
        return DeploymentStatus.SCHEDULED
    return DeploymentStatus.ACTIVE


async def _emit(
    session: AsyncSession,
    principal: Principal,
    event_type: str,
    deployment: Deployment,
    payload: dict[str, Any],
) -> None:
    if principal.api_key_id is not None:
        payload = {**payload, "actor_api_key_id": str(principal.api_key_id)}
    await outbox.emit(
        session,
        event_type,
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=principal.actor_role,
        subject_type="deployment",
        subject_id=deployment.id,
        payload={"celebrity_id": str(deployment.celebrity_id), "type": deployment.type.value, **payload},
    )


async def _valid_config(session: AsyncSession, config: dict[str, Any] | None) -> dict[str, Any]:
    document = dict(config or {})
    await schema_registry.validate(session, CONFIG_SCHEMA, document, column="config")
    return document


def _origin_texts(values: list[str] | None) -> list[str]:
    return [rule.text for rule in origins.parse_rules(values or [])]


def _initial_status(
    type: DeploymentType, starts_at: datetime | None, ends_at: datetime | None, custom_domain: str | None
) -> DeploymentStatus:
    now = datetime.now(UTC)
    if type is DeploymentType.WHITE_LABEL and custom_domain is not None:
        return DeploymentStatus.INACTIVE  # switched on only once the domain is proven
    if ends_at is not None and ends_at <= now:
        return DeploymentStatus.INACTIVE
    if starts_at is not None and now < starts_at:
        return DeploymentStatus.SCHEDULED
    return DeploymentStatus.ACTIVE


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        detail = str(exc.orig)
        if "custom_domain" in detail:
            raise AlreadyExists("That custom domain is already in use.", field="custom_domain") from exc
        if "uq_deployments_celebrity_slug" in detail:
            raise AlreadyExists("This twin already has a deployment with that slug.", field="slug") from exc
        raise


async def create(
    session: AsyncSession,
    principal: Principal,
    celebrity_id: uuid.UUID,
    *,
    type: DeploymentType,
    name: str,
    config: dict[str, Any] | None = None,
    status: DeploymentStatus | None = None,
    custom_domain: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    allowed_origins: list[str] | None = None,
    require_identity: bool = False,
    slug: str | None = None,
) -> Deployment:
    """A new deployment of the tenant's twin; another tenant's celebrity is a 404."""
    celebrity = await talent_service.get(session, principal, celebrity_id)
    if not name.strip() or len(name) > 200:
        raise InvalidInput("The name must have 1 to 200 characters.", field="name")
    if custom_domain is not None and type is not DeploymentType.WHITE_LABEL:
        raise InvalidInput("Only a WHITE_LABEL deployment has a custom domain.", field="custom_domain")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at.", field="ends_at")
    document = await _valid_config(session, config)
    chosen = status or _initial_status(type, starts_at, ends_at, custom_domain)
    if chosen is DeploymentStatus.ACTIVE and type is DeploymentType.WHITE_LABEL and custom_domain:
        raise DomainNotVerified()
    deployment = Deployment(
        tenant_id=principal.tenant_id,
        id=new_id(),
        celebrity_id=celebrity.id,
        type=type,
        name=name.strip(),
        config=document,
        status=chosen,
        custom_domain=custom_domain,
        starts_at=starts_at,
        ends_at=ends_at,
        widget_key=_key("vtw_"),
        analytics_key=_key("vta_"),
        allowed_origins=_origin_texts(allowed_origins),
        require_identity=require_identity,
        slug=slug,
        domain_token=_key("vtv_") if custom_domain else None,
    )
    session.add(deployment)
    await _flush(session)
    await session.refresh(deployment, ["created_at", "updated_at"])
    await _emit(session, principal, "DEPLOYMENT_CREATED", deployment, {"status": chosen.value})
    return deployment


async def get(session: AsyncSession, principal: Principal, deployment_id: uuid.UUID) -> Deployment:
    """The tenant's deployment; another tenant's (or none) is a 404."""
    found = await session.scalar(
        select(Deployment).where(Deployment.tenant_id == principal.tenant_id, Deployment.id == deployment_id)
    )
    if found is None:
        raise NotFound("No such deployment.")
    return found


async def _writable(session: AsyncSession, principal: Principal, deployment_id: uuid.UUID) -> Deployment:
    found = await session.scalar(
        select(Deployment)
        .where(Deployment.tenant_id == principal.tenant_id, Deployment.id == deployment_id)
        .with_for_update()
    )
    if found is None:
        raise NotFound("No such deployment.")
    if found.status is DeploymentStatus.ARCHIVED:
        raise DeploymentArchived()
    return found


@dataclass(frozen=True, slots=True)
class DeploymentPage:
    items: list[Deployment]
    next_cursor: str | None


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    celebrity_id: uuid.UUID | None = None,
    type: DeploymentType | None = None,
    status: DeploymentStatus | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> DeploymentPage:
    """Newest first; ARCHIVED ones only when asked for."""
    query = select(Deployment).where(
        Deployment.tenant_id == principal.tenant_id,
        Deployment.status.in_([status] if status is not None else LISTED_STATUSES),
    )
    if celebrity_id is not None:
        query = query.where(Deployment.celebrity_id == celebrity_id)
    if type is not None:
        query = query.where(Deployment.type == type)
    items, next_cursor = await newest_first(
        session, query, created_at=Deployment.created_at, row_id=Deployment.id, cursor=cursor, limit=limit
    )
    return DeploymentPage(items, next_cursor)


async def update(
    session: AsyncSession, principal: Principal, deployment_id: uuid.UUID, data: DeploymentUpdate
) -> Deployment:
    deployment = await _writable(session, principal, deployment_id)
    changed: list[str] = []
    if data.name is not None and data.name != deployment.name:
        deployment.name = data.name
        changed.append("name")
    if data.config is not None:
        deployment.config = await _valid_config(session, data.config)
        changed.append("config")
    if data.allowed_origins is not None:
        deployment.allowed_origins = _origin_texts(data.allowed_origins)
        changed.append("allowed_origins")
    if data.require_identity is not None and data.require_identity != deployment.require_identity:
        deployment.require_identity = data.require_identity
        changed.append("require_identity")
    if data.slug is not None and data.slug != deployment.slug:
        deployment.slug = data.slug
        changed.append("slug")
    if data.custom_domain is not None and data.custom_domain != deployment.custom_domain:
        if deployment.type is not DeploymentType.WHITE_LABEL:
            raise InvalidInput("Only a WHITE_LABEL deployment has a custom domain.", field="custom_domain")
        # A new domain must be proven again; until then nobody is served on it.
        deployment.custom_domain = data.custom_domain
        deployment.domain_token = _key("vtv_")
        deployment.domain_verified_at = None
        if deployment.status is not DeploymentStatus.INACTIVE:
            deployment.status = DeploymentStatus.INACTIVE
            changed.append("status")
        changed.append("custom_domain")
    if changed:
        await _flush(session)
        await session.refresh(deployment, ["updated_at"])
        await _emit(session, principal, "DEPLOYMENT_UPDATED", deployment, {"fields": changed})
    return deployment


async def _set_status(
    session: AsyncSession, principal: Principal, deployment: Deployment, status: DeploymentStatus, reason: str
) -> Deployment:
    previous = deployment.status
    deployment.status = status
    await _flush(session)
    await session.refresh(deployment, ["updated_at"])
    await _emit(
        session,
        principal,
        "DEPLOYMENT_STATUS_CHANGED",
        deployment,
        {"from": previous.value, "status": status.value, "reason": reason},
    )
    return deployment


async def schedule(
    session: AsyncSession,
    principal: Principal,
    deployment_id: uuid.UUID,
    *,
    starts_at: datetime,
    ends_at: datetime | None,
) -> Deployment:
    """Opens the deployment at `starts_at` and closes it at `ends_at` (SCHEDULED → ACTIVE → INACTIVE)."""
    deployment = await _writable(session, principal, deployment_id)
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at.", field="ends_at")
    if ends_at is not None and ends_at <= datetime.now(UTC):
        raise InvalidInput("ends_at is in the past.", field="ends_at")
    _check_domain(deployment)
    deployment.starts_at, deployment.ends_at = starts_at, ends_at
    target = DeploymentStatus.SCHEDULED if datetime.now(UTC) < starts_at else DeploymentStatus.ACTIVE
    return await _set_status(session, principal, deployment, target, "schedule")


def _check_domain(deployment: Deployment) -> None:
    if deployment.type is DeploymentType.WHITE_LABEL and deployment.domain_verified_at is None:
        raise DomainNotVerified()


async def activate(session: AsyncSession, principal: Principal, deployment_id: uuid.UUID) -> Deployment:
    """Switches it on by hand; a pending start is brought forward (a campaign keeps its window)."""
    deployment = await _writable(session, principal, deployment_id)
    now = datetime.now(UTC)
    if deployment.ends_at is not None and deployment.ends_at <= now:
        raise WindowEnded()
    _check_domain(deployment)
    if deployment.starts_at is not None and now < deployment.starts_at:
        if deployment.type is DeploymentType.BRAND_CAMPAIGN:
            return await _set_status(session, principal, deployment, DeploymentStatus.SCHEDULED, "manual")
        deployment.starts_at = now
    if deployment.status is DeploymentStatus.ACTIVE:
        return deployment
    return await _set_status(session, principal, deployment, DeploymentStatus.ACTIVE, "manual")


async def deactivate(session: AsyncSession, principal: Principal, deployment_id: uuid.UUID) -> Deployment:
    deployment = await _writable(session, principal, deployment_id)
    if deployment.status is DeploymentStatus.INACTIVE:
        return deployment
    return await _set_status(session, principal, deployment, DeploymentStatus.INACTIVE, "manual")


async def archive(session: AsyncSession, principal: Principal, deployment_id: uuid.UUID) -> Deployment:
    """Archived for good: fans no longer reach it and its custom domain is released."""
    deployment = await _writable(session, principal, deployment_id)
    deployment.archived_at = datetime.now(UTC)
    released = deployment.custom_domain
    deployment.custom_domain = None
    deployment.domain_verified_at = None
    deployment = await _set_status(session, principal, deployment, DeploymentStatus.ARCHIVED, "archive")
    if released:
        await _emit(session, principal, "DEPLOYMENT_DOMAIN_RELEASED", deployment, {"domain": released})
    return deployment


async def advance_schedules(session: AsyncSession) -> int:
    """Moves every tenant's due deployments by the clock (SCHEDULED → ACTIVE → INACTIVE), with events."""
    return len((await session.execute(SWEEP_SQL)).all())


# ---------------------------------------------------------------- identity verification


def identity_secret(secret_key: str, deployment_id: uuid.UUID, salt: str) -> str:
    """The deployment's identity secret: derived from the platform key, so no table ever holds it."""
    message = f"vibethink.identity.v1|{deployment_id}|{salt}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return "vtid_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def user_signature(secret: str, user_id: str) -> str:
    """What the host site computes for its signed-in user: hex HMAC-SHA256 of the user id."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def signature_matches(secret: str, user_id: str, presented: str) -> bool:
    return hmac.compare_digest(user_signature(secret, user_id), presented.strip().lower())


async def rotate_identity_secret(
    session: AsyncSession, principal: Principal, deployment_id: uuid.UUID, *, secret_key: str
) -> tuple[Deployment, str]:
    """A new identity secret (the previous one stops working at once); returned here only."""
    deployment = await _writable(session, principal, deployment_id)
    deployment.identity_salt = secrets.token_hex(16)
    await _flush(session)
    await session.refresh(deployment, ["updated_at"])
    await _emit(session, principal, "DEPLOYMENT_IDENTITY_SECRET_ROTATED", deployment, {})
    return deployment, identity_secret(secret_key, deployment.id, deployment.identity_salt)


# ---------------------------------------------------------------- custom domains

Fetch = Callable[[str], Awaitable[str | None]]


def verification_url(template: str, domain: str) -> str:
    return template.format(domain=domain, path=VERIFICATION_PATH)


async def verify_domain(
    session: AsyncSession, principal: Principal, deployment_id: uuid.UUID, *, fetch: Fetch
) -> Deployment:
    """Fetches the domain's verification file; its token must be the deployment's, compared in
    constant time. `fetch(domain)` returns the body or None when nothing could be read."""
    deployment = await _writable(session, principal, deployment_id)
    if deployment.custom_domain is None or deployment.domain_token is None:
        raise InvalidInput("This deployment has no custom domain.", field="custom_domain")
    if deployment.domain_verified_at is not None:
        return deployment
    body = await fetch(deployment.custom_domain)
    if body is None or not hmac.compare_digest(body.strip().encode(), deployment.domain_token.encode()):
        raise DomainVerificationFailed(
            f"{VERIFICATION_PATH} on {deployment.custom_domain} did not answer with this deployment's token."
        )
    deployment.domain_verified_at = datetime.now(UTC)
    await _flush(session)
    await session.refresh(deployment, ["updated_at"])
    await _emit(
        session, principal, "DEPLOYMENT_DOMAIN_VERIFIED", deployment, {"domain": deployment.custom_domain}
    )
    return deployment


# ---------------------------------------------------------------- analytics


@dataclass(frozen=True, slots=True)
class Stats:
    interactions: int
    unique_fans: int
    conversations: int
    conversions: dict[str, int]


STATS_SQL = text(
    """
    SELECT count(*) AS interactions, count(DISTINCT fan_key) AS fans, count(DISTINCT conversation_id) AS chats
      FROM interaction_events
     WHERE tenant_id = :t AND deployment_id = :d
       AND occurred_at >= coalesce(CAST(:since AS timestamptz), '-infinity')
       AND occurred_at < coalesce(CAST(:until AS timestamptz), 'infinity')
    """
)


async def stats(
    session: AsyncSession,
    principal: Principal,
    deployment_id: uuid.UUID,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[Deployment, Stats]:
    """Interactions, unique fans and conversations from the chat's interaction events; conversions."""
    deployment = await get(session, principal, deployment_id)
    params = {"t": principal.tenant_id, "d": deployment.id, "since": since, "until": until}
    row = (await session.execute(STATS_SQL, params)).one()
    query = (
        select(DeploymentConversion.kind, func.count())
        .where(
            DeploymentConversion.tenant_id == principal.tenant_id,
            DeploymentConversion.deployment_id == deployment.id,
        )
        .group_by(DeploymentConversion.kind)
    )
    if since is not None:
        query = query.where(DeploymentConversion.occurred_at >= since)
    if until is not None:
        query = query.where(DeploymentConversion.occurred_at < until)
    conversions = {kind.value: int(count) for kind, count in (await session.execute(query)).all()}
    return deployment, Stats(int(row.interactions), int(row.fans), int(row.chats), conversions)


async def record_conversion(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    deployment_id: uuid.UUID,
    fan_key: str,
    kind: ConversionKind,
    detail: str = "",
) -> None:
    """A fan's step towards revenue, in the fan's tenant context (the chat's or the portal's)."""
    session.add(
        DeploymentConversion(
            tenant_id=tenant_id, deployment_id=deployment_id, fan_key=fan_key, kind=kind, detail=detail[:200]
        )
    )
    await session.flush()
    await outbox.emit(
        session,
        "DEPLOYMENT_CONVERSION",
        tenant_id=tenant_id,
        actor_role="FAN",
        subject_type="deployment",
        subject_id=deployment_id,
        payload={"kind": kind.value, "fan_key": fan_key, "detail": detail[:200]},
    )
