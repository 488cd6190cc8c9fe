"""RFC 8785 (JCS) canonical JSON for ledger records.

Records hold no floats and only integers within ±2^53 (`rules.plain` sees to that) and their keys
are ASCII, so the standard library's sorted, compact, non-ASCII-preserving output *is* the RFC 8785
form; a test holds it byte-identical to the `rfc8785` reference. Anything else goes to the reference.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _simple(value: Any) -> bool:
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return -(2**53) < value < 2**53
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _simple(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_simple(v) for v in value)
    return False


def canonical(document: Any) -> bytes:
    """The RFC 8785 bytes of `document`."""
    if _simple(document):
        return _encoder.encode(document).encode()
    return rfc8785.dumps(document)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
