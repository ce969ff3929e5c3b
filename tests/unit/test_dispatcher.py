"""Dispatcher, through the real Engine: per-stream ordering, stamping, routing, fan-out.

The engine is not started here: ``engine.publish`` runs the dispatcher on the test thread and
``consumer.poll()`` delivers, so every step is deterministic; time is a ManualClock and the
flush tick is driven by hand with ``engine.dispatcher.flush(now)``.
"""

import numpy as np
import pytest
from engine_util import BOOK, EXEC, LATENESS_NS, T0, TRADE, Collector, cat, make, wait_until

from meltica_nb.clock import ManualClock
from meltica_nb.dispatcher import DispatcherConfig, DispatcherStats
from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError, PoolExhausted, UseAfterRelease
from meltica_nb.schema import SCHEMA_VERSION, Kind


def engine_with_tape(config=None, **consumer_kw):
    clock = ManualClock(T0)
    engine = Engine(config, clock=clock)
    tape = Collector()
    consumer = engine.add_consumer("tape", tape, **consumer_kw)
    return engine, clock, consumer, tape


def in_use(engine):
    return engine.pools["CanonicalEvent"].in_use


def stream(engine, instrument="BTC-USDT", event_type=TRADE):
    (entry,) = [s for s in engine.stats()["streams"].values()
                if s["event_type"] == event_type
                and s["instrument"] == engine.registry.instrument_id(instrument)]
    return entry


def test_2_then_1_is_released_as_1_2():
    engine, _, consumer, tape = engine_with_tape()
    engine.publish(make(engine, TRADE, [2]))
    assert consumer.pending() == 0
    assert engine.dispatcher.order.held() == 1
    assert in_use(engine) == 1  # the held event keeps its slot
    engine.publish(make(engine, TRADE, [1]))
    assert consumer.pending() == 2
    consumer.poll()
    assert tape.seqs() == [1, 2]
    assert in_use(engine) == 0
    assert engine.stop().clean


def test_in_order_events_leave_in_the_same_publish_call_without_waiting():
    # The Go original held every event for the full tolerance; here the clock never moves and
    # no flush runs, yet each in-order event is ready as soon as publish returns.
    engine, _, consumer, tape = engine_with_tape()
    for k, seq in enumerate([1, 2, 3, 4], start=1):
        engine.publish(make(engine, TRADE, [seq]))
        assert consumer.pending() == k
    engine.publish(make(engine, TRADE, [5, 6, 7]))
    engine.publish(make(engine, BOOK, [1000], seq_first=0))  # monotonic: any start is fine
    assert engine.dispatcher.order.held() == 0
    assert engine.dispatcher.next_deadline_ns() is None
    consumer.poll()
    assert tape.seqs(TRADE) == [1, 2, 3, 4, 5, 6, 7]
    assert tape.seqs(BOOK) == [1000]


def test_a_gap_is_released_after_the_tolerance_and_the_late_event_dropped():
    engine, clock, consumer, tape = engine_with_tape()
    engine.publish(make(engine, TRADE, [1, 3]))
    consumer.poll()
    assert tape.seqs() == [1]
    assert engine.dispatcher.next_deadline_ns() == T0 + LATENESS_NS
    assert engine.dispatcher.flush(T0 + LATENESS_NS - 1) == 0  # still waiting for 2
    consumer.poll()
    assert tape.seqs() == [1]
    assert engine.dispatcher.flush(T0 + LATENESS_NS) == 1
    consumer.poll()
    assert tape.seqs() == [1, 3]
    clock.set(T0 + LATENESS_NS + 1)
    engine.publish(make(engine, TRADE, [2]))  # too late: 3 already went out
    assert consumer.pending() == 0
    assert in_use(engine) == 0  # the late event's slot was released
    s = stream(engine)
    assert (s["released"], s["expired"], s["gaps_skipped"], s["duplicates"]) == (2, 1, 1, 1)
    assert s["last_emitted"] == 3


def test_a_later_publish_releases_overdue_events_before_its_own():
    engine, clock, consumer, tape = engine_with_tape()
    engine.publish(make(engine, TRADE, [1, 3]))
    clock.advance(LATENESS_NS)
    engine.publish(make(engine, TRADE, [4]))  # no flush tick ran: the push expires 3 first
    consumer.poll()
    assert tape.seqs() == [1, 3, 4]


def test_duplicates_are_dropped_and_counted():
    engine, _, consumer, tape = engine_with_tape()
    engine.publish(make(engine, TRADE, [1, 2, 2, 1]))
    engine.publish(make(engine, TRADE, [3, 2]))
    consumer.poll()
    assert tape.seqs() == [1, 2, 3]
    assert stream(engine)["duplicates"] == 3
    assert engine.dispatcher.stats().ordering.duplicates == 3
    assert in_use(engine) == 0


def test_ingest_time_fallback_when_there_is_no_sequence():
    engine, clock, consumer, tape = engine_with_tape()
    # seq_provider = 0 and no ingest time: the engine stamps strictly increasing ingest
    # times, so a batch stamped at one clock reading is not mistaken for duplicates
    engine.publish(make(engine, TRADE, [0, 0, 0, 0], seq_first=0, price=[5, 6, 7, 8]))
    consumer.poll()
    ev = tape.events
    assert ev["price"].tolist() == [5, 6, 7, 8]
    assert ev["ingest_ns"].tolist() == [T0, T0 + 1, T0 + 2, T0 + 3]
    # producer-set ingest times order the stream; one older than the last released is late
    clock.advance(10_000)
    engine.publish(make(engine, TRADE, [0, 0, 0], seq_first=0, price=[9, 10, 11],
                        ingest_ns=[T0 + 500, T0 + 400, T0 + 600]))
    consumer.poll()
    assert tape.events["price"].tolist() == [5, 6, 7, 8, 9, 11]
    assert stream(engine)["duplicates"] == 1
    assert in_use(engine) == 0


def test_streams_are_ordered_independently():
    engine, _, consumer, tape = engine_with_tape()
    btc = make(engine, TRADE, [2], instrument="BTC-USDT")
    eth = make(engine, TRADE, [1, 2], instrument="ETH-USDT")
    engine.publish(cat(btc, eth))  # the BTC gap does not hold ETH back
    consumer.poll()
    ev = tape.events
    assert ev["instrument"].tolist() == [engine.registry.instrument_id("ETH-USDT")] * 2
    engine.publish(make(engine, TRADE, [1], instrument="BTC-USDT"))
    consumer.poll()
    assert tape.seqs() == [1, 2, 1, 2]


def test_stamping_sets_header_fields_and_keeps_producer_ids():
    engine, clock, consumer, tape = engine_with_tape()
    version = engine.router.version
    batch = make(engine, TRADE, [1, 2, 3], trace_ids=[0, 777, 0], ingest_ns=[0, 0, 42])
    engine.publish(batch)
    engine.publish(make(engine, EXEC, [9]))
    consumer.poll()
    ev = tape.events
    assert ev["schema_version"].tolist() == [SCHEMA_VERSION] * 4
    assert ev["routing_version"].tolist() == [version] * 4
    assert ev["kind"].tolist() == [Kind.EXEC_REPORT] + [Kind.MARKET_DATA] * 3  # critical first
    trades = ev[ev["event_type"] == TRADE]
    assert trades["trace_id"][1] == 777
    assert len(set(ev["trace_id"].tolist())) == 4 and 0 not in ev["trace_id"]
    assert trades["ingest_ns"].tolist() == [T0, T0 + 1, 42]
    assert batch["kind"].tolist() == [0, 0, 0]  # the caller's array is not modified


def test_unrouted_events_are_counted_and_released():
    engine, _, consumer, tape = engine_with_tape(instruments=["BTC-USDT"])
    engine.publish(make(engine, TRADE, [1, 2], instrument="ETH-USDT"))
    engine.publish(make(engine, TRADE, [1], instrument="BTC-USDT"))
    stats = engine.dispatcher.stats()
    assert isinstance(stats, DispatcherStats)
    assert (stats.published, stats.unrouted, stats.fanned_out) == (3, 2, 1)
    assert in_use(engine) == 0
    consumer.poll()
    assert tape.seqs() == [1]


def test_fan_out_copies_each_event_into_every_subscribed_ring():
    engine, _, consumer, tape = engine_with_tape()
    other = Collector()
    second = engine.add_consumer("books", other, events=["book_snapshot"])
    engine.publish(cat(make(engine, TRADE, [1]), make(engine, BOOK, [1])))
    assert engine.dispatcher.stats().fanned_out == 3
    consumer.poll()
    second.poll()
    assert tape.events["event_type"].tolist() == [TRADE, BOOK]
    assert other.events["event_type"].tolist() == [BOOK]
    assert in_use(engine) == 0


def test_publish_is_chunked_by_batch_max_and_by_a_small_pool():
    config = {"pools": {"CanonicalEvent": 8}, "dispatcher": {"batch_max": 3}}
    engine, _, consumer, tape = engine_with_tape(config)
    assert engine.publish(make(engine, TRADE, np.arange(1, 21))) == 20
    consumer.poll()
    assert tape.seqs() == list(range(1, 21))
    assert engine.publish(make(engine, TRADE, [])) == 0
    engine2, _, consumer2, tape2 = engine_with_tape({"pools": {"CanonicalEvent": 8}})
    engine2.publish(make(engine2, TRADE, np.arange(1, 21)))  # larger than the whole pool
    consumer2.poll()
    assert tape2.seqs() == list(range(1, 21))


def test_a_full_stream_table_refuses_the_batch_and_releases_every_slot():
    engine, _, consumer, _ = engine_with_tape({"dispatcher": {"max_streams": 1}})
    engine.publish(make(engine, TRADE, [1]))
    batch = cat(make(engine, TRADE, [2]), make(engine, TRADE, [1], instrument="ETH-USDT"))
    with pytest.raises(ConfigError, match="stream table full"):
        engine.publish(batch)
    assert in_use(engine) == 0
    assert consumer.pending() == 1


def test_flush_all_releases_every_held_event_in_order():
    engine, _, consumer, tape = engine_with_tape()
    engine.publish(make(engine, TRADE, [1, 5, 3]))
    engine.publish(make(engine, BOOK, [7]))
    assert engine.dispatcher.order.held() == 3
    assert engine.dispatcher.flush_all() == 3
    assert engine.dispatcher.flush_all() == 0
    consumer.poll()
    assert tape.seqs(TRADE) == [1, 3, 5]
    assert tape.seqs(BOOK) == [7]
    assert in_use(engine) == 0


def test_flush_tick_releases_expired_events_on_a_running_engine(no_thread_leak):
    clock = ManualClock(T0)
    engine = Engine({"dispatcher": {"flush_ms": 5}}, clock=clock)
    tape = Collector()
    engine.add_consumer("tape", tape)
    with engine:
        engine.publish(make(engine, TRADE, [1, 3]))
        wait_until(lambda: tape.seqs() == [1], what="the in-order event")
        clock.advance(LATENESS_NS)
        wait_until(lambda: tape.seqs() == [1, 3], what="the flush tick")


@pytest.mark.parametrize("raw, message", [
    ({"lateness_ms": -1}, "lateness_ms"),
    ({"flush_ms": 0}, "flush_ms"),
    ({"acquire_timeout_s": "soon"}, "acquire_timeout_s"),
    ({"max_buffer": 0}, "max_buffer"),
    ({"batch_max": 2.5}, "batch_max"),
    ({"max_streams": True}, "max_streams"),
])
def test_dispatcher_config_is_validated(raw, message):
    with pytest.raises(ConfigError, match=message):
        DispatcherConfig(**raw)
    with pytest.raises(ConfigError, match=message):
        Engine({"dispatcher": raw})


def test_a_flush_larger_than_a_batch_is_delivered_in_one_ready_batch():
    engine, _, consumer, tape = engine_with_tape(
        {"dispatcher": {"batch_max": 4, "max_buffer": 400}})
    engine.publish(make(engine, TRADE, np.arange(2, 302)))  # 300 held, waiting for seq 1
    assert engine.dispatcher.order.held() == 300
    assert engine.dispatcher.flush(T0 + LATENESS_NS) == 300
    while consumer.poll():
        pass
    assert tape.seqs() == list(range(2, 302))


def test_held_events_exhaust_the_pool_then_publish_raises_pool_exhausted_and_keeps_going():
    config = {"pools": {"CanonicalEvent": 4},
              "dispatcher": {"acquire_timeout_s": 0.01}}
    engine, clock, consumer, tape = engine_with_tape(config)
    engine.publish(make(engine, TRADE, [5, 6, 7, 8]))  # a gap before 5: all four are held
    assert in_use(engine) == 4
    with pytest.raises(PoolExhausted, match="CanonicalEvent"):
        engine.publish(make(engine, TRADE, [9]))
    assert engine.pools["CanonicalEvent"].stats().timeouts == 1
    clock.advance(LATENESS_NS)
    engine.dispatcher.flush()  # the gap expires, the held events go out and free the pool
    engine.publish(make(engine, TRADE, [9]))
    consumer.poll()
    assert tape.seqs() == [5, 6, 7, 8, 9]
    assert in_use(engine) == 0


def test_a_debug_pool_refuses_to_dispatch_into_a_slot_written_after_release():
    engine, _, consumer, tape = engine_with_tape({"debug": True})
    pool = engine.pools["CanonicalEvent"]
    engine.publish(make(engine, TRADE, [1]))
    slot = int(pool.free_list.stack[pool.free_list.top[0] - 1])  # the next slot handed out
    pool.records[slot]["price"] = 42  # a write after release
    with pytest.raises(UseAfterRelease, match=f"slot {slot}"):
        engine.publish(make(engine, TRADE, [2]))
    assert pool.stats().poison_violations == 1
    engine.publish(make(engine, TRADE, [2]))  # re-poisoned: the engine goes on
    consumer.poll()
    assert tape.seqs() == [1, 2]
    assert in_use(engine) == 0
