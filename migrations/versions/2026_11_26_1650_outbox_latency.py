"""Evidence for many tenants in one transaction: one call reads every tenant's state and person keys,
one locks and reads every tenant's ledger head, one inserts every tenant's rows.

A claim of outbox events spans several tenants with a few events each; handled as one transaction per
tenant, each share paid its own BEGIN, lock-and-read, insert and COMMIT (four round trips, ~2 ms of the
worker's CPU and ~2 ms of PostgreSQL's on two cores) for two or three events. These functions let one
transaction carry the whole claim.

All three are SECURITY INVOKER: they run as the caller, under the caller's policies. For each tenant they
set the transaction's tenant setting (`app.tenant_id`, as `SET LOCAL` would: the caller may already
act as any tenant it names, one at a time) and then read or insert under that tenant's policies
exactly as a single-tenant transaction does: the ledger's FORCE RLS with its tenant check on insert,
its grants (SELECT, INSERT) and its triggers stay as they are. At the end the caller's own setting is
restored.

`compliance_lock_heads` takes the tenants' ledger locks in one fixed order (by tenant id), so two
transactions that each lock several tenants cannot deadlock; each read after a lock is a new
statement with a new snapshot: it sees everything committed before the lock was granted.

Revision ID: 0023_outbox_latency
Revises: 0022_vector_search_ef
Create Date: 2026-11-26 16:50:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_outbox_latency"
down_revision: str | None = "0022_vector_search_ef"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
ADMIN_ROLE = "vibethink_admin"
STATES_MANY = "compliance_states_many(p_tenants uuid[], p_person_tenants uuid[], p_person_hashes text[])"
LOCK_HEADS = "compliance_lock_heads(p_tenants uuid[], p_event_tenants uuid[], p_event_ids uuid[])"
INSERT_MANY = "compliance_insert_many(p_tenants uuid[], p_rows text[])"

# Per tenant: the keys of the given people that exist, and its compliance state (`compliance/state.py`'s
# STATE_SQL, the same columns).
STATES_BODY = """
DECLARE
  t uuid;
  original text := current_setting('app.tenant_id', true);
BEGIN
  FOR t IN SELECT DISTINCT u.id FROM unnest(p_tenants) AS u(id) ORDER BY u.id LOOP
    PERFORM set_config('app.tenant_id', t::text, true);
    tenant_id := t;
    SELECT coalesce(array_agg(k.person_hash::text), '{}'), coalesce(array_agg(k.secret), '{}')
      INTO key_hashes, key_secrets
      FROM compliance_person_keys k
     WHERE k.tenant_id = t
       AND k.person_hash = ANY (ARRAY(SELECT w.wh FROM unnest(p_person_tenants, p_person_hashes) AS w(wt, wh)
                                       WHERE w.wt = t));
    SELECT to_jsonb(st) INTO state FROM (
      SELECT tn.tier::text AS tier, s.version, s.enabled_frameworks, s.enabled_at, s.auto_generation,
             s.signing_enabled, s.retention_years, s.report_frequency, s.report_recipients, s.created_at,
             (SELECT coalesce(jsonb_agg(jsonb_build_object('code', f.code, 'name', f.name,
                      'description', f.description, 'requirements', f.requirements) ORDER BY f.code), '[]')
                FROM compliance_custom_frameworks f WHERE f.tenant_id = tn.id) AS custom
        FROM tenants tn
        LEFT JOIN LATERAL (
          SELECT * FROM compliance_settings cs WHERE cs.tenant_id = tn.id ORDER BY cs.version DESC LIMIT 1
        ) s ON true
       WHERE tn.id = t) st;
    RETURN NEXT;
  END LOOP;
  PERFORM set_config('app.tenant_id', coalesce(original, ''), true);
END
"""

# Per tenant, after its lock: its ledger's head and the (event, control) pairs of the given events
# already recorded (`compliance_lock_head`, for many tenants).
LOCK_BODY = """
DECLARE
  t uuid;
  original text := current_setting('app.tenant_id', true);
BEGIN
  FOR t IN SELECT DISTINCT u.id FROM unnest(p_tenants) AS u(id) ORDER BY u.id LOOP
    PERFORM set_config('app.tenant_id', t::text, true);
    PERFORM pg_advisory_xact_lock(hashtextextended('compliance:' || t::text, 0));
    tenant_id := t;
    head_seq := NULL;
    head_hash := NULL;
    SELECT e.seq, e.entry_hash::text INTO head_seq, head_hash FROM compliance_evidence e
     WHERE e.tenant_id = t ORDER BY e.seq DESC LIMIT 1;
    SELECT array_agg(e.event_id), array_agg(e.control_id::text) INTO seen_events, seen_controls
      FROM compliance_evidence e
     WHERE e.tenant_id = t
       AND e.event_id = ANY (ARRAY(SELECT w.wid FROM unnest(p_event_tenants, p_event_ids) AS w(wt, wid)
                                   WHERE w.wt = t));
    RETURN NEXT;
  END LOOP;
  PERFORM set_config('app.tenant_id', coalesce(original, ''), true);
END
"""

# `p_rows[i]`: tenant `p_tenants[i]`'s rows as a JSON array of {d: signed document, h: entry hash,
# s: signature}; the columns are read out of the documents (what `ledger._INSERT` does for one tenant).
INSERT_BODY = """
DECLARE
  i integer;
  inserted integer;
  total integer := 0;
  original text := current_setting('app.tenant_id', true);
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_tenants, 1), 0) LOOP
    PERFORM set_config('app.tenant_id', p_tenants[i]::text, true);
    INSERT INTO compliance_evidence (tenant_id, seq, prev_seq, event_id, event_type, source, event_hash,
           control_id, rule_id, rule_version, kind, outcome, occurred_at, period_start, period_end,
           recorded_at, observation, artifacts, prev_hash, entry_hash, key_id, signature)
    SELECT p_tenants[i], q.seq, NULLIF(q.seq - 1, 0), (x.d ->> 'event_id')::uuid, x.d ->> 'event_type',
           x.d ->> 'source', x.d ->> 'event_hash', x.d ->> 'control_id', x.d -> 'rule' ->> 'id',
           (x.d -> 'rule' ->> 'version')::int, x.d ->> 'kind', x.d ->> 'outcome',
           (x.d ->> 'occurred_at')::timestamptz, (x.d -> 'period' ->> 'start')::timestamptz,
           (x.d -> 'period' ->> 'end')::timestamptz, (x.d ->> 'recorded_at')::timestamptz,
           x.d -> 'observation', x.d -> 'artifacts', x.d ->> 'prev_hash', x.h, x.d ->> 'key_id', x.s
      FROM jsonb_to_recordset(p_rows[i]::jsonb) AS x(d jsonb, h text, s text),
           LATERAL (SELECT (x.d ->> 'seq')::bigint AS seq) q;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    total := total + inserted;
  END LOOP;
  PERFORM set_config('app.tenant_id', coalesce(original, ''), true);
  RETURN total;
END
"""


def _create(signature: str, returns: str, body: str) -> None:
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE plpgsql VOLATILE"
        f" SET search_path = public, pg_temp AS $fn$ #variable_conflict use_column\n{body} $fn$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}, {ADMIN_ROLE}")


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _create(
        STATES_MANY,
        "TABLE(tenant_id uuid, key_hashes text[], key_secrets bytea[], state jsonb)",
        STATES_BODY,
    )
    _create(
        LOCK_HEADS,
        "TABLE(tenant_id uuid, head_seq bigint, head_hash text, seen_events uuid[], seen_controls text[])",
        LOCK_BODY,
    )
    _create(INSERT_MANY, "integer", INSERT_BODY)


def downgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    op.execute("DROP FUNCTION IF EXISTS compliance_insert_many(uuid[], text[])")
    op.execute("DROP FUNCTION IF EXISTS compliance_lock_heads(uuid[], uuid[], uuid[])")
    op.execute("DROP FUNCTION IF EXISTS compliance_states_many(uuid[], uuid[], text[])")
