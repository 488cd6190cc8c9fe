"""Conversations: a turn's update of its conversation row is HOT (no index touched).

Every turn updates its conversation (message count, updated_at). With `updated_at` in three
indexes, each of those updates inserted a new entry into all eight of the table's indexes, three of
them GIN (the context, its brand and its campaign). The three lookup indexes now end in
`created_at`, and the table keeps 20 % of each page free, so the update stays on its page and
touches no index.

Revision ID: 0013_conversation_hot
Revises: 0012_chat_turn_quota
Create Date: 2026-11-26 02:20:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_conversation_hot"
down_revision: str | None = "0012_chat_turn_quota"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOOKUPS = {
    "ix_conversations_tenant_celebrity": "celebrity_id",
    "ix_conversations_tenant_user": "user_id",
    "ix_conversations_tenant_fan": "fan_key",
}


def _reindex(last: str) -> None:
    for name, column in LOOKUPS.items():
        op.drop_index(name, table_name="conversations")
        op.create_index(name, "conversations", ["tenant_id", column, last], unique=False)


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _reindex("created_at")
    op.execute("ALTER TABLE conversations SET (fillfactor = 80)")


def downgrade() -> None:
    op.execute("ALTER TABLE conversations RESET (fillfactor)")
    _reindex("updated_at")
