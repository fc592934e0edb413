"""The CRM's side of the tier changes, for the examples: each customer's tier, and what
was applied, changed together in one SQLite transaction, so a change delivered twice (a
redelivery, a replay, an exact copy left on the topic by a worker's crash) is applied once.

Two guards, both in that transaction: an ``event_id`` already applied is a copy; a
``sequence`` not above the customer's last applied one is old news (tierstream numbers
every customer's outputs in order, and a customer's Redis hash carries the latest).
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any


class CrmStore:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self.db = sqlite3.connect(path)
        with self.db:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS customer_tier ("
                "customer_id TEXT PRIMARY KEY, segment TEXT, tier TEXT, sequence INTEGER)"
            )
            self.db.execute("CREATE TABLE IF NOT EXISTS applied_event (event_id TEXT PRIMARY KEY)")
        self.applied = 0  # tier changes applied by this process (the tests count them)

    def apply(self, change: dict[str, Any]) -> bool:
        """One tier-change event (the ``tier-changes`` topic's value, or the Redis stream
        entry's ``json``); False if it was a copy or older than what the CRM has."""
        with self.db:  # the tier and the record that it was applied: both, or neither
            seen = self.db.execute("SELECT 1 FROM applied_event WHERE event_id = ?", (change["event_id"],))
            if seen.fetchone() is not None:
                return False
            self.db.execute("INSERT INTO applied_event VALUES (?)", (change["event_id"],))
            if not self._newer(change["customer_id"], change["segment"], change["tier"], change["sequence"]):
                return False
        self.applied += 1
        return True

    def resync(self, customer_id: str, segment: str, tier: str, sequence: int) -> bool:
        """A customer's current tier as its Redis hash has it (after entries were trimmed
        from the stream before the CRM read them)."""
        with self.db:
            return self._newer(customer_id, segment, tier, sequence)

    def _newer(self, customer_id: str, segment: str, tier: str, sequence: int) -> bool:
        row = self.db.execute("SELECT sequence FROM customer_tier WHERE customer_id = ?", (customer_id,)).fetchone()
        if row is not None and row[0] >= sequence:
            return False
        self.db.execute(
            "INSERT OR REPLACE INTO customer_tier VALUES (?, ?, ?, ?)", (customer_id, segment, tier, sequence)
        )
        return True

    def tiers(self) -> dict[str, tuple[str, str]]:
        """customer id -> (segment, tier)."""
        rows = self.db.execute("SELECT customer_id, segment, tier FROM customer_tier")
        return {cid: (segment, tier) for cid, segment, tier in rows}


def arguments(doc: str, **defaults: str) -> argparse.Namespace:
    """The command line of an example: ``--name value`` for each default (``db``: the CRM's SQLite file)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in {**defaults, "db": "crm.sqlite"}.items():
        parser.add_argument(f"--{name.replace('_', '-')}", default=default)
    return parser.parse_args()
