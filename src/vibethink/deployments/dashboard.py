"""Dashboard pages: a talent's deployments and campaign requests (`/studio/{tenant}/…`) and a brand's
campaigns (`/brand/{tenant}`). Plain forms with the session's CSRF token; every rule is a service's."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.campaigns import preview as campaign_preview
from vibethink.campaigns import service as campaigns
from vibethink.campaigns.schemas import CampaignRequestCreate
from vibethink.chat import service as chat_service
from vibethink.core.database import apply_context
from vibethink.core.errors import CsrfFailed, NotAuthenticated, NotFound, PlatformError
from vibethink.core.security import csrf_matches, csrf_token
from vibethink.deployments import schemas, service
from vibethink.deployments.models import DeploymentType
from vibethink.talent.models import Celebrity
from vibethink.tenancy import service as tenancy_service
from vibethink.tenancy.access import DbSession, Principal, session_user, settings_of
from vibethink.tenancy.models import Role, TenantKind
from vibethink.tenancy.permissions import ROLE_PERMISSIONS, Permission

router = APIRouter(include_in_schema=False)


class Studio:
    """The signed-in member acting in the tenant the path names."""

    def __init__(
        self, principal: Principal, csrf: str, user: Any, tenant_slug: str, tenant_name: str
    ) -> None:
        self.principal = principal
        self.csrf = csrf
        self.user = user
        self.slug = tenant_slug
        self.name = tenant_name


async def _studio(
    request: Request, session: AsyncSession, tenant_slug: str, kind: TenantKind, needs: Permission
) -> Studio | Response:
    """The member acting in `tenant_slug` holding `needs`, or the redirect to sign in first."""
    try:
        found = await session_user(request, session)
    except NotAuthenticated:
        found = None
    if found is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    session_id, user_id = found
    membership = next(
        (m for m in await tenancy_service.memberships_of(session, user_id) if m.slug == tenant_slug), None
    )
    if membership is None or membership.kind is not kind:
        raise NotFound("No such workspace.")
    role = Role(membership.role)
    principal = Principal(
        tenant_id=membership.tenant_id,
        tenant_kind=membership.kind,
        permissions=frozenset(p.value for p in ROLE_PERMISSIONS[role]),
        via="session",
        user_id=user_id,
        role=role,
        session_id=session_id,
    )
    await apply_context(session, principal.rls())
    user = await tenancy_service.get_user(session, user_id)
    principal.require(needs)
    csrf = csrf_token(settings_of(request).secret_key, session_id)
    return Studio(principal, csrf, user, membership.slug, membership.name)


async def _form(request: Request, studio: Studio) -> dict[str, str]:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not csrf_matches(
        settings_of(request).secret_key, studio.principal.session_id or "", values.get("csrf_token")
    ):
        raise CsrfFailed()
    return values


def _render(request: Request, studio: Studio, template: str, context: dict[str, Any]) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    page = {"studio": studio, "user": studio.user, "csrf_token": studio.csrf, **context}
    response: HTMLResponse = templates.TemplateResponse(request, template, page)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _back(path: str, *, done: str | None = None, error: str | None = None) -> RedirectResponse:
    query = f"?done={quote(done)}" if done else f"?error={quote(error or '')}" if error else ""
    return RedirectResponse(path + query, status_code=303)


async def _attempt(session: AsyncSession, work: Callable[[], Awaitable[object]]) -> str | None:
    """Runs a service call in a savepoint: on a refusal nothing of it remains and the page says why."""
    try:
        async with session.begin_nested():
            await work()
    except PlatformError as exc:
        return exc.message
    return None


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]


def _when(value: str) -> datetime | None:
    if not value.strip():
        return None
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------- talent: deployments


@router.get("/studio/{tenant}/deployments", response_class=HTMLResponse)
async def deployments_page(tenant: str, request: Request, session: DbSession) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.TALENT, Permission.DEPLOYMENTS_READ)
    if isinstance(studio, Response):
        return studio
    from vibethink.deployments.routes import deployment_read

    settings = settings_of(request)
    page = await service.page(session, studio.principal, limit=100)
    celebrities = (
        await session.scalars(
            select(Celebrity)
            .where(Celebrity.tenant_id == studio.principal.tenant_id)
            .order_by(Celebrity.name)
        )
    ).all()
    rows = []
    for deployment in page.items:
        _, stats = await service.stats(session, studio.principal, deployment.id)
        rows.append((await deployment_read(session, settings, deployment), stats))
    return _render(
        request,
        studio,
        "deployments/studio_deployments.html",
        {
            "rows": rows,
            "celebrities": celebrities,
            "types": list(DeploymentType),
            "done": request.query_params.get("done"),
            "error": request.query_params.get("error"),
        },
    )


@router.post("/studio/{tenant}/deployments")
async def create_deployment(tenant: str, request: Request, session: DbSession) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.TALENT, Permission.DEPLOYMENTS_WRITE)
    if isinstance(studio, Response):
        return studio
    form = await _form(request, studio)
    back = f"/studio/{tenant}/deployments"
    theme = {"mode": form.get("mode") or "light"}
    if form.get("primary_color"):
        theme["primaryColor"] = form["primary_color"]
    config: dict[str, Any] = {"theme": theme}
    if form.get("greeting", "").strip():
        config["branding"] = {"greeting": form["greeting"].strip()}
    try:
        data = schemas.DeploymentCreate(
            type=DeploymentType(form.get("type", "")),
            name=form.get("name", ""),
            config=config,
            allowed_origins=_lines(form.get("allowed_origins", "")),
            custom_domain=form.get("custom_domain") or None,
            slug=form.get("slug") or None,
        )
        celebrity_id = uuid.UUID(form.get("celebrity_id", ""))
    except (ValidationError, ValueError) as exc:
        return _back(back, error=str(exc).splitlines()[0][:300])
    refused = await _attempt(
        session,
        lambda: service.create(
            session,
            studio.principal,
            celebrity_id,
            type=data.type,
            name=data.name,
            config=data.config,
            allowed_origins=data.allowed_origins,
            custom_domain=data.custom_domain,
            slug=data.slug,
        ),
    )
    return _back(back, error=refused) if refused else _back(back, done="Deployment created.")


@router.post("/studio/{tenant}/deployments/{deployment_id}/{action}")
async def deployment_action(
    tenant: str, deployment_id: uuid.UUID, action: str, request: Request, session: DbSession
) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.TALENT, Permission.DEPLOYMENTS_WRITE)
    if isinstance(studio, Response):
        return studio
    await _form(request, studio)
    actions = {"activate": service.activate, "deactivate": service.deactivate, "archive": service.archive}
    if action not in actions:
        raise NotFound("No such action.")
    back = f"/studio/{tenant}/deployments"
    refused = await _attempt(session, lambda: actions[action](session, studio.principal, deployment_id))
    if refused:
        return _back(back, error=refused)
    return _back(back, done=f"Deployment {action}d." if action != "archive" else "Deployment archived.")


@router.get("/studio/{tenant}/deployments/{deployment_id}/preview", response_class=HTMLResponse)
async def deployment_preview(
    tenant: str, deployment_id: uuid.UUID, request: Request, session: DbSession
) -> Response:
    """The deployment's chat as fans see it, framed on the platform's own origin."""
    studio = await _studio(request, session, tenant, TenantKind.TALENT, Permission.DEPLOYMENTS_READ)
    if isinstance(studio, Response):
        return studio
    deployment = await service.get(session, studio.principal, deployment_id)
    issued = chat_service.fan_tokens(settings_of(request)).issue(
        tenant_id=deployment.tenant_id,
        deployment_id=deployment.id,
        origin=str(request.base_url).rstrip("/"),
        max_age_seconds=settings_of(request).widget_session_seconds,
    )
    return _render(
        request,
        studio,
        "deployments/studio_preview.html",
        {
            "deployment": deployment,
            "live": service.effective_status(deployment).value == "ACTIVE",
            "frame_src": f"/widget/frame/{deployment.widget_key}#t={issued.token}",
        },
    )


# ---------------------------------------------------------------- talent: campaign requests


@router.get("/studio/{tenant}/campaigns", response_class=HTMLResponse)
async def campaigns_page(tenant: str, request: Request, session: DbSession) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.TALENT, Permission.CAMPAIGNS_READ)
    if isinstance(studio, Response):
        return studio
    page = await campaigns.talent_page(session, studio.principal, limit=100)
    return _render(
        request,
        studio,
        "deployments/studio_campaigns.html",
        {
            "campaigns": [(c, campaigns.effective_status(c), campaigns.guidelines_of(c)) for c in page.items],
            "done": request.query_params.get("done"),
            "error": request.query_params.get("error"),
        },
    )


@router.post("/studio/{tenant}/campaigns/{campaign_id}/{decision}")
async def decide_campaign(
    tenant: str, campaign_id: uuid.UUID, decision: str, request: Request, session: DbSession
) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.TALENT, Permission.CAMPAIGNS_WRITE)
    if isinstance(studio, Response):
        return studio
    form = await _form(request, studio)
    back = f"/studio/{tenant}/campaigns"
    note = form.get("note", "")[:2000]
    decide = {"approve": campaigns.approve, "reject": campaigns.reject}.get(decision)
    if decide is None:
        raise NotFound("No such decision.")
    refused = await _attempt(session, lambda: decide(session, studio.principal, campaign_id, note=note))
    if refused:
        return _back(back, error=refused)
    return _back(back, done=f"Campaign {'approved' if decision == 'approve' else 'rejected'}.")


@router.get("/studio/{tenant}/campaigns/{campaign_id}/preview", response_class=HTMLResponse)
async def campaign_preview_page(
    tenant: str, campaign_id: uuid.UUID, request: Request, session: DbSession
) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.TALENT, Permission.CAMPAIGNS_READ)
    if isinstance(studio, Response):
        return studio
    campaign, probes = await campaign_preview.run(
        session, settings_of(request), studio.principal, campaign_id
    )
    return _render(
        request,
        studio,
        "deployments/studio_campaign_preview.html",
        {
            "campaign": campaign,
            "disclosure": campaigns.disclosure(campaign.brand_name),
            "probes": probes,
        },
    )


# ---------------------------------------------------------------- brand


@router.get("/brand/{tenant}", response_class=HTMLResponse)
async def brand_page(tenant: str, request: Request, session: DbSession) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.BRAND, Permission.CAMPAIGNS_READ)
    if isinstance(studio, Response):
        return studio
    page = await campaigns.brand_page(session, studio.principal, limit=100)
    return _render(
        request,
        studio,
        "deployments/brand_campaigns.html",
        {
            "campaigns": [(c, campaigns.effective_status(c)) for c in page.items],
            "done": request.query_params.get("done"),
            "error": request.query_params.get("error"),
        },
    )


def _cents(value: str) -> int:
    text = value.strip().replace(",", "")
    if not text:
        return 0
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or (fraction and (not fraction.isdigit() or len(fraction) > 2)):
        raise ValueError(f"{value!r} is not an amount such as 50000 or 12.50")
    return int(whole) * 100 + int((fraction + "00")[:2])


@router.post("/brand/{tenant}/campaigns")
async def brand_request(tenant: str, request: Request, session: DbSession) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.BRAND, Permission.CAMPAIGNS_WRITE)
    if isinstance(studio, Response):
        return studio
    form = await _form(request, studio)
    back = f"/brand/{tenant}"
    try:
        data = CampaignRequestCreate(
            celebrity_slug=form.get("celebrity_slug", "").strip(),
            campaign_name=form.get("campaign_name", ""),
            starts_at=_when(form.get("starts_at", "")),
            ends_at=_when(form.get("ends_at", "")),
            fee_cents=_cents(form.get("fee", "")),
            cpm_cents=_cents(form.get("cpm", "")),
            cpc_cents=_cents(form.get("cpc", "")),
            currency=(form.get("currency") or "USD").upper(),
            is_exclusive=form.get("is_exclusive") == "on",
            category=form.get("category", ""),
            guidelines={
                "mention_rules": _lines(form.get("mention_rules", "").replace(",", ";")),
                "competitors": _lines(form.get("competitors", "")),
                "themes": _lines(form.get("themes", "")),
            },
        )
    except (ValidationError, ValueError) as exc:
        return _back(back, error=str(exc).splitlines()[0][:300])
    refused = await _attempt(session, lambda: campaigns.request(session, studio.principal, data))
    return _back(back, error=refused) if refused else _back(back, done="Request sent to the talent's team.")


@router.post("/brand/{tenant}/campaigns/{campaign_id}/withdraw")
async def brand_withdraw(
    tenant: str, campaign_id: uuid.UUID, request: Request, session: DbSession
) -> Response:
    studio = await _studio(request, session, tenant, TenantKind.BRAND, Permission.CAMPAIGNS_WRITE)
    if isinstance(studio, Response):
        return studio
    await _form(request, studio)
    refused = await _attempt(session, lambda: campaigns.withdraw(session, studio.principal, campaign_id))
    if refused:
        return _back(f"/brand/{tenant}", error=refused)
    return _back(f"/brand/{tenant}", done="Request withdrawn.")
