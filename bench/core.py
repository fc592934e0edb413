"""Micro-benchmark of the scoring core (not a test): validate+apply throughput, the cost of
a day close per customer, and the serialised state size per customer.

    .venv/bin/python bench/core.py [--customers 2000] [--days 30] [--runs 5]

Prints the median of several runs; the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit

from devkit.synthetic import BankConfig, Record, SyntheticBank
from scoring.clock import Clock
from scoring.events import EndOfDay, Rejected
from scoring.outputs import Source
from scoring.parsing import parse
from scoring.rules import Rules
from scoring.state import CustomerState
from scoring.step import apply_event, close_day
from streams.rules_file import load_rules


def one_run(records: list[Record], rules: Rules) -> tuple[float, float, float, dict[str, CustomerState]]:
    """Returns (validate s, validate+apply s, close s per customer-day, final states)."""
    source = Source("bench", 0, 0, None, None)
    states: dict[str, CustomerState] = {}
    clock = Clock()
    parse_s = apply_s = close_s = 0.0
    closes = 0
    for rec in records:
        t0 = time.perf_counter()
        event = parse(rec.topic, rec.value, rules)
        t1 = time.perf_counter()
        parse_s += t1 - t0
        if isinstance(event, Rejected):
            continue
        if isinstance(event, EndOfDay):
            for day in clock.advance(event.business_date):
                clock = Clock(day)
                for st in states.values():
                    close_day(st, day, clock, rules)
                    closes += 1
            close_s += time.perf_counter() - t1
            continue
        step = apply_event(states.get(event.customer_id), event, source, clock, rules)
        if step.state is not None:
            states[event.customer_id] = step.state
        apply_s += time.perf_counter() - t1
    return parse_s, parse_s + apply_s, close_s / max(closes, 1), states


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rules = load_rules()
    records = list(SyntheticBank(BankConfig(customers=args.customers, days=args.days)).records())
    events = sum(1 for r in records if r.topic.name != "eod")
    print(f"stream: {args.customers} customers x {args.days} days = {events} customer events, {args.days} closes")
    validate: list[float] = []
    both: list[float] = []
    close: list[float] = []
    states: dict[str, CustomerState] = {}
    for _ in range(args.runs):
        p, b, c, states = one_run(records, rules)
        validate.append(events / p)
        both.append(events / b)
        close.append(c * 1e6)
    sizes = sorted(len(s.to_bytes()) for s in states.values())
    print(f"validate only      : {statistics.median(validate):>9,.0f} events/s (median of {args.runs})")
    print(f"validate + apply   : {statistics.median(both):>9,.0f} events/s (median of {args.runs})")
    print(f"day close          : {statistics.median(close):>9.1f} us per customer-day (median of {args.runs})")
    print(
        f"state per customer : median {statistics.median(sizes):,.0f} B, p95 {sizes[int(len(sizes) * 0.95)]:,} B, "
        f"max {sizes[-1]:,} B (after {args.days} days)"
    )
    yardstick = min(timeit.repeat("sum(range(100))", number=20_000, repeat=5)) / 20_000 * 1e6
    print(f"(machine yardstick: sum(range(100)) takes {yardstick:.2f} us here)")


if __name__ == "__main__":
    main()
