"""The OpenAI-compatible and Anthropic adapters against local fake servers speaking their wire formats."""

from __future__ import annotations

import time

import pytest

from tests.twin.conftest import make_passage, make_request
from tests.twin.fakes import FakeModelServer, closed_port
from vibethink.core.settings import Settings
from vibethink.twin.context import HistoryTurn
from vibethink.twin.providers import aclose_all, choice_of, provider_for
from vibethink.twin.providers.anthropic_messages import AnthropicMessagesProvider
from vibethink.twin.providers.base import Generation, GenerationRequest, ModelProvider, ProviderUnavailable
from vibethink.twin.providers.grounded import GroundedProvider
from vibethink.twin.providers.openai_chat import OpenAIChatProvider

FLAVOURS = ["openai", "anthropic"]


def build(
    flavour: str, fake: FakeModelServer, *, timeout: float = 2.0, port: int | None = None
) -> ModelProvider:
    options = {
        "model": "twin-model",
        "api_key": "sk-test",
        "timeout_seconds": timeout,
        "connect_timeout_seconds": 1.0,
    }
    if flavour == "openai":
        url = fake.openai_base_url if port is None else f"http://127.0.0.1:{port}/v1"
        return OpenAIChatProvider(base_url=url, **options)  # type: ignore[arg-type]
    url = fake.anthropic_base_url if port is None else f"http://127.0.0.1:{port}"
    return AnthropicMessagesProvider(base_url=url, **options)  # type: ignore[arg-type]


async def collect(
    provider: ModelProvider, request: GenerationRequest | None = None
) -> tuple[list[str], Generation]:
    generation = Generation()
    deltas = [d async for d in provider.stream(request or make_request(), generation)]
    return deltas, generation


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestStreaming:
    async def test_deltas_arrive_in_order_and_make_the_whole_reply(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        provider = build(flavour, fake_model)
        try:
            deltas, generation = await collect(provider)
        finally:
            await provider.aclose()
        assert deltas == fake_model.deltas()
        assert len(deltas) > 5
        assert "".join(deltas) == fake_model.reply
        assert generation.finish_reason in {"stop", "end_turn"}

    async def test_usage_comes_from_the_final_chunk_or_event(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        provider = build(flavour, fake_model)
        try:
            _, generation = await collect(provider)
        finally:
            await provider.aclose()
        assert generation.usage.output_tokens == len(fake_model.reply.split())
        assert generation.usage.input_tokens > 0
        assert generation.model == "twin-model"

    async def test_the_request_carries_model_system_prompt_history_and_key(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        provider = build(flavour, fake_model)
        history = (
            HistoryTurn("twin", "¡Bienvenido!"),
            HistoryTurn("fan", "Hola"),
            HistoryTurn("twin", "¿Qué tal?"),
        )
        try:
            await collect(provider, make_request("¿Y Maradona?", history=history))
        finally:
            await provider.aclose()
        sent = fake_model.requests[-1]
        assert sent.body["model"] == "twin-model"
        assert sent.body["stream"] is True
        messages = sent.body["messages"]
        if flavour == "openai":
            assert sent.path == "/v1/chat/completions"
            assert sent.headers["authorization"] == "Bearer sk-test"
            assert messages[0] == {"role": "system", "content": "Eres Andrés Cantor."}
            assert [m["role"] for m in messages[1:]] == ["assistant", "user", "assistant", "user"]
            assert sent.body["stream_options"] == {"include_usage": True}
        else:
            assert sent.path == "/v1/messages"
            assert "sk-test" in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "")[7:])
            assert sent.headers["anthropic-version"]
            assert sent.body["system"] == "Eres Andrés Cantor."
            # The Messages API wants the fan first: the leading greeting is left out.
            assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[-1] == {"role": "user", "content": "¿Y Maradona?"}

    async def test_citations_are_the_passages_the_reply_cites(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        fake_model.reply = "Argentina ganó en 1986 [2] y Maradona brilló [2]."
        passages = (
            make_passage("uno", n=1),
            make_passage("dos", title="Mundial 86", url="https://x.test/86", n=2),
        )
        provider = build(flavour, fake_model)
        try:
            _, generation = await collect(provider, make_request(passages=passages))
        finally:
            await provider.aclose()
        assert [(c.number, c.title, c.url) for c in generation.citations] == [
            (2, "Mundial 86", "https://x.test/86")
        ]

    async def test_one_provider_keeps_one_connection_across_turns(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        provider = build(flavour, fake_model)
        try:
            for _ in range(3):
                await collect(provider)
        finally:
            await provider.aclose()
        assert len(fake_model.requests) == 3
        assert fake_model.connections == 1


class TestFailures:
    async def test_a_slow_model_times_out_as_unavailable(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        fake_model.mode, fake_model.chunk_delay = "slow", 1.0
        provider = build(flavour, fake_model, timeout=0.3)
        started = time.monotonic()
        try:
            with pytest.raises(ProviderUnavailable):
                await collect(provider)
        finally:
            await provider.aclose()
        # A read timeout is not retried: the server took the request.
        assert time.monotonic() - started < 0.9
        assert len(fake_model.requests) == 1

    async def test_a_refused_connection_is_retried_once_then_answers(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        fake_model.refuse_next = 1
        provider = build(flavour, fake_model)
        try:
            deltas, _ = await collect(provider)
        finally:
            await provider.aclose()
        assert "".join(deltas) == fake_model.reply
        assert fake_model.connections == 2

    async def test_a_second_refusal_is_unavailable_after_exactly_one_retry(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        fake_model.refuse_next = 5
        provider = build(flavour, fake_model)
        try:
            with pytest.raises(ProviderUnavailable):
                await collect(provider)
        finally:
            await provider.aclose()
        assert fake_model.connections == 2

    async def test_nothing_listening_is_unavailable(self, flavour: str, fake_model: FakeModelServer) -> None:
        provider = build(flavour, fake_model, port=closed_port())
        try:
            with pytest.raises(ProviderUnavailable):
                await collect(provider)
        finally:
            await provider.aclose()

    async def test_a_server_error_is_unavailable_and_not_retried(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        fake_model.mode, fake_model.status = "error", 500
        provider = build(flavour, fake_model)
        try:
            with pytest.raises(ProviderUnavailable, match="500"):
                await collect(provider)
        finally:
            await provider.aclose()
        assert len(fake_model.requests) == 1

    async def test_a_client_error_is_unavailable(self, flavour: str, fake_model: FakeModelServer) -> None:
        fake_model.mode, fake_model.status = "error", 401
        provider = build(flavour, fake_model)
        try:
            with pytest.raises(ProviderUnavailable):
                await collect(provider)
        finally:
            await provider.aclose()
        assert len(fake_model.requests) == 1

    async def test_a_dropped_stream_is_unavailable_after_the_deltas_it_sent(
        self, flavour: str, fake_model: FakeModelServer
    ) -> None:
        fake_model.mode, fake_model.drop_after = "drop", 4
        provider = build(flavour, fake_model)
        seen: list[str] = []

        async def read_all() -> None:
            async for delta in provider.stream(make_request(), Generation()):
                seen.append(delta)

        try:
            with pytest.raises(ProviderUnavailable):
                await read_all()
        finally:
            await provider.aclose()
        assert 0 < len(seen) < len(fake_model.deltas())
        assert len(fake_model.requests) == 1

    async def test_anthropic_without_a_key_is_unavailable(self, fake_model: FakeModelServer) -> None:
        provider = AnthropicMessagesProvider(
            base_url=fake_model.anthropic_base_url,
            model="m",
            api_key=None,
            timeout_seconds=1.0,
            connect_timeout_seconds=1.0,
        )
        try:
            with pytest.raises(ProviderUnavailable, match="key"):
                await collect(provider)
        finally:
            await provider.aclose()
        assert fake_model.requests == []


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_api_key="sk-platform",
        anthropic_api_key="sk-ant-platform",
    )


class TestChoosingAProvider:
    def test_the_platform_default_is_grounded(self, settings: Settings) -> None:
        assert choice_of(settings, {}) == ("grounded", "grounded")
        assert choice_of(settings, None) == ("grounded", "grounded")

    def test_a_twin_picks_provider_and_model(self, settings: Settings) -> None:
        assert choice_of(settings, {"model": {"provider": "openai", "model": "llama3.1:8b"}}) == (
            "openai",
            "llama3.1:8b",
        )
        assert choice_of(settings, {"model": {"provider": "anthropic"}}) == (
            "anthropic",
            settings.anthropic_model,
        )

    def test_an_unknown_provider_or_odd_model_name_falls_back(self, settings: Settings) -> None:
        assert choice_of(settings, {"model": {"provider": "evil"}}) == ("grounded", "grounded")
        assert choice_of(settings, {"model": {"provider": "openai", "model": "x y\n"}}) == (
            "openai",
            settings.openai_model,
        )
        assert choice_of(settings, {"model": "openai"}) == ("grounded", "grounded")

    async def test_instances_are_cached_per_configuration_and_keys_come_from_settings(
        self, settings: Settings
    ) -> None:
        try:
            first = provider_for(
                settings, {"model": {"provider": "openai", "model": "a"}, "apiKey": "sk-tenant"}
            )
            again = provider_for(
                settings, {"model": {"provider": "openai", "model": "a", "apiKey": "sk-tenant"}}
            )
            other = provider_for(settings, {"model": {"provider": "openai", "model": "b"}})
            assert first is again
            assert first is not other
            assert isinstance(first, OpenAIChatProvider)
            assert first._client.api_key == "sk-platform"
            assert isinstance(provider_for(settings, {}), GroundedProvider)
            assert provider_for(settings, {}) is provider_for(settings, None)
        finally:
            await aclose_all()
