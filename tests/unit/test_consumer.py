"""Consumers, through the real Engine: backpressure per ring, version filter, handler modes.

A consumer is stalled either by not starting the engine (``consumer.poll()`` delivers by hand)
or by blocking its handler on a ``threading.Event`` while the engine runs.
"""

import logging
import threading

import numba
import numpy as np
import pytest
from engine_util import (
    ACK,
    BOOK,
    EXEC,
    T0,
    TRADE,
    Collector,
    cat,
    conservation,
    make,
    wait_until,
)
from numba.core import config as numba_config

import meltica_nb.consumer as consumer_mod
from meltica_nb.clock import ManualClock
from meltica_nb.concurrency import TaskGroup
from meltica_nb.consumer import ConsumerStats
from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError
from meltica_nb.handlers import BatchHandler, NjitHandler, PythonHandler, make_handler


def new_engine(config=None):
    return Engine(config, clock=ManualClock(T0))


class Stalled:
    """A batch handler that blocks on its first batch until released."""

    def __init__(self):
        self.tape = Collector()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, events):
        self.tape(events)
        self.entered.set()
        assert self.gate.wait(5), "test never released the stalled consumer"


# -- critical ring: lossless, in order ---------------------------------------------------------


def test_exec_reports_through_a_full_critical_ring_all_arrive_in_order(no_thread_leak):
    engine = new_engine()
    stalled = Stalled()
    consumer = engine.add_consumer("strat", stalled, events=["exec_report"],
                                   critical_capacity=4)
    with engine:
        engine.publish(make(engine, EXEC, [1]))
        assert stalled.entered.wait(5)  # the consumer is now stuck in its handler
        with TaskGroup("producer") as group:
            group.start(lambda _: engine.publish(make(engine, EXEC, range(2, 12))))
            wait_until(lambda: consumer.critical.stats().blocked >= 1
                       and consumer.critical.size() == 4, what="a full critical ring")
            assert len(stalled.tape) == 1
            stalled.gate.set()  # resume: the blocked producer gets its room back
        wait_until(lambda: len(stalled.tape) == 11, what="every exec report")
    assert stalled.tape.events["exchange_order_id"].tolist() == list(range(1, 12))
    stats = consumer.stats()
    assert (stats.routed, stats.delivered, stats.spilled, stats.pending) == (11, 11, 0, 0)
    assert stats.critical_high_water == 4


def test_a_critical_producer_that_waited_too_long_spills_without_losing_or_reordering(
        no_thread_leak, monkeypatch):
    monkeypatch.setattr(consumer_mod, "CRITICAL_WAIT_S", 0.02)
    engine = new_engine()
    stalled = Stalled()
    consumer = engine.add_consumer("strat", stalled, critical_capacity=4)
    with engine:
        engine.publish(make(engine, EXEC, [1]))
        assert stalled.entered.wait(5)
        engine.publish(make(engine, EXEC, range(2, 12)))  # 4 fit, 6 spill after the wait
        engine.publish(make(engine, EXEC, [12]))  # behind the spill, never ahead of it
        assert consumer.stats().spilled == 7
        assert consumer.pending() == 11
        stalled.gate.set()
        wait_until(lambda: len(stalled.tape) == 12, what="every exec report")
    assert stalled.tape.events["exchange_order_id"].tolist() == list(range(1, 13))
    assert consumer.stats().pending == 0


def test_without_a_consumer_thread_critical_events_spill_at_once_and_poll_delivers_them():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("strat", tape, critical_capacity=4)
    engine.publish(make(engine, EXEC, range(1, 11)))
    engine.publish(make(engine, EXEC, [11]))
    assert consumer.critical.size() == 4 and consumer.stats().spilled == 7
    while consumer.poll():
        pass
    assert tape.events["exchange_order_id"].tolist() == list(range(1, 12))
    assert not consumer.has_pending()


# -- market-data ring: latest-wins and drop-oldest -----------------------------------------------


def test_a_burst_of_book_snapshots_under_a_stalled_consumer_delivers_only_the_newest():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("books", tape, events=["book_snapshot"])
    engine.publish(make(engine, BOOK, range(1, 11)))
    engine.publish(cat(make(engine, BOOK, [5, 6], instrument="ETH-USDT", seq_first=0),
                       make(engine, BOOK, [11])))
    consumer.poll()
    assert tape.seqs() == [11, 6]  # one per stream, the newest, in ring order
    stats = consumer.stats()
    assert (stats.routed, stats.delivered, stats.coalesced) == (13, 2, 11)
    assert conservation(stats)


def test_book_snapshots_coalesce_while_a_running_consumer_is_stuck(no_thread_leak):
    engine = new_engine()
    stalled = Stalled()
    engine.add_consumer("books", stalled, events=["book_snapshot"])
    with engine:
        engine.publish(make(engine, BOOK, [1]))
        assert stalled.entered.wait(5)
        for seq in range(2, 12):
            engine.publish(make(engine, BOOK, [seq]))
        stalled.gate.set()
        wait_until(lambda: stalled.tape.seqs() == [1, 11], what="the newest snapshot")


def test_trades_dropped_under_overload_go_to_the_dlq_and_the_counters_add_up():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("tape", tape, events=["trade"], ring_capacity=8)
    engine.publish(make(engine, TRADE, range(1, 21)))
    consumer.poll()
    assert tape.seqs() == list(range(13, 21))
    stats = consumer.stats()
    assert (stats.routed, stats.delivered, stats.dropped, stats.coalesced) == (20, 8, 12, 0)
    assert conservation(stats) and stats.pending == 0
    dlq_stats = engine.dlq.stats()
    assert dlq_stats.by_reason[DeadLetterReason.OVERFLOW_DROPPED] == 12
    dead = engine.dlq.drain()
    assert dead.records["seq_provider"].tolist() == list(range(1, 13))
    assert set(dead.reasons.tolist()) == {DeadLetterReason.OVERFLOW_DROPPED}
    assert set(dead.consumers.tolist()) == {consumer.index}
    assert engine.pools["CanonicalEvent"].in_use == 0


# -- routing version filter ----------------------------------------------------------------------


def test_stale_market_data_is_filtered_after_a_routing_flip_but_critical_events_pass():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("strat", tape, instruments=["BTC-USDT"])
    before = engine.router.version
    engine.publish(make(engine, TRADE, [1, 2]))
    engine.publish(make(engine, EXEC, [1]))
    ack = engine.control.subscribe("strat", instruments=["ETH-USDT"], events=["trade"])
    assert ack.success and ack.routing_version == before + 1
    consumer.min_version = ack.routing_version
    engine.publish(make(engine, TRADE, [3]))
    engine.publish(make(engine, TRADE, [1], instrument="ETH-USDT"))
    consumer.poll()
    ev = tape.events
    assert ev["event_type"].tolist() == [EXEC, ACK, TRADE, TRADE]  # critical ring first
    assert ev["routing_version"].tolist() == [before, before + 1, before + 1, before + 1]
    trades = ev[ev["event_type"] == TRADE]
    assert trades["seq_provider"].tolist() == [3, 1]  # BTC 1 and 2 were stale: filtered
    stats = consumer.stats()
    assert stats.filtered == 2
    assert conservation(stats)
    # unsubscribing flips again; the consumer no longer gets ETH trades
    ack = engine.control.unsubscribe("strat", instruments=["ETH-USDT"], events=["trade"])
    assert ack.success and ack.routing_version == before + 2
    engine.publish(make(engine, TRADE, [2], instrument="ETH-USDT"))
    consumer.poll()
    assert len(tape) == 5  # only the second ack arrived


# -- raising handlers ----------------------------------------------------------------------------


@numba.njit
def sum_prices_unless_7(rec, state):
    if rec.price == 7:
        raise ValueError("price 7")
    state[0] += rec.price
    state[1] += 1


def raising_handler(mode, seen):
    if mode == "batch":
        def handler(events):
            if (events["price"] == 7).any():
                raise ValueError("price 7")
            seen.extend(events["price"].tolist())
        return handler, None
    if mode == "python":
        def handler(rec):
            if rec["price"] == 7:
                raise ValueError("price 7")
            seen.append(int(rec["price"]))
        return handler, None
    return sum_prices_unless_7, np.zeros(2, np.int64)


@pytest.mark.parametrize("mode", ["batch", "python", "njit"])
def test_a_raising_handler_is_counted_logged_and_the_consumer_keeps_going(
        mode, caplog, no_thread_leak):
    engine = new_engine()
    seen: list[int] = []
    handler, state = raising_handler(mode, seen)
    consumer = engine.add_consumer("fragile", handler, mode=mode, state=state)
    traces = [0xA000 + i for i in range(4)]
    with caplog.at_level(logging.ERROR, logger="meltica_nb.consumer"), engine:
        engine.publish(make(engine, TRADE, [1, 2, 3, 4], price=[1, 2, 7, 3], trace_ids=traces))
        wait_until(lambda: consumer.stats().delivered == 4, what="the first batch")
        engine.publish(make(engine, TRADE, [5, 6], price=[4, 5]))
        wait_until(lambda: consumer.stats().delivered == 6, what="the next batch")
    report = engine.stop()
    assert report.clean and engine.pools["CanonicalEvent"].in_use == 0
    stats = consumer.stats()
    first_bad = traces[0] if mode == "batch" else traces[2]
    assert stats.errors == (4 if mode == "batch" else 1)
    assert stats.mode == mode
    messages = [r.getMessage() for r in caplog.records if r.name == "meltica_nb.consumer"]
    assert any("fragile" in m and f"{first_bad:#x}" in m for m in messages), messages
    dead = engine.dlq.drain()
    assert dead.reasons.tolist() == [DeadLetterReason.HANDLER_ERROR]
    assert dead.records["trace_id"].tolist() == [first_bad]
    if mode == "njit":
        assert state.tolist() == [1 + 2 + 3 + 4 + 5, 5]  # per event, into the state array
    elif mode == "python":
        assert seen == [1, 2, 3, 4, 5]
    else:
        assert seen == [4, 5]


def test_njit_mode_calls_the_compiled_handler_per_event_with_its_state():
    engine = new_engine()
    state = np.zeros(2, np.int64)
    consumer = engine.add_consumer("nj", sum_prices_unless_7, mode="njit", state=state)
    assert isinstance(consumer.handler, NjitHandler) and consumer.handler.state is state
    engine.publish(make(engine, TRADE, [1, 2, 3], price=[10, 20, 30]))
    consumer.poll()
    assert state.tolist() == [60, 3]
    assert consumer.stats().batches == 1


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="without JIT every function is accepted")
def test_njit_mode_refuses_a_plain_python_function():
    with pytest.raises(ConfigError, match="not a numba.njit function"):
        new_engine().add_consumer("nj", lambda rec, state: None, mode="njit")


def test_make_handler_modes():
    assert isinstance(make_handler("batch", print), BatchHandler)
    assert isinstance(make_handler("python", print), PythonHandler)
    assert make_handler("njit", sum_prices_unless_7).state.tolist() == [0]
    with pytest.raises(ConfigError, match="unknown consumer mode 'vector'"):
        make_handler("vector", print)


def test_views_are_read_only_so_writing_one_is_a_counted_handler_error():
    engine = new_engine()

    def scribble_batch(events):
        events["price"][0] = 0

    def scribble_record(rec):
        rec["price"] = 0

    a = engine.add_consumer("a", scribble_batch)
    b = engine.add_consumer("b", scribble_record, mode="python")
    engine.publish(make(engine, TRADE, [1, 2]))
    a.poll()
    b.poll()
    assert (a.stats().errors, b.stats().errors) == (2, 2)


# -- running consumers -----------------------------------------------------------------------


@pytest.mark.parametrize("wait", ["blocking", "yielding", "busy-spin"])
def test_every_wait_strategy_delivers(wait, no_thread_leak):
    engine = new_engine()
    tape = Collector()
    engine.add_consumer("tape", tape, wait=wait, batch_size=2)
    with engine:
        engine.publish(make(engine, TRADE, range(1, 6)))
        wait_until(lambda: len(tape) == 5, what="delivery")
    assert tape.seqs() == [1, 2, 3, 4, 5]
    assert max(len(b) for b in tape.batches) <= 2


def test_consumer_stats_report_counters_and_handler_entry_latency():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("tape", tape)
    engine.publish(make(engine, TRADE, [1, 2], ingest_ns=[T0 - 5_000, T0 - 5_000]))
    assert consumer.has_pending() and consumer.pending() == 2
    assert consumer.poll() == 2
    assert consumer.poll() == 0
    stats = consumer.stats()
    assert isinstance(stats, ConsumerStats)
    assert (stats.name, stats.routed, stats.delivered, stats.batches) == ("tape", 2, 2, 1)
    assert stats.latency_us["count"] == 2
    assert 4.0 <= stats.latency_us["p50"] <= 6.0
    assert stats.ring_high_water == 2 and stats.pending == 0


def test_a_batch_that_is_all_stale_never_reaches_the_handler():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("tape", tape)
    engine.publish(make(engine, TRADE, [1, 2]))
    consumer.min_version = engine.router.version + 1
    assert consumer.poll() == 2
    stats = consumer.stats()
    assert (stats.filtered, stats.delivered, stats.batches, len(tape)) == (2, 0, 0, 0)


def test_a_large_burst_of_critical_events_is_delivered_whole_and_in_order():
    engine = new_engine()
    tape = Collector()
    consumer = engine.add_consumer("strat", tape, critical_capacity=512)
    engine.publish(make(engine, EXEC, range(1, 301)))  # more than the select buffer's 256
    while consumer.poll():
        pass
    assert tape.events["exchange_order_id"].tolist() == list(range(1, 301))
