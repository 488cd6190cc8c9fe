"""Money arithmetic: parts always sum to the whole, the cumulative method is exact, no floats anywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibethink.core.money import (
    BASIS_POINTS,
    CurrencyMismatch,
    Money,
    cumulative_split,
    evenly,
    format_minor,
    largest_remainder,
    parse_major,
    prorate,
    split,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "vibethink"
amounts = st.integers(min_value=-(10**13), max_value=10**13)
basis_points = st.integers(min_value=0, max_value=BASIS_POINTS)


def two_way(bp: int) -> dict[str, int]:
    return {"celebrity": bp, "platform": BASIS_POINTS - bp}


class TestLargestRemainder:
    @given(amounts, st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12))
    def test_parts_always_sum_to_the_whole(self, total: int, weights: list[int]) -> None:
        if sum(weights) == 0:
            weights = [*weights, 1]
        parts = largest_remainder(total, weights)
        assert sum(parts) == total
        assert len(parts) == len(weights)

    @given(
        st.integers(min_value=0, max_value=10**13), st.lists(st.integers(1, 10**6), min_size=1, max_size=12)
    )
    def test_each_part_is_within_one_unit_of_its_exact_share(self, total: int, weights: list[int]) -> None:
        parts = largest_remainder(total, weights)
        for part, weight in zip(parts, weights, strict=True):
            exact_floor = total * weight // sum(weights)
            assert exact_floor <= part <= exact_floor + 1

    @given(amounts, basis_points)
    def test_a_negative_amount_splits_as_the_mirror_of_the_positive(self, total: int, bp: int) -> None:
        assert split(-total, two_way(bp)) == {k: -v for k, v in split(total, two_way(bp)).items()}

    def test_the_spare_cent_goes_to_the_largest_remainder(self) -> None:
        assert split(1_666_667, two_way(8_000)) == {"celebrity": 1_333_334, "platform": 333_333}
        assert largest_remainder(100, [1, 1, 1]) == [34, 33, 33]

    def test_shares_must_add_up_to_ten_thousand_basis_points(self) -> None:
        with pytest.raises(ValueError, match="10,000"):
            split(100, {"a": 7_000, "b": 2_000})

    def test_weights_must_not_all_be_zero(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            largest_remainder(100, [0, 0])


class TestCumulativeMethod:
    @given(st.lists(st.integers(min_value=-(10**9), max_value=10**11), min_size=1, max_size=36), basis_points)
    def test_each_period_balances_and_totals_are_the_split_of_the_total(
        self, amounts_by_period: list[int], bp: int
    ) -> None:
        periods = cumulative_split(amounts_by_period, two_way(bp))
        for amount, parts in zip(amounts_by_period, periods, strict=True):
            assert sum(parts.values()) == amount
        totals = {k: sum(p[k] for p in periods) for k in ("celebrity", "platform")}
        assert totals == split(sum(amounts_by_period), two_way(bp))

    @given(st.lists(st.integers(min_value=0, max_value=10**11), min_size=2, max_size=24), basis_points)
    def test_splitting_in_two_runs_with_what_was_already_given_is_the_same(
        self, amounts_by_period: list[int], bp: int
    ) -> None:
        whole = cumulative_split(amounts_by_period, two_way(bp))
        first = cumulative_split(amounts_by_period[:1], two_way(bp))
        rest = cumulative_split(amounts_by_period[1:], two_way(bp), already=first[0])
        assert first + rest == whole

    def test_the_campaign_of_the_spec_loses_nothing(self) -> None:
        months = evenly(5_000_000, 3)
        assert months == [1_666_667, 1_666_667, 1_666_666]
        parts = cumulative_split(months, two_way(8_000))
        assert [p["celebrity"] for p in parts] == [1_333_334, 1_333_333, 1_333_333]
        assert [p["platform"] for p in parts] == [333_333, 333_334, 333_333]


class TestEvenlyAndProration:
    @given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=120))
    def test_evenly_sums_and_differs_by_at_most_one(self, total: int, periods: int) -> None:
        parts = evenly(total, periods)
        assert sum(parts) == total
        assert max(parts) - min(parts) <= 1

    @given(st.integers(0, 10**9), st.integers(1, 10**7), st.data())
    def test_prorate_is_bounded_by_the_amount(self, amount: int, whole: int, data: st.DataObject) -> None:
        used = data.draw(st.integers(0, whole))
        value = prorate(amount, used, whole)
        assert 0 <= value <= amount
        assert prorate(amount, whole, whole) == amount


class TestMoneyValues:
    def test_amounts_are_integers_only(self) -> None:
        with pytest.raises(TypeError):
            Money(10.5)  # type: ignore[arg-type]

    def test_currencies_do_not_mix(self) -> None:
        with pytest.raises(CurrencyMismatch):
            Money(100, "USD") + Money(100, "EUR")

    def test_currency_codes_are_iso_shaped(self) -> None:
        with pytest.raises(ValueError, match="ISO 4217"):
            Money(100, "usd")

    @given(st.integers(min_value=-(10**15), max_value=10**15))
    def test_formatting_and_parsing_round_trip(self, amount: int) -> None:
        assert parse_major(format_minor(amount, "USD", symbol=False), "USD") == amount

    def test_formats(self) -> None:
        assert format_minor(8_333_334) == "$83,333.34"
        assert format_minor(-5) == "-$0.05"
        assert format_minor(1500, "JPY") == "1,500 JPY"
        assert parse_major("117,166.67") == 11_716_667

    def test_parse_refuses_sub_cent_precision(self) -> None:
        with pytest.raises(ValueError, match="decimal places"):
            parse_major("1.005")


def money_paths() -> list[Path]:
    paths = [SRC / "core" / "money.py", *sorted((SRC / "billing").rglob("*.py"))]
    # Quotas measure time (monotonic clocks are floats); no amount of money passes through them.
    return [p for p in paths if p.name != "quotas.py"]


class TestNoFloatsInMoneyPaths:
    def test_the_scan_covers_the_billing_domain(self) -> None:
        names = {p.name for p in money_paths()}
        assert {"money.py", "ledger.py", "statements.py"} <= names

    @pytest.mark.parametrize("path", money_paths(), ids=lambda p: str(p.relative_to(SRC)))
    def test_no_float_literal_float_call_or_true_division(self, path: Path) -> None:
        tree = ast.parse(path.read_text(), filename=str(path))
        offences: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                offences.append(f"line {node.lineno}: float literal {node.value!r}")
            elif isinstance(node, ast.Name) and node.id in {"float", "Decimal"}:
                offences.append(f"line {node.lineno}: {node.id}")
            elif isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
                offences.append(f"line {node.lineno}: true division (use // on integers)")
        assert offences == []
