"""Real-browser fixtures: the platform served by uvicorn, host pages on other origins, Chromium.

Debian's Chromium at /usr/bin/chromium drives the tests headless. Without it the tests skip, except
under CI (CI=true), where a missing browser fails the run. Screenshots go to the artifacts folder
(VIBETHINK_ARTIFACTS, or the session's pytest temporary folder).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from vibethink.app import create_app
from vibethink.core.settings import Settings

CHROMIUM = "/usr/bin/chromium"
# White-label domains in the tests resolve to this machine inside the browser.
TEST_DOMAINS = "example.org"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: the real-browser tests must run in CI")
        pytest.skip(f"{CHROMIUM} is not installed")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed")
        pytest.skip("playwright is not installed")
    return CHROMIUM


class LiveServer:
    def __init__(self, settings: Settings, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(test_settings: Settings, test_owner_url: Any) -> Iterator[LiveServer]:
    port = _free_port()
    settings = test_settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    server = LiveServer(settings, port).start()
    yield server
    server.stop()


class HostSite:
    """Another origin's web server: serves whatever pages a test puts at a path."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def origin(self, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}"


@pytest.fixture(scope="session")
def host_site() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.server.shutdown()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("VIBETHINK_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[f"--host-resolver-rules=MAP *.{TEST_DOMAINS} 127.0.0.1", "--no-sandbox"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def settle(seconds: float = 0.2) -> None:
    await asyncio.sleep(seconds)
