"""What every runner of the core does with an input record: parse it, count it, step the
customer or make its dead letter, and close days. ``scoring.engine.Engine`` (in memory)
and the streaming worker share it, so both count, dead-letter and close alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from schemas.topics import Topic
from schemas.vocabulary import Reason
from scoring.clock import Clock
from scoring.days import Day, format_day
from scoring.events import EndOfDay, Rejected
from scoring.outputs import Output, Source, dead_letter
from scoring.parsing import parse
from scoring.rules import Rules
from scoring.state import CustomerState
from scoring.step import Step, Verdict, apply_event, close_day

Lookup = Callable[[str], CustomerState | None]  # a customer's current state, if it has one


@dataclass
class Counters:
    """What happened to the input records (a worker serves these on /counters)."""

    records_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    days_closed: int = 0
    inputs: dict[str, dict[str, int]] = field(default_factory=dict)  # topic -> verdict -> records

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Processor:
    """The core's record handling with its counters; state is kept by the caller."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.counters = Counters()

    def record(self, topic: Topic, source: Source, lookup: Lookup, clock: Clock) -> Step | EndOfDay:
        """One input record: a customer's step (accepted, duplicate or dead letter), a dead
        letter for a record that is no valid event, or the valid ``eod`` to close."""
        self.counters.records_in += 1
        result = self._judge(topic, source, lookup, clock)
        verdict = Verdict.ACCEPTED if isinstance(result, EndOfDay) else result.verdict
        by_verdict = self.counters.inputs.setdefault(topic.name, {})
        by_verdict[verdict.value] = by_verdict.get(verdict.value, 0) + 1
        return result

    def _judge(self, topic: Topic, source: Source, lookup: Lookup, clock: Clock) -> Step | EndOfDay:
        event = parse(topic, source.raw, self.rules)
        if isinstance(event, Rejected):
            return self._rejected(source, event, lookup)
        if isinstance(event, EndOfDay):
            if clock.skips_too_far(event.business_date, self.rules):
                assert clock.closed is not None
                error = (
                    f"business_date {format_day(event.business_date)} is more than allowed_future_days "
                    f"({self.rules.allowed_future_days}) after closed day {format_day(clock.closed)}"
                )
                value = {"event_id": event.event_id, "business_date": format_day(event.business_date)}
                return self._rejected(source, Rejected(Reason.FUTURE, error, value), lookup)
            self.counters.accepted += 1
            return event
        step = apply_event(lookup(event.customer_id), event, source, clock, self.rules)
        self._count(step)
        return step

    def _rejected(self, source: Source, rejected: Rejected, lookup: Lookup) -> Step:
        # the dead letter names the customer's segment when the record names a known customer
        cid = rejected.value.get("customer_id") if type(rejected.value) is dict else None
        st = lookup(cid) if type(cid) is str and cid else None
        segment = st.segment if st is not None else None
        out = dead_letter(source, rejected.reason, rejected.error, rejected.value, segment, self.rules)
        step = Step(st, [out], Verdict.DEAD_LETTER, False)
        self._count(step)
        return step

    def closes(self, clock: Clock, business_date: Day) -> Iterator[Clock]:
        """The clock after each day an ``eod`` for ``business_date`` closes, in order; the
        caller closes every customer (``close``) before taking the next."""
        for day in clock.advance(business_date):
            yield Clock(day)
            self.counters.days_closed += 1  # once the caller has closed every customer

    def close(self, state: CustomerState, clock: Clock) -> Step:
        """One customer at the close of the clock's latest closed day."""
        assert clock.closed is not None  # closes() yields closed clocks only
        step = close_day(state, clock.closed, clock, self.rules)
        self._count_outputs(step.outputs)
        return step

    def _count(self, step: Step) -> None:
        c = self.counters
        if step.verdict is Verdict.ACCEPTED:
            c.accepted += 1
        elif step.verdict is Verdict.DUPLICATE:
            c.duplicates += 1
        else:
            reason = step.outputs[0].value["reason"]
            c.dead_letters[reason] = c.dead_letters.get(reason, 0) + 1
        self._count_outputs(step.outputs)

    def _count_outputs(self, outputs: list[Output]) -> None:
        for out in outputs:
            kind = out.value["type"]
            self.counters.outputs[kind] = self.counters.outputs.get(kind, 0) + 1
