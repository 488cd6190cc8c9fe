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

TEXT_SEARCH = "knowledge_search_text(p_celebrity_id uuid, p_config regconfig, p_query text, p_limit integer)"
VECTOR_SEARCH = (
    "knowledge_search_vector(p_celebrity_id uuid, p_embedding vector, p_limit integer, p_exact_below integer)"
)
RESULT = "TABLE(chunk_id uuid, source_id uuid, title text, url text, content text, score double precision)"


def _definer(signature: str, body: str, *, language: str, settings: str = "") -> None:
    op.execute(
        f"CREATE FUNCTION {signature} RETURNS {RESULT} LANGUAGE {language} STABLE SECURITY DEFINER"
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

    # Any of the query's words may match; chunks holding all of them come first, then cover density.
    # The tenant comes from the transaction's setting, never from the caller; no setting, no rows.
    _definer(
        TEXT_SEARCH,
        f"""
        WITH q AS (
            SELECT every_word, replace(every_word::text, ' & ', ' | ')::tsquery AS any_word
              FROM (SELECT plainto_tsquery(p_config, left(p_query, 2000)) AS every_word) w
        ), ranked AS (
            SELECT c.tenant_id, c.id, c.source_id, c.content,
                   ts_rank_cd(c.tsv, q.any_word, 32) + CASE WHEN c.tsv @@ q.every_word THEN 1 ELSE 0 END AS score
              FROM q, knowledge_chunks c
             WHERE c.tenant_id = {TENANT}
               AND c.celebrity_id = p_celebrity_id
               AND c.tsv @@ q.any_word
             ORDER BY score DESC, c.id
             LIMIT least(greatest(p_limit, 0), 100)
        )
        SELECT r.id, r.source_id, s.title::text, s.url::text, r.content, r.score::double precision
          FROM ranked r
          JOIN knowledge_sources s ON s.tenant_id = r.tenant_id AND s.id = r.source_id
         ORDER BY r.score DESC, r.id
        """,
        language="sql",
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
    op.execute(f"DROP FUNCTION IF EXISTS {TEXT_SEARCH.split('(')[0]}(uuid, regconfig, text, integer)")
    op.execute(f"REVOKE SELECT ON knowledge_sources, knowledge_chunks FROM {DEFINER}")
    op.drop_column("knowledge_sources", "generation")
    op.drop_column("knowledge_sources", "search_config")
