"""Money as integer minor units with an ISO 4217 currency; ratios in basis points.

Every split uses the largest-remainder method, so the parts always add up to the whole to the cent.
Amounts recognised over time use the cumulative method: a period's part is the part of the
cumulative amount so far minus what earlier periods already received, so each period balances and
each party's total over all periods is the exact split of the total.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

K = TypeVar("K", bound=Hashable)

BASIS_POINTS: Final = 10_000
CURRENCY_PATTERN: Final = re.compile(r"[A-Z]{3}")
# Minor units per major unit for the currencies whose exponent is not 2 (ISO 4217).
_EXPONENTS: Final[Mapping[str, int]] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


class CurrencyMismatch(ValueError):
    pass


def check_currency(code: str) -> str:
    """The code itself when it is three upper-case letters (ISO 4217 shape); ValueError otherwise."""
    if not isinstance(code, str) or not CURRENCY_PATTERN.fullmatch(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


def exponent(currency: str) -> int:
    return _EXPONENTS.get(check_currency(currency), 2)


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount in minor units (cents for USD) of one currency."""

    amount: int
    currency: str = "USD"

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError("money amounts are integers of minor units")
        check_currency(self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def format(self) -> str:
        return format_minor(self.amount, self.currency)


def format_minor(amount: int, currency: str = "USD", *, symbol: bool = True, thousands: bool = True) -> str:
    """`1234567` USD → `$12,345.67`; other currencies carry their code (`1.000 KWD`)."""
    places = exponent(currency)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**places)
    text = (f"{major:,}" if thousands else str(major)) + (f".{minor:0{places}d}" if places else "")
    if symbol and currency == "USD":
        return f"{sign}${text}"
    return f"{sign}{text} {currency}" if symbol else f"{sign}{text}"


def parse_major(text: str, currency: str = "USD") -> int:
    """`"12,345.67"` → `1234567` minor units, exactly (no binary floating point on the way)."""
    places = exponent(currency)
    cleaned = text.strip().replace(",", "").replace("$", "")
    match = re.fullmatch(r"(-)?(\d+)(?:\.(\d+))?", cleaned)
    if match is None:
        raise ValueError(f"{text!r} is not an amount")
    sign, major, fraction = match.group(1), match.group(2), match.group(3) or ""
    minor = str(fraction)
    if len(minor) > places:
        raise ValueError(f"{text!r} has more than {places} decimal places for {currency}")
    value: int = int(major) * 10**places + int(minor.ljust(places, "0") or "0")
    return -value if sign else value


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to non-negative integer `weights`; the parts sum to `total` exactly.

    Each part is the floor of its exact share; the units left over go one each to the largest
    remainders (ties to the earlier part). A negative total splits as the mirror of its absolute value,
    so a reversal undoes exactly what the original split gave each party.
    """
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    denominator = sum(weights)
    if denominator == 0:
        raise ValueError("at least one weight must be positive")
    if total < 0:
        return [-part for part in largest_remainder(-total, weights)]
    quotients = [divmod(total * w, denominator) for w in weights]
    parts = [q for q, _ in quotients]
    left = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-quotients[i][1], i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def split(total: int, shares_bp: Mapping[K, int]) -> dict[K, int]:
    """`total` split by basis-point shares that add up to 10,000; the parts sum to `total` exactly."""
    if sum(shares_bp.values()) != BASIS_POINTS:
        raise ValueError("shares must add up to 10,000 basis points")
    keys = list(shares_bp)
    return dict(zip(keys, largest_remainder(total, [shares_bp[k] for k in keys]), strict=True))


def evenly(total: int, periods: int) -> list[int]:
    """`total` spread over `periods` as evenly as possible, earlier periods taking the extra units."""
    if periods < 1:
        raise ValueError("at least one period")
    return largest_remainder(total, [1] * periods)


def cumulative_split(
    amounts: Sequence[int], shares_bp: Mapping[K, int], *, already: Mapping[K, int] | None = None
) -> list[dict[K, int]]:
    """Each period's parts by the cumulative method.

    A period's part for a party is the party's split of the cumulative amount through that period,
    minus what it was already given. `already` carries earlier periods that are not in `amounts`.
    Every period's parts sum to that period's amount, and the totals are `split(sum(amounts))`.
    """
    given: dict[K, int] = {k: 0 for k in shares_bp}
    cumulative = 0
    if already:
        for key, value in already.items():
            given[key] = given.get(key, 0) + value
        cumulative = sum(already.values())
    result: list[dict[K, int]] = []
    for amount in amounts:
        cumulative += amount
        target = split(cumulative, shares_bp)
        period = {k: target[k] - given[k] for k in shares_bp}
        given = target
        result.append(period)
    return result


def share_of(amount: int, bp: int) -> int:
    """The basis-point share of `amount`, rounded half away from zero (for display and rates)."""
    if not 0 <= bp <= BASIS_POINTS:
        raise ValueError("basis points are between 0 and 10,000")
    numerator = abs(amount) * bp
    value = (numerator + BASIS_POINTS // 2) // BASIS_POINTS
    return -value if amount < 0 else value


def prorate(amount: int, used: int, whole: int) -> int:
    """`amount × used / whole` rounded half up: the unused value of a period (seconds, days)."""
    if whole <= 0 or not 0 <= used <= whole:
        raise ValueError("0 ≤ used ≤ whole and whole > 0")
    return (amount * used * 2 + whole) // (2 * whole)
