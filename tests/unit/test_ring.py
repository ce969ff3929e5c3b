"""Rings: ordering, latest-wins coalescing, drop-oldest with DLQ, lossless waiting, conservation.

Market-data behaviour is checked against a plain-Python model of the policy (a list: coalesce
into the stream's unconsumed record, else append and drop the oldest when full), so every test
states exactly what a consumer must receive, not just counts.
"""

import random
import threading
import time
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_nb.concurrency import TaskGroup
from meltica_nb.errors import ConfigError
from meltica_nb.kernels import dispatch_kernels as dk
from meltica_nb.kernels import ring_kernels as rk
from meltica_nb.kernels.routing_kernels import new_memo
from meltica_nb.ring import CriticalRing, MarketDataRing, RingStats
from meltica_nb.ring_bank import RingBank
from meltica_nb.routing import RoutingTable, Subscription
from meltica_nb.schema import CANONICAL_EVENT, EventType, kind_of
from meltica_nb.wait_strategy import BlockingWait, BusySpinWait, WaitStrategy, YieldingWait

TRADE = int(EventType.TRADE)
BBO = int(EventType.BBO)
BOOK = int(EventType.BOOK_SNAPSHOT)
EXEC = int(EventType.EXEC_REPORT)
COALESCABLE = {BBO, BOOK, int(EventType.TICKER), int(EventType.KLINE), int(EventType.MERGED)}
MD_TYPES = [TRADE, *sorted(COALESCABLE)]
STRATEGIES = [BlockingWait, YieldingWait, BusySpinWait]


def events(specs):
    """CanonicalEvents from (event_type, venue, instrument, seq) tuples; seq in seq_provider."""
    out = np.zeros(len(specs), CANONICAL_EVENT)
    for i, (event_type, venue, instrument, seq) in enumerate(specs):
        out[i]["event_type"] = event_type
        out[i]["kind"] = kind_of(event_type)
        out[i]["venue"] = venue
        out[i]["instrument"] = instrument
        out[i]["seq_provider"] = seq
    return out


def specs_of(records):
    """The (event_type, venue, instrument, seq) tuples of records, to compare with a model."""
    return list(zip(records["event_type"].tolist(), records["venue"].tolist(),
                    records["instrument"].tolist(), records["seq_provider"].tolist(),
                    strict=True))


def assert_conserved(stats: RingStats):
    assert stats.published == stats.delivered + stats.coalesced + stats.dropped + stats.size


class MarketDataModel:
    """The market-data policy spelled out on a Python list (oldest first)."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.queue = []
        self.high_water = 0

    def publish(self, specs):
        dropped = []
        for spec in specs:
            stream = spec[:3]
            same = [k for k, q in enumerate(self.queue) if q[:3] == stream]
            if spec[0] in COALESCABLE and same:
                self.queue[same[0]] = spec
                continue
            if len(self.queue) == self.capacity:
                dropped.append(self.queue.pop(0))
            self.queue.append(spec)
            self.high_water = max(self.high_water, len(self.queue))
        return dropped

    def drain(self, n):
        out, self.queue = self.queue[:n], self.queue[n:]
        return out


# -- market-data ring ------------------------------------------------------------------------


def test_trades_are_delivered_in_publish_order_across_partial_drains():
    ring = MarketDataRing(16)
    ring.publish(events([(TRADE, 1, 7, s) for s in range(5)]))
    ring.publish(events([(TRADE, 1, 7, s) for s in range(5, 12)]))
    got = []
    for n in (3, 1, 100):
        got += ring.drain(n)["seq_provider"].tolist()
    assert got == list(range(12))
    stats = ring.stats()
    assert (stats.published, stats.delivered, stats.size, stats.coalesced) == (12, 12, 0, 0)
    assert stats.high_water == 12
    assert_conserved(stats)


def test_drain_returns_a_read_only_view_of_the_reused_batch_buffer():
    ring = MarketDataRing(8, batch_size=4)
    ring.publish(events([(TRADE, 0, 0, s) for s in range(6)]))
    first = ring.drain()
    assert first["seq_provider"].tolist() == [0, 1, 2, 3]  # batch_size caps a drain
    with pytest.raises(ValueError):
        first["seq_provider"][0] = 99
    second = ring.drain()
    assert second["seq_provider"].tolist() == [4, 5]
    assert first["seq_provider"][0] == 4  # same buffer: valid only until the next drain
    assert ring.drain().shape == (0,)


def test_drain_into_a_private_buffer():
    ring = MarketDataRing(8)
    ring.publish(events([(TRADE, 0, 0, s) for s in range(5)]))
    out = np.zeros(3, CANONICAL_EVENT)
    assert ring.drain_into(out) == 3
    assert out["seq_provider"].tolist() == [0, 1, 2]
    assert ring.drain_into(out, max_n=1) == 1
    assert out["seq_provider"][0] == 3
    assert ring.size() == len(ring) == 1


def test_burst_of_snapshots_delivers_only_the_newest_and_keeps_other_streams_apart():
    ring = MarketDataRing(16)
    others = [(BOOK, 1, 8, 100), (BOOK, 2, 7, 200), (BBO, 1, 7, 300)]  # instrument/venue/type
    ring.publish(events([(BOOK, 1, 7, 0), *others]))
    for s in range(1, 10):  # one at a time: the table must work across publish calls too
        ring.publish(events([(BOOK, 1, 7, s)]))
    got = specs_of(ring.drain())
    assert got == [(BOOK, 1, 7, 9), *others]  # newest, in the oldest one's place
    stats = ring.stats()
    assert (stats.published, stats.coalesced, stats.delivered, stats.dropped) == (13, 9, 4, 0)
    assert_conserved(stats)


def test_a_consumed_snapshot_is_not_overwritten_the_next_one_is_appended():
    ring = MarketDataRing(4)
    ring.publish(events([(BOOK, 1, 7, 0)]))
    assert ring.drain()["seq_provider"].tolist() == [0]
    ring.publish(events([(TRADE, 1, 7, 1), (BOOK, 1, 7, 2), (BOOK, 1, 7, 3)]))
    assert specs_of(ring.drain()) == [(TRADE, 1, 7, 1), (BOOK, 1, 7, 3)]
    assert ring.stats().coalesced == 1


def test_trades_are_never_coalesced_and_overflow_drops_the_oldest_into_the_dlq():
    ring = MarketDataRing(4)
    assert ring.publish(events([(TRADE, 1, 7, s) for s in range(10)])) == 6
    assert ring.last_dropped["seq_provider"].tolist() == [0, 1, 2, 3, 4, 5]
    assert not ring.last_dropped.flags.writeable
    assert ring.publish(events([(TRADE, 1, 7, 10), (TRADE, 1, 7, 11)])) == 2
    assert ring.last_dropped["seq_provider"].tolist() == [6, 7]
    assert ring.drain()["seq_provider"].tolist() == [8, 9, 10, 11]
    assert ring.publish(events([(TRADE, 1, 7, 12)])) == 0
    assert ring.last_dropped.shape == (0,)
    stats = ring.stats()
    assert (stats.published, stats.dropped, stats.delivered, stats.size) == (13, 8, 4, 1)
    assert stats.high_water == 4
    assert_conserved(stats)


def test_a_snapshot_with_nothing_to_coalesce_drops_the_oldest_when_full():
    ring = MarketDataRing(2)
    assert ring.publish(events([(TRADE, 1, 7, 0), (TRADE, 1, 7, 1), (BOOK, 1, 7, 2)])) == 1
    assert specs_of(ring.last_dropped) == [(TRADE, 1, 7, 0)]
    # the snapshot is dropped in turn; its stale table entry must not be overwritten later
    assert ring.publish(events([(TRADE, 1, 7, 3), (TRADE, 1, 7, 4), (BOOK, 1, 7, 5)])) == 3
    assert specs_of(ring.last_dropped) == [(TRADE, 1, 7, 1), (BOOK, 1, 7, 2), (TRADE, 1, 7, 3)]
    assert specs_of(ring.drain()) == [(TRADE, 1, 7, 4), (BOOK, 1, 7, 5)]
    assert_conserved(ring.stats())


def test_large_batches_grow_the_dlq_buffer():
    ring = MarketDataRing(4)
    assert ring.publish(events([(TRADE, 0, 0, s) for s in range(300)])) == 296
    assert ring.last_dropped["seq_provider"].tolist() == list(range(296))
    assert ring._dlq_buffer(3).shape[0] >= 300  # grown once, reused after


def test_many_streams_through_a_small_ring_match_the_model():
    """More streams than the stream table holds: it is rebuilt and coalescing stays exact."""
    ring, model = MarketDataRing(4), MarketDataModel(4)
    seq = 0
    for round_ in range(40):
        specs = []
        for k in range(5):
            specs.append((BOOK, round_ % 3, (round_ * 5 + k) % 23, seq))
            seq += 1
        ring.publish(events(specs))
        assert specs_of(ring.last_dropped) == model.publish(specs)
        assert specs_of(ring.drain(round_ % 4)) == model.drain(round_ % 4)
    assert specs_of(ring.drain()) == model.drain(4)
    assert ring.cursors[rk.STREAMS_USED] * 4 <= ring.stream_keys.shape[0] * 3
    assert_conserved(ring.stats())


stream_specs = st.tuples(
    st.sampled_from(MD_TYPES), st.integers(0, 2), st.integers(0, 12)
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.lists(stream_specs, max_size=12)),
        st.tuples(st.just("drain"), st.integers(0, 10)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([1, 2, 4, 8, 16]), operations)
def test_random_market_data_mixes_match_the_model_and_conserve_counts(capacity, ops):
    ring, model = MarketDataRing(capacity), MarketDataModel(capacity)
    seq = 0
    for op, arg in ops:
        if op == "publish":
            specs = [(*stream, seq + k) for k, stream in enumerate(arg)]
            seq += len(specs)
            assert ring.publish(events(specs)) == len(model_dropped := model.publish(specs))
            assert specs_of(ring.last_dropped) == model_dropped
        else:
            assert specs_of(ring.drain(arg)) == model.drain(arg)
        stats = ring.stats()
        assert_conserved(stats)
        assert stats.size == len(model.queue) <= capacity
        assert stats.high_water == model.high_water
    assert ring.stats().published == seq


FAN_OUT_SUBSCRIPTIONS = (
    Subscription(0, venues={1}),
    Subscription(1),
    Subscription(2, instruments={3, 4, 5}, event_types={BBO, BOOK}),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(stream_specs, max_size=40), st.lists(st.sampled_from([2, 4, 8]), min_size=3,
                                                     max_size=3))
def test_fan_out_over_a_ring_bank_applies_each_rings_policy(specs, capacities):
    """One fan-out call over a bank of rings of different sizes == each ring's own publish."""
    specs = [(t, v + 1, i + 1, seq) for seq, (t, v, i) in enumerate(specs)]
    batch = events(specs)
    bank = RingBank()
    rings = [MarketDataRing(cap, bank=bank) for cap in capacities]
    alone = [MarketDataRing(cap) for cap in capacities]
    table = RoutingTable.compile(FAN_OUT_SUBSCRIPTIONS, 3, 4, 16, 1)
    n = len(specs)
    counts, due = np.zeros(4, np.int64), np.zeros(3, np.uint8)
    dlq, dlq_column = np.zeros(3 * n, CANONICAL_EVENT), np.zeros(3 * n, np.int64)
    dk.fan_out(counts, due, dlq, dlq_column, np.zeros((n, 3), np.uint8),
               np.zeros(n, CANONICAL_EVENT), batch, np.arange(n, dtype=np.int64),
               new_memo(), *table.arrays(), *bank.arrays())
    dropped, deliveries = [], 0
    for c, ring in enumerate(alone):
        wanted = [FAN_OUT_SUBSCRIPTIONS[c].matches(*spec[1:3], spec[0]) for spec in specs]
        ring.publish(batch[np.array(wanted, bool)] if n else batch)
        dropped += specs_of(ring.last_dropped)
        deliveries += sum(wanted)
        assert due[c] == (sum(wanted) > 0)  # the wake chain's mark: this ring was fed
        assert rings[c].stats() == ring.stats()
        assert specs_of(rings[c].drain()) == specs_of(ring.drain())
    assert specs_of(dlq[:counts[0]]) == dropped  # ring by ring, oldest first
    assert counts[1] == sum(not any(s.matches(*sp[1:3], sp[0]) for s in FAN_OUT_SUBSCRIPTIONS)
                            for sp in specs)
    assert counts[2] == deliveries
    assert counts[3] == n


# -- critical ring ---------------------------------------------------------------------------


def test_critical_ring_never_coalesces_or_drops_publish_nowait_fills_what_fits():
    ring = CriticalRing(4)
    reports = events([(EXEC, 1, 7, s) for s in range(6)])
    assert ring.publish_nowait(reports) == 4
    assert ring.publish_nowait(reports, 4) == 0
    assert ring.drain(3)["seq_provider"].tolist() == [0, 1, 2]
    assert ring.publish_nowait(reports, 4) == 2
    assert ring.drain()["seq_provider"].tolist() == [3, 4, 5]
    snaps = events([(BOOK, 1, 7, s) for s in range(3)])  # not coalesced here either
    assert ring.publish(snaps) == 3
    assert ring.drain()["seq_provider"].tolist() == [0, 1, 2]
    stats = ring.stats()
    assert (stats.published, stats.delivered, stats.coalesced, stats.dropped) == (9, 9, 0, 0)
    assert stats.high_water == 4


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_exec_reports_wait_for_a_slow_consumer_and_all_arrive_in_order(strategy, no_thread_leak):
    ring = CriticalRing(4, wait=strategy())
    received = []

    def slow_consumer(cancel):
        while len(received) < 10 and not cancel.cancelled:
            if ring.wait_for_data(timeout=0.05):
                time.sleep(0.005)
                received.extend(ring.drain(random.choice([1, 2, 3]))["seq_provider"].tolist())

    with TaskGroup("critical") as tg:
        tg.start(slow_consumer)
        assert ring.publish(events([(EXEC, 1, 7, s) for s in range(10)]), timeout=10.0) == 10
    assert received == list(range(10))
    stats = ring.stats()
    assert stats.blocked >= 1
    assert (stats.published, stats.delivered, stats.size, stats.dropped) == (10, 10, 0, 0)


def test_critical_publish_times_out_only_when_a_timeout_was_given():
    ring = CriticalRing(2, wait=YieldingWait())
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="2 of 5 events written") as info:
        ring.publish(events([(EXEC, 1, 7, s) for s in range(5)]), timeout=0.05)
    assert time.monotonic() - start >= 0.05
    assert info.value.written == 2
    assert ring.size() == 2
    assert ring.stats().blocked == 1


# -- wait strategies -------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_wait_strategies_return_at_once_when_ready_and_false_after_the_timeout(strategy):
    wait = strategy()
    assert isinstance(wait, WaitStrategy)
    assert wait.wait_for(lambda: True, timeout=0)
    start = time.monotonic()
    assert not wait.wait_for(lambda: False, timeout=0.02)
    assert time.monotonic() - start >= 0.02
    wait.signal()
    assert repr(wait).startswith(strategy.__name__)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_consumer_waiting_for_data_wakes_on_publish(strategy, no_thread_leak):
    ring = MarketDataRing(8, wait=strategy())
    assert not ring.wait_for_data(timeout=0.01)

    def publish_later(cancel):
        time.sleep(0.02)
        ring.publish(events([(TRADE, 0, 0, 1)]))

    with TaskGroup("wake") as tg:
        tg.start(publish_later)
        start = time.monotonic()
        assert ring.wait_for_data(timeout=5.0)
        assert time.monotonic() - start < 2.0
    assert ring.drain()["seq_provider"].tolist() == [1]


def test_blocking_wait_signal_wakes_every_waiter(no_thread_leak):
    wait, flag, woke = BlockingWait(), threading.Event(), []

    def waiter(cancel):
        woke.append(wait.wait_for(flag.is_set, timeout=5.0))

    with TaskGroup("waiters") as tg:
        for _ in range(3):
            tg.start(waiter)
        time.sleep(0.02)
        flag.set()
        wait.signal()
    assert woke == [True, True, True]


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, 3, 12, -4, 2.0, True])
def test_capacity_must_be_a_power_of_two(capacity):
    with pytest.raises(ConfigError, match="capacity"):
        MarketDataRing(capacity)


def test_only_canonical_event_arrays_are_published():
    with pytest.raises(ConfigError, match="CANONICAL_EVENT"):
        MarketDataRing(4).publish(np.zeros(3, np.int64))
    with pytest.raises(ConfigError, match="CANONICAL_EVENT"):
        CriticalRing(4).publish_nowait(np.zeros((2, 2), CANONICAL_EVENT))
    with pytest.raises(ConfigError, match="CANONICAL_EVENT"):
        CriticalRing(4).publish([1, 2])
    with pytest.raises(ConfigError, match="batch_size"):
        CriticalRing(4, batch_size=0)
    assert "size=0" in repr(CriticalRing(4))


# -- threads ---------------------------------------------------------------------------------


def _market_batch(rng, next_seq, burst):
    """A random batch over 48 streams (a burst: 40 trades); seq_provider counts per stream."""
    specs = []
    for _ in range(40 if burst else rng.integers(0, 24)):
        event_type = TRADE if burst else int(rng.choice(MD_TYPES))
        stream = (event_type, int(rng.integers(0, 2)), int(rng.integers(0, 4)))
        specs.append((*stream, next_seq[stream]))
        next_seq[stream] += 1
    return events(specs)


def _run_stress(strategy, seconds):
    """One producer into both rings, one consumer out of both; returns what each side saw."""
    md, crit = MarketDataRing(16, wait=strategy()), CriticalRing(16, wait=strategy())
    seen = {"md": [], "crit": [], "dlq": [], "next_seq": defaultdict(int), "n_crit": 0}
    done = threading.Event()

    def producer(cancel):
        rng = np.random.default_rng(1)
        deadline = time.monotonic() + seconds
        batches = 0
        while time.monotonic() < deadline and not cancel.cancelled:
            md.publish(_market_batch(rng, seen["next_seq"], burst=batches % 50 == 0))
            batches += 1
            seen["dlq"] += specs_of(md.last_dropped)
            n = int(rng.integers(0, 9))
            first = seen["n_crit"]
            crit.publish(events([(EXEC, 1, 1, first + k) for k in range(n)]), timeout=10.0)
            seen["n_crit"] += n
        done.set()

    def consumer(cancel):
        rng = np.random.default_rng(2)
        while not cancel.cancelled:
            finished = done.is_set()
            crit.wait_for_data(timeout=0.002)
            seen["crit"] += crit.drain(int(rng.integers(1, 20)))["seq_provider"].tolist()
            seen["md"] += specs_of(md.drain(int(rng.integers(1, 17))))
            if finished and md.size() == 0 and crit.size() == 0:
                return

    with TaskGroup("stress") as tg:
        tg.start(producer)
        tg.start(consumer)
    assert tg.alive() == []
    return md, crit, seen


def _check_market_data(md, seen):
    by_stream = defaultdict(list)
    for spec in seen["md"]:
        by_stream[spec[:3]].append(spec[3])
    for stream, seqs in by_stream.items():
        assert seqs == sorted(set(seqs)), stream  # never backwards, never twice
    dropped = defaultdict(set)
    for spec in seen["dlq"]:
        dropped[spec[:3]].add(spec[3])
    for stream, count in seen["next_seq"].items():
        delivered = set(by_stream[stream])
        assert not delivered & dropped[stream]
        assert count - 1 in delivered | dropped[stream]  # the newest is never coalesced away
        if stream[0] == TRADE:
            assert delivered | dropped[stream] == set(range(count))  # trades: all accounted
    stats = md.stats()
    assert stats.size == 0
    assert stats.published == sum(seen["next_seq"].values())
    assert stats.delivered == len(seen["md"])
    assert stats.dropped == len(seen["dlq"])
    assert_conserved(stats)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_threaded_stress_keeps_critical_order_market_data_monotone_and_counts(
    strategy, no_thread_leak
):
    md, crit, seen = _run_stress(strategy, seconds=0.7)
    assert seen["n_crit"] > 0
    assert seen["crit"] == list(range(seen["n_crit"]))  # exactly once, in order
    stats = crit.stats()
    assert (stats.published, stats.delivered, stats.dropped, stats.coalesced) == (
        seen["n_crit"], seen["n_crit"], 0, 0)
    assert_conserved(stats)
    _check_market_data(md, seen)
    assert md.stats().dropped >= 24  # the first burst alone drops 40 - 16
