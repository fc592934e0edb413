"""The customer table's value and codec: a customer's state together with its outbox.

A table value holds the state and the outputs it counts as sent that Kafka has not
acknowledged yet. Both travel in one changelog record (a transactional outbox): a crash
can lose both, and the event is replayed, or keep both, and the outbox is sent again when
the partition is recovered; never the state without its outputs.

Encoding, version 2: ``0x02``, the state's length (4 bytes, big-endian), the state's bytes
(``CustomerState.to_bytes``), then per outbox entry a newline, its sequence and its JSON (JSON
text holds no raw newline). Version 1 (read, no longer written) was the state's JSON, then
the same outbox lines: its first byte is ``[``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from scoring.state import CustomerState

Encoded = tuple[dict[str, Any], bytes]  # an output value and its JSON, encoded once


@dataclass
class Stored:
    """A customer's table value."""

    state: CustomerState
    outbox: list[tuple[int, bytes]] = field(default_factory=list)  # (sequence, value JSON)

    def pending(self) -> list[Encoded]:
        """The outputs still waiting for Kafka's acknowledgement, in sequence order."""
        return [(orjson.loads(v), v) for _, v in self.outbox]


_V2 = b"\x02"
_HEAD = struct.Struct(">cI")  # version, length of the state's bytes


def encode_stored(stored: Stored) -> bytes:
    """A table value (changelog record, local store entry): the state, then its outbox."""
    state = stored.state.to_bytes()
    return b"".join([_HEAD.pack(_V2, len(state)), state, *(b"\n%d %s" % entry for entry in stored.outbox)])


def decode_stored(data: bytes) -> Stored:
    if data[:1] == _V2:
        _, n = _HEAD.unpack_from(data)
        head, lines = data[_HEAD.size : _HEAD.size + n], data[_HEAD.size + n :].split(b"\n")[1:]
    else:  # version 1
        head, *lines = data.split(b"\n")
    outbox = []
    for line in lines:
        seq, _, value = line.partition(b" ")
        outbox.append((int(seq), value))
    return Stored(CustomerState.from_bytes(head), outbox)


def has_outbox(data: bytes) -> bool:
    """Whether an encoded table value holds outputs to send again, without decoding it."""
    if data[:1] == _V2:
        n: int = _HEAD.unpack_from(data)[1]
        return len(data) > _HEAD.size + n
    return b"\n" in data


class Acknowledgements:
    """Output sequences both Kafka and Redis have acknowledged, per customer, until the
    customer's next table write drops them from its outbox. An output stays in the outbox
    until both have it: a crash before either is sent again when the partition is recovered
    (the replayed event itself is then a duplicate and would make nothing)."""

    def __init__(self) -> None:
        self._kafka: dict[str, set[int]] = {}
        self._redis: dict[str, set[int]] = {}

    def kafka_has(self, customer_id: str, sequence: int) -> None:
        self._kafka.setdefault(customer_id, set()).add(sequence)

    def redis_has(self, customer_id: str, sequences: list[int]) -> None:
        if sequences:  # most Redis writes carry no output: no empty set per customer
            self._redis.setdefault(customer_id, set()).update(sequences)

    def settled(self) -> set[str]:
        """Customers with outputs both Kafka and Redis have acknowledged since their last write."""
        return self._kafka.keys() & self._redis.keys()

    def next_value(self, customer_id: str, old: Stored | None, state: CustomerState, values: list[Encoded]) -> Stored:
        """The table value to write: the state, with every output it counts as sent that
        Kafka has not acknowledged (the old outbox less what was acknowledged, plus ``values``)."""
        acked = self._kafka.get(customer_id, set()) & self._redis.get(customer_id, set())
        for seen in (self._kafka, self._redis):
            left = seen.get(customer_id, set()) - acked
            if left:
                seen[customer_id] = left
            else:
                seen.pop(customer_id, None)
        outbox = [(seq, v) for seq, v in (old.outbox if old else []) if seq not in acked]
        outbox += [(v["sequence"], raw) for v, raw in values if v["sequence"] is not None]
        return Stored(state, outbox)
