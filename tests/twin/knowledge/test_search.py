"""Retrieval: stemming in the twin's language, ranking, fusion, isolation, and k results for small tenants."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.factories import ADMIN
from tests.twin.knowledge.conftest import Twin, make_twin
from tests.twin.knowledge.documents import ENGLISH_RUNNING, SPANISH_GOALS
from tests.twin.knowledge.fake_embeddings import bag_of_words, fake_embeddings_server
from vibethink.core.database import Database, RlsContext
from vibethink.twin.knowledge import Passage, service
from vibethink.twin.knowledge.embeddings import OpenAIEmbedder
from vibethink.twin.knowledge.search import (
    common_lexemes,
    forget_common_lexemes,
    fuse,
    search,
    search_config,
    vector_search,
)


async def add_text(db: Database, twin: Twin, title: str, content: str) -> uuid.UUID:
    async with db.transaction(twin.principal.rls()) as session:
        source = await service.add_source(
            session, twin.principal, twin.celebrity_id, kind="TEXT", title=title, content=content
        )
        return source.id


async def find(db: Database, twin: Twin, query: str, *, language: str = "en", k: int = 5) -> list[Passage]:
    async with db.transaction(twin.principal.rls()) as session:
        return await search(session, celebrity_id=twin.celebrity_id, query=query, language=language, k=k)


def test_languages_map_to_text_search_configurations() -> None:
    assert search_config("es") == "spanish"
    assert search_config("es-MX") == "spanish"
    assert search_config("EN_us") == "english"
    assert [search_config(x) for x in ("pt", "fr", "de", "it")] == [
        "portuguese",
        "french",
        "german",
        "italian",
    ]
    assert search_config("ja") == "simple"
    assert search_config(None) == "simple"


class TestStemming:
    async def test_spanish_plural_finds_the_singular(self, db: Database, spanish_twin: Twin) -> None:
        await add_text(db, spanish_twin, "Goles", SPANISH_GOALS)
        found = await find(db, spanish_twin, "¿Cuáles fueron sus goles más recordados?", language="es")
        assert [p.title for p in found] == ["Goles"]
        assert "chilena" in found[0].text

    async def test_english_inflections_find_each_other(self, db: Database, twin: Twin) -> None:
        await add_text(db, twin, "Training", ENGLISH_RUNNING)
        assert [p.title for p in await find(db, twin, "Does she run?")] == ["Training"]
        assert [p.title for p in await find(db, twin, "championships won")] == ["Training"]

    async def test_a_twin_in_another_language_falls_back_to_simple(self, db: Database) -> None:
        twin = await make_twin(db, language="ja")
        await add_text(db, twin, "Names", "Shohei Ohtani pitches and hits")
        assert [p.title for p in await find(db, twin, "Ohtani", language="ja")] == ["Names"]
        assert await find(db, twin, "pitch", language="ja") == []


class TestRanking:
    async def test_chunks_with_every_word_come_first(self, db: Database, twin: Twin) -> None:
        await add_text(db, twin, "One word", "The derby was loud. The derby was long. The derby, the derby.")
        await add_text(db, twin, "Both words", "Her first derby goal came in the rain.")
        found = await find(db, twin, "derby goal")
        assert [p.title for p in found] == ["Both words", "One word"]
        assert found[0].score > found[1].score

    async def test_k_bounds_the_results(self, db: Database, twin: Twin) -> None:
        for n in range(8):
            await add_text(db, twin, f"Match {n}", f"Match report number {n}: a stadium full of fans.")
        assert len(await find(db, twin, "stadium", k=3)) == 3
        assert len(await find(db, twin, "stadium", k=50)) == 8

    def test_reciprocal_rank_fusion_orders_by_summed_reciprocal_ranks(self) -> None:
        def passage(name: str) -> Passage:
            return Passage(uuid.uuid5(uuid.NAMESPACE_DNS, name), uuid.uuid4(), name, None, name, 0.0)

        x, y, z, w = (passage(n) for n in "xyzw")
        fused = fuse([[x, y, z], [z, x, w]], k=4)
        assert [p.title for p in fused] == ["x", "z", "y", "w"]
        assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
        assert fused[1].score == pytest.approx(1 / 63 + 1 / 61)
        assert [p.title for p in fuse([[x, y, z], [z, x, w]], k=2)] == ["x", "z"]


class TestGarbageQueries:
    @pytest.mark.parametrize(
        "query",
        [
            "",
            "   ",
            "!!! & | :* () <-> '",
            "the of and",
            "\x00\ud800",
            "'; DROP TABLE knowledge_chunks; --",
            "a" * 20000,
        ],
        ids=["empty", "blank", "operators", "stop-words", "unstorable", "injection", "huge"],
    )
    async def test_finds_nothing_and_never_fails(self, db: Database, twin: Twin, query: str) -> None:
        await add_text(db, twin, "Something", "Something to find about the derby.")
        async with db.transaction(twin.principal.rls()) as session:
            assert await search(session, celebrity_id=twin.celebrity_id, query=query, language="en") == []
            # The transaction is still usable: nothing failed inside it.
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


class TestIsolation:
    async def test_another_tenant_finds_nothing_of_this_twin(
        self, db: Database, twin: Twin, other_twin: Twin
    ) -> None:
        await add_text(db, twin, "Private", "The secret training plan for the derby.")
        async with db.transaction(other_twin.principal.rls()) as session:
            assert await search(session, celebrity_id=twin.celebrity_id, query="derby", language="en") == []
            embedding = bag_of_words("secret training plan")
            assert (
                await vector_search(session, celebrity_id=twin.celebrity_id, embedding=embedding, k=5) == []
            )

    async def test_no_tenant_context_finds_nothing(self, db: Database, twin: Twin) -> None:
        await add_text(db, twin, "Private", "The secret training plan for the derby.")
        async with db.transaction(RlsContext()) as session:
            assert await search(session, celebrity_id=twin.celebrity_id, query="derby", language="en") == []


async def seed_chunks(
    db: Database, twin: Twin, count: int, *, word: str, toward: float, with_embeddings: bool = True
) -> None:
    """`count` chunks containing `word`, set-based; embeddings near (toward=1) or far from the first axis."""
    async with db.transaction(ADMIN) as session:
        source_id = uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO knowledge_sources (tenant_id, id, celebrity_id, kind, title, content,"
                " content_hash, status, chunk_count, indexed_chunks, search_config)"
                " VALUES (:t, :s, :c, 'TEXT', 'Seeded', 'seeded', 'x', 'READY', :n, :n, 'english')"
            ),
            {"t": twin.tenant.id, "s": source_id, "c": twin.celebrity_id, "n": count},
        )
        await session.execute(
            text(
                """
                INSERT INTO knowledge_chunks (tenant_id, id, celebrity_id, source_id, ordinal, content,
                                              search_config, tsv, embedding)
                SELECT :t, gen_random_uuid(), :c, :s, n, t.body, 'english', to_tsvector('english', t.body),
                       CASE WHEN CAST(:emb AS boolean) THEN (
                           SELECT array_agg(CASE WHEN d = 1 THEN CAST(:toward AS real)
                                                 ELSE 0.05 * (random() - 0.5) END ORDER BY d)::vector
                             FROM generate_series(1, 384) d WHERE n >= 0)
                       END
                  FROM generate_series(1, CAST(:n AS integer)) n,
                       LATERAL (SELECT format('Chunk %s about the %s', n, CAST(:w AS text)) AS body) t
                """
            ),
            {"t": twin.tenant.id, "s": source_id, "c": twin.celebrity_id, "n": count, "w": word,
             "toward": toward, "emb": with_embeddings},
        )  # fmt: skip


@pytest.fixture(scope="module")
async def tenants(db: Database) -> tuple[Twin, Twin]:
    big, small = await make_twin(db), await make_twin(db)
    # The big tenant's vectors all point where the query does; the small one's point away.
    await seed_chunks(db, big, 1980, word="stadium", toward=1.0)
    await seed_chunks(db, small, 20, word="stadium", toward=-1.0)
    return big, small


class TestSmallTenants:
    """A tenant holding 1 % of all chunks still gets k results, by full text and by vector."""

    async def test_full_text_returns_k(self, db: Database, tenants: tuple[Twin, Twin]) -> None:
        big, small = tenants
        found = await find(db, small, "stadium", k=10)
        assert len(found) == 10
        assert len(await find(db, big, "stadium", k=10)) == 10

    @pytest.mark.parametrize("exact_below", [0, 2000], ids=["hnsw-then-exact", "exact"])
    async def test_vector_returns_k(self, db: Database, tenants: tuple[Twin, Twin], exact_below: int) -> None:
        big, small = tenants
        query = [1.0] + [0.0] * 383
        for owner in (small, big):
            async with db.transaction(owner.principal.rls()) as session:
                found = await vector_search(
                    session, celebrity_id=owner.celebrity_id, embedding=query, k=10, exact_below=exact_below
                )
            assert len(found) == 10
            assert all(p.title == "Seeded" for p in found)
            assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)


class TestHybrid:
    async def test_vector_results_are_fused_with_full_text(self, db: Database, twin: Twin) -> None:
        with fake_embeddings_server() as server:
            embedder = OpenAIEmbedder(base_url=server.url, model="text-embedding-3-small", api_key="sk-test")
            async with db.transaction(twin.principal.rls()) as session:
                await service.add_source(
                    session, twin.principal, twin.celebrity_id, kind="TEXT", title="Lexical",
                    content="The final whistle blew at the stadium.", inline=False,
                )  # fmt: skip
                await service.add_source(
                    session, twin.principal, twin.celebrity_id, kind="TEXT", title="Semantic",
                    content="Penalty shootout drama", inline=False,
                )  # fmt: skip
            from tests.twin.knowledge.conftest import run_indexer

            await run_indexer(db, embedder=embedder)
            async with db.transaction(twin.principal.rls()) as session:
                found = await search(
                    session, celebrity_id=twin.celebrity_id, query="stadium penalty shootout drama",
                    language="en", embedder=embedder,
                )  # fmt: skip
                assert {p.title for p in found} == {"Lexical", "Semantic"}
                assert all(0 < p.score <= 2 / 61 for p in found)

                server.fail_next = 2
                fallback = await search(
                    session, celebrity_id=twin.celebrity_id, query="stadium", language="en", embedder=embedder
                )
                assert [p.title for p in fallback] == ["Lexical"]


class TestCommonWords:
    """A word in most chunks does not choose candidates, yet k results still come back."""

    async def test_selective_words_choose_and_common_ones_still_rank(self, db: Database) -> None:
        big, small = await make_twin(db), await make_twin(db)
        async with db.owner_engine.connect() as owner:
            total = (await owner.execute(text("SELECT count(*) FROM knowledge_chunks"))).scalar_one()
        # Enough that the word is in more than 5 % of all chunks, whatever else the database holds.
        await seed_chunks(db, big, max(6000, total // 8), word="crossbar", toward=1.0, with_embeddings=False)
        await add_text(db, big, "Floodlights", "The crossbar shook under the floodlights.")
        for n in range(6):
            await add_text(db, small, f"Crossbar {n}", f"Crossbar story number {n}.")
        await add_text(db, small, "Both", "A crossbar and a floodlight.")
        async with db.owner_engine.begin() as owner:
            await owner.execute(text("ANALYZE knowledge_chunks"))
        forget_common_lexemes()
        try:
            async with db.transaction(small.principal.rls()) as session:
                assert "crossbar" in await common_lexemes(session)
            for twin, title in ((small, "Both"), (big, "Floodlights")):
                found = await find(db, twin, "crossbar floodlights", k=5)
                assert len(found) == 5
                assert found[0].title == title
                assert found[0].score > 1 > found[1].score
            # Only common words, on a big twin: candidates from a sample of its rows, still k of them.
            only_common = await find(db, big, "the crossbar", k=5)
            assert len(only_common) == 5
            assert all("crossbar" in p.text.lower() for p in only_common)
            # A selective word nothing holds: any word fills up to k.
            filled = await find(db, big, "crossbar zzqxunheard", k=5)
            assert len(filled) == 5
        finally:
            forget_common_lexemes()
