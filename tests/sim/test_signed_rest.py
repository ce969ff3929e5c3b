"""Binance's SIGNED REST on the simulator, over real HTTP: signatures, keys, time, errors."""

from decimal import Decimal

import pytest

from meltica_nb.clock import ManualClock
from meltica_nb.errors import ConfigError
from meltica_nb.sim import ExchangeSimulator, Instrument, MarketConfig
from meltica_nb.sim.auth import Credentials, sign

from .helpers import SignedClient, get

# The worked example of Binance's spot API documentation ("SIGNED Endpoint Examples for POST
# /api/v3/order - HMAC Keys"): key, secret, request and the signatures it gives.
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco5r3wKqhCSSFxlS"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
             "&recvWindow=5000&timestamp=1499827319559")
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOC_MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
DOC_MIXED_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
DOC_MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
DOC_TIME_MS = 1499827319559

BTC = "BTCUSDT"


def test_signature_matches_binance_worked_example():
    assert sign(DOC_SECRET, DOC_QUERY) == DOC_SIGNATURE
    assert sign(DOC_SECRET, DOC_MIXED_QUERY + DOC_MIXED_BODY) == DOC_MIXED_SIGNATURE


@pytest.fixture
def doc_sim(make_sim):
    """A simulator at the example's time, trading LTCBTC, accepting the example's key."""
    ltc = Instrument("LTC-BTC", "LTCBTC", "LTC", "BTC", "0.000001", "0.01", "0.2", "0.0001")
    return make_sim(config=MarketConfig.fast(instruments=(ltc,)),
                    clock=ManualClock((DOC_TIME_MS + 100) * 1_000_000),
                    credentials=Credentials(DOC_KEY, DOC_SECRET))


def test_the_documented_requests_are_accepted_verbatim(doc_sim):
    client = SignedClient(doc_sim)
    try:
        as_query = client.raw("POST", f"/api/v3/order?{DOC_QUERY}&signature={DOC_SIGNATURE}")
        as_body = client.raw("POST", "/api/v3/order", f"{DOC_QUERY}&signature={DOC_SIGNATURE}")
        mixed = client.raw("POST", f"/api/v3/order?{DOC_MIXED_QUERY}",
                           f"{DOC_MIXED_BODY}&signature={DOC_MIXED_SIGNATURE}")
        upper = client.raw("POST", f"/api/v3/order?{DOC_QUERY}&signature={DOC_SIGNATURE.upper()}")
    finally:
        client.close()
    placed = (as_query, as_body, mixed, upper)
    for (status, body), order_id in zip(placed, (1, 2, 3, 4), strict=True):
        assert status == 200, body
        assert (body["symbol"], body["orderId"], body["status"]) == ("LTCBTC", order_id, "NEW")
        assert (body["price"], body["origQty"]) == ("0.10000000", "1.00000000")
        assert body["transactTime"] == DOC_TIME_MS + 100


def test_authentication_errors_come_back_as_binance_sends_them(sim):
    client = SignedClient(sim)
    order = {"symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.001", "price": "10000"}
    now = sim.clock.now_ns() // 1_000_000
    try:
        assert client.signed("POST", "/api/v3/order", order, secret="x" * 64) == (
            400, {"code": -1022, "msg": "Signature for this request is not valid."})
        assert client.signed("POST", "/api/v3/order", order, timestamp=now - 6000) == (
            400, {"code": -1021, "msg": "Timestamp for this request is outside of the "
                                        "recvWindow."})
        assert client.signed("POST", "/api/v3/order", order, timestamp=now + 5000)[1] == {
            "code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the "
                                  "server's time."}
        late = {**order, "recvWindow": "20000"}
        assert client.signed("POST", "/api/v3/order", late, timestamp=now - 6000)[0] == 200
        too_wide = {**order, "recvWindow": "60001"}
        assert client.signed("POST", "/api/v3/order", too_wide)[1]["code"] == -1102
        assert client.signed("POST", "/api/v3/order", order, api_key=None) == (
            401, {"code": -2014, "msg": "API-key format invalid."})
        assert client.signed("POST", "/api/v3/order", order, api_key="A" * 64) == (
            401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
        unsigned = client.raw("GET", f"/api/v3/openOrders?symbol={BTC}&timestamp={now}")
        assert unsigned[1] == {"code": -1102, "msg": "Mandatory parameter 'signature' was not "
                                                     "sent, was empty/null, or malformed."}
    finally:
        client.close()
    assert sim.stats()["trading"]["open_orders"] == 1  # only the one inside recvWindow=20000


def test_request_errors_use_binance_codes(sim):
    client = SignedClient(sim)
    base = {"symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.001", "price": "10000"}
    try:
        def code(params, method="POST", path="/api/v3/order"):
            status, body = client.signed(method, path, params)
            assert status == 400, body
            return body["code"], body["msg"]

        assert code({**base, "symbol": "NOPE"}) == (-1121, "Invalid symbol.")
        assert code({**base, "price": "10000.001"}) == (-1013, "Filter failure: PRICE_FILTER")
        assert code({**base, "quantity": "0.000015"}) == (-1013, "Filter failure: LOT_SIZE")
        assert code({**base, "quantity": "0.0001", "price": "100"}) == (
            -1013, "Filter failure: NOTIONAL")
        assert code({**base, "quantity": "1e-3"})[0] == -1100
        assert code({**base, "side": "HOLD"}) == (-1117, "Invalid side.")
        assert code({**base, "type": "STOP"}) == (-1116, "Invalid orderType.")
        assert code({**base, "timeInForce": "GTD"}) == (-1115, "Invalid timeInForce.")
        assert code({k: v for k, v in base.items() if k != "price"})[0] == -1102
        assert code({**base, "colour": "blue"})[0] == -1104
        assert code({"symbol": BTC, "orderId": "999"}, "GET") == (-2013, "Order does not exist.")
        assert code({"symbol": BTC, "orderId": "999"}, "DELETE") == (-2011, "Unknown order sent.")
        assert code({"symbol": BTC}, "GET")[0] == -1102
        duplicated = client.raw("GET", f"/api/v3/order?symbol={BTC}&symbol={BTC}&timestamp=1"
                                       "&signature=00")
        assert duplicated[1]["code"] == -1101
        now = sim.clock.now_ns() // 1_000_000
        query = f"symbol={BTC}&orderId=999"
        body = f"symbol=NOPE&timestamp={now}"  # the query's symbol wins over the body's
        signed = f"{body}&signature={sign(sim.credentials.api_secret, query + body)}"
        assert client.raw("DELETE", f"/api/v3/order?{query}", signed)[1]["code"] == -2011
    finally:
        client.close()
    assert sim.stats()["trading"]["open_orders"] == 0


def test_place_query_list_and_cancel(sim):
    client = SignedClient(sim)
    bid = sim.book(BTC, 1)["bids"][0][0]
    far = f"{float(bid) / 2:.2f}"
    try:
        status, placed = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01000", "price": far, "newClientOrderId": "mine-1"}, in_body=True)
        assert status == 200 and placed["status"] == "NEW" and placed["fills"] == []
        assert placed["clientOrderId"] == "mine-1" and placed["workingTime"] > 0
        got = client.signed("GET", "/api/v3/order", {"symbol": BTC, "origClientOrderId":
                                                     "mine-1"})[1]
        assert got["orderId"] == placed["orderId"] and got["isWorking"] is True
        assert got["price"] == f"{far}000000" and got["executedQty"] == "0.00000000"
        listed = client.signed("GET", "/api/v3/openOrders", {"symbol": BTC})[1]
        assert [o["orderId"] for o in listed] == [placed["orderId"]]
        assert client.signed("GET", "/api/v3/openOrders")[1] == listed
        assert client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01", "price": far, "newClientOrderId": "mine-1"})[1] == {
            "code": -2010, "msg": "Duplicate order sent."}
        status, canceled = client.signed("DELETE", "/api/v3/order", {
            "symbol": BTC, "orderId": placed["orderId"], "newClientOrderId": "undo-1"})
        assert status == 200 and canceled["status"] == "CANCELED"
        assert (canceled["origClientOrderId"], canceled["clientOrderId"]) == ("mine-1", "undo-1")
        assert client.signed("GET", "/api/v3/openOrders", {"symbol": BTC})[1] == []
        assert client.signed("GET", "/api/v3/order", {"symbol": BTC, "orderId": placed[
            "orderId"]})[1]["status"] == "CANCELED"
        assert client.signed("DELETE", "/api/v3/order", {"symbol": BTC, "orderId": placed[
            "orderId"]})[1]["code"] == -2011
        assert client.signed("POST", "/api/v3/order/test", {
            "symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.01"}) == (200, {})
        history = client.signed("GET", "/api/v3/allOrders", {"symbol": BTC})[1]
        assert [(o["clientOrderId"], o["status"]) for o in history] == [("mine-1", "CANCELED")]
        assert client.signed("GET", "/api/v3/allOrders", {
            "symbol": BTC, "orderId": placed["orderId"] + 1})[1] == []
        assert client.signed("GET", "/api/v3/allOrders", {
            "symbol": BTC, "startTime": history[0]["time"], "limit": "1"})[1] == history
    finally:
        client.close()
    assert sim.stats()["trading"]["open_orders"] == 0


def test_market_and_ioc_orders_take_the_book(sim):
    client = SignedClient(sim)
    sim.pause()
    book = sim.book(BTC, 5)
    try:
        status, bought = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.00100"})
        assert status == 200 and bought["status"] == "FILLED"
        assert bought["fills"][0]["price"] == book["asks"][0][0]
        status, spent = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "SELL", "type": "MARKET", "quoteOrderQty": "50"})
        assert status == 200 and spent["status"] == "FILLED"
        assert spent["origQuoteOrderQty"] == "50.00000000"
        assert float(spent["cummulativeQuoteQty"]) <= 50
        top = book["bids"][0]
        status, ioc = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "SELL", "type": "LIMIT", "timeInForce": "IOC",
            "quantity": "5", "price": top[0], "newOrderRespType": "RESULT"})
        assert status == 200 and ioc["status"] == "EXPIRED" and "fills" not in ioc
        assert 0 < float(ioc["executedQty"]) < 5
        fok = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "SELL", "type": "LIMIT", "timeInForce": "FOK",
            "quantity": "5", "price": top[0], "newOrderRespType": "ACK"})[1]
        assert set(fok) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        assert client.signed("GET", "/api/v3/order", {"symbol": BTC, "orderId": fok[
            "orderId"]})[1]["status"] == "EXPIRED"
        mine = client.signed("GET", "/api/v3/myTrades", {"symbol": BTC})[1]
        taken = bought["fills"] + spent["fills"]
        assert [(t["id"], t["price"], t["qty"]) for t in mine[:len(taken)]] == [
            (f["tradeId"], f["price"], f["qty"]) for f in taken]
        assert {t["orderId"] for t in mine} == {bought["orderId"], spent["orderId"],
                                                ioc["orderId"]}
        assert mine[0]["isBuyer"] is True and mine[-1]["isBuyer"] is False
        by_order = client.signed("GET", "/api/v3/myTrades", {"symbol": BTC,
                                                             "orderId": ioc["orderId"]})[1]
        assert sum(Decimal(t["qty"]) for t in by_order) == Decimal(ioc["executedQty"])
        assert client.signed("GET", "/api/v3/myTrades", {"symbol": BTC, "fromId": mine[1][
            "id"], "limit": "1"})[1] == [mine[1]]
        assert client.signed("GET", "/api/v3/myTrades", {"symbol": BTC, "limit": "x"})[1][
            "code"] == -1100
    finally:
        sim.resume()
        client.close()


def test_order_endpoints_count_request_weight(sim):
    client = SignedClient(sim)
    try:
        client.signed("GET", "/api/v3/openOrders", {"symbol": BTC})
        client.signed("GET", "/api/v3/order", {"symbol": BTC, "orderId": "1"})
        assert client.raw("PUT", "/api/v3/order")[0] == 405
    finally:
        client.close()
    assert sim.stats()["rest"]["weight_used"]["api"] == 7


def test_futures_simulator_has_no_spot_order_endpoints(make_sim):
    sim = make_sim(market="usdm")
    assert sim.trading is None
    assert get(sim.rest_url + "/api/v3/order")[0] == 404


def _balances(client) -> dict:
    status, account = client.signed("GET", "/api/v3/account")
    assert status == 200 and account["accountType"] == "SPOT" and account["canTrade"] is True
    return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}


def test_orders_lock_spend_and_release_balances(make_sim):
    sim = make_sim(seed=7, balances={"USDT": "1000", "BTC": "0.5"})
    client = SignedClient(sim)
    sim.pause()
    try:
        assert _balances(client) == {"BTC": ("0.50000000", "0.00000000"),
                                     "ETH": ("1000000.00000000", "0.00000000"),
                                     "USDT": ("1000.00000000", "0.00000000")}
        placed = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01", "price": "50000"})[1]
        assert _balances(client)["USDT"] == ("500.00000000", "500.00000000")
        assert client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01", "price": "50001"}) == (400, {
                "code": -2010, "msg": "Account has insufficient balance for requested action."})
        assert client.signed("POST", "/api/v3/order/test", {
            "symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.6"})[1][
            "code"] == -2010
        client.signed("DELETE", "/api/v3/order", {"symbol": BTC, "orderId": placed["orderId"]})
        assert _balances(client)["USDT"] == ("1000.00000000", "0.00000000")
        sold = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.1"})[1]
        proceeds = sold["cummulativeQuoteQty"]
        after = _balances(client)
        assert after["BTC"] == ("0.40000000", "0.00000000")
        assert after["USDT"] == (f"{1000 + Decimal(proceeds):.8f}", "0.00000000")
        ask = Decimal(sim.book(BTC, 1)["asks"][0][0])
        bought = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.001", "price": f"{ask + 100}"})[1]
        assert bought["status"] == "FILLED" and bought["fills"][0]["price"] == f"{ask:.8f}"
        usdt = Decimal(after["USDT"][0]) - Decimal(bought["cummulativeQuoteQty"])
        assert _balances(client)["USDT"] == (f"{usdt:.8f}", "0.00000000")  # limit excess back
        assert client.signed("GET", "/api/v3/account", {"omitZeroBalances": "true"})[0] == 200
    finally:
        sim.resume()
        client.close()


def test_bad_balance_option_is_a_config_error():
    with pytest.raises(ConfigError, match="balances"):
        ExchangeSimulator(balances={"USDT": "lots"})
