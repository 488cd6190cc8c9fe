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
    """True when the standard library's output is already the RFC 8785 form (iterative: runs per record)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -(2**53) < item < 2**53:
                return False
        elif kind is dict:
            for key, inner in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                stack.append(inner)
        elif kind is list:
            stack.extend(item)
        else:
            return False
    return True


def canonical(document: Any) -> bytes:
    """The RFC 8785 bytes of `document`."""
    if _simple(document):
        return _encoder.encode(document).encode()
    return rfc8785.dumps(document)


def canonical_record(document: dict[str, Any], *, free_form: tuple[str, ...]) -> bytes:
    """`canonical(document)` for a document whose other fields are known to be strings, ints or None.

    Only the `free_form` fields (observations, artifacts) need the check, which runs once per record.
    """
    if all(_simple(document[name]) for name in free_form):
        return _encoder.encode(document).encode()
    return rfc8785.dumps(document)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
