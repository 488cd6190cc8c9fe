"""Sign-up, sign-in and sign-out pages, and the studio landing page that picks a tenant.

Forms carry a CSRF token: bound to the session for signed-in users, and for the anonymous sign-in
and sign-up forms a signed double-submit token (a random value in a short-lived signed cookie,
repeated in a hidden field).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.errors import (
    CsrfFailed,
    InvalidCredentials,
    InvalidInvitation,
    NotAuthenticated,
    NotFound,
    PlatformError,
    TooManyRequests,
)
from vibethink.core.security import csrf_matches, csrf_token
from vibethink.core.settings import Settings
from vibethink.tenancy import access, service
from vibethink.tenancy.access import DbSession
from vibethink.tenancy.models import TenantKind
from vibethink.tenancy.routes import clear_session_cookie, client_ip, set_session_cookie

router = APIRouter(include_in_schema=False)

CSRF_COOKIE = "vt_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_SECONDS = 2 * 60 * 60
TENANT_COOKIE = "vt_tenant"
DASHBOARDS = {TenantKind.TALENT: "/studio", TenantKind.BRAND: "/brand", TenantKind.PLATFORM: "/admin"}


def dashboard_path(kind: TenantKind, slug: str) -> str:
    return DASHBOARDS[kind] if kind is TenantKind.PLATFORM else f"{DASHBOARDS[kind]}/{slug}"


def _signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.secret_key, salt="vibethink.csrf.anonymous")


def _anonymous_nonce(request: Request, settings: Settings) -> tuple[str, str | None]:
    """The form's token, and a new signed cookie to set when the browser has no valid one."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie:
        try:
            return _signer(settings).unsign(cookie, max_age=CSRF_MAX_AGE_SECONDS).decode(), None
        except BadSignature:
            pass
    nonce = secrets.token_urlsafe(24)
    return nonce, _signer(settings).sign(nonce).decode()


def _check_anonymous_csrf(request: Request, settings: Settings, presented: str) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not presented:
        raise CsrfFailed()
    try:
        nonce = _signer(settings).unsign(cookie, max_age=CSRF_MAX_AGE_SECONDS).decode()
    except BadSignature as exc:
        raise CsrfFailed() from exc
    if not hmac.compare_digest(nonce, presented):
        raise CsrfFailed()


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would turn the sign-in page into a phishing aid.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/studio"


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=headers
    )
    return response


def _anonymous_form(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    settings = access.settings_of(request)
    nonce, new_cookie = _anonymous_nonce(request, settings)
    response = _render(
        request, template, {**context, "csrf_token": nonce}, status_code=status_code, headers=headers
    )
    if new_cookie is not None:
        response.set_cookie(
            CSRF_COOKIE,
            new_cookie,
            max_age=CSRF_MAX_AGE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=settings.cookie_secure,
            path="/",
        )
    return response


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def _signed_in(request: Request, session: AsyncSession) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(session id, user id) of a valid session; an ended or expired one counts as signed out."""
    try:
        return await access.session_user(request, session)
    except NotAuthenticated:
        return None


def _to_login(request: Request, *, next_path: str) -> RedirectResponse:
    response = RedirectResponse(f"/login?next={next_path}", status_code=303)
    clear_session_cookie(response, access.settings_of(request))
    return response


async def _start_session(
    request: Request, session: AsyncSession, user: Any, *, next_path: str
) -> RedirectResponse:
    settings = access.settings_of(request)
    new = await service.create_session(
        session,
        user,
        settings=settings,
        user_agent=request.headers.get("user-agent"),
        ip=client_ip(request),
    )
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    set_session_cookie(response, settings, new.cookie)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


# ---------------------------------------------------------------- sign in


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, session: DbSession, next: str = "/studio") -> Response:
    if await _signed_in(request, session) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    notice = "You are signed out." if request.query_params.get("signed_out") else None
    return _anonymous_form(
        request, "tenancy/login.html", {"next": _safe_next(next), "email": "", "notice": notice}
    )


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request, session: DbSession) -> Response:
    settings = access.settings_of(request)
    form = await _form(request)
    _check_anonymous_csrf(request, settings, form.get(CSRF_FIELD, ""))
    email, next_path = form.get("email", "").strip(), _safe_next(form.get("next"))
    context: dict[str, Any] = {"next": next_path, "email": email}
    if not email or not form.get("password"):
        context["error"] = "Enter your e-mail address and your password."
        return _anonymous_form(request, "tenancy/login.html", context, status_code=422)
    try:
        user = await service.authenticate(
            session, email=email, password=form["password"], ip=client_ip(request), settings=settings
        )
    except InvalidCredentials as exc:
        # Caught here, so the boundary still commits the recorded failure.
        context["error"] = exc.message
        return _anonymous_form(request, "tenancy/login.html", context, status_code=401)
    except TooManyRequests as exc:
        minutes = max(1, round(exc.retry_after_seconds / 60))
        context["error"] = f"Too many failed sign-ins. Try again in about {minutes} minute(s)."
        return _anonymous_form(request, "tenancy/login.html", context, status_code=429, headers=exc.headers)
    return await _start_session(request, session, user, next_path=next_path)


# ---------------------------------------------------------------- sign up


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, session: DbSession, invite: str | None = None) -> Response:
    context: dict[str, Any] = {"values": {"tenant_kind": "TALENT"}, "errors": {}, "invite": invite}
    if invite:
        try:
            context["invitation"] = await service.describe_invitation(session, invite)
        except InvalidInvitation as exc:
            context["invite_error"] = exc.message
            return _anonymous_form(request, "tenancy/signup.html", context, status_code=422)
    return _anonymous_form(request, "tenancy/signup.html", context)


@router.post("/signup", response_class=HTMLResponse)
async def signup_submit(request: Request, session: DbSession) -> Response:
    settings = access.settings_of(request)
    form = await _form(request)
    _check_anonymous_csrf(request, settings, form.get(CSRF_FIELD, ""))
    invite = form.get("invite") or None
    kind = TenantKind.BRAND if form.get("tenant_kind") == TenantKind.BRAND.value else TenantKind.TALENT
    try:
        result = await service.sign_up(
            session,
            email=form.get("email") or None,
            password=form.get("password", ""),
            display_name=form.get("display_name") or None,
            tenant_name=form.get("tenant_name") or None,
            tenant_slug=form.get("tenant_slug") or None,
            tenant_kind=kind,
            invitation_token=invite,
        )
    except PlatformError as exc:
        # A failed flush leaves the transaction unusable; nothing of this attempt may be kept.
        await session.rollback()
        values = {k: v for k, v in form.items() if k not in ("password", CSRF_FIELD)}
        context: dict[str, Any] = {
            "values": values,
            "errors": {exc.field or "form": exc.message},
            "invite": invite,
        }
        if invite:
            try:
                context["invitation"] = await service.describe_invitation(session, invite)
            except InvalidInvitation as invalid:
                context["invite_error"] = invalid.message
        return _anonymous_form(request, "tenancy/signup.html", context, status_code=exc.status_code)
    return await _start_session(request, session, result.user, next_path="/studio")


# ---------------------------------------------------------------- signed in


@router.get("/studio", response_class=HTMLResponse)
async def studio(request: Request, session: DbSession) -> Response:
    found = await _signed_in(request, session)
    if found is None:
        return _to_login(request, next_path="/studio")
    session_id, user_id = found
    settings = access.settings_of(request)
    user = await service.get_user(session, user_id)
    memberships = await service.memberships_of(session, user_id)
    context = {
        "user": user,
        "memberships": memberships,
        "dashboards": {m.slug: dashboard_path(m.kind, m.slug) for m in memberships},
        "current": request.cookies.get(TENANT_COOKIE),
        "csrf_token": csrf_token(settings.secret_key, session_id),
    }
    return _render(request, "tenancy/studio.html", context)


@router.post("/studio/tenant")
async def choose_tenant(request: Request, session: DbSession) -> Response:
    """Remembers which tenant the dashboards act in, then opens that tenant's dashboard."""
    found = await _signed_in(request, session)
    if found is None:
        return _to_login(request, next_path="/studio")
    session_id, user_id = found
    settings = access.settings_of(request)
    form = await _form(request)
    if not csrf_matches(settings.secret_key, session_id, form.get(CSRF_FIELD)):
        raise CsrfFailed()
    slug = form.get("tenant", "")
    chosen = next((m for m in await service.memberships_of(session, user_id) if m.slug == slug), None)
    if chosen is None:
        raise NotFound("You are not a member of that tenant.")
    response = RedirectResponse(dashboard_path(chosen.kind, chosen.slug), status_code=303)
    response.set_cookie(
        TENANT_COOKIE,
        chosen.slug,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: DbSession) -> Response:
    settings = access.settings_of(request)
    found = await _signed_in(request, session)
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    if found is not None:
        session_id, user_id = found
        form = await _form(request)
        if not csrf_matches(settings.secret_key, session_id, form.get(CSRF_FIELD)):
            raise CsrfFailed()
        await service.revoke_session(session, user_id, session_id)
    clear_session_cookie(response, settings)
    response.delete_cookie(TENANT_COOKIE, path="/")
    return response
