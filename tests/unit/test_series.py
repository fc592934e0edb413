"""The daily series against a plain per-day model: any window sum, after days added in any
order, rolled off, and read back from the encoded form."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scoring.series import FIELDS, Balances, Flows

amounts = st.tuples(*[st.integers(-(10**9), 10**9)] * FIELDS)
adds = st.lists(st.tuples(st.integers(100, 140), amounts), max_size=40)


def window(model: dict[int, list[int]], first: int, last: int) -> list[int]:
    return [sum(row[k] for d, row in model.items() if first <= d <= last) for k in range(FIELDS)]


@given(adds, adds, st.integers(95, 145), st.integers(0, 12))
def test_flow_window_sums_match_a_per_day_model(
    before: list[tuple[int, tuple[int, ...]]], after: list[tuple[int, tuple[int, ...]]], cut: int, width: int
) -> None:
    flows, model = Flows(), {}
    for day, row in before:
        flows.add(day, row)  # type: ignore[arg-type]  # six amounts
        model[day] = [a + b for a, b in zip(model.get(day, [0] * FIELDS), row, strict=True)]
    flows.prune(cut)  # days before the cut roll off: sums from it on stay exact
    model = {d: row for d, row in model.items() if d >= cut}
    for day, row in after:
        day = max(day, cut)  # only days not rolled off change
        flows.add(day, row)  # type: ignore[arg-type]
        model[day] = [a + b for a, b in zip(model.get(day, [0] * FIELDS), row, strict=True)]
    decoded = Flows.from_list(flows.to_list())
    for first in range(cut, 142):
        last = first + width
        assert flows.total(first, last) == window(model, first, last)
        assert decoded.total(first, last) == window(model, first, last)
        assert [flows.field_total(first, last, k) for k in range(FIELDS)] == window(model, first, last)


@given(st.lists(st.tuples(st.integers(100, 140), st.integers(100, 160), st.integers(-1000, 1000)), max_size=20))
def test_balance_sums_match_a_per_day_model(shifts: list[tuple[int, int, int]]) -> None:
    balances, aum = Balances(), dict.fromkeys(range(90, 170), 0)
    for start, end, delta in shifts:
        balances.shift(start, end, delta, -delta)
        for d in range(start, end):
            aum[d] += delta
    decoded = Balances.from_list(balances.to_list())
    for first in range(90, 160, 7):
        for last in (first, first + 3, first + 9):
            expected = sum(aum[d] for d in range(first, last + 1))
            assert balances.total(first, last, False) == expected == decoded.total(first, last, False)
            assert balances.total(first, last, True) == -expected
