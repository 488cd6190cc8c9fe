"""`vibethink schemas`: list, add, activate and backfill through the real CLI on a private database."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from tests.factories import COMPLETE_TWIN_CONFIG, make_celebrity, make_tenant
from vibethink.cli import app
from vibethink.core.database import Database

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_env(private_url: URL) -> dict[str, str]:
    """Points the command at this module's database, the way an operator points it at a server."""
    return {
        "VIBETHINK_DATABASE_URL": private_url.render_as_string(hide_password=False),
        "VIBETHINK_DATABASE_NAME": private_url.database or "",
    }


@pytest.fixture(scope="module")
async def seeded(private_db: Database) -> list[uuid.UUID]:
    made = []
    for i in range(3):
        tenant = await make_tenant(private_db, slug=f"cli-{i}-{uuid.uuid4().hex[:6]}")
        for j in range(4):
            made.append(await make_celebrity(private_db, tenant, slug=f"cli-{i}-{j}-{uuid.uuid4().hex[:6]}"))
    return made


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


class TestSchemasCommand:
    def test_every_subcommand_explains_itself(self) -> None:
        for command in ("list", "add", "activate", "backfill"):
            code, output = run({}, "schemas", command, "--help")
            assert code == 0
            assert "Usage" in output

    def test_list_shows_the_seeded_active_version(self, cli_env: dict[str, str]) -> None:
        code, output = run(cli_env, "schemas", "list", "--name", "twin_config")
        assert code == 0, output
        assert "twin_config" in output
        assert "yes" in output

    def test_the_builtin_v2_is_added_activated_and_backfilled(
        self, cli_env: dict[str, str], seeded: list[uuid.UUID]
    ) -> None:
        code, output = run(cli_env, "schemas", "add", "twin_config", "--builtin", "v2")
        assert code == 0, output
        assert "added twin_config version 2 (inactive)" in output
        assert '"emotionalRange": {"min": 3, "max": 8}' in output

        code, output = run(cli_env, "schemas", "activate", "twin_config", "2")
        assert code == 0, output
        assert "twin_config version 2 is active" in output

        code, output = run(cli_env, "schemas", "backfill", "twin_config", "--batch-size", "5")
        assert code == 0, output
        assert "scanned 12 celebrities in 3 batch(es), updated 12 across 3 tenant(s)" in output

        code, output = run(cli_env, "schemas", "backfill")
        assert code == 0, output
        assert "updated 0" in output

        code, output = run(cli_env, "schemas", "list")
        assert code == 0, output
        rows = [line for line in output.splitlines() if "twin_config" in line]
        assert len(rows) == 2
        assert "yes" not in rows[0]
        assert "yes" in rows[1]

    def test_a_schema_file_with_defaults_file_is_added(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        schema = tmp_path / "fan_profile.json"
        schema.write_text(json.dumps({"type": "object", "properties": {"theme": {"type": "string"}}}))
        defaults = tmp_path / "defaults.json"
        defaults.write_text(json.dumps({"theme": "dark"}))
        code, output = run(cli_env, "schemas", "add", "fan_profile", str(schema), "--defaults", str(defaults))
        assert code == 0, output
        assert "added fan_profile version 1" in output
        assert '{"theme": "dark"}' in output

    def test_an_invalid_schema_file_fails_with_the_reason(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        schema = tmp_path / "broken.json"
        schema.write_text(json.dumps({"type": "nonsense"}))
        code, output = run(cli_env, "schemas", "add", "twin_config", str(schema))
        assert code == 1
        assert "schema.type" in output

    def test_a_file_that_is_not_json_is_a_usage_error(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        schema = tmp_path / "broken.json"
        schema.write_text("{not json")
        code, output = run(cli_env, "schemas", "add", "twin_config", str(schema))
        assert code == 2
        assert "not JSON" in output

    def test_add_needs_a_file_or_a_builtin(self, cli_env: dict[str, str]) -> None:
        code, _ = run(cli_env, "schemas", "add", "twin_config")
        assert code == 2

    def test_activating_a_missing_version_fails_plainly(self, cli_env: dict[str, str]) -> None:
        code, output = run(cli_env, "schemas", "activate", "twin_config", "42")
        assert code == 1
        assert "no version 42" in output

    def test_backfill_of_an_unknown_schema_fails_plainly(self, cli_env: dict[str, str]) -> None:
        code, output = run(cli_env, "schemas", "backfill", "fan_profile")
        assert code == 1
        assert "twin_config" in output


def test_complete_twin_config_fixture_is_valid_under_the_builtin_v2() -> None:
    from jsonschema import Draft202012Validator

    from vibethink.talent.schema_registry import builtin_schema

    assert Draft202012Validator(builtin_schema("twin_config", "v2")).is_valid(COMPLETE_TWIN_CONFIG)
