"""The hot SECURITY DEFINER functions in PL/pgSQL, so their statements are planned once per session.

PostgreSQL plans the statement of a SQL-language function on every call unless it can inline it,
and it never inlines a SECURITY DEFINER function. PL/pgSQL keeps the plans of its statements for
the session. Three such functions run many times a second: the API-key lookup (every request made
with a key), and the outbox's claim and batch finish (every claim, every tenant's share). In a loop
of 3,000 calls the batch finish cost 235 µs a call as SQL and 80 µs as PL/pgSQL.

Same signatures, results, owner (the definer role) and grants: CREATE OR REPLACE keeps owner and
grants, and the attributes are restated. `#variable_conflict use_column`: a RETURNS TABLE column
that shares a table column's name means the table's.

Revision ID: 0018_hot_definers_plpgsql
Revises: 0017_knowledge_search_sizes
Create Date: 2026-11-26 11:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_hot_definers_plpgsql"
down_revision: str | None = "0017_knowledge_search_sizes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_KEY = (
    "auth_find_api_key(p_key_id text)",
    "TABLE(tenant_id uuid, id uuid, secret_hash text, scopes text[], expires_at timestamptz,"
    " revoked_at timestamptz, created_by uuid)",
    "STABLE",
    "SELECT k.tenant_id, k.id, k.secret_hash::text, k.scopes::text[], k.expires_at, k.revoked_at, k.created_by"
    " FROM api_keys k WHERE k.key_id = p_key_id",
)
CLAIM = (
    "outbox_claim(p_worker text, p_limit integer, p_lease_seconds integer)",
    "SETOF platform_events",
    "VOLATILE",
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
)
FINISH_MANY = (
    "outbox_finish_many(p_worker text, p_tenants uuid[], p_ids uuid[])",
    "SETOF uuid",
    "VOLATILE",
    " UPDATE platform_events e"
    "    SET status = 'DONE', processed_at = clock_timestamp(), locked_by = NULL,"
    "        locked_until = NULL, last_error = NULL"
    "   FROM unnest(p_tenants, p_ids) AS done(tenant_id, id)"
    "  WHERE e.tenant_id = done.tenant_id AND e.id = done.id AND e.locked_by = p_worker"
    " RETURNING e.id",
)
FUNCTIONS = (API_KEY, CLAIM, FINISH_MANY)


def _create(signature: str, returns: str, volatility: str, body: str) -> None:
    op.execute(
        f"CREATE OR REPLACE FUNCTION {signature} RETURNS {returns} LANGUAGE plpgsql {volatility}"
        " SECURITY DEFINER SET search_path = public, pg_temp AS $fn$"
        " #variable_conflict use_column\n"
        f" BEGIN RETURN QUERY WITH result AS ({body}) SELECT * FROM result; END $fn$"
    )


def _restore(signature: str, returns: str, volatility: str, body: str) -> None:
    op.execute(
        f"CREATE OR REPLACE FUNCTION {signature} RETURNS {returns} LANGUAGE sql {volatility}"
        f" SECURITY DEFINER SET search_path = public, pg_temp AS $fn$ {body} $fn$"
    )


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    for function in FUNCTIONS:
        _create(*function)


def downgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    for function in FUNCTIONS:
        _restore(*function)
