"""pg_catalog proves the isolation design holds for every tenant table, including the next one added.

Each test reads the live catalog of the migrated database and lists every offender, so a new table
without FORCE RLS, a tenant_id-led index, or tenant_id in its keys fails the suite by name.
"""

from __future__ import annotations

import re

import asyncpg
import pytest

from tests.core.schema_catalog import (
    APP_ROLE,
    DEFINER_ROLE,
    GLOBAL_TABLES,
    MODEL_TENANT_TABLES,
    PLATFORM_TABLES,
    tenant_tables,
)

# Globally public identifiers: unique across tenants on purpose (see DESIGN, "Citus-ready").
GLOBAL_UNIQUE_KEYS = frozenset(
    {
        ("celebrities", ("slug",)),  # portal path /{slug}
        ("deployments", ("custom_domain",)),  # white-label Host header
        ("deployments", ("widget_key",)),  # the embed's public key, random, resolved before any tenant
        ("api_keys", ("key_id",)),  # public handle of a key, resolved before any tenant context
        ("tenants", ("slug",)),  # dashboard paths /studio/{slug}, /brand/{slug}
        # The hash of a random one-time secret, resolved before any tenant context like key_id;
        # it reveals nothing about another tenant's data.
        ("invitations", ("token_hash",)),
    }
)
# Foreign keys that deliberately point into another tenant: (table, local column mapped to tenant_id).
CROSS_TENANT_LINKS = frozenset({("brand_campaigns", "brand_tenant_id")})

SETTING = re.compile(r"current_setting\('app\.(\w+)'::text(, true)?\)")
WRAPPED_SETTING = re.compile(r"SELECT (?:\(?NULLIF\()?current_setting\('app\.\w+'::text, true\)")
CONTEXT_SETTINGS = frozenset({"tenant_id", "user_id"})
ADMIN_ROLE = "vibethink_admin"


@pytest.fixture
async def tables(owner_conn: asyncpg.Connection) -> list[str]:
    found = await tenant_tables(owner_conn)
    assert len(found) >= 15, found  # the foundation alone has more: the discovery query must not go blind
    return found


class TestTenantTablesAreDiscoveredFromTheCatalog:
    async def test_the_catalogs_tenant_tables_are_the_models_tenant_tables(self, tables: list[str]) -> None:
        assert tables == MODEL_TENANT_TABLES

    async def test_partitions_are_reached_only_through_their_parent(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        partitions = await owner_conn.fetch(
            """
            SELECT c.relname, p.relname AS parent,
                   has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
                     OR has_table_privilege($1, c.oid, 'REFERENCES, TRIGGER') AS app_has_access
              FROM pg_class c
              JOIN pg_inherits i ON i.inhrelid = c.oid
              JOIN pg_class p ON p.oid = i.inhparent
             WHERE c.relispartition AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
            """,
            APP_ROLE,
        )
        assert any(p["parent"] == "messages" for p in partitions)
        assert [p["relname"] for p in partitions if p["app_has_access"]] == []
        assert {p["parent"] for p in partitions} <= set(tables)


class TestEveryTenantTableForcesRowLevelSecurity:
    async def test_row_level_security_is_enabled_and_forced(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        rows = await owner_conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1::text[])",
            [*tables, *PLATFORM_TABLES],
        )
        assert len(rows) == len(tables) + len(PLATFORM_TABLES)
        assert [r["relname"] for r in rows if not (r["relrowsecurity"] and r["relforcerowsecurity"])] == []

    async def test_every_table_the_app_role_can_reach_is_row_level_secured_or_global(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        rows = await owner_conn.fetch(
            """
            SELECT relname FROM pg_class
             WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'f')
               AND has_table_privilege($1, oid, 'SELECT, INSERT, UPDATE, DELETE')
               AND NOT (relrowsecurity AND relforcerowsecurity)
            """,
            APP_ROLE,
        )
        assert {r["relname"] for r in rows} <= GLOBAL_TABLES

    async def test_the_app_role_cannot_truncate_reference_or_trigger_any_table(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        # TRUNCATE ignores row-level security; REFERENCES and TRIGGER would let it probe or hook rows.
        rows = await owner_conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p') AND has_table_privilege($1, oid, 'TRUNCATE, REFERENCES, TRIGGER')",
            APP_ROLE,
        )
        assert [r["relname"] for r in rows] == []


class TestPoliciesFollowTheSessionSettings:
    async def _policies(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch(
            """
            SELECT c.relname, p.polname, p.polcmd::text AS cmd,
                   ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
                           FROM unnest(p.polroles) r) AS roles,
                   pg_get_expr(p.polqual, p.polrelid) AS using_expr,
                   pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
              FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
             WHERE c.relnamespace = 'public'::regnamespace
            """
        )

    async def test_every_tenant_table_reads_through_a_policy_on_the_tenant_setting(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        reading = {
            r["relname"]
            for r in await self._policies(owner_conn)
            if r["cmd"] in ("*", "r") and "'app.tenant_id'" in (r["using_expr"] or "")
        }
        assert [t for t in tables if t not in reading] == []

    async def test_every_policy_names_its_role_and_none_applies_to_public(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        roles = {tuple(p["roles"]) for p in await self._policies(owner_conn)}
        assert roles <= {(APP_ROLE,), (ADMIN_ROLE,)}

    async def test_only_the_admin_role_has_unconditional_policies(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        for policy in await self._policies(owner_conn):
            if ADMIN_ROLE in policy["roles"]:
                assert (policy["using_expr"], policy["check_expr"]) == ("true", "true"), policy

    async def test_the_app_role_enters_the_admin_role_only_by_switching_to_it(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        # INHERIT FALSE: the admin policies apply only after `SET LOCAL ROLE`, never by membership.
        grant = await owner_conn.fetchrow(
            "SELECT inherit_option, set_option FROM pg_auth_members"
            " WHERE roleid = $1::regrole AND member = $2::regrole",
            ADMIN_ROLE,
            APP_ROLE,
        )
        assert grant is not None
        assert dict(grant) == {"inherit_option": False, "set_option": True}
        admin = await owner_conn.fetchrow(
            "SELECT rolcanlogin, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = $1", ADMIN_ROLE
        )
        assert admin is not None
        assert not any(dict(admin).values())

    async def test_every_app_policy_expression_depends_on_the_context_settings(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        offenders = []
        for policy in await self._policies(owner_conn):
            if APP_ROLE not in policy["roles"]:
                continue
            for expr in (policy["using_expr"], policy["check_expr"]):
                if expr is None:
                    continue
                names = {m.group(1) for m in SETTING.finditer(expr)}
                if not names or not names <= CONTEXT_SETTINGS:
                    offenders.append((policy["relname"], policy["polname"], expr))
        assert offenders == []

    async def test_every_setting_is_read_once_per_query_and_tolerates_being_unset(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        # `(SELECT current_setting(..., true))` is an InitPlan: evaluated once, not per row, and
        # missing_ok so an unset setting means no rows rather than an error.
        offenders = []
        for policy in await self._policies(owner_conn):
            for expr in (policy["using_expr"], policy["check_expr"]):
                if expr is not None and len(SETTING.findall(expr)) != len(WRAPPED_SETTING.findall(expr)):
                    offenders.append((policy["relname"], policy["polname"], expr))
        assert offenders == []


class TestTenantIdLeadsEveryKey:
    async def test_every_tenant_table_has_an_index_led_by_tenant_id(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        led = await owner_conn.fetch(
            """
            SELECT DISTINCT c.relname FROM pg_index i
              JOIN pg_class c ON c.oid = i.indrelid
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
             WHERE a.attname = 'tenant_id'
            """
        )
        assert sorted(set(tables) - {r["relname"] for r in led}) == []

    async def test_every_primary_key_includes_tenant_id(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        keyed = await owner_conn.fetch(
            """
            SELECT c.relname FROM pg_constraint con
              JOIN pg_class c ON c.oid = con.conrelid
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             WHERE con.contype = 'p' AND a.attnum = ANY(con.conkey)
            """
        )
        assert sorted(set(tables) - {r["relname"] for r in keyed}) == []

    async def test_every_foreign_key_between_tenant_tables_carries_tenant_id(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        rows = await owner_conn.fetch(
            """
            SELECT c.relname, con.conname, r.relname AS ref_table,
                   (SELECT la.attname FROM unnest(con.conkey, con.confkey) AS k(l, f)
                      JOIN pg_attribute la ON la.attrelid = con.conrelid AND la.attnum = k.l
                      JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.f
                     WHERE fa.attname = 'tenant_id') AS local_tenant_column
              FROM pg_constraint con
              JOIN pg_class c ON c.oid = con.conrelid
              JOIN pg_class r ON r.oid = con.confrelid
             WHERE con.contype = 'f' AND con.conparentid = 0
               AND c.relname = ANY($1::text[]) AND r.relname = ANY($1::text[])
            """,
            tables,
        )
        assert len(rows) >= 10  # contracts, deployments, conversations, messages … all reference a parent
        offenders = [
            (r["relname"], r["conname"])
            for r in rows
            if r["local_tenant_column"] != "tenant_id"
            and (r["relname"], r["local_tenant_column"]) not in CROSS_TENANT_LINKS
        ]
        assert offenders == []

    async def test_every_cross_tenant_link_has_an_index_led_by_it(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        for table, column in CROSS_TENANT_LINKS:
            led = await owner_conn.fetchval(
                """
                SELECT count(*) FROM pg_index i
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = $1::regclass AND a.attname = $2
                """,
                table,
                column,
            )
            assert led >= 1, (table, column)

    async def _unique_keys(self, conn: asyncpg.Connection, tables: list[str]) -> list[asyncpg.Record]:
        return await conn.fetch(
            """
            SELECT c.relname, ic.relname AS index_name,
                   array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
                           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n ORDER BY k.o)
                     AS columns,
                   i.indexprs IS NOT NULL AS has_expressions,
                   EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                              AND a.attnum = ANY(i.indkey::int2[])) AS has_tenant_id
              FROM pg_index i
              JOIN pg_class c ON c.oid = i.indrelid
              JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE (i.indisunique OR i.indisexclusion) AND NOT i.indisprimary
               AND c.relname = ANY($1::text[])
            """,
            tables,
        )

    async def test_every_unique_key_includes_tenant_id_except_global_public_identifiers(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        offenders = [
            (r["relname"], r["index_name"])
            for r in await self._unique_keys(owner_conn, tables)
            if not r["has_tenant_id"]
            and (r["has_expressions"] or (r["relname"], tuple(r["columns"])) not in GLOBAL_UNIQUE_KEYS)
        ]
        assert offenders == []

    async def test_the_global_identifier_allowlist_names_only_existing_unique_keys(
        self, owner_conn: asyncpg.Connection, tables: list[str]
    ) -> None:
        existing = {
            (r["relname"], tuple(r["columns"]))
            for r in await self._unique_keys(owner_conn, [*tables, "tenants"])
        }
        assert existing >= GLOBAL_UNIQUE_KEYS


class TestTheAppRoleIsPowerless:
    async def test_the_app_role_is_neither_superuser_nor_bypasses_rls(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        role = await owner_conn.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1",
            APP_ROLE,
        )
        assert role is not None
        assert dict(role) == {
            "rolsuper": False,
            "rolbypassrls": False,
            "rolcreaterole": False,
            "rolcreatedb": False,
        }

    async def test_the_app_role_cannot_become_a_role_that_bypasses_rls(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        powerful = await owner_conn.fetch(
            "SELECT rolname FROM pg_roles WHERE (rolsuper OR rolbypassrls) AND rolname <> $1"
            " AND pg_has_role($1, oid, 'MEMBER')",
            APP_ROLE,
        )
        assert [r["rolname"] for r in powerful] == []

    async def test_the_app_role_owns_nothing(self, owner_conn: asyncpg.Connection) -> None:
        owned = await owner_conn.fetch(
            """
            SELECT 'relation' AS kind, relname::text AS name FROM pg_class WHERE relowner = $1::regrole
            UNION ALL SELECT 'function', proname::text FROM pg_proc WHERE proowner = $1::regrole
            UNION ALL SELECT 'type', typname::text FROM pg_type WHERE typowner = $1::regrole
            UNION ALL SELECT 'schema', nspname::text FROM pg_namespace WHERE nspowner = $1::regrole
            UNION ALL SELECT 'database', datname::text FROM pg_database WHERE datdba = $1::regrole
            """,
            APP_ROLE,
        )
        assert [(r["kind"], r["name"]) for r in owned] == []

    async def test_the_app_role_cannot_create_objects_in_the_public_schema(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        assert (
            await owner_conn.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", APP_ROLE)
            is False
        )

    async def test_the_app_role_cannot_run_maintenance_or_trigger_functions(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        callable_by_app = await owner_conn.fetch(
            """
            SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public' AND NOT p.prosecdef AND p.proowner <> 'vibethink_definer'::regrole
               AND has_function_privilege($1, p.oid, 'EXECUTE')
               AND p.proname IN ('ensure_message_partitions', 'reject_history_rewrite', 'notify_outbox')
            """,
            APP_ROLE,
        )
        assert [r["signature"] for r in callable_by_app] == []

    async def test_the_definer_role_cannot_log_in(self, owner_conn: asyncpg.Connection) -> None:
        assert (
            await owner_conn.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", DEFINER_ROLE)
            is False
        )


class TestSecurityDefinerFunctionsAreLockedDown:
    async def _definers(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch(
            """
            SELECT p.oid::regprocedure::text AS signature, pg_get_userbyid(p.proowner) AS owner, p.proconfig,
                   has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute,
                   has_function_privilege($1, p.oid, 'EXECUTE') AS app_can_execute
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            """,
            APP_ROLE,
        )

    async def test_they_are_owned_by_the_definer_role(self, owner_conn: asyncpg.Connection) -> None:
        definers = await self._definers(owner_conn)
        assert "outbox_claim(text,integer,integer)" in {d["signature"] for d in definers}
        assert [d["signature"] for d in definers if d["owner"] != DEFINER_ROLE] == []

    async def test_they_fix_a_search_path_that_ends_with_pg_temp(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        offenders = []
        for d in await self._definers(owner_conn):
            paths = [
                c.removeprefix("search_path=") for c in d["proconfig"] or [] if c.startswith("search_path=")
            ]
            if len(paths) != 1 or [p.strip() for p in paths[0].split(",")][-1] != "pg_temp":
                offenders.append((d["signature"], d["proconfig"]))
        assert offenders == []

    async def test_only_the_app_role_may_execute_them_not_public(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        definers = await self._definers(owner_conn)
        assert [d["signature"] for d in definers if d["public_can_execute"]] == []
        assert [d["signature"] for d in definers if not d["app_can_execute"]] == []


class TestViewsRunWithTheCallersRights:
    async def test_every_view_is_security_invoker(self, owner_conn: asyncpg.Connection) -> None:
        views = await owner_conn.fetch(
            "SELECT relname, coalesce(reloptions, '{}') AS options FROM pg_class"
            " WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace"
        )
        invoker = {
            "security_invoker=true",
            "security_invoker=on",
            "security_invoker=1",
            "security_invoker=yes",
        }
        assert [v["relname"] for v in views if not invoker & {o.lower() for o in v["options"]}] == []

    async def test_no_materialized_view_is_readable_by_the_app_role(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        # A materialized view has no row-level security at all: it would copy rows past the policies.
        exposed = await owner_conn.fetch(
            "SELECT relname FROM pg_class WHERE relkind = 'm' AND has_table_privilege($1, oid, 'SELECT')",
            APP_ROLE,
        )
        assert [r["relname"] for r in exposed] == []
