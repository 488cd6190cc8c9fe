"""No input a client can send makes the API fail with a 5xx: schemathesis fuzzes every operation.

A real server (uvicorn, in a subprocess) on the test database, driven by the schemathesis CLI from
the app's own OpenAPI document, with a key that holds every scope so the fuzzer reaches past auth.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from tests.factories import make_api_key, make_celebrity, make_tenant

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(test_owner_url: URL, test_settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {
        **os.environ,
        "VIBETHINK_DATABASE_URL": test_owner_url.render_as_string(hide_password=False),
        "VIBETHINK_DATABASE_NAME": test_settings.database_name,
        "VIBETHINK_IN_PROCESS_DISPATCHER": "false",
        "VIBETHINK_SECRET_KEY": test_settings.secret_key,
        "VIBETHINK_ENVIRONMENT": "test",
    }
    server = subprocess.Popen(  # noqa: S603
        [str(BIN / "vibethink"), "serve", "--no-migrate", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            server.kill()
            raise AssertionError(f"the server did not start: {server.stderr.read() if server.stderr else ''}")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)


class TestNoInputCausesAServerError:
    async def test_every_operation_survives_generated_input(self, db, live_server, unique, tmp_path):
        # ENTERPRISE, so plan checks let the fuzzer reach the compliance API's full depth.
        tenant = await make_tenant(db, slug=f"fuzz-{unique}", tier="ENTERPRISE")
        await make_celebrity(db, tenant, slug=f"fuzz-star-{unique}")
        key = await make_api_key(db, tenant)
        # In a thread: the fuzzer runs for a while and the event loop must stay free.
        result = await asyncio.to_thread(
            subprocess.run,
            [
                str(BIN / "schemathesis"),
                "run",
                f"{live_server}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                f"Authorization: Bearer {key}",
                "--max-examples",
                "12",
                "--seed",
                "20261125",
                "--request-timeout",
                "20",
                "--exclude-path",
                "/api/v1/auth/login",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # the fuzzer keeps its example database in the working directory
            timeout=600,
            check=False,
        )
        summary = result.stdout[-6000:]
        assert result.returncode == 0, summary
        assert "generated" in result.stdout  # it really ran cases, not an empty schema
