"""The user data stream: listen keys over REST, ``executionReport`` events over a websocket."""

from decimal import Decimal
from pathlib import Path

import pytest
import websocket
from waiting import wait_until

from meltica_nb.clock import ManualClock
from meltica_nb.sim import ExchangeSimulator

from .helpers import (
    SignedClient,
    assert_closed,
    close,
    connect,
    next_report,
    recv_json,
    user_events,
)

BTC = "BTCUSDT"
REPORT_FIELDS = ["e", "E", "s", "c", "S", "o", "f", "q", "p", "P", "F", "g", "C", "x", "X", "r",
                 "i", "l", "z", "L", "n", "N", "T", "t", "I", "w", "m", "M", "O", "Z", "Y", "Q"]


@pytest.fixture
def client(sim):
    c = SignedClient(sim)
    yield c
    c.close()


def _listen(client) -> str:
    status, body = client.raw("POST", "/api/v3/userDataStream")
    assert status == 200 and len(body["listenKey"]) == 60
    return body["listenKey"]


def _is_final(event: dict) -> bool:
    return event.get("X") in ("FILLED", "CANCELED", "EXPIRED")


def test_listen_key_lifecycle(sim, client):
    key = _listen(client)
    assert _listen(client) == key  # an active key is returned again
    assert client.raw("PUT", f"/api/v3/userDataStream?listenKey={key}") == (200, {})
    assert client.raw("PUT", "/api/v3/userDataStream?listenKey=nope") == (
        400, {"code": -1125, "msg": "This listenKey does not exist."})
    assert client.raw("POST", "/api/v3/userDataStream", api_key=None)[1]["code"] == -2014
    ws = connect(sim, f"/ws/{key}")
    try:
        assert client.raw("DELETE", f"/api/v3/userDataStream?listenKey={key}") == (200, {})
        assert_closed(ws)
    finally:
        close(ws)
    with pytest.raises(websocket.WebSocketBadStatusException):
        connect(sim, f"/ws/{key}")
    assert _listen(client) != key


def test_resting_order_reports_new_partial_filled_as_the_market_trades(sim, client):
    ws = connect(sim, f"/ws/{_listen(client)}")
    try:
        bid = sim.book(BTC, 1)["bids"][0][0]
        status, placed = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.10000", "price": bid, "newClientOrderId": "rest-1"})
        assert status == 200 and placed["status"] == "NEW"
        events = user_events(ws, _is_final)
    finally:
        close(ws)
    assert [list(e)[:len(REPORT_FIELDS)] for e in events] == [REPORT_FIELDS] * len(events)
    assert [e["x"] for e in events] == ["NEW"] + ["TRADE"] * (len(events) - 1)
    statuses = [e["X"] for e in events]
    assert statuses[0] == "NEW" and statuses[-1] == "FILLED"
    assert set(statuses[1:-1]) <= {"PARTIALLY_FILLED"}
    assert {e["i"] for e in events} == {placed["orderId"]} and {e["c"] for e in events} == {
        "rest-1"}
    filled = Decimal(0)
    for event in events[1:]:
        filled += Decimal(event["l"])
        assert Decimal(event["z"]) == filled and event["m"] is True and event["L"] == bid
        assert Decimal(event["Y"]) == Decimal(event["l"]) * Decimal(event["L"])
    assert filled == Decimal("0.1")
    final = client.signed("GET", "/api/v3/order", {"symbol": BTC, "orderId": placed[
        "orderId"]})[1]
    assert final["status"] == "FILLED" and final["executedQty"] == "0.10000000"
    assert final["cummulativeQuoteQty"] == events[-1]["Z"]


def test_ioc_and_cancel_reports(sim, client):
    ws = connect(sim, f"/ws/{_listen(client)}")
    sim.pause()
    try:
        top = sim.book(BTC, 1)["asks"][0]
        qty = Decimal(top[1]) + 1
        client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
            "quantity": f"{qty}", "price": top[0]})
        ioc = user_events(ws, _is_final)
        client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01", "price": "99999", "newClientOrderId": "far"})
        client.signed("DELETE", "/api/v3/order", {"symbol": BTC, "origClientOrderId": "far",
                                                  "newClientOrderId": "undo"})
        canceled = user_events(ws, _is_final)
    finally:
        sim.resume()
        close(ws)
    assert [(e["x"], e["X"]) for e in ioc] == [
        ("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("EXPIRED", "EXPIRED")]
    assert ioc[1]["l"] == f"{Decimal(top[1]):.8f}" and ioc[1]["m"] is False
    assert [(e["x"], e["c"], e["C"]) for e in canceled] == [
        ("NEW", "far", ""), ("CANCELED", "undo", "far")]


def test_user_stream_gets_no_frame_faults_but_can_be_dropped(make_sim):
    sim = make_sim(seed=3, faults="drop=1,dup=1")
    client = SignedClient(sim)
    key = _listen(client)
    ws = connect(sim, f"/ws/{key}")
    try:
        order = {"symbol": BTC, "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "0.01", "price": "99999"}
        client.signed("POST", "/api/v3/order", order)
        assert next_report(ws)["x"] == "NEW"  # not dropped, not duplicated:
        client.signed("DELETE", "/api/v3/openOrders", {"symbol": BTC})
        assert next_report(ws)["x"] == "CANCELED"
        assert sim.drop_user_streams() == 1
        assert_closed(ws)
        close(ws)
        ws = connect(sim, f"/ws/{key}")  # the key survives the disconnect
        client.signed("POST", "/api/v3/order", order)
        assert next_report(ws)["x"] == "NEW"
    finally:
        close(ws)
        client.close()
    assert sim.stats()["disconnects"]["user_stream_fault"] == 1


def test_userdisconnect_fault_loses_the_report_and_rest_reconciles(make_sim):
    sim = make_sim(seed=3, faults="userdisconnect=1")
    client = SignedClient(sim)
    ws = connect(sim, f"/ws/{_listen(client)}")
    try:
        status, placed = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01", "price": "99999"})
        assert_closed(ws)
        listed = client.signed("GET", "/api/v3/openOrders", {"symbol": BTC})[1]
    finally:
        close(ws)
        client.close()
    assert status == 200 and [o["orderId"] for o in listed] == [placed["orderId"]]
    assert sim.stats()["faults"]["userdisconnect"] == 2  # drawn per event: report, balances


def test_listen_key_expires_after_an_hour_without_keepalive(make_sim):
    clock = ManualClock(1_800_000_000 * 10**9)
    sim = make_sim(clock=clock)
    client = SignedClient(sim)
    key = _listen(client)
    ws = connect(sim, f"/stream?streams={key}")
    try:
        clock.advance(3601 * 10**9)
        event = recv_json(ws)
        assert event == {"stream": key, "data": {"e": "listenKeyExpired",
                                                 "E": event["data"]["E"], "listenKey": key}}
        wait_until(lambda: not sim.listen_keys.active(key), what="the listen key to expire")
        assert client.raw("PUT", f"/api/v3/userDataStream?listenKey={key}")[1]["code"] == -1125
    finally:
        close(ws)
        client.close()


RECORDING = Path(__file__).parent.parent / "data" / "binance" / \
    "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz"


def test_resting_order_fills_from_a_real_recording(make_sim):
    sim = make_sim(recording=RECORDING, speed=0)
    client = SignedClient(sim)
    user = connect(sim, f"/ws/{_listen(client)}")
    try:
        status, placed = client.signed("POST", "/api/v3/order", {
            "symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.05", "price": "61837.63"})  # the first recorded print's price
        assert status == 200 and placed["status"] == "NEW"
        market = connect(sim, "/ws/btcusdt@trade")  # the first subscriber starts playback
        try:
            events = user_events(user, _is_final)
        finally:
            close(market)
    finally:
        close(user)
        client.close()
    # the recording's first two prints are sells at 61837.63 of 0.02 and 0.048
    assert [(e["X"], e["l"], e["L"]) for e in events] == [
        ("NEW", "0.00000000", "0.00000000"),
        ("PARTIALLY_FILLED", "0.02000000", "61837.63000000"),
        ("FILLED", "0.03000000", "61837.63000000")]


def test_unreadable_market_prints_are_counted_and_skipped():
    sim = ExchangeSimulator()  # not started: its trading side is driven by hand here
    sim.trading.on_market([("btcusdt@trade", b"{broken"), ("btcusdt@trade", {"e": "trade"}),
                           ("btcusdt@trade", {"s": "BTCUSDT", "p": "x", "q": "1", "m": True})],
                          sim.clock.now_ns() // 1_000_000)
    assert sim.stats()["trading"]["bad_prints"] == 3


def test_balance_changes_follow_the_report(sim, client):
    ws = connect(sim, f"/ws/{_listen(client)}")
    try:
        client.signed("POST", "/api/v3/order", {
            "symbol": "ETHUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "2", "price": "99999"})
        report, position = recv_json(ws), recv_json(ws)
    finally:
        close(ws)
    assert (report["e"], report["x"]) == ("executionReport", "NEW")
    assert position == {"e": "outboundAccountPosition", "E": report["E"], "u": report["E"],
                        "B": [{"a": "ETH", "f": "999998.00000000", "l": "2.00000000"}]}
