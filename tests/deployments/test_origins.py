"""Allowed origins: one rule means the same for CORS, session tokens and CSP frame-ancestors."""

from __future__ import annotations

import pytest

from vibethink.core.errors import InvalidInput
from vibethink.deployments.origins import allows, frame_ancestors, parse_origin, parse_rule, parse_rules


class TestRules:
    @pytest.mark.parametrize(
        ("rule", "origin", "allowed"),
        [
            ("https://shop.example.com", "https://shop.example.com", True),
            ("https://shop.example.com", "http://shop.example.com", False),
            ("https://shop.example.com", "https://shop.example.com:8443", False),
            ("shop.example.com", "http://shop.example.com", True),
            ("shop.example.com", "https://shop.example.com", True),
            ("*.example.com", "https://a.example.com", True),
            ("*.example.com", "https://a.b.example.com", True),
            ("*.example.com", "https://example.com", False),
            ("*.example.com", "https://evilexample.com", False),
            ("*.example.com", "https://example.com.evil.org", False),
            ("http://localhost:8001", "http://localhost:8001", True),
            ("http://localhost:8001", "http://localhost:8002", False),
            ("http://localhost:*", "http://localhost:9999", True),
        ],
    )
    def test_a_rule_matches_exactly_the_origins_it_names(self, rule: str, origin: str, allowed: bool) -> None:
        assert allows((parse_rule(rule),), parse_origin(origin)) is allowed

    @pytest.mark.parametrize(
        "bad", ["*", "*.com", "https://", "ftp://x.com", "a b.com", "https://x.com/path?q"]
    )
    def test_a_rule_that_is_not_an_origin_is_refused(self, bad: str) -> None:
        with pytest.raises(InvalidInput):
            parse_rule(bad)

    @pytest.mark.parametrize("header", [None, "", "null", "javascript:alert(1)", "https://x.com/path"])
    def test_a_missing_or_opaque_origin_is_never_allowed(self, header: str | None) -> None:
        assert allows((parse_rule("*.x.com"), parse_rule("x.com")), parse_origin(header)) is False

    def test_duplicates_collapse_and_rules_are_normalised(self) -> None:
        rules = parse_rules(["HTTPS://Shop.Example.com", "https://shop.example.com/"])
        assert [r.text for r in rules] == ["https://shop.example.com"]


class TestFrameAncestors:
    def test_the_iframe_policy_lists_the_same_origins(self) -> None:
        rules = tuple(parse_rules(["https://shop.example.com", "*.fans.org", "http://localhost:8001"]))
        assert frame_ancestors(rules) == (
            "frame-ancestors 'self' https://shop.example.com http://*.fans.org https://*.fans.org http://localhost:8001"
        )

    def test_no_origins_means_only_the_platform_may_frame_the_chat(self) -> None:
        assert frame_ancestors(()) == "frame-ancestors 'self'"
