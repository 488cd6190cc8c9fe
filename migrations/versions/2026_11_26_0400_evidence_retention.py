"""Compliance evidence retention: a signed pruning removes expired content, the chain stays whole.

Expired evidence keeps its sequence number, chain link, entry hash, key id and signature (what the
chain and the Merkle tree need) and loses everything else; a pruning row, signed by the platform,
names the ranges it covers. Only `compliance_prune_evidence` (owned by the definer role) may do it:
the append-only trigger of the ledger lets through exactly that update and nothing else.

Revision ID: 0014_evidence_retention
Revises: 0013_conversation_hot
Create Date: 2026-11-26 04:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_evidence_retention"
down_revision: str | None = "0013_conversation_hot"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
ADMIN_ROLE = "vibethink_admin"
DEFINER = "vibethink_definer"
TENANT = "(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)"
# The columns a pruning empties; everything else of a row is what the chain and the tree need.
CONTENT = (
    ("event_id", sa.UUID()),
    ("event_type", sa.String(length=80)),
    ("source", sa.String(length=16)),
    ("event_hash", sa.String(length=64)),
    ("control_id", sa.String(length=40)),
    ("rule_id", sa.String(length=80)),
    ("rule_version", sa.Integer()),
    ("kind", sa.String(length=12)),
    ("outcome", sa.String(length=8)),
    ("occurred_at", sa.DateTime(timezone=True)),
    ("period_start", sa.DateTime(timezone=True)),
    ("period_end", sa.DateTime(timezone=True)),
    ("recorded_at", sa.DateTime(timezone=True)),
    ("observation", postgresql.JSONB(astext_type=sa.Text())),
    ("artifacts", postgresql.JSONB(astext_type=sa.Text())),
)
COLUMNS = ", ".join(name for name, _ in CONTENT)
RETENTION_YEARS = "compliance_retention_years(uuid)"
PRUNE = "compliance_prune_evidence(p_document jsonb, p_key_id text, p_signature text)"
PRUNE_TYPES = "compliance_prune_evidence(jsonb, text, text)"
DUE = "compliance_retention_due()"
GUARDS = ("compliance_evidence_guard()", "compliance_evidence_notes_guard()")


def _definer(signature: str, returns: str, body: str, *, language: str, volatility: str) -> None:
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE {language} {volatility} SECURITY DEFINER"
        f" SET search_path = public, pg_temp AS $fn$ {body} $fn$"
    )
    op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}, {ADMIN_ROLE}")


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    op.create_table(
        "compliance_prunings",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retention_years", sa.Integer(), nullable=False),
        sa.Column("ranges", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("entries_sha256", sa.String(length=64), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("signature", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_compliance_prunings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "number", name=op.f("pk_compliance_prunings")),
    )
    # FORCE, so the table owner is filtered too: a migration bug must not bypass isolation.
    op.execute("ALTER TABLE compliance_prunings ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE compliance_prunings FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON compliance_prunings TO {APP}"
        f" USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT})"
    )
    op.execute(
        f"CREATE POLICY admin_context ON compliance_prunings TO {ADMIN_ROLE} USING (true) WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT, INSERT ON compliance_prunings TO {APP}, {ADMIN_ROLE}")
    for trigger, when, level in (
        ("append_only", "UPDATE OR DELETE", "ROW"),
        ("no_truncate", "TRUNCATE", "STATEMENT"),
    ):
        op.execute(
            f"CREATE TRIGGER compliance_prunings_{trigger} BEFORE {when} ON compliance_prunings"
            f" FOR EACH {level} EXECUTE FUNCTION reject_history_rewrite()"
        )

    op.add_column("compliance_evidence", sa.Column("pruned_in", sa.Integer(), nullable=True))
    for name, kind in CONTENT:
        op.alter_column("compliance_evidence", name, existing_type=kind, nullable=True)
    # A row is whole, or a pruned stub with nothing but its place in the chain.
    op.create_check_constraint(
        op.f("ck_compliance_evidence_whole_or_pruned"),
        "compliance_evidence",
        f"(pruned_in IS NULL AND num_nulls({COLUMNS}) = 0)"
        f" OR (pruned_in IS NOT NULL AND num_nonnulls({COLUMNS}) = 0)",
    )
    op.create_index(
        "ix_compliance_evidence_unpruned",
        "compliance_evidence",
        ["tenant_id", "recorded_at"],
        unique=False,
        postgresql_where=sa.text("pruned_in IS NULL"),
    )

    # The ledger's append-only trigger, with one exception: the pruning function's update of a row
    # a pruning covers into its stub. Inside that SECURITY DEFINER function current_user is the definer.
    op.execute(f"""
        CREATE FUNCTION compliance_evidence_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND current_user = '{DEFINER}'
             AND OLD.pruned_in IS NULL AND NEW.pruned_in IS NOT NULL
             AND NEW.tenant_id = OLD.tenant_id AND NEW.seq = OLD.seq
             AND NEW.prev_seq IS NOT DISTINCT FROM OLD.prev_seq
             AND NEW.prev_hash = OLD.prev_hash AND NEW.entry_hash = OLD.entry_hash
             AND NEW.key_id IS NOT DISTINCT FROM OLD.key_id
             AND NEW.signature IS NOT DISTINCT FROM OLD.signature
             AND num_nonnulls({", ".join(f"NEW.{name}" for name, _ in CONTENT)}) = 0
             AND EXISTS (SELECT 1 FROM compliance_prunings p, jsonb_array_elements(p.ranges) r
                          WHERE p.tenant_id = NEW.tenant_id AND p.number = NEW.pruned_in
                            AND NEW.seq BETWEEN (r->>0)::bigint AND (r->>1)::bigint)
          THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    # Reviewer notes follow their evidence: the pruning function removes the notes of pruned rows.
    op.execute(f"""
        CREATE FUNCTION compliance_evidence_notes_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' AND current_user = '{DEFINER}'
             AND EXISTS (SELECT 1 FROM compliance_evidence e WHERE e.tenant_id = OLD.tenant_id
                          AND e.seq = OLD.evidence_seq AND e.pruned_in IS NOT NULL)
          THEN
            RETURN OLD;
          END IF;
          RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    for guard in GUARDS:
        op.execute(f"REVOKE ALL ON FUNCTION {guard} FROM PUBLIC")
    for table, guard in zip(("compliance_evidence", "compliance_evidence_notes"), GUARDS, strict=True):
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION {guard}"
        )

    op.execute(f"GRANT SELECT, UPDATE ON compliance_evidence TO {DEFINER}")
    op.execute(f"GRANT SELECT, DELETE ON compliance_evidence_notes TO {DEFINER}")
    op.execute(f"GRANT SELECT, INSERT ON compliance_prunings TO {DEFINER}")
    # A tenant's retention: its saved setting capped by its plan (compliance/plans.py: 1 / 3 / 7 years).
    op.execute(
        f"CREATE FUNCTION {RETENTION_YEARS} RETURNS integer LANGUAGE sql STABLE"
        " SET search_path = public, pg_temp AS $fn$"
        " SELECT least(coalesce((SELECT s.retention_years FROM compliance_settings s"
        "                         WHERE s.tenant_id = t.id ORDER BY s.version DESC LIMIT 1), c.cap), c.cap)"
        "   FROM tenants t"
        "  CROSS JOIN LATERAL (SELECT CASE t.tier::text WHEN 'FREE' THEN 1 WHEN 'PROFESSIONAL' THEN 3"
        "                                              WHEN 'ENTERPRISE' THEN 7 END AS cap) c"
        "  WHERE t.id = $1"
        " $fn$"
    )
    op.execute(f"ALTER FUNCTION {RETENTION_YEARS} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {RETENTION_YEARS} FROM PUBLIC")

    # The only path that removes evidence content. It re-derives everything the signed document claims
    # (tenant, retention, cutoff, the rows, their hashes) and refuses anything that is not expired.
    _definer(
        PRUNE,
        "TABLE(pruned_records bigint, removed_notes bigint)",
        f"""
        DECLARE
          v_tenant uuid := nullif(current_setting('app.tenant_id', true), '')::uuid;
          v_number integer := (p_document->>'number')::integer;
          v_cutoff timestamptz := (p_document->>'cutoff')::timestamptz;
          v_years integer := (p_document->>'retention_years')::integer;
          v_records bigint := (p_document->>'records')::bigint;
          v_found bigint;
          v_distinct bigint;
          v_expired bigint;
          v_hash text;
          v_notes bigint;
        BEGIN
          IF v_tenant IS NULL OR (p_document->>'tenant_id')::uuid IS DISTINCT FROM v_tenant THEN
            RAISE EXCEPTION 'a pruning must name the tenant of its transaction'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          IF p_document->>'type' IS DISTINCT FROM 'vibethink.compliance.pruning/v1'
             OR p_document->>'key_id' IS DISTINCT FROM p_key_id
             OR (p_key_id IS NULL) <> (p_signature IS NULL)
             OR coalesce(v_records, 0) < 1 THEN
            RAISE EXCEPTION 'not a pruning document' USING ERRCODE = 'invalid_parameter_value';
          END IF;
          IF v_years IS DISTINCT FROM compliance_retention_years(v_tenant) THEN
            RAISE EXCEPTION 'the tenant keeps evidence for % years, not %',
              compliance_retention_years(v_tenant), v_years USING ERRCODE = 'invalid_parameter_value';
          END IF;
          IF v_cutoff IS NULL OR v_cutoff > now() - make_interval(years => v_years)
             OR (p_document->>'pruned_at')::timestamptz IS DISTINCT FROM now() THEN
            RAISE EXCEPTION 'the cutoff must be the retention before now' USING ERRCODE = 'invalid_parameter_value';
          END IF;
          IF v_number IS DISTINCT FROM (SELECT coalesce(max(p.number), 0) + 1 FROM compliance_prunings p
                                         WHERE p.tenant_id = v_tenant)
             OR (p_document->>'tree_size')::bigint IS DISTINCT FROM (
                  SELECT coalesce(max(e.seq), 0) FROM compliance_evidence e WHERE e.tenant_id = v_tenant) THEN
            RAISE EXCEPTION 'the pruning number or tree size is stale' USING ERRCODE = 'serialization_failure';
          END IF;
          SELECT count(*), count(DISTINCT e.seq),
                 count(*) FILTER (WHERE e.pruned_in IS NULL
                                    AND greatest(e.occurred_at, e.period_end, e.recorded_at) < v_cutoff),
                 encode(sha256(string_agg(decode(e.entry_hash, 'hex'), ''::bytea ORDER BY e.seq)), 'hex')
            INTO v_found, v_distinct, v_expired, v_hash
            FROM jsonb_array_elements(p_document->'ranges') r
            JOIN compliance_evidence e
              ON e.tenant_id = v_tenant AND e.seq BETWEEN (r->>0)::bigint AND (r->>1)::bigint;
          IF v_found <> v_records OR v_distinct <> v_records OR v_expired <> v_records
             OR v_hash IS DISTINCT FROM p_document->>'entries_sha256' THEN
            RAISE EXCEPTION 'the pruning does not name exactly expired, unpruned evidence'
              USING ERRCODE = 'invalid_parameter_value';
          END IF;
          INSERT INTO compliance_prunings (tenant_id, number, pruned_at, cutoff, retention_years, ranges,
                                           records, entries_sha256, tree_size, key_id, signature)
          VALUES (v_tenant, v_number, now(), v_cutoff, v_years, p_document->'ranges', v_records, v_hash,
                  (p_document->>'tree_size')::bigint, p_key_id, p_signature);
          UPDATE compliance_evidence e
             SET pruned_in = v_number, {", ".join(f"{name} = NULL" for name, _ in CONTENT)}
            FROM jsonb_array_elements(p_document->'ranges') r
           WHERE e.tenant_id = v_tenant AND e.seq BETWEEN (r->>0)::bigint AND (r->>1)::bigint;
          DELETE FROM compliance_evidence_notes n
           USING jsonb_array_elements(p_document->'ranges') r
           WHERE n.tenant_id = v_tenant AND n.evidence_seq BETWEEN (r->>0)::bigint AND (r->>1)::bigint;
          GET DIAGNOSTICS v_notes = ROW_COUNT;
          RETURN QUERY SELECT v_records, v_notes;
        END
        """,
        language="plpgsql",
        volatility="VOLATILE",
    )
    # The periodic purge works across tenants: it learns only whose oldest live evidence has expired.
    _definer(
        DUE,
        "TABLE(tenant_id uuid, retention_years integer, oldest_recorded_at timestamptz)",
        """
        SELECT t.id, y.years, o.recorded_at
          FROM tenants t
         CROSS JOIN LATERAL (SELECT compliance_retention_years(t.id) AS years) y
          JOIN LATERAL (SELECT e.recorded_at FROM compliance_evidence e
                         WHERE e.tenant_id = t.id AND e.pruned_in IS NULL
                         ORDER BY e.recorded_at LIMIT 1) o ON true
         WHERE o.recorded_at < now() - make_interval(years => y.years)
        """,
        language="sql",
        volatility="STABLE",
    )


def downgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    op.execute(f"DROP FUNCTION {DUE}")
    op.execute(f"DROP FUNCTION {PRUNE_TYPES}")
    op.execute(f"DROP FUNCTION {RETENTION_YEARS}")
    op.execute(f"REVOKE SELECT, UPDATE ON compliance_evidence FROM {DEFINER}")
    op.execute(f"REVOKE SELECT, DELETE ON compliance_evidence_notes FROM {DEFINER}")
    for table in ("compliance_evidence", "compliance_evidence_notes"):
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION reject_history_rewrite()"
        )
    for guard in GUARDS:
        op.execute(f"DROP FUNCTION {guard}")
    op.drop_index("ix_compliance_evidence_unpruned", table_name="compliance_evidence")
    op.drop_constraint(op.f("ck_compliance_evidence_whole_or_pruned"), "compliance_evidence", type_="check")
    # Fails while pruned stubs exist: their content is gone for good and cannot be made whole again.
    for name, kind in CONTENT:
        op.alter_column("compliance_evidence", name, existing_type=kind, nullable=False)
    op.drop_column("compliance_evidence", "pruned_in")
    op.drop_table("compliance_prunings")
