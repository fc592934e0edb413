"""A whole application in memory: parse, keep every customer's state, keep the clock, step.

This is the reference behaviour of tierstream for one ordered stream of input records:
the ``replay`` command, the property tests and the benchmark run it, and the streaming
pipeline must produce what it produces.
"""

from __future__ import annotations

from schemas.topics import Topic
from scoring.clock import Clock
from scoring.events import EndOfDay
from scoring.outputs import Output, Source
from scoring.processor import Counters, Processor
from scoring.rules import Rules
from scoring.state import CustomerState


class Engine:
    """Feeds records through the core in the order given."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.clock = Clock()
        self.states: dict[str, CustomerState] = {}
        self.core = Processor(rules)

    @property
    def counters(self) -> Counters:
        return self.core.counters

    def process(self, topic: Topic, source: Source) -> list[Output]:
        result = self.core.record(topic, source, self.states.get, self.clock)
        if isinstance(result, EndOfDay):
            return self.close(result.business_date)
        if result.state is not None:
            self.states[result.state.customer_id] = result.state
        return result.outputs

    def close(self, business_date: int) -> list[Output]:
        """Close every day up to ``business_date`` that is not closed yet."""
        outputs: list[Output] = []
        for clock in self.core.closes(self.clock, business_date):
            self.clock = clock
            for st in self.states.values():
                outputs += self.core.close(st, clock).outputs
        return outputs
