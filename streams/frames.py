"""Records of the internal ``routed`` topic, as typed values, and their bytes.

A routed record is a JSON header line, then the input value's bytes exactly as they came
(so a dead letter can quote them). Three kinds: a customer's input record, a copy of an
``eod`` (one per routed partition), and a worker's watermarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

_RECORD, _EOD, _WATERMARKS = "R", "E", "W"


@dataclass(frozen=True, slots=True)
class Routed:
    """An input record forwarded with where it came from: a customer's record, or (``eod``
    true) one copy of a day's close."""

    topic: str  # the input topic as consumed, prefix included
    partition: int
    offset: int
    ts: int  # the input record's Kafka timestamp, ms
    key: bytes | None
    raw: bytes | None  # the value's bytes as they came; None for a tombstone
    eod: bool = False


@dataclass(frozen=True, slots=True)
class Watermarks:
    """For each input partition a worker reads ("topic:partition"), a time W such that every
    record of it stamped before W has been forwarded."""

    marks: dict[str, int]


Frame = Routed | Watermarks


def encode(frame: Frame) -> bytes:
    if isinstance(frame, Watermarks):
        return orjson.dumps([_WATERMARKS, frame.marks])
    key = None if frame.key is None else frame.key.decode("latin-1")  # any bytes, losslessly
    head = orjson.dumps([_EOD if frame.eod else _RECORD, frame.topic, frame.partition, frame.offset, frame.ts, key])
    return head if frame.raw is None else head + b"\n" + frame.raw


def decode(data: bytes) -> Frame:
    head, sep, raw = data.partition(b"\n")
    header = orjson.loads(head)
    if header[0] == _WATERMARKS:
        return Watermarks(header[1])
    kind, topic, partition, offset, ts, key = header
    return Routed(
        topic,
        partition,
        offset,
        ts,
        None if key is None else key.encode("latin-1"),
        raw if sep else None,
        eod=kind == _EOD,
    )
