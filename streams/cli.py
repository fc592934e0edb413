"""The ``tierstream`` command: run a worker, close a day, send records, check and replay
rules, show the effective configuration."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import orjson

from schemas.topics import BY_NAME, Role
from scoring.engine import Engine
from scoring.outputs import Source
from scoring.rules import RulesError
from streams import kafka_admin
from streams.rules_file import load_rules
from streams.settings import Settings, SettingsError


def produce_file(settings: Settings, path: Path) -> int:
    """Send every record of a JSONL or CSV file to its input topic, in file order."""
    prod = kafka_admin.producer(settings)
    sent = 0
    try:
        with path.open(newline="") as f:
            rows = csv.reader(f) if path.suffix == ".csv" else (orjson.loads(line) for line in f if line.strip())
            for row in rows:
                if isinstance(row, list):  # CSV: topic, key, value
                    row = {"topic": row[0], "key": row[1] or None, "value": row[2]}
                topic = BY_NAME.get(row.get("topic", ""))
                if topic is None or topic.role is not Role.INPUT:
                    raise SystemExit(f"{path}: record {sent + 1}: topic must be an input topic")
                value = row.get("value")
                raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
                key = row.get("key")
                prod.send(topic.full_name(settings.topic_prefix), value=raw, key=key.encode() if key else None)
                sent += 1
        prod.flush()
    finally:
        prod.close()
    return sent


def _cmd_rules(args: argparse.Namespace) -> int:
    rules = load_rules(args.file)
    print(f"rules {rules.version}: timezone {rules.zone.name}, base currency {rules.base_currency}")
    for seg in rules.segments.values():
        ladder = " < ".join(f"{t.name} {t.min}" for t in seg.tiers)
        print(f"  {seg.name}: up by {seg.upgrade_metric.name}, down by {seg.downgrade_metric.name}: {ladder}")
    print(f"  windows (days): {', '.join(map(str, rules.windows))}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    """Feed a JSONL file of ``{"topic": ..., "value": {...}}`` through the core, print outputs."""
    engine = Engine(load_rules(args.rules))
    with sys.stdin.buffer if args.file == "-" else Path(args.file).open("rb") as lines:
        for offset, line in enumerate(lines):
            if not line.strip():
                continue
            record = orjson.loads(line)
            topic = BY_NAME.get(record.get("topic", ""))
            if topic is None or topic.role is not Role.INPUT:
                print(f"line {offset + 1}: topic must be an input topic", file=sys.stderr)
                return 2
            value = record.get("value")
            raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
            key = record.get("key")
            source = Source(topic.name, 0, offset, key.encode() if isinstance(key, str) else None, raw)
            for out in engine.process(topic, source):
                sys.stdout.buffer.write(orjson.dumps({"topic": out.topic.name, "value": out.value}) + b"\n")
    c = engine.counters
    print(
        f"{c.records_in} records: {c.accepted} accepted, {c.duplicates} duplicates, "
        f"dead letters {c.dead_letters or 0}, {c.days_closed} days closed, {len(engine.states)} customers",
        file=sys.stderr,
    )
    return 0


def _settings() -> Settings:
    return Settings.from_env(os.environ)


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams import worker

    worker.run(_settings(), loglevel=args.loglevel)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    """Every setting's effective value and where it came from; secrets masked."""
    rows = Settings.from_env(os.environ).describe(os.environ)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {source:<11}  {value}")
    return 0


def _cmd_eod(args: argparse.Namespace) -> int:
    settings = _settings()
    kafka_admin.ensure_topics(settings)
    n = kafka_admin.send_eod(settings, args.date)
    print(f"eod {args.date} sent to {n} partitions")
    return 0


def _cmd_produce(args: argparse.Namespace) -> int:
    settings = _settings()
    kafka_admin.ensure_topics(settings)
    sent = produce_file(settings, Path(args.file))
    print(f"sent {sent} records")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierstream", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('tierstream')}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rules", help="validate a rules file and summarise it")
    p.add_argument("file", nargs="?", help="rules YAML (default: the shipped rules)")
    p.set_defaults(run=_cmd_rules)
    p = sub.add_parser("replay", help="run the scoring core over a JSONL file of input records, offline")
    p.add_argument("file", help='JSONL, one {"topic": ..., "key": ..., "value": ...} per line; - for stdin')
    p.add_argument("--rules", help="rules YAML (default: the shipped rules)")
    p.set_defaults(run=_cmd_replay)
    p = sub.add_parser("worker", help="run one worker (configuration from TIERSTREAM_* variables)")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(run=_cmd_worker)
    p = sub.add_parser("config", help="show every setting's effective value and its source, secrets masked")
    p.set_defaults(run=_cmd_config)
    p = sub.add_parser("eod", help="close a business day: send its eod to every partition")
    p.add_argument("date", help="YYYY-MM-DD")
    p.set_defaults(run=_cmd_eod)
    p = sub.add_parser("produce", help="send a JSONL or CSV file of input records")
    p.add_argument("file", help='JSONL: {"topic": ..., "key": ..., "value": ...}; CSV: topic,key,value-json')
    p.set_defaults(run=_cmd_produce)
    return parser


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Run the subcommand ``argv`` names; a refused rules file or setting exits 2 with its reason."""
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except RulesError as e:
        print(f"{parser.prog}: refused rules: {e}", file=sys.stderr)
        return 2
    except SettingsError as e:
        print(f"{parser.prog}: {e}", file=sys.stderr)
        return 2
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
