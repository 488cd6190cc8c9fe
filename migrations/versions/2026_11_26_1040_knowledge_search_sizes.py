"""Knowledge search: a twin's size comes from its sources' chunk counts, not from counting chunks.

Both search functions first decide how big the twin is (full text: more than 5,000 chunks takes the
big-twin paths; vector: more than `p_exact_below` uses the HNSW index). They counted up to that many
of the twin's chunks in the index on every call: 5,001 index entries, ~1 ms of a big twin's ~4 ms
search. The indexer already keeps each source's `indexed_chunks`; their sum over the twin's sources
is a few rows. The size only chooses a strategy: while a source is being (re)indexed the sum may lag,
and the answer is the same either way (each path fills up to k when k chunks match).

The change is a substitution in each function's current definition (as `pg_get_functiondef` gives it),
so the rest stays exactly as it was; the downgrade substitutes back.

Revision ID: 0017_knowledge_search_sizes
Revises: 0015_chat_turn_lean
Create Date: 2026-11-26 10:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_knowledge_search_sizes"
down_revision: str | None = "0015_chat_turn_lean"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = "knowledge_search_text(uuid, regconfig, text, integer, text[])"
VECTOR = "knowledge_search_vector(uuid, vector, integer, integer)"

TEXT_COUNTED = """
            SELECT count(*) > 5000 INTO v_big FROM (
                SELECT 1 FROM knowledge_chunks c
                 WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                 LIMIT 5000 + 1
            ) bounded;
"""
TEXT_SUMMED = """
            SELECT coalesce(sum(s.indexed_chunks), 0) > 5000 INTO v_big
              FROM knowledge_sources s
             WHERE s.tenant_id = v_tenant AND s.celebrity_id = p_celebrity_id;
"""
VECTOR_COUNTED = """
            SELECT count(*) INTO v_count FROM (
                SELECT 1 FROM knowledge_chunks c
                 WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                 LIMIT greatest(p_exact_below, 0) + 1
            ) bounded;
"""
VECTOR_SUMMED = """
            SELECT coalesce(sum(s.indexed_chunks), 0) INTO v_count
              FROM knowledge_sources s
             WHERE s.tenant_id = v_tenant AND s.celebrity_id = p_celebrity_id;
"""


def _substitute(function: str, old: str, new: str) -> None:
    bind = op.get_bind()
    definition = bind.execute(
        sa.text("SELECT pg_get_functiondef(CAST(:f AS regprocedure))"), {"f": function}
    ).scalar_one()
    if definition.count(old) != 1:
        raise RuntimeError(f"{function} is not the definition this migration expects")
    # CREATE OR REPLACE keeps the function's owner, grants and SET clauses.
    bind.exec_driver_sql(definition.replace(old, new))


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _substitute(TEXT, TEXT_COUNTED, TEXT_SUMMED)
    _substitute(VECTOR, VECTOR_COUNTED, VECTOR_SUMMED)


def downgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _substitute(VECTOR, VECTOR_SUMMED, VECTOR_COUNTED)
    _substitute(TEXT, TEXT_SUMMED, TEXT_COUNTED)
