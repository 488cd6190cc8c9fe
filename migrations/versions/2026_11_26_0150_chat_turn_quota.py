"""Chat: the turn's two calls also carry the fan's tier and daily quota (still one round trip each).

The read returns the fan's allowance (a live subscription's tier, else the talent's free tier) and
today's message count; the write counts the fan's message in `fan_usage` in the same transaction
as the messages. The quota is then exact on every turn, with no cache to go stale, and a turn
still costs two round trips. Otherwise as 0010:

Both are SECURITY INVOKER: they run as the calling app role, so every table they touch is still
filtered by its tenant policy. Each sets the fan's transaction-local context (`app.tenant_id`,
`app.user_id`, `app.role`) as its first step, then runs its statements in the implicit transaction
of the single call: no BEGIN, no separate set_config, no COMMIT round trip. Full-text and vector
retrieval still go through the SECURITY DEFINER search functions of 0005, which read the tenant
from the setting made here.

Revision ID: 0012_chat_turn_quota
Revises: 0009_compliance
Create Date: 2026-11-26 01:50:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_chat_turn_quota"
down_revision: str | None = "0009_compliance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
ADMIN_ROLE = "vibethink_admin"

READ = (
    "chat_turn_read(p_tenant uuid, p_user text, p_conversation uuid, p_fan_key text, p_history integer,"
    " p_config regconfig, p_query text, p_k integer, p_common text[], p_embedding vector, p_exact_below integer,"
    " p_day date)"
)
WRITE = (
    "chat_turn_write(p_tenant uuid, p_user text, p_conversation uuid, p_fan_key text, p_added integer,"
    " p_warn_at integer, p_max_messages integer, p_messages jsonb, p_event jsonb, p_flags jsonb,"
    " p_facts jsonb, p_context jsonb, p_day date)"
)
OLD_READ = (
    "chat_turn_read(uuid, text, uuid, text, integer, regconfig, text, integer, text[], vector, integer)"
)
OLD_WRITE = (
    "chat_turn_write(uuid, text, uuid, text, integer, integer, integer, jsonb, jsonb, jsonb, jsonb, jsonb)"
)
PASSAGES = (
    "jsonb_build_array(s.chunk_id, s.source_id, s.title, s.url, s.content, s.score) ORDER BY s.score DESC"
)
# The same context `core.database.context_statement` sends for a fan: tenant, user (may be empty), role.
FAN_CONTEXT = """
            PERFORM set_config('app.tenant_id', p_tenant::text, true),
                    set_config('app.user_id', coalesce(p_user, ''), true),
                    set_config('app.role', 'FAN', true);
"""


def _invoker(signature: str, returns: str, body: str) -> None:
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE plpgsql VOLATILE SECURITY INVOKER"
        f" SET search_path = public, pg_temp AS $fn$ {body} $fn$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}, {ADMIN_ROLE}")


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    op.execute(f"DROP FUNCTION {OLD_WRITE}")
    op.execute(f"DROP FUNCTION {OLD_READ}")
    # Everything a turn reads: the conversation (only the fan's own), whether the fan is blocked,
    # the recent complete history, the fan's memories for this twin and, when `p_query` is given,
    # the twin's passages (full-text, and by vector when `p_embedding` is given). No row: not theirs.
    _invoker(
        READ,
        "TABLE(deployment_id uuid, celebrity_id uuid, message_count integer, session_id text,"
        " context jsonb, blocked boolean, history jsonb, memories jsonb, lexical jsonb, semantic jsonb,"
        " tier_code text, tier_name text, tier_entitlements jsonb, subscription_id uuid, used_today integer)",
        f"""
        DECLARE
            v_conversation conversations%ROWTYPE;
        BEGIN
            {FAN_CONTEXT}
            SELECT * INTO v_conversation FROM conversations c
             WHERE c.tenant_id = p_tenant AND c.id = p_conversation AND c.fan_key = p_fan_key;
            IF NOT FOUND THEN
                RETURN;
            END IF;
            deployment_id := v_conversation.deployment_id;
            celebrity_id := v_conversation.celebrity_id;
            message_count := v_conversation.message_count;
            session_id := v_conversation.session_id;
            context := v_conversation.context;
            blocked := EXISTS (
                SELECT 1 FROM blocked_fans b
                 WHERE b.tenant_id = p_tenant AND b.celebrity_id = v_conversation.celebrity_id
                   AND b.fan_key = p_fan_key);
            SELECT coalesce(jsonb_agg(jsonb_build_array(h.role, h.content) ORDER BY h.created_at, h.id), '[]')
              INTO history
              FROM (SELECT m.role, m.content, m.created_at, m.id FROM messages m
                     WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conversation
                       AND m.status = 'COMPLETE'
                     ORDER BY m.created_at DESC, m.id DESC LIMIT p_history) h;
            SELECT coalesce(jsonb_agg(jsonb_build_array(f.kind, f.value) ORDER BY f.kind), '[]')
              INTO memories
              FROM fan_memories f
             WHERE f.tenant_id = p_tenant AND f.celebrity_id = v_conversation.celebrity_id
               AND f.fan_key = p_fan_key;
            -- The fan's allowance: a live subscription's tier, else the talent's free tier.
            SELECT a.code, a.name, a.entitlements, a.subscription_id
              INTO tier_code, tier_name, tier_entitlements, subscription_id
              FROM ((SELECT 0 AS rank, t.code::text, t.name::text, t.entitlements, s.id AS subscription_id
                       FROM fan_subscriptions s
                       JOIN pricing_tiers t ON t.tenant_id = s.tenant_id AND t.id = s.tier_id
                      WHERE s.tenant_id = p_tenant AND s.celebrity_id = v_conversation.celebrity_id
                        AND s.fan_key = p_fan_key
                        AND (s.status = 'ACTIVE' OR (s.status = 'PAST_DUE' AND s.grace_until > now()))
                      LIMIT 1)
                    UNION ALL
                    (SELECT 1, t.code::text, t.name::text, t.entitlements, NULL
                       FROM pricing_tiers t
                      WHERE t.tenant_id = p_tenant AND t.celebrity_id = v_conversation.celebrity_id
                        AND t.is_active AND t.monthly_price_cents = 0
                      ORDER BY (t.code = 'FREE') DESC, t.sort_order
                      LIMIT 1)
                    ORDER BY 1 LIMIT 1) a;
            SELECT coalesce(max(u.messages), 0) INTO used_today
              FROM fan_usage u
             WHERE u.tenant_id = p_tenant AND u.celebrity_id = v_conversation.celebrity_id
               AND u.fan_key = p_fan_key AND u.day = p_day;
            lexical := '[]';
            semantic := '[]';
            IF p_query IS NOT NULL AND p_k > 0 THEN
                SELECT coalesce(jsonb_agg({PASSAGES}), '[]') INTO lexical
                  FROM knowledge_search_text(v_conversation.celebrity_id, p_config, p_query, p_k, p_common) s;
                IF p_embedding IS NOT NULL THEN
                    SELECT coalesce(jsonb_agg({PASSAGES}), '[]') INTO semantic
                      FROM knowledge_search_vector(v_conversation.celebrity_id, p_embedding, p_k,
                                                   p_exact_below) s;
                END IF;
            END IF;
            RETURN NEXT;
        END
        """,
    )
    # Everything a turn writes, all or nothing: the counter bumped only while the limit allows
    # (concurrent turns can never pass it), both messages, the interaction event, moderation flags,
    # the fan's new memories, a changed context; and, once, at the warning threshold, the
    # near-limit flag and its platform event. No row: the conversation is full (or not theirs).
    _invoker(
        WRITE,
        "TABLE(message_count integer, crossed boolean)",
        f"""
        DECLARE
            v_conversation conversations%ROWTYPE;
            v_twin_message uuid;
        BEGIN
            {FAN_CONTEXT}
            UPDATE conversations c
               SET message_count = c.message_count + p_added, updated_at = now(),
                   near_limit_at = CASE WHEN c.near_limit_at IS NULL AND c.message_count + p_added >= p_warn_at
                                        THEN now() ELSE c.near_limit_at END,
                   context = coalesce(p_context, c.context)
             WHERE c.tenant_id = p_tenant AND c.id = p_conversation AND c.fan_key = p_fan_key
               AND c.message_count + p_added <= p_max_messages
            RETURNING c.* INTO v_conversation;
            IF NOT FOUND THEN
                RETURN;
            END IF;
            INSERT INTO messages (tenant_id, id, created_at, updated_at, conversation_id, role, content,
                                  status, details)
            SELECT p_tenant, m.id, m.created_at, m.created_at, p_conversation, m.role, m.content, m.status,
                   m.details
              FROM jsonb_to_recordset(p_messages)
                   AS m(id uuid, created_at timestamptz, role message_role, content text,
                        status message_status, details jsonb);
            INSERT INTO interaction_events (tenant_id, id, celebrity_id, deployment_id, campaign_id,
                                            conversation_id, fan_key, fan_tier, outcome, provider,
                                            latency_ms, input_tokens, output_tokens, guardrails)
            SELECT p_tenant, e.id, v_conversation.celebrity_id, e.deployment_id, e.campaign_id,
                   p_conversation, p_fan_key, e.fan_tier, e.outcome, e.provider, e.latency_ms,
                   e.input_tokens, e.output_tokens, e.guardrails
              FROM jsonb_to_record(p_event)
                   AS e(id uuid, deployment_id uuid, campaign_id uuid, fan_tier text, outcome text,
                        provider text, latency_ms integer, input_tokens integer, output_tokens integer,
                        guardrails jsonb);
            IF jsonb_array_length(p_flags) > 0 THEN
                INSERT INTO moderation_flags (tenant_id, id, celebrity_id, conversation_id, message_id,
                                              fan_key, stage, rule, reason, excerpt)
                SELECT p_tenant, gen_random_uuid(), v_conversation.celebrity_id, p_conversation,
                       f.message_id, p_fan_key, f.stage, f.rule, f.reason, f.excerpt
                  FROM jsonb_to_recordset(p_flags)
                       AS f(message_id uuid, stage text, rule text, reason text, excerpt text);
            END IF;
            INSERT INTO fan_usage (tenant_id, celebrity_id, fan_key, day, messages)
            VALUES (p_tenant, v_conversation.celebrity_id, p_fan_key, p_day, 1)
            ON CONFLICT (tenant_id, celebrity_id, fan_key, day)
            DO UPDATE SET messages = fan_usage.messages + 1, updated_at = now();
            IF jsonb_array_length(p_facts) > 0 THEN
                INSERT INTO fan_memories (tenant_id, id, celebrity_id, fan_key, kind, value)
                SELECT p_tenant, gen_random_uuid(), v_conversation.celebrity_id, p_fan_key, f.kind, f.value
                  FROM jsonb_to_recordset(p_facts) AS f(kind text, value text)
                ON CONFLICT (tenant_id, celebrity_id, fan_key, kind)
                DO UPDATE SET value = excluded.value, updated_at = now();
            END IF;
            message_count := v_conversation.message_count;
            crossed := v_conversation.near_limit_at = now();
            IF crossed THEN
                SELECT (m.value ->> 'id')::uuid INTO v_twin_message
                  FROM jsonb_array_elements(p_messages) AS m(value)
                 WHERE m.value ->> 'role' = 'TWIN';
                INSERT INTO moderation_flags (tenant_id, id, celebrity_id, conversation_id, message_id,
                                              fan_key, stage, rule, reason, excerpt)
                VALUES (p_tenant, gen_random_uuid(), v_conversation.celebrity_id, p_conversation,
                        v_twin_message, p_fan_key, 'LIMIT', 'limit.near_limit',
                        format('The conversation holds %s of its %s messages.', message_count, p_max_messages),
                        '');
                INSERT INTO platform_events (tenant_id, id, event_type, actor_user_id, actor_role,
                                             subject_type, subject_id, payload)
                VALUES (p_tenant, gen_random_uuid(), 'CONVERSATION_NEAR_LIMIT', nullif(p_user, '')::uuid,
                        'FAN', 'conversation', p_conversation::text,
                        jsonb_build_object('celebrity_id', v_conversation.celebrity_id,
                                           'deployment_id', v_conversation.deployment_id,
                                           'message_count', message_count,
                                           'max_messages', p_max_messages));
            END IF;
            RETURN NEXT;
        END
        """,
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {WRITE}")
    op.execute(f"DROP FUNCTION IF EXISTS {READ}")
    previous = _previous()
    previous.upgrade()


def _previous():  # type: ignore[no-untyped-def]
    """Migration 0010, whose functions the downgrade puts back."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("2026_11_26_0100_chat_turn_functions.py")
    spec = importlib.util.spec_from_file_location("chat_turn_0010", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
