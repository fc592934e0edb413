"""A small DSL for writing bank scenarios against the reference engine."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import orjson
import yaml

from schemas import topics
from schemas.topics import DEFAULT_RULES
from scoring.engine import Engine
from scoring.events import EndOfDay
from scoring.outputs import Output, Source
from scoring.rules import Rules, rules_from_mapping
from scoring.state import CustomerState
from scoring.step import Verdict

DEFAULT_DOC: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text())


def rules_with(**changes: Any) -> Rules:
    """The default rules with dotted-path changes: rules_with(**{"segments.retail.downgrade_grace_days": 0})."""
    doc = copy.deepcopy(DEFAULT_DOC)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value
    return rules_from_mapping(doc)


def by_aum(grace: int = 0, protection: int = 0, **changes: Any) -> Rules:
    """Retail downgrades judged on current AUM (not a 30-day average): the shortest way
    to work a watch out by hand."""
    return rules_with(
        **{
            "segments.retail.downgrade_metric": "aum",
            "segments.retail.upgrade_protection_days": protection,
            "segments.retail.downgrade_grace_days": grace,
            **changes,
        }
    )


class Writing(Engine):
    """The reference engine, keeping what a worker writes to its changelog: a customer's
    state after each event it accepts, and at a close only if the close reports a change.
    ``from_written``: every step starts from what was written, as a worker whose local
    store has no cache would."""

    def __init__(self, rules: Rules, from_written: bool = False) -> None:
        super().__init__(rules)
        self.written: dict[str, bytes] = {}
        self.from_written = from_written

    def process(self, topic: topics.Topic, source: Source) -> list[Output]:
        if self.from_written:
            self.states = self._read()
        result = self.core.record(topic, source, self.states.get, self.clock)
        if isinstance(result, EndOfDay):
            return self.close(result.business_date)
        if result.state is not None:
            self.states[result.state.customer_id] = result.state
            if result.verdict is Verdict.ACCEPTED:
                self.written[result.state.customer_id] = result.state.to_bytes()
        return result.outputs

    def close(self, business_date: int) -> list[Output]:
        outputs: list[Output] = []
        for clock in self.core.closes(self.clock, business_date):
            self.clock = clock
            if self.from_written:
                self.states = self._read()
            for cid, state in self.states.items():
                step = self.core.close(state, clock)
                outputs += step.outputs
                if step.changed:
                    self.written[cid] = state.to_bytes()
        return outputs

    def _read(self) -> dict[str, CustomerState]:
        return {cid: CustomerState.from_bytes(b) for cid, b in self.written.items()}

    def recovered(self) -> Engine:
        """A new worker's engine, from what was written."""
        engine = Engine(self.rules)
        engine.clock = self.clock
        engine.states = self._read()
        return engine


class Bank:
    """Sends events to an Engine; each call returns the output values it produced."""

    def __init__(self, rules: Rules | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or Engine(rules or rules_from_mapping(DEFAULT_DOC))
        self._ids = itertools.count(1)
        self._offsets = itertools.count()
        self.outputs: list[dict[str, Any]] = []

    def send(self, topic: topics.Topic, value: Any, key: bytes | None = None) -> list[dict[str, Any]]:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        source = Source(topic.name, 0, next(self._offsets), key, raw)
        out = [o.value for o in self.engine.process(topic, source)]
        self.outputs += out
        return out

    def _id(self, event_id: str | None) -> str:
        return event_id or f"e{next(self._ids)}"

    def balance(
        self,
        customer: str,
        day: str,
        balance: Any,
        account: str = "a1",
        product: str = "savings",
        currency: str = "CNY",
        time: str = "12:00:00",
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        value = {
            "event_id": self._id(event_id),
            "customer_id": customer,
            "account_id": account,
            "ts": f"{day}T{time}Z",
            "product": product,
            "balance": balance,
            "currency": currency,
        }
        return self.send(topics.BALANCES, value)

    def txn(
        self,
        customer: str,
        day: str,
        amount: Any,
        direction: str = "debit",
        kind: str = "card_spend",
        counterparty_bank: str | None = None,
        currency: str = "CNY",
        time: str = "12:00:00",
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        value = {
            "event_id": self._id(event_id),
            "customer_id": customer,
            "account_id": "a1",
            "ts": f"{day}T{time}Z",
            "amount": amount,
            "currency": currency,
            "direction": direction,
            "kind": kind,
            "counterparty_bank": counterparty_bank,
        }
        return self.send(topics.TRANSACTIONS, value)

    def profile(
        self,
        customer: str,
        day: str,
        segment: str = "retail",
        rm_id: str | None = "rm1",
        override: str | None = None,
        time: str = "12:00:00",
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        value = {
            "event_id": self._id(event_id),
            "customer_id": customer,
            "ts": f"{day}T{time}Z",
            "segment": segment,
            "rm_id": rm_id,
            "tier_override": override,
        }
        return self.send(topics.CUSTOMERS, value)

    def eod(self, day: str) -> list[dict[str, Any]]:
        return self.send(topics.EOD, {"event_id": f"eod-{day}", "business_date": day})

    def state(self, customer: str) -> Any:
        return self.engine.states[customer]


def of_type(outputs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Outputs of one type (tier_change, rm_alert, risk_signal, dead_letter), optionally
    only one alert or signal name."""
    found = [o for o in outputs if o["type"] == kind]
    if name is not None:
        found = [o for o in found if o.get("alert", o.get("signal")) == name]
    return found


def days(start: str, n: int) -> list[str]:
    """n consecutive ISO dates from start."""
    from datetime import date, timedelta

    d0 = date.fromisoformat(start)
    return [(d0 + timedelta(days=i)).isoformat() for i in range(n)]
