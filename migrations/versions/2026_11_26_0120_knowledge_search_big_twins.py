"""Knowledge search: a big twin's candidates never come from intersecting its own 100,000 rows.

0005 let only a big twin's *selective* words go through the GIN index alone; a question of common
words, and the pass that fills up with any word, still intersected the GIN bitmap with a bitmap of
every one of the twin's rows (~20 ms on 100,000 chunks), and a question of common words only made
GIN intersect posting lists that cover most of the table (~10 ms). Now, on a big twin:
- selective words: the GIN index alone chooses candidates (as before);
- common words only: candidates are the chunks holding every word among a bounded sample of the
  twin's rows (`ts_match_vq`, the function form of `@@`, which no index serves), GIN only if the
  sample holds fewer than k;
- the fill-up pass reads a bounded sample of the twin's rows the same way (common words match most
  of them), then GIN alone if still short, so k results come whenever k chunks match any word;
- plans are cached per statement again instead of forced custom per call.

Revision ID: 0011_search_big_twins
Revises: 0010_chat_turn
Create Date: 2026-11-26 01:20:00+00:00
"""

import re
from collections.abc import Sequence

from alembic import op

revision: str = "0011_search_big_twins"
down_revision: str | None = "0010_chat_turn"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "nullif(current_setting('app.tenant_id', true), '')::uuid"
SIGNATURE = (
    "knowledge_search_text(p_celebrity_id uuid, p_config regconfig, p_query text, p_limit integer,"
    " p_common text[])"
)
RESULT = "TABLE(chunk_id uuid, source_id uuid, title text, url text, content text, score double precision)"
MAX_CANDIDATES = 200
BIG_TWIN_CHUNKS = 5000
# A big twin's rows read for a question of common words only, and the candidates taken from them.
SAMPLE_ROWS = 2000
SAMPLE_CANDIDATES = 50
QUOTED_LEXEME = r"'''' || replace(replace(q.lexeme, '\', '\\'), '''', '''''') || ''''"
SCORE = "ts_rank_cd({row}.tsv, v_any, 32) + CASE WHEN {row}.tsv @@ v_every THEN 1 ELSE 0 END"


def _candidates(tenant_filter: str) -> str:
    return f"""
                SELECT array_agg(r.id ORDER BY r.score DESC, r.id) INTO v_ids FROM (
                    SELECT cand.id, {SCORE.format(row="cand")} AS score
                      FROM (SELECT c.id, c.tsv FROM knowledge_chunks c
                             WHERE {tenant_filter}
                               AND c.tsv @@ v_match
                             LIMIT {MAX_CANDIDATES}) cand
                     ORDER BY score DESC, cand.id
                     LIMIT v_limit
                ) r;"""


def _sampled(words: str) -> str:
    """Candidates among the first SAMPLE_ROWS of the twin's rows that hold `words`."""
    return f"""
                SELECT array_agg(r.id ORDER BY r.score DESC, r.id) INTO v_ids FROM (
                    SELECT cand.id, {SCORE.format(row="cand")} AS score
                      FROM (SELECT t.id, t.tsv
                              FROM (SELECT c.id, c.tsv FROM knowledge_chunks c
                                     WHERE c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id
                                     LIMIT {SAMPLE_ROWS}) t
                             WHERE ts_match_vq(t.tsv, {words})
                             LIMIT {SAMPLE_CANDIDATES}) cand
                     ORDER BY score DESC, cand.id
                     LIMIT v_limit
                ) r;"""


def _fill(any_word: str, twin: str = "w.tenant_id = v_tenant AND w.celebrity_id = p_celebrity_id") -> str:
    return f"""
                SELECT array_agg(r.id ORDER BY r.score DESC, r.id) INTO v_ids FROM (
                    SELECT c.id, {SCORE.format(row="c")} AS score
                      FROM knowledge_chunks c
                     WHERE c.tenant_id = v_tenant
                       AND c.id IN (SELECT unnest(v_ids)
                                    UNION
                                    (SELECT w.id FROM knowledge_chunks w
                                      WHERE {twin}
                                        AND {any_word}
                                      LIMIT {MAX_CANDIDATES}))
                     ORDER BY score DESC, c.id
                     LIMIT v_limit
                ) r;"""


# IS NOT DISTINCT FROM keeps the planner from intersecting the GIN bitmap with all of the twin's rows.
GIN_ALONE = "c.tenant_id IS NOT DISTINCT FROM v_tenant AND c.celebrity_id IS NOT DISTINCT FROM p_celebrity_id"
WITH_TWIN = "c.tenant_id = v_tenant AND c.celebrity_id = p_celebrity_id"


# The function's variables as the parameters of a dynamic statement.
PARAMETERS = ("v_tenant", "p_celebrity_id", "v_match", "v_any", "v_every", "v_limit", "v_ids")


def _planned_per_call(statement: str) -> str:
    """The statement run with EXECUTE: planned for this call's values, never from a cached generic
    plan (which, for a big twin, guesses the words' selectivity and may scan the whole table)."""
    query = statement.replace(" INTO v_ids", "", 1).strip().rstrip(";")
    for n, name in enumerate(PARAMETERS, start=1):
        query = re.sub(rf"\b{name}\b", f"${n}", query)
    return f"EXECUTE $q$ {query} $q$ INTO v_ids USING {', '.join(PARAMETERS)};"


OLD_ANSWER = f"""RETURN QUERY
                SELECT c.id, c.source_id, s.title::text, s.url::text, c.content,
                       ({SCORE.format(row="c")})::double precision
                  FROM unnest(v_ids) WITH ORDINALITY AS u(id, position)
                  JOIN knowledge_chunks c ON c.tenant_id = v_tenant AND c.id = u.id
                  JOIN knowledge_sources s ON s.tenant_id = c.tenant_id AND s.id = c.source_id
                 ORDER BY u.position;"""
# For a big twin, one primary-key lookup per chosen id, whatever the cached plan guesses about the
# twin's size (OFFSET 0 keeps each lateral subquery from being flattened into a join over the twin's
# rows); a small twin keeps the plain join, a little cheaper there.
ANSWER = f"""RETURN QUERY
                SELECT c.id, c.source_id, c.title, c.url, c.content,
                       ({SCORE.format(row="c")})::double precision
                  FROM unnest(v_ids) WITH ORDINALITY AS u(id, position)
                 CROSS JOIN LATERAL (
                       SELECT k.id, k.source_id, k.content, k.tsv, s.title::text AS title, s.url::text AS url
                         FROM knowledge_chunks k
                         JOIN knowledge_sources s ON s.tenant_id = k.tenant_id AND s.id = k.source_id
                        WHERE k.tenant_id = v_tenant AND k.id = u.id
                       OFFSET 0) c
                 ORDER BY u.position;"""


ANSWERS = f"""IF v_big THEN
                {ANSWER}
            ELSE
                {OLD_ANSWER}
            END IF;"""


def _body(*, big_twin_paths: bool) -> str:
    if big_twin_paths:
        first = f"""
            IF v_big AND v_selective IS NULL THEN
                -- Common words only: a bounded sample of the twin's rows, not posting lists that
                -- cover most of the table.
                {_planned_per_call(_sampled("v_every"))}
                IF coalesce(cardinality(v_ids), 0) < v_limit THEN
                    {_planned_per_call(_candidates(GIN_ALONE))}
                END IF;
            ELSIF v_big THEN
                {_planned_per_call(_candidates(GIN_ALONE))}
            ELSE
                {_candidates(WITH_TWIN)}
            END IF;"""
        fill = f"""
                IF v_big THEN
                    v_found := v_ids;
                    {_planned_per_call(_sampled("v_any"))}
                    v_ids := ARRAY(SELECT DISTINCT unnest(coalesce(v_found, '{{}}') || coalesce(v_ids, '{{}}')));
                    IF cardinality(v_ids) < v_limit THEN
                        {_planned_per_call(_fill("w.tsv @@ v_any", GIN_ALONE.replace("c.", "w.")))}
                    ELSE
                        {_planned_per_call(_fill("false"))}
                    END IF;
                ELSE
                    {_fill("w.tsv @@ v_any")}
                END IF;"""
    else:
        first = f"""
            IF v_big AND v_selective IS NOT NULL THEN
                {_candidates(GIN_ALONE)}
            ELSE
                {_candidates(WITH_TWIN)}
            END IF;"""
        fill = _fill("w.tsv @@ v_any")
    return f"""
        DECLARE
            v_tenant uuid := {TENANT};
            v_limit integer := least(greatest(p_limit, 0), 100);
            v_text text := left(p_query, 2000);
            v_every tsquery;
            v_any tsquery;
            v_match tsquery;
            v_selective text;
            v_ids uuid[];
            v_found uuid[];
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
            {first}
            IF coalesce(cardinality(v_ids), 0) < v_limit AND v_match <> v_any THEN
                -- Too few chunks hold a selective word: they stay, and any word may fill the rest.
                {fill}
            END IF;
            {ANSWERS if big_twin_paths else OLD_ANSWER}
        END
        """


def _replace(body: str, settings: str = "") -> None:
    # CREATE OR REPLACE keeps the owner (the definer role) and the grants of 0005; the SET clauses
    # are the new definition's only.
    op.execute(
        f"CREATE OR REPLACE FUNCTION {SIGNATURE} RETURNS {RESULT} LANGUAGE plpgsql STABLE SECURITY DEFINER"
        f" SET search_path = public, pg_temp {settings} AS $fn$ {body} $fn$"
    )


def upgrade() -> None:
    # Plans are cached again (0005 forced a custom plan per call, and planning the function's six
    # statements on every call was most of its cost: 1.1 ms → 0.4 ms a call for a small twin);
    # a big twin's statements are planned per call with EXECUTE, where the words' selectivity matters.
    _replace(_body(big_twin_paths=True))


def downgrade() -> None:
    _replace(_body(big_twin_paths=False), "SET plan_cache_mode = force_custom_plan")
