"""Chat: the hot turn tables drop a second key to `tenants` that their other key already implies.

Every insert into `messages` and every first message of a fan's day in `fan_usage` checked its
`tenant_id` against `tenants` — the one row all of a talent's fans share — besides checking its key
to the conversation (messages) or the celebrity (usage), which cannot exist without that tenant.
Each check takes a KEY SHARE lock on the tenant's row; concurrent turns of one talent then share it
through MultiXacts. The composite keys stay (with `tenant_id`, Citus-ready), and deleting a tenant
still cascades to both tables through their parents.

Revision ID: 0020_hot_tenant_keys
Revises: 0019_chat_read_lean
Create Date: 2026-11-26 13:45:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_hot_tenant_keys"
down_revision: str | None = "0019_chat_read_lean"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = (("messages", "fk_messages_tenant_id_tenants"), ("fan_usage", "fk_fan_usage_tenant_id_tenants"))


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    for table, name in KEYS:
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    for table, name in KEYS:
        op.create_foreign_key(name, table, "tenants", ["tenant_id"], ["id"], ondelete="CASCADE")
