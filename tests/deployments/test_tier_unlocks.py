"""What the portal says a tier unlocks, from billing's entitlements."""

from __future__ import annotations

from vibethink.billing.demo_tiers import DEMO_TIERS
from vibethink.deployments.pages import unlocks


def test_each_entitlement_is_described_in_the_pages_language() -> None:
    premium = {"messages_per_day": 200, "premium_content": True, "voice_minutes": 30, "video_minutes": 0}
    assert unlocks(premium, "en") == ["200 messages a day", "Premium content", "30 voice minutes"]
    assert unlocks(premium, "es") == ["200 mensajes al día", "Contenido exclusivo", "30 minutos de voz"]


def test_no_daily_limit_reads_unlimited_and_an_unknown_language_falls_back_to_english() -> None:
    assert unlocks({"messages_per_day": None, "video_minutes": 60}, "fr") == [
        "Unlimited messages",
        "60 video minutes",
    ]


def test_the_demo_tiers_all_say_something() -> None:
    assert all(unlocks(tier["entitlements"], "en") for tier in DEMO_TIERS)


def test_entitlements_without_known_keys_say_nothing() -> None:
    assert unlocks({"perks": ["Backstage"]}, "en") == []
