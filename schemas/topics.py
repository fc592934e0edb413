"""The one registry of topics (SPEC sections 3 and 7). Code names topics only through it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(Enum):
    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True, slots=True)
class Topic:
    name: str  # the name before TIERSTREAM_TOPIC_PREFIX
    role: Role
    schema: str  # file in schemas/json describing the value
    keyed_by_customer: bool = True

    def full_name(self, prefix: str) -> str:
        return prefix + self.name


CUSTOMERS = Topic("customers", Role.INPUT, "customer.schema.json")
BALANCES = Topic("balances", Role.INPUT, "balance.schema.json")
TRANSACTIONS = Topic("transactions", Role.INPUT, "transaction.schema.json")
EOD = Topic("eod", Role.INPUT, "eod.schema.json", keyed_by_customer=False)

TIER_CHANGES = Topic("tier-changes", Role.OUTPUT, "tier-change.schema.json")
RM_ALERTS = Topic("rm-alerts", Role.OUTPUT, "rm-alert.schema.json")
RISK_SIGNALS = Topic("risk-signals", Role.OUTPUT, "risk-signal.schema.json")
DEAD_LETTERS = Topic("dead-letters", Role.OUTPUT, "dead-letter.schema.json")

INPUTS = (CUSTOMERS, BALANCES, TRANSACTIONS, EOD)
OUTPUTS = (TIER_CHANGES, RM_ALERTS, RISK_SIGNALS, DEAD_LETTERS)
ALL = INPUTS + OUTPUTS
BY_NAME = {t.name: t for t in ALL}
