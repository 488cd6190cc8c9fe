"""The embedded widget's security: allowed origins, identity verification, short browser sessions.

The browser never holds the deployment's identity secret: the host site signs its user's id on its
server, the widget sends (user id, signature), and the platform answers with a fan token that lives
minutes and names the tenant, the deployment and the host page's origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vibethink.chat import service as chat_service
from vibethink.chat.tokens import Fan, IssuedToken
from vibethink.core.errors import NotAuthenticated, NotFound, PermissionDenied, TwinUnavailable
from vibethink.core.settings import Settings
from vibethink.deployments import origins, resolver, service
from vibethink.deployments.origins import Origin
from vibethink.deployments.resolver import ResolvedDeployment

VERIFIED_FAN: str = "site:"


class OriginNotAllowed(PermissionDenied):
    code = "origin_not_allowed"
    default_message = "This site is not allowed to embed this twin."


class IdentityRequired(NotAuthenticated):
    code = "identity_required"
    default_message = "This chat is for the site's signed-in users: send user_id and user_signature."


class IdentityInvalid(PermissionDenied):
    code = "identity_invalid"
    default_message = "The user signature does not match."


@dataclass(frozen=True, slots=True)
class WidgetSession:
    deployment: ResolvedDeployment
    issued: IssuedToken
    verified_user: bool
    issued_origin: str


def verified_fan_key(secret_key: str, deployment: ResolvedDeployment, user_id: str) -> str:
    """A stable fan key for the host site's user (memories follow them), revealing nothing of the id."""
    digest = hmac.new(
        secret_key.encode(), f"vibethink.site-user|{deployment.tenant_id}|{user_id}".encode(), hashlib.sha256
    ).digest()
    return VERIFIED_FAN + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:32]


def check_origin(deployment: ResolvedDeployment, origin: Origin | None) -> Origin:
    if origin is None or not origins.allows(deployment.allowed_origins, origin):
        raise OriginNotAllowed()
    return origin


def _identity(
    settings: Settings, deployment: ResolvedDeployment, user_id: str | None, signature: str | None
) -> str | None:
    """The verified fan key, None for an anonymous fan; refuses a bad or (when enforced) missing one."""
    if user_id is None and signature is None:
        if deployment.require_identity:
            raise IdentityRequired()
        return None
    if not user_id or not signature or deployment.identity_salt is None:
        raise IdentityInvalid()
    secret = service.identity_secret(settings.secret_key, deployment.id, deployment.identity_salt)
    if not service.signature_matches(secret, user_id, signature):
        raise IdentityInvalid()
    return verified_fan_key(settings.secret_key, deployment, user_id)


async def start(
    session: AsyncSession,
    settings: Settings,
    *,
    deployment_key: str,
    origin_header: str | None,
    user_id: str | None = None,
    user_signature: str | None = None,
) -> WidgetSession:
    """A browser session for the host page at `origin_header`: 404 unknown key, 403 other origin."""
    deployment = await resolver.by_widget_key(session, deployment_key)
    if deployment is None:
        raise NotFound("No such deployment key.")
    origin = check_origin(deployment, origins.parse_origin(origin_header))
    if not deployment.is_live(datetime.now(UTC)):
        raise TwinUnavailable()
    fan_key = _identity(settings, deployment, user_id, user_signature)
    issued = chat_service.fan_tokens(settings).issue(
        tenant_id=deployment.tenant_id,
        deployment_id=deployment.id,
        fan_key=fan_key,
        origin=origin.text,
        max_age_seconds=settings.widget_session_seconds,
    )
    return WidgetSession(deployment, issued, verified_user=fan_key is not None, issued_origin=origin.text)


async def refresh(session: AsyncSession, settings: Settings, *, token: str) -> WidgetSession:
    """A fresh token for the same fan, origin and deployment, while the old one is still valid and
    the origin still allowed (a removed origin loses its chats within minutes)."""
    fan = chat_service.fan_tokens(settings).read(token)
    if fan.origin is None or fan.deployment_id is None:
        raise OriginNotAllowed("Only an embed's session can be refreshed here.")
    deployment = await resolver.by_id(session, fan.deployment_id)
    if deployment is None or deployment.tenant_id != fan.tenant_id:
        raise NotFound("No such deployment.")
    origin = check_origin(deployment, origins.parse_origin(fan.origin))
    if not deployment.is_live(datetime.now(UTC)):
        raise TwinUnavailable()
    issued = chat_service.fan_tokens(settings).issue(
        tenant_id=deployment.tenant_id,
        deployment_id=deployment.id,
        fan_key=fan.fan_key,
        origin=origin.text,
        max_age_seconds=settings.widget_session_seconds,
    )
    return WidgetSession(
        deployment, issued, verified_user=fan.fan_key.startswith(VERIFIED_FAN), issued_origin=origin.text
    )


def same_site(origin: Origin, host_header: str | None) -> bool:
    """A request from the platform's own pages (the widget's iframe, a portal)."""
    if not host_header:
        return False
    host, _, port = host_header.lower().partition(":")
    wanted = int(port) if port.isdigit() else origins.DEFAULT_PORTS[origin.scheme]
    return origin.host == host and origin.port == wanted


def check_fan_origin(fan: Fan, origin_header: str | None, host_header: str | None) -> str | None:
    """An embed token is honoured only from its own origin or the platform's pages; returns the
    origin that CORS may echo (None when the request is same-site or carries no Origin)."""
    if fan.origin is None:
        return None
    origin = origins.parse_origin(origin_header)
    if origin_header is None or (origin is not None and same_site(origin, host_header)):
        return None
    if origin is None or origin.text != fan.origin:
        raise OriginNotAllowed("This chat session belongs to another site.")
    return origin.text
