"""The close gate and the watermark frame policy (streams/gate.py), without a broker."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.gate import Ack, Ahead, Apply, Close, CloseGate, FramePolicy, Keep, committable, gap_at, pause_limit

SOURCES = frozenset({"balances:0", "balances:1", "eod:0"})
D1, D2 = 20_000, 20_001  # day ordinals


def gate() -> CloseGate[str]:
    return CloseGate(SOURCES)


def marks(ts: int) -> dict[str, int]:
    return dict.fromkeys(SOURCES, ts)


def test_a_close_waits_until_every_input_partition_has_passed_its_eod() -> None:
    g = gate()
    assert g.on_eod(D1, 1000, "eod", closed=None, now=0.0) == [Keep("eod")]
    assert g.on_watermarks({"balances:0": 5000, "eod:0": 5000}, "w1") == [Ack("w1")]  # balances:1 is missing
    assert g.holding_back() == "balances:1"
    assert g.on_watermarks({"balances:1": 999}, "w2") == [Ack("w2")]  # reported, but not past the eod yet
    assert g.holding_back() == "balances:1"
    assert g.on_watermarks({"balances:1": 1000}, "w3") == [Close(D1), Ack("eod"), Ack("w3")]
    assert g.waiting == [] and g.holding_back() is None
    assert g.closed_ts == 1000  # a record stamped before it, read from now on, came after its close


def test_an_eod_the_watermarks_have_already_passed_closes_at_once() -> None:
    g = gate()
    g.on_watermarks(marks(5000), "w")
    assert g.on_eod(D1, 1000, "eod", closed=None, now=0.0) == [Close(D1), Ack("eod")]


def test_records_stamped_after_a_waiting_close_are_held_and_released_after_it_in_arrival_order() -> None:
    g = gate()
    assert g.on_record(1500, "early") == [Apply("early"), Ack("early")]  # nothing waits: straight through
    g.on_eod(D1, 1000, "eod", closed=None, now=0.0)
    assert g.on_record(999, "before") == [Apply("before"), Ack("before")]
    assert g.on_record(1200, "b") == [Keep("b")]
    assert g.on_record(1000, "a") == [Keep("a")]  # stamped at the eod's millisecond: after the close
    assert g.on_watermarks(marks(1000), "w") == [
        Close(D1),
        Ack("eod"),
        Apply("b"),
        Ack("b"),
        Apply("a"),
        Ack("a"),
        Ack("w"),
    ]
    assert g.held == []


def test_a_held_record_stays_behind_the_next_waiting_close() -> None:
    g = gate()
    g.on_eod(D1, 1000, "eod1", closed=None, now=0.0)
    g.on_eod(D2, 2000, "eod2", closed=None, now=0.0)
    g.on_record(1500, "day2-record")
    g.on_record(2500, "day3-record")
    assert g.on_watermarks(marks(1800), "w1") == [
        Close(D1),
        Ack("eod1"),
        Apply("day2-record"),
        Ack("day2-record"),
        Ack("w1"),
    ]
    assert [ts for ts, _ in g.held] == [2500]
    assert g.on_watermarks(marks(2000), "w2") == [
        Close(D2),
        Ack("eod2"),
        Apply("day3-record"),
        Ack("day3-record"),
        Ack("w2"),
    ]


def test_copies_of_a_waiting_or_closed_day_do_not_gate() -> None:
    """Each eod is copied to every routed partition from every eod partition: only the first
    copy of a day opens a close; later copies, and copies of closed days, change nothing."""
    g = gate()
    assert g.on_eod(D1, 1000, "first", closed=None, now=0.0) == [Keep("first")]
    assert g.on_eod(D1, 1010, "copy", closed=None, now=0.0) == [Ack("copy")]
    assert g.on_eod(D1 - 1, 900, "old", closed=D1 - 1, now=0.0) == [Ack("old")]
    assert [w.token for w in g.waiting] == ["first"]
    assert g.on_watermarks(marks(1005), "w") == [Close(D1), Ack("first"), Ack("w")]
    assert g.on_record(1010, "r") == [Apply("r"), Ack("r")]  # a later copy does not hold the records after it


def test_watermarks_never_go_back() -> None:
    g = gate()
    g.on_watermarks(marks(2000), "w1")
    g.on_watermarks({"balances:0": 10}, "w2")  # an older frame, or a restarted router starting from zero
    assert g.low_watermark() == 2000


# --- the gate's rule, for any interleaving ----------------------------------------------

_step = st.one_of(
    st.tuples(st.just("marks"), st.dictionaries(st.sampled_from(sorted(SOURCES)), st.integers(0, 40), min_size=1)),
    st.tuples(st.just("record"), st.integers(0, 40)),
    st.tuples(st.just("eod"), st.tuples(st.integers(0, 4), st.integers(0, 40))),
)


@given(st.lists(_step, max_size=60))
@settings(max_examples=400, deadline=None)
def test_a_close_is_applied_only_after_every_watermark_passed_it_and_no_earlier_record_is_held(
    steps: list[Any],
) -> None:
    g: CloseGate[int] = gate()
    highest: dict[str, int] = {}
    records: dict[int, int] = {}  # record token -> its timestamp
    eods: dict[int, tuple[int, int]] = {}  # eod token -> (day, timestamp)
    closed: int | None = None
    applied: list[int] = []
    acked: list[int] = []
    for token, (kind, arg) in enumerate(steps):
        if kind == "marks":
            for s, m in arg.items():
                highest[s] = max(highest.get(s, -1), m)
            actions = g.on_watermarks(arg, token)
        elif kind == "record":
            records[token] = arg
            actions = g.on_record(arg, token)
        else:
            eods[token] = (D1 + arg[0], arg[1])
            actions = g.on_eod(D1 + arg[0], arg[1], token, closed, now=0.0)
        for i, action in enumerate(actions):
            if isinstance(action, Close):
                ack = actions[i + 1]  # the close's own eod is acknowledged right after it
                assert isinstance(ack, Ack) and eods[ack.token][0] == action.day
                ts = eods[ack.token][1]
                assert highest.keys() >= SOURCES and min(highest[s] for s in SOURCES) >= ts
                assert all(records[t] >= ts for _, t in g.held)  # nothing stamped before it is held
                closed = action.day if closed is None else max(closed, action.day)  # the clock never goes back
            elif isinstance(action, Apply):
                assert action.token not in applied
                assert all(records[action.token] < w.ts for w in g.waiting)  # no waiting close precedes it
                applied.append(action.token)
            elif isinstance(action, Ack):
                assert action.token not in acked  # acknowledged once
                assert action.token not in records or action.token in applied  # and only once applied
                acked.append(action.token)
    # nothing is lost: every token is acknowledged, or still waits in the gate un-acked
    waiting = {w.token for w in g.waiting} | {t for _, t in g.held}
    assert set(acked) | waiting == set(range(len(steps)))
    assert not set(acked) & waiting


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


def test_inputs_pause_at_the_latest_copy_of_the_earliest_day_once_every_copy_is_known() -> None:
    gate: CloseGate[str] = CloseGate(frozenset({"balances:0", "eod:0", "eod:1"}))
    gate.on_eod(5, 100, "a", None, 0.0, copy=0)
    gate.on_eod(5, 90, "b", None, 0.0, copy=1)  # a copy stamped earlier, read later: noted
    gate.on_eod(6, 200, "c", None, 0.0, copy=1)
    assert [(w.day, w.copies) for w in gate.waiting] == [(5, {0: 100, 1: 90}), (6, {1: 200})]
    # a close waits for the first copy it read; pausing past the latest copy of the day
    # stalls none, wherever its first copy came from
    assert pause_limit({5: {0: 100, 1: 90}, 6: {1: 200}}, eod_partitions=2) == 100
    assert pause_limit({5: {0: 100}, 6: {0: 200, 1: 210}}, eod_partitions=2) is None  # day 5's copy 1 unknown
    assert pause_limit({}, eod_partitions=2) is None


def test_inputs_pause_only_once_more_records_than_the_bound_were_routed_ahead_of_the_limit() -> None:
    ahead = Ahead(bound=2)
    assert not ahead.routed(500)  # no limit known: nothing is ahead of it
    ahead.moved(100)
    assert [ahead.routed(ts) for ts in (50, 100, 300)] == [False, False, False]  # 50: before the limit
    assert ahead.full()  # two ahead: at the bound, partitions at the limit pause
    assert ahead.routed(200)  # the third passes the bound: its partition stops there
    # the close applied, the limit moves to the next day: only what is still ahead counts
    ahead.moved(250)
    assert ahead.stamps == [300] and not ahead.full()
    ahead.moved(None)  # no limit: nothing pauses, what was counted stays
    assert not ahead.full() and not ahead.routed(400)
    ahead.moved(250)
    assert ahead.stamps == [300]


def test_a_bound_of_zero_takes_a_backlog_a_day_at_a_time() -> None:
    ahead = Ahead(bound=0)
    ahead.moved(100)
    assert ahead.full()  # pause partitions read up to the limit at once
    assert not ahead.routed(99) and ahead.routed(100)  # the first record at the limit stops its partition


def test_a_fetch_that_skips_routed_offsets_is_cut_where_the_skip_starts() -> None:
    # Tansu made a later batch visible before an earlier one: 12, 13 were read, 14 and 15
    # were not there yet, 16 and 17 were; the worker reads again from 14
    assert gap_at(14, [16, 17]) == 0
    assert gap_at(12, [12, 13, 16, 17]) == 2
    assert gap_at(12, [12, 13, 14]) is None
    assert gap_at(None, [7, 8, 9]) is None  # nothing read yet: anything starts the run
    assert gap_at(None, [7, 9]) == 1
