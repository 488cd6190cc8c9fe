"""Allowed origins of an embed: exact origins or hosts and `*.example.com` wildcards.

One rule speaks both languages the browser enforces: it matches a request's `Origin` header (CORS,
session tokens) and renders as a CSP `frame-ancestors` source (the iframe), with the same meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from vibethink.core.errors import InvalidInput

MAX_RULES: Final = 50
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")
_RULE = re.compile(r"^(?:(?P<scheme>https?)://)?(?P<host>[^:/]+)(?::(?P<port>\d{1,5}|\*))?/?$")
_ORIGIN = re.compile(r"^(?P<scheme>https?)://(?P<host>[^:/]+)(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True, slots=True)
class OriginRule:
    """`scheme` None matches http and https; `port` None the scheme's default port, `"*"` any port."""

    scheme: str | None
    host: str
    port: int | str | None
    wildcard: bool

    @property
    def text(self) -> str:
        head = f"{self.scheme}://" if self.scheme else ""
        tail = f":{self.port}" if self.port is not None else ""
        return f"{head}{'*.' if self.wildcard else ''}{self.host}{tail}"

    def matches(self, origin: Origin) -> bool:
        if self.scheme is not None and origin.scheme != self.scheme:
            return False
        if self.port != "*":
            wanted = DEFAULT_PORTS[origin.scheme] if self.port is None else self.port
            if origin.port != wanted:
                return False
        if self.wildcard:
            return origin.host.endswith("." + self.host)
        return origin.host == self.host

    def csp_sources(self) -> list[str]:
        host = f"{'*.' if self.wildcard else ''}{self.host}"
        port = f":{self.port}" if self.port is not None else ""
        schemes = [self.scheme] if self.scheme else ["http", "https"]
        return [f"{scheme}://{host}{port}" for scheme in schemes]


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def text(self) -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{self.host}" + ("" if default else f":{self.port}")


def parse_origin(value: str | None) -> Origin | None:
    """A browser's `Origin` header; None for absent, `null` or anything malformed."""
    if not value:
        return None
    found = _ORIGIN.match(value.strip().lower())
    if found is None:
        return None
    scheme = found["scheme"]
    port = int(found["port"]) if found["port"] else DEFAULT_PORTS[scheme]
    return Origin(scheme, found["host"], port) if 0 < port < 65536 else None


def parse_rule(value: str, *, field: str = "allowed_origins") -> OriginRule:
    text = value.strip().lower()
    found = _RULE.match(text)
    host = found["host"] if found else ""
    if found is None or not (_HOST.match(host) or host in ("localhost",)) or len(text) > 300:
        raise InvalidInput(
            f"{value!r} is not an origin: use https://shop.example.com, shop.example.com,"
            " *.example.com or http://localhost:8001.",
            field=field,
        )
    wildcard = host.startswith("*.")
    bare = host[2:] if wildcard else host
    if wildcard and "." not in bare:
        raise InvalidInput(f"{value!r} is too broad: a wildcard needs a registrable domain.", field=field)
    port: int | str | None = None
    if found["port"] == "*":
        port = "*"
    elif found["port"]:
        port = int(found["port"])
        if not 0 < port < 65536:
            raise InvalidInput(f"{value!r} has an impossible port.", field=field)
    return OriginRule(scheme=found["scheme"], host=bare, port=port, wildcard=wildcard)


def parse_rules(values: list[str] | tuple[str, ...], *, field: str = "allowed_origins") -> list[OriginRule]:
    if len(values) > MAX_RULES:
        raise InvalidInput(f"At most {MAX_RULES} allowed origins.", field=field)
    rules = [parse_rule(v, field=f"{field}.{i}") for i, v in enumerate(values)]
    return list({rule.text: rule for rule in rules}.values())


def allows(rules: tuple[OriginRule, ...], origin: Origin | None) -> bool:
    return origin is not None and any(rule.matches(origin) for rule in rules)


def frame_ancestors(rules: tuple[OriginRule, ...]) -> str:
    """The CSP directive for an iframe that only these origins (and the platform's own pages, for
    the studio's preview) may embed."""
    sources = [source for rule in rules for source in rule.csp_sources()]
    return " ".join(["frame-ancestors", "'self'", *sources])
