"""The database the benchmarks run against: `vibethink_bench` on the embedded server or DATABASE_URL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from bench.report import parent_pid
from vibethink.core import migrations
from vibethink.core.database import (
    app_url_for,
    asyncpg_connect_args,
    ensure_database,
    owner_url,
    stop_embedded,
)
from vibethink.core.settings import Settings

BENCH_DATABASE = "vibethink_bench"
PGBENCH_BIN_ENV = "VIBETHINK_PGBENCH"


@dataclass(frozen=True)
class BenchTarget:
    settings: Settings
    owner: URL
    app: URL

    @property
    def database(self) -> str:
        return self.owner.database or BENCH_DATABASE

    async def connect_owner(self) -> asyncpg.Connection:
        return await asyncpg.connect(**asyncpg_connect_args(self.owner))

    async def connect_app(self) -> asyncpg.Connection:
        return await asyncpg.connect(**asyncpg_connect_args(self.app))

    def libpq_env(self, url: URL) -> dict[str, str]:
        """PG* variables that point libpq tools (pgbench) at `url`, TCP or Unix socket."""
        args: dict[str, Any] = asyncpg_connect_args(url)
        env = {"PGDATABASE": str(args["database"]), "PGUSER": str(args["user"])}
        if args.get("host"):
            env["PGHOST"] = str(args["host"])
        if args.get("port"):
            env["PGPORT"] = str(args["port"])
        if args.get("password"):
            env["PGPASSWORD"] = str(args["password"])
        return env

    def service_env(self, *, as_owner: bool) -> dict[str, str]:
        """VIBETHINK_* variables for an app process serving this database (as the owner, RLS off)."""
        env = {
            "VIBETHINK_DATABASE_URL": self.owner.render_as_string(hide_password=False),
            "VIBETHINK_DATABASE_NAME": self.database,
            "VIBETHINK_IN_PROCESS_DISPATCHER": "false",
            "VIBETHINK_ENVIRONMENT": "development",
        }
        if as_owner:
            env["VIBETHINK_APP_DATABASE_URL"] = self.owner.render_as_string(hide_password=False)
        return env


@contextmanager
def bench_target(
    *, database: str = BENCH_DATABASE, migrate: bool = True, recreate: bool = False, **settings: Any
) -> Iterator[BenchTarget]:
    """A bench database, created (or `recreate`d) and migrated; stops the embedded server if this
    process started it. `settings` are extra `Settings` fields (a pool size, …)."""
    base = Settings(database_name=database, in_process_dispatcher=False, **settings)
    try:
        owner = owner_url(base.model_copy(update={"database_name": "postgres"})).set(database=database)
        ensure_database(owner, recreate=recreate)
        if migrate:
            migrations.upgrade(owner)
        yield BenchTarget(settings=base, owner=owner, app=app_url_for(base, owner))
    finally:
        stop_embedded()


def pg_binary(name: str) -> str:
    """A PostgreSQL client binary: the one shipped in the `pgserver` package, else from PATH."""
    if name == "pgbench" and os.environ.get(PGBENCH_BIN_ENV):
        return os.environ[PGBENCH_BIN_ENV]
    try:
        import pgserver

        candidate = os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin", name)
        if os.access(candidate, os.X_OK):
            return candidate
    except ImportError:  # pragma: no cover - pgserver is a dependency
        pass
    return name


async def _postmaster_of_backend(target: BenchTarget) -> int | None:
    conn = await target.connect_owner()
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        # Read while the backend lives: its parent is the postmaster.
        return await asyncio.to_thread(parent_pid, backend)
    finally:
        await conn.close()


def postmaster_pid(target: BenchTarget) -> int | None:
    """The server's postmaster process id when it runs on this machine (None otherwise)."""
    return asyncio.run(_postmaster_of_backend(target))
