"""Chat: a turn's history read touches only the partitions its conversation can have messages in.

`messages` is partitioned by month. The history read of `chat_turn_read` (0012) filtered on the
conversation only, so with the cached generic plan every call opened an index scan on each of the
table's fifteen partitions and merged them (about 0.3 ms of PostgreSQL CPU a turn, the largest
part of the read after the search). It is now bounded by the conversation's own start and by the
present, each with a day of slack for clocks, which the executor uses to skip every other
partition before it starts. The history is the same: no message of a conversation is older than
the conversation, nor written later than now.

Both turn functions also keep their generic plans (`plan_cache_mode = force_generic_plan`): left
to choose, PostgreSQL kept re-planning some of their statements on every call (a custom plan that
prunes partitions looks cheaper than the generic one, which prunes them as it starts), and the
planning cost more than it saved. The search functions they call keep choosing per statement
(`auto`, set on the search function itself so the caller's setting does not reach it): a word's
selectivity matters there.

The history change is a substitution in the function's current definition (as `pg_get_functiondef` gives
it), so the rest of 0012's function stays exactly as it was; the downgrade substitutes back.

Revision ID: 0015_chat_turn_lean
Revises: 0016_outbox_batches
Create Date: 2026-11-26 07:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_chat_turn_lean"
down_revision: str | None = "0016_outbox_batches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READ = (
    "chat_turn_read(uuid, text, uuid, text, integer, regconfig, text, integer, text[], vector, integer, date)"
)
WRITE = "chat_turn_write(uuid, text, uuid, text, integer, integer, integer, jsonb, jsonb, jsonb, jsonb, jsonb, date)"
SEARCHES = (
    "knowledge_search_text(uuid, regconfig, text, integer, text[])",
    "knowledge_search_vector(uuid, vector, integer, integer)",
)
HISTORY_0012 = """
                     WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conversation
                       AND m.status = 'COMPLETE'
"""
HISTORY_0015 = """
                     WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conversation
                       AND m.status = 'COMPLETE'
                       AND m.created_at >= v_conversation.created_at - interval '1 day'
                       AND m.created_at < now() + interval '1 day'
"""


def _substitute(old: str, new: str) -> None:
    bind = op.get_bind()
    definition = bind.execute(
        sa.text("SELECT pg_get_functiondef(CAST(:f AS regprocedure))"), {"f": READ}
    ).scalar_one()
    if definition.count(old) != 1:
        raise RuntimeError("chat_turn_read is not the definition this migration expects")
    # CREATE OR REPLACE keeps the function's owner and grants.
    bind.exec_driver_sql(definition.replace(old, new))


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _substitute(HISTORY_0012, HISTORY_0015)
    for function in (READ, WRITE):
        op.execute(f"ALTER FUNCTION {function} SET plan_cache_mode = force_generic_plan")
    for function in SEARCHES:
        op.execute(f"ALTER FUNCTION {function} SET plan_cache_mode = auto")


def downgrade() -> None:
    for function in (READ, WRITE, *SEARCHES):
        op.execute(f"ALTER FUNCTION {function} RESET plan_cache_mode")
    _substitute(HISTORY_0015, HISTORY_0012)
