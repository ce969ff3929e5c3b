"""REST endpoints over HTTP/1.1 keep-alive: shapes, weight headers, 429 and 418."""

import http.client

from meltica_nb.sim import BinanceLimits

from .helpers import get


def test_ping_time_and_exchange_info(sim):
    assert get(sim.rest_url + "/api/v3/ping")[::2] == (200, {})
    status, headers, body = get(sim.rest_url + "/api/v3/time")
    assert status == 200 and set(body) == {"serverTime"} and body["serverTime"] > 1.6e12
    assert headers["content-type"].startswith("application/json")
    status, headers, info = get(sim.rest_url + "/api/v3/exchangeInfo")
    assert status == 200 and headers["x-mbx-used-weight-1m"] == "22"  # 1 + 1 + 20
    btc = info["symbols"][0]
    assert (btc["symbol"], btc["baseAsset"], btc["quoteAsset"], btc["status"]) == (
        "BTCUSDT", "BTC", "USDT", "TRADING")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001"
    one = get(sim.rest_url + "/api/v3/exchangeInfo?symbol=ETHUSDT")[2]
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]


def test_depth_snapshot_and_weights_on_one_keep_alive_connection(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.rest_port, timeout=5)
    try:
        status, headers, depth = get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5", conn)
        assert status == 200 and set(depth) == {"lastUpdateId", "bids", "asks"}
        assert len(depth["bids"]) == 5 and headers["x-mbx-used-weight-1m"] == "1"
        assert headers["connection"] == "keep-alive"
        _, headers, big = get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000", conn)
        assert headers["x-mbx-used-weight-1m"] == "11" and len(big["bids"]) >= 150
        _, headers, _ = get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5000", conn)
        assert headers["x-mbx-used-weight-1m"] == "61"
        assert get(sim.rest_url + "/api/v3/depth?symbol=NOPE", conn)[2]["code"] == -1121
        assert get(sim.rest_url + "/api/v3/depth", conn)[2]["code"] == -1102
        assert get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=x", conn)[0] == 400
        assert get(sim.rest_url + "/api/v3/nothing", conn)[0] == 404
    finally:
        conn.close()
    assert sim.stats()["rest"]["requests"] == 7


def test_futures_paths(sim):
    assert get(sim.rest_url + "/fapi/v1/ping")[::2] == (200, {})
    assert "serverTime" in get(sim.rest_url + "/fapi/v1/time")[2]
    info = get(sim.rest_url + "/fapi/v1/exchangeInfo")[2]
    assert info["symbols"][0]["contractType"] == "PERPETUAL"
    status, headers, depth = get(sim.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=100")
    assert status == 200 and {"E", "T", "lastUpdateId"} <= set(depth)
    assert headers["x-mbx-used-weight-1m"] == "8"  # 1 + 1 + 1 + 5


def test_weight_limit_gives_429_with_retry_after_then_418(make_sim):
    sim = make_sim(limits=BinanceLimits(ping_interval=None, rest_weight_limit=25, ban_after=2))
    url = sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000"  # weight 10
    assert [get(url)[0] for _ in range(2)] == [200, 200]
    status, headers, body = get(url)
    assert status == 429 and body["code"] == -1003 and int(headers["retry-after"]) >= 1
    assert headers["x-mbx-used-weight-1m"] == "30"
    assert get(url)[0] == 429
    status, headers, body = get(url)
    assert status == 418 and "banned" in body["msg"] and int(headers["retry-after"]) >= 1
    assert get(sim.rest_url + "/api/v3/ping")[0] == 418
    assert sim.stats()["rest"]["status"] == {"200": 2, "418": 2, "429": 2}


def test_a_failing_endpoint_answers_500_and_the_simulator_keeps_serving(sim, monkeypatch):
    def broken(symbol, limit):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(sim.feed, "depth_snapshot", broken)
    status, _, body = get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT")
    assert (status, body["code"]) == (500, -1000)
    assert get(sim.rest_url + "/api/v3/ping")[0] == 200
    assert sim.stats()["rest"]["status"] == {"200": 1, "500": 1}
