"""`vibethink user create` and `vibethink api-key create|list|revoke` against the test database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from tests.factories import bearer, make_api_key, make_tenant
from vibethink.cli import app as cli_app
from vibethink.core.settings import get_settings
from vibethink.tenancy import commands

STRONG = "a long enough passphrase"


@pytest.fixture
def vibethink(test_owner_url, monkeypatch) -> Callable[..., object]:
    """Runs the CLI in a worker thread (it starts its own event loop) against the test database."""
    stops: list[bool] = []
    # The test process owns the embedded server; the command must not stop it for everyone.
    monkeypatch.setattr(commands, "stop_embedded", lambda: stops.append(True))
    monkeypatch.setenv("VIBETHINK_DATABASE_URL", test_owner_url.render_as_string(hide_password=False))
    get_settings.cache_clear()

    async def run(*args: str) -> Result:
        result = await asyncio.to_thread(CliRunner().invoke, cli_app, list(args))
        assert stops, "the command did not stop the embedded database"
        return result

    yield run
    get_settings.cache_clear()


class TestUserCreate:
    async def test_a_created_user_can_sign_in_with_that_role(self, vibethink, client_at, db, unique):
        tenant = await make_tenant(db, slug=f"cli-{unique}")
        email = f"cli.{unique}@example.com"
        result = await vibethink(
            "user",
            "create",
            "--email",
            email,
            "--password",
            STRONG,
            "--tenant",
            tenant.slug,
            "--role",
            "TALENT_MANAGER",
            "--display-name",
            "Console Made",
        )
        assert result.exit_code == 0, result.output
        assert f"created {email}" in result.output
        async with client_at() as http:
            login = await http.post("/api/v1/auth/login", json={"email": email, "password": STRONG})
        assert login.status_code == 200
        assert login.json()["user"]["display_name"] == "Console Made"
        assert [m["role"] for m in login.json()["memberships"]] == ["TALENT_MANAGER"]

    async def test_a_short_password_is_refused_with_the_field_named(self, vibethink, db, unique):
        tenant = await make_tenant(db, slug=f"clis-{unique}")
        result = await vibethink(
            "user",
            "create",
            "--email",
            f"s.{unique}@example.com",
            "--password",
            "short",
            "--tenant",
            tenant.slug,
            "--role",
            "TALENT_OWNER",
        )
        assert result.exit_code == 1
        assert "password" in result.output

    async def test_an_unknown_tenant_is_refused(self, vibethink, unique):
        result = await vibethink(
            "user",
            "create",
            "--email",
            f"u.{unique}@example.com",
            "--password",
            STRONG,
            "--tenant",
            f"nowhere-{unique}",
            "--role",
            "TALENT_OWNER",
        )
        assert result.exit_code == 1
        assert "No tenant" in result.output


class TestApiKeyCommands:
    async def test_a_created_key_is_printed_once_and_works(self, vibethink, client, db, unique):
        tenant = await make_tenant(db, slug=f"clik-{unique}")
        result = await vibethink(
            "api-key",
            "create",
            "--tenant",
            tenant.slug,
            "--name",
            "CI",
            "--scope",
            "tenant:read",
            "--scope",
            "members:read",
        )
        assert result.exit_code == 0, result.output
        key = next(line.split()[-1] for line in result.output.splitlines() if line.startswith("key:"))
        assert key.startswith("vt_live_")
        assert (await client.get("/api/v1/members", headers=bearer(key))).status_code == 200
        assert (await client.get("/api/v1/api-keys", headers=bearer(key))).status_code == 403

        listed = await vibethink("api-key", "list", "--tenant", tenant.slug)
        assert listed.exit_code == 0, listed.output
        assert "CI" in listed.output
        assert key not in listed.output
        assert key.split("_")[-1] not in listed.output

    async def test_a_revoked_key_stops_working(self, vibethink, client, db, unique):
        tenant = await make_tenant(db, slug=f"clir-{unique}")
        key = await make_api_key(db, tenant)
        listed = await client.get("/api/v1/api-keys", headers=bearer(key))
        key_id = listed.json()["items"][0]["id"]
        result = await vibethink("api-key", "revoke", key_id, "--tenant", tenant.slug)
        assert result.exit_code == 0, result.output
        assert (await client.get("/api/v1/tenants/current", headers=bearer(key))).status_code == 401
        shown = await vibethink("api-key", "list", "--tenant", tenant.slug)
        assert "revoked" in shown.output

    async def test_a_key_of_another_tenant_cannot_be_revoked_from_here(self, vibethink, client, db, unique):
        mine = await make_tenant(db, slug=f"clim-{unique}")
        theirs = await make_tenant(db, slug=f"clit-{unique}")
        key = await make_api_key(db, theirs)
        key_id = (await client.get("/api/v1/api-keys", headers=bearer(key))).json()["items"][0]["id"]
        result = await vibethink("api-key", "revoke", key_id, "--tenant", mine.slug)
        assert result.exit_code == 1
        assert (await client.get("/api/v1/tenants/current", headers=bearer(key))).status_code == 200

    async def test_an_unknown_scope_is_refused(self, vibethink, db, unique):
        tenant = await make_tenant(db, slug=f"cliu-{unique}")
        result = await vibethink(
            "api-key", "create", "--tenant", tenant.slug, "--name", "x", "--scope", "root"
        )
        assert result.exit_code == 1
        assert "scopes" in result.output


@pytest.mark.parametrize(
    "command", [["user", "create"], ["api-key", "create"], ["api-key", "list"], ["api-key", "revoke"]]
)
def test_every_command_explains_itself(command):
    result = CliRunner().invoke(cli_app, [*command, "--help"])
    assert result.exit_code == 0
    assert "--tenant" in result.output
