"""The two steps of the core: apply an input event, close a business day.

Each step is ``(state, input) -> Step(state, outputs, verdict)``: a late event becomes a
dead letter and a duplicate is ignored; anything else is ``evolve``d into the state, then
``decide``s the tier, RM alerts and risk signals as of the customer's as-of day. A step
takes ownership of the state it is given and returns it updated (copying a state per event
would cost more than the decision itself); callers that need the old state keep their own
copy (``CustomerState.from_bytes(state.to_bytes())``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from schemas.vocabulary import Reason
from scoring.clock import Clock
from scoring.days import Day, format_day
from scoring.decide import decide_at_close, decide_on_event
from scoring.events import CustomerEvent
from scoring.evolve import evolve
from scoring.outputs import Cause, Output, Source, dead_letter
from scoring.rules import Rules
from scoring.state import CustomerState

PRUNE_SLACK_DAYS = 7  # how old what a roll-off forgets gets before the roll-off is written


class Verdict(Enum):
    """What became of an input record (the counters a worker serves)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


@dataclass(slots=True)
class Step:
    state: CustomerState | None
    outputs: list[Output]
    verdict: Verdict
    evaluated: bool  # the customer was evaluated: its Redis hash is refreshed
    changed: bool = True  # the state may differ from what it was (False: its bytes did not change)


def apply_event(state: CustomerState | None, event: CustomerEvent, source: Source, clock: Clock, rules: Rules) -> Step:
    """Apply one valid customer event: late -> dead letter, duplicate -> ignored,
    otherwise evolve the state and decide as of the as-of day."""
    if clock.is_late(event.day, rules) or clock.is_future(event.day, rules):
        assert clock.closed is not None  # nothing is late or future before the first close
        closed = format_day(clock.closed)
        if clock.is_late(event.day, rules):
            reason = Reason.LATE
            error = f"event day {format_day(event.day)} is past the lateness allowance of closed day {closed}"
        else:
            reason = Reason.FUTURE
            error = (
                f"event day {format_day(event.day)} is more than allowed_future_days ({rules.allowed_future_days}) "
                f"after the day after closed day {closed}"
            )
        value = {"customer_id": event.customer_id, "event_id": event.event_id, "ts": event.ts}
        segment = state.segment if state is not None else None
        return Step(state, [dead_letter(source, reason, error, value, segment, rules)], Verdict.DEAD_LETTER, False)
    seen_on = state.seen.get(event.event_id) if state is not None else None
    if seen_on is not None and not clock.is_late(seen_on, rules):
        # an id seen on a day that is late by now counts as forgotten (``prune``), whether
        # the roll-off that forgets it has been written or not (``close_day``)
        return Step(state, [], Verdict.DUPLICATE, False)
    evolved = evolve(state, event, rules)
    outputs = decide_on_event(evolved, clock, Cause(event.ts, event.event_id), rules)
    return Step(evolved.state, outputs, Verdict.ACCEPTED, bool(outputs))


def close_day(state: CustomerState, day: Day, clock: Clock, rules: Rules) -> Step:
    """Evaluate one customer at the close of ``day`` (``clock`` has already advanced to
    it), then roll off what no window or late event needs any more. Customers that did
    not exist yet are left alone."""
    if state.first_day > day:
        return Step(state, [], Verdict.ACCEPTED, False, changed=False)
    decided = state.decision_fields()
    outputs = decide_at_close(state, day, clock, rules)
    keep_from, mutable_from = day + 2 - rules.horizon, day - rules.allowed_lateness_days + 1
    # What a roll-off forgets changes no later result (windows start after it, events
    # before it are late, ids seen on late days are forgotten by ``apply_event`` too), so
    # a state that still holds it is as good: a roll-off is reported as a change only once
    # what it forgets is ``PRUNE_SLACK_DAYS`` old, which bounds what a stored state carries
    # and spares most closes a changelog write per active customer.
    stale = state.prune(keep_from - PRUNE_SLACK_DAYS, mutable_from - PRUNE_SLACK_DAYS)
    state.prune(keep_from, mutable_from)
    changed = stale or bool(outputs) or state.decision_fields() != decided
    return Step(state, outputs, Verdict.ACCEPTED, True, changed)
