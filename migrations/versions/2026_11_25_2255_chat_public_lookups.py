"""Chat: public lookups a fan's request needs before any tenant context (deployments by id).

Revision ID: 0006_chat_public
Revises: 0005_knowledge_search
Create Date: 2026-11-25 22:55:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_chat_public"
down_revision: str | None = "0005_knowledge_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
DEFINER = "vibethink_definer"
ADMIN_ROLE = "vibethink_admin"

DEPLOYMENT = "chat_public_deployment(p_id uuid)"
CONVERSATION = "chat_fan_conversation(p_id uuid, p_fan_key text)"


def _definer(signature: str, returns: str, body: str) -> None:
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE sql STABLE SECURITY DEFINER"
        f" SET search_path = public, pg_temp AS $fn$ {body} $fn$"
    )
    op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}, {ADMIN_ROLE}")


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    op.create_index("ix_deployments_id", "deployments", ["id"], unique=False)
    op.create_index("ix_conversations_id", "conversations", ["id"], unique=False)
    op.execute(f"GRANT SELECT ON deployments, celebrities, conversations TO {DEFINER}")
    # A fan arrives with only a deployment id: this names its tenant and twin, nothing more private.
    _definer(
        DEPLOYMENT,
        "TABLE(tenant_id uuid, deployment_id uuid, celebrity_id uuid, type deployment_type,"
        " status deployment_status, config jsonb, starts_at timestamptz, ends_at timestamptz,"
        " celebrity_name text, celebrity_status entity_status, twin_config jsonb)",
        "SELECT d.tenant_id, d.id, d.celebrity_id, d.type, d.status, d.config, d.starts_at, d.ends_at,"
        " c.name, c.status, c.twin_config"
        " FROM deployments d JOIN celebrities c ON c.tenant_id = d.tenant_id AND c.id = d.celebrity_id"
        " WHERE d.id = p_id",
    )
    # A signed-in fan names a conversation by id alone; only its own fan key finds the tenant.
    _definer(
        CONVERSATION,
        "TABLE(tenant_id uuid, deployment_id uuid)",
        "SELECT c.tenant_id, c.deployment_id FROM conversations c"
        " WHERE c.id = p_id AND c.fan_key = p_fan_key AND c.fan_key <> ''",
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS chat_fan_conversation(uuid, text)")
    op.execute("DROP FUNCTION IF EXISTS chat_public_deployment(uuid)")
    op.execute(f"REVOKE SELECT ON deployments, celebrities, conversations FROM {DEFINER}")
    op.drop_index("ix_conversations_id", table_name="conversations")
    op.drop_index("ix_deployments_id", table_name="deployments")
