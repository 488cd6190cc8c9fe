"""Tenancy API: sign-up and sessions, the current tenant, tenants (platform), members, API keys."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core.errors import InvalidCredentials, InvalidInput, NotAuthenticated, PermissionDenied
from vibethink.core.pagination import MAX_PAGE, Page
from vibethink.core.settings import Settings
from vibethink.tenancy import access, service
from vibethink.tenancy.access import DbSession, Principal, require
from vibethink.tenancy.models import Role, TenantKind, User
from vibethink.tenancy.permissions import Permission
from vibethink.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    Login,
    MemberInvite,
    MemberInvited,
    MemberRead,
    MembershipRead,
    MemberUpdate,
    MeRead,
    SessionRead,
    SignUp,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
    UserRead,
)

router = APIRouter(tags=["tenancy"])

AppSettings = Annotated[Settings, Depends(access.settings_of)]
TenantReader = Annotated[Principal, Depends(require(Permission.TENANT_READ))]
TenantWriter = Annotated[Principal, Depends(require(Permission.TENANT_WRITE))]
MemberReader = Annotated[Principal, Depends(require(Permission.MEMBERS_READ))]
MemberWriter = Annotated[Principal, Depends(require(Permission.MEMBERS_WRITE))]
KeyReader = Annotated[Principal, Depends(require(Permission.API_KEYS_READ))]
KeyWriter = Annotated[Principal, Depends(require(Permission.API_KEYS_WRITE))]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def set_session_cookie(response: Response, settings: Settings, cookie: str) -> None:
    response.set_cookie(
        settings.session_cookie_name,
        cookie,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.session_cookie_name, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
    )


def invite_url(settings: Settings, token: str | None) -> str | None:
    return f"{settings.public_url.rstrip('/')}/signup?invite={token}" if token else None


async def _session_read(session: AsyncSession, user: User) -> SessionRead:
    memberships = await service.memberships_of(session, user.id)
    return SessionRead(
        user=UserRead.model_validate(user),
        memberships=[MembershipRead.model_validate(m) for m in memberships],
    )


# ---------------------------------------------------------------- auth


@router.post("/auth/signup", status_code=201)
async def sign_up(
    body: SignUp, request: Request, response: Response, session: DbSession, settings: AppSettings
) -> SessionRead:
    """Creates an account with a new talent or brand tenant, or accepts an invitation; signs in."""
    result = await service.sign_up(
        session,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        tenant_name=body.tenant_name,
        tenant_slug=body.tenant_slug,
        tenant_kind=TenantKind(body.tenant_kind),
        invitation_token=body.invite,
    )
    new = await service.create_session(
        session,
        result.user,
        settings=settings,
        user_agent=request.headers.get("user-agent"),
        ip=client_ip(request),
    )
    set_session_cookie(response, settings, new.cookie)
    return await _session_read(session, result.user)


@router.post("/auth/login")
async def login(
    body: Login, request: Request, response: Response, session: DbSession, settings: AppSettings
) -> SessionRead:
    """Signs in with e-mail and password; sets the session cookie. Throttled per account and per IP."""
    try:
        user = await service.authenticate(
            session, email=body.email, password=body.password, ip=client_ip(request), settings=settings
        )
    except InvalidCredentials:
        # The failed attempt must count even though the request fails.
        await session.commit()
        raise
    new = await service.create_session(
        session, user, settings=settings, user_agent=request.headers.get("user-agent"), ip=client_ip(request)
    )
    set_session_cookie(response, settings, new.cookie)
    return await _session_read(session, user)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, session: DbSession, settings: AppSettings) -> Response:
    """Ends the session on the server and clears the cookie; safe to call when already signed out."""
    try:
        found = await access.session_user(request, session)
    except NotAuthenticated:
        found = None
    if found is not None:
        session_id, user_id = found
        await service.revoke_session(session, user_id, session_id)
    response = Response(status_code=204)
    clear_session_cookie(response, settings)
    return response


@router.get("/auth/me")
async def me(request: Request, session: DbSession) -> MeRead:
    """Who is calling: the signed-in user and their memberships, or the API key's tenant and scopes."""
    if request.headers.get("authorization") or request.headers.get("x-api-key"):
        principal = await access.current_principal(request, session)
        return MeRead(
            via="api_key",
            user=None,
            memberships=[],
            tenant_id=principal.tenant_id,
            role=None,
            permissions=sorted(principal.permissions),
        )
    found = await access.session_user(request, session)
    if found is None:
        raise NotAuthenticated()
    user = await service.get_user(session, found[1])
    memberships = await service.memberships_of(session, user.id)
    chosen = await access.current_principal(request, session) if memberships else None
    return MeRead(
        via="session",
        user=UserRead.model_validate(user),
        memberships=[MembershipRead.model_validate(m) for m in memberships],
        tenant_id=chosen.tenant_id if chosen else None,
        role=chosen.role if chosen else None,
        permissions=sorted(chosen.permissions) if chosen else [],
    )


# ---------------------------------------------------------------- tenants


@router.get("/tenants/current")
async def current_tenant(principal: TenantReader, session: DbSession) -> TenantRead:
    return TenantRead.model_validate(await service.get_tenant(session, principal))


@router.patch("/tenants/current")
async def update_current_tenant(
    body: TenantUpdate, principal: TenantWriter, session: DbSession
) -> TenantRead:
    tenant = await service.update_tenant(session, principal, name=body.name, tier=body.tier)
    return TenantRead.model_validate(tenant)


@router.get("/tenants")
async def list_tenants(
    principal: TenantReader,
    session: DbSession,
    reason: Annotated[
        str | None, Query(max_length=500, pattern=r"^[^\x00]*$", description="Why; written to the audit log.")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[TenantRead]:
    """Every tenant on the platform: platform admins only, with a reason, audited."""
    if not principal.is_platform_admin:
        raise PermissionDenied("Only platform admins list every tenant.")
    if reason is None or not reason.strip():
        raise InvalidInput("Say why you are listing every tenant.", field="reason")
    await access.enter_admin_context(session, principal, reason=reason.strip(), action="TENANTS_LISTED")
    tenants, next_cursor = await service.list_tenants(session, cursor=cursor, limit=limit)
    return Page[TenantRead](items=[TenantRead.model_validate(t) for t in tenants], next_cursor=next_cursor)


@router.post("/tenants", status_code=201)
async def create_tenant(
    body: TenantCreate, principal: TenantWriter, session: DbSession, settings: AppSettings
) -> TenantCreated:
    """Onboards a tenant with its first owner (platform admins only); a new owner gets an invitation link."""
    if not principal.is_platform_admin:
        raise PermissionDenied("Only platform admins create tenants.")
    elevated = await access.enter_admin_context(
        session, principal, reason=f"create tenant {body.slug}", action="TENANT_CREATE"
    )
    tenant, invited = await service.create_tenant_with_owner(
        session,
        replace(elevated, role=Role.PLATFORM_ADMIN),
        kind=body.kind,
        slug=body.slug,
        name=body.name,
        tier=body.tier,
        owner_email=body.owner_email,
        owner_display_name=body.owner_display_name,
    )
    owner = MemberInvited(
        member=MemberRead.model_validate(invited.member),
        invite_url=invite_url(settings, invited.invitation_token),
    )
    return TenantCreated(tenant=TenantRead.model_validate(tenant), owner=owner)


# ---------------------------------------------------------------- members


@router.get("/members")
async def list_members(
    principal: MemberReader, session: DbSession, cursor: Cursor = None, limit: Limit = 50
) -> Page[MemberRead]:
    members, next_cursor = await service.list_members(session, principal, cursor=cursor, limit=limit)
    return Page[MemberRead](items=[MemberRead.model_validate(m) for m in members], next_cursor=next_cursor)


@router.post("/members", status_code=201)
async def invite_member(
    body: MemberInvite, principal: MemberWriter, session: DbSession, settings: AppSettings
) -> MemberInvited:
    """Adds a member by e-mail; a new account gets a one-time sign-up link, shown only here."""
    invited = await service.invite_member(
        session, principal, body.email, role=body.role, display_name=body.display_name
    )
    return MemberInvited(
        member=MemberRead.model_validate(invited.member),
        invite_url=invite_url(settings, invited.invitation_token),
    )


@router.patch("/members/{user_id}")
async def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, principal: MemberWriter, session: DbSession
) -> MemberRead:
    member = await service.change_role(session, principal, user_id, role=body.role)
    return MemberRead.model_validate(member)


@router.delete("/members/{user_id}", status_code=204)
async def remove_member(user_id: uuid.UUID, principal: MemberWriter, session: DbSession) -> Response:
    await service.remove_member(session, principal, user_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- API keys


@router.get("/api-keys")
async def list_api_keys(
    principal: KeyReader, session: DbSession, cursor: Cursor = None, limit: Limit = 50
) -> Page[ApiKeyRead]:
    keys, next_cursor = await service.list_api_keys(session, principal, cursor=cursor, limit=limit)
    return Page[ApiKeyRead](items=[ApiKeyRead.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.post("/api-keys", status_code=201)
async def create_api_key(body: ApiKeyCreate, principal: KeyWriter, session: DbSession) -> ApiKeyCreated:
    """Creates a key; the response holds the full key, which is never shown again."""
    created = await service.create_api_key(
        session, principal, name=body.name, scopes=body.scopes, expires_at=body.expires_at
    )
    read = ApiKeyRead.model_validate(created.key)
    return ApiKeyCreated(**read.model_dump(), key=created.plaintext)


@router.delete("/api-keys/{api_key_id}", status_code=204)
async def revoke_api_key(api_key_id: uuid.UUID, principal: KeyWriter, session: DbSession) -> Response:
    await service.revoke_api_key(session, principal, api_key_id)
    return Response(status_code=204)
