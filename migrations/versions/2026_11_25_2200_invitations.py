"""Invitations: one-time links for invited members to set a password (only the token's hash is kept).

Revision ID: 0003_invitations
Revises: 0002_row_level_security
Create Date: 2026-11-26 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_invitations"
down_revision: str | None = "0002_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
DEFINER = "vibethink_definer"
TENANT = "(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)"
ADMIN_ROLE = "vibethink_admin"
FIND = "auth_find_invitation(p_token_hash text)"


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["users.id"], name=op.f("fk_invitations_invited_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["memberships.tenant_id", "memberships.user_id"],
            name=op.f("fk_invitations_tenant_id_user_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_invitations_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    # FORCE, so the table owner is filtered too: a migration bug must not bypass isolation.
    op.execute("ALTER TABLE invitations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE invitations FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON invitations TO {APP} USING (tenant_id = {TENANT})"
        f" WITH CHECK (tenant_id = {TENANT})"
    )
    op.execute(f"CREATE POLICY admin_context ON invitations TO {ADMIN_ROLE} USING (true) WITH CHECK (true)")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON invitations TO {APP}, {ADMIN_ROLE}")

    # Accepting an invitation starts with only the token: no tenant or user context exists yet.
    op.execute(f"GRANT SELECT ON invitations TO {DEFINER}")
    op.execute(
        f"CREATE FUNCTION {FIND} RETURNS TABLE(tenant_id uuid, id uuid, user_id uuid,"
        " expires_at timestamptz, accepted_at timestamptz) LANGUAGE sql STABLE SECURITY DEFINER"
        " SET search_path = public, pg_temp AS $fn$"
        " SELECT i.tenant_id, i.id, i.user_id, i.expires_at, i.accepted_at FROM invitations i"
        " WHERE i.token_hash = p_token_hash $fn$"
    )
    op.execute(f"ALTER FUNCTION {FIND} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {FIND} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {FIND} TO {APP}, {ADMIN_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {FIND}")
    op.execute(f"REVOKE ALL ON invitations FROM {APP}, {DEFINER}, {ADMIN_ROLE}")
    op.drop_table("invitations")
