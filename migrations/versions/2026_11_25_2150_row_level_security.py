"""Roles, row-level security, grants, SECURITY DEFINER lookups, append-only guards, message partitions.

Revision ID: 0002_row_level_security
Revises: 0001_foundation
Create Date: 2026-11-25 21:50:00+00:00
"""

import json
from collections.abc import Sequence

from alembic import op

revision: str = "0002_row_level_security"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
DEFINER = "vibethink_definer"
# The app role switches to this role (never inheriting it) inside the audited admin context.
ADMIN_ROLE = "vibethink_admin"

TENANT = "(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)"
USER = "(SELECT nullif(current_setting('app.user_id', true), '')::uuid)"

MUTABLE_TENANT_TABLES = (
    "memberships",
    "api_keys",
    "celebrities",
    "contracts",
    "brands",
    "deployments",
    "brand_campaigns",
    "conversations",
    "messages",
    "pricing_tiers",
)
APPEND_ONLY_TENANT_TABLES = ("platform_events", "event_deliveries", "audit_log", "revenue_transactions")
IMMUTABLE_TABLES = ("audit_log", "revenue_transactions")

TWIN_CONFIG_V1 = {
    "type": "object",
    "required": ["voiceCloneId", "visualAvatarId", "personalityProfile"],
    "properties": {
        "voiceCloneId": {"type": "string", "minLength": 1},
        "visualAvatarId": {"type": "string", "minLength": 1},
        "personalityProfile": {
            "type": "object",
            "required": ["tone", "language"],
            "properties": {
                "tone": {"type": "string"},
                "language": {"type": "string"},
                "expertise": {"type": "array", "items": {"type": "string"}},
            },
        },
        "knowledgeBase": {
            "type": "object",
            "properties": {
                "sources": {"type": "array"},
                "lastUpdated": {"type": "string", "format": "date-time"},
            },
        },
        "guardrails": {
            "type": "object",
            "properties": {
                "maxResponseLength": {"type": "integer", "minimum": 100},
                "bannedTopics": {"type": "array", "items": {"type": "string"}},
                "contentRating": {"type": "string", "enum": ["G", "PG", "PG-13", "R"]},
            },
        },
    },
}


def _tenant_policy(table: str, *, name: str = "tenant_isolation") -> None:
    """The app role sees and writes only the current tenant's rows; an unset tenant matches none."""
    op.execute(
        f"CREATE POLICY {name} ON {table} TO {APP} USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT})"
    )


def _app_password() -> str:
    from vibethink.core.settings import get_settings

    return get_settings().app_db_password.replace("'", "''")


def upgrade() -> None:
    # Roles are cluster-wide: create them only if an earlier database (or an operator) has not.
    op.execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP}') THEN
            CREATE ROLE {APP} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '{_app_password()}';
          END IF;
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{DEFINER}') THEN
            CREATE ROLE {DEFINER} NOLOGIN BYPASSRLS;
          END IF;
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ADMIN_ROLE}') THEN
            CREATE ROLE {ADMIN_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$;
    """)
    op.execute(f"GRANT {DEFINER} TO current_user")
    # The owner enters the admin context the same way the app does, for maintenance under FORCE RLS.
    op.execute(f"GRANT {ADMIN_ROLE} TO current_user")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP}, {DEFINER}, {ADMIN_ROLE}")

    # Admin context is a role switch (`SET LOCAL ROLE`), not an OR in the tenant policy: an OR with a
    # non-indexable term makes PostgreSQL give up the tenant index (see bench/RESULTS.md).
    op.execute(f"GRANT {ADMIN_ROLE} TO {APP} WITH INHERIT FALSE, SET TRUE")

    for table in (*MUTABLE_TENANT_TABLES, *APPEND_ONLY_TENANT_TABLES, "tenants", "users", "auth_sessions"):
        # FORCE, so the table owner is filtered too: a migration bug must not bypass isolation.
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY admin_context ON {table} TO {ADMIN_ROLE} USING (true) WITH CHECK (true)")
    for table in MUTABLE_TENANT_TABLES:
        if table in ("memberships", "brand_campaigns"):
            continue
        _tenant_policy(table)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}, {ADMIN_ROLE}")
    for table in APPEND_ONLY_TENANT_TABLES:
        _tenant_policy(table)
        op.execute(f"GRANT SELECT, INSERT ON {table} TO {APP}, {ADMIN_ROLE}")

    # A user sees their own memberships in every tenant (to pick one); writes stay tenant-scoped.
    op.execute(
        f"CREATE POLICY member_read ON memberships FOR SELECT TO {APP}"
        f" USING (tenant_id = {TENANT} OR user_id = {USER})"
    )
    _tenant_policy("memberships", name="tenant_write")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON memberships TO {APP}, {ADMIN_ROLE}")

    # Campaign rows belong to the talent's tenant and are visible to the brand they name.
    _tenant_policy("brand_campaigns")
    op.execute(
        f"CREATE POLICY brand_read ON brand_campaigns FOR SELECT TO {APP} USING (brand_tenant_id = {TENANT})"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON brand_campaigns TO {APP}, {ADMIN_ROLE}")

    # Platform-level tables: tenants, users and their sessions.
    op.execute(
        f"CREATE POLICY tenant_read ON tenants FOR SELECT TO {APP} USING (id = {TENANT}"
        f" OR id IN (SELECT m.tenant_id FROM memberships m WHERE m.user_id = {USER}))"
    )
    op.execute(f"CREATE POLICY tenant_insert ON tenants FOR INSERT TO {APP} WITH CHECK (id = {TENANT})")
    op.execute(
        f"CREATE POLICY tenant_update ON tenants FOR UPDATE TO {APP} USING (id = {TENANT}) WITH CHECK (id = {TENANT})"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON tenants TO {APP}, {ADMIN_ROLE}")

    op.execute(
        f"CREATE POLICY user_read ON users FOR SELECT TO {APP} USING (id = {USER}"
        f" OR id IN (SELECT m.user_id FROM memberships m WHERE m.tenant_id = {TENANT}))"
    )
    # Sign-up creates a user before anyone is signed in; the row must name itself as the actor.
    op.execute(f"CREATE POLICY user_insert ON users FOR INSERT TO {APP} WITH CHECK (id = {USER})")
    op.execute(
        f"CREATE POLICY user_update ON users FOR UPDATE TO {APP} USING (id = {USER}) WITH CHECK (id = {USER})"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON users TO {APP}, {ADMIN_ROLE}")

    op.execute(
        f"CREATE POLICY own_sessions ON auth_sessions TO {APP} USING (user_id = {USER}) WITH CHECK (user_id = {USER})"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON auth_sessions TO {APP}, {ADMIN_ROLE}")
    # Throttling counters hold no tenant data; the app only appends and counts.
    op.execute(f"GRANT SELECT, INSERT ON login_attempts TO {APP}, {ADMIN_ROLE}")
    op.execute(f"GRANT SELECT ON jsonb_schemas TO {APP}, {ADMIN_ROLE}")
    # `/readyz` compares the database's revision with the code's head.
    op.execute(f"GRANT SELECT ON alembic_version TO {APP}, {ADMIN_ROLE}")

    # Append-only history: not even the owner may rewrite it.
    op.execute("""
        CREATE FUNCTION reject_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    for table in IMMUTABLE_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION reject_history_rewrite()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION reject_history_rewrite()"
        )

    # Dispatchers LISTEN here; NOTIFY is transactional, so they wake only for committed events.
    op.execute("""
        CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('vibethink_outbox', ''); RETURN NULL; END $$
    """)
    op.execute(
        "CREATE TRIGGER platform_events_notify AFTER INSERT ON platform_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
    )

    _definer_functions()
    _message_partitions()
    # Maintenance and trigger functions are the owner's business; nobody else may call them.
    for fn in ("ensure_message_partitions(date, integer)", "reject_history_rewrite()", "notify_outbox()"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")

    op.execute(
        "INSERT INTO jsonb_schemas (id, schema_name, version, schema, is_active, activated_at)"
        " VALUES (gen_random_uuid(), 'twin_config', 1, '"
        + json.dumps(TWIN_CONFIG_V1).replace("'", "''")
        + "'::jsonb, true, now())"
    )


def _definer(
    signature: str, returns: str, body: str, *, language: str = "sql", volatility: str = "STABLE"
) -> None:
    """A SECURITY DEFINER function owned by the BYPASSRLS definer role, callable only by the app role."""
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE {language} {volatility} SECURITY DEFINER"
        f" SET search_path = public, pg_temp AS $fn$ {body} $fn$"
    )
    op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}, {ADMIN_ROLE}")


def _definer_functions() -> None:
    op.execute(f"GRANT SELECT ON users, api_keys, tenants, memberships TO {DEFINER}")
    op.execute(f"GRANT SELECT, UPDATE ON platform_events TO {DEFINER}")

    # Sign-in looks a user up by e-mail before any tenant or user context exists.
    _definer(
        "auth_find_user(p_email text)",
        "TABLE(id uuid, password_hash text, is_active boolean)",
        "SELECT u.id, u.password_hash, u.is_active FROM users u WHERE lower(u.email) = lower(p_email)",
    )
    # An API key finds its tenant from its public handle; the caller compares the secret's hash.
    _definer(
        "auth_find_api_key(p_key_id text)",
        "TABLE(tenant_id uuid, id uuid, secret_hash text, scopes text[], expires_at timestamptz,"
        " revoked_at timestamptz, created_by uuid)",
        "SELECT k.tenant_id, k.id, k.secret_hash, k.scopes::text[], k.expires_at, k.revoked_at, k.created_by"
        " FROM api_keys k WHERE k.key_id = p_key_id",
    )
    # The outbox dispatcher works across tenants: claim, finish, retry, lag.
    _definer(
        "outbox_claim(p_worker text, p_limit integer, p_lease_seconds integer)",
        "SETOF platform_events",
        """
        UPDATE platform_events e
           SET status = 'PROCESSING', locked_by = p_worker, attempts = e.attempts + 1,
               locked_until = now() + make_interval(secs => p_lease_seconds)
          FROM (SELECT tenant_id, id FROM platform_events
                 WHERE (status = 'PENDING' AND next_attempt_at <= now())
                    OR (status = 'PROCESSING' AND locked_until < now())
                 ORDER BY next_attempt_at
                 LIMIT p_limit
                 FOR UPDATE SKIP LOCKED) due
         WHERE e.tenant_id = due.tenant_id AND e.id = due.id
        RETURNING e.*
        """,
        volatility="VOLATILE",
    )
    _definer(
        "outbox_finish(p_tenant uuid, p_id uuid, p_worker text)",
        "boolean",
        """
        WITH done AS (
          UPDATE platform_events SET status = 'DONE', processed_at = now(), locked_by = NULL,
                 locked_until = NULL, last_error = NULL
           WHERE tenant_id = p_tenant AND id = p_id AND locked_by = p_worker RETURNING 1)
        SELECT EXISTS (SELECT 1 FROM done)
        """,
        volatility="VOLATILE",
    )
    _definer(
        "outbox_retry(p_tenant uuid, p_id uuid, p_worker text, p_error text, p_delay_seconds double precision,"
        " p_max_attempts integer)",
        "boolean",
        """
        WITH retried AS (
          UPDATE platform_events
             SET status = CASE WHEN attempts >= p_max_attempts THEN 'DEAD'::event_status
                               ELSE 'PENDING'::event_status END,
                 next_attempt_at = now() + make_interval(secs => p_delay_seconds),
                 locked_by = NULL, locked_until = NULL, last_error = left(p_error, 2000)
           WHERE tenant_id = p_tenant AND id = p_id AND locked_by = p_worker RETURNING 1)
        SELECT EXISTS (SELECT 1 FROM retried)
        """,
        volatility="VOLATILE",
    )
    _definer(
        "outbox_stats()",
        "TABLE(pending bigint, dead bigint, oldest_pending_seconds double precision)",
        """
        SELECT count(*) FILTER (WHERE status IN ('PENDING', 'PROCESSING')),
               count(*) FILTER (WHERE status = 'DEAD'),
               coalesce(extract(epoch FROM now() - min(occurred_at)
                        FILTER (WHERE status IN ('PENDING', 'PROCESSING'))), 0)::double precision
          FROM platform_events WHERE status <> 'DONE'
        """,
    )


def _message_partitions() -> None:
    # A default partition catches rows if the monthly job ever falls behind; it should stay empty.
    op.execute("CREATE TABLE messages_default PARTITION OF messages DEFAULT")
    op.execute("""
        CREATE FUNCTION ensure_message_partitions(p_from date, p_months integer) RETURNS integer
        LANGUAGE plpgsql AS $$
        DECLARE
          month_start date := date_trunc('month', p_from)::date;
          created integer := 0;
          part text;
        BEGIN
          FOR i IN 0 .. p_months - 1 LOOP
            part := format('messages_y%sm%s', to_char(month_start, 'YYYY'), to_char(month_start, 'MM'));
            IF to_regclass(part) IS NULL THEN
              EXECUTE format('CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%L) TO (%L)',
                             part, month_start, (month_start + interval '1 month')::date);
              created := created + 1;
            END IF;
            month_start := (month_start + interval '1 month')::date;
          END LOOP;
          RETURN created;
        END $$
    """)
    op.execute(
        "SELECT ensure_message_partitions((date_trunc('month', now()) - interval '1 month')::date, 14)"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS ensure_message_partitions(date, integer)")
    op.execute(
        "DO $$ DECLARE r record; BEGIN"
        " FOR r IN SELECT inhrelid::regclass AS part FROM pg_inherits WHERE inhparent = 'messages'::regclass"
        " LOOP EXECUTE format('DROP TABLE %s', r.part); END LOOP; END $$"
    )
    for fn in (
        "outbox_stats()",
        "outbox_retry(uuid, uuid, text, text, double precision, integer)",
        "outbox_finish(uuid, uuid, text)",
        "outbox_claim(text, integer, integer)",
        "auth_find_api_key(text)",
        "auth_find_user(text)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    for table in IMMUTABLE_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute("DROP FUNCTION IF EXISTS reject_history_rewrite()")
    op.execute("DROP TRIGGER IF EXISTS platform_events_notify ON platform_events")
    op.execute("DROP FUNCTION IF EXISTS notify_outbox()")
    op.execute("DELETE FROM jsonb_schemas")
    tables = (
        *MUTABLE_TENANT_TABLES,
        *APPEND_ONLY_TENANT_TABLES,
        "tenants",
        "users",
        "auth_sessions",
    )
    for table in tables:
        op.execute(
            f"DO $$ DECLARE p record; BEGIN FOR p IN SELECT policyname FROM pg_policies"
            f" WHERE tablename = '{table}' LOOP EXECUTE format('DROP POLICY %I ON {table}', p.policyname);"
            f" END LOOP; END $$"
        )
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in (*tables, "login_attempts", "jsonb_schemas", "alembic_version"):
        op.execute(f"REVOKE ALL ON {table} FROM {APP}, {ADMIN_ROLE}")
    op.execute(f"REVOKE ALL ON users, api_keys, tenants, memberships, platform_events FROM {DEFINER}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP}, {DEFINER}, {ADMIN_ROLE}")
    # Roles and their memberships are cluster-wide and shared by every database on the server:
    # they stay, so downgrading one database never breaks another.
