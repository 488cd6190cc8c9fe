"""Running Alembic from the platform (CLI, `serve`, tests) against the owner connection."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(owner: URL) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["owner_url"] = owner.render_as_string(hide_password=False)
    return config


def upgrade(owner: URL, revision: str = "head") -> None:
    command.upgrade(alembic_config(owner), revision)


def downgrade(owner: URL, revision: str) -> None:
    command.downgrade(alembic_config(owner), revision)


def new_revision(owner: URL, message: str, *, autogenerate: bool = True) -> None:
    command.revision(alembic_config(owner), message=message, autogenerate=autogenerate)


def check(owner: URL) -> None:
    """Raises if the models and the migrated database differ."""
    command.check(alembic_config(owner))


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The code's newest migration: read from disk once per process (`/readyz` asks on every probe)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    result = await conn.execute(text("SELECT version_num FROM alembic_version"))
    row = result.first()
    return None if row is None else str(row[0])


async def ensure_message_partitions(conn: AsyncConnection, *, months_ahead: int = 3) -> int:
    """Creates the monthly `messages` partitions from this month to `months_ahead` (owner only)."""
    result = await conn.execute(
        text("SELECT ensure_message_partitions(date_trunc('month', now())::date, :months)"),
        {"months": months_ahead + 1},
    )
    return int(result.scalar_one())
