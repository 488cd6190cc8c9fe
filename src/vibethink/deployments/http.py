"""Two ASGI layers in front of the app: Host routing for white-label domains and CORS for embeds.

Both are plain ASGI (no extra task per request, SSE untouched) and cost a set lookup or a dict hit
on the platform's own hosts.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibethink.core.database import Database, RlsContext
from vibethink.core.settings import Settings
from vibethink.deployments import resolver
from vibethink.deployments.models import DeploymentType
from vibethink.deployments.service import VERIFICATION_PATH

CORS_PATHS: Final = ("/api/v1/widget/", "/api/v1/chat/")
CORS_METHODS: Final = "GET, POST, DELETE"
CORS_HEADERS: Final = "Content-Type, Accept, X-Fan-Token, Authorization"
WHITE_LABEL_ROOT: Final = "/_site"
OPS_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
# What a white-label domain serves: its portal, its assets and the fan chat API; nothing else.
WHITE_LABEL_PATHS: Final = ("/static/", "/api/v1/chat/", "/api/v1/widget/")
PLAIN_404: Final = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Not found</title>"
    b"<h1>Not found</h1><p>There is nothing at this address.</p></html>"
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def platform_hosts(settings: Settings) -> frozenset[str]:
    public = urlsplit(settings.public_url).hostname or ""
    return frozenset(h.lower() for h in (*settings.platform_hosts, public) if h)


class HostRouting:
    """Platform hosts pass; a verified custom domain gets its white-label portal; others a plain 404."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = platform_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = (_header(scope, b"host") or "").lower()
        host = raw[1:].split("]")[0] if raw.startswith("[") else raw.split(":")[0]
        # Probes come by address (a load balancer's health check names no platform host).
        if host in self.hosts or raw in self.hosts or scope["path"] in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        deployment = await self._resolve(scope, host)
        path: str = scope["path"]
        if deployment is not None and path == VERIFICATION_PATH and deployment.domain_token:
            body = deployment.domain_token.encode()
            await _respond(send, 200, body, [(b"content-type", b"text/plain; charset=utf-8")])
            return
        if (
            deployment is None
            or not deployment.domain_verified
            or deployment.type is not DeploymentType.WHITE_LABEL
            or not (path in ("/", "/subscribe") or path.startswith(WHITE_LABEL_PATHS))
        ):
            await _respond(send, 404, PLAIN_404, [(b"content-type", b"text/html; charset=utf-8")])
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["white_label"] = deployment
        if path in ("/", "/subscribe"):
            scope = {**scope, "path": WHITE_LABEL_ROOT + (path if path != "/" else ""), "raw_path": None}
        await self.app(scope, receive, send)

    async def _resolve(self, scope: Scope, host: str) -> resolver.ResolvedDeployment | None:
        known, found = resolver.cached_host(host)
        if known:
            return found
        if not host or len(host) > 253:
            return None
        db: Database = scope["app"].state.db
        async with db.transaction(RlsContext()) as session:
            return await resolver.by_host(session, host)


class EmbedCors:
    """CORS for the widget and chat APIs: preflights are answered, and a response carries
    Access-Control-Allow-Origin only when the route accepted that origin (`state.cors_origin`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CORS_PATHS):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if scope["method"] == "OPTIONS" and origin and _header(scope, b"access-control-request-method"):
            await _respond(
                send,
                204,
                b"",
                [
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-methods", CORS_METHODS.encode()),
                    (b"access-control-allow-headers", CORS_HEADERS.encode()),
                    (b"access-control-max-age", b"600"),
                    (b"vary", b"Origin"),
                ],
            )
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                allowed = state.get("cors_origin")
                headers = list(message.get("headers", []))
                headers.append((b"vary", b"Origin"))
                if allowed:
                    headers.append((b"access-control-allow-origin", str(allowed).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)
