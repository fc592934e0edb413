"""The peers' job, simpler than tierstream's: per customer, a running sum of transaction
amounts (credits minus debits) and a ladder on it; a tier change is published when the
rung changes. Each peer calls ``Progress`` per record so the harness reads its rate."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

LADDER = (0, 50_000, 500_000, 2_000_000)  # units of the amount


def amount(value: dict[str, object]) -> float:
    a = float(str(value["amount"]))
    return -a if value.get("direction") == "debit" else a


def rung(total: float) -> int:
    return sum(1 for line in LADDER if total >= line)


class Progress:
    """Counts processed records; after ``expect`` of them writes ``{"first": t, "last": t,
    "count": n, "cpu": s}`` to ``path`` (times and CPU from the first record on) and ends
    the process (the harness kills it anyway)."""

    def __init__(self, path: Path, expect: int) -> None:
        self.path, self.expect, self.count, self.first, self.cpu = path, expect, 0, 0.0, 0.0

    def tick(self) -> None:
        self.count += 1
        if self.count == 1:
            self.first, self.cpu = time.monotonic(), _cpu()
        if self.count >= self.expect:
            result = {"first": self.first, "last": time.monotonic(), "count": self.count, "cpu": _cpu() - self.cpu}
            self.path.write_text(json.dumps(result))
            os._exit(0)  # a benchmark peer: no graceful shutdown to wait for


def _cpu() -> float:
    t = os.times()
    return t.user + t.system
