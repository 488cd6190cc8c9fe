"""Per-call client overhead of the provider adapters against a zero-latency local fake model.

Run: `PYTHONPATH=. .venv/bin/python -m tests.twin.providers.overhead [--calls N] [--only NAME]`.
The fake runs in a separate process, so the CPU time measured here is the client's alone:
building the request, HTTP, SSE parsing and the adapter's per-chunk work for one streamed reply.
`--only pydantic-ai` needs only `pydantic-ai-slim[openai]` installed (it imports nothing of ours).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

Call = Callable[[], Awaitable[int]]
WARMUP = 50


async def _measure(name: str, call: Call, calls: int) -> dict[str, Any]:
    for _ in range(WARMUP):
        await call()
    walls: list[float] = []
    chunks = 0
    cpu_start = time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        chunks = await call()
        walls.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu_start
    walls.sort()
    return {
        "client": name,
        "calls": calls,
        "deltas_per_call": chunks,
        "cpu_ms_per_call": round(cpu / calls * 1000, 3),
        "wall_p50_ms": round(statistics.median(walls) * 1000, 3),
        "wall_p99_ms": round(walls[int(len(walls) * 0.99) - 1] * 1000, 3),
    }


def _raw_httpx(base_url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import httpx2

    client = httpx2.AsyncClient(timeout=httpx2.Timeout(30, connect=5))
    body = {
        "model": "fake",
        "messages": [{"role": "system", "content": "You are a twin."}, {"role": "user", "content": "hola"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async def call() -> int:
        count = 0
        async with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    for choice in chunk.get("choices", ()):
                        if choice["delta"].get("content"):
                            count += 1
        return count

    return call, client.aclose


def _adapter(kind: str, base_url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import uuid

    from vibethink.deployments.models import DeploymentType
    from vibethink.twin.context import ConversationContext
    from vibethink.twin.profile import PersonalityProfile
    from vibethink.twin.providers.anthropic_messages import AnthropicMessagesProvider
    from vibethink.twin.providers.base import Generation, GenerationRequest
    from vibethink.twin.providers.openai_chat import OpenAIChatProvider

    provider: OpenAIChatProvider | AnthropicMessagesProvider
    options: dict[str, Any] = {
        "model": "fake",
        "api_key": "k",
        "timeout_seconds": 30.0,
        "connect_timeout_seconds": 5.0,
    }
    if kind == "openai":
        provider = OpenAIChatProvider(base_url=base_url, **options)
    else:
        provider = AnthropicMessagesProvider(base_url=base_url.removesuffix("/v1"), **options)
    context = ConversationContext(
        tenant_id=uuid.uuid4(),
        celebrity_id=uuid.uuid4(),
        deployment_id=None,
        deployment_type=DeploymentType.VIBETHINK_PORTAL,
        fan_key="anon:bench",
        session_id="bench",
    )
    request = GenerationRequest(
        profile=PersonalityProfile(name="Twin", language="es", tone="warm"),
        context=context,
        fan_message="hola",
        passages=(),
        system_prompt="You are a twin.",
    )

    async def call() -> int:
        count = 0
        async for _ in provider.stream(request, Generation()):
            count += 1
        return count

    return call, provider.aclose


def _openai_typed(base_url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """The SDK used plainly: typed messages in, typed chunk objects out."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)

    async def call() -> int:
        count = 0
        stream = await client.chat.completions.create(
            model="fake",
            messages=[{"role": "system", "content": "You are a twin."}, {"role": "user", "content": "hola"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
        return count

    return call, client.close


def _pydantic_ai(base_url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import openai
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    model = OpenAIChatModel("fake", provider=OpenAIProvider(openai_client=client))
    agent = Agent(model, system_prompt="You are a twin.")

    async def call() -> int:
        count = 0
        async with agent.run_stream("hola") as result:
            async for _ in result.stream_text(delta=True, debounce_by=None):
                count += 1
        return count

    return call, client.close


async def _run(base_url: str, calls: int, only: str | None) -> list[dict[str, Any]]:
    builders: dict[str, Callable[[], tuple[Call, Callable[[], Awaitable[None]]]]] = {
        "raw-httpx2-sse": lambda: _raw_httpx(base_url),
        "openai-sdk-adapter": lambda: _adapter("openai", base_url),
        "anthropic-sdk-adapter": lambda: _adapter("anthropic", base_url),
        "openai-sdk-typed": lambda: _openai_typed(base_url),
        "pydantic-ai": lambda: _pydantic_ai(base_url),
    }
    names = [only] if only else [n for n in builders if n not in ("pydantic-ai", "openai-sdk-typed")]
    rows = []
    for name in names:
        call, close = builders[name]()
        rows.append(await _measure(name, call, calls))
        await close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--only",
        choices=[
            "raw-httpx2-sse",
            "openai-sdk-adapter",
            "anthropic-sdk-adapter",
            "openai-sdk-typed",
            "pydantic-ai",
        ],
    )
    parser.add_argument("--burst", action="store_true", help="the fake writes each stream at once")
    args = parser.parse_args()
    command = [sys.executable, "-m", "tests.twin.fakes", *(["--burst"] if args.burst else [])]
    fake = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert fake.stdout is not None
        base_url = fake.stdout.readline().strip()
        for row in asyncio.run(_run(base_url, args.calls, args.only)):
            print(json.dumps(row))
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
