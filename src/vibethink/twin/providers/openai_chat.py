"""Any OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server), streamed.

The SDK sends the request (auth, base URL, timeouts, HTTP errors mapped to its exceptions); messages
go as plain JSON and the stream's chunks are read as plain JSON, because the SDK's typed walk of
both cost more CPU than the rest of a chat turn (docs/decisions/001-model-provider-adapters.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, Final

import openai
from openai.types.chat import ChatCompletionMessageParam

from vibethink.twin.providers import transport
from vibethink.twin.providers.base import (
    Generation,
    GenerationRequest,
    ProviderUnavailable,
    Usage,
    cited,
)

# Local servers (vLLM, Ollama, llama.cpp) need no key, but the client always sends one.
NO_KEY: Final = "no-key"


class OpenAIChatProvider:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout_seconds: float,
        connect_timeout_seconds: float,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self._http = transport.http_client(
            timeout_seconds=timeout_seconds, connect_timeout_seconds=connect_timeout_seconds
        )
        # Retries are ours (one, on connection failures only); the SDK's would also retry 5xx.
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or NO_KEY,
            max_retries=0,
            timeout=transport.timeout(
                timeout_seconds=timeout_seconds, connect_timeout_seconds=connect_timeout_seconds
            ),
            http_client=self._http,
        )

    def messages(self, request: GenerationRequest) -> list[ChatCompletionMessageParam]:
        found: list[ChatCompletionMessageParam] = [{"role": "system", "content": request.system_prompt}]
        for turn in request.context.history:
            if turn.content:
                if turn.role == "twin":
                    found.append({"role": "assistant", "content": turn.content})
                else:
                    found.append({"role": "user", "content": turn.content})
        found.append({"role": "user", "content": request.fan_message})
        return found

    async def stream(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[str]:
        messages = self.messages(request)
        async with AsyncExitStack() as stack:

            async def open_stream() -> Any:
                return await stack.enter_async_context(
                    self._client.chat.completions.with_streaming_response.create(
                        model=self.model,
                        # Sent as ready JSON: the SDK's type-walk of messages costs ~0.25 ms each.
                        messages=[],
                        extra_body={"messages": messages},
                        max_tokens=request.max_output_tokens,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                )

            response = await transport.open_with_one_retry(
                open_stream, provider=self.name, is_retryable=_is_retryable
            )
            generation.model = self.model
            parts: list[str] = []
            done = False
            batches = transport.event_batches(response.http_response.aiter_bytes())
            while (batch := await transport.next_item(batches, provider=self.name)) is not None:
                # Everything one network read brought goes out as one delta.
                texts: list[str] = []
                for _, data in batch:
                    if data == "[DONE]":
                        # Read on to the body's end, so the connection goes back to the pool.
                        done = True
                        continue
                    text = _read_chunk(data, generation, provider=self.name)
                    if text:
                        texts.append(text)
                if texts:
                    delta = "".join(texts)
                    parts.append(delta)
                    yield delta
        if generation.finish_reason is None or not done:
            raise ProviderUnavailable(f"{self.name}: the stream ended before the model finished")
        generation.citations = cited("".join(parts), request.passages)

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()


def _read_chunk(data: str, generation: Generation, *, provider: str) -> str | None:
    """One `chat.completion.chunk`: records model, usage and finish reason; returns its text, if any."""
    try:
        chunk = json.loads(data)
        if "error" in chunk:
            raise ProviderUnavailable(f"{provider}: the model reported an error mid-stream")
        if chunk.get("model"):
            generation.model = str(chunk["model"])
        usage = chunk.get("usage")
        if usage:
            generation.usage = Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )
        text: str | None = None
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                generation.finish_reason = str(choice["finish_reason"])
            content = (choice.get("delta") or {}).get("content")
            if content:
                text = str(content)
        return text
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProviderUnavailable(f"{provider}: the stream sent a malformed chunk") from exc


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, openai.APIConnectionError) and transport.is_connection_failure(exc)
