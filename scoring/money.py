"""Exact money: integer cents, half-even rounding, and the contract's two-decimal strings."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

Number = int | Fraction


def round_half_even(value: Number) -> int:
    """Round an exact number of cents to a whole cent, ties to even."""
    if isinstance(value, int):
        return value
    q, r = divmod(value.numerator, value.denominator)
    twice = 2 * r
    if twice > value.denominator or (twice == value.denominator and q % 2 == 1):
        q += 1
    return q


def format_quotient(numerator: int, denominator: int) -> str:
    """``format_amount(Fraction(numerator, denominator))`` without building the Fraction
    (the metrics snapshot formats dozens of averages per evaluation); ``denominator`` > 0."""
    q, r = divmod(numerator, denominator)
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2 == 1):
        q += 1
    return format_cents(q)


def format_cents(cents: int) -> str:
    """``123450`` -> ``"1234.50"``; negative values keep their sign. (A snapshot formats
    dozens of amounts, most of them zero: the hot spot of an evaluation's view.)"""
    if cents == 0:
        return "0.00"
    if cents > 0:
        whole, frac = divmod(cents, 100)
        return f"{whole}.{frac:02d}"
    whole, frac = divmod(-cents, 100)
    return f"-{whole}.{frac:02d}"


def format_amount(value: Number) -> str:
    """An exact amount in cents as the published string, rounded half-even."""
    return format_cents(round_half_even(value))


def decimal_to_fraction(text: str) -> Fraction:
    """Exact value of a decimal literal (``"0.10"`` -> 1/10); raises ValueError if not one."""
    d = Decimal(text)
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    return Fraction(d)


def convert_cents(cents: int, rate: Fraction) -> int:
    """Convert an amount in cents at ``rate``, rounded half-even to the cent (contract §4)."""
    if rate == 1:
        return cents
    return round_half_even(cents * rate)
