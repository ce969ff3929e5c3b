"""Order commands through a real Engine without a venue: payload checks and their acks."""

import numpy as np
import pytest

from meltica_nb.control_bus import ControlBus
from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError, PoolExhausted
from meltica_nb.exec_reports import ExecReportPublisher, ExecReportStats, VenueReport
from meltica_nb.order_tracker import OrderTracker
from meltica_nb.schema import ORDER_REQUEST, ErrorCode, OrderStatus
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.trader import BinanceTrader

from .helpers import Recorder


@pytest.fixture
def engine():
    engine = Engine()
    engine.add_consumer("s", Recorder())
    return engine


def test_trading_mode_needs_a_boolean(engine):
    ack = engine.control.send({"type": "SetTradingMode", "consumer": "s",
                               "payload": {"enabled": "yes"}})
    assert (ack.success, ack.error_code) == (False, ErrorCode.BAD_PAYLOAD)
    assert "true or false" in ack.error
    assert not engine.orders.trading_enabled(0)
    assert engine.control.set_trading_mode("s", True).success
    assert engine.orders.trading_enabled(0) and engine.orders.stats().trading_enabled == 1


@pytest.mark.parametrize(("payload", "code", "text"), [
    ({"client_order_id": "a", "colour": "red"}, ErrorCode.BAD_PAYLOAD, "colour"),
    ({"client_order_id": "has space"}, ErrorCode.INVALID_ORDER, "client_order_id"),
    ({"client_order_id": "a", "venue": "nowhere"}, ErrorCode.UNKNOWN_VENUE, "no trader"),
])
def test_submit_payloads_are_checked_before_anything_else(engine, payload, code, text):
    engine.control.set_trading_mode("s", True)
    ack = engine.control.send({"type": "SubmitOrder", "consumer": "s", "payload": payload})
    assert (ack.success, ack.error_code) == (False, code) and text in ack.error


def test_one_trader_per_venue(engine):
    config = BinanceConfig(symbols=("BTC-USDT",), api_key="k" * 64, api_secret="s" * 64)
    engine.add_trader(BinanceTrader(engine, config))
    with pytest.raises(ConfigError, match="already has a trader"):
        engine.add_trader(BinanceTrader(engine, config))


def test_a_bus_without_gateway_refuses_order_commands(engine):
    bus = ControlBus(engine.router, engine.registry, {"s": 0}, lambda column, recs: None)
    ack = bus.query_order("s", "a1")
    assert (ack.success, ack.error_code) == (False, ErrorCode.UNKNOWN_VENUE)
    assert "no order gateway" in ack.error


def test_no_free_request_slot_is_backpressure_not_an_exception():
    engine = Engine({"pools": {"OrderRequest": 1}})
    engine.add_consumer("s", Recorder())
    config = BinanceConfig(symbols=("BTC-USDT",), api_key="k" * 64, api_secret="s" * 64)
    engine.add_trader(BinanceTrader(engine, config))
    engine.control.set_trading_mode("s", True)
    held = engine.pools["OrderRequest"].acquire()
    ack = engine.control.submit_order("s", "a", "BTC-USDT", "BUY", "LIMIT", "1", "1")
    assert (ack.success, ack.error_code) == (False, ErrorCode.BACKPRESSURE)
    engine.pools["OrderRequest"].release(held)
    assert engine.control.submit_order("s", "a", "BTC-USDT", "BUY", "LIMIT", "1",
                                       "1").error_code == ErrorCode.INVALID_ORDER  # not traded


def test_a_report_that_failed_to_publish_is_not_marked_delivered(engine):
    failures = [PoolExhausted("dispatcher full")]

    def publish(events):
        if failures:
            raise failures.pop()
        published.append(events.copy())
        return len(events)

    published: list = []
    inst = engine.registry.instrument_id("BTC-USDT")
    tracker = OrderTracker()
    reports = ExecReportPublisher(engine.pools["ExecReport"], engine.registry, tracker, publish,
                                  lambda: 1)
    request = np.zeros(1, ORDER_REQUEST)[0]
    request["instrument"], request["quantity"] = inst, 100
    order = tracker.register(request, "a")
    ack = VenueReport(order.venue_client_id, 7, OrderStatus.ACK, "0")
    with pytest.raises(PoolExhausted):
        reports.report(ack)
    assert order.status == OrderStatus.NONE and engine.pools["ExecReport"].in_use == 0
    assert reports.report(ack) and not reports.report(ack)
    assert len(published) == 1 and published[0]["exchange_order_id"][0] == 7
    assert reports.stats() == ExecReportStats(published=1, duplicates=1, foreign=0)
    assert not reports.report(ack._replace(venue_client_id="someone-else"))
    assert reports.stats().foreign == 1
