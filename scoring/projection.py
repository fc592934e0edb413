"""The customer view: what the CRM reads of a customer (its Redis hash), projected from
the state as of the customer's as-of day."""

from __future__ import annotations

import orjson

from scoring.clock import Clock
from scoring.days import format_day
from scoring.metrics import MetricView, publish
from scoring.rules import Rules
from scoring.state import CustomerState


def customer_view(
    st: CustomerState, clock: Clock, rules: Rules, metrics: dict[str, str | int] | None = None
) -> dict[str, str]:
    """The fields of the customer's Redis hash, but ``updated_at`` (the shell's clock).
    ``metrics``: the snapshot an output of this very evaluation carries, if one does (the
    same state as of the same day: computing it again would cost a third of the view)."""
    x = clock.as_of(st)
    view = MetricView(st, rules, x)
    ref = rules.segments[st.segment].upgrade_metric
    return {
        "tier": st.tier or "",
        "segment": st.segment,
        "since": format_day(st.since),
        "sequence": str(st.sequence),
        "rules_version": rules.version,
        "metric": ref.name,
        "metric_value": str(publish(ref, view.value(ref))),
        "as_of": format_day(x),
        "metrics": orjson.dumps(view.snapshot() if metrics is None else metrics).decode(),
    }
