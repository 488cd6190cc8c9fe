"""Tenancy rules: sign-up and sign-in, sessions, tenants, members and invitations, API keys.

Every function takes the session first, then the actor, then the subject; options are keyword-only.
None of them commits: the request, task or command boundary does, once.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.core import audit, outbox
from vibethink.core.database import RlsContext, apply_context
from vibethink.core.errors import (
    AlreadyExists,
    Conflict,
    InvalidCredentials,
    InvalidInput,
    InvalidInvitation,
    LastOwner,
    NotFound,
    PermissionDenied,
    TooManyRequests,
)
from vibethink.core.models import new_id
from vibethink.core.pagination import MAX_PAGE, decode_cursor, encode_cursor
from vibethink.core.security import (
    SessionClaims,
    SessionSigner,
    account_hash,
    generate_api_key,
    hash_password,
    password_needs_rehash,
    verify_password,
)
from vibethink.core.settings import Settings
from vibethink.tenancy import access
from vibethink.tenancy.models import (
    ApiKey,
    AuthSession,
    Invitation,
    LoginAttempt,
    Membership,
    Role,
    Tenant,
    TenantKind,
    TenantTier,
    User,
)
from vibethink.tenancy.permissions import ALL_SCOPES, GRANTABLE_ROLES

T = TypeVar("T")

# The platform's own tenant (global events such as schema changes belong to it).
PLATFORM_TENANT_SLUG = "vibethink"
MIN_PASSWORD_LENGTH = 12
# argon2 cost grows with input; a cap keeps a huge "password" from becoming a CPU attack.
MAX_PASSWORD_LENGTH = 1024
INVITATION_TTL = timedelta(days=7)
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
SLUG_MIN, SLUG_MAX = 3, 64
# Paths the platform itself serves at the root, so a tenant's portal slug must never shadow them.
RESERVED_SLUGS = frozenset(
    {
        "api",
        "admin",
        "studio",
        "brand",
        "static",
        "docs",
        "redoc",
        "login",
        "signup",
        "logout",
        "healthz",
        "readyz",
        "metrics",
        "widget",
        "widget.js",
        "openapi.json",
        "auth",
        "account",
        "settings",
        "invite",
        "www",
        "app",
    }
)

# The role that must always remain in a tenant of each kind.
OWNER_ROLE: dict[TenantKind, Role] = {
    TenantKind.TALENT: Role.TALENT_OWNER,
    TenantKind.BRAND: Role.BRAND_MANAGER,
    TenantKind.PLATFORM: Role.PLATFORM_ADMIN,
}
ROLES_BY_KIND: dict[TenantKind, frozenset[Role]] = {
    TenantKind.TALENT: frozenset({Role.TALENT_OWNER, Role.TALENT_MANAGER}),
    TenantKind.BRAND: frozenset({Role.BRAND_MANAGER}),
    TenantKind.PLATFORM: frozenset({Role.PLATFORM_ADMIN}),
}


class Actor(Protocol):
    """Whoever performs a write: a signed-in member, an API key, or an operator at the console."""

    @property
    def tenant_id(self) -> uuid.UUID: ...

    @property
    def user_id(self) -> uuid.UUID | None: ...

    @property
    def role(self) -> Role | None: ...

    @property
    def permissions(self) -> frozenset[str]: ...

    @property
    def actor_role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Operator:
    """An actor outside a request: a new account during sign-up, or a platform operator's command."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    role: Role | None
    permissions: frozenset[str] = ALL_SCOPES

    @property
    def actor_role(self) -> str:
        return self.role.value if self.role else "SYSTEM"


@dataclass(frozen=True, slots=True)
class MembershipView:
    tenant_id: uuid.UUID
    slug: str
    name: str
    kind: TenantKind
    role: Role


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_pending: bool
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class Invited:
    member: MemberView
    # Plaintext, returned once so it can be delivered; only its hash is stored.
    invitation_token: str | None


@dataclass(frozen=True, slots=True)
class InvitationView:
    email: str
    display_name: str
    tenant_name: str


@dataclass(frozen=True, slots=True)
class SignedUp:
    user: User
    tenant_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class NewSession:
    session_id: uuid.UUID
    cookie: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    """An API key as it may be shown: never the secret, never its hash."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    key: ApiKeyView
    plaintext: str


# ---------------------------------------------------------------- input rules


def storable(value: str, *, field: str) -> str:
    """`value` unchanged if PostgreSQL can store it as text (no NUL, valid UTF-8), else a 422 on `field`."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("The text holds characters that cannot be stored.", field=field) from exc
    if "\x00" in value:
        raise InvalidInput("The text holds a NUL character.", field=field)
    return value


def normalise_email(email: str) -> str:
    candidate = storable(email, field="email").strip()
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"The e-mail address is not valid: {exc}", field="email") from exc
    return checked.normalized.lower()


def check_password(password: str) -> None:
    storable(password, field="password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"Passwords are limited to {MAX_PASSWORD_LENGTH} characters.", field="password")


def check_slug(slug: str, *, field: str = "slug") -> str:
    candidate = slug.strip()
    if not SLUG_MIN <= len(candidate) <= SLUG_MAX:
        raise InvalidInput(f"The slug must be {SLUG_MIN} to {SLUG_MAX} characters long.", field=field)
    if not SLUG_PATTERN.fullmatch(candidate):
        raise InvalidInput("The slug may hold only lowercase letters, digits and inner hyphens.", field=field)
    if candidate in RESERVED_SLUGS:
        raise InvalidInput(f"The slug '{candidate}' is reserved by the platform.", field=field)
    return candidate


def slug_from_name(name: str) -> str:
    # "Andrés Cantor" becomes "andres-cantor": accents fold to their base letter.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:SLUG_MAX].strip("-")


def _check_name(name: str, *, field: str) -> str:
    cleaned = " ".join(storable(name, field=field).split())
    if not 1 <= len(cleaned) <= 200:
        raise InvalidInput("Give a name of 1 to 200 characters.", field=field)
    return cleaned


def _display_name(display_name: str | None, email: str) -> str:
    if display_name and display_name.strip():
        return _check_name(display_name, field="display_name")
    return email.split("@", 1)[0][:200]


def _client_ip(ip: str | None) -> str | None:
    """The address as PostgreSQL's INET accepts it, or None for anything else."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def _token_hash(token: str) -> str:
    # Invitation tokens carry 256 random bits, so a fast hash suffices (unlike passwords).
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


async def _flush_unique(session: AsyncSession, message: str, *, field: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(message, field=field) from exc


async def _find_user(session: AsyncSession, email: str) -> Any:
    # SECURITY DEFINER lookup: no user context exists before sign-in or for an inviter.
    return (
        await session.execute(
            text("SELECT id, password_hash, is_active FROM auth_find_user(:email)"), {"email": email}
        )
    ).first()


async def _act_as_new_user(session: AsyncSession, user_id: uuid.UUID | None) -> None:
    # The users policy lets only a row's own user insert it; inviters briefly speak for the invitee.
    await session.execute(
        text("SELECT set_config('app.user_id', :uid, true)"), {"uid": str(user_id) if user_id else ""}
    )


async def _announce(
    session: AsyncSession,
    actor: Actor,
    event_type: str,
    *,
    subject: tuple[str, uuid.UUID],
    payload: dict[str, Any],
    tenant_id: uuid.UUID | None = None,
    action: str | None = None,
) -> None:
    """The outbox event and the audit row for one write, in the write's transaction."""
    tenant = tenant_id or actor.tenant_id
    subject_type, subject_id = subject
    await outbox.emit(
        session,
        event_type,
        tenant_id=tenant,
        actor_user_id=actor.user_id,
        actor_role=actor.actor_role,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload,
    )
    await audit.record(
        session,
        action or event_type,
        tenant_id=tenant,
        actor_user_id=actor.user_id,
        actor_role=actor.actor_role,
        subject_type=subject_type,
        subject_id=subject_id,
        details=payload,
    )


# ---------------------------------------------------------------- accounts and sessions


async def sign_up(
    session: AsyncSession,
    *,
    email: str | None,
    password: str,
    display_name: str | None = None,
    tenant_name: str | None = None,
    tenant_slug: str | None = None,
    tenant_kind: TenantKind = TenantKind.TALENT,
    invitation_token: str | None = None,
) -> SignedUp:
    """Creates a dashboard account that can sign in: with a new tenant it owns, or by accepting an invitation.

    A dashboard account always belongs to a tenant, so `USER_CREATED` is recorded on the tenant the
    user creates or joins: that tenant's evidence and webhooks see who joined it, and the platform
    sees every tenant's events through its admin context. Invited accounts get the event when they
    accept (set a password), not when the invitation reserves their row.
    """
    if invitation_token is not None:
        return await _accept_invitation(
            session, invitation_token, email=email, password=password, display_name=display_name
        )
    if email is None:
        raise InvalidInput("Give your e-mail address.", field="email")
    address = normalise_email(email)
    check_password(password)
    name = _display_name(display_name, address)
    if tenant_name is None or not tenant_name.strip():
        raise InvalidInput("Name the talent or brand this account manages.", field="tenant_name")
    workspace = _check_name(tenant_name, field="tenant_name")
    slug = check_slug(tenant_slug or slug_from_name(workspace), field="tenant_slug")
    if tenant_kind is TenantKind.PLATFORM:
        raise InvalidInput("Sign-up creates talent or brand tenants only.", field="tenant_kind")
    if await _find_user(session, address) is not None:
        raise AlreadyExists("An account with this e-mail already exists; sign in instead.", field="email")

    user_id, tenant_id = new_id(), new_id()
    owner_role = OWNER_ROLE[tenant_kind]
    await apply_context(session, RlsContext(tenant_id=tenant_id, user_id=user_id, role=owner_role.value))
    password_hash = await asyncio.to_thread(hash_password, password)
    user = User(id=user_id, email=address, display_name=name, password_hash=password_hash)
    session.add(user)
    await _flush_unique(session, "An account with this e-mail already exists.", field="email")
    actor = Operator(tenant_id=tenant_id, user_id=user_id, role=owner_role)
    await create_tenant(
        session,
        actor,
        kind=tenant_kind,
        slug=slug,
        name=workspace,
        slug_field="tenant_slug",
        tenant_id=tenant_id,
    )
    session.add(Membership(tenant_id=tenant_id, user_id=user_id, role=owner_role))
    await session.flush()
    await _user_created(session, actor, user, via="sign_up")
    await _role_assigned(session, actor, user_id, role=owner_role, previous=None)
    return SignedUp(user=user, tenant_id=tenant_id)


async def _accept_invitation(
    session: AsyncSession, token: str, *, email: str | None, password: str, display_name: str | None
) -> SignedUp:
    invitation = await _find_invitation(session, token)
    check_password(password)
    membership = await session.get(Membership, (invitation.tenant_id, invitation.user_id))
    user = await session.get(User, invitation.user_id)
    if membership is None or user is None:
        raise InvalidInvitation(field="invite")
    if user.password_hash is not None:
        raise AlreadyExists("This account already has a password; sign in instead.", field="invite")
    if email is not None and email.strip() and normalise_email(email) != user.email.lower():
        raise InvalidInput("This invitation was sent to another e-mail address.", field="email")
    await apply_context(
        session, RlsContext(tenant_id=invitation.tenant_id, user_id=user.id, role=membership.role.value)
    )
    user.password_hash = await asyncio.to_thread(hash_password, password)
    if display_name and display_name.strip():
        user.display_name = _check_name(display_name, field="display_name")
    invitation.accepted_at = datetime.now(UTC)
    await session.flush()
    actor = Operator(tenant_id=invitation.tenant_id, user_id=user.id, role=membership.role)
    await _user_created(session, actor, user, via="invitation")
    return SignedUp(user=user, tenant_id=invitation.tenant_id)


async def _find_invitation(session: AsyncSession, token: str) -> Invitation:
    """The open invitation behind `token`, with the transaction scoped to its tenant and user."""
    row = (
        await session.execute(
            text("SELECT tenant_id, id, user_id, expires_at, accepted_at FROM auth_find_invitation(:h)"),
            {"h": _token_hash(token)},
        )
    ).first()
    if row is None or row.accepted_at is not None or row.expires_at <= datetime.now(UTC):
        raise InvalidInvitation(field="invite")
    await apply_context(session, RlsContext(tenant_id=row.tenant_id, user_id=row.user_id))
    invitation = await session.get(Invitation, (row.tenant_id, row.id))
    if invitation is None:
        raise InvalidInvitation(field="invite")
    return invitation


async def describe_invitation(session: AsyncSession, token: str) -> InvitationView:
    """What the sign-up page shows for an invitation link; raises `InvalidInvitation` if it is unusable."""
    invitation = await _find_invitation(session, token)
    user = await session.get(User, invitation.user_id)
    tenant = await session.get(Tenant, invitation.tenant_id)
    if user is None or tenant is None or user.password_hash is not None:
        raise InvalidInvitation(field="invite")
    return InvitationView(email=user.email, display_name=user.display_name, tenant_name=tenant.name)


async def authenticate(
    session: AsyncSession, *, email: str, password: str, ip: str | None, settings: Settings
) -> User:
    """Checks a sign-in and records the attempt; throttled per account and per IP.

    A failure is recorded before `InvalidCredentials` is raised: the boundary must commit it even
    though the request fails, or failures would never count.
    """
    try:
        address = storable(email, field="email").strip().lower()
    except InvalidInput as exc:
        # No account can have such an address; nothing to count it against either.
        raise InvalidCredentials() from exc
    account = account_hash(settings.secret_key, address)
    client_ip = _client_ip(ip)
    await _check_throttle(session, account, client_ip, settings)
    row = await _find_user(session, address) if len(address) <= 320 else None
    usable_hash = row.password_hash if row is not None and row.is_active else None
    # Unknown accounts verify against a dummy hash, so timing does not reveal which e-mails exist.
    attempt = password[:MAX_PASSWORD_LENGTH].encode("utf-8", "replace").decode()
    verified = await asyncio.to_thread(verify_password, usable_hash, attempt)
    session.add(LoginAttempt(account_hash=account, ip=client_ip, succeeded=verified))
    await session.flush()
    if not verified or row is None or usable_hash is None:
        raise InvalidCredentials()
    await apply_context(session, RlsContext(user_id=row.id))
    user = await session.get(User, row.id)
    if user is None:
        raise InvalidCredentials()
    user.last_login_at = datetime.now(UTC)
    if password_needs_rehash(usable_hash):
        user.password_hash = await asyncio.to_thread(hash_password, attempt)
    await session.flush()
    return user


async def _check_throttle(session: AsyncSession, account: str, ip: str | None, settings: Settings) -> None:
    # A success clears the account's count (not the IP's: an attacker could sign in to their own account).
    row = (
        await session.execute(
            text(
                "WITH recent AS ("
                "  SELECT account_hash, ip, succeeded, attempted_at FROM login_attempts"
                "  WHERE attempted_at > now() - make_interval(secs => :window)"
                "    AND (account_hash = :account OR ip = CAST(:ip AS inet))),"
                " last_ok AS (SELECT coalesce(max(attempted_at), '-infinity') AS at FROM recent"
                "  WHERE account_hash = :account AND succeeded)"
                " SELECT"
                "  count(*) FILTER (WHERE account_hash = :account AND attempted_at > last_ok.at)"
                "    AS account_n,"
                "  min(attempted_at) FILTER (WHERE account_hash = :account AND attempted_at > last_ok.at)"
                "    AS account_oldest,"
                "  count(*) FILTER (WHERE ip = CAST(:ip AS inet)) AS ip_n,"
                "  min(attempted_at) FILTER (WHERE ip = CAST(:ip AS inet)) AS ip_oldest,"
                "  now() AS now"
                " FROM recent, last_ok WHERE NOT recent.succeeded"
            ),
            {"window": settings.login_window_seconds, "account": account, "ip": ip},
        )
    ).one()
    waits: list[float] = []
    window = timedelta(seconds=settings.login_window_seconds)
    if row.account_n >= settings.login_max_failures_per_account and row.account_oldest is not None:
        waits.append((row.account_oldest + window - row.now).total_seconds())
    if row.ip_n >= settings.login_max_failures_per_ip and row.ip_oldest is not None:
        waits.append((row.ip_oldest + window - row.now).total_seconds())
    if waits:
        # Throttled attempts are not recorded, so the lock lifts when the window has passed.
        raise TooManyRequests(math.ceil(max(waits)), "Too many failed sign-ins; wait and try again.")


async def create_session(
    session: AsyncSession,
    user: User,
    *,
    settings: Settings,
    user_agent: str | None = None,
    ip: str | None = None,
) -> NewSession:
    """The server side of a session cookie; the cookie is signed, the row lets the server end it."""
    await apply_context(session, RlsContext(user_id=user.id))
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.session_max_age_seconds)
    row = AuthSession(
        id=new_id(),
        user_id=user.id,
        expires_at=expires_at,
        user_agent=(user_agent or "")[:400] or None,
        ip=_client_ip(ip),
    )
    session.add(row)
    await session.flush()
    signer = SessionSigner(settings.secret_key, settings.session_max_age_seconds)
    cookie = signer.dumps(SessionClaims(session_id=row.id, user_id=user.id))
    return NewSession(session_id=row.id, cookie=cookie, expires_at=expires_at)


async def revoke_session(session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Ends a session on the server, so its cookie is refused even before it expires."""
    await apply_context(session, RlsContext(user_id=user_id))
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def memberships_of(session: AsyncSession, user_id: uuid.UUID) -> list[MembershipView]:
    """The tenants a user belongs to (needs `app.user_id` set to that user, or an admin context)."""
    rows = (
        await session.execute(
            select(Membership.tenant_id, Tenant.slug, Tenant.name, Tenant.kind, Membership.role)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(Membership.user_id == user_id)
            .order_by(Tenant.name)
        )
    ).all()
    return [MembershipView(r.tenant_id, r.slug, r.name, r.kind, r.role) for r in rows]


async def _user_created(session: AsyncSession, actor: Actor, user: User, *, via: str) -> None:
    await _announce(
        session,
        actor,
        "USER_CREATED",
        subject=("user", user.id),
        payload={"email": user.email, "display_name": user.display_name, "via": via},
    )


async def _role_assigned(
    session: AsyncSession,
    actor: Actor,
    user_id: uuid.UUID,
    *,
    role: Role,
    previous: Role | None,
    invited: bool = False,
) -> None:
    payload = {"role": role.value, "previous_role": previous.value if previous else None, "invited": invited}
    await _announce(session, actor, "ROLE_ASSIGNED", subject=("user", user_id), payload=payload)


# ---------------------------------------------------------------- tenants


async def create_tenant(
    session: AsyncSession,
    actor: Actor,
    *,
    kind: TenantKind,
    slug: str,
    name: str,
    tier: TenantTier = TenantTier.FREE,
    slug_field: str = "slug",
    tenant_id: uuid.UUID | None = None,
) -> Tenant:
    """A new tenant; the transaction must be scoped to `tenant_id` (sign-up) or an admin context."""
    checked_slug = check_slug(slug, field=slug_field)
    checked_name = _check_name(name, field="name")
    tenant = Tenant(id=tenant_id or new_id(), kind=kind, slug=checked_slug, name=checked_name, tier=tier)
    session.add(tenant)
    await _flush_unique(session, f"The slug '{checked_slug}' is already taken.", field=slug_field)
    payload = {"kind": kind.value, "slug": checked_slug, "name": checked_name, "tier": tier.value}
    await _announce(
        session, actor, "TENANT_CREATED", subject=("tenant", tenant.id), payload=payload, tenant_id=tenant.id
    )
    return tenant


async def create_tenant_with_owner(
    session: AsyncSession,
    actor: Actor,
    *,
    kind: TenantKind,
    slug: str,
    name: str,
    owner_email: str,
    owner_display_name: str | None = None,
    tier: TenantTier = TenantTier.FREE,
) -> tuple[Tenant, Invited]:
    """A platform admin onboards a tenant and invites its first owner (needs an admin context)."""
    if actor.role is not Role.PLATFORM_ADMIN:
        raise PermissionDenied("Only platform admins create tenants.")
    tenant = await create_tenant(session, actor, kind=kind, slug=slug, name=name, tier=tier)
    in_tenant = Operator(tenant_id=tenant.id, user_id=actor.user_id, role=Role.PLATFORM_ADMIN)
    invited = await invite_member(
        session,
        in_tenant,
        owner_email,
        role=OWNER_ROLE[kind],
        display_name=owner_display_name,
        email_field="owner_email",
    )
    return tenant, invited


async def get_tenant(session: AsyncSession, actor: Actor) -> Tenant:
    tenant = await session.get(Tenant, actor.tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    tenant = (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()
    if tenant is None:
        raise NotFound(f"No tenant with the slug '{slug}'.", field="tenant")
    return tenant


async def update_tenant(
    session: AsyncSession, actor: Actor, *, name: str | None = None, tier: TenantTier | None = None
) -> Tenant:
    tenant = await get_tenant(session, actor)
    changes: dict[str, Any] = {}
    if tier is not None and tier is not tenant.tier:
        # The tier is what the tenant pays for, so only the platform changes it.
        if actor.role is not Role.PLATFORM_ADMIN:
            raise PermissionDenied("Only the platform changes a tenant's tier.", field="tier")
        changes["tier"] = {"from": tenant.tier.value, "to": tier.value}
        tenant.tier = tier
    if name is not None:
        checked = _check_name(name, field="name")
        if checked != tenant.name:
            changes["name"] = {"from": tenant.name, "to": checked}
            tenant.name = checked
    if not changes:
        return tenant
    await session.flush()
    await _announce(
        session,
        actor,
        "CONFIGURATION_CHANGE",
        subject=("tenant", tenant.id),
        payload={"changes": changes},
        tenant_id=tenant.id,
        action="TENANT_UPDATED",
    )
    return tenant


async def list_tenants(
    session: AsyncSession, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[Tenant], str | None]:
    """Every tenant the context can see: all of them only inside an admin context."""
    query = select(Tenant).order_by(Tenant.created_at, Tenant.id).limit(_page_size(limit) + 1)
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where(tuple_(Tenant.created_at, Tenant.id) > tuple_(at, row_id))
    tenants = list((await session.execute(query)).scalars())
    return _paged(tenants, limit, lambda t: encode_cursor(t.created_at, t.id))


def _page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"The limit must be between 1 and {MAX_PAGE}.", field="limit")
    return limit


def _paged(rows: list[T], limit: int, cursor_of: Callable[[T], str]) -> tuple[list[T], str | None]:
    if len(rows) > limit:
        page = rows[:limit]
        return page, cursor_of(page[-1])
    return rows, None


# ---------------------------------------------------------------- members


async def _tenant_kind(session: AsyncSession, actor: Actor) -> TenantKind:
    return (await get_tenant(session, actor)).kind


def _grantable(actor: Actor) -> frozenset[Role]:
    # An API key holds no role, so it can grant none.
    return GRANTABLE_ROLES[actor.role] if actor.role is not None else frozenset()


def _check_grant(actor: Actor, role: Role, kind: TenantKind) -> None:
    if role not in _grantable(actor):
        raise PermissionDenied(f"You may not grant the {role.value} role.", field="role")
    if role not in ROLES_BY_KIND[kind]:
        raise InvalidInput(f"A {kind.value.lower()} tenant has no {role.value} role.", field="role")


async def _member_view(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> MemberView:
    row = (
        await session.execute(
            select(
                Membership.user_id,
                User.email,
                User.display_name,
                Membership.role,
                User.password_hash.is_(None).label("is_pending"),
                Membership.created_at,
            )
            .join(User, User.id == Membership.user_id)
            .where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such member.")
    return MemberView(row.user_id, row.email, row.display_name, row.role, row.is_pending, row.created_at)


async def _locked_membership(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> Membership:
    membership = (
        await session.execute(
            select(Membership)
            .where(Membership.tenant_id == actor.tenant_id, Membership.user_id == user_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if membership is None:
        raise NotFound("No such member.")
    return membership


async def _ensure_another_owner(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, owner_role: Role
) -> None:
    # Locks the owners' rows, so two concurrent demotions cannot both pass this check.
    others = (
        await session.execute(
            select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.tenant_id == tenant_id,
                Membership.role == owner_role,
                Membership.user_id != user_id,
                User.is_active.is_(True),
                User.password_hash.is_not(None),
            )
            .with_for_update(of=Membership)
        )
    ).all()
    if not others:
        raise LastOwner(
            f"This is the tenant's last {owner_role.value}; make someone else {owner_role.value} first."
        )


async def list_members(
    session: AsyncSession, actor: Actor, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[MemberView], str | None]:
    query = (
        select(
            Membership.user_id,
            User.email,
            User.display_name,
            Membership.role,
            User.password_hash.is_(None).label("is_pending"),
            Membership.created_at,
        )
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == actor.tenant_id)
        .order_by(Membership.created_at, Membership.user_id)
        .limit(_page_size(limit) + 1)
    )
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where(tuple_(Membership.created_at, Membership.user_id) > tuple_(at, row_id))
    rows = (await session.execute(query)).all()
    members = [
        MemberView(r.user_id, r.email, r.display_name, r.role, r.is_pending, r.created_at) for r in rows
    ]
    return _paged(members, limit, lambda m: encode_cursor(m.joined_at, m.user_id))


async def invite_member(
    session: AsyncSession,
    actor: Actor,
    email: str,
    *,
    role: Role,
    display_name: str | None = None,
    email_field: str = "email",
) -> Invited:
    """Adds a member by e-mail: an existing account joins at once; a new one gets an invitation link.

    Emits `ROLE_ASSIGNED`; a new account's `USER_CREATED` follows when it accepts the invitation.
    """
    _check_grant(actor, role, await _tenant_kind(session, actor))
    try:
        address = normalise_email(email)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=email_field) from exc
    found = await _find_user(session, address)
    if found is None:
        user_id = new_id()
        await _act_as_new_user(session, user_id)
        session.add(User(id=user_id, email=address, display_name=_display_name(display_name, address)))
        await _flush_unique(session, "That e-mail address was just registered; try again.", field=email_field)
        await _act_as_new_user(session, actor.user_id)
        needs_password = True
    else:
        user_id = found.id
        needs_password = found.password_hash is None
        existing = await session.get(Membership, (actor.tenant_id, user_id))
        if existing is not None:
            raise AlreadyExists("That person is already a member of this tenant.", field=email_field)
    session.add(Membership(tenant_id=actor.tenant_id, user_id=user_id, role=role, invited_by=actor.user_id))
    await _flush_unique(session, "That person is already a member of this tenant.", field=email_field)
    token: str | None = None
    if needs_password:
        token = secrets.token_urlsafe(32)
        session.add(
            Invitation(
                tenant_id=actor.tenant_id,
                id=new_id(),
                user_id=user_id,
                token_hash=_token_hash(token),
                invited_by=actor.user_id,
                expires_at=datetime.now(UTC) + INVITATION_TTL,
            )
        )
        await session.flush()
    await _role_assigned(session, actor, user_id, role=role, previous=None, invited=True)
    return Invited(member=await _member_view(session, actor.tenant_id, user_id), invitation_token=token)


async def add_user(
    session: AsyncSession,
    actor: Actor,
    email: str,
    *,
    password: str,
    role: Role,
    display_name: str | None = None,
) -> MemberView:
    """An operator creates an account with a password and a membership (no invitation needed)."""
    _check_grant(actor, role, await _tenant_kind(session, actor))
    address = normalise_email(email)
    check_password(password)
    if await _find_user(session, address) is not None:
        raise AlreadyExists("A user with this e-mail already exists; invite them instead.", field="email")
    user = User(
        id=new_id(),
        email=address,
        display_name=_display_name(display_name, address),
        password_hash=await asyncio.to_thread(hash_password, password),
    )
    await _act_as_new_user(session, user.id)
    session.add(user)
    await _flush_unique(session, "A user with this e-mail already exists.", field="email")
    await _act_as_new_user(session, actor.user_id)
    session.add(Membership(tenant_id=actor.tenant_id, user_id=user.id, role=role, invited_by=actor.user_id))
    await session.flush()
    await _user_created(session, actor, user, via="operator")
    await _role_assigned(session, actor, user.id, role=role, previous=None)
    return await _member_view(session, actor.tenant_id, user.id)


async def change_role(session: AsyncSession, actor: Actor, user_id: uuid.UUID, *, role: Role) -> MemberView:
    """Changes a member's role; only to and from roles the actor may grant, never leaving no owner."""
    membership = await _locked_membership(session, actor, user_id)
    kind = await _tenant_kind(session, actor)
    if membership.role not in _grantable(actor):
        raise PermissionDenied(f"You may not change the role of a {membership.role.value}.")
    _check_grant(actor, role, kind)
    previous = membership.role
    if previous is role:
        return await _member_view(session, actor.tenant_id, user_id)
    if previous is OWNER_ROLE[kind]:
        await _ensure_another_owner(session, actor.tenant_id, user_id, previous)
    membership.role = role
    await session.flush()
    await _role_assigned(session, actor, user_id, role=role, previous=previous)
    return await _member_view(session, actor.tenant_id, user_id)


async def remove_member(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> None:
    """Removes a member from the tenant (their account stays); never the last owner."""
    membership = await _locked_membership(session, actor, user_id)
    kind = await _tenant_kind(session, actor)
    leaving = actor.user_id == user_id
    if not leaving and membership.role not in _grantable(actor):
        raise PermissionDenied(f"You may not remove a {membership.role.value}.")
    if membership.role is OWNER_ROLE[kind]:
        await _ensure_another_owner(session, actor.tenant_id, user_id, membership.role)
    role = membership.role
    await session.execute(
        delete(Membership).where(Membership.tenant_id == actor.tenant_id, Membership.user_id == user_id)
    )
    payload = {"role": role.value, "scope": "tenant", "left": leaving}
    await _announce(
        session,
        actor,
        "USER_DEACTIVATED",
        subject=("user", user_id),
        payload=payload,
        action="MEMBER_REMOVED",
    )


# ---------------------------------------------------------------- API keys


def _key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        name=key.name,
        prefix=f"vt_live_{key.key_id[:4]}…",
        scopes=sorted(key.scopes),
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def create_api_key(
    session: AsyncSession,
    actor: Actor,
    *,
    name: str,
    scopes: list[str] | set[str] | frozenset[str],
    expires_at: datetime | None = None,
) -> CreatedApiKey:
    """A new key for the actor's tenant; the plaintext is in the result only, never stored."""
    checked_name = _check_name(name, field="name")
    wanted = set(scopes)
    if not wanted:
        raise InvalidInput("Give the key at least one scope.", field="scopes")
    unknown = wanted - ALL_SCOPES
    if unknown:
        raise InvalidInput(f"Unknown scopes: {', '.join(sorted(unknown))}.", field="scopes")
    beyond = wanted - actor.permissions
    if beyond:
        raise InvalidInput(
            f"A key cannot hold more than its creator may do: {', '.join(sorted(beyond))}.", field="scopes"
        )
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("Give the expiry with a time zone.", field="expires_at")
        if expires_at <= datetime.now(UTC):
            raise InvalidInput("The expiry must be in the future.", field="expires_at")
    material = generate_api_key()
    key = ApiKey(
        tenant_id=actor.tenant_id,
        id=new_id(),
        key_id=material.key_id,
        secret_hash=material.secret_hash,
        name=checked_name,
        scopes=sorted(wanted),
        created_by=actor.user_id,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    payload = {
        "name": checked_name,
        "scopes": sorted(wanted),
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    await _announce(session, actor, "API_KEY_CREATED", subject=("api_key", key.id), payload=payload)
    return CreatedApiKey(key=_key_view(key), plaintext=material.plaintext)


async def list_api_keys(
    session: AsyncSession, actor: Actor, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[ApiKeyView], str | None]:
    query = (
        select(ApiKey)
        .where(ApiKey.tenant_id == actor.tenant_id)
        .order_by(ApiKey.created_at, ApiKey.id)
        .limit(_page_size(limit) + 1)
    )
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where(tuple_(ApiKey.created_at, ApiKey.id) > tuple_(at, row_id))
    keys = [_key_view(k) for k in (await session.execute(query)).scalars()]
    return _paged(keys, limit, lambda k: encode_cursor(k.created_at, k.id))


async def revoke_api_key(session: AsyncSession, actor: Actor, api_key_id: uuid.UUID) -> ApiKeyView:
    """Revokes a key at once; revoking an already revoked key changes nothing."""
    key = (
        await session.execute(
            select(ApiKey)
            .where(ApiKey.tenant_id == actor.tenant_id, ApiKey.id == api_key_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if key is None:
        raise NotFound("No such API key.")
    access.forget_api_key(key.id)
    if key.revoked_at is not None:
        return _key_view(key)
    key.revoked_at = datetime.now(UTC)
    await session.flush()
    payload = {"name": key.name}
    await _announce(session, actor, "API_KEY_REVOKED", subject=("api_key", key.id), payload=payload)
    return _key_view(key)


async def platform_tenant_id(session: AsyncSession) -> uuid.UUID:
    """The platform's own tenant, which owns global events such as schema changes (created if absent)."""
    query = select(Tenant.id).where(Tenant.kind == TenantKind.PLATFORM).order_by(Tenant.created_at).limit(1)
    found = await session.scalar(query)
    if found is not None:
        return found
    await session.execute(
        insert(Tenant)
        .values(
            id=uuid.uuid4(),
            kind=TenantKind.PLATFORM,
            slug=PLATFORM_TENANT_SLUG,
            name="VibeThink",
            tier=TenantTier.ENTERPRISE,
        )
        .on_conflict_do_nothing(index_elements=[Tenant.slug])
    )
    created = await session.scalar(query)
    if created is None:
        raise Conflict(f"The slug '{PLATFORM_TENANT_SLUG}' belongs to a tenant that is not the platform.")
    return created
