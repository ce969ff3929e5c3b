"""StreamOrder and the ordering kernels: acceptance tests AT-01..AT-07 plus properties.

Slots in these tests are chosen so a slot tells which event it was (usually slot == seq).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.errors import ConfigError
from meltica_nb.kernels import ordering_kernels as ok
from meltica_nb.stream_order import (
    DEFAULT_LATENESS_NS,
    StreamOrder,
    StreamOrderStats,
    split_stream_key,
    stream_key,
)

LATE = DEFAULT_LATENESS_NS
K1 = stream_key(1, 10, 2)
K2 = stream_key(1, 11, 2)
K3 = stream_key(2, 10, 2)


def push(so, events, now, key=K1):
    """Push ``events`` = [(seq_first, seq, slot)] or [seq] on one stream; return plain lists."""
    events = [(e, e, e) if isinstance(e, int) else e for e in events]
    n = len(events)
    ready, dropped = so.push([key] * n, [e[0] for e in events], [e[1] for e in events],
                             [0] * n, [e[2] for e in events], now)
    return ready.tolist(), dropped.tolist()


def flush(so, now):
    ready, dropped = so.flush(now)
    return ready.tolist(), dropped.tolist()


def stream(so, key=K1):
    return so.stream_stats()[key]


# -- acceptance tests -------------------------------------------------------------------------


def test_at01_two_then_one_released_in_order():
    so = StreamOrder(max_streams=4)
    assert push(so, [2], 0) == ([], [])
    assert push(so, [1], 10) == ([1, 2], [])
    assert so.held() == 0


def test_at01_within_one_batch():
    so = StreamOrder(max_streams=4)
    assert push(so, [2, 1], 0) == ([1, 2], [])


def test_at02_lone_out_of_order_event_waits_exactly_the_tolerance():
    so = StreamOrder(max_streams=4)
    assert push(so, [1], 0) == ([1], [])
    assert push(so, [3], 1_000) == ([], [])
    assert flush(so, 1_000 + LATE - 1) == ([], [])
    assert so.held() == 1
    assert flush(so, 1_000 + LATE) == ([3], [])
    assert stream(so)["expired"] == 1


def test_at02_fresh_stream_first_event_waits_for_earlier_ones():
    so = StreamOrder(max_streams=4)
    assert push(so, [500], 0) == ([], [])
    assert flush(so, LATE - 1) == ([], [])
    assert flush(so, LATE + 7) == ([500], [])
    assert stream(so)["gaps_skipped"] == 0  # the start of a stream is unknown: no gap


def test_at03_gap_skipped_after_tolerance_and_late_event_dropped():
    so = StreamOrder(max_streams=4)
    assert push(so, [1, 3], 0) == ([1], [])
    assert flush(so, LATE // 2) == ([], [])
    assert flush(so, LATE) == ([3], [])
    assert stream(so)["gaps_skipped"] == 1
    assert push(so, [(2, 2, 77)], LATE + 1) == ([], [77])
    s = stream(so)
    assert (s["duplicates"], s["last_emitted"], s["released"]) == (1, 3, 2)


def test_at04_duplicate_dropped_and_slot_returned():
    so = StreamOrder(max_streams=4)
    assert push(so, [(1, 1, 10)], 0) == ([10], [])
    assert push(so, [(1, 1, 11)], 1) == ([], [11])
    assert push(so, [(5, 5, 12), (5, 5, 13)], 2) == ([], [13])  # equal to a held seq
    assert push(so, [(2, 2, 14), (2, 2, 15)], 3) == ([14], [15])  # same batch
    assert stream(so)["duplicates"] == 3
    assert so.held() == 1


def test_at05_buffer_bounded_and_smallest_force_released_in_order():
    so = StreamOrder(max_streams=4, max_buffer=3)
    assert push(so, [1], 0) == ([1], [])
    ready = []
    for seq in (3, 5, 7, 9, 11, 13):
        r, d = push(so, [seq], seq)
        assert d == []
        ready += r
        assert so.held() <= 3
    assert ready == [3, 5, 7]
    s = stream(so)
    assert (s["forced"], s["gaps_skipped"], s["held_high_water"]) == (3, 3, 3)
    assert flush(so, 10 * LATE) == ([9, 11, 13], [])


def test_at05_new_smallest_event_is_forced_itself():
    so = StreamOrder(max_streams=4, max_buffer=2)
    push(so, [1], 0)
    assert push(so, [20, 30], 0) == ([], [])
    assert push(so, [10], 0) == ([10], [])  # smaller than every held one
    assert push(so, [5], 0) == ([], [5])  # now late
    assert so.held() == 2


def test_at05_forcing_the_front_can_make_the_new_event_contiguous():
    so = StreamOrder(max_streams=4, max_buffer=2)
    push(so, [1], 0)
    assert push(so, [3, 5], 0) == ([], [])
    assert push(so, [4], 0) == ([3, 4, 5], [])  # 3 forced, then 4 and 5 follow at once
    assert stream(so)["forced"] == 1


def test_at06_same_seq_on_different_streams_all_released():
    so = StreamOrder(max_streams=8)
    keys = [K1, K2, K3]
    ready, dropped = so.push(keys, [1, 1, 1], [1, 1, 1], [0, 0, 0], [100, 200, 300], 0)
    assert ready.tolist() == [100, 200, 300] and dropped.size == 0
    assert push(so, [3], 1, key=K2) == ([], [])  # a gap on K2 does not block K1
    assert push(so, [2], 2, key=K1) == ([2], [])
    assert so.stats().streams == 3


def test_at07_in_order_and_monotonic_events_released_in_the_same_call():
    so = StreamOrder(max_streams=4)
    assert push(so, [1, 2, 3, 4], 0) == ([1, 2, 3, 4], [])
    ticker = stream_key(1, 10, 5)
    mono = [(0, t, t) for t in (1_700_000_000_000, 1_700_000_000_250, 1_700_000_001_000)]
    assert push(so, mono, 0, key=ticker) == ([m[2] for m in mono], [])
    assert so.held() == 0


def test_at07_last_emitted_persists_after_the_buffer_empties():
    so = StreamOrder(max_streams=4)
    assert push(so, [1_000_001], 0) == ([], [])  # a fresh stream waits once
    assert flush(so, LATE) == ([1_000_001], [])
    for t in range(1, 20):  # quiet: flush ticks with nothing held
        assert flush(so, LATE + t * 50_000_000) == ([], [])
    assert stream(so)["last_emitted"] == 1_000_001
    assert push(so, [1_000_002], 10 * LATE) == ([1_000_002], [])
    assert push(so, [1_000_002], 10 * LATE) == ([], [1_000_002])


# -- sequence kinds ---------------------------------------------------------------------------


def test_depth_ranges_contiguous_when_first_le_last_plus_one_le_seq():
    so = StreamOrder(max_streams=4)
    assert push(so, [(1, 10, 1)], 0) == ([1], [])
    assert push(so, [(11, 15, 2)], 0) == ([2], [])
    assert push(so, [(14, 20, 3)], 0) == ([3], [])  # overlaps: U <= last + 1 <= u
    assert push(so, [(25, 30, 4)], 0) == ([], [])  # gap 21..24
    assert push(so, [(21, 24, 5)], 0) == ([5, 4], [])
    assert push(so, [(20, 22, 6)], 0) == ([], [6])
    assert stream(so)["last_emitted"] == 30


def test_range_event_overtaking_a_held_one_drops_it():
    so = StreamOrder(max_streams=4)
    push(so, [(1, 10, 1)], 0)
    assert push(so, [(15, 20, 2)], 0) == ([], [])
    assert push(so, [(11, 20, 3)], 0) == ([3], [2])  # same u, contiguous: held twin dropped
    assert push(so, [(12, 30, 4), (11, 25, 5)], 1) == ([4], [5])


def test_ingest_time_fallback_is_monotonic_by_ingest_ns():
    so = StreamOrder(max_streams=4)
    ready, dropped = so.push([K1] * 4, [0] * 4, [0] * 4, [100, 300, 200, 400], [1, 2, 3, 4], 0)
    assert ready.tolist() == [1, 2, 4] and dropped.tolist() == [3]
    assert stream(so)["last_emitted"] == 400


def test_malformed_sequences_dropped_as_invalid():
    so = StreamOrder(max_streams=4)
    ready, dropped = so.push([K1] * 4, [5, -1, 0, 0], [4, 3, -2, 0], [0, 0, 0, 0],
                             [1, 2, 3, 4], 0)
    assert ready.size == 0 and dropped.tolist() == [1, 2, 3, 4]
    assert stream(so)["invalid"] == 4


# -- time -------------------------------------------------------------------------------------


def test_next_deadline():
    so = StreamOrder(max_streams=4, lateness_ns=1_000)
    assert so.next_deadline() is None
    push(so, [1], 0)
    push(so, [5], 200)
    push(so, [3], 700, key=K2)
    assert so.next_deadline() == 1_200
    assert flush(so, 1_199) == ([], [])
    assert flush(so, 1_200) == ([5], [])
    assert so.next_deadline() == 1_700
    flush(so, 1_700)
    assert so.next_deadline() is None


def test_flush_releases_smaller_held_events_with_a_due_one():
    so = StreamOrder(max_streams=4, lateness_ns=1_000)
    push(so, [1], 0)
    push(so, [9], 0)
    push(so, [4], 900)  # not due yet itself, but smaller than the due 9
    push(so, [10], 900)  # contiguous with 9 once 9 goes
    push(so, [12], 900)  # stays: not due and after a gap
    assert flush(so, 1_000) == ([4, 9, 10], [])
    assert so.held() == 1
    assert stream(so)["gaps_skipped"] == 2 + 4


def test_push_releases_overdue_events_before_the_new_one():
    so = StreamOrder(max_streams=4, lateness_ns=1_000)
    push(so, [1], 0)
    push(so, [3], 0)
    assert push(so, [2], 5_000) == ([3], [2])  # same result as a flush at 5_000 first


def test_zero_lateness_releases_gaps_on_the_next_call():
    so = StreamOrder(max_streams=4, lateness_ns=0)
    push(so, [1], 0)
    assert push(so, [3], 0) == ([], [])
    assert flush(so, 0) == ([3], [])


# -- stream table and arguments ---------------------------------------------------------------


def test_stream_table_full_raises_config_error_and_orders_nothing():
    so = StreamOrder(max_streams=2)
    push(so, [1], 0, key=K1)
    push(so, [5], 0, key=K2)
    with pytest.raises(ConfigError, match="max_streams"):
        so.push([K1, K3], [2, 1], [2, 1], [0, 0], [2, 1], 1)
    assert stream(so)["last_emitted"] == 1 and so.held() == 1
    assert push(so, [2], 2, key=K1) == ([2], [])  # the known streams keep working


def test_many_streams_fill_the_hash_table():
    n = 300
    so = StreamOrder(max_streams=n)
    keys = [stream_key(v, i, 1) for v in range(3) for i in range(100)]
    ready, _ = so.push(keys, [1] * n, [1] * n, [0] * n, list(range(n)), 0)
    assert ready.tolist() == list(range(n))
    ready, _ = so.push(keys[::-1], [2] * n, [2] * n, [0] * n, list(range(n)), 1)
    assert ready.size == n and set(so.stream_stats()) == set(keys)
    with pytest.raises(ConfigError, match="raise max_streams"):
        so.push([stream_key(9, 9, 9)], [1], [1], [0], [1], 2)


def test_negative_key_rejected():
    so = StreamOrder(max_streams=4)
    with pytest.raises(ConfigError, match="negative"):
        so.push([K1, -5], [1, 1], [1, 1], [0, 0], [1, 2], 0)
    assert so.stats().released == 0


def test_mismatched_lengths_rejected():
    so = StreamOrder(max_streams=4)
    with pytest.raises(ConfigError, match="seq"):
        so.push([K1, K1], [1, 2], [1], [0, 0], [1, 2], 0)
    with pytest.raises(ConfigError, match="keys"):
        so.push([[K1]], [1], [1], [0], [1], 0)


@pytest.mark.parametrize("kwargs", [{"max_streams": 0}, {"max_buffer": 0},
                                    {"lateness_ns": -1}, {"max_buffer": 2.5},
                                    {"max_streams": True}])
def test_bad_configuration_rejected(kwargs):
    with pytest.raises(ConfigError):
        StreamOrder(**kwargs)


def test_outputs_grow_for_large_batches_and_many_held():
    so = StreamOrder(max_streams=4, max_buffer=5_000)
    n = 3_000
    seqs = np.append(np.arange(2, n + 1), 1)  # all held until seq 1 closes the gap
    ready, dropped = so.push(np.full(n, K1), seqs, seqs, np.zeros(n), seqs, 0)
    assert ready.tolist() == list(range(1, n + 1)) and dropped.size == 0
    seqs = np.arange(n + 2, 2 * n + 2)  # after a gap at n + 1
    so.push(np.full(n, K1), seqs, seqs, np.zeros(n), seqs, 1)
    assert so.held() == n
    ready, _ = so.flush(1 + LATE)
    assert ready.tolist() == seqs.tolist()


def test_stats_and_stream_stats():
    so = StreamOrder(max_streams=4)
    assert so.stats() == StreamOrderStats(0, 0, 0, 0, 0, 0, 0, 0, 0)
    push(so, [1, 1, 3], 0)
    push(so, [1], 0, key=K2)
    st_ = so.stats()
    assert (st_.streams, st_.held, st_.released, st_.duplicates, st_.held_high_water) == (
        2, 1, 2, 1, 1)
    s = stream(so)
    assert (s["venue"], s["instrument"], s["event_type"]) == (1, 10, 2)
    assert (s["held"], s["last_emitted"]) == (1, 1)


def test_stream_key_packing():
    assert stream_key(0, 0, 0) == 0
    key = stream_key(0xFFFF, 0xFFFFFFFF, 0xFF)
    assert key == (1 << 56) - 1
    assert split_stream_key(stream_key(7, 123_456, 9)) == (7, 123_456, 9)
    assert ok.stream_key_nb(np.uint16(7), np.uint16(65_000), np.uint8(9)) == stream_key(
        7, 65_000, 9)
    for bad in ((1 << 16, 0, 0), (0, 1 << 32, 0), (0, 0, 256), (-1, 0, 0)):
        with pytest.raises(ConfigError):
            stream_key(*bad)


def test_kernels_refuse_outputs_too_small():
    so = StreamOrder(max_streams=4)
    push(so, [1, 5], 0)
    tiny = np.empty(0, np.int64)
    counts = np.zeros(ok.N_COUNTS, np.int64)
    state = (so._meta, so._last_emitted, so._buf_len, so._buf_seq_first, so._buf_seq,
             so._buf_arrival, so._buf_slot, so._counters)
    assert ok.flush_due(tiny, tiny, counts, *state, LATE, LATE) == ok.BAD_ARGS
    one = np.ones(1, np.int64)
    status = ok.order_batch(tiny, tiny, counts, np.empty(1, np.int64), so._table_keys,
                            so._table_index, so._stream_keys, *state, one * K1, one, one,
                            one, one, 0, LATE, 200)
    assert status == ok.BAD_ARGS
    assert so.held() == 1
    assert ok.next_deadline(so._meta, so._buf_len, so._buf_arrival, LATE) == LATE
    flush(so, LATE)
    assert ok.next_deadline(so._meta, so._buf_len, so._buf_arrival, LATE) == -1


# -- property ---------------------------------------------------------------------------------

KINDS = ("contiguous", "depth", "monotonic", "ingest")


def _event(kind, seq, width):
    """(seq_first, seq, ingest_ns, effective seq) of one generated event."""
    if kind == "contiguous":
        return seq, seq, 0, seq
    if kind == "depth":
        return max(1, seq - width), seq, 0, seq
    if kind == "monotonic":
        return 0, seq * 1_000, 0, seq * 1_000
    return 0, 0, seq * 10, seq * 10


@st.composite
def scenarios(draw):
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    raw = draw(st.lists(st.tuples(st.integers(0, len(kinds) - 1), st.integers(1, 20),
                                  st.integers(0, 5)), max_size=60))
    cuts = draw(st.lists(st.integers(1, 8), min_size=len(raw), max_size=len(raw)))
    steps = draw(st.lists(st.integers(0, 120), min_size=len(raw), max_size=len(raw)))
    flushes = draw(st.lists(st.booleans(), min_size=len(raw), max_size=len(raw)))
    max_buffer = draw(st.integers(1, 6))
    return kinds, raw, cuts, steps, flushes, max_buffer


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_every_slot_leaves_once_and_streams_stay_ordered(scenario):
    kinds, raw, cuts, steps, flushes, max_buffer = scenario
    so = StreamOrder(max_streams=4, max_buffer=max_buffer, lateness_ns=100)
    keys = [stream_key(1, s, 1) for s in range(len(kinds))]
    events = [(keys[s],) + _event(kinds[s], seq, w) for s, seq, w in raw]
    stream_of = {slot: e[0] for slot, e in enumerate(events)}
    eff_of = {slot: e[4] for slot, e in enumerate(events)}
    ready_all, dropped_all = [], []
    now, i, b = 0, 0, 0
    while i < len(events):
        batch = events[i:i + cuts[b]]
        slots = list(range(i, i + len(batch)))
        r, d = so.push([e[0] for e in batch], [e[1] for e in batch], [e[2] for e in batch],
                       [e[3] for e in batch], slots, now)
        ready_all += r.tolist()
        dropped_all += d.tolist()
        assert all(s["held"] <= max_buffer for s in so.stream_stats().values())
        now += steps[b]
        if flushes[b]:
            r, d = so.flush(now)
            ready_all += r.tolist()
            dropped_all += d.tolist()
        i += len(batch)
        b += 1
    r, d = so.flush(now + 10**12)
    ready_all += r.tolist()
    dropped_all += d.tolist()

    assert so.held() == 0 and so.next_deadline() is None
    assert sorted(ready_all + dropped_all) == list(range(len(events)))
    for key in keys:
        seqs = [eff_of[s] for s in ready_all if stream_of[s] == key]
        assert all(x < y for x, y in zip(seqs, seqs[1:], strict=False))
    st_ = so.stats()
    assert st_.released == len(ready_all)
    assert st_.duplicates + st_.invalid == len(dropped_all)
    assert st_.held_high_water <= max_buffer
