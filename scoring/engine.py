"""A whole application in memory: parse, route by customer, keep the clock, step.

This is the reference behaviour of tierstream for one ordered stream of input records:
the ``replay`` command, the property tests and the benchmark run it, and the streaming
pipeline must produce what it produces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from schemas.events import EndOfDay, Rejected, parse
from schemas.topics import Topic
from scoring.outputs import Output, Source, dead_letter
from scoring.rules import Rules
from scoring.state import CustomerState
from scoring.step import ACCEPTED, DEAD, DUPLICATE, Clock, apply_event, close_day


@dataclass
class Counters:
    """What happened to the input records (a worker serves these on /counters)."""

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


class Engine:
    """Feeds records through the core in the order given."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.clock = Clock()
        self.states: dict[str, CustomerState] = {}
        self.counters = Counters()

    def process(self, topic: Topic, source: Source) -> list[Output]:
        self.counters.records_in += 1
        event = parse(topic, source.raw, self.rules)
        if isinstance(event, Rejected):
            cid = event.value.get("customer_id") if type(event.value) is dict else None
            st = self.states.get(cid) if type(cid) is str else None
            self.counters.dead(event.reason)
            segment = st.segment if st is not None else None
            return [dead_letter(source, event.reason, event.error, event.value, segment, self.rules)]
        if isinstance(event, EndOfDay):
            self.counters.accepted += 1
            return self.close(event.business_date)
        step = apply_event(self.states.get(event.customer_id), event, source, self.clock, self.rules)
        if step.state is not None:
            self.states[event.customer_id] = step.state
        if step.verdict == ACCEPTED:
            self.counters.accepted += 1
        elif step.verdict == DUPLICATE:
            self.counters.duplicates += 1
        elif step.verdict == DEAD:
            self.counters.dead(step.outputs[0].value["reason"])
        return step.outputs

    def close(self, business_date: int) -> list[Output]:
        """Close every day up to ``business_date`` that is not closed yet."""
        outputs: list[Output] = []
        for day in self.clock.advance(business_date):
            self.clock = Clock(day)
            self.counters.days_closed += 1
            for st in self.states.values():
                outputs += close_day(st, day, self.clock, self.rules).outputs
        return outputs
