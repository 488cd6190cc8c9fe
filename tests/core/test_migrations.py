"""The migration chain on a brand-new empty database: up, no drift, down to nothing, up again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL

from tests.core.schema_catalog import APP_ROLE, DEFINER_ROLE, MODEL_TENANT_TABLES
from vibethink.core import migrations
from vibethink.core.database import asyncpg_connect_args, ensure_database

# Everything of ours the schema may hold, excluding Alembic's own bookkeeping table.
LEFTOVERS_SQL = """
SELECT 'relation' AS kind, c.relname::text AS name FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT IN ('alembic_version', 'alembic_version_pkc')
UNION ALL
SELECT 'type', t.typname::text FROM pg_type t
 WHERE t.typnamespace = 'public'::regnamespace
   AND t.typname NOT IN ('alembic_version', '_alembic_version')
UNION ALL
SELECT 'function', p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'policy', polname::text FROM pg_policy
UNION ALL
SELECT 'trigger', tgname::text FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'grant', c.relname::text FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'public'::regnamespace AND a.grantee IN ($1::regrole, $2::regrole)
"""


def _query(url: URL, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(**asyncpg_connect_args(url))
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def empty_database(test_owner_url: URL) -> Iterator[URL]:
    url = test_owner_url.set(database=f"{test_owner_url.database}_migrations")
    ensure_database(url, recreate=True)
    yield url
    _query(test_owner_url, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def _tenant_tables(url: URL) -> list[str]:
    rows = _query(
        url,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
        " AND NOT relispartition AND relforcerowsecurity ORDER BY 1",
    )
    return [r["relname"] for r in rows]


class TestTheMigrationChain:
    def test_upgrade_to_head_builds_the_schema_the_models_describe(self, empty_database: URL) -> None:
        migrations.upgrade(empty_database)

        migrations.check(empty_database)  # raises when the models and the database differ
        [version] = _query(empty_database, "SELECT version_num FROM alembic_version")
        assert version["version_num"] == migrations.head_revision()
        assert set(MODEL_TENANT_TABLES) <= set(_tenant_tables(empty_database))

    def test_downgrade_to_base_leaves_nothing_of_ours(self, empty_database: URL) -> None:
        migrations.upgrade(empty_database)
        built = {r["kind"] for r in _query(empty_database, LEFTOVERS_SQL, APP_ROLE, DEFINER_ROLE)}
        assert built == {"relation", "type", "function", "policy", "trigger", "grant"}  # the query sees them

        migrations.downgrade(empty_database, "base")

        assert _query(empty_database, LEFTOVERS_SQL, APP_ROLE, DEFINER_ROLE) == []
        assert _query(empty_database, "SELECT version_num FROM alembic_version") == []

    def test_upgrade_again_after_downgrade_works_with_the_roles_already_there(
        self, empty_database: URL
    ) -> None:
        migrations.upgrade(empty_database)
        migrations.downgrade(empty_database, "base")
        roles = _query(
            empty_database, "SELECT rolname FROM pg_roles WHERE rolname IN ($1, $2)", APP_ROLE, DEFINER_ROLE
        )
        assert len(roles) == 2  # cluster-wide: they survive the downgrade

        migrations.upgrade(empty_database)

        migrations.check(empty_database)
        assert set(MODEL_TENANT_TABLES) <= set(_tenant_tables(empty_database))
        [seeded] = _query(empty_database, "SELECT count(*) AS n FROM jsonb_schemas WHERE is_active")
        assert seeded["n"] >= 1
