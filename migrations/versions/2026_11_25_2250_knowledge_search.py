"""Knowledge retrieval: tenant-filtering SECURITY DEFINER search functions (full text and vector).

Revision ID: 0005_knowledge_search
Revises: 0004_twin_chat
Create Date: 2026-11-25 22:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_knowledge_search"
down_revision: str | None = "0004_twin_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "vibethink_app"
DEFINER = "vibethink_definer"
ADMIN_ROLE = "vibethink_admin"
TENANT = "nullif(current_setting('app.tenant_id', true), '')::uuid"

TEXT_SEARCH = (
    "knowledge_search_text(p_celebrity_id uuid, p_config regconfig, p_query text, p_limit integer,"
    " p_common text[])"
)
COMMON_LEXEMES = "knowledge_common_lexemes(p_min_frequency real)"
VECTOR_SEARCH = (
    "knowledge_search_vector(p_celebrity_id uuid, p_embedding vector, p_limit integer, p_exact_below integer)"
)
# At most this many full-text candidates are ranked: ranking costs ~20 µs a chunk.
MAX_CANDIDATES = 200
# Above this many chunks a twin's selective words are looked up through the GIN index alone.
BIG_TWIN_CHUNKS = 5000
# A lexeme as a tsquery operand: single-quoted, with quotes doubled and backslashes escaped.
QUOTED_LEXEME = r"'''' || replace(replace(q.lexeme, '\', '\\'), '''', '''''') || ''''"
RESULT = "TABLE(chunk_id uuid, source_id uuid, title text, url text, content text, score double precision)"


def _definer(signature: str, body: str, *, language: str, settings: str = "", returns: str = RESULT) -> None:
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE {language} STABLE SECURITY DEFINER"
        f" SET search_path = public, pg_temp {settings} AS $fn$ {body} $fn$"
    )
    op.execute(f"ALTER FUNCTION {signature} OWNER TO {DEFINER}")
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP}, {ADMIN_ROLE}")


def upgrade() -> None:
    op.execute("SET lock_timeout = '5s'")
    # The configuration a source is indexed with, and a counter that makes stale indexing work a no-op.
    op.add_column(
        "knowledge_sources",
        sa.Column("search_config", sa.String(length=32), server_default=sa.text("'simple'"), nullable=False),
    )
    op.add_column(
        "knowledge_sources", sa.Column("generation", sa.Integer(), server_default="0", nullable=False)
    )
    op.execute(f"GRANT SELECT ON knowledge_sources, knowledge_chunks TO {DEFINER}")

    # The lexemes in more than `p_min_frequency` of all chunks, from ANALYZE's element statistics
    # (which the app role may read in pg_stats anyway); too slow to read per query, so callers cache it.
    _definer(
        COMMON_LEXEMES,
        """
        SELECT coalesce(array_agg(e.elem ORDER BY e.elem), '{}')
          FROM pg_stats st,
               unnest(st.most_common_elems::text::text[], st.most_common_elem_freqs) AS e(elem, freq)
         WHERE st.schemaname = 'public' AND st.tablename = 'knowledge_chunks' AND st.attname = 'tsv'
           AND e.elem IS NOT NULL AND e.freq > p_min_frequency
        """,
        language="sql",
        returns="text[]",
    )
    # Any of the query's words may match; chunks holding all of them rank first, then cover density.
    # Candidates are chosen by the query's words that are not in `p_common` (a word in most chunks
    # would make every chunk a candidate: it only counts in the rank), and at most MAX_CANDIDATES
    # are ranked, so a question of common words costs a bounded amount of work.
    # The tenant comes from the transaction's setting, never from the caller; no setting, no rows.
    _definer(
        TEXT_SEARCH,
        f"""
        DECLARE
            v_tenant uuid := {TENANT};
            v_limit integer := least(greatest(p_limit, 0), 100);
            v_text text := left(p_query, 2000);
            v_every tsquery;
            v_any tsquery;
            v_match tsquery;
            v_selective text;
            v_ids uuid[];
            v_big boolean;
        BEGIN
            IF v_tenant IS NULL OR v_limit = 0 THEN
                RETURN;
            END IF;
            v_every := plainto_tsquery(p_config, v_text);
            IF numnode(v_every) = 0 THEN
                RETURN;
            END IF;
            v_any := replace(v_every::text, ' & ', ' | ')::tsquery;
            SELECT string_agg({QUOTED_LEXEME}, ' | ')
              INTO v_selective
              FROM unnest(tsvector_to_array(to_tsvector(p_config, v_text))) AS q(lexeme)
             WHERE q.lexeme <> ALL (coalesce(p_common, '{{}}'));
            v_match := coalesce(v_selective::tsquery, v_every);
            SELECT count(*) > {BIG_TWIN_CHUNKS} INTO v_big FROM (
                SELECT 1 FROM knowledge_chunks c
                 WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                 LIMIT {BIG_TWIN_CHUNKS} + 1
            ) bounded;
            IF v_big AND v_selective IS NOT NULL THEN
                -- A big twin and selective words: only the GIN index chooses rows (IS NOT DISTINCT FROM
                -- keeps the planner from intersecting its bitmap with all of the twin's rows).
                SELECT array_agg(r.id ORDER BY r.score DESC, r.id) INTO v_ids FROM (
                    SELECT cand.id, ts_rank_cd(cand.tsv, v_any, 32)
                                    + CASE WHEN cand.tsv @@ v_every THEN 1 ELSE 0 END AS score
                      FROM (SELECT c.id, c.tsv FROM knowledge_chunks c
                             WHERE c.tenant_id IS NOT DISTINCT FROM v_tenant
                               AND c.celebrity_id IS NOT DISTINCT FROM p_celebrity_id
                               AND c.tsv @@ v_match
                             LIMIT {MAX_CANDIDATES}) cand
                     ORDER BY score DESC, cand.id
                     LIMIT v_limit
                ) r;
            ELSE
                SELECT array_agg(r.id ORDER BY r.score DESC, r.id) INTO v_ids FROM (
                    SELECT cand.id, ts_rank_cd(cand.tsv, v_any, 32)
                                    + CASE WHEN cand.tsv @@ v_every THEN 1 ELSE 0 END AS score
                      FROM (SELECT c.id, c.tsv FROM knowledge_chunks c
                             WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                               AND c.tsv @@ v_match
                             LIMIT {MAX_CANDIDATES}) cand
                     ORDER BY score DESC, cand.id
                     LIMIT v_limit
                ) r;
            END IF;
            IF coalesce(cardinality(v_ids), 0) < v_limit AND v_match <> v_any THEN
                -- Too few chunks hold a selective word: they stay, and any word may fill the rest
                -- (common words match many chunks, which the twin's own index finds cheaply).
                SELECT array_agg(r.id ORDER BY r.score DESC, r.id) INTO v_ids FROM (
                    SELECT c.id, ts_rank_cd(c.tsv, v_any, 32)
                                 + CASE WHEN c.tsv @@ v_every THEN 1 ELSE 0 END AS score
                      FROM knowledge_chunks c
                     WHERE c.tenant_id = v_tenant
                       AND c.id IN (SELECT unnest(v_ids)
                                    UNION
                                    (SELECT w.id FROM knowledge_chunks w
                                      WHERE w.tenant_id = v_tenant AND w.celebrity_id = p_celebrity_id
                                        AND w.tsv @@ v_any
                                      LIMIT {MAX_CANDIDATES}))
                     ORDER BY score DESC, c.id
                     LIMIT v_limit
                ) r;
            END IF;
            RETURN QUERY
                SELECT c.id, c.source_id, s.title::text, s.url::text, c.content,
                       (ts_rank_cd(c.tsv, v_any, 32) + CASE WHEN c.tsv @@ v_every THEN 1 ELSE 0 END)::double precision
                  FROM unnest(v_ids) WITH ORDINALITY AS u(id, position)
                  JOIN knowledge_chunks c ON c.tenant_id = v_tenant AND c.id = u.id
                  JOIN knowledge_sources s ON s.tenant_id = c.tenant_id AND s.id = c.source_id
                 ORDER BY u.position;
        END
        """,
        language="plpgsql",
        # A plan for this query's words and this twin's size, never one generic plan for every twin.
        settings="SET plan_cache_mode = force_custom_plan",
    )
    # pgvector 0.6 filters after the HNSW scan, so a small tenant's rows may be missing from its
    # candidates: small sets are searched exactly, and a short HNSW answer falls back to exact search.
    _definer(
        VECTOR_SEARCH,
        f"""
        DECLARE
            v_tenant uuid := {TENANT};
            v_limit integer := least(greatest(p_limit, 0), 100);
            v_count integer;
            v_ids uuid[];
        BEGIN
            IF v_tenant IS NULL OR v_limit = 0 OR p_embedding IS NULL THEN
                RETURN;
            END IF;
            SELECT count(*) INTO v_count FROM (
                SELECT 1 FROM knowledge_chunks c
                 WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                 LIMIT greatest(p_exact_below, 0) + 1
            ) bounded;
            IF v_count > p_exact_below THEN
                SELECT array_agg(h.id) INTO v_ids FROM (
                    SELECT c.id FROM knowledge_chunks c
                     WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                       AND c.embedding IS NOT NULL
                     ORDER BY c.embedding <=> p_embedding
                     LIMIT v_limit
                ) h;
            END IF;
            IF coalesce(cardinality(v_ids), 0) < v_limit THEN
                SELECT array_agg(e.id) INTO v_ids FROM (
                    WITH mine AS MATERIALIZED (
                        SELECT c.id, c.embedding <=> p_embedding AS distance FROM knowledge_chunks c
                         WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                           AND c.embedding IS NOT NULL
                    )
                    SELECT mine.id FROM mine ORDER BY mine.distance, mine.id LIMIT v_limit
                ) e;
            END IF;
            RETURN QUERY
                SELECT c.id, c.source_id, s.title::text, s.url::text, c.content,
                       (1 - (c.embedding <=> p_embedding))::double precision AS score
                  FROM knowledge_chunks c
                  JOIN knowledge_sources s ON s.tenant_id = c.tenant_id AND s.id = c.source_id
                 WHERE c.tenant_id = v_tenant AND c.id = ANY(v_ids)
                 ORDER BY c.embedding <=> p_embedding, c.id;
        END
        """,
        language="plpgsql",
        # More HNSW candidates per scan, so a twin holding a fair share of the chunks fills its k.
        settings="SET hnsw.ef_search = 200",
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {VECTOR_SEARCH.split('(')[0]}(uuid, vector, integer, integer)")
    op.execute(f"DROP FUNCTION IF EXISTS {TEXT_SEARCH.split('(')[0]}(uuid, regconfig, text, integer, text[])")
    op.execute(f"DROP FUNCTION IF EXISTS {COMMON_LEXEMES.split('(')[0]}(real)")
    op.execute(f"REVOKE SELECT ON knowledge_sources, knowledge_chunks FROM {DEFINER}")
    op.drop_column("knowledge_sources", "generation")
    op.drop_column("knowledge_sources", "search_config")
