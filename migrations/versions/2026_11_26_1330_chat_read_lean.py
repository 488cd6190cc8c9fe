"""Chat: a turn's read in fewer statements; a small twin's full-text search in one.

`chat_turn_read` read the block, the history, the memories, the allowance and today's count in five
statements; each statement of a PL/pgSQL function pays its own plan check, locks, executor start and
end. They are now one statement. The history comes back as two arrays (contents and roles), newest
first as the conversation index gives it, which the caller reverses: building a JSON array of pairs
and sorting it again for the aggregate cost more than reading the rows (in an interleaved loop of
2,000 calls per variant on one twin: 977 → 891 µs of PostgreSQL CPU a read). The function's result
type changes, so it is dropped and made again with the same owner and grants.

`knowledge_search_text` took the same paths for a twin of one chunk as for one of thousands: the
selective words' candidates, then (fewer than k found) any word's, then the rows — four statements.
A twin of at most twice k chunks (its sources' `indexed_chunks`) now ranks every chunk holding any
word in one statement, with the same answer (the chunks holding a selective word if at least k do,
else the best of any word; same order and ties): 341 → 238 µs a search on a one-chunk twin. Past
twice k, ranking every chunk costs more than the existing paths, which stay.

Both are substitutions in the functions' current definitions (as `pg_get_functiondef` gives them);
the downgrade substitutes back.

Revision ID: 0019_chat_read_lean
Revises: 0018_hot_definers_plpgsql
Create Date: 2026-11-26 13:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_chat_read_lean"
down_revision: str | None = "0018_hot_definers_plpgsql"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
ADMIN_ROLE = "vibethink_admin"
READ = (
    "chat_turn_read(uuid, text, uuid, text, integer, regconfig, text, integer, text[], vector, integer, date)"
)
TEXT = "knowledge_search_text(uuid, regconfig, text, integer, text[])"

READ_RESULT_0015 = "history jsonb, memories jsonb"
READ_RESULT_0019 = "history text[], history_roles text[], memories jsonb"
LOOKUPS_0015 = """            blocked := EXISTS (
                SELECT 1 FROM blocked_fans b
                 WHERE b.tenant_id = p_tenant AND b.celebrity_id = v_conversation.celebrity_id
                   AND b.fan_key = p_fan_key);
            SELECT coalesce(jsonb_agg(jsonb_build_array(h.role, h.content) ORDER BY h.created_at, h.id), '[]')
              INTO history
              FROM (SELECT m.role, m.content, m.created_at, m.id FROM messages m
                     WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conversation
                       AND m.status = 'COMPLETE'
                       AND m.created_at >= v_conversation.created_at - interval '1 day'
                       AND m.created_at < now() + interval '1 day'
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
"""
LOOKUPS_0019 = """            -- One statement for what the turn reads besides the conversation and the passages: the
            -- block, the recent complete history (newest first, as the index gives it: the caller
            -- reverses it), the fan's memories, allowance and today's count.
            SELECT EXISTS (SELECT 1 FROM blocked_fans b
                            WHERE b.tenant_id = p_tenant AND b.celebrity_id = v_conversation.celebrity_id
                              AND b.fan_key = p_fan_key),
                   coalesce(h.contents, '{}'), coalesce(h.roles, '{}'),
                   (SELECT coalesce(jsonb_agg(jsonb_build_array(f.kind, f.value) ORDER BY f.kind), '[]')
                      FROM fan_memories f
                     WHERE f.tenant_id = p_tenant AND f.celebrity_id = v_conversation.celebrity_id
                       AND f.fan_key = p_fan_key),
                   a.code, a.name, a.entitlements, a.subscription_id,
                   (SELECT coalesce(max(u.messages), 0)
                      FROM fan_usage u
                     WHERE u.tenant_id = p_tenant AND u.celebrity_id = v_conversation.celebrity_id
                       AND u.fan_key = p_fan_key AND u.day = p_day)
              INTO blocked, history, history_roles, memories, tier_code, tier_name, tier_entitlements,
                   subscription_id, used_today
              FROM (SELECT array_agg(m.content ORDER BY m.created_at DESC, m.id DESC) AS contents,
                           array_agg(m.role::text ORDER BY m.created_at DESC, m.id DESC) AS roles
                      FROM (SELECT m.role, m.content, m.created_at, m.id FROM messages m
                             WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conversation
                               AND m.status = 'COMPLETE'
                               AND m.created_at >= v_conversation.created_at - interval '1 day'
                               AND m.created_at < now() + interval '1 day'
                             ORDER BY m.created_at DESC, m.id DESC LIMIT p_history) m) h
              -- The fan's allowance: a live subscription's tier, else the talent's free tier.
              LEFT JOIN LATERAL ((SELECT 0 AS rank, t.code::text AS code, t.name::text AS name, t.entitlements,
                                         s.id AS subscription_id
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
                                 ORDER BY 1 LIMIT 1) a ON true;
"""
DECLARE_0017 = """            v_big boolean;
"""
DECLARE_0019 = """            v_big boolean;
            v_total bigint;
"""
SIZE_0017 = """
            SELECT coalesce(sum(s.indexed_chunks), 0) > 5000 INTO v_big
              FROM knowledge_sources s
             WHERE s.tenant_id = v_tenant AND s.celebrity_id = p_celebrity_id;
"""
SIZE_0019 = """
            SELECT coalesce(sum(s.indexed_chunks), 0) INTO v_total
              FROM knowledge_sources s
             WHERE s.tenant_id = v_tenant AND s.celebrity_id = p_celebrity_id;
            v_big := v_total > 5000;
            IF v_total <= 2 * v_limit THEN
                -- A small twin (at most twice k chunks): every chunk holding any word of the question,
                -- ranked in one statement. The same answer as the paths below, whose candidate limits
                -- (200) do not bind here: the chunks holding a selective word if at least k do, else
                -- the best of any word. Past twice k, ranking every chunk costs more than those paths.
                RETURN QUERY
                WITH m AS MATERIALIZED (
                    SELECT c.id, c.source_id, c.content, c.tsv @@ v_match AS selective,
                           ts_rank_cd(c.tsv, v_any, 32) + CASE WHEN c.tsv @@ v_every THEN 1 ELSE 0 END AS score
                      FROM knowledge_chunks c
                     WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id AND c.tsv @@ v_any)
                SELECT m.id, m.source_id, s.title::text, s.url::text, m.content, m.score::double precision
                  FROM m
                  JOIN knowledge_sources s ON s.tenant_id = v_tenant AND s.id = m.source_id
                 WHERE m.selective OR v_match = v_any OR (SELECT count(*) FROM m AS x WHERE x.selective) < v_limit
                 ORDER BY m.score DESC, m.id
                 LIMIT v_limit;
                RETURN;
            END IF;
"""


def _definition(function: str) -> str:
    return str(
        op.get_bind()
        .execute(sa.text("SELECT pg_get_functiondef(CAST(:f AS regprocedure))"), {"f": function})
        .scalar_one()
    )


def _substituted(function: str, pairs: Sequence[tuple[str, str]]) -> str:
    definition = _definition(function)
    for old, new in pairs:
        if definition.count(old) != 1:
            raise RuntimeError(f"{function} is not the definition this migration expects")
        definition = definition.replace(old, new)
    return definition


def _replace_search(pairs: Sequence[tuple[str, str]]) -> None:
    # CREATE OR REPLACE keeps the function's owner, grants and SET clauses.
    op.get_bind().exec_driver_sql(_substituted(TEXT, pairs))


def _remake_read(pairs: Sequence[tuple[str, str]]) -> None:
    """The read with a new result type: dropped and made again, with its owner and grants."""
    bind = op.get_bind()
    owner = bind.execute(
        sa.text("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = CAST(:f AS regprocedure)"),
        {"f": READ},
    ).scalar_one()
    definition = _substituted(READ, pairs)
    op.execute(f"DROP FUNCTION {READ}")
    bind.exec_driver_sql(definition)
    op.execute(f'ALTER FUNCTION {READ} OWNER TO "{owner}"')
    op.execute(f"REVOKE ALL ON FUNCTION {READ} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {READ} TO {APP}, {ADMIN_ROLE}")


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _remake_read([(READ_RESULT_0015, READ_RESULT_0019), (LOOKUPS_0015, LOOKUPS_0019)])
    _replace_search([(DECLARE_0017, DECLARE_0019), (SIZE_0017, SIZE_0019)])


def downgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    _replace_search([(SIZE_0019, SIZE_0017), (DECLARE_0019, DECLARE_0017)])
    _remake_read([(LOOKUPS_0019, LOOKUPS_0015), (READ_RESULT_0019, READ_RESULT_0015)])
