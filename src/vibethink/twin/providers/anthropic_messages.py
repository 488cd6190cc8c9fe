"""Anthropic's Messages API, streamed.

The SDK sends the request (auth, version header, timeouts, HTTP errors mapped to its exceptions);
messages go as plain JSON and the events are read as plain JSON, because the SDK's typed walk of
both cost more CPU than the rest of a chat turn (docs/decisions/001-model-provider-adapters.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anthropic

from vibethink.twin.providers import transport
from vibethink.twin.providers.base import (
    Generation,
    GenerationRequest,
    ProviderUnavailable,
    Usage,
    cited,
)


class AnthropicMessagesProvider:
    name = "anthropic"

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
        self._has_key = bool(api_key)
        self._http = transport.http_client(
            timeout_seconds=timeout_seconds, connect_timeout_seconds=connect_timeout_seconds
        )
        # Retries are ours (one, on connection failures only); the SDK's would also retry 5xx.
        self._client = anthropic.AsyncAnthropic(
            base_url=base_url,
            api_key=api_key or "",
            max_retries=0,
            timeout=transport.timeout(
                timeout_seconds=timeout_seconds, connect_timeout_seconds=connect_timeout_seconds
            ),
            http_client=self._http,
            open_telemetry=False,
        )

    def messages(self, request: GenerationRequest) -> list[dict[str, str]]:
        return [
            {"role": role, "content": text}
            for role, text in transport.alternating_turns(request.context.history, request.fan_message)
        ]

    async def stream(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[str]:
        if not self._has_key:
            raise ProviderUnavailable(f"{self.name}: no API key is configured")
        messages = self.messages(request)
        async with AsyncExitStack() as stack:

            async def open_stream() -> Any:
                return await stack.enter_async_context(
                    self._client.messages.with_streaming_response.create(
                        model=self.model,
                        system=request.system_prompt,
                        # Sent as ready JSON: the SDK's type-walk of messages costs CPU per message.
                        messages=[],
                        extra_body={"messages": messages},
                        max_tokens=request.max_output_tokens,
                        stream=True,
                    )
                )

            response = await transport.open_with_one_retry(
                open_stream, provider=self.name, is_retryable=_is_retryable
            )
            generation.model = self.model
            parts: list[str] = []
            stopped = False
            batches = transport.event_batches(response.http_response.aiter_bytes())
            while (batch := await transport.next_item(batches, provider=self.name)) is not None:
                # Everything one network read brought goes out as one delta.
                texts: list[str] = []
                for _, data in batch:
                    text = _read_event(data, generation, provider=self.name)
                    if text is _STOP:
                        stopped = True
                    elif text:
                        texts.append(text)
                if texts:
                    delta = "".join(texts)
                    parts.append(delta)
                    yield delta
        if not stopped:
            raise ProviderUnavailable(f"{self.name}: the stream ended before the model finished")
        generation.finish_reason = generation.finish_reason or "end_turn"
        generation.citations = cited("".join(parts), request.passages)

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()


_STOP = "\x00stop"


def _read_event(data: str, generation: Generation, *, provider: str) -> str | None:
    """One Messages stream event: records model, usage and stop reason; returns its text, if any."""
    try:
        event = json.loads(data)
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            return str(delta["text"]) if delta.get("type") == "text_delta" and delta.get("text") else None
        if kind == "message_start":
            message = event.get("message") or {}
            usage = message.get("usage") or {}
            generation.model = str(message.get("model") or generation.model)
            generation.usage = Usage(
                int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
            )
        elif kind == "message_delta":
            generation.finish_reason = (event.get("delta") or {}).get(
                "stop_reason"
            ) or generation.finish_reason
            usage = event.get("usage") or {}
            if usage.get("output_tokens") is not None:
                generation.usage.output_tokens = int(usage["output_tokens"])
            if usage.get("input_tokens"):
                generation.usage.input_tokens = int(usage["input_tokens"])
        elif kind == "message_stop":
            return _STOP
        elif kind == "error":
            raise ProviderUnavailable(f"{provider}: the model reported an error mid-stream")
        return None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ProviderUnavailable(f"{provider}: the stream sent a malformed event") from exc


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, anthropic.APIConnectionError) and transport.is_connection_failure(exc)
