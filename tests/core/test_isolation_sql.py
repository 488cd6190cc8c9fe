"""Row-level security on the app role, by raw SQL: a tenant never reads or changes another's rows.

Every tenant table is covered: the parameters come from the models, a catalog test proves they are
exactly pg_catalog's tenant tables, and the rows come from a builder that reads the catalog.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from tests.core.conftest import Connect
from tests.core.schema_catalog import (
    APPEND_ONLY_TABLES,
    IMMUTABLE_TABLES,
    MODEL_TENANT_TABLES,
    RowBuilder,
    Table,
    TenantWorld,
    tenant_tables,
    where_key,
)
from vibethink.core.database import Database, RlsContext
from vibethink.core.settings import Settings

MUTABLE_TENANT_TABLES = [t for t in MODEL_TENANT_TABLES if t not in APPEND_ONLY_TABLES]
# Records that may change status but are never deleted (moderation and billing history).
UNDELETABLE_TABLES = frozenset({"moderation_flags", "fan_subscriptions", "purchases", "payouts"})
# Settings keyed by the celebrity alone.
ONE_ROW_PER_CELEBRITY = frozenset({"fee_schedules", "payout_settings"})
DELETABLE_TENANT_TABLES = [t for t in MUTABLE_TENANT_TABLES if t not in UNDELETABLE_TABLES]
RLS_VIOLATION = re.compile("violates row-level security policy")
PERMISSION_DENIED = re.compile("permission denied for table")
APPEND_ONLY = re.compile("is append-only")


@asynccontextmanager
async def rls(
    conn: asyncpg.Connection,
    *,
    tenant: uuid.UUID | None = None,
    user: uuid.UUID | None = None,
    admin: bool = False,
    commit: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """One transaction with the RLS context set the way the app sets it; rolled back unless `commit`."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(
            "SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true),"
            " set_config('role', $3, true)",
            str(tenant or ""),
            str(user or ""),
            "vibethink_admin" if admin else "none",
        )
        yield conn
    except BaseException:
        await transaction.rollback()
        raise
    if commit:
        await transaction.commit()
    else:
        await transaction.rollback()


async def count_rows(
    conn: asyncpg.Connection, catalog: dict[str, Table], table: str, world: TenantWorld
) -> int:
    key = world.key(catalog, table)
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE {where_key(catalog, table, key)}", *key.values()
        )
    )


class TestEveryTenantTableIsCovered:
    async def test_the_parametrized_tables_are_exactly_the_catalogs_tenant_tables(
        self, owner_conn: asyncpg.Connection
    ) -> None:
        assert await tenant_tables(owner_conn) == MODEL_TENANT_TABLES

    async def test_both_tenants_have_a_row_in_every_tenant_table(
        self, owner_conn: asyncpg.Connection, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        for world in two_tenants:
            async with rls(owner_conn, admin=True):
                for table in MODEL_TENANT_TABLES:
                    found = await owner_conn.fetchval(
                        f"SELECT count(*) FROM {table} WHERE tenant_id = $1", world.tenant_id
                    )
                    assert found >= 1, table


@pytest.mark.parametrize("table", MODEL_TENANT_TABLES)
class TestTenantReadsOnlyItsOwnRows:
    async def test_select_sees_its_own_row_and_not_the_other_tenants(
        self,
        table: str,
        app_connect: Connect,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, b = two_tenants
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            assert await count_rows(conn, catalog, table, a) == 1
            assert await count_rows(conn, catalog, table, b) == 0
            seen = {r["tenant_id"] for r in await conn.fetch(f"SELECT DISTINCT tenant_id FROM {table}")}
            assert seen == {a.tenant_id}

    async def test_insert_of_a_row_for_another_tenant_is_rejected(
        self,
        table: str,
        app_connect: Connect,
        row_builder: RowBuilder,
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, b = two_tenants
        values = row_builder.values(table, b)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=RLS_VIOLATION):
                await conn.execute(row_builder.insert_sql(table, values, returning=False), *values.values())

    async def test_insert_of_a_row_for_its_own_tenant_is_allowed(
        self,
        table: str,
        app_connect: Connect,
        row_builder: RowBuilder,
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        # The control for the test above: the same row, in its own tenant, is accepted.
        a, _ = two_tenants
        values = row_builder.values(table, a)
        if table == "memberships":
            values["user_id"] = str(await _new_user(app_connect))
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            if table in ONE_ROW_PER_CELEBRITY:
                # The celebrity already has its one row: replace it (rolled back with the test).
                await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", a.tenant_id)
            status = await conn.execute(
                row_builder.insert_sql(table, values, returning=False), *values.values()
            )
        assert status == "INSERT 0 1"


async def _new_user(app_connect: Connect) -> uuid.UUID:
    user_id = uuid.uuid4()
    conn = await app_connect()
    async with rls(conn, admin=True, commit=True):
        await conn.execute(
            "INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'member')",
            user_id,
            f"{user_id.hex[:12]}@example.test",
        )
    return user_id


@pytest.mark.parametrize("table", MUTABLE_TENANT_TABLES)
class TestTenantCannotChangeAnotherTenantsRows:
    async def test_update_of_another_tenants_row_affects_no_rows(
        self,
        table: str,
        app_connect: Connect,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, b = two_tenants
        key = b.key(catalog, table)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            status = await conn.execute(
                f"UPDATE {table} SET tenant_id = tenant_id WHERE {where_key(catalog, table, key)}",
                *key.values(),
            )
            assert status == "UPDATE 0"
            own = a.key(catalog, table)
            status = await conn.execute(
                f"UPDATE {table} SET tenant_id = tenant_id WHERE {where_key(catalog, table, own)}",
                *own.values(),
            )
            assert status == "UPDATE 1"  # the control: the same statement on its own row works

    async def test_its_own_row_cannot_be_moved_to_another_tenant(
        self,
        table: str,
        app_connect: Connect,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, b = two_tenants
        key = a.key(catalog, table)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            where = where_key(catalog, table, key, first_param=2)
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=RLS_VIOLATION):
                await conn.execute(
                    f"UPDATE {table} SET tenant_id = $1 WHERE {where}",
                    b.tenant_id,
                    *key.values(),
                )


@pytest.mark.parametrize("table", MODEL_TENANT_TABLES)
class TestMissingTenantSeesNothing:
    async def test_a_fresh_connection_without_a_tenant_sees_no_rows(
        self, table: str, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        conn = await app_connect()
        async with conn.transaction():
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") is None
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0

    async def test_a_connection_whose_last_transaction_had_a_tenant_sees_no_rows_after_it(
        self, table: str, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, _ = two_tenants
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id, commit=True):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") >= 1
        async with conn.transaction():
            # The setting now exists on the session with an empty value: still no tenant, no rows.
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") == ""
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


@pytest.mark.parametrize("table", sorted(APPEND_ONLY_TABLES))
class TestAppRoleOnlyAppendsHistory:
    async def test_app_role_cannot_update_even_its_own_rows(
        self,
        table: str,
        app_connect: Connect,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, _ = two_tenants
        key = a.key(catalog, table)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=PERMISSION_DENIED):
                await conn.execute(
                    f"UPDATE {table} SET tenant_id = tenant_id WHERE {where_key(catalog, table, key)}",
                    *key.values(),
                )

    async def test_app_role_cannot_delete_even_its_own_rows(
        self,
        table: str,
        app_connect: Connect,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, _ = two_tenants
        key = a.key(catalog, table)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=PERMISSION_DENIED):
                await conn.execute(
                    f"DELETE FROM {table} WHERE {where_key(catalog, table, key)}", *key.values()
                )


@pytest.mark.parametrize("table", sorted(IMMUTABLE_TABLES))
class TestOwnerCannotRewriteHistory:
    async def test_owner_update_is_rejected_by_the_trigger(
        self,
        table: str,
        owner_conn: asyncpg.Connection,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, _ = two_tenants
        key = a.key(catalog, table)
        async with rls(owner_conn, tenant=a.tenant_id):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=APPEND_ONLY):
                await owner_conn.execute(
                    f"UPDATE {table} SET tenant_id = tenant_id WHERE {where_key(catalog, table, key)}",
                    *key.values(),
                )

    async def test_owner_delete_is_rejected_by_the_trigger(
        self,
        table: str,
        owner_conn: asyncpg.Connection,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, _ = two_tenants
        key = a.key(catalog, table)
        async with rls(owner_conn, tenant=a.tenant_id):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=APPEND_ONLY):
                await owner_conn.execute(
                    f"DELETE FROM {table} WHERE {where_key(catalog, table, key)}", *key.values()
                )

    async def test_owner_truncate_is_rejected_by_the_trigger(
        self, table: str, owner_conn: asyncpg.Connection, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        async with rls(owner_conn):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=APPEND_ONLY):
                await owner_conn.execute(f"TRUNCATE {table} CASCADE")


async def _seed_admin(app_connect: Connect, sql: str, *args: object) -> None:
    conn = await app_connect()
    async with rls(conn, admin=True, commit=True):
        await conn.execute(sql, *args)


async def _user(app_connect: Connect, *, tenants: tuple[uuid.UUID, ...] = ()) -> uuid.UUID:
    user_id = await _new_user(app_connect)
    for tenant_id in tenants:
        await _seed_admin(
            app_connect,
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'TALENT_MANAGER')",
            tenant_id,
            user_id,
        )
    return user_id


class TestUsersAreVisibleToThemselvesAndTheirTenant:
    async def test_a_user_context_sees_only_that_user(
        self, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, _ = two_tenants
        conn = await app_connect()
        async with rls(conn, user=a.user_id):
            assert {r["id"] for r in await conn.fetch("SELECT id FROM users")} == {a.user_id}

    async def test_a_tenant_context_adds_the_tenants_members_and_no_one_else(
        self, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        colleague = await _user(app_connect, tenants=(a.tenant_id,))
        fan = await _user(app_connect)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id, user=a.user_id):
            seen = {r["id"] for r in await conn.fetch("SELECT id FROM users")}
            assert {a.user_id, colleague} <= seen
            assert b.user_id not in seen
            assert fan not in seen

    async def test_a_user_cannot_update_another_user(
        self, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id, user=a.user_id):
            assert (
                await conn.execute("UPDATE users SET display_name = 'x' WHERE id = $1", b.user_id)
                == "UPDATE 0"
            )

    async def test_no_context_sees_no_users(
        self, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        conn = await app_connect()
        async with rls(conn):
            assert await conn.fetchval("SELECT count(*) FROM users") == 0


class TestAuthSessionsAreTheirUsersOnly:
    async def test_a_user_sees_and_changes_only_their_own_sessions(
        self, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        own, other = uuid.uuid4(), uuid.uuid4()
        for session_id, user_id in ((own, a.user_id), (other, b.user_id)):
            await _seed_admin(
                app_connect,
                "INSERT INTO auth_sessions (id, user_id, expires_at) VALUES ($1, $2, now() + '1 day')",
                session_id,
                user_id,
            )
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id, user=a.user_id):
            seen = {r["id"] for r in await conn.fetch("SELECT id FROM auth_sessions")}
            assert own in seen
            assert other not in seen
            revoke = "UPDATE auth_sessions SET revoked_at = now() WHERE id = $1"
            assert await conn.execute(revoke, other) == "UPDATE 0"
            assert await conn.execute(revoke, own) == "UPDATE 1"
        async with rls(conn, tenant=a.tenant_id):
            assert await conn.fetchval("SELECT count(*) FROM auth_sessions") == 0


class TestTenantsAreVisibleToTheirMembers:
    async def test_a_tenant_context_sees_only_its_tenant(
        self, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, _ = two_tenants
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            assert {r["id"] for r in await conn.fetch("SELECT id FROM tenants")} == {a.tenant_id}

    async def test_a_member_also_sees_the_other_tenants_they_belong_to_and_no_more(
        self, app_connect: Connect, row_builder: RowBuilder, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        conn = await app_connect()
        third = await row_builder.build_world(conn)
        agent = await _user(app_connect, tenants=(a.tenant_id, third.tenant_id))
        async with rls(conn, tenant=a.tenant_id, user=agent):
            seen = {r["id"] for r in await conn.fetch("SELECT id FROM tenants")}
            assert seen == {a.tenant_id, third.tenant_id}
            assert b.tenant_id not in seen

    async def test_a_tenant_cannot_update_another_tenant_even_one_its_user_belongs_to(
        self, app_connect: Connect, row_builder: RowBuilder, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        conn = await app_connect()
        agent = await _user(app_connect, tenants=(a.tenant_id, b.tenant_id))
        async with rls(conn, tenant=a.tenant_id, user=agent):
            assert (
                await conn.execute("UPDATE tenants SET name = 'x' WHERE id = $1", b.tenant_id) == "UPDATE 0"
            )
            assert (
                await conn.execute("UPDATE tenants SET name = name WHERE id = $1", a.tenant_id) == "UPDATE 1"
            )


class TestMembershipsAreOwnRowsAndTheTenantsRows:
    async def test_a_user_sees_their_memberships_everywhere_and_only_the_current_tenants_members(
        self, app_connect: Connect, row_builder: RowBuilder, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        agent = await _user(app_connect, tenants=(a.tenant_id, b.tenant_id))
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id, user=agent):
            seen = {
                (r["tenant_id"], r["user_id"])
                for r in await conn.fetch("SELECT tenant_id, user_id FROM memberships")
            }
        assert (a.tenant_id, agent) in seen
        assert (a.tenant_id, a.user_id) in seen  # a colleague in the current tenant
        assert (b.tenant_id, agent) in seen  # their own row in another tenant
        assert (b.tenant_id, b.user_id) not in seen  # never another tenant's other members

    async def test_a_user_cannot_change_or_remove_their_membership_in_another_tenant(
        self, app_connect: Connect, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        agent = await _user(app_connect, tenants=(a.tenant_id, b.tenant_id))
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id, user=agent):
            promote = "UPDATE memberships SET role = 'TALENT_OWNER' WHERE tenant_id = $1 AND user_id = $2"
            assert await conn.execute(promote, b.tenant_id, agent) == "UPDATE 0"
            remove = "DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2"
            assert await conn.execute(remove, b.tenant_id, agent) == "DELETE 0"
            assert await conn.execute(promote, a.tenant_id, agent) == "UPDATE 1"


class TestBrandReadsTheCampaignsThatNameIt:
    async def _campaign_for_brand(
        self, app_connect: Connect, row_builder: RowBuilder, talent: TenantWorld, brand: TenantWorld
    ) -> uuid.UUID:
        values = row_builder.values("brand_campaigns", talent)
        values.update(brand_tenant_id=str(brand.tenant_id), brand_id=brand.rows["brands"]["id"])
        conn = await app_connect()
        async with rls(conn, admin=True, commit=True):
            row = await row_builder.insert(conn, "brand_campaigns", values)
        return uuid.UUID(row["id"])

    async def test_the_brand_tenant_can_read_but_not_change_or_delete_the_campaign(
        self, app_connect: Connect, row_builder: RowBuilder
    ) -> None:
        conn = await app_connect()
        talent, brand = await row_builder.build_world(conn), await row_builder.build_world(conn)
        campaign = await self._campaign_for_brand(app_connect, row_builder, talent, brand)
        conn = await app_connect()
        async with rls(conn, tenant=brand.tenant_id):
            assert await conn.fetchval("SELECT count(*) FROM brand_campaigns WHERE id = $1", campaign) == 1
            update = "UPDATE brand_campaigns SET status = 'APPROVED' WHERE id = $1"
            assert await conn.execute(update, campaign) == "UPDATE 0"
            assert await conn.execute("DELETE FROM brand_campaigns WHERE id = $1", campaign) == "DELETE 0"
        async with rls(conn, tenant=talent.tenant_id):
            assert (
                await conn.fetchval("SELECT status::text FROM brand_campaigns WHERE id = $1", campaign)
                == "REQUESTED"
            )

    async def test_a_third_tenant_cannot_see_the_campaign(
        self, app_connect: Connect, row_builder: RowBuilder
    ) -> None:
        conn = await app_connect()
        talent, brand, third = [await row_builder.build_world(conn) for _ in range(3)]
        campaign = await self._campaign_for_brand(app_connect, row_builder, talent, brand)
        async with rls(conn, tenant=third.tenant_id):
            assert await conn.fetchval("SELECT count(*) FROM brand_campaigns WHERE id = $1", campaign) == 0


class TestPoolOfOneNeverLeaksATenant:
    async def test_alternating_tenants_on_one_pooled_connection_see_only_their_rows(
        self, test_settings: Settings, test_owner_url: URL, two_tenants: tuple[TenantWorld, TenantWorld]
    ) -> None:
        a, b = two_tenants
        database = Database(
            test_settings.model_copy(update={"pool_size": 1, "pool_max_overflow": 0}), owner=test_owner_url
        )
        # (owner, reader) of every visible row: brand campaigns are also readable by the brand they name.
        every_table = " UNION ALL ".join(
            f"SELECT tenant_id, {'brand_tenant_id' if t == 'brand_campaigns' else 'NULL::uuid'} FROM {t}"
            for t in MODEL_TENANT_TABLES
        )
        pattern = [a.tenant_id, b.tenant_id, a.tenant_id, None, b.tenant_id]
        backends: set[int] = set()
        try:
            for i in range(50):
                tenant = pattern[i % len(pattern)]
                try:
                    async with database.transaction(RlsContext(tenant_id=tenant)) as session:
                        backends.add((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                        visible = text(f"SELECT DISTINCT * FROM ({every_table}) t")
                        rows = (await session.execute(visible)).all()
                        leaked = [row for row in rows if tenant is None or tenant not in row]
                        assert not leaked, f"transaction {i} as {tenant}"
                        assert any(row[0] == tenant for row in rows) == (tenant is not None)
                        if i % 7 == 6:
                            raise _RollBack
                except _RollBack:
                    pass  # a rolled-back transaction must not leave its tenant behind either
        finally:
            await database.dispose()
        assert len(backends) == 1


class _RollBack(Exception):
    pass


@pytest.mark.parametrize("table", DELETABLE_TENANT_TABLES)
class TestTenantCannotDeleteAnotherTenantsRows:
    async def test_delete_of_another_tenants_row_affects_no_rows(
        self,
        table: str,
        app_connect: Connect,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, b = two_tenants
        key = b.key(catalog, table)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            status = await conn.execute(
                f"DELETE FROM {table} WHERE {where_key(catalog, table, key)}", *key.values()
            )
            assert status == "DELETE 0"
        async with rls(conn, admin=True):
            assert await count_rows(conn, catalog, table, b) == 1


@pytest.mark.parametrize("table", sorted(UNDELETABLE_TABLES))
class TestModerationHistoryIsNeverDeleted:
    async def test_the_app_role_cannot_delete_even_its_own_rows(
        self,
        table: str,
        app_connect: Connect,
        catalog: dict[str, Table],
        two_tenants: tuple[TenantWorld, TenantWorld],
    ) -> None:
        a, _ = two_tenants
        key = a.key(catalog, table)
        conn = await app_connect()
        async with rls(conn, tenant=a.tenant_id):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    f"DELETE FROM {table} WHERE {where_key(catalog, table, key)}", *key.values()
                )
