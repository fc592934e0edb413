"""The rules file (contract §5): validated once into frozen, ready-to-compare values.

Every threshold is turned into an exact number in the unit of the metric it is compared
with (cents for amounts, plain units for counts and days), so decisions never touch a
binary float.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from scoring.days import Zone
from scoring.money import Number, decimal_to_fraction

DEFAULT_WINDOWS = (7, 30, 90)
DEFAULT_FUTURE_DAYS = 31  # allowed_future_days when the rules file leaves it out

# Metrics of contract §4. Windowed kinds take any N >= 1 (``aum_avg_60d``).
WINDOWED_AMOUNTS = ("aum_avg", "loan_avg", "debits", "credits", "fee_income", "external_outflow")
WINDOWED_COUNTS = ("txn_count",)
_WINDOWED = re.compile(r"(" + "|".join(WINDOWED_AMOUNTS + WINDOWED_COUNTS) + r")_([1-9][0-9]*)d")
_PLAIN = {"aum": True, "loan_balance": True, "contribution_90d": True, "days_since_activity": False}


class RulesError(ValueError):
    """A rules file that breaks contract §5; the message names the field."""


@dataclass(frozen=True, slots=True)
class MetricRef:
    """A metric name resolved: its kind, window (0 if none) and unit."""

    name: str
    kind: str
    window: int
    is_amount: bool  # amounts are in cents, counts and days in plain units

    def scale(self, units: Fraction) -> Fraction:
        """A threshold written in currency units (or counts) in this metric's unit."""
        return units * 100 if self.is_amount else units


def metric_ref(name: str) -> MetricRef:
    """Resolve a metric name of contract §4; ValueError if it names none."""
    if name in _PLAIN:
        return MetricRef(name, name, 90 if name == "contribution_90d" else 0, _PLAIN[name])
    m = _WINDOWED.fullmatch(name)
    if m is None:
        raise ValueError(f"unknown metric {name!r}")
    return MetricRef(name, m[1], int(m[2]), m[1] not in WINDOWED_COUNTS)


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    min: Fraction  # in currency units as written in the file
    up_min: Number  # min in the upgrade metric's unit
    down_min: Number  # min in the downgrade metric's unit
    keep_line: Number  # min x (1 - downgrade_buffer), downgrade metric's unit
    candidate_line: Number  # min x (1 - candidate_margin), upgrade metric's unit


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    upgrade_metric: MetricRef
    downgrade_metric: MetricRef
    tiers: tuple[Tier, ...]
    rank: Mapping[str, int]
    downgrade_buffer: Fraction
    downgrade_grace_days: int
    upgrade_protection_days: int
    candidate_margin: Fraction
    up_mins: tuple[Number, ...]  # the tiers' mins in the upgrade metric's unit
    down_mins: tuple[Number, ...]  # ... and in the downgrade metric's unit

    def place_up(self, value: Number) -> int:
        """Rank of the highest tier whose min <= value, in the upgrade metric's unit."""
        return _place(self.up_mins, value)

    def place_down(self, value: Number) -> int:
        """Like ``place_up`` for a value of the downgrade metric."""
        return _place(self.down_mins, value)


def _place(mins: tuple[Number, ...], value: Number) -> int:
    rank = 0
    for i, floor in enumerate(mins):
        if floor > value:
            break
        rank = i
    return rank


@dataclass(frozen=True, slots=True)
class FlowRule:
    """large_outflow and deposit_diversion: a flow over a window against a daily average."""

    window_days: int
    ratio: Fraction
    min_amount: int  # cents


@dataclass(frozen=True, slots=True)
class Risk:
    large_outflow: FlowRule
    deposit_diversion: FlowRule
    drop_ratio: Fraction
    drop_min_avg: Fraction  # cents
    dormancy_days: int
    dormancy_min_rank: int
    anomaly_z: Fraction
    anomaly_min_history: int


@dataclass(frozen=True, slots=True)
class Rules:
    version: str
    zone: Zone
    base_currency: str
    fx: Mapping[str, Fraction]  # includes the base currency at 1
    own_bank: str
    allowed_lateness_days: int
    allowed_future_days: int  # how far ahead of the clock an event or eod may be (``Clock.is_future``)
    default_segment: str
    deposit_spread_bp: Fraction
    loan_spread_bp: Fraction
    segments: Mapping[str, Segment]
    risk: Risk
    contribution: tuple[int, int, int, int]  # see ``contribution_coefficients``
    windows: tuple[int, ...]  # every window N the metrics snapshot carries, ascending
    horizon: int  # the longest window: how many past days the state must remember

    def tier_exists(self, segment: str, tier: str) -> bool:
        seg = self.segments.get(segment)
        return seg is not None and tier in seg.rank


# --- validation ---------------------------------------------------------------------


def _get(m: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in m:
        raise RulesError(f"{path}{key}: required")
    return m[key]


def _mapping(v: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise RulesError(f"{path}: must be a mapping")
    return v


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str) or not v:
        raise RulesError(f"{path}: must be a non-empty string")
    return v


def _int(v: Any, path: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise RulesError(f"{path}: must be an integer >= {low}")
    return v


def _dec(v: Any, path: str, low: Fraction | None = None, high: Fraction | None = None) -> Fraction:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise RulesError(f"{path}: must be a decimal number")
    try:
        f = decimal_to_fraction(str(v))
    except (ValueError, ArithmeticError):
        raise RulesError(f"{path}: must be a decimal number, got {v!r}") from None
    if low is not None and f < low:
        raise RulesError(f"{path}: must be >= {low}")
    if high is not None and f > high:
        raise RulesError(f"{path}: must be <= {high}")
    return f


def _exact(f: Fraction) -> Number:
    return f.numerator if f.denominator == 1 else f


def _metric(v: Any, path: str) -> MetricRef:
    try:
        return metric_ref(_str(v, path))
    except ValueError as e:
        raise RulesError(f"{path}: {e}; metrics are the names of contract §4") from None


def _segment(name: str, raw: Any, path: str) -> Segment:
    m = _mapping(raw, path)
    p = path + "."
    up = _metric(_get(m, "upgrade_metric", p), p + "upgrade_metric")
    down = _metric(_get(m, "downgrade_metric", p), p + "downgrade_metric")
    buffer = _dec(_get(m, "downgrade_buffer", p), p + "downgrade_buffer", Fraction(0), Fraction(1))
    margin = _dec(_get(m, "candidate_margin", p), p + "candidate_margin", Fraction(0), Fraction(1))
    grace = _int(_get(m, "downgrade_grace_days", p), p + "downgrade_grace_days", 0)
    protection = _int(_get(m, "upgrade_protection_days", p), p + "upgrade_protection_days", 0)
    raw_tiers = _get(m, "tiers", p)
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise RulesError(f"{p}tiers: must be a non-empty list")
    tiers: list[Tier] = []
    for i, t in enumerate(raw_tiers):
        tp = f"{p}tiers[{i}]"
        tm = _mapping(t, tp)
        tname = _str(_get(tm, "name", tp + "."), tp + ".name")
        tmin = _dec(_get(tm, "min", tp + "."), tp + ".min")
        if i == 0 and tmin != 0:
            raise RulesError(f"{tp}.min: a ladder starts at min 0")
        if tiers and tmin <= tiers[-1].min:
            raise RulesError(f"{tp}.min: must be greater than the previous tier's min")
        if any(x.name == tname for x in tiers):
            raise RulesError(f"{tp}.name: duplicate tier {tname!r}")
        tiers.append(
            Tier(
                name=tname,
                min=tmin,
                up_min=_exact(up.scale(tmin)),
                down_min=_exact(down.scale(tmin)),
                keep_line=_exact(down.scale(tmin) * (1 - buffer)),
                candidate_line=_exact(up.scale(tmin) * (1 - margin)),
            )
        )
    return Segment(
        name=name,
        upgrade_metric=up,
        downgrade_metric=down,
        tiers=tuple(tiers),
        rank={t.name: i for i, t in enumerate(tiers)},
        downgrade_buffer=buffer,
        downgrade_grace_days=grace,
        upgrade_protection_days=protection,
        candidate_margin=margin,
        up_mins=tuple(t.up_min for t in tiers),
        down_mins=tuple(t.down_min for t in tiers),
    )


def _flow_rule(raw: Any, path: str) -> FlowRule:
    m = _mapping(raw, path)
    p = path + "."
    return FlowRule(
        window_days=_int(_get(m, "window_days", p), p + "window_days", 1),
        ratio=_dec(_get(m, "ratio", p), p + "ratio", Fraction(0)),
        min_amount=_exact_cents(_dec(_get(m, "min_amount", p), p + "min_amount", Fraction(0)), p + "min_amount"),
    )


def _exact_cents(units: Fraction, path: str) -> int:
    cents = units * 100
    if cents.denominator != 1:
        raise RulesError(f"{path}: at most two decimals")
    return cents.numerator


def contribution_coefficients(deposit_bp: Fraction, loan_bp: Fraction) -> tuple[int, int, int, int]:
    """Integers (a, b, c, d) with contribution_90d = (a*S_aum + b*S_loan + c*F) / d, where
    S_* are 90-day sums of daily balances and F the 90-day fee income, all in cents:
    S_aum/90 x bp/10000 + S_loan/90 x bp/10000 + F x 365/90, as one exact fraction."""
    coefficients = (deposit_bp / 900_000, loan_bp / 900_000, Fraction(365, 90))
    den = math.lcm(*(c.denominator for c in coefficients))
    a, b, c = (int(x * den) for x in coefficients)
    return a, b, c, den


def rules_from_mapping(doc: Any) -> Rules:
    """Validate a parsed rules document; RulesError names the first offending field."""
    m = _mapping(doc, "rules")
    version = _get(m, "version", "")
    if not isinstance(version, str) or not version:
        raise RulesError('version: must be a non-empty string (quote dates: "2026-11-01")')
    tz_name = _str(_get(m, "timezone", ""), "timezone")
    try:
        zone = Zone(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RulesError(f"timezone: unknown timezone {tz_name!r}") from None
    base = _str(_get(m, "base_currency", ""), "base_currency")
    fx_raw = _mapping(_get(m, "fx", ""), "fx")
    fx: dict[str, Fraction] = {}
    for code, rate in fx_raw.items():
        code = _str(code, "fx")
        fx[code] = _dec(rate, f"fx.{code}", Fraction(0))
        if fx[code] == 0:
            raise RulesError(f"fx.{code}: must be > 0")
    if base in fx and fx[base] != 1:
        raise RulesError(f"fx.{base}: the base currency converts at 1")
    fx[base] = Fraction(1)
    own_bank = _str(_get(m, "own_bank", ""), "own_bank")
    lateness = _int(_get(m, "allowed_lateness_days", ""), "allowed_lateness_days", 0)
    future = _int(m.get("allowed_future_days", DEFAULT_FUTURE_DAYS), "allowed_future_days", 1)
    spreads = _mapping(_get(m, "spreads", ""), "spreads")
    dsp = _dec(_get(spreads, "deposit_spread_bp", "spreads."), "spreads.deposit_spread_bp")
    lsp = _dec(_get(spreads, "loan_spread_bp", "spreads."), "spreads.loan_spread_bp")
    seg_raw = _mapping(_get(m, "segments", ""), "segments")
    for required in ("retail", "corporate"):
        _get(seg_raw, required, "segments.")
    segments = {name: _segment(name, v, f"segments.{name}") for name, v in seg_raw.items()}
    default_segment = _str(_get(m, "default_segment", ""), "default_segment")
    if default_segment not in segments:
        raise RulesError(f"default_segment: {default_segment!r} is not a key of segments")

    risk_raw = _mapping(_get(m, "risk", ""), "risk")
    drop = _mapping(_get(risk_raw, "balance_drop", "risk."), "risk.balance_drop")
    dorm = _mapping(_get(risk_raw, "dormancy", "risk."), "risk.dormancy")
    anom = _mapping(_get(risk_raw, "anomalous_transaction", "risk."), "risk.anomalous_transaction")
    risk = Risk(
        large_outflow=_flow_rule(_get(risk_raw, "large_outflow", "risk."), "risk.large_outflow"),
        deposit_diversion=_flow_rule(_get(risk_raw, "deposit_diversion", "risk."), "risk.deposit_diversion"),
        drop_ratio=_dec(_get(drop, "ratio", "risk.balance_drop."), "risk.balance_drop.ratio", Fraction(0)),
        drop_min_avg=_dec(_get(drop, "min_avg", "risk.balance_drop."), "risk.balance_drop.min_avg", Fraction(0)) * 100,
        dormancy_days=_int(_get(dorm, "days", "risk.dormancy."), "risk.dormancy.days", 0),
        dormancy_min_rank=_int(_get(dorm, "min_tier_rank", "risk.dormancy."), "risk.dormancy.min_tier_rank", 0),
        anomaly_z=_dec(_get(anom, "z", "risk.anomalous_transaction."), "risk.anomalous_transaction.z"),
        anomaly_min_history=_int(
            _get(anom, "min_history", "risk.anomalous_transaction."), "risk.anomalous_transaction.min_history", 0
        ),
    )
    windows = set(DEFAULT_WINDOWS)
    windows.update((risk.large_outflow.window_days, risk.deposit_diversion.window_days))
    for seg in segments.values():
        for ref in (seg.upgrade_metric, seg.downgrade_metric):
            if ref.window:
                windows.add(ref.window)
    return Rules(
        version=version,
        zone=zone,
        base_currency=base,
        fx=fx,
        own_bank=own_bank,
        allowed_lateness_days=lateness,
        allowed_future_days=future,
        default_segment=default_segment,
        deposit_spread_bp=dsp,
        loan_spread_bp=lsp,
        segments=segments,
        risk=risk,
        contribution=contribution_coefficients(dsp, lsp),
        windows=tuple(sorted(windows)),
        horizon=max(windows),
    )
