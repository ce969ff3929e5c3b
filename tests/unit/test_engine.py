"""Engine: configuration, life cycle, bring-your-own feed, stats, and a threaded stress run."""

import random
import threading
import time
from collections import defaultdict

import numba
import numpy as np
import pytest
from engine_util import (
    ACK,
    BBO,
    BOOK,
    EXEC,
    LATENESS_NS,
    T0,
    TRADE,
    Collector,
    cat,
    make,
    wait_until,
)
from numba.core import config as numba_config

from meltica_nb.clock import ManualClock, WallClock
from meltica_nb.concurrency import TaskGroup
from meltica_nb.consumer import ConsumerStats
from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.dispatcher import DispatcherStats
from meltica_nb.engine import Engine, EngineConfig
from meltica_nb.errors import ConfigError, PoolClosed, PoolExhausted
from meltica_nb.pool_manager import ShutdownReport
from meltica_nb.schema import CANONICAL_EVENT


def new_engine(config=None):
    return Engine(config, clock=ManualClock(T0))


# -- configuration -----------------------------------------------------------------------------


def test_from_file_reads_the_engine_table(tmp_path):
    path = tmp_path / "meltica.toml"
    path.write_text(
        "[engine]\nmax_consumers = 4\ndlq_capacity = 16\n"
        "[engine.pools]\nCanonicalEvent = 128\n"
        "[engine.dispatcher]\nlateness_ms = 20.0\nmax_buffer = 10\n"
        "[venues.binance]\nignored = true\n")
    engine = Engine.from_file(path, clock=ManualClock(T0))
    assert engine.pools["CanonicalEvent"].capacity == 128
    assert engine.dispatcher.order.lateness_ns == 20_000_000
    assert engine.dispatcher.order.max_buffer == 10
    assert engine.dlq.capacity == 16
    assert engine.config.max_consumers == 4
    bare = tmp_path / "bare.toml"
    bare.write_text("debug = true\n[pools]\nCanonicalEvent = 64\n")
    engine = Engine.from_file(str(bare))
    assert engine.config.debug and engine.pools["CanonicalEvent"].capacity == 64
    assert isinstance(engine.clock, WallClock)
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nlateness_ms = 20\n")
    with pytest.raises(ConfigError, match="unknown engine config key.*lateness_ms"):
        Engine.from_file(bad)


@pytest.mark.parametrize("config, message", [
    ({"pool": {"CanonicalEvent": 8}}, "unknown engine config key"),
    ({"dispatcher": {"latency_ms": 1}}, r"\[dispatcher\].*latency_ms"),
    ({"dispatcher": 5}, r"\[dispatcher\] must be a table"),
    ({"pools": {"Bogus": 8}}, "unknown pool name"),
    ({"pools": {"CanonicalEvent": 0}}, r"\[pools\]"),
    ({"pools": ["CanonicalEvent"]}, r"\[pools\]"),
    ({"max_consumers": 0}, "max_consumers"),
    ({"dlq_capacity": "big"}, "dlq_capacity"),
    ({"debug": "yes"}, "debug"),
    ("debug", "must be a table"),
])
def test_bad_configuration_is_a_config_error(config, message):
    with pytest.raises(ConfigError, match=message):
        Engine(config)


def test_an_engine_config_object_is_accepted_and_checked():
    engine = Engine(EngineConfig(max_consumers=2))
    assert engine.config.max_consumers == 2
    with pytest.raises(ConfigError, match="max_consumers"):
        Engine(EngineConfig(max_consumers=0))


def test_consumer_registration_errors_leave_no_trace():
    engine = new_engine({"max_consumers": 2})
    engine.add_consumer("tape", print)
    with pytest.raises(ConfigError, match="already exists"):
        engine.add_consumer("tape", print)
    with pytest.raises(ConfigError, match="unknown wait strategy"):
        engine.add_consumer("w", print, wait="sleepy")
    with pytest.raises(ConfigError, match="unknown consumer mode"):
        engine.add_consumer("m", print, mode="vector")
    with pytest.raises(ConfigError, match="not canonical"):
        engine.add_consumer("i", print, instruments=["btcusdt"])
    with pytest.raises(ConfigError, match="power of two"):
        engine.add_consumer("r", print, ring_capacity=100)
    assert list(engine.consumers) == ["tape"]
    assert len(engine.dispatcher.consumers) == 1 and list(engine.control.consumers) == ["tape"]

    @engine.consumer("second", events=["trade"])
    def second(events):
        pass

    assert engine.consumers["second"].index == 1
    with pytest.raises(ConfigError, match="max_consumers=2"):
        engine.add_consumer("third", print)


# -- life cycle ----------------------------------------------------------------------------------


def test_start_and_stop_return_a_clean_report(no_thread_leak):
    engine = new_engine()
    tape = Collector()
    engine.add_consumer("tape", tape)
    assert engine.start() is engine
    with pytest.raises(ConfigError, match="already started"):
        engine.start()
    with pytest.raises(ConfigError, match="before engine.start"):
        engine.add_consumer("late", print)
    engine.publish(make(engine, TRADE, [1, 2, 3]))
    engine.publish(make(engine, EXEC, [1]))
    wait_until(lambda: len(tape) == 4, what="delivery without waiting")
    report = engine.stop()
    assert isinstance(report, ShutdownReport)
    assert report.clean and report.count == 0 and report.unreturned == {}
    assert all(s.in_use == 0 for s in engine.pools.stats().values())
    with pytest.raises(PoolClosed):
        engine.publish(make(engine, TRADE, [4]))


def test_stop_flushes_held_events_and_drains_every_ring(no_thread_leak):
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("tape", tape)
    engine.start()
    engine.publish(make(engine, TRADE, [1, 3]))  # 3 waits for 2 (the clock never moves)
    report = engine.stop()
    assert report.clean
    assert tape.seqs() == [1, 3]
    assert consumer.stats().pending == 0


def test_stop_without_start_is_clean():
    engine = new_engine()
    consumer = engine.add_consumer("tape", Collector())
    engine.publish(make(engine, TRADE, [2]))
    assert engine.stop().clean  # the held event was flushed into the ring, its slot freed
    assert consumer.pending() == 1


def test_the_engine_is_a_context_manager(no_thread_leak):
    engine = new_engine()
    tape = Collector()
    engine.add_consumer("tape", tape)
    with engine as running:
        assert running is engine
        engine.publish(make(engine, TRADE, [1]))
        wait_until(lambda: len(tape) == 1, what="delivery")
    assert engine.pools["CanonicalEvent"].closed


def test_stop_with_a_stuck_handler_times_out_but_shuts_the_pools(no_thread_leak):
    engine = new_engine()
    gate, entered = threading.Event(), threading.Event()

    def stuck(events):
        entered.set()
        gate.wait(5)

    engine.add_consumer("stuck", stuck)
    engine.start()
    engine.publish(make(engine, TRADE, [1, 2]))
    assert entered.wait(5)
    engine.publish(make(engine, TRADE, [3]))
    try:
        with pytest.raises(TimeoutError, match="consumer:stuck"):
            engine.stop(timeout=0.2)
        assert engine.pools["CanonicalEvent"].closed
    finally:
        gate.set()
        wait_until(lambda: not engine._group.alive(), what="the consumer thread to end")


def test_stats_snapshot_contents():
    engine = new_engine()
    engine.add_consumer("tape", Collector())
    engine.publish(make(engine, TRADE, [1, 3]))
    stats = engine.stats()
    assert set(stats) == {"dispatcher", "streams", "consumers", "pools", "router", "dlq", "books",
                          "feeds", "orchestrator", "orders"}
    assert isinstance(stats["dispatcher"], DispatcherStats)
    assert stats["dispatcher"].published == 2 and stats["dispatcher"].ordering.held == 1
    (stream,) = stats["streams"].values()
    assert (stream["event_type"], stream["last_emitted"], stream["held"]) == (TRADE, 1, 1)
    assert isinstance(stats["consumers"]["tape"], ConsumerStats)
    assert stats["consumers"]["tape"].routed == 1
    assert stats["pools"]["CanonicalEvent"].in_use == 1
    assert stats["router"].version == engine.router.version == 1
    assert stats["dlq"].size == 0


# -- bring your own feed ---------------------------------------------------------------------


def test_a_custom_venue_feed_reaches_consumers_through_ordering_and_routing():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("mine", tape, venues=["myfeed"])
    engine.publish(cat(make(engine, TRADE, [2], venue="myfeed"),
                       make(engine, TRADE, [1], venue="elsewhere")))
    assert consumer.pending() == 0  # 2 waits for 1; the other venue is not routed here
    engine.publish(make(engine, TRADE, [1], venue="myfeed"))
    consumer.poll()
    assert tape.seqs() == [1, 2]
    assert set(tape.events["venue"].tolist()) == {engine.registry.venue_id("myfeed")}


def test_unknown_event_types_go_to_the_dlq_and_are_counted():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("all", tape)
    batch = make(engine, TRADE, [1, 2, 3])
    batch["event_type"][1] = 0
    batch["event_type"][2] = 200
    engine.publish(batch)
    consumer.poll()
    assert tape.seqs() == [1]
    assert engine.dispatcher.stats().invalid == 2
    assert engine.dlq.stats().by_reason[DeadLetterReason.UNKNOWN_MESSAGE] == 2
    dead = engine.dlq.drain()
    assert dead.records["event_type"].tolist() == [0, 200]
    assert engine.pools["CanonicalEvent"].in_use == 0


@pytest.mark.parametrize("records", [
    [1, 2, 3],
    np.zeros(3, np.int64),
    np.zeros(3, [("price", "<i8")]),
    np.zeros(1, CANONICAL_EVENT)[0],
])
def test_publish_refuses_anything_but_canonical_event_records(records):
    with pytest.raises(ConfigError, match="CANONICAL_EVENT"):
        new_engine().publish(records)


def test_a_tiny_pool_that_nothing_drains_pushes_back_with_pool_exhausted():
    engine = new_engine({"pools": {"CanonicalEvent": 8},
                         "dispatcher": {"acquire_timeout_s": 0.01}})
    tape = Collector()
    consumer = engine.add_consumer("tape", tape)
    engine.publish(make(engine, TRADE, range(2, 10)))  # all 8 wait for seq 1, holding slots
    pool = engine.pools["CanonicalEvent"]
    assert pool.in_use == 8
    with pytest.raises(PoolExhausted, match="CanonicalEvent"):
        engine.publish(make(engine, TRADE, [1]))
    assert pool.stats().timeouts == 1
    assert engine.dispatcher.flush(T0 + LATENESS_NS) == 8  # the held events give way
    assert pool.in_use == 0
    engine.publish(make(engine, TRADE, [10]))
    consumer.poll()
    assert tape.seqs() == list(range(2, 11))
    assert engine.stop().clean


# -- stress --------------------------------------------------------------------------------------

INSTRUMENTS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
VENUES = ["venue0", "venue1"]
N_BATCHES = 60 if numba_config.DISABLE_JIT else 200
N_COMMANDS = 20


@numba.njit
def count_and_check_exec_order(rec, state):
    """state: [events, exec reports, out-of-order exec reports, last exec id per venue id...]"""
    state[0] += 1
    if rec.event_type == EXEC:
        state[1] += 1
        last = 3 + rec.venue
        if rec.exchange_order_id != state[last] + 1:
            state[2] += 1
        state[last] = rec.exchange_order_id


def produce(cancel, engine, p, published):
    """Publish mixed batches for one venue; trades sometimes arrive swapped within a batch."""
    rng = random.Random(p)
    venue = VENUES[p]
    next_seq = defaultdict(lambda: 1)
    for n in range(1, N_BATCHES + 1):
        parts = []
        for instrument in INSTRUMENTS:
            for event_type in (TRADE, BBO, BOOK):
                k = rng.randint(0, 3)
                first = next_seq[instrument, event_type]
                seqs = list(range(first, first + k))
                next_seq[instrument, event_type] = first + k
                if event_type == TRADE and k >= 2 and rng.random() < 0.5:
                    seqs[0], seqs[1] = seqs[1], seqs[0]
                parts.append(make(engine, event_type, seqs, venue=venue, instrument=instrument))
        parts.append(make(engine, EXEC, [n], venue=venue, instrument="BTC-USDT"))
        batch = cat(*parts)
        engine.publish(batch)
        published[p] += len(batch)
        if cancel.cancelled:
            return


def issue_commands(cancel, engine, issued):
    """Flip the routing table while the producers run: the issuing consumer gets each ack."""
    for i in range(N_COMMANDS):
        if i % 2 == 0:
            ack = engine.control.subscribe("venue0", venues=["venue1"], events=["bbo"])
        else:
            ack = engine.control.unsubscribe("venue0", venues=["venue1"], events=["bbo"])
        assert ack.success, ack
        issued.append(ack.command_id)
        cancel.wait(0.002)


class Recorder:
    """Keeps (venue, instrument, event_type, seq, exec id, command id) per event, optionally
    slowly; works as a batch or a per-event python handler."""

    def __init__(self, delay=0.0):
        self.rows = []
        self.delay = delay

    def batch(self, events):
        self.rows.extend(zip(events["venue"].tolist(), events["instrument"].tolist(),
                             events["event_type"].tolist(), events["seq_provider"].tolist(),
                             events["exchange_order_id"].tolist(),
                             events["command_id"].tolist(), strict=True))
        if self.delay:
            time.sleep(self.delay)

    def one(self, rec):
        self.rows.append((int(rec["venue"]), int(rec["instrument"]), int(rec["event_type"]),
                          int(rec["seq_provider"]), int(rec["exchange_order_id"]),
                          int(rec["command_id"])))
        if self.delay and len(self.rows) % 16 == 0:
            time.sleep(self.delay)


def stress_consumers(engine):
    """Ten consumers in mixed modes, subscriptions, ring sizes and speeds."""
    recorders, states = {}, {}

    def add(name, mode="batch", delay=0.0, state=False, **kw):
        if mode == "njit":
            states[name] = np.zeros(3 + 1 + len(VENUES), np.int64)
            engine.add_consumer(name, count_and_check_exec_order, mode="njit",
                                state=states[name], **kw)
            return
        rec = recorders[name] = Recorder(delay)
        engine.add_consumer(name, rec.batch if mode == "batch" else rec.one, mode=mode, **kw)

    add("all-batch")
    add("all-python", mode="python")
    add("all-njit", mode="njit")
    add("slow-batch", delay=0.001, ring_capacity=64, critical_capacity=8)
    add("slow-trades", mode="python", delay=0.0005, events=["trade"], ring_capacity=32)
    add("btc-trades", events=["trade"], instruments=["BTC-USDT"])
    add("books", events=["book_snapshot", "bbo"], ring_capacity=16, batch_size=8)
    add("exec-only", delay=0.002, events=["exec_report"], critical_capacity=4)
    add("venue0", venues=["venue0"], wait="yielding")
    add("slow-njit", mode="njit", events=["trade", "exec_report"], ring_capacity=32,
        batch_size=4)
    return recorders, states


def check_recorder(name, rows, issued):
    """Market data in order per stream; exec reports and acks exactly once, in order."""
    last = {}
    execs = defaultdict(list)
    acks = []
    for venue, instrument, event_type, seq, exec_id, command_id in rows:
        if event_type == EXEC:
            execs[venue].append(exec_id)
        elif event_type == ACK:
            acks.append(command_id)
        else:
            key = (venue, instrument, event_type)
            assert seq > last.get(key, 0), (name, key, seq, last.get(key))
            last[key] = seq
    expected_venues = {1} if name == "venue0" else ({1, 2} if name not in (
        "slow-trades", "btc-trades", "books") else set())
    assert set(execs) == expected_venues, name
    for ids in execs.values():
        assert ids == list(range(1, N_BATCHES + 1)), name
    assert acks == (issued if name == "venue0" else []), name


def test_stress_producers_consumers_and_routing_flips(no_thread_leak):
    engine = Engine({"dispatcher": {"lateness_ms": 20.0, "flush_ms": 5.0}})
    for venue in VENUES:
        engine.registry.venue_id(venue)
    engine.registry.instrument_ids(INSTRUMENTS)
    recorders, states = stress_consumers(engine)
    published = [0, 0]
    issued: list[int] = []
    started = time.monotonic()
    with engine, TaskGroup("stress") as group:
        for p in range(len(VENUES)):
            group.start(produce, engine, p, published, name=f"producer{p}")
        group.start(issue_commands, engine, issued, name="control")
    report = engine.stop()
    assert time.monotonic() - started < 20
    assert report.clean, report.unreturned
    total = sum(published)
    for name, consumer in engine.consumers.items():
        stats = consumer.stats()
        assert stats.pending == 0, name
        assert stats.routed == stats.delivered + stats.coalesced + stats.dropped \
            + stats.filtered, (name, stats)
        assert stats.errors == 0 and stats.filtered == 0, name
    for name in ("all-batch", "all-python", "all-njit"):
        assert engine.consumers[name].stats().routed == total, name
        assert engine.consumers[name].stats().dropped == 0, name
    for name, recorder in recorders.items():
        check_recorder(name, recorder.rows, issued)
    for name, state in states.items():
        assert state[1] == len(VENUES) * N_BATCHES and state[2] == 0, (name, state)
    assert states["all-njit"][0] == engine.consumers["all-njit"].stats().delivered
    assert engine.stats()["dispatcher"].ordering.duplicates == 0
