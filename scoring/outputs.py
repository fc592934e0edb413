"""Output records: the envelope every output shares, and dead letters.

Values are plain dicts in the published field order. ``emitted_at`` is left ``None``:
it is wall-clock time, which the shell stamps when it sends the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.topics import DEAD_LETTERS, Topic
from schemas.vocabulary import Reason
from scoring.rules import Rules
from scoring.state import CustomerState

# Plain slotted dataclasses (not frozen: cheaper to build on the hot path); never mutated.


@dataclass(slots=True)
class Output:
    topic: Topic
    key: str | None
    value: dict[str, Any]


@dataclass(slots=True)
class Cause:
    """What an evaluation is attributed to: an input event, or the close of a day."""

    ts: str
    causation_id: str


@dataclass(slots=True)
class Source:
    """Where an input record came from, for dead letters."""

    topic: str  # as consumed, prefix included
    partition: int
    offset: int
    key: bytes | None
    raw: bytes | None


def envelope(st: CustomerState, rules: Rules, topic: Topic, cause: Cause, sequence: int) -> dict[str, Any]:
    """The fields every output of the customer starts with; ``sequence`` is the customer's
    number for it (``scoring.decide`` hands the numbers out)."""
    return {
        "event_id": f"{st.customer_id}:{sequence}",
        "type": topic.output_type,
        "customer_id": st.customer_id,
        "segment": st.segment,
        "sequence": sequence,
        "ts": cause.ts,
        "emitted_at": None,
        "rules_version": rules.version,
        "causation_id": cause.causation_id,
    }


def _nonempty(value: dict[str, Any], key: str) -> str | None:
    x = value.get(key)
    return x if type(x) is str and x else None


def dead_letter(source: Source, reason: Reason, error: str, value: Any, segment: str | None, rules: Rules) -> Output:
    """A dead letter for one input record (never counted in a customer's sequence)."""
    v = value if type(value) is dict else {}
    customer_id = _nonempty(v, "customer_id")
    ts = v.get("ts")
    return Output(
        DEAD_LETTERS,
        customer_id,
        {
            "event_id": f"dead-letter:{source.topic}:{source.partition}:{source.offset}",
            "type": DEAD_LETTERS.output_type,
            "customer_id": customer_id,
            "segment": segment,
            "sequence": None,
            "ts": ts if type(ts) is str else None,
            "emitted_at": None,
            "rules_version": rules.version,
            "causation_id": _nonempty(v, "event_id"),
            "source_topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "key": None if source.key is None else source.key.decode("utf-8", "replace"),
            "raw": None if source.raw is None else source.raw.decode("utf-8", "replace"),
            "error": error,
            "reason": reason.value,
        },
    )
