"""Deployments API for talent teams: create, configure, schedule, switch, archive, secrets, domains."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.pagination import MAX_PAGE, Page
from vibethink.core.settings import Settings
from vibethink.deployments import service, widget
from vibethink.deployments.models import Deployment, DeploymentStatus, DeploymentType
from vibethink.deployments.schemas import (
    DeploymentCreate,
    DeploymentRead,
    DeploymentSchedule,
    DeploymentStats,
    DeploymentUpdate,
    DomainVerification,
    IdentitySecretRead,
    WidgetRefresh,
    WidgetSessionCreate,
    WidgetSessionRead,
    embed_code,
    public_url_of,
)
from vibethink.talent.models import Celebrity
from vibethink.tenancy.access import DbSession, Principal, require, settings_of
from vibethink.tenancy.permissions import Permission

router = APIRouter(tags=["deployments"])
widget_router = APIRouter(tags=["widget"])

DeploymentReader = Annotated[Principal, Depends(require(Permission.DEPLOYMENTS_READ))]
DeploymentWriter = Annotated[Principal, Depends(require(Permission.DEPLOYMENTS_WRITE))]
MAX_VERIFICATION_BYTES = 1024


async def deployment_read(
    session: AsyncSession, settings: Settings, deployment: Deployment
) -> DeploymentRead:
    celebrity = await session.get(Celebrity, (deployment.tenant_id, deployment.celebrity_id))
    slug = celebrity.slug if celebrity is not None else ""
    base = settings.public_url.rstrip("/")
    theme = deployment.config.get("theme")
    domain = None
    if deployment.custom_domain and deployment.domain_token:
        domain = DomainVerification(
            domain=deployment.custom_domain,
            verified=deployment.domain_verified_at is not None,
            token=deployment.domain_token,
            url=f"http://{deployment.custom_domain}{service.VERIFICATION_PATH}",
        )
    return DeploymentRead(
        id=deployment.id,
        celebrity_id=deployment.celebrity_id,
        type=deployment.type,
        name=deployment.name,
        status=deployment.status,
        effective_status=service.effective_status(deployment),
        config=deployment.config,
        starts_at=deployment.starts_at,
        ends_at=deployment.ends_at,
        widget_key=deployment.widget_key,
        analytics_key=deployment.analytics_key,
        allowed_origins=list(deployment.allowed_origins),
        require_identity=deployment.require_identity,
        has_identity_secret=deployment.identity_salt is not None,
        slug=deployment.slug,
        custom_domain=deployment.custom_domain,
        domain=domain,
        public_url=public_url_of(
            base,
            type=deployment.type,
            celebrity_slug=slug,
            slug=deployment.slug,
            custom_domain=deployment.custom_domain,
        ),
        embed_code=embed_code(
            base,
            celebrity_slug=slug,
            widget_key=deployment.widget_key,
            theme=theme if isinstance(theme, dict) else {},
        ),
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
        archived_at=deployment.archived_at,
    )


@router.post("/celebrities/{celebrity_id}/deployments", status_code=201)
async def create_deployment(
    celebrity_id: uuid.UUID,
    body: DeploymentCreate,
    principal: DeploymentWriter,
    session: DbSession,
    request: Request,
) -> DeploymentRead:
    deployment = await service.create(
        session,
        principal,
        celebrity_id,
        type=body.type,
        name=body.name,
        config=body.config,
        custom_domain=body.custom_domain,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        allowed_origins=body.allowed_origins,
        require_identity=body.require_identity,
        slug=body.slug,
    )
    return await deployment_read(session, settings_of(request), deployment)


@router.get("/deployments")
async def list_deployments(
    principal: DeploymentReader,
    session: DbSession,
    request: Request,
    celebrity_id: uuid.UUID | None = None,
    type: DeploymentType | None = None,
    status: Annotated[
        DeploymentStatus | None, Query(description="ARCHIVED ones are listed only when asked.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = service.DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[DeploymentRead]:
    found = await service.page(
        session, principal, celebrity_id=celebrity_id, type=type, status=status, limit=limit, cursor=cursor
    )
    settings = settings_of(request)
    items = [await deployment_read(session, settings, d) for d in found.items]
    return Page[DeploymentRead](items=items, next_cursor=found.next_cursor)


@router.get("/deployments/{deployment_id}")
async def get_deployment(
    deployment_id: uuid.UUID, principal: DeploymentReader, session: DbSession, request: Request
) -> DeploymentRead:
    deployment = await service.get(session, principal, deployment_id)
    return await deployment_read(session, settings_of(request), deployment)


@router.patch("/deployments/{deployment_id}")
async def update_deployment(
    deployment_id: uuid.UUID,
    body: DeploymentUpdate,
    principal: DeploymentWriter,
    session: DbSession,
    request: Request,
) -> DeploymentRead:
    deployment = await service.update(session, principal, deployment_id, body)
    return await deployment_read(session, settings_of(request), deployment)


@router.post("/deployments/{deployment_id}/schedule")
async def schedule_deployment(
    deployment_id: uuid.UUID,
    body: DeploymentSchedule,
    principal: DeploymentWriter,
    session: DbSession,
    request: Request,
) -> DeploymentRead:
    deployment = await service.schedule(
        session, principal, deployment_id, starts_at=body.starts_at, ends_at=body.ends_at
    )
    return await deployment_read(session, settings_of(request), deployment)


@router.post("/deployments/{deployment_id}/activate")
async def activate_deployment(
    deployment_id: uuid.UUID, principal: DeploymentWriter, session: DbSession, request: Request
) -> DeploymentRead:
    deployment = await service.activate(session, principal, deployment_id)
    return await deployment_read(session, settings_of(request), deployment)


@router.post("/deployments/{deployment_id}/deactivate")
async def deactivate_deployment(
    deployment_id: uuid.UUID, principal: DeploymentWriter, session: DbSession, request: Request
) -> DeploymentRead:
    deployment = await service.deactivate(session, principal, deployment_id)
    return await deployment_read(session, settings_of(request), deployment)


@router.post("/deployments/{deployment_id}/archive")
async def archive_deployment(
    deployment_id: uuid.UUID, principal: DeploymentWriter, session: DbSession, request: Request
) -> DeploymentRead:
    deployment = await service.archive(session, principal, deployment_id)
    return await deployment_read(session, settings_of(request), deployment)


@router.post("/deployments/{deployment_id}/identity-secret", status_code=201)
async def rotate_identity_secret(
    deployment_id: uuid.UUID, principal: DeploymentWriter, session: DbSession, request: Request
) -> IdentitySecretRead:
    """A new identity-verification secret, shown only in this response; the previous one stops working."""
    deployment, secret = await service.rotate_identity_secret(
        session, principal, deployment_id, secret_key=settings_of(request).secret_key
    )
    return IdentitySecretRead(deployment_id=deployment.id, secret=secret)


def domain_fetcher(settings: Settings) -> service.Fetch:
    """Reads a domain's verification file: no redirects, a short timeout, at most 1 KiB."""

    async def fetch(domain: str) -> str | None:
        url = service.verification_url(settings.domain_verification_url, domain)
        timeout = httpx.Timeout(settings.domain_verification_timeout_seconds)
        try:
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
                client.stream("GET", url, headers={"Host": domain, "Accept": "text/plain"}) as response,
            ):
                if response.status_code != 200:
                    return None
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_VERIFICATION_BYTES:
                        return None
                return body.decode("utf-8", errors="replace")
        except httpx.HTTPError:
            return None

    return fetch


@router.post("/deployments/{deployment_id}/domain/verify")
async def verify_domain(
    deployment_id: uuid.UUID, principal: DeploymentWriter, session: DbSession, request: Request
) -> DeploymentRead:
    """Checks that the custom domain serves this deployment's token at /.well-known/vibethink-verification."""
    settings = settings_of(request)
    deployment = await service.verify_domain(
        session, principal, deployment_id, fetch=domain_fetcher(settings)
    )
    return await deployment_read(session, settings, deployment)


@router.get("/deployments/{deployment_id}/stats")
async def deployment_stats(
    deployment_id: uuid.UUID,
    principal: DeploymentReader,
    session: DbSession,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DeploymentStats:
    since, until = (
        t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t for t in (since, until)
    )
    deployment, found = await service.stats(session, principal, deployment_id, since=since, until=until)
    return DeploymentStats(
        deployment_id=deployment.id,
        analytics_key=deployment.analytics_key,
        interactions=found.interactions,
        unique_fans=found.unique_fans,
        conversations=found.conversations,
        conversions=sum(found.conversions.values()),
        conversions_by_kind=found.conversions,
        since=since,
        until=until,
    )


def _widget_session(request: Request, found: widget.WidgetSession) -> WidgetSessionRead:
    deployment = found.deployment
    theme = deployment.section("theme")
    # The route accepted this origin: the CORS layer may now let the host page read the answer.
    request.state.cors_origin = found.issued_origin
    return WidgetSessionRead(
        token=found.issued.token,
        fan_key=found.issued.fan_key,
        expires_at=found.issued.expires_at,
        deployment_id=deployment.id,
        name=deployment.celebrity_name,
        frame_url=f"{str(request.base_url).rstrip('/')}/widget/frame/{deployment.widget_key}",
        verified_user=found.verified_user,
        greeting=deployment.greeting,
        disclosure=deployment.disclosure,
        theme={k: v for k, v in theme.items() if k in ("mode", "primaryColor", "accentColor", "position")},
    )


@widget_router.post("/widget/sessions", status_code=201)
async def start_widget_session(
    body: WidgetSessionCreate, request: Request, session: DbSession
) -> WidgetSessionRead:
    """A browser session for the page embedding the widget (its Origin must be allowed): a fan token
    of at most 15 minutes bound to the tenant, the deployment and that origin. With identity
    verification, send the host site's user id and its HMAC-SHA256 signature."""
    found = await widget.start(
        session,
        settings_of(request),
        deployment_key=body.deployment_key,
        origin_header=request.headers.get("origin"),
        user_id=body.user_id,
        user_signature=body.user_signature,
    )
    return _widget_session(request, found)


@widget_router.post("/widget/sessions/refresh", status_code=201)
async def refresh_widget_session(
    body: WidgetRefresh, request: Request, session: DbSession
) -> WidgetSessionRead:
    """The same fan's session renewed before it ends, while its origin is still allowed."""
    found = await widget.refresh(session, settings_of(request), token=body.token)
    return _widget_session(request, found)
