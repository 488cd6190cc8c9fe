"""Revenue dashboards: the talent's (this month, trend, by source, tiers) and the platform admin's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from vibethink.billing import service, statements
from vibethink.core.database import apply_context
from vibethink.core.errors import NotAuthenticated, NotFound, PermissionDenied
from vibethink.core.money import format_minor
from vibethink.core.security import csrf_token
from vibethink.talent.models import Celebrity
from vibethink.tenancy import access
from vibethink.tenancy.access import DbSession, Principal, enter_admin_context
from vibethink.tenancy.models import Role
from vibethink.tenancy.permissions import ROLE_PERMISSIONS, Permission

router = APIRouter(include_in_schema=False)
CHART_HEIGHT = 120
BAR_WIDTH = 36


@dataclass(frozen=True)
class Bar:
    label: str
    value: str
    x: int
    y: int
    height: int


def bars(points: list[statements.TrendPoint]) -> list[Bar]:
    """SVG bars for the celebrity's monthly share, scaled with integers (no floats in money paths)."""
    peak = max((p.celebrity_share_cents for p in points), default=0)
    found: list[Bar] = []
    for index, point in enumerate(points):
        height = (
            point.celebrity_share_cents * CHART_HEIGHT // peak
            if peak > 0 and point.celebrity_share_cents > 0
            else 0
        )
        found.append(
            Bar(
                label=point.month.strftime("%b %y"),
                value=format_minor(point.celebrity_share_cents, point.currency),
                x=index * (BAR_WIDTH + 8),
                y=CHART_HEIGHT - height,
                height=height,
            )
        )
    return found


def _month(value: str | None) -> date:
    if value:
        try:
            return statements.parse_month(value)
        except ValueError:
            pass
    return datetime.now(UTC).date().replace(day=1)


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(request, template, {"money": format_minor, **context})
    return response


async def _member(request: Request, session: DbSession, slug: str) -> tuple[Principal, uuid.UUID] | None:
    """The signed-in member acting in the tenant `slug` (404 when not a member), with its session id."""
    try:
        found = await access.session_user(request, session)
    except NotAuthenticated:
        return None
    if found is None:
        return None
    principal = await access.current_principal(request, session)
    membership = next((m for m in principal.memberships if m[1] == slug), None)
    if membership is None:
        raise NotFound("No such talent.")
    tenant_id, _, _, role = membership
    acting = replace(
        principal,
        tenant_id=tenant_id,
        role=role,
        permissions=frozenset(p.value for p in ROLE_PERMISSIONS[role]),
    )
    await apply_context(session, acting.rls())
    return acting, found[0]


def _login(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={next_path}", status_code=303)


@router.get("/studio/{slug}/revenue", response_class=HTMLResponse)
async def talent_revenue(
    request: Request, session: DbSession, slug: str, month: str | None = None
) -> Response:
    found = await _member(request, session, slug)
    if found is None:
        return _login(f"/studio/{slug}/revenue")
    principal, session_id = found
    principal.require(Permission.BILLING_READ)
    chosen = _month(month)
    celebrities = list(
        (
            await session.scalars(
                select(Celebrity).where(Celebrity.tenant_id == principal.tenant_id).order_by(Celebrity.name)
            )
        ).all()
    )
    panels = []
    for celebrity in celebrities:
        statement = await statements.statement(
            session, tenant_id=principal.tenant_id, celebrity_id=celebrity.id, month=chosen
        )
        trend = await statements.trend(
            session, tenant_id=principal.tenant_id, celebrity_id=celebrity.id, last=chosen, months=12
        )
        tiers = await service.list_tiers(session, tenant_id=principal.tenant_id, celebrity_id=celebrity.id)
        panels.append(
            {
                "celebrity": celebrity,
                "statement": statement,
                "bars": bars(trend),
                "tiers": tiers,
            }
        )
    user = await _user(session, principal)
    settings = access.settings_of(request)
    return _render(
        request,
        "billing/revenue.html",
        {
            "slug": slug,
            "month": chosen,
            "previous": statements.add_months(chosen, -1).strftime("%Y-%m"),
            "next": statements.add_months(chosen, 1).strftime("%Y-%m"),
            "panels": panels,
            "chart_height": CHART_HEIGHT,
            "bar_width": BAR_WIDTH,
            "user": user,
            "csrf_token": csrf_token(settings.secret_key, session_id),
        },
    )


async def _user(session: DbSession, principal: Principal) -> Any:
    from vibethink.tenancy import service as tenancy_service

    return await tenancy_service.get_user(session, principal.user_id) if principal.user_id else None


@router.get("/admin/revenue", response_class=HTMLResponse)
async def admin_revenue(request: Request, session: DbSession, month: str | None = None) -> Response:
    try:
        found = await access.session_user(request, session)
    except NotAuthenticated:
        found = None
    if found is None:
        return _login("/admin/revenue")
    principal = await access.current_principal(request, session)
    if not principal.is_platform_admin or principal.role is not Role.PLATFORM_ADMIN:
        raise PermissionDenied("The platform revenue report is for platform admins.")
    chosen = _month(month)
    await enter_admin_context(
        session, principal, reason=f"revenue dashboard {chosen:%Y-%m}", action="BILLING_REPORT_VIEWED"
    )
    report = await statements.platform_report(session, month=chosen)
    settings = access.settings_of(request)
    return _render(
        request,
        "billing/admin_revenue.html",
        {
            "month": chosen,
            "previous": statements.add_months(chosen, -1).strftime("%Y-%m"),
            "next": statements.add_months(chosen, 1).strftime("%Y-%m"),
            "report": report,
            "by_stream": sorted(report.by_stream.items()),
            "by_talent": sorted(report.by_talent.items(), key=lambda kv: -kv[1].gross_cents),
            "user": await _user(session, principal),
            "csrf_token": csrf_token(settings.secret_key, found[0]),
        },
    )
