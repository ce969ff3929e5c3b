"""Binance's official Python client (binance-connector), unchanged, trades on the simulator.

Skipped when the package is not installed (it is in the ``test`` extra, not a dependency).
"""

import pytest

spot = pytest.importorskip("binance.spot")
binance_error = pytest.importorskip("binance.error")

from .helpers import assert_closed, close, connect, user_events  # noqa: E402

BTC = "BTCUSDT"


@pytest.fixture
def client(sim):
    c = spot.Spot(api_key=sim.credentials.api_key, api_secret=sim.credentials.api_secret,
                  base_url=sim.rest_url, timeout=5)
    yield c
    c.session.close()


def test_official_client_places_queries_and_cancels(sim, client):
    key = client.new_listen_key()["listenKey"]
    ws = connect(sim, f"/ws/{key}")
    try:
        far = f"{float(sim.book(BTC, 1)['asks'][0][0]) * 1.5:.2f}"
        placed = client.new_order(symbol=BTC, side="SELL", type="LIMIT", timeInForce="GTC",
                                  quantity="0.002", price=far, newClientOrderId="lib-1")
        assert placed["status"] == "NEW" and placed["clientOrderId"] == "lib-1"
        assert client.get_order(BTC, orderId=placed["orderId"])["price"] == f"{far}000000"
        assert [o["clientOrderId"] for o in client.get_open_orders(BTC)] == ["lib-1"]
        canceled = client.cancel_order(BTC, origClientOrderId="lib-1")
        assert canceled["status"] == "CANCELED"
        bought = client.new_order(symbol=BTC, side="BUY", type="MARKET", quoteOrderQty="20")
        assert bought["status"] == "FILLED" and bought["fills"]
        events = user_events(ws, lambda e: e["X"] == "FILLED")
        assert [(e["c"], e["x"]) for e in events][:2] == [("lib-1", "NEW"), (
            canceled["clientOrderId"], "CANCELED")]
        assert events[-1]["i"] == bought["orderId"]
        assert client.renew_listen_key(key) == {}
        assert client.close_listen_key(key) == {}
        assert_closed(ws)
    finally:
        close(ws)


def test_official_client_sees_binance_errors(client):
    with pytest.raises(binance_error.ClientError) as info:
        client.new_order(symbol="NOPE", side="BUY", type="MARKET", quantity="1")
    assert (info.value.status_code, info.value.error_code) == (400, -1121)
    with pytest.raises(binance_error.ClientError) as info:
        client.cancel_order(BTC, orderId=424242)
    assert (info.value.error_code, info.value.error_message) == (-2011, "Unknown order sent.")
    wrong = spot.Spot(api_key=client.api_key, api_secret="x" * 64, base_url=client.base_url)
    try:
        with pytest.raises(binance_error.ClientError) as info:
            wrong.get_open_orders(BTC)
        assert info.value.error_code == -1022
    finally:
        wrong.session.close()
