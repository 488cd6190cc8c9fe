"""Compliance pages: the settings panel and the readiness dashboard (the spec's two mockups)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.compliance import ledger, readiness, reports, service
from vibethink.compliance.catalog import load_catalog
from vibethink.compliance.keys import key_store
from vibethink.compliance.models import Evidence
from vibethink.compliance.plans import ReportFrequency
from vibethink.compliance.schemas import SettingsUpdate
from vibethink.compliance.state import TenantCompliance
from vibethink.core.errors import CsrfFailed, NotAuthenticated, PlatformError
from vibethink.core.security import csrf_matches, csrf_token
from vibethink.tenancy import access
from vibethink.tenancy.access import DbSession, Principal
from vibethink.tenancy.permissions import Permission

router = APIRouter(include_in_schema=False)
RECENT_DAYS = 7


async def _principal(request: Request, session: AsyncSession) -> Principal | None:
    try:
        principal = await access.current_principal(request, session)
    except NotAuthenticated:
        return None
    principal.require(Permission.COMPLIANCE_READ)
    return principal


def _login(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={next_path}", status_code=303)


def _render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(request, template, context, status_code=status_code)
    return response


def _csrf(request: Request, principal: Principal) -> str:
    return csrf_token(access.settings_of(request).secret_key, principal.session_id or "")


async def _settings_context(
    request: Request, session: AsyncSession, principal: Principal, state: TenantCompliance
) -> dict[str, Any]:
    view = await service.settings_read(session, state)
    return {
        "principal": principal,
        "settings": view,
        "frequencies": [f.value for f in ReportFrequency],
        "allowed_frequencies": [f.value for f in ReportFrequency if state.limits.allows_frequency(f)],
        "limits": state.limits,
        "csrf_token": _csrf(request, principal),
        "can_write": principal.can(Permission.COMPLIANCE_WRITE),
    }


@router.get("/compliance/settings", response_class=HTMLResponse)
async def settings_page(request: Request, session: DbSession, saved: bool = False) -> Response:
    principal = await _principal(request, session)
    if principal is None:
        return _login("/compliance/settings")
    state = await service.guarded_state(session, principal, write=False)
    context = await _settings_context(request, session, principal, state)
    return _render(request, "compliance/settings.html", {**context, "saved": saved, "error": None})


@router.post("/compliance/settings", response_class=HTMLResponse)
async def save_settings(request: Request, session: DbSession) -> Response:
    principal = await _principal(request, session)
    if principal is None:
        return _login("/compliance/settings")
    form = await request.form()
    if not csrf_matches(
        access.settings_of(request).secret_key, principal.session_id or "", str(form.get("csrf_token"))
    ):
        raise CsrfFailed()
    principal.require(Permission.COMPLIANCE_WRITE)
    recipients = [
        r.strip() for r in str(form.get("report_recipients", "")).replace(",", "\n").splitlines() if r.strip()
    ]
    raw = {
        "enabled_frameworks": [str(v) for v in form.getlist("frameworks")],
        "auto_generation": form.get("auto_generation") == "on",
        "signing_enabled": form.get("signing_enabled") == "on",
        "retention_years": str(form.get("retention_years") or "1"),
        "report_frequency": str(form.get("report_frequency") or "MONTHLY"),
        "report_recipients": recipients,
    }
    state = await service.guarded_state(session, principal, write=False)
    # Features the plan lacks are not switched on by an unchecked box: only ask for what changes.
    if not state.limits.auto_generation and not raw["auto_generation"]:
        raw.pop("auto_generation")
    if not state.limits.signing and not raw["signing_enabled"]:
        raw.pop("signing_enabled")
    if raw["report_frequency"] == state.report_frequency.value:
        raw.pop("report_frequency")
    error: str | None = None
    try:
        body = SettingsUpdate.model_validate(raw)
        async with session.begin_nested():
            await service.update_settings(session, principal, body)
    except ValidationError as exc:
        first = exc.errors()[0]
        error = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    except PlatformError as exc:
        error = exc.message
    if error is None:
        return RedirectResponse("/compliance/settings?saved=1", status_code=303)
    state = await service.guarded_state(session, principal, write=False)
    context = await _settings_context(request, session, principal, state)
    return _render(
        request, "compliance/settings.html", {**context, "saved": False, "error": error}, status_code=422
    )


@router.get("/compliance", response_class=HTMLResponse)
async def dashboard(request: Request, session: DbSession) -> Response:
    principal = await _principal(request, session)
    if principal is None:
        return _login("/compliance")
    state = await service.guarded_state(session, principal, write=False)
    size = await ledger.head_size(session, principal.tenant_id)
    catalog = load_catalog()
    frameworks = []
    for code in state.tracked_frameworks:
        result = await readiness.framework_readiness(session, state, code, size=size)
        frameworks.append(result)
    assessments = await service.latest_assessments(session, principal.tenant_id)
    since = datetime.now(UTC) - timedelta(days=RECENT_DAYS)
    recent = (
        await session.scalars(
            select(Evidence)
            .where(
                Evidence.tenant_id == principal.tenant_id,
                Evidence.pruned_in.is_(None),
                Evidence.occurred_at >= since,
            )
            .order_by(Evidence.seq.desc())
            .limit(20)
        )
    ).all()
    recent_rows = [
        {
            "row": r,
            "title": catalog.controls[r.control_id].title
            if r.control_id in catalog.controls
            else r.control_id,
            "frameworks": sorted({f for f, _ in state.frameworks_for_control(r.control_id or "")}),
        }
        for r in recent
    ]
    critical = [g for fr in frameworks for g in fr.gaps if g.severity == "CRITICAL"][:10]
    return _render(
        request,
        "compliance/dashboard.html",
        {
            "principal": principal,
            "plan": state.plan.value,
            "frameworks": frameworks,
            "assessments": assessments,
            "recent": recent_rows,
            "critical": critical,
            "ledger_size": size,
            "gap_analysis": state.limits.gap_analysis,
            "csrf_token": _csrf(request, principal),
            "can_write": principal.can(Permission.COMPLIANCE_WRITE),
        },
    )


@router.post("/compliance/report")
async def export_report(request: Request, session: DbSession) -> Response:
    """The dashboard's Export Report button: a signed PDF report of the last 30 days."""
    principal = await _principal(request, session)
    if principal is None:
        return _login("/compliance")
    form = await request.form()
    if not csrf_matches(
        access.settings_of(request).secret_key, principal.session_id or "", str(form.get("csrf_token"))
    ):
        raise CsrfFailed()
    principal.require(Permission.COMPLIANCE_WRITE)
    framework = str(form.get("framework") or "")
    now = datetime.now(UTC)
    built = await reports.build_report(
        session,
        key_store(access.settings_of(request)),
        principal.tenant_id,
        framework,
        start=now - timedelta(days=30),
        end=now,
    )
    name = f"readiness-{framework.replace(':', '-')}-{now.date()}.pdf"
    return Response(
        built.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
