"""Who is calling: API keys and session cookies become a `Principal`, and the RLS context is set.

Authentication runs inside the request's one transaction, so the key lookup and the tenant context
share the transaction's first round trip.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core import audit
from vibethink.core.database import Database, RlsContext, apply_context
from vibethink.core.errors import (
    InvalidApiKey,
    MissingScope,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    SessionExpired,
)
from vibethink.core.security import BadSignature, SessionSigner, SignatureExpired, api_key_hash, parse_api_key
from vibethink.core.settings import Settings
from vibethink.tenancy.models import Role, TenantKind
from vibethink.tenancy.permissions import ALL_SCOPES, ROLE_PERMISSIONS, Permission

API_KEY_TOUCH_SECONDS = 60.0
# A tenant named by id or slug; anything else cannot name one (and never reaches SQL).
TENANT_REF = re.compile(r"[0-9a-f-]{36}|[a-z0-9][a-z0-9-]{1,62}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller acting in exactly one tenant."""

    tenant_id: uuid.UUID
    tenant_kind: TenantKind | None
    permissions: frozenset[str]
    via: Literal["session", "api_key"]
    user_id: uuid.UUID | None = None
    role: Role | None = None
    api_key_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    is_platform_admin: bool = False
    admin_reason: str | None = None
    memberships: tuple[tuple[uuid.UUID, str, str, Role], ...] = field(default=())

    @property
    def actor_role(self) -> str:
        return self.role.value if self.role else "API_KEY"

    def rls(self, *, admin: bool = False) -> RlsContext:
        return RlsContext(
            tenant_id=self.tenant_id, user_id=self.user_id, role=self.actor_role, is_admin=admin
        )

    def can(self, permission: Permission) -> bool:
        return permission.value in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            if self.via == "api_key":
                raise MissingScope(f"The API key needs the '{permission.value}' scope.")
            raise PermissionDenied()


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, committed when the route returns and before the response."""
    async with database(request).sessions() as session, session.begin():
        await apply_context(session, RlsContext())
        yield session


DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]

_last_touch: dict[uuid.UUID, float] = {}


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.headers.get("x-api-key")


async def _from_api_key(session: AsyncSession, presented: str) -> Principal:
    key_id = parse_api_key(presented)
    if key_id is None:
        raise InvalidApiKey()
    # The lookup also sets the tenant context in the same round trip; a bad secret rolls it back.
    row = (
        await session.execute(
            text(
                "SELECT k.tenant_id, k.id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at,"
                " set_config('app.tenant_id', k.tenant_id::text, true),"
                " set_config('app.role', 'API_KEY', true)"
                " FROM auth_find_api_key(:key_id) k"
            ),
            {"key_id": key_id},
        )
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, api_key_hash(presented)):
        raise InvalidApiKey()
    now = datetime.now(UTC)
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise InvalidApiKey()
    monotonic = time.monotonic()
    if monotonic - _last_touch.get(row.id, 0.0) > API_KEY_TOUCH_SECONDS:
        _last_touch[row.id] = monotonic
        await session.execute(
            text("UPDATE api_keys SET last_used_at = now() WHERE tenant_id = :t AND id = :id"),
            {"t": row.tenant_id, "id": row.id},
        )
    return Principal(
        tenant_id=row.tenant_id,
        tenant_kind=None,
        permissions=frozenset(row.scopes) & ALL_SCOPES,
        via="api_key",
        api_key_id=row.id,
    )


def forget_api_key(api_key_id: uuid.UUID) -> None:
    _last_touch.pop(api_key_id, None)


async def session_user(request: Request, session: AsyncSession) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The (session id, user id) of a valid session cookie, with `app.user_id` set; None if absent."""
    settings = settings_of(request)
    cookie = request.cookies.get(settings.session_cookie_name)
    if not cookie:
        return None
    signer = SessionSigner(settings.secret_key, settings.session_max_age_seconds)
    try:
        claims = signer.loads(cookie)
    except SignatureExpired as exc:
        raise SessionExpired() from exc
    except BadSignature as exc:
        raise NotAuthenticated("The session cookie is not valid; sign in again.") from exc
    await apply_context(session, RlsContext(user_id=claims.user_id))
    row = (
        await session.execute(
            text(
                "SELECT s.expires_at, s.revoked_at, u.is_active FROM auth_sessions s"
                " JOIN users u ON u.id = s.user_id WHERE s.id = :sid AND s.user_id = :uid"
            ),
            {"sid": claims.session_id, "uid": claims.user_id},
        )
    ).first()
    if row is None or row.revoked_at is not None or not row.is_active:
        raise NotAuthenticated("The session has ended; sign in again.")
    if row.expires_at <= datetime.now(UTC):
        raise SessionExpired()
    return claims.session_id, claims.user_id


async def _memberships(session: AsyncSession, user_id: uuid.UUID) -> list[Any]:
    return list(
        (
            await session.execute(
                text(
                    "SELECT m.tenant_id, t.slug, t.kind, m.role FROM memberships m"
                    " JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = :uid ORDER BY t.name"
                ),
                {"uid": user_id},
            )
        ).all()
    )


async def _from_session(request: Request, session: AsyncSession) -> Principal | None:
    found = await session_user(request, session)
    if found is None:
        return None
    session_id, user_id = found
    rows = await _memberships(session, user_id)
    memberships = tuple((r.tenant_id, r.slug, r.kind, Role(r.role)) for r in rows)
    is_admin = any(
        role is Role.PLATFORM_ADMIN and kind == TenantKind.PLATFORM for _, _, kind, role in memberships
    )
    wanted = request.headers.get("x-tenant") or request.cookies.get("vt_tenant")
    chosen = None
    if wanted:
        chosen = next((m for m in memberships if wanted in (str(m[0]), m[1])), None)
    elif memberships:
        chosen = memberships[0]
    if chosen is None and wanted and is_admin:
        return await _admin_principal(request, session, user_id, session_id, wanted, memberships)
    if chosen is None:
        if wanted:
            raise NotFound("No such tenant.")
        raise PermissionDenied("This account is not a member of any tenant.")
    tenant_id, _, kind, role = chosen
    principal = Principal(
        tenant_id=tenant_id,
        tenant_kind=TenantKind(kind),
        permissions=frozenset(p.value for p in ROLE_PERMISSIONS[role]),
        via="session",
        user_id=user_id,
        role=role,
        session_id=session_id,
        is_platform_admin=is_admin,
        memberships=memberships,
    )
    await apply_context(session, principal.rls())
    return principal


async def _admin_principal(
    request: Request,
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    wanted: str,
    memberships: tuple[tuple[uuid.UUID, str, str, Role], ...],
) -> Principal:
    """A platform admin acting in a tenant they are not a member of: explicit, reasoned, audited."""
    reason = (request.headers.get("x-admin-reason") or "").strip()
    if not reason:
        raise PermissionDenied("Acting in another tenant needs an X-Admin-Reason header.")
    if not TENANT_REF.fullmatch(wanted):
        raise NotFound("No such tenant.")
    await apply_context(session, RlsContext(user_id=user_id, role=Role.PLATFORM_ADMIN.value, is_admin=True))
    row = (
        await session.execute(
            text("SELECT id, kind FROM tenants WHERE id::text = :w OR slug = :w"), {"w": wanted}
        )
    ).first()
    if row is None:
        raise NotFound("No such tenant.")
    principal = Principal(
        tenant_id=row.id,
        tenant_kind=TenantKind(row.kind),
        permissions=frozenset(p.value for p in ROLE_PERMISSIONS[Role.PLATFORM_ADMIN]),
        via="session",
        user_id=user_id,
        role=Role.PLATFORM_ADMIN,
        session_id=session_id,
        is_platform_admin=True,
        admin_reason=reason,
        memberships=memberships,
    )
    await apply_context(session, principal.rls())
    await audit.record(
        session,
        "ADMIN_CONTEXT_ENTERED",
        tenant_id=row.id,
        actor_user_id=user_id,
        actor_role=Role.PLATFORM_ADMIN.value,
        is_admin_context=True,
        reason=reason,
        details={"method": request.method, "path": request.url.path},
        ip=request.client.host if request.client else None,
    )
    return principal


async def current_principal(request: Request, session: DbSession) -> Principal:
    presented = _bearer(request)
    principal = (
        await _from_api_key(session, presented) if presented else await _from_session(request, session)
    )
    if principal is None:
        raise NotAuthenticated()
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(
    permission: Permission,
) -> Callable[[Request, AsyncSession], Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, checked for `permission` (role for sessions, scope for API keys)."""

    async def dependency(request: Request, session: DbSession) -> Principal:
        principal = await current_principal(request, session)
        principal.require(permission)
        return principal

    return dependency


async def enter_admin_context(
    session: AsyncSession, principal: Principal, *, reason: str, action: str
) -> Principal:
    """Cross-tenant reads for platform admins: only explicitly, and always audited."""
    if not principal.is_platform_admin:
        raise PermissionDenied()
    elevated = replace(principal, admin_reason=reason)
    await apply_context(session, elevated.rls(admin=True))
    await audit.record(
        session,
        action,
        tenant_id=principal.tenant_id,
        actor_user_id=principal.user_id,
        actor_role=Role.PLATFORM_ADMIN.value,
        is_admin_context=True,
        reason=reason,
    )
    return elevated
