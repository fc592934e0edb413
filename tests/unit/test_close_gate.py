"""The close gate and the watermark frame policy (streams/gate.py), without a broker."""

from __future__ import annotations

from streams.gate import Close, CloseGate, FramePolicy, Record, committable

SOURCES = frozenset({"balances:0", "balances:1", "eod:0"})
D1, D2 = 20_000, 20_001  # day ordinals


def gate() -> CloseGate[str]:
    return CloseGate(SOURCES)


def test_a_close_waits_until_every_input_partition_has_passed_its_eod() -> None:
    g = gate()
    assert g.eod(D1, 1000, "eod", closed=None, now=0.0)
    g.observe({"balances:0": 5000, "eod:0": 5000})
    assert list(g.release()) == []  # balances:1 has not reported
    assert g.holding_back() == "balances:1"
    g.observe({"balances:1": 999})
    assert list(g.release()) == []  # reported, but not past the eod yet
    assert g.holding_back() == "balances:1"
    g.observe({"balances:1": 1000})
    assert list(g.release()) == [Close(D1, "eod")]
    assert g.waiting == [] and g.holding_back() is None


def test_records_stamped_after_a_waiting_close_are_held_and_released_after_it_in_arrival_order() -> None:
    g = gate()
    assert not g.holds(1500)  # nothing waits: straight through
    g.eod(D1, 1000, "eod", closed=None, now=0.0)
    assert not g.holds(999)
    assert g.holds(1000)  # stamped at the eod's millisecond: after the close
    g.hold(1200, "b")
    g.hold(1100, "a")
    g.observe(dict.fromkeys(SOURCES, 1000))
    assert list(g.release()) == [Close(D1, "eod"), Record("b"), Record("a")]
    assert g.held == []


def test_a_held_record_stays_behind_the_next_waiting_close() -> None:
    g = gate()
    g.eod(D1, 1000, "eod1", closed=None, now=0.0)
    g.eod(D2, 2000, "eod2", closed=None, now=0.0)
    g.hold(1500, "day2-record")
    g.hold(2500, "day3-record")
    g.observe(dict.fromkeys(SOURCES, 1800))
    assert list(g.release()) == [Close(D1, "eod1"), Record("day2-record")]
    assert [ts for ts, _ in g.held] == [2500]
    g.observe(dict.fromkeys(SOURCES, 2000))
    assert list(g.release()) == [Close(D2, "eod2"), Record("day3-record")]


def test_copies_of_a_waiting_or_closed_day_do_not_gate() -> None:
    """Each eod is copied to every routed partition from every eod partition: only the first
    copy of a day opens a close; later copies, and copies of closed days, change nothing."""
    g = gate()
    assert g.eod(D1, 1000, "first", closed=None, now=0.0)
    assert not g.eod(D1, 1010, "copy", closed=None, now=0.0)
    assert not g.eod(D1 - 1, 900, "old", closed=D1 - 1, now=0.0)
    assert [w.token for w in g.waiting] == ["first"]
    g.observe(dict.fromkeys(SOURCES, 1005))
    assert list(g.release()) == [Close(D1, "first")]
    assert not g.holds(1010)  # a later copy does not hold the records after it


def test_watermarks_never_go_back() -> None:
    g = gate()
    g.observe(dict.fromkeys(SOURCES, 2000))
    g.observe({"balances:0": 10})  # an older frame, or a restarted router starting from zero
    assert g.low_watermark() == 2000


def started() -> FramePolicy:
    """A worker's policy as it gets its first partitions."""
    p = FramePolicy(interval=0.2, heartbeat=2.0)
    p.rebalanced()
    return p


def test_an_idle_pipeline_sends_no_watermark_frames() -> None:
    """The frames are records in the routed topic: a worker that sends them on a timer fills
    the routed partitions with tiny batches (what stalled closes on the development broker)."""
    p = started()
    assert p.due({"balances:0": 100}, now=0.0, sees_eods=True)  # the first report
    sent = sum(p.due({"balances:0": 100 + t}, now=float(t), sees_eods=True) for t in range(1, 600))
    assert sent == 0


def test_frames_follow_an_eod_until_the_marks_have_passed_it() -> None:
    p = started()
    assert p.due({"balances:0": 100, "eod:0": 100}, now=0.0, sees_eods=True)
    p.saw_eod(1000)
    assert not p.due({"balances:0": 500, "eod:0": 1000}, now=0.1, sees_eods=True)  # within the interval
    assert p.due({"balances:0": 500, "eod:0": 1000}, now=0.2, sees_eods=True)
    assert not p.due({"balances:0": 500, "eod:0": 1000}, now=0.5, sees_eods=True)  # nothing new to say
    assert p.due({"balances:0": 1000, "eod:0": 1000}, now=0.6, sees_eods=True)  # past the eod now
    assert not p.due({"balances:0": 1500, "eod:0": 1500}, now=0.9, sees_eods=True)  # nobody waits for more


def test_a_rebalance_resends_the_marks_to_the_new_owners() -> None:
    p = started()
    assert p.due({"balances:0": 100}, now=0.0, sees_eods=True)
    p.rebalanced()
    assert p.due({"balances:0": 100}, now=0.05, sees_eods=True)  # unchanged, and early: sent anyway
    assert not p.due({"balances:0": 100}, now=1.0, sees_eods=True)


def test_a_worker_that_sees_no_eod_sends_a_heartbeat() -> None:
    p = started()
    assert p.due({"balances:0": 100}, now=0.0, sees_eods=False)
    assert not p.due({"balances:0": 200}, now=1.0, sees_eods=False)
    assert p.due({"balances:0": 300}, now=2.0, sees_eods=False)


def test_no_routed_offset_is_committed_past_one_not_acknowledged() -> None:
    # offset 10 is a waiting eod (not acknowledged), 11 and 12 were frames (acknowledged)
    assert committable([11, 12], base=10) is None
    assert committable([12, 10, 11, 14], base=10) == 13
    assert committable([0, 1], base=None) is None  # nothing read yet: nothing to commit
    assert committable([], base=10) is None


def test_faust_alone_would_commit_past_a_waiting_close() -> None:
    """Why the scorer replaces Faust's rule for the routed topic: Faust tolerates one missing
    offset after the committed one, so a crash would lose the eod waiting there."""
    from collections import defaultdict
    from types import SimpleNamespace

    from faust.transport.consumer import Consumer
    from faust.types import TP
    from intervaltree import IntervalTree

    tp = TP("routed", 0)
    consumer = SimpleNamespace(
        _acked=defaultdict(list, {tp: [11, 12]}),
        _acked_index=defaultdict(set, {tp: {11, 12}}),
        _committed_offset=defaultdict(lambda: None, {tp: 10}),
        _gap=defaultdict(IntervalTree),
    )
    assert Consumer._new_offset(consumer, tp) == 13  # type: ignore[arg-type]
