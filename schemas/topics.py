"""The one registry of topics. Each topic carries what belongs to it — its JSON Schema
file, and for outputs the ``type`` of its values and the Redis stream and pub/sub channel
they are copied to — so no other table maps one to another. Code names topics only here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path


class Role(Enum):
    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True, slots=True)
class Topic:
    name: str  # the name before TIERSTREAM_TOPIC_PREFIX
    role: Role
    schema: str  # file in schemas/json describing the value
    keyed_by_customer: bool = True
    output_type: str | None = None  # outputs: the value's "type"
    redis_stream: str | None = None  # outputs copied to a Redis stream (before the Redis prefix)
    redis_channel: str | None = None  # outputs also published on this pub/sub channel

    def full_name(self, prefix: str) -> str:
        return prefix + self.name

    @property
    def schema_path(self) -> Path:
        return SCHEMA_DIR / self.schema


SCHEMA_DIR = Path(str(resources.files("schemas") / "json"))
DEFAULT_RULES = Path(str(resources.files("schemas") / "default_rules.yaml"))

CUSTOMERS = Topic("customers", Role.INPUT, "customer.schema.json")
BALANCES = Topic("balances", Role.INPUT, "balance.schema.json")
TRANSACTIONS = Topic("transactions", Role.INPUT, "transaction.schema.json")
EOD = Topic("eod", Role.INPUT, "eod.schema.json", keyed_by_customer=False)

TIER_CHANGES = Topic(
    "tier-changes",
    Role.OUTPUT,
    "tier-change.schema.json",
    output_type="tier_change",
    redis_stream="changes",
    redis_channel="changes",
)
RM_ALERTS = Topic("rm-alerts", Role.OUTPUT, "rm-alert.schema.json", output_type="rm_alert", redis_stream="rm-alerts")
RISK_SIGNALS = Topic(
    "risk-signals", Role.OUTPUT, "risk-signal.schema.json", output_type="risk_signal", redis_stream="risk-signals"
)
DEAD_LETTERS = Topic("dead-letters", Role.OUTPUT, "dead-letter.schema.json", output_type="dead_letter")

INPUTS = (CUSTOMERS, BALANCES, TRANSACTIONS, EOD)
OUTPUTS = (TIER_CHANGES, RM_ALERTS, RISK_SIGNALS, DEAD_LETTERS)
ALL = INPUTS + OUTPUTS
BY_NAME = {t.name: t for t in ALL}
BY_OUTPUT_TYPE = {t.output_type: t for t in OUTPUTS}
