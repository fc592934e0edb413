"""A synthetic bank: realistic input records for the demo, the benchmarks and the tests.

Retail customers earn salaries, spend by card, pay fees, buy wealth products and repay
loans; corporate customers move larger sums and pay more fees. Some customers are given a
story that the users of tierstream care about: *growers* pile up deposits and climb
tiers, *diverters* move their money to other banks, *sleepers* go dormant, *spenders*
make one payment far outside their pattern, *leavers* run their balances down. A few
records can be made bad on purpose (duplicates, late arrivals, invalid values).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import orjson

from schemas import topics

PERSONAS = ("ordinary", "grower", "diverter", "sleeper", "spender", "leaver")
_PERSONA_P = (0.72, 0.10, 0.05, 0.05, 0.03, 0.05)
_CURRENCY = ("CNY", "USD", "HKD", "EUR")
_CURRENCY_P = (0.90, 0.05, 0.03, 0.02)
_RATE = {"CNY": 1.0, "USD": 7.10, "HKD": 0.91, "EUR": 7.70}
_OTHER_BANKS = ("BANKB", "BANKC", "BANKD")


@dataclass(frozen=True)
class BankConfig:
    customers: int = 2000
    days: int = 30
    start: date = date(2026, 10, 1)
    seed: int = 7
    corporate_share: float = 0.15
    duplicate_rate: float = 0.0  # share of customer events sent twice
    late_rate: float = 0.0  # share of days with one event dated beyond the lateness allowance
    invalid_rate: float = 0.0  # share of records replaced by a malformed copy
    lateness_days: int = 7
    history_days: int = 0  # opening balances dated this many days before the start


@dataclass(frozen=True)
class Record:
    topic: topics.Topic
    key: bytes | None
    value: bytes


@dataclass
class _Customer:
    cid: str
    corporate: bool
    persona: str
    currency: str
    current: float
    savings: float
    wealth: float
    loan: float
    salary: float
    spend: float
    twist_day: int  # when the persona's story starts


def _json(value: object) -> bytes:
    """``value`` as JSON, in a bytes object of its own size: orjson's own result keeps the
    1 KiB buffer it wrote into, so a day of records held for shuffling took 3.3 KB each
    (1.8 GB for 100,000 customers, against 250 MB)."""
    return bytes(memoryview(orjson.dumps(value)))


def _money(x: float) -> str:
    return f"{max(x, 0.0):.2f}"


class SyntheticBank:
    """Generates the records of ``config.days`` business days, each followed by its eod."""

    def __init__(self, config: BankConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self._event = 0
        self.customers = [self._customer(i) for i in range(config.customers)]

    def _customer(self, i: int) -> _Customer:
        rng, cfg = self.rng, self.config
        corporate = bool(rng.random() < cfg.corporate_share)
        persona = str(rng.choice(PERSONAS, p=_PERSONA_P))
        scale = 40.0 if corporate else 1.0
        wealth_total = float(rng.lognormal(np.log(60_000 * scale), 1.3))
        return _Customer(
            cid=f"{'C' if corporate else 'R'}{i:06d}",
            corporate=corporate,
            persona=persona,
            currency=str(rng.choice(_CURRENCY, p=_CURRENCY_P)),
            current=wealth_total * 0.2,
            savings=wealth_total * 0.5,
            wealth=wealth_total * 0.3 if rng.random() < 0.4 else 0.0,
            loan=float(rng.lognormal(np.log(300_000 * scale), 0.8)) if rng.random() < 0.25 else 0.0,
            salary=float(rng.lognormal(np.log(15_000 * scale), 0.5)),
            spend=float(rng.lognormal(np.log(150 * scale), 0.7)),
            twist_day=int(rng.integers(3, max(4, cfg.days - 3))),
        )

    def _id(self) -> str:
        self._event += 1
        return f"ev{self._event:09d}"

    def records(self) -> Iterator[Record]:
        cfg = self.config
        for c in self.customers:
            yield self._profile(c, cfg.start - timedelta(days=cfg.history_days))
        if cfg.history_days:
            # opening balances before the first close, so daily averages have a past
            opened = cfg.start - timedelta(days=cfg.history_days)
            for c in self.customers:
                yield from self._balances(c, opened)
        for d in range(cfg.days):
            day = cfg.start + timedelta(days=d)
            todays: list[Record] = []
            for c in self.customers:
                todays += self._day(c, d, day)
            order = self.rng.permutation(len(todays))  # customers interleave within a day
            for k in order:
                yield from self._maybe_spoil(todays[int(k)], day)
            yield Record(topics.EOD, None, _json({"event_id": f"eod-{day}", "business_date": day.isoformat()}))

    # --- one customer-day -------------------------------------------------------------

    def _ts(self, day: date, hour_lo: int, hour_hi: int) -> str:
        second = int(self.rng.integers(hour_lo * 3600, hour_hi * 3600))
        return f"{day.isoformat()}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"

    def _txn(
        self, c: _Customer, day: date, amount: float, direction: str, kind: str, bank: str | None = None
    ) -> Record:
        currency = c.currency if kind in ("card_spend", "transfer_out") else "CNY"
        value = {
            "event_id": self._id(),
            "customer_id": c.cid,
            "account_id": f"{c.cid}-CUR",
            "ts": self._ts(day, 8, 20),
            "amount": _money(max(amount / _RATE[currency], 0.01)),
            "currency": currency,
            "direction": direction,
            "kind": kind,
            "counterparty_bank": bank,
        }
        return Record(topics.TRANSACTIONS, c.cid.encode(), _json(value))

    def _balance(self, c: _Customer, day: date, account: str, product: str, amount: float) -> Record:
        value = {
            "event_id": self._id(),
            "customer_id": c.cid,
            "account_id": f"{c.cid}-{account}",
            "ts": self._ts(day, 21, 23),
            "product": product,
            "balance": _money(amount),
            "currency": "CNY",
        }
        return Record(topics.BALANCES, c.cid.encode(), _json(value))

    def _profile(self, c: _Customer, day: date) -> Record:
        value = {
            "event_id": self._id(),
            "customer_id": c.cid,
            "ts": f"{day.isoformat()}T00:00:00Z",
            "segment": "corporate" if c.corporate else "retail",
            "rm_id": f"RM{int(self.rng.integers(1, 40)):03d}" if c.corporate or c.savings > 100_000 else None,
            "tier_override": None,
        }
        return Record(topics.CUSTOMERS, c.cid.encode(), _json(value))

    def _day(self, c: _Customer, d: int, day: date) -> list[Record]:
        rng = self.rng
        out: list[Record] = []
        story = d >= c.twist_day
        quiet = c.persona == "sleeper" and story
        if not quiet:
            if d % 30 == 9:  # payday
                out.append(self._txn(c, day, c.salary, "credit", "transfer_in" if c.corporate else "deposit"))
                c.current += c.salary
            for _ in range(int(rng.poisson(3.0 if c.corporate else 1.2))):
                amount = float(rng.lognormal(np.log(c.spend), 0.6))
                out.append(self._txn(c, day, amount, "debit", "card_spend"))
                c.current -= amount
            if rng.random() < (0.3 if c.corporate else 0.04):
                fee = float(rng.uniform(5, 60) * (20 if c.corporate else 1))
                out.append(self._txn(c, day, fee, "debit", "fee"))
                c.current -= fee
        if c.persona == "grower" and story:
            amount = float(rng.uniform(0.04, 0.10)) * (c.savings + 80_000)
            out.append(self._txn(c, day, amount, "credit", "transfer_in"))
            c.savings += amount
        elif c.persona == "diverter" and story and c.savings > 1_000:
            amount = c.savings * float(rng.uniform(0.2, 0.5))
            out.append(self._txn(c, day, amount, "debit", "transfer_out", str(rng.choice(_OTHER_BANKS))))
            c.savings -= amount
        elif c.persona == "leaver" and story:
            c.wealth *= 0.85
            c.savings *= 0.9
        elif c.persona == "spender" and d == c.twist_day:
            amount = float(c.spend * rng.uniform(60, 120))
            out.append(self._txn(c, day, amount, "debit", "card_spend"))
            c.current -= amount
        if c.current < 0:  # sweep from savings, as banks do
            c.savings += c.current
            c.current = 0.0
        if not quiet or d == c.twist_day:
            c.loan *= 0.999
            out += self._balances(c, day)
        return out

    def _balances(self, c: _Customer, day: date) -> list[Record]:
        out = [self._balance(c, day, "CUR", "current", c.current), self._balance(c, day, "SAV", "savings", c.savings)]
        if c.wealth:
            out.append(self._balance(c, day, "WEA", "wealth", c.wealth))
        if c.loan:
            out.append(self._balance(c, day, "LOAN", "loan", c.loan))
        return out

    # --- bad records ----------------------------------------------------------------

    def _maybe_spoil(self, record: Record, day: date) -> Iterator[Record]:
        cfg, rng = self.config, self.rng
        if cfg.invalid_rate and rng.random() < cfg.invalid_rate:
            bad = (b"{truncated", record.value.replace(b'"currency":"CNY"', b'"currency":"XYZ"'), record.value[:-1])
            yield Record(record.topic, record.key, bad[int(rng.integers(0, 3))])
            return
        yield record
        if cfg.duplicate_rate and rng.random() < cfg.duplicate_rate:
            yield record
        if cfg.late_rate and rng.random() < cfg.late_rate / max(1, len(self.customers)):
            old = (day - timedelta(days=cfg.lateness_days + 1)).isoformat()
            value = orjson.loads(record.value)
            if "ts" in value:
                value["ts"] = old + value["ts"][10:]
                value["event_id"] = self._id()
                yield Record(record.topic, record.key, _json(value))
