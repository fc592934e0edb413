"""The closed word lists of the wire contract: products, transaction kinds and directions,
dead-letter reasons and tier-change directions (each also listed in the JSON Schema files,
which ``tests/unit/test_schema_files.py`` holds to these)."""

from __future__ import annotations

from enum import StrEnum

ASSET_PRODUCTS = frozenset({"current", "savings", "time_deposit", "wealth", "fund", "insurance"})
LIABILITY_PRODUCTS = frozenset({"loan", "credit_card"})
KINDS = frozenset(
    {
        "deposit",
        "withdrawal",
        "transfer_in",
        "transfer_out",
        "card_spend",
        "fee",
        "interest",
        "loan_disbursement",
        "loan_repayment",
        "other",
    }
)
NOT_CUSTOMER_INITIATED = frozenset({"fee", "interest"})  # kinds that are not activity
DIRECTIONS = frozenset({"credit", "debit"})


class Reason(StrEnum):
    """Why an input record became a dead letter, in the order the checks are made."""

    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"
    UNKNOWN_CURRENCY = "unknown_currency"
    UNKNOWN_TIER = "unknown_tier"
    LATE = "late"
    FUTURE = "future"


class Direction(StrEnum):
    """The ``direction`` of a tier change."""

    INITIAL = "initial"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    SEGMENT_CHANGE = "segment_change"
    OVERRIDE = "override"
