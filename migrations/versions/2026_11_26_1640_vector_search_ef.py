"""Knowledge: the HNSW search is planned for its values and explores as much of the graph as needed.

`knowledge_search_vector`'s statements switched to generic plans after five calls (plan cache mode
`auto`), and two of them then read all of a big twin's rows: the HNSW statement, not knowing the twin
or the vector, sorted every one of the twin's rows by distance instead of walking the index (on the
bench's 100,000-chunk twin 495 ms against 59 ms for the plan made for its values, index read from
disk), and the read of the chosen rows by `c.id = ANY(v_ids)` walked them by the source index (69 ms).
Every statement of the function is now planned for its values (`plan_cache_mode =
force_custom_plan`: ~55 ms a search became 5–7 ms, psql, 30 calls on one connection, centred random
vectors, index in memory), and the chosen rows are joined by their keys.

`knowledge_search_vector` ran every HNSW search with `hnsw.ef_search = 200`: the index holds every
twin's chunks, the scan returns the `ef_search` nearest of them all and the tenant's filter keeps the
twin's own, so a twin with a small share of the table needed a wide search to find k of its own (and
falls back to the exact search when it does not). A twin holding half of the table finds k of its own
among ~40 candidates: at 200 its search cost four times what it needs (the index scan alone, index in
memory, random 384-d vectors: p95 16.1 ms at 200, 7.3 at 100, 3.4 at 40). The search now sets
`ef_search` from the twin's share — twice the candidates it expects to need, between 40 and 400 —
and the exact fallback still guarantees k results.

A substitution in the function's current definition; the downgrade substitutes back.

Revision ID: 0022_vector_search_ef
Revises: 0021_chat_read_no_history
Create Date: 2026-11-26 16:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_vector_search_ef"
down_revision: str | None = "0021_chat_read_no_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VECTOR = "knowledge_search_vector(uuid, vector, integer, integer)"
HNSW_0011 = """            IF v_count > p_exact_below THEN
                SELECT array_agg(h.id) INTO v_ids FROM (
"""
HNSW_0022 = """            IF v_count > p_exact_below THEN
                -- Twice the candidates the twin's share of the table says k of its own need.
                SELECT greatest(c.reltuples, v_count, 1) INTO v_table
                  FROM pg_class c WHERE c.oid = 'knowledge_chunks'::regclass;
                PERFORM set_config('hnsw.ef_search',
                                   least(400, greatest(40, ceil(2 * v_limit * v_table / v_count)))::text,
                                   true);
                SELECT array_agg(h.id) INTO v_ids FROM (
"""
ROWS_0011 = """                  FROM knowledge_chunks c
                  JOIN knowledge_sources s ON s.tenant_id = c.tenant_id AND s.id = c.source_id
                 WHERE c.tenant_id = v_tenant AND c.id = ANY(v_ids)
"""
# The chosen rows by their keys: a generic plan of `c.id = ANY(v_ids)` scanned all of the twin's rows.
ROWS_0022 = """                  FROM unnest(v_ids) AS u(id)
                  JOIN knowledge_chunks c ON c.tenant_id = v_tenant AND c.id = u.id
                  JOIN knowledge_sources s ON s.tenant_id = c.tenant_id AND s.id = c.source_id
"""
DECLARE_0011 = "            v_ids uuid[];\n"
DECLARE_0022 = "            v_ids uuid[];\n            v_table double precision;\n"


def _replace(pairs: Sequence[tuple[str, str]]) -> None:
    bind = op.get_bind()
    definition = str(
        bind.execute(
            sa.text("SELECT pg_get_functiondef(CAST(:f AS regprocedure))"), {"f": VECTOR}
        ).scalar_one()
    )
    for old, new in pairs:
        if definition.count(old) != 1:
            raise RuntimeError("knowledge_search_vector is not the definition this migration expects")
        definition = definition.replace(old, new)
    # CREATE OR REPLACE keeps the function's owner, grants and SET clauses (its ef_search of 200 stays
    # the value restored when it returns).
    bind.exec_driver_sql(definition)


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _replace([(DECLARE_0011, DECLARE_0022), (HNSW_0011, HNSW_0022), (ROWS_0011, ROWS_0022)])
    # Every statement planned for its values: a generic plan of any of them (after five calls) cost the
    # search ~50 ms more, for a planning cost of well under a millisecond.
    op.execute(f"ALTER FUNCTION {VECTOR} SET plan_cache_mode = force_custom_plan")


def downgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    op.execute(f"ALTER FUNCTION {VECTOR} SET plan_cache_mode = auto")
    _replace([(ROWS_0022, ROWS_0011), (HNSW_0022, HNSW_0011), (DECLARE_0022, DECLARE_0011)])
