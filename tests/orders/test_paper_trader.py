"""PaperTrader live: orders fill against the engine's own Binance market data, after a latency.

The simulator serves a generated market over real websockets and HTTP; a BinanceFeed keeps the
book; the PaperTrader (no signed REST at all) matches the orders of a strategy consumer against
the book snapshots and trades the engine delivered, and its reports reach the strategy as
critical exec_report events, in order.
"""

from decimal import Decimal

import pytest
from waiting import wait_until

from meltica_nb.engine import Engine
from meltica_nb.fixedpoint import from_mantissa
from meltica_nb.paper_trader import PaperTrader
from meltica_nb.schema import EventType, OrderStatus
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.feed import BinanceFeed

from .helpers import Recorder

BOOK = int(EventType.BOOK_SNAPSHOT)


@pytest.fixture
def paper(sim):
    engine = Engine()
    strategy, books = Recorder(), Recorder()
    engine.add_consumer("strategy", strategy, events=["exec_report", "control_ack"])
    engine.add_consumer("books", books, events=["book_snapshot"], instruments=["BTC-USDT"])
    engine.add_feed(BinanceFeed(engine, BinanceConfig(
        symbols=("BTC-USDT",), channels=("depth@100ms", "trade"), ws_url=sim.ws_url,
        rest_url=sim.rest_url, backoff_base_s=0.02)))
    trader = PaperTrader(engine, "binance", latency_ms=20)
    engine.add_trader(trader)
    with engine:
        assert engine.control.set_trading_mode("strategy", True).success
        assert wait_until(lambda: len(books.of_type(BOOK)) > 0, 10.0)
        # the paper venue trades an instrument once its own consumer has seen its market data
        # (another consumer's first book says nothing of that; under load it lagged behind)
        assert wait_until(lambda: trader.stats().instruments > 0, 10.0)
        yield engine, trader, strategy, books


def best_ask(engine, books) -> str:
    last = books.of_type(BOOK)[-1]
    _, asks = engine.book_levels(last)
    exp = engine.registry.instrument(int(last["instrument"])).price_exp
    return from_mantissa(int(asks[0]["price"]), exp)


def test_a_marketable_order_is_acked_then_filled_after_the_latency(paper):
    engine, trader, strategy, books = paper
    price = str(Decimal(best_ask(engine, books)) * Decimal("1.01"))  # through the ask
    price = price[:price.index(".") + 3]
    ack = engine.control.submit_order("strategy", "p1", "BTC-USDT", "BUY", "LIMIT", "0.001",
                                      price)
    assert ack.success, ack
    assert wait_until(lambda: any(s == OrderStatus.FILLED for s, *_ in
                                  strategy.reports("p1")), 10.0), trader.stats()
    statuses = [s for s, *_ in strategy.reports("p1")]
    assert statuses[0] == OrderStatus.ACK and statuses[-1] == OrderStatus.FILLED
    assert all(s in (OrderStatus.ACK, OrderStatus.PARTIAL, OrderStatus.FILLED) for s in statuses)
    status, filled, quantity = strategy.reports("p1")[-1]
    assert filled == quantity
    reports = strategy.of_type(int(EventType.EXEC_REPORT))
    assert (reports["ingest_ns"][0] - ack_time(strategy)) >= 0
    assert trader.stats().placed == 1 and trader.stats().rejected == 0


def ack_time(strategy) -> int:
    acks = strategy.of_type(int(EventType.CONTROL_ACK))
    return int(acks["ingest_ns"][-1])


def test_a_resting_order_is_cancelled_and_an_off_grid_price_is_refused(paper):
    engine, trader, strategy, books = paper
    low = str(Decimal(best_ask(engine, books)) / 2).split(".")[0]
    assert engine.control.submit_order("strategy", "rest", "BTC-USDT", "BUY", "LIMIT",
                                       "0.001", low).success
    assert wait_until(lambda: [s for s, *_ in strategy.reports("rest")] == [OrderStatus.ACK])
    assert wait_until(lambda: trader.stats().resting == 1)
    assert engine.control.cancel_order("strategy", "rest").success
    assert wait_until(lambda: strategy.reports("rest")[-1][0] == OrderStatus.CANCELLED)
    query = engine.control.query_order("strategy", "rest")
    assert query.success and query.result.status == "CANCELLED"
    refused = engine.control.submit_order("strategy", "bad", "BTC-USDT", "BUY", "LIMIT",
                                          "0.001", "1.000000001")
    assert not refused.success and "decimal places" in refused.error
