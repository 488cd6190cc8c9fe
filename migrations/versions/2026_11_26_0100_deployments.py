"""Deployments: widget keys, allowed origins, identity verification, custom domains, schedules,
campaign requests from brands, conversions, public resolvers and change notifications.

Revision ID: 0007_deployments
Revises: 0011_search_big_twins
Create Date: 2026-11-26 01:00:00+00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_deployments"
down_revision: str | None = "0011_search_big_twins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
DEFINER = "vibethink_definer"
ADMIN_ROLE = "vibethink_admin"
TENANT = "(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)"
CHANNEL = "vibethink_deployments"

COLOUR = {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}
# Absolute http(s) URLs or same-site paths; nothing that could run script or escape an attribute.
URL = {"type": "string", "maxLength": 2000, "pattern": "^(https?://|/)[^\\s\"'<>]*$"}
LABELS = {"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 300}}
DEPLOYMENT_CONFIG_V1 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "deployment_config v1",
    "description": "A deployment's look, behaviour on top of the twin, premium content and sponsor context.",
    "type": "object",
    "properties": {
        "portalUrl": {"type": "string", "maxLength": 300},
        "theme": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["light", "dark"]},
                "primaryColor": COLOUR,
                "accentColor": COLOUR,
                "backgroundColor": COLOUR,
                "textColor": COLOUR,
                "fontFamily": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9 ,'-]*$"},
                "position": {"enum": ["bottom-right", "bottom-left", "top-right", "top-left"]},
            },
        },
        "branding": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string", "maxLength": 200},
                "tagline": {"type": "string", "maxLength": 300},
                "greeting": {"type": "string", "maxLength": 500},
                "logoUrl": URL,
                "heroImageUrl": URL,
                "hidePlatformMarks": {"type": "boolean"},
            },
        },
        "overrides": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "extraInstructions": {"type": "string", "maxLength": 4000},
                "greeting": {"type": "string", "maxLength": 500},
                "tone": {"type": "string", "maxLength": 200},
            },
        },
        "premiumContent": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["title", "body", "tier"],
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "teaser": {"type": "string", "maxLength": 500},
                    "body": {"type": "string", "minLength": 1, "maxLength": 20000},
                    "tier": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                },
            },
        },
        "brandId": {"type": "string", "maxLength": 64},
        "brandName": {"type": "string", "maxLength": 200},
        "campaignId": {"type": "string", "maxLength": 64},
        "guidelines": LABELS,
        "competitors": LABELS,
        "themes": LABELS,
        "disclosure": {"type": "string", "maxLength": 300},
    },
}

RESOLVED = (
    "TABLE(tenant_id uuid, deployment_id uuid, celebrity_id uuid, celebrity_slug text, celebrity_name text,"
    " celebrity_bio text, celebrity_status entity_status, twin_config jsonb, type deployment_type,"
    " status deployment_status, name text, config jsonb, starts_at timestamptz, ends_at timestamptz,"
    " allowed_origins text[], require_identity boolean, identity_salt text, widget_key text,"
    " custom_domain text, domain_verified boolean, domain_token text, slug text)"
)
RESOLVED_SELECT = (
    "SELECT d.tenant_id, d.id, d.celebrity_id, c.slug::text, c.name::text, c.bio, c.status, c.twin_config,"
    " d.type, d.status, d.name::text, d.config, d.starts_at, d.ends_at, d.allowed_origins::text[],"
    " d.require_identity, d.identity_salt::text, d.widget_key::text, d.custom_domain::text,"
    " d.domain_verified_at IS NOT NULL, d.domain_token::text, d.slug::text"
    " FROM deployments d JOIN celebrities c ON c.tenant_id = d.tenant_id AND c.id = d.celebrity_id"
)
# SCHEDULED whose start has come counts as ACTIVE, so a fan is never refused while the sweep is late.
EFFECTIVE_STATUS = (
    "CASE WHEN d.status = 'SCHEDULED' AND d.starts_at <= now() THEN 'ACTIVE'::deployment_status"
    " ELSE d.status END"
)
FUNCTIONS = {
    "deployment_by_slug(p_slug text)": (
        RESOLVED,
        RESOLVED_SELECT + " WHERE c.slug = p_slug AND d.type = 'VIBETHINK_PORTAL' AND d.status <> 'ARCHIVED'"
        " ORDER BY (d.status = 'ACTIVE') DESC, d.created_at, d.id LIMIT 1",
    ),
    "deployment_by_widget_key(p_key text)": (
        RESOLVED,
        RESOLVED_SELECT + " WHERE d.widget_key = p_key AND d.status <> 'ARCHIVED'",
    ),
    "deployment_by_id(p_id uuid)": (RESOLVED, RESOLVED_SELECT + " WHERE d.id = p_id"),
    "deployment_by_host(p_host text)": (
        RESOLVED,
        RESOLVED_SELECT + " WHERE d.custom_domain = p_host AND d.status <> 'ARCHIVED'",
    ),
    "deployment_by_campaign(p_slug text, p_campaign text)": (
        RESOLVED,
        RESOLVED_SELECT + " WHERE c.slug = p_slug AND d.slug = p_campaign AND d.type = 'BRAND_CAMPAIGN'"
        " AND d.status <> 'ARCHIVED'",
    ),
    # A brand names a talent by its public slug before it may see anything of that tenant.
    "campaign_find_celebrity(p_slug text)": (
        "TABLE(tenant_id uuid, celebrity_id uuid, name text, status entity_status)",
        "SELECT c.tenant_id, c.id, c.name::text, c.status FROM celebrities c WHERE c.slug = p_slug",
    ),
    # Whether a brand's request would overlap an exclusive campaign in its category: yes or no, no names.
    "campaign_window_taken(p_tenant uuid, p_celebrity uuid, p_category text, p_starts timestamptz,"
    " p_ends timestamptz, p_exclusive boolean)": (
        "boolean",
        "SELECT EXISTS (SELECT 1 FROM brand_campaigns b WHERE b.tenant_id = p_tenant"
        " AND b.celebrity_id = p_celebrity AND b.status IN ('APPROVED', 'ACTIVE')"
        " AND lower(coalesce(b.category, '')) = lower(coalesce(p_category, ''))"
        " AND (b.is_exclusive OR p_exclusive)"
        " AND b.starts_at < coalesce(p_ends, 'infinity') AND p_starts < coalesce(b.ends_at, 'infinity'))",
    ),
}
# The one change a brand may make to its request: withdraw it while the talent has not decided.
WITHDRAW = "campaign_withdraw(p_tenant uuid, p_id uuid)"
WITHDRAW_BODY = """
    WITH gone AS (
        UPDATE brand_campaigns b SET status = 'CANCELLED', updated_at = now()
         WHERE b.tenant_id = p_tenant AND b.id = p_id AND b.status = 'REQUESTED'
           AND b.brand_tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid
        RETURNING b.tenant_id, b.id, b.brand_tenant_id
    ), announced AS (
        INSERT INTO platform_events (tenant_id, id, event_type, actor_role, subject_type, subject_id, payload)
        SELECT gone.tenant_id, gen_random_uuid(), 'CAMPAIGN_WITHDRAWN', 'BRAND', 'brand_campaign', gone.id::text,
               jsonb_build_object('brand_tenant_id', gone.brand_tenant_id)
          FROM gone
    )
    SELECT count(*) > 0 FROM gone
"""
SWEEP = "deployment_advance_schedules()"
SWEEP_BODY = """
    WITH due AS (
        UPDATE deployments d
           SET status = CASE WHEN d.ends_at IS NOT NULL AND d.ends_at <= now()
                             THEN 'INACTIVE'::deployment_status ELSE 'ACTIVE'::deployment_status END,
               updated_at = now()
         WHERE (d.status = 'SCHEDULED' AND d.starts_at <= now())
            OR (d.status = 'ACTIVE' AND d.ends_at IS NOT NULL AND d.ends_at <= now())
        RETURNING d.tenant_id, d.id, d.status
    ), announced AS (
        INSERT INTO platform_events (tenant_id, id, event_type, actor_role, subject_type, subject_id, payload)
        SELECT due.tenant_id, gen_random_uuid(), 'DEPLOYMENT_STATUS_CHANGED', 'SYSTEM', 'deployment',
               due.id::text, jsonb_build_object('status', due.status, 'reason', 'schedule')
          FROM due
    )
    SELECT due.tenant_id, due.id, due.status FROM due
"""
ORIGINAL_CHAT_LOOKUP = (
    "SELECT d.tenant_id, d.id, d.celebrity_id, d.type, d.status, d.config, d.starts_at, d.ends_at,"
    " c.name, c.status, c.twin_config"
    " FROM deployments d JOIN celebrities c ON c.tenant_id = d.tenant_id AND c.id = d.celebrity_id"
    " WHERE d.id = p_id"
)
CHAT_LOOKUP_RETURNS = (
    "TABLE(tenant_id uuid, deployment_id uuid, celebrity_id uuid, type deployment_type,"
    " status deployment_status, config jsonb, starts_at timestamptz, ends_at timestamptz,"
    " celebrity_name text, celebrity_status entity_status, twin_config jsonb)"
)


def _definer(
    signature: str, returns: str, body: str, *, language: str = "sql", volatility: str = "STABLE"
) -> None:
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE {language} {volatility} SECURITY DEFINER"
        f" SET search_path = public, pg_temp AS $fn$ {body} $fn$"
    )
    op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}, {ADMIN_ROLE}")


def _chat_lookup(select: str) -> None:
    op.execute(
        f"CREATE OR REPLACE FUNCTION chat_public_deployment(p_id uuid) RETURNS {CHAT_LOOKUP_RETURNS}"
        f" LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $fn$ {select} $fn$"
    )


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    op.execute("CREATE TYPE conversion_kind AS ENUM ('SUBSCRIBE_CLICK', 'SUBSCRIBED', 'LINK_CLICK')")
    random_key = "replace(gen_random_uuid()::text, '-', '')"
    op.add_column("deployments", sa.Column("widget_key", sa.String(length=40), nullable=True))
    op.add_column("deployments", sa.Column("analytics_key", sa.String(length=40), nullable=True))
    op.execute(
        f"UPDATE deployments SET widget_key = 'vtw_' || {random_key}, analytics_key = 'vta_' || {random_key}"
    )
    op.alter_column("deployments", "widget_key", nullable=False)
    op.alter_column("deployments", "analytics_key", nullable=False)
    op.add_column(
        "deployments",
        sa.Column(
            "allowed_origins",
            postgresql.ARRAY(sa.String(length=300)),
            server_default="{}",
            nullable=False,
        ),
    )
    op.add_column("deployments", sa.Column("identity_salt", sa.String(length=64), nullable=True))
    op.add_column(
        "deployments",
        sa.Column("require_identity", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("deployments", sa.Column("slug", sa.String(length=80), nullable=True))
    op.add_column("deployments", sa.Column("domain_token", sa.String(length=64), nullable=True))
    op.add_column("deployments", sa.Column("domain_verified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("deployments", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_unique_constraint(op.f("uq_deployments_widget_key"), "deployments", ["widget_key"])
    op.create_index(
        "uq_deployments_analytics_key", "deployments", ["tenant_id", "analytics_key"], unique=True
    )
    op.create_index(
        "uq_deployments_celebrity_slug",
        "deployments",
        ["tenant_id", "celebrity_id", "slug"],
        unique=True,
        postgresql_where=sa.text("slug IS NOT NULL"),
    )
    op.create_index("ix_deployments_tenant_created", "deployments", ["tenant_id", "created_at", "id"])

    op.add_column(
        "brand_campaigns", sa.Column("brand_name", sa.String(length=200), server_default="", nullable=False)
    )
    op.add_column(
        "brand_campaigns", sa.Column("slug", sa.String(length=80), server_default="", nullable=False)
    )
    op.add_column("brand_campaigns", sa.Column("requested_by", sa.UUID(), nullable=True))
    op.add_column("brand_campaigns", sa.Column("decided_by", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_brand_campaigns_tenant_id_deployment_id_deployments"),
        "brand_campaigns",
        "deployments",
        ["tenant_id", "deployment_id"],
        ["tenant_id", "id"],
    )

    op.create_table(
        "deployment_conversions",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("deployment_id", sa.UUID(), nullable=False),
        sa.Column("fan_key", sa.String(length=80), nullable=False),
        sa.Column(
            "kind",
            postgresql.ENUM(
                "SUBSCRIBE_CLICK", "SUBSCRIBED", "LINK_CLICK", name="conversion_kind", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("detail", sa.String(length=200), server_default="", nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "deployment_id"],
            ["deployments.tenant_id", "deployments.id"],
            name=op.f("fk_deployment_conversions_tenant_id_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_deployment_conversions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_deployment_conversions")),
    )
    op.create_index(
        "ix_deployment_conversions_tenant_deployment",
        "deployment_conversions",
        ["tenant_id", "deployment_id", "occurred_at"],
    )
    # FORCE, so the table owner is filtered too: a migration bug must not bypass isolation.
    op.execute("ALTER TABLE deployment_conversions ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE deployment_conversions FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON deployment_conversions TO {APP} USING (tenant_id = {TENANT})"
        f" WITH CHECK (tenant_id = {TENANT})"
    )
    op.execute(
        f"CREATE POLICY admin_context ON deployment_conversions TO {ADMIN_ROLE} USING (true) WITH CHECK (true)"
    )
    # History of what fans did: appended, never rewritten.
    op.execute(f"GRANT SELECT, INSERT ON deployment_conversions TO {APP}, {ADMIN_ROLE}")

    # A brand files a request in the talent's tenant, naming itself, undecided; it changes nothing after.
    op.execute(
        f"CREATE POLICY brand_request ON brand_campaigns FOR INSERT TO {APP}"
        f" WITH CHECK (brand_tenant_id = {TENANT} AND status = 'REQUESTED' AND decided_at IS NULL"
        " AND deployment_id IS NULL)"
    )

    op.execute(
        "INSERT INTO jsonb_schemas (id, schema_name, version, schema, is_active, activated_at)"
        " VALUES (gen_random_uuid(), 'deployment_config', 1, '"
        + json.dumps(DEPLOYMENT_CONFIG_V1).replace("'", "''")
        + "'::jsonb, true, now())"
    )

    # Every process caches resolved deployments; a change anywhere tells them all, at commit.
    op.execute(f"""
        CREATE FUNCTION notify_deployment_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'deployments' THEN
                PERFORM pg_notify('{CHANNEL}', 'd:' || coalesce(NEW.id, OLD.id)::text);
            ELSIF TG_TABLE_NAME = 'pricing_tiers' THEN
                PERFORM pg_notify('{CHANNEL}', 'c:' || coalesce(NEW.celebrity_id, OLD.celebrity_id)::text);
            ELSE
                PERFORM pg_notify('{CHANNEL}', 'c:' || coalesce(NEW.id, OLD.id)::text);
            END IF;
            RETURN NULL;
        END $$
    """)
    op.execute("REVOKE ALL ON FUNCTION notify_deployment_change() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER deployments_notify_change AFTER INSERT OR UPDATE OR DELETE ON deployments"
        " FOR EACH ROW EXECUTE FUNCTION notify_deployment_change()"
    )
    op.execute(
        "CREATE TRIGGER celebrities_notify_change AFTER UPDATE OR DELETE ON celebrities"
        " FOR EACH ROW EXECUTE FUNCTION notify_deployment_change()"
    )
    # Portal pages cache a twin's tiers too.
    op.execute(
        "CREATE TRIGGER pricing_tiers_notify_change AFTER INSERT OR UPDATE OR DELETE ON pricing_tiers"
        " FOR EACH ROW EXECUTE FUNCTION notify_deployment_change()"
    )

    op.execute(f"GRANT SELECT, UPDATE (status, updated_at) ON brand_campaigns TO {DEFINER}")
    op.execute(f"GRANT UPDATE (status, updated_at) ON deployments TO {DEFINER}")
    op.execute(f"GRANT INSERT ON platform_events TO {DEFINER}")
    for signature, (returns, body) in FUNCTIONS.items():
        _definer(signature, returns, body)
    # The schedule sweep runs across tenants; it only moves statuses by the clock and says so.
    _definer(
        SWEEP,
        "TABLE(tenant_id uuid, deployment_id uuid, status deployment_status)",
        SWEEP_BODY,
        volatility="VOLATILE",
    )
    _definer(WITHDRAW, "boolean", WITHDRAW_BODY, volatility="VOLATILE")
    _chat_lookup(ORIGINAL_CHAT_LOOKUP.replace("d.type, d.status,", f"d.type, {EFFECTIVE_STATUS},"))


def downgrade() -> None:
    _chat_lookup(ORIGINAL_CHAT_LOOKUP)
    op.execute(f"DROP FUNCTION IF EXISTS {SWEEP}")
    op.execute("DROP FUNCTION IF EXISTS campaign_withdraw(uuid, uuid)")
    for signature in FUNCTIONS:
        name = signature.split("(")[0]
        types = ", ".join(
            p.strip().split(" ", 1)[1] for p in signature.split("(", 1)[1].rstrip(")").split(",")
        )
        op.execute(f"DROP FUNCTION IF EXISTS {name}({types})")
    op.execute(f"REVOKE INSERT ON platform_events FROM {DEFINER}")
    op.execute(f"REVOKE UPDATE (status, updated_at) ON deployments FROM {DEFINER}")
    op.execute(f"REVOKE SELECT, UPDATE (status, updated_at) ON brand_campaigns FROM {DEFINER}")
    op.execute("DROP TRIGGER IF EXISTS pricing_tiers_notify_change ON pricing_tiers")
    op.execute("DROP TRIGGER IF EXISTS celebrities_notify_change ON celebrities")
    op.execute("DROP TRIGGER IF EXISTS deployments_notify_change ON deployments")
    op.execute("DROP FUNCTION IF EXISTS notify_deployment_change()")
    op.execute("DELETE FROM jsonb_schemas WHERE schema_name = 'deployment_config'")
    op.execute("DROP POLICY IF EXISTS brand_request ON brand_campaigns")
    op.drop_index("ix_deployment_conversions_tenant_deployment", table_name="deployment_conversions")
    op.drop_table("deployment_conversions")
    op.drop_constraint(
        op.f("fk_brand_campaigns_tenant_id_deployment_id_deployments"), "brand_campaigns", type_="foreignkey"
    )
    for column in ("decided_by", "requested_by", "slug", "brand_name"):
        op.drop_column("brand_campaigns", column)
    op.drop_index("ix_deployments_tenant_created", table_name="deployments")
    op.drop_index("uq_deployments_celebrity_slug", table_name="deployments")
    op.drop_index("uq_deployments_analytics_key", table_name="deployments")
    op.drop_constraint(op.f("uq_deployments_widget_key"), "deployments", type_="unique")
    for column in (
        "archived_at",
        "domain_verified_at",
        "domain_token",
        "slug",
        "require_identity",
        "identity_salt",
        "allowed_origins",
        "analytics_key",
        "widget_key",
    ):
        op.drop_column("deployments", column)
    op.execute("DROP TYPE IF EXISTS conversion_kind")
