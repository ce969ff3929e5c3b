"""Trading against the simulator over real HTTP and websockets (127.0.0.1 only).

Each test starts a seeded simulator (its market paused while orders are placed, so the book an
order crosses is the book the test read) and an Engine with a BinanceTrader: signed REST for
orders, the user data stream for execution reports. What the venue received is read from the
simulator's own counters, never from the engine's.
"""

from __future__ import annotations

import threading

import numpy as np
from waiting import wait_until

from meltica_nb.fixedpoint import to_mantissa
from meltica_nb.order_validation import SymbolFilters
from meltica_nb.schema import CANONICAL_EVENT, CommandType, ErrorCode, EventType, Flag, OrderStatus
from meltica_nb.venues.binance.trader import TradingConfig

from .helpers import (
    ACK,
    EXEC,
    RESULT,
    AskLadder,
    Recorder,
    crossing_buy,
    resting_buy,
    trading_session,
    venue_requests,
)

ACKED, PARTIAL, FILLED = int(OrderStatus.ACK), int(OrderStatus.PARTIAL), int(OrderStatus.FILLED)
CANCELLED, REJECTED = int(OrderStatus.CANCELLED), int(OrderStatus.REJECTED)


def final(recorder: Recorder, client_order_id: str) -> bool:
    reports = recorder.reports(client_order_id)
    return bool(reports) and reports[-1][0] in (FILLED, CANCELLED, REJECTED, 5)


def test_switch_off_means_zero_orders_reach_the_venue(sim):
    tape = Recorder()
    with trading_session(sim, {"s": tape}) as (engine, trader):
        qty, price = resting_buy(sim)
        before, reports_before = venue_requests(sim), sim.stats()["trading"]["reports_sent"]
        acks = [engine.control.submit_order("s", f"off{i}", "BTC-USDT", "BUY", "LIMIT", qty,
                                            price) for i in range(5)]
        assert all(not a.success and a.error_code == ErrorCode.TRADING_DISABLED for a in acks)
        assert "suppressed" in acks[0].error and "'s'" in acks[0].error
        assert venue_requests(sim) == before
        assert sim.stats()["trading"]["reports_sent"] == reports_before == 0
        # the consumer got its five failed acks, as critical records, and no report
        assert wait_until(lambda: len(tape.of_type(ACK)) == 5)
        assert set(tape.of_type(ACK)["error_code"].tolist()) == {ErrorCode.TRADING_DISABLED}
        # switched on, the same client id (never used up by a suppressed order) goes out
        assert engine.control.set_trading_mode("s", True).success
        assert engine.control.submit_order("s", "off0", "BTC-USDT", "BUY", "LIMIT", qty,
                                           price).success
        assert venue_requests(sim) == before + 1
        assert wait_until(lambda: tape.reports("off0") == [(ACKED, 0, 100_000)])
        # and switched off again, nothing leaves
        engine.control.set_trading_mode("s", False)
        assert not engine.control.submit_order("s", "off9", "BTC-USDT", "BUY", "LIMIT", qty,
                                               price).success
        assert venue_requests(sim) == before + 1
    stats = engine.stats()["orders"]
    assert (stats.suppressed, stats.submitted) == (6, 1)


def test_duplicate_client_order_id_is_refused_and_never_resent(sim):
    one, two = Recorder(), Recorder()
    with trading_session(sim, {"one": one, "two": two}, enable=["one", "two"]) as (engine, _):
        qty, price = resting_buy(sim)
        first = engine.control.submit_order("one", "dup", "BTC-USDT", "BUY", "LIMIT", qty, price)
        assert first.success
        sent = venue_requests(sim)
        again = engine.control.submit_order("one", "dup", "BTC-USDT", "BUY", "LIMIT", qty, price)
        assert (again.success, again.error_code) == (False, ErrorCode.DUPLICATE_ORDER)
        assert "never re-sent" in again.error and venue_requests(sim) == sent
        # another consumer's "dup" is a different order
        other = engine.control.submit_order("two", "dup", "BTC-USDT", "BUY", "LIMIT", qty, price)
        assert other.success and venue_requests(sim) == sent + 1
        assert other.result.exchange_order_id != first.result.exchange_order_id
        assert other.result.venue_client_id != first.result.venue_client_id
        assert wait_until(lambda: sim.stats()["trading"]["open_orders"] == 2)
        # a duplicate of a finished order is refused too
        assert engine.control.cancel_order("one", "dup").success
        assert wait_until(lambda: final(one, "dup"))
        assert engine.control.submit_order("one", "dup", "BTC-USDT", "BUY", "LIMIT", qty,
                                           price).error_code == ErrorCode.DUPLICATE_ORDER
    assert engine.stats()["orders"].duplicates == 2


def test_invalid_orders_never_leave_the_engine(sim):
    tape = Recorder()
    with trading_session(sim, {"s": tape}, enable=["s"]) as (engine, trader):
        qty, price = resting_buy(sim)
        engine.registry.instrument_id("ETH-USDT")  # known to the engine, not traded here
        before = venue_requests(sim)
        cases = [("BTC-USDT", "BUY", "LIMIT", qty, price + "1", "not a multiple of the step"),
                 ("BTC-USDT", "BUY", "LIMIT", "0.000015", price, "not a multiple"),
                 ("BTC-USDT", "BUY", "LIMIT", "0.00001", "1.00", "below minNotional"),
                 ("BTC-USDT", "BUY", "LIMIT", "-1", price, "must be > 0"),
                 ("BTC-USDT", "BUY", "LIMIT", qty, None, "price is required"),
                 ("BTC-USDT", "UP", "LIMIT", qty, price, "side must be one of"),
                 ("DOGE-USDT", "BUY", "LIMIT", qty, price, "instrument"),
                 ("ETH-USDT", "BUY", "LIMIT", qty, price, "not traded on this venue")]
        for i, (inst, side, otype, q, p, reason) in enumerate(cases):
            ack = engine.control.submit_order("s", f"bad{i}", inst, side, otype, q, p)
            assert (ack.success, ack.error_code) == (False, ErrorCode.INVALID_ORDER), ack
            assert reason in ack.error, (reason, ack.error)
        bad_id = engine.control.submit_order("s", "d", "BTC-USDT", "BUY", "LIMIT", qty, price,
                                             decision_id=-1)
        assert bad_id.error_code == ErrorCode.BAD_PAYLOAD and "decision_id" in bad_id.error
        venue = engine.control.submit_order("s", "v", "BTC-USDT", "BUY", "LIMIT", qty, price,
                                            venue="kraken")
        assert venue.error_code == ErrorCode.UNKNOWN_VENUE
        assert venue_requests(sim) == before
    assert engine.stats()["orders"].invalid == len(cases)


def test_reports_reach_three_consumers_in_order_while_one_is_stalled_and_flooded(sim):
    stall = threading.Event()
    fast, slow, strat = Recorder(), Recorder(stall), Recorder()
    consumers = {"fast": fast, "slow": (slow, {"ring_capacity": 64}), "strat": strat}
    flood = np.zeros(2000, CANONICAL_EVENT)
    flood["event_type"] = EventType.TRADE
    with trading_session(sim, consumers, enable=["strat"]) as (engine, _):
        flood["venue"] = engine.registry.venue_id("custom")
        flood["instrument"] = engine.registry.instrument_id("BTC-USDT")
        for k in range(5):  # the stalled consumer's market-data ring overflows
            flood["seq_provider"] = flood["seq_first"] = np.arange(k * 2000, (k + 1) * 2000) + 1
            engine.publish(flood)
        qty, price = crossing_buy(sim, levels=3)
        ack = engine.control.submit_order("strat", "x1", "BTC-USDT", "BUY", "LIMIT", qty, price,
                                          decision_id=77, trace_id=555)
        assert ack.success, ack
        assert wait_until(lambda: final(fast, "x1") and final(strat, "x1"))
        flood["seq_provider"] = flood["seq_first"] = np.arange(10_000, 12_000) + 1
        engine.publish(flood)
        assert engine.stats()["consumers"]["slow"].dropped > 0  # market data was lossy...
        stall.set()
        assert wait_until(lambda: final(slow, "x1"))  # ...the reports were not
    expected = fast.reports("x1")
    statuses = [s for s, _, _ in expected]
    assert statuses == [ACKED, PARTIAL, PARTIAL, FILLED]
    fills = [f for _, f, _ in expected]
    assert fills == sorted(fills) and fills[0] == 0 and fills[-1] == expected[0][2]
    for recorder in (slow, strat):
        assert recorder.reports("x1") == expected
    for recorder in (fast, slow, strat):
        ev = recorder.of_type(EXEC)
        assert set(ev["decision_id"].tolist()) == {77} and set(ev["trace_id"].tolist()) == {555}
        assert (ev["order_qty"] - ev["filled_qty"] >= 0).all()
        assert int(ev["fill_price"][-1]) == int(price.replace(".", ""))


def test_user_stream_disconnects_mid_fill_lose_and_duplicate_nothing(make_sim):
    sim = make_sim(faults="userdisconnect=0.35", seed=5)
    tape = Recorder()
    ids = [f"f{i}" for i in range(6)]
    with trading_session(sim, {"s": tape}, enable=["s"]) as (engine, trader):
        ladder = AskLadder(sim)
        for cid in ids:
            qty, price = ladder.crossing_buy(levels=3)
            assert engine.control.submit_order("s", cid, "BTC-USDT", "BUY", "LIMIT", qty,
                                               price).success
            assert wait_until(lambda cid=cid: final(tape, cid), timeout=5.0), (
                tape.reports(cid), trader.stats(), sim.stats())
        venue_fills = {cid: _venue_fills(engine, trader, cid) for cid in ids}
    assert sim.stats()["faults"]["userdisconnect"] >= 2
    stream = trader.stats().user_stream
    assert stream.disconnects >= 2 and stream.sessions >= 3 and stream.reconciled >= 1
    assert trader.stats().trade_queries >= 1  # fills recovered one by one from myTrades
    assert all(len(f) == 3 for f in venue_fills.values())  # three levels each
    for cid in ids:  # every order: its ACK, one report per venue fill, the last FILLED; once
        reports = tape.reports(cid)
        fills = venue_fills[cid]
        assert [s for s, _, _ in reports] == [ACKED] + [PARTIAL] * (len(fills) - 1) + [FILLED]
        assert [f for _, f, _ in reports] == [0, *fills]


def _venue_fills(engine, trader, client_order_id: str) -> list[int]:
    """The cumulative filled quantity after each of the order's fills, as the venue lists
    them (``myTrades``), as mantissas."""
    order = engine.orders.tracker.find(engine.consumers["s"].index, client_order_id)
    trades = trader.api.my_trades("BTCUSDT", order.exchange_order_id)
    exp = engine.registry.instrument(order.instrument).qty_exp
    return np.cumsum([to_mantissa(t["qty"], exp) for t in trades]).tolist()


def test_a_cancel_while_the_stream_is_down_is_reported_exactly_once(sim):
    tape = Recorder()
    with trading_session(sim, {"s": tape}, enable=["s"]) as (engine, trader):
        qty, price = resting_buy(sim)
        assert engine.control.submit_order("s", "c1", "BTC-USDT", "BUY", "LIMIT", qty,
                                           price).success
        assert wait_until(lambda: tape.reports("c1") == [(ACKED, 0, 100_000)])
        sessions = trader.stats().user_stream.sessions
        sim.drop_user_streams()
        assert engine.control.cancel_order("s", "c1").success
        assert wait_until(lambda: final(tape, "c1"))
        assert wait_until(lambda: trader.stats().user_stream.sessions > sessions)
        query = engine.control.query_order("s", "c1")
        assert query.success and query.result.status == "CANCELLED"
    assert tape.reports("c1") == [(ACKED, 0, 100_000), (CANCELLED, 0, 100_000)]
    results = tape.of_type(RESULT)
    assert results["status"].tolist()[-1] == CANCELLED
    assert results["result_value"].tolist()[-1] == query.result.exchange_order_id


def test_cancel_and_query_of_unknown_or_finished_orders_fail_clearly(sim):
    tape = Recorder()
    with trading_session(sim, {"s": tape}, enable=["s"]) as (engine, trader):
        unknown = engine.control.cancel_order("s", "nope")
        assert (unknown.error_code, unknown.success) == (ErrorCode.UNKNOWN_ORDER, False)
        assert engine.control.query_order("s", "nope").error_code == ErrorCode.UNKNOWN_ORDER
        qty, price = crossing_buy(sim, levels=2)
        assert engine.control.submit_order("s", "q1", "BTC-USDT", "BUY", "LIMIT",
                                           qty, price).success
        assert wait_until(lambda: final(tape, "q1"))
        done = engine.control.cancel_order("s", "q1")
        assert done.error_code == ErrorCode.UNKNOWN_ORDER and "already FILLED" in done.error
        assert engine.control.query_order("s", "q1").result.filled == qty + "000"


def venue_error_ack(sim, code: int, message: str, **setup):
    """Submit one valid order through an engine set up to fail; check the venue's error."""
    tape = Recorder()
    extra = setup.pop("extra_symbol", None)
    with trading_session(sim, {"s": tape}, **setup, enable=["s"]) as (engine, trader):
        symbol = "BTC-USDT"
        if extra is not None:  # a symbol our filters know but the venue does not (delisted)
            inst = engine.registry.instrument_id(extra)
            engine.orders.validator.add(trader.venue, SymbolFilters(inst, extra, 8, 8))
            symbol = extra
        qty, price = resting_buy(sim)
        ack = engine.control.submit_order("s", "e1", symbol, "BUY", "LIMIT", qty, price)
        assert (ack.success, ack.error_code, ack.venue_code) == (False, ErrorCode.VENUE_ERROR,
                                                                 code), ack
        assert message in ack.error
        assert wait_until(lambda: final(tape, "e1"))
        assert engine.control.submit_order("s", "e1", symbol, "BUY", "LIMIT", qty,
                                           price).error_code == ErrorCode.DUPLICATE_ORDER
    acks = tape.of_type(ACK)
    submits = acks[acks["command_type"] == CommandType.SUBMIT_ORDER]
    assert submits["venue_code"].tolist() == [code, 0]
    assert not (submits["flags"] & Flag.SUCCESS).any()
    rejected = tape.of_type(EXEC)
    assert rejected["status"].tolist() == [REJECTED]
    assert rejected["reject_code"].tolist() == [code]
    return ack


def test_bad_signature_comes_back_as_the_venues_error(sim):
    venue_error_ack(sim, -1022, "Signature for this request is not valid.",
                    api_secret="x" * 64)


def test_stale_timestamp_comes_back_as_the_venues_error(sim):
    venue_error_ack(sim, -1021, "outside of the recvWindow",
                    trading=TradingConfig(time_offset_ms=-120_000))


def test_unknown_symbol_comes_back_as_the_venues_error(sim):
    venue_error_ack(sim, -1121, "Invalid symbol.", extra_symbol="XRP-USDT")


def test_listen_key_is_kept_alive_and_closed_on_stop(sim):
    with trading_session(sim, {"s": Recorder()}, TradingConfig(keepalive_s=0.05)) as (_, trader):
        assert sim.stats()["trading"]["listen_keys"] == 1
        assert wait_until(lambda: trader.stats().user_stream.keepalives >= 2)
        assert trader.stats().user_stream.errors == 0
    assert sim.stats()["trading"]["listen_keys"] == 0
    assert not trader.stream.connected
