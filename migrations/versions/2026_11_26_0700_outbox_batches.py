"""Outbox batches: one call finishes many events, at the moment their consumers' work is done;
the evidence writer takes its lock and reads its chain's head in one call.

A consumer that takes a tenant's events as a batch finishes them inside its own transaction, so an
event becomes DONE exactly when the work it caused commits; `processed_at` is that moment
(`clock_timestamp()`, not the transaction's start), which makes `processed_at - occurred_at` the
event's delivery latency.

`compliance_lock_head` takes the tenant's ledger lock, then reads the chain's head and which
(event, control) pairs exist: a VOLATILE function's queries each take a new snapshot, so the read
sees everything committed before the lock was granted, as a separate statement would.

Revision ID: 0016_outbox_batches
Revises: 0014_evidence_retention
Create Date: 2026-11-26 07:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_outbox_batches"
down_revision: str | None = "0014_evidence_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
ADMIN_ROLE = "vibethink_admin"
DEFINER = "vibethink_definer"
FINISH_MANY = "outbox_finish_many(p_worker text, p_tenants uuid[], p_ids uuid[])"
LOCK_HEAD = "compliance_lock_head(p_tenant uuid, p_event_ids uuid[])"


def upgrade() -> None:
    op.execute(
        f"CREATE FUNCTION {FINISH_MANY} RETURNS SETOF uuid LANGUAGE sql VOLATILE SECURITY DEFINER"
        " SET search_path = public, pg_temp AS $fn$"
        " UPDATE platform_events e"
        "    SET status = 'DONE', processed_at = clock_timestamp(), locked_by = NULL,"
        "        locked_until = NULL, last_error = NULL"
        "   FROM unnest(p_tenants, p_ids) AS done(tenant_id, id)"
        "  WHERE e.tenant_id = done.tenant_id AND e.id = done.id AND e.locked_by = p_worker"
        " RETURNING e.id"
        " $fn$"
    )
    op.execute(f"ALTER FUNCTION {FINISH_MANY} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {FINISH_MANY} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {FINISH_MANY} TO {APP}, {ADMIN_ROLE}")

    # SECURITY INVOKER: the caller's RLS context applies to both reads.
    op.execute(
        f"CREATE FUNCTION {LOCK_HEAD}"
        " RETURNS TABLE(seq bigint, entry_hash text, event_id uuid, control_id text)"
        " LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $fn$"
        " BEGIN"
        "   PERFORM pg_advisory_xact_lock(hashtextextended('compliance:' || p_tenant::text, 0));"
        "   RETURN QUERY"
        "     (SELECT e.seq, e.entry_hash::text, NULL::uuid, NULL::text FROM compliance_evidence e"
        "       WHERE e.tenant_id = p_tenant ORDER BY e.seq DESC LIMIT 1)"
        "     UNION ALL"
        "     SELECT NULL::bigint, NULL::text, e.event_id, e.control_id::text FROM compliance_evidence e"
        "      WHERE e.tenant_id = p_tenant AND e.event_id = ANY(p_event_ids);"
        " END"
        " $fn$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {LOCK_HEAD} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {LOCK_HEAD} TO {APP}, {ADMIN_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS compliance_lock_head(uuid, uuid[])")
    op.execute("DROP FUNCTION IF EXISTS outbox_finish_many(text, uuid[], uuid[])")
