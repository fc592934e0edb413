"""The ``tierstream-dev`` command: the development stack, the demo, the synthetic feed and
the generated documents."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from devkit import demo, devstack, docs
from streams.cli import run_command
from streams.settings import Settings


def _data_dir() -> Path:
    return Path(os.environ.get("TIERSTREAM_DATA_DIR", "./.tierstream"))


def _exports(state: dict[str, object]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in devstack.environment(state).items())


def _cmd_up(args: argparse.Namespace) -> int:
    state = devstack.up(_data_dir())
    print(f"# broker {state['broker']}  redis {state['redis_url']}; eval this output to point tierstream at it")
    print(_exports(state))
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    print("stopped" if devstack.down(_data_dir()) else "nothing was running")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    current = devstack.status(_data_dir())
    if current is None:
        print("not running")
        return 1
    running = "running" if current["running"] else "stopped"
    print(f"# {running}: broker {current['broker']}  redis {current['redis_url']}")
    print(_exports(current))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return demo.run(args.customers, args.days, args.workers, args.lines, args.keep)


def _cmd_feed(args: argparse.Namespace) -> int:
    sent = demo.feed(Settings.from_env(os.environ), args.customers, args.days, args.pause)
    print(f"sent {sent} events")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    for path in docs.write():
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierstream-dev", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start Tansu and Redis on free ports; prints the settings to export")
    p.set_defaults(run=_cmd_up)
    p = sub.add_parser("down", help="stop what `up` started")
    p.set_defaults(run=_cmd_down)
    p = sub.add_parser("status", help="is the stack running; prints the settings to export")
    p.set_defaults(run=_cmd_status)
    p = sub.add_parser("demo", help="stream a synthetic bank through real workers and show what happens")
    p.add_argument("--customers", type=int, default=400)
    p.add_argument("--days", type=int, default=20)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--lines", type=int, default=6, help="output lines shown per day")
    p.add_argument("--keep", action="store_true", help="leave the development stack running")
    p.set_defaults(run=_cmd_demo)
    p = sub.add_parser("feed", help="stream the synthetic bank into Kafka, a day and its eod at a time")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--pause", type=float, default=2.0, help="seconds between business days")
    p.set_defaults(run=_cmd_feed)
    p = sub.add_parser("docs", help="write docs/configuration.md and docs/asyncapi.yaml from the code and schemas")
    p.set_defaults(run=_cmd_docs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
