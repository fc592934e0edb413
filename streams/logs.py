"""Log lines: one event per line, logfmt (``key=value``) or JSON, with ISO 8601 timestamps.

Our code logs events through ``event(logger, level, name, **fields)``; the formatters write
the fields as they are. Lines of the libraries underneath (aiokafka, aiohttp, asyncio) carry
a free-text message, which becomes the ``msg`` field: every line of a worker parses the
same way, whoever wrote it.
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

FORMATS = ("logfmt", "json")


def event(logger: logging.Logger, level: int, name: str, **fields: Any) -> None:
    """Log event ``name`` with its fields (values: numbers, strings, or anything ``str`` can show)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The line's fields in order: when, how bad, who, then the event's own."""
    ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out: dict[str, Any] = {"ts": ts, "level": record.levelname.lower(), "logger": record.name, "pid": record.process}
    own: dict[str, Any] | None = getattr(record, "fields", None)
    if own is None:
        out["msg"] = record.getMessage()
    else:
        out["event"] = record.msg
        out.update(own)
    if record.exc_info:
        out["exc"] = logging.Formatter().formatException(record.exc_info)
    return out


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else f"{value:.3f}" if isinstance(value, float) else str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """``ts=2026-12-05T05:20:00.123Z level=info logger=tierstream pid=7 event=day_closed ...``:
    values with spaces, quotes or ``=`` are quoted and escaped, as logfmt parsers expect."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the same fields as logfmt's."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_fields(record), default=str).decode()


def configure(level: str, fmt: str = "logfmt") -> None:
    """Every logger (ours and the libraries') to stderr in ``fmt``, at ``level`` and above."""
    formatter = {"logfmt": LogfmtFormatter, "json": JsonFormatter}[fmt]
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"line": {"()": formatter}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
            "root": {"level": level.upper(), "handlers": ["stderr"]},
        }
    )
