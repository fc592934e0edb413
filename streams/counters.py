"""Operational counters of a worker, served on its web port."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Counters:
    records_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    days_closed: int = 0

    def dead(self, reason: str) -> None:
        self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
