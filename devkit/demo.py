"""``tierstream-dev demo``: a synthetic bank streamed through real workers, live in the terminal.

Starts the development stack (Tansu and Redis) and workers, then sends business day after
business day of customer, balance and transaction events, each day ended by its ``eod``,
and prints the tier changes, RM alerts and risk signals the workers publish as they
arrive. Ends with the tier distribution, the migration matrix and where to look in Redis.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import redis
from kafka import KafkaConsumer

from devkit import devstack
from devkit.synthetic import BankConfig, Record, SyntheticBank
from schemas import topics
from streams import kafka_admin
from streams.kafka_config import sync_client_options
from streams.rules_file import load_rules
from streams.settings import Settings

BOLD, DIM, RED, GREEN, YELLOW, CYAN, RESET = (
    "\033[1m",
    "\033[2m",
    "\033[31m",
    "\033[32m",
    "\033[33m",
    "\033[36m",
    "\033[0m",
)


@dataclass
class Tally:
    """What the demo saw on the output topics."""

    changes: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    signals: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    tier: dict[str, tuple[str, str]] = field(default_factory=dict)  # customer -> (segment, tier)
    first: dict[str, tuple[str, str]] = field(default_factory=dict)  # tier after the first day
    outputs: int = 0
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _color(tier_change: dict[str, Any]) -> str:
    return {"upgrade": GREEN, "downgrade": RED}.get(tier_change["direction"], CYAN)


def describe(v: dict[str, Any]) -> str | None:
    """One terminal line for an output worth showing (None: count it, do not print)."""
    who = f"{v['customer_id'] or '-':<8}"
    if v["type"] == topics.TIER_CHANGES.output_type:
        if v["direction"] in ("initial",):
            return None
        move = f"{v['previous_tier']} -> {BOLD}{v['tier']}{RESET}"
        return f"{_color(v)}{v['direction']:<14}{RESET} {who} {move}  {DIM}{v['reason']}{RESET}"
    if v["type"] == topics.RM_ALERTS.output_type:
        extra = f", {v['grace_days_left']} grace days" if v["alert"] == "downgrade_risk" else ""
        return (
            f"{YELLOW}{v['alert']:<14}{RESET} {who} {v['tier']} -> {v['target_tier']}: {v['metric']} "
            f"{v['metric_value']}, gap {v['gap']}{extra}  {DIM}RM {v['rm_id'] or 'unassigned'}{RESET}"
        )
    if v["type"] == topics.RISK_SIGNALS.output_type:
        facts = ", ".join(
            f"{k} {x}"
            for k, x in v.items()
            if k not in ("event_id", "type", "customer_id", "segment", "sequence", "ts", "emitted_at")
            and k not in ("rules_version", "causation_id", "signal", "severity", "transaction_event_id")
        )
        colour = RED if v["severity"] == "high" else YELLOW
        return f"{colour}{v['signal']:<14}{RESET} {who} [{v['severity']}] {DIM}{facts}{RESET}"
    return None


def watch_outputs(settings: Settings, tally: Tally, stop: threading.Event, first_day_done: threading.Event) -> None:
    names = [t.full_name(settings.topic_prefix) for t in topics.OUTPUTS]
    consumer = KafkaConsumer(*names, **sync_client_options(settings), auto_offset_reset="earliest", group_id=None)
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    v = orjson.loads(r.value)
                    with tally.lock:
                        tally.outputs += 1
                        if v["type"] == topics.TIER_CHANGES.output_type:
                            tally.changes[v["direction"]] += 1
                            tally.tier[v["customer_id"]] = (v["segment"], v["tier"])
                            if not first_day_done.is_set():
                                tally.first[v["customer_id"]] = (v["segment"], v["tier"])
                        elif v["type"] == topics.RM_ALERTS.output_type:
                            tally.alerts[v["alert"]] += 1
                        elif v["type"] == topics.RISK_SIGNALS.output_type:
                            tally.signals[v["signal"]] += 1
                        else:
                            tally.dead[v["reason"]] += 1
                        line = describe(v) if first_day_done.is_set() else None
                        if line:
                            tally.lines.append(line)
    finally:
        consumer.close()


def by_day(records: Iterator[Record]) -> Iterator[tuple[list[Record], Record]]:
    day: list[Record] = []
    for r in records:
        if r.topic is topics.EOD:
            yield day, r
            day = []
        else:
            day.append(r)


def send_day(producer: Any, settings: Settings, records: list[Record], eod: Record) -> str:
    """Send one business day's records, then its eod to every eod partition; the date."""
    for rec in records:
        producer.send(rec.topic.full_name(settings.topic_prefix), key=rec.key, value=rec.value)
    producer.flush()
    date: str = orjson.loads(eod.value)["business_date"]
    kafka_admin.send_eod(settings, date)
    return date


def feed(settings: Settings, customers: int, days: int, pause: float) -> int:
    """Stream the synthetic bank into the input topics, one business day every ``pause``
    seconds (the producer of docker-compose.yml)."""
    kafka_admin.ensure_topics(settings)
    producer = kafka_admin.producer(settings)
    sent = 0
    try:
        bank = SyntheticBank(
            BankConfig(customers=customers, days=days, history_days=60, invalid_rate=0.001, duplicate_rate=0.005)
        )
        for records, eod in by_day(bank.records()):
            date = send_day(producer, settings, records, eod)
            sent += len(records)
            print(f"{date}: {len(records)} events, closed", flush=True)
            time.sleep(pause)
    finally:
        producer.close()
    return sent


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def run(customers: int, days: int, workers: int, max_lines_per_day: int, keep: bool) -> int:
    data_dir = Path(os.environ.get("TIERSTREAM_DATA_DIR", "./.tierstream"))
    started = time.monotonic()
    stack = devstack.up(data_dir)
    run_id = time.strftime("%H%M%S")
    env = {
        **os.environ,
        **devstack.environment(stack),
        "TIERSTREAM_DATA_DIR": str(data_dir),
        "TIERSTREAM_TOPIC_PREFIX": f"demo{run_id}-",
        "TIERSTREAM_APP_ID": f"tierstream-demo{run_id}",
        "TIERSTREAM_REDIS_PREFIX": "demo:",
        "TIERSTREAM_PARTITIONS": "4",
    }
    settings = Settings.from_env(env)
    r = redis.Redis.from_url(settings.redis_url)
    stale = list(r.scan_iter("demo:*", count=1000))
    if stale:
        r.unlink(*stale)  # the previous demo's keys
    rules = load_rules(settings.rules_path)
    print(f"{BOLD}tierstream demo{RESET}: {customers} customers, {days} business days, rules {rules.version}")
    print(f"  broker {settings.broker} (Tansu, in memory)   redis {settings.redis_url}")
    kafka_admin.ensure_topics(settings)
    procs = []
    logs = data_dir / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(workers):
        out = (logs / f"worker{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "WARNING"],
                env={**env, "TIERSTREAM_WEB_PORT": "0"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    print(f"  {workers} worker(s) started (logs in {logs})")
    bank = SyntheticBank(
        BankConfig(customers=customers, days=days, history_days=60, invalid_rate=0.001, duplicate_rate=0.005)
    )
    tally = Tally()
    stop, first_day_done = threading.Event(), threading.Event()
    watcher = threading.Thread(target=watch_outputs, args=(settings, tally, stop, first_day_done), daemon=True)
    watcher.start()
    producer = kafka_admin.producer(settings)
    sent = 0
    try:
        for d, (records, eod) in enumerate(by_day(bank.records())):
            if d == 0:  # profiles first, so customers start on their own segment's ladder
                for rec in (r for r in records if r.topic is topics.CUSTOMERS):
                    producer.send(rec.topic.full_name(settings.topic_prefix), key=rec.key, value=rec.value)
                producer.flush()
                _wait_for_placement(r, bank.customers[-1].cid, procs)
                records = [r for r in records if r.topic is not topics.CUSTOMERS]
            date = send_day(producer, settings, records, eod)
            sent += len(records)
            _wait_for_close(r, tally, bank.customers[0].cid, d, days, date, sent, procs)
            if d == 0:
                time.sleep(1.0)
                with tally.lock:
                    tally.first.update(tally.tier)
                first_day_done.set()
            with tally.lock:
                lines, tally.lines = tally.lines, []
            for line in lines[:max_lines_per_day]:
                print("  " + line)
            if len(lines) > max_lines_per_day:
                print(f"  {DIM}... and {len(lines) - max_lines_per_day} more{RESET}")
        time.sleep(1.0)
    finally:
        stop.set()
        producer.close()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    summary(tally, settings, rules, time.monotonic() - started, sent)
    if not keep:
        devstack.down(data_dir)
        print("development stack stopped (run with --keep to leave it up; then `tierstream-dev down`)")
    else:
        print(f"the development stack is still up ({stack['broker']}); stop it with `tierstream-dev down`")
    return 0


def _wait_for_placement(r: redis.Redis, customer: str, procs: list[Any], timeout: float = 90.0) -> None:
    """Wait until the workers have placed ``customer`` (they have joined and read profiles)."""
    deadline = time.monotonic() + timeout
    while not r.exists(f"demo:customer:{customer}"):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit("the workers did not start; see their logs in .tierstream/demo-logs")
        time.sleep(0.1)


def _wait_for_close(
    r: redis.Redis, tally: Tally, sample: str, d: int, days: int, date: str, sent: int, procs: list[Any]
) -> None:
    """Wait until the workers have closed ``date``: a customer's as-of day moves past it."""
    deadline = time.monotonic() + 120
    next_day = (dt.date.fromisoformat(date) + dt.timedelta(days=1)).isoformat()
    width = shutil.get_terminal_size((100, 20)).columns
    tty = sys.stdout.isatty()
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise SystemExit("a worker stopped; see its log in .tierstream/demo-logs")
        as_of = cast(bytes | None, r.hget(f"demo:customer:{sample}", "as_of"))
        with tally.lock:
            outputs = tally.outputs
        if tty:
            status = f"{_bar(d + 1, days)} day {d + 1}/{days} {date}  {sent:,} events sent, {outputs:,} outputs"
            sys.stdout.write("\r" + status[: width - 1])
            sys.stdout.flush()
        if as_of is not None and as_of.decode() >= next_day:
            if tty:
                sys.stdout.write("\r" + " " * (width - 1) + "\r")
            print(f"{BOLD}{date}{RESET} closed  {DIM}{sent:,} events so far, {outputs:,} outputs{RESET}")
            return
        time.sleep(0.1)
    raise SystemExit(f"the close of {date} did not arrive within 120 s")


def summary(tally: Tally, settings: Settings, rules: Any, seconds: float, sent: int) -> None:
    print(f"\n{BOLD}Summary{RESET} ({sent:,} events in {seconds:.0f} s)")
    with tally.lock:
        for seg_name, seg in rules.segments.items():
            counts = Counter(t for s, t in tally.tier.values() if s == seg_name)
            dist = "  ".join(f"{t.name} {counts.get(t.name, 0)}" for t in seg.tiers)
            print(f"  {seg_name:<10} {dist}")
            names = [t.name for t in seg.tiers]
            matrix: dict[str, Counter[str]] = defaultdict(Counter)
            for cid, (s, t) in tally.tier.items():
                if s == seg_name and cid in tally.first and tally.first[cid][0] == seg_name:
                    matrix[tally.first[cid][1]][t] += 1
            print("    migration since day 1 (rows: from, columns: to)")
            print("    " + " " * 10 + "".join(f"{n:>10}" for n in names))
            for n in names:
                print("    " + f"{n:<10}" + "".join(f"{matrix[n].get(m, 0):>10}" for m in names))
        print(f"  tier changes  {dict(tally.changes)}")
        print(f"  RM alerts     {dict(tally.alerts)}")
        print(f"  risk signals  {dict(tally.signals)}")
        print(f"  dead letters  {dict(tally.dead)}")
    url = settings.redis_url
    print(f"\n{BOLD}Where to look in Redis{RESET} ({url}, prefix demo:)")
    print("  HGETALL demo:customer:R000001          current tier, metrics and as-of day of a customer")
    print("  SMEMBERS demo:members:retail:platinum  who is on a tier now")
    print("  XRANGE demo:changes - + COUNT 5        tier changes (also demo:rm-alerts, demo:risk-signals)")
    print("  SUBSCRIBE demo:changes                 live tier changes")
