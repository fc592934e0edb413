"""Routing (streams/routing.py) without a broker: where each record goes, and the watermarks."""

from __future__ import annotations

from schemas import topics
from streams.frames import Routed
from streams.routing import IDLE_AFTER_MS, NoCustomer, Router, ToCustomer, ToEveryPartition

INPUTS = {t.full_name("p-"): t for t in topics.INPUTS}


def record(topic: str, raw: bytes | None, offset: int = 0, ts: int = 1000) -> Routed:
    return Routed(topic, 0, offset, ts, None, raw)


def test_a_record_goes_to_its_customer_an_eod_everywhere_and_a_record_without_customer_nowhere() -> None:
    router = Router(INPUTS)
    assert router.route(record("p-balances", b'{"customer_id": "c9"}')) == ToCustomer(
        "c9", record("p-balances", b'{"customer_id": "c9"}')
    )
    eod = record("p-eod", b'{"business_date": "2026-11-02"}')
    routed = router.route(eod)
    assert isinstance(routed, ToEveryPartition) and routed.record.eod and routed.record.raw == eod.raw
    for raw in (b'{"customer_id": ""}', b"[1]", b"{oops", None):
        assert isinstance(router.route(record("p-customers", raw)), NoCustomer)


def test_the_customer_is_read_as_the_parser_reads_it() -> None:
    # orjson refuses integers beyond 64 bits; the parser then decodes exactly, and so must routing
    raw = b'{"customer_id": "c1", "note": 123456789012345678901234567890}'
    assert router_of(raw) == ToCustomer("c1", record("p-transactions", raw))


def router_of(raw: bytes) -> object:
    return Router(INPUTS).route(record("p-transactions", raw))


def test_a_watermark_is_the_latest_timestamp_forwarded_until_the_partition_is_idle() -> None:
    router = Router(INPUTS)
    router.forwarded(record("p-balances", b"{}", offset=4, ts=5000), now=100.0)
    router.forwarded(record("p-balances", b"{}", offset=5, ts=4000), now=100.1)  # timestamps may go back
    assert router.next_offset["p-balances:0"] == 6
    busy = router.watermarks(["p-balances:0", "p-eod:0"], now=100.2, caught_up=lambda s, pos: True)
    assert busy == {"p-balances:0": 5000, "p-eod:0": int(100.2 * 1000) - IDLE_AFTER_MS}  # eod:0 never read: idle
    behind = router.watermarks(["p-balances:0"], now=200.0, caught_up=lambda s, pos: False)
    assert behind == {"p-balances:0": 5000}  # quiet, but not read to its end: no promise about what comes
    idle = router.watermarks(["p-balances:0"], now=200.0, caught_up=lambda s, pos: pos == 6)
    assert idle == {"p-balances:0": 200_000 - IDLE_AFTER_MS}
