"""Binance order requests: the documented signature example, and the report shapes."""

from decimal import Decimal

import pytest

from meltica_nb.errors import ConfigError, ProtocolError
from meltica_nb.schema import OrderStatus
from meltica_nb.venues.binance.config import BinanceConfig, Secret
from meltica_nb.venues.binance.orders import (
    BinanceOrders,
    report_from_execution,
    report_from_order,
    reports_from_trades,
    sign,
)
from meltica_nb.venues.binance.rest import BinanceRest

# Binance spot API documentation, "SIGNED Endpoint Examples for POST /api/v3/order".
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco5r3wKqhCSSFxlS"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
             "&recvWindow=5000&timestamp=1499827319559")
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

# executionReport fields as Binance documents the user data stream payload.
EXECUTION = {
    "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW",
    "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410",
    "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "", "x": "TRADE",
    "X": "PARTIALLY_FILLED", "r": "NONE", "i": 4293153, "l": "0.40000000",
    "z": "0.40000000", "L": "0.10264410", "n": "0.00000040", "N": "ETH", "T": 1499405658657,
    "t": 77, "I": 8641984, "w": True, "m": False, "M": False, "O": 1499405658657,
    "Z": "0.04105764", "Y": "0.04105764", "Q": "0.00000000",
}


def test_signature_matches_binance_documented_example():
    assert sign(DOC_QUERY, Secret(DOC_SECRET)) == DOC_SIGNATURE
    assert sign(DOC_QUERY, DOC_SECRET) == DOC_SIGNATURE


def test_signed_requests_put_timestamp_and_window_last_and_sign_exactly_that(monkeypatch):
    config = BinanceConfig(api_key=DOC_KEY, api_secret=DOC_SECRET)
    rest = BinanceRest(config)
    sent = {}

    def capture(method, path, params, **kw):
        sent.update(method=method, path=path, query=params, **kw)
        return b'{"orderId": 1}'

    monkeypatch.setattr(rest, "request", capture)
    api = BinanceOrders(config, rest, lambda: 1499827319559)
    api.new_order({"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                   "quantity": "1", "price": "0.1"})
    assert sent["query"] == f"{DOC_QUERY}&signature={DOC_SIGNATURE}"
    assert (sent["method"], sent["path"], sent["api_key"], sent["retries"]) == (
        "POST", "/api/v3/order", True, 0)


def test_trading_needs_credentials_spot_and_a_sane_window():
    rest = BinanceRest(BinanceConfig())
    with pytest.raises(ConfigError, match="MELTICA_BINANCE_API_KEY"):
        BinanceOrders(BinanceConfig(), rest, lambda: 0)
    with pytest.raises(ConfigError, match="spot"):
        BinanceOrders(BinanceConfig(market="usdm", api_key="k", api_secret="s"), rest, lambda: 0)
    with pytest.raises(ConfigError, match="recv_window_ms"):
        BinanceOrders(BinanceConfig(api_key="k", api_secret="s"), rest, lambda: 0, 60_001)


def test_execution_report_becomes_a_venue_report():
    r = report_from_execution(EXECUTION)
    assert (r.venue_client_id, r.exchange_order_id, r.status) == (
        "mUvoqJxFIILMdfAW5iGSOW", 4293153, OrderStatus.PARTIAL)
    assert (r.filled_qty, r.cum_quote, r.last_fill_price, r.last_fill_qty) == (
        "0.40000000", "0.04105764", "0.10264410", "0.40000000")
    assert (r.commission, r.transact_ms, r.reject_code) == ("0.00000040", 1499405658657, 0)


def test_a_cancel_report_names_the_original_order_in_C():
    cancel = {**EXECUTION, "x": "CANCELED", "X": "CANCELED", "c": "cancelReq1", "C": "orig7"}
    assert report_from_execution(cancel).venue_client_id == "orig7"
    assert report_from_execution({**EXECUTION, "x": "REJECTED", "X": "REJECTED",
                                  "r": "INSUFFICIENT_BALANCE"}).reject_code == -2010


@pytest.mark.parametrize("bad", [{**EXECUTION, "X": "WEIRD"}, {"e": "executionReport"},
                                 {**EXECUTION, "i": "x"}])
def test_malformed_execution_reports_raise_protocol_errors(bad):
    with pytest.raises(ProtocolError):
        report_from_execution(bad)


def test_rest_order_objects_become_venue_reports():
    queried = {"symbol": "LTCBTC", "orderId": 1, "clientOrderId": "myOrder1", "price": "0.1",
               "origQty": "1.0", "executedQty": "0.5", "cummulativeQuoteQty": "0.05",
               "status": "PARTIALLY_FILLED", "timeInForce": "GTC", "type": "LIMIT",
               "side": "BUY", "time": 1499827319559, "updateTime": 1499827319560}
    r = report_from_order(queried)
    assert (r.venue_client_id, r.status, r.filled_qty, r.transact_ms) == (
        "myOrder1", OrderStatus.PARTIAL, "0.5", 1499827319560)
    cancelled = {**queried, "origClientOrderId": "myOrder1", "clientOrderId": "cancelMyOrder1",
                 "status": "CANCELED"}
    assert report_from_order(cancelled).venue_client_id == "myOrder1"
    with pytest.raises(ProtocolError):
        report_from_order({"status": "NEW"})


def test_fills_missed_while_disconnected_come_back_one_by_one_from_my_trades():
    trades = [  # myTrades entries as Binance documents them (fields used here)
        {"symbol": "BNBBTC", "id": 29, "orderId": 100234, "price": "4.00", "qty": "3.0",
         "quoteQty": "12.0", "commission": "0.003", "commissionAsset": "BNB",
         "time": 1499865549591, "isBuyer": True, "isMaker": False},
        {"symbol": "BNBBTC", "id": 28, "orderId": 100234, "price": "4.10", "qty": "12.0",
         "quoteQty": "49.2", "commission": "0.012", "commissionAsset": "BNB",
         "time": 1499865549590, "isBuyer": True, "isMaker": False},
        {"symbol": "BNBBTC", "id": 30, "orderId": 100234, "price": "4.20", "qty": "5.0",
         "quoteQty": "21.0", "commission": "0.005", "commissionAsset": "BNB",
         "time": 1499865549592, "isBuyer": True, "isMaker": False},
    ]
    reports = reports_from_trades("v1", 100234, trades, Decimal("12.0"), Decimal("20"))
    assert [(r.status, r.filled_qty, r.cum_quote, r.last_fill_price, r.last_fill_qty)
            for r in reports] == [
        (OrderStatus.PARTIAL, "15.0", "61.2", "4.00", "3.0"),
        (OrderStatus.FILLED, "20.0", "82.2", "4.20", "5.0"),
    ]
    assert {r.exchange_order_id for r in reports} == {100234}
    with pytest.raises(ProtocolError):
        reports_from_trades("v1", 1, [{"id": 1}], Decimal(0), Decimal(1))
