"""What pg_catalog says about our tables, and a builder of minimal valid rows from it.

The isolation tests build one row per tenant table for two tenants without hand-written SQL per
table, so a new tenant table is covered (and must be insertable) the day it is migrated.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from vibethink.core.database import asyncpg_connect_args
from vibethink.core.registry import metadata

APP_ROLE = "vibethink_app"
DEFINER_ROLE = "vibethink_definer"

# Tables whose rows no tenant owns and that the app role may read without RLS.
GLOBAL_TABLES = frozenset({"login_attempts", "jsonb_schemas", "alembic_version"})
# Platform-level tables without a tenant_id column, isolated by their own policies.
PLATFORM_TABLES = frozenset({"tenants", "users", "auth_sessions"})
# History no role may rewrite: the app role only appends.
COMPLIANCE_HISTORY = frozenset(
    {
        "compliance_settings",
        "compliance_evidence",
        "compliance_checkpoints",
        "compliance_evidence_notes",
        "compliance_assessments",
        "compliance_reports",
        "compliance_prunings",
    }
)
APPEND_ONLY_TABLES = frozenset(
    {
        "audit_log",
        "revenue_transactions",
        "platform_events",
        "event_deliveries",
        "interaction_events",
        "deployment_conversions",
        "campaign_clicks",
        "payment_events",
    }
    | COMPLIANCE_HISTORY
)
# ... and not even the owner: a trigger rejects UPDATE, DELETE and TRUNCATE.
IMMUTABLE_TABLES = frozenset({"audit_log", "revenue_transactions"} | COMPLIANCE_HISTORY)

# Tenant tables, as the models describe them (collection time); the catalog test checks they are
# exactly the tables pg_catalog reports, so a table added only in a migration fails the suite too.
MODEL_TENANT_TABLES = sorted(t.name for t in metadata.sorted_tables if "tenant_id" in t.c)


async def connect(url: URL) -> asyncpg.Connection:
    return await asyncpg.connect(**asyncpg_connect_args(url))


async def tenant_tables(conn: asyncpg.Connection) -> list[str]:
    """Tables (and partitioned parents, never their partitions) in `public` with a tenant_id column."""
    rows = await conn.fetch(
        """
        SELECT c.relname FROM pg_class c
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
         ORDER BY 1
        """
    )
    return [r["relname"] for r in rows]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    not_null: bool
    has_default: bool
    type_name: str
    type_category: str
    enum_labels: tuple[str, ...]
    max_length: int | None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)


async def describe(conn: asyncpg.Connection) -> dict[str, Table]:
    """Every non-partition table in `public`: columns, primary key and foreign keys."""
    tables: dict[str, Table] = {}
    for r in await conn.fetch(
        """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS sql_type, a.attnotnull,
               a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' AS has_default,
               t.typname, t.typcategory::text AS typcategory,
               coalesce((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder)
                           FROM pg_enum e WHERE e.enumtypid = t.oid), '{}') AS labels,
               CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 0 THEN a.atttypmod - 4 END
                 AS max_length
          FROM pg_class c
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          JOIN pg_type t ON t.oid = a.atttypid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
         ORDER BY c.relname, a.attnum
        """
    ):
        table = tables.setdefault(r["relname"], Table(r["relname"]))
        table.columns[r["attname"]] = Column(
            r["attname"],
            r["sql_type"],
            r["attnotnull"],
            r["has_default"],
            r["typname"],
            r["typcategory"],
            tuple(r["labels"]),
            r["max_length"],
        )
    for r in await conn.fetch(
        """
        SELECT con.conname, con.contype::text AS contype, c.relname, rc.relname AS ref_table,
               array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)
                 AS cols,
               array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                       JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
                 AS ref_cols
          FROM pg_constraint con
          JOIN pg_class c ON c.oid = con.conrelid
          LEFT JOIN pg_class rc ON rc.oid = con.confrelid
         WHERE con.contype IN ('p', 'f') AND c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
           AND con.conparentid = 0
         ORDER BY con.conname
        """
    ):
        table = tables[r["relname"]]
        if r["contype"] == "p":
            table.primary_key = tuple(r["cols"])
        else:
            table.foreign_keys.append(
                ForeignKey(r["conname"], tuple(r["cols"]), r["ref_table"], tuple(r["ref_cols"]))
            )
    return tables


class SeedingError(AssertionError):
    pass


def _generated_value(table: str, column: Column) -> str:
    """A valid text form of a value for a NOT NULL column without a default."""
    if column.enum_labels:
        return column.enum_labels[0]
    if column.type_category == "A":
        return "{}"
    if column.type_name == "uuid":
        return str(uuid.uuid4())
    if column.type_category == "S":
        return uuid.uuid4().hex[: min(column.max_length or 24, 24)]
    if column.type_category == "N":
        return "0"
    if column.type_name == "bool":
        return "false"
    if column.type_name in ("json", "jsonb"):
        return "{}"
    if column.type_name in ("timestamptz", "timestamp"):
        return "now"
    if column.type_name == "date":
        return "today"
    if column.type_name == "inet":
        return "127.0.0.1"
    raise SeedingError(
        f"tests/core/schema_catalog.py cannot invent a {column.sql_type} for {table}.{column.name}:"
        " teach _generated_value the type or add an entry to ROW_OVERRIDES"
    )


# Values the catalog cannot guess (check constraints, realistic labels, status that keeps the
# dispatcher from picking seeded events up).
ROW_OVERRIDES: dict[str, dict[str, str]] = {
    "tenants": {"kind": "TALENT"},
    "memberships": {"role": "TALENT_OWNER"},
    "platform_events": {"status": "DONE"},
    "knowledge_chunks": {"tsv": "'seeded':1"},
    "compliance_reports": {"document": "\\x7b7d", "pdf": "\\x25504446"},
    "compliance_person_keys": {"secret": "\\x00"},
    # A whole (unpruned) row: its content columns are nullable only for pruned stubs.
    "compliance_evidence": {
        "event_type": "SEEDED",
        "source": "PLATFORM",
        "event_hash": "0" * 64,
        "control_id": "CHG-01",
        "rule_id": "seeded",
        "rule_version": "1",
        "kind": "OPERATING",
        "outcome": "PASS",
        "occurred_at": "now",
        "period_start": "now",
        "period_end": "now",
        "recorded_at": "now",
        "observation": "{}",
        "artifacts": "[]",
    },
    "revenue_transactions": {
        "currency": "USD",
        "gross_cents": "1000",
        "fee_cents": "0",
        "net_cents": "1000",
        "celebrity_share_cents": "700",
        "platform_share_cents": "300",
    },
    "fan_subscriptions": {
        "status": "ACTIVE",
        "price_cents": "1000",
        "current_period_start": "2026-01-01T00:00:00Z",
        "current_period_end": "2026-02-01T00:00:00Z",
    },
    "purchases": {"amount_cents": "2500", "status": "PAID"},
}


def _next_in_chain(key: str, link: str | None) -> Callable[[dict[str, str] | None], dict[str, str]]:
    """Values that continue a per-tenant sequence after the tenant's previous row (or start it at 1)."""

    def values(previous: dict[str, str] | None) -> dict[str, str]:
        if previous is None:
            return {key: "1"}
        following = {key: str(int(previous[key]) + 1)}
        return {**following, link: previous[key]} if link else following

    return values


def _with_fresh(
    column: str, sequel: Callable[[dict[str, str] | None], dict[str, str]]
) -> Callable[[dict[str, str] | None], dict[str, str]]:
    """A sequel that also gives `column` a new UUID (a nullable column inside a unique key)."""

    def values(previous: dict[str, str] | None) -> dict[str, str]:
        return {**sequel(previous), column: str(uuid.uuid4())}

    return values


# Tables whose rows continue a gapless per-tenant sequence: a new row depends on the tenant's last one.
ROW_SEQUELS: dict[str, Callable[[dict[str, str] | None], dict[str, str]]] = {
    "compliance_evidence": _with_fresh("event_id", _next_in_chain("seq", "prev_seq")),
    "compliance_settings": _next_in_chain("version", None),
    "compliance_checkpoints": _next_in_chain("tree_size", None),
    "compliance_prunings": _next_in_chain("number", None),
}


@dataclass
class TenantWorld:
    """One tenant with one row in every tenant table (and its user); values as PostgreSQL text."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    def key(self, tables: dict[str, Table], table: str) -> dict[str, str]:
        return {c: self.rows[table][c] for c in tables[table].primary_key}


class RowBuilder:
    """Builds and inserts minimal valid rows, parents first, in an admin context on the app role."""

    def __init__(self, tables: dict[str, Table]) -> None:
        self.tables = tables
        graph: dict[str, set[str]] = {}
        for name in self.seeded_tables():
            graph[name] = {
                fk.ref_table
                for fk in tables[name].foreign_keys
                if fk.ref_table != name and fk.ref_table in tables
            }
        self.order = [t for t in TopologicalSorter(graph).static_order() if t in graph]

    def seeded_tables(self) -> list[str]:
        return ["tenants", "users", *(n for n, t in self.tables.items() if "tenant_id" in t.columns)]

    def values(self, table: str, world: TenantWorld) -> dict[str, str]:
        """A fresh row of `table` for `world`'s tenant, its parents taken from the world's rows."""
        spec = self.tables[table]
        values = dict(ROW_OVERRIDES.get(table, {}))
        if table in ROW_SEQUELS:
            values.update(ROW_SEQUELS[table](world.rows.get(table)))
        if table == "tenants":
            values.update(id=str(world.tenant_id), slug=f"t-{uuid.uuid4().hex[:12]}")
        elif table == "users":
            values.update(id=str(world.user_id), email=f"{uuid.uuid4().hex[:12]}@example.test")
        if "tenant_id" in spec.columns:
            values["tenant_id"] = str(world.tenant_id)
        for fk in spec.foreign_keys:
            if fk.ref_table == table:
                continue  # self references (reversals) stay NULL
            parent = world.rows.get(fk.ref_table)
            if parent is None:
                raise SeedingError(f"{table} needs a {fk.ref_table} row that the world does not have")
            for column, ref_column in zip(fk.columns, fk.ref_columns, strict=True):
                values.setdefault(column, parent[ref_column])
        for column in spec.columns.values():
            if column.name not in values and column.not_null and not column.has_default:
                values[column.name] = _generated_value(table, column)
        return values

    def insert_sql(self, table: str, values: dict[str, str], *, returning: bool = True) -> str:
        spec = self.tables[table]
        names = list(values)
        casts = ", ".join(f"${i}::text::{spec.columns[n].sql_type}" for i, n in enumerate(names, start=1))
        sql = f"INSERT INTO {table} AS row ({', '.join(names)}) VALUES ({casts})"
        return sql + " RETURNING to_jsonb(row)::text" if returning else sql

    async def insert(self, conn: asyncpg.Connection, table: str, values: dict[str, str]) -> dict[str, str]:
        returned = json.loads(await conn.fetchval(self.insert_sql(table, values), *values.values()))
        return {k: _as_text(v) for k, v in returned.items() if v is not None}

    async def build_world(self, conn: asyncpg.Connection) -> TenantWorld:
        """Inserts a tenant, a user and one row per tenant table, in one admin transaction."""
        world = TenantWorld(uuid.uuid4(), uuid.uuid4())
        async with conn.transaction():
            await conn.execute("SELECT set_config('role', 'vibethink_admin', true)")
            for table in self.order:
                world.rows[table] = await self.insert(conn, table, self.values(table, world))
        return world


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def where_key(tables: dict[str, Table], table: str, key: dict[str, str], *, first_param: int = 1) -> str:
    spec = tables[table]
    return " AND ".join(
        f"{c} = ${i}::text::{spec.columns[c].sql_type}" for i, c in enumerate(key, start=first_param)
    )
