"""Model providers behind one small streaming interface, chosen per twin; keys only from settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from vibethink.core.settings import Settings
from vibethink.twin.providers.base import (
    Citation,
    Generation,
    GenerationRequest,
    ModelProvider,
    ProviderUnavailable,
    Usage,
)

__all__ = [
    "PROVIDER_NAMES",
    "Citation",
    "Generation",
    "GenerationRequest",
    "ModelProvider",
    "ProviderUnavailable",
    "Usage",
    "aclose_all",
    "provider_for",
]

PROVIDER_NAMES: Final = ("grounded", "openai", "anthropic")
# A model name a twin may pick: what the services use (`gpt-4o-mini`, `llama3.1:8b`, `org/model`).
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")

_cache: dict[tuple[Any, ...], ModelProvider] = {}


def choice_of(settings: Settings, twin_config: Mapping[str, Any] | None) -> tuple[str, str]:
    """(provider, model) for a twin: its `model` object when valid, else the platform's default."""
    chosen = (twin_config or {}).get("model")
    provider: str = settings.model_provider
    model = ""
    if isinstance(chosen, Mapping):
        if chosen.get("provider") in PROVIDER_NAMES:
            provider = str(chosen["provider"])
        if isinstance(chosen.get("model"), str) and _MODEL_NAME.fullmatch(chosen["model"]):
            model = chosen["model"]
    if provider == "openai":
        return provider, model or settings.openai_model
    if provider == "anthropic":
        return provider, model or settings.anthropic_model
    return "grounded", "grounded"


def provider_for(settings: Settings, twin_config: Mapping[str, Any] | None = None) -> ModelProvider:
    """The provider a twin uses, one instance (and one HTTP pool) per configuration per process."""
    name, model = choice_of(settings, twin_config)
    if name == "openai":
        key: tuple[Any, ...] = (
            name,
            model,
            settings.openai_base_url,
            settings.openai_api_key,
            settings.provider_timeout_seconds,
            settings.provider_connect_timeout_seconds,
        )
    elif name == "anthropic":
        key = (
            name,
            model,
            settings.anthropic_base_url,
            settings.anthropic_api_key,
            settings.provider_timeout_seconds,
            settings.provider_connect_timeout_seconds,
        )
    else:
        key = (name,)
    found = _cache.get(key)
    if found is None:
        found = _build(name, model, settings)
        _cache[key] = found
    return found


def _build(name: str, model: str, settings: Settings) -> ModelProvider:
    # The SDKs load only when a twin uses them: the offline default imports nothing remote.
    if name == "openai":
        from vibethink.twin.providers.openai_chat import OpenAIChatProvider

        return OpenAIChatProvider(
            base_url=settings.openai_base_url,
            model=model,
            api_key=settings.openai_api_key,
            timeout_seconds=settings.provider_timeout_seconds,
            connect_timeout_seconds=settings.provider_connect_timeout_seconds,
        )
    if name == "anthropic":
        from vibethink.twin.providers.anthropic_messages import AnthropicMessagesProvider

        return AnthropicMessagesProvider(
            base_url=settings.anthropic_base_url,
            model=model,
            api_key=settings.anthropic_api_key,
            timeout_seconds=settings.provider_timeout_seconds,
            connect_timeout_seconds=settings.provider_connect_timeout_seconds,
        )
    from vibethink.twin.providers.grounded import GroundedProvider

    return GroundedProvider()


async def aclose_all() -> None:
    """Closes every cached provider's HTTP pool (app shutdown, tests)."""
    providers = list(_cache.values())
    _cache.clear()
    for provider in providers:
        await provider.aclose()
