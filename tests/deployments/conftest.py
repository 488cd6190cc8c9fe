"""Deployments fixtures: a talent with a live twin and an API key, a second talent, a brand."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.chat.conftest import ChatTwin, client_for, fresh_twin_cache, make_chat_twin

__all__ = ["client_for", "fresh_twin_cache"]

from vibethink.core.database import Database
from vibethink.deployments import resolver


@pytest.fixture(autouse=True)
def fresh_resolver_cache() -> Iterator[None]:
    resolver.cache.clear()
    yield
    resolver.cache.clear()


@pytest.fixture
async def talent(db: Database) -> ChatTwin:
    return await make_chat_twin(db)


@pytest.fixture
async def other_talent(db: Database) -> ChatTwin:
    return await make_chat_twin(db)


async def create(
    client: httpx.AsyncClient, twin: ChatTwin, expected: int = 201, **body: Any
) -> dict[str, Any]:
    body.setdefault("type", "EMBEDDED_WIDGET")
    body.setdefault("name", "Widget")
    response = await client.post(
        f"/api/v1/celebrities/{twin.celebrity_id}/deployments", json=body, headers=twin.headers
    )
    assert response.status_code == expected, response.text
    result: dict[str, Any] = response.json()
    return result


class VerificationServer:
    """Serves /.well-known/vibethink-verification with whatever token a test puts there."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").split(":")[0]
                token = owner.tokens.get(host)
                if self.path != "/.well-known/vibethink-verification" or token is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = token.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url_template(self) -> str:
        return f"http://127.0.0.1:{self.port}{{path}}"


@pytest.fixture(scope="session")
def verification_server() -> Iterator[VerificationServer]:
    server = VerificationServer()
    server.thread.start()
    yield server
    server.server.shutdown()


def domain() -> str:
    return f"twin-{uuid.uuid4().hex[:8]}.example.org"
