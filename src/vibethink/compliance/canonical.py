"""RFC 8785 (JCS) canonical JSON for ledger records.

For JSON without floats, `orjson` with sorted keys writes exactly the RFC 8785 bytes: compact, strings
as UTF-8 with only `"`, `\\` and control characters escaped (`\\b \\t \\n \\f \\r`, else `\\u00xx`),
integers in decimal. Two rules need a check: integers beyond ±(2^53 − 1) (`OPT_STRICT_INTEGER` refuses
them) and key order, which RFC 8785 takes over UTF-16 code units while orjson sorts by code point; the
two only differ for characters from U+E000 up, whose UTF-8 lead bytes are 0xEE–0xF4. Output holding
such a byte, floats, or anything orjson refuses goes to the `rfc8785` reference implementation.
Tests hold both paths byte-identical to the RFC's own examples and to the reference.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
import rfc8785

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
# Lead bytes of UTF-8 sequences for U+E000…U+FFFF (0xEE, 0xEF) and above U+FFFF (0xF0–0xF4).
_UTF16_ORDER_DIFFERS = re.compile(rb"[\xee-\xf4]")


def _fast(document: Any) -> bytes | None:
    try:
        data = orjson.dumps(document, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: big integers, non-string keys, surrogates, other types
        return None
    if data.isascii() or _UTF16_ORDER_DIFFERS.search(data) is None:
        return data
    return None


def _floatless(value: Any) -> bool:
    """True when `value` is built of dicts, lists, strings, integers, booleans and None only."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False
    return True


def canonical(document: Any) -> bytes:
    """The RFC 8785 bytes of any JSON `document`."""
    if _floatless(document):
        fast = _fast(document)
        if fast is not None:
            return fast
    return rfc8785.dumps(document)


def canonical_plain(document: Any) -> bytes:
    """`canonical(document)` for a document known to hold no floats: built from `rules.plain` values,
    strings, integers, booleans and None (ledger records, event hashes). No walk over the document."""
    fast = _fast(document)
    return fast if fast is not None else rfc8785.dumps(document)


def canonical_record(document: dict[str, Any], *, free_form: tuple[str, ...]) -> bytes:
    """`canonical(document)` for a document whose other fields are known to be strings, ints or None.

    Only the `free_form` fields (observations, artifacts) need the check for floats.
    """
    if all(_floatless(document[name]) for name in free_form):
        return canonical_plain(document)
    return rfc8785.dumps(document)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
