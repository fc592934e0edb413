"""The ``tierstream`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from schemas.rules import load_rules
from schemas.topics import BY_NAME, Role
from scoring.engine import Engine
from scoring.outputs import Source
from scoring.rules import RulesError


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
        f"{c.records} records: {c.accepted} accepted, {c.duplicates} duplicates, "
        f"dead letters {c.dead_letters or 0}, {c.days_closed} days closed, {len(engine.states)} customers",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rules", help="validate a rules file and summarise it")
    p.add_argument("file", nargs="?", help="rules YAML (default: the shipped rules)")
    p.set_defaults(run=_cmd_rules)
    p = sub.add_parser("replay", help="run the scoring core over a JSONL file of input records, offline")
    p.add_argument("file", help='JSONL, one {"topic": ..., "key": ..., "value": ...} per line; - for stdin')
    p.add_argument("--rules", help="rules YAML (default: the shipped rules)")
    p.set_defaults(run=_cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except RulesError as e:
        print(f"tierstream: refused rules: {e}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
