"""BinanceRest against a scripted keep-alive HTTP server on 127.0.0.1 (real sockets)."""

from __future__ import annotations

import logging
import threading
import time

import orjson
import pytest

from meltica_nb.concurrency import CancelToken
from meltica_nb.errors import (
    ConfigError,
    ConnectError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    VenueError,
    VenueUnavailable,
)
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.rest import WEIGHT_HEADER, BinanceRest, depth_weight

from .loopback import RestServer, free_port

KEY = "KEY-4f9c1e7d0a2b"
SECRET = "SECRET-b81d55e0c3aa"


def make_config(url: str, **overrides) -> BinanceConfig:
    values = dict(rest_url=url, rest_timeout_s=2.0, backoff_base_s=0.05, backoff_cap_s=0.2,
                  backoff_seed=3, rest_max_retries=3, rest_max_wait_s=5.0)
    values.update(overrides)
    return BinanceConfig(**values)


@pytest.fixture
def server(no_thread_leak):
    srv = RestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def make_rest():
    """Build clients that are closed before the server stops (it joins their connections)."""
    clients: list[BinanceRest] = []

    def make(config: BinanceConfig, **kw) -> BinanceRest:
        clients.append(BinanceRest(config, **kw))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


class OffsetClock:
    """The wall clock moved so that the current minute ends ``left_s`` from now."""

    def __init__(self, left_s: float) -> None:
        now = time.time_ns()
        self._offset = (now // 60_000_000_000 + 1) * 60_000_000_000 - int(left_s * 1e9) - now

    def now_ns(self) -> int:
        return time.time_ns() + self._offset

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


# -- endpoints and keep-alive -------------------------------------------------------------------


def test_requests_reuse_one_keep_alive_connection(server, make_rest):
    server.routes["/api/v3/time"] = (200, {}, b'{"serverTime":1700000000123}', 0.0)
    server.routes["/api/v3/depth"] = (200, {}, b'{"lastUpdateId":7,"bids":[],"asks":[]}', 0.0)
    rest = make_rest(make_config(server.url))
    rest.ping()
    assert rest.server_time() == 1700000000123
    assert orjson.loads(rest.depth("BTC-USDT"))["lastUpdateId"] == 7
    assert rest.exchange_info() == b"{}"
    assert rest.get("/api/v3/ticker/price", {"symbol": "ETHUSDT"}) == b"{}"
    assert server.paths == ["/api/v3/ping", "/api/v3/time",
                            "/api/v3/depth?symbol=BTCUSDT&limit=5000", "/api/v3/exchangeInfo",
                            "/api/v3/ticker/price?symbol=ETHUSDT"]
    assert len(server.connections) == 1  # five requests, one TCP connection
    assert len({port for _, _, _, port in server.requests}) == 1
    stats = rest.stats()
    assert (stats.requests, stats.responses, stats.connections, stats.retries) == (5, 5, 1, 0)


def test_usdm_uses_the_futures_paths_and_limits(server, make_rest):
    rest = make_rest(make_config(server.url, market="usdm"))
    rest.depth("ETH-USDT")
    rest.depth("ETH-USDT", limit=100)
    rest.exchange_info()
    assert server.paths == ["/fapi/v1/depth?symbol=ETHUSDT&limit=1000",
                            "/fapi/v1/depth?symbol=ETHUSDT&limit=100", "/fapi/v1/exchangeInfo"]
    with pytest.raises(ConfigError):
        rest.depth("ETH-USDT", limit=7)  # not a futures depth limit


def test_reconnects_when_the_server_closed_the_idle_connection(server, make_rest):
    server.close_after_response = True  # and says nothing: the keep-alive race
    rest = make_rest(make_config(server.url))
    for _ in range(3):
        rest.ping()
    assert len(server.paths) == 3 and len(server.connections) == 3
    stats = rest.stats()
    assert stats.connections == 3 and stats.retries == 0 and stats.reconnects >= 1


def test_depth_weights_follow_binance_tables():
    assert [depth_weight("spot", n) for n in (1, 100, 101, 500, 1000, 5000)] == [
        5, 5, 25, 25, 50, 250]
    assert [depth_weight("usdm", n) for n in (5, 50, 100, 500, 1000)] == [2, 2, 5, 10, 20]
    for market, limit in (("spot", 0), ("spot", 5001), ("usdm", 5000)):
        with pytest.raises(ConfigError):
            depth_weight(market, limit)


# -- rate limits --------------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(server, make_rest):
    server.add(429, b'{"code":-1003,"msg":"Too many requests"}', {"Retry-After": "0.3"})
    server.add(200, b'{"ok":1}')
    rest = make_rest(make_config(server.url))
    start = time.monotonic()
    assert rest.get("/api/v3/ping") == b'{"ok":1}'
    assert time.monotonic() - start >= 0.29
    times = [t for t, _, _, _ in server.requests]
    assert times[1] - times[0] >= 0.29
    stats = rest.stats()
    assert (stats.rate_limited, stats.retries, stats.requests) == (1, 1, 2)


def test_a_retry_after_longer_than_the_wait_budget_raises_rate_limited_at_once(server,
                                                                               make_rest):
    server.add(429, b'{"code":-1003,"msg":"Too many requests"}', {"Retry-After": "120"})
    rest = make_rest(make_config(server.url, rest_max_wait_s=5.0))
    start = time.monotonic()
    with pytest.raises(RateLimited) as info:
        rest.ping()
    assert time.monotonic() - start < 1.0
    assert info.value.status == 429 and info.value.retry_after_s == pytest.approx(120, abs=1)
    assert isinstance(info.value, VenueError)


def test_418_short_ban_is_waited_out(server, make_rest):
    server.add(418, b'{"code":-1003,"msg":"banned until ..."}', {"Retry-After": "0.3"})
    rest = make_rest(make_config(server.url))
    start = time.monotonic()
    rest.ping()
    assert time.monotonic() - start >= 0.29 and len(server.paths) == 2


def test_418_long_ban_blocks_every_later_request_without_sending_it(server, make_rest):
    server.add(418, b'{"code":-1003,"msg":"Way too many requests; IP banned"}',
               {"Retry-After": "3600"})
    rest = make_rest(make_config(server.url))
    with pytest.raises(RateLimited) as info:
        rest.depth("BTC-USDT")
    assert info.value.status == 418 and info.value.retry_after_s > 3500
    assert "banned" in str(info.value)
    with pytest.raises(RateLimited, match="banned"):
        rest.ping()  # the ban is remembered: nothing reaches the venue
    assert len(server.paths) == 1


def test_418_without_retry_after_waits_the_backoff_cap(server, make_rest):
    server.add(418, b"{}")
    rest = make_rest(make_config(server.url, backoff_cap_s=0.25))
    start = time.monotonic()
    rest.ping()
    assert time.monotonic() - start >= 0.24


def test_weight_header_is_tracked_and_a_used_budget_waits_for_the_next_minute(server,
                                                                              make_rest):
    server.add(200, b"{}", {WEIGHT_HEADER: "4790"})  # budget 6000 * 0.8 = 4800
    server.add(200, b"{}", {WEIGHT_HEADER: "4798"})  # other clients of the IP spent some too
    server.add(200, b"{}", {WEIGHT_HEADER: "5"})  # a new minute
    clock = OffsetClock(left_s=0.8)
    rest = make_rest(make_config(server.url), clock=clock)
    rest.ping()
    assert rest.stats().used_weight == 4790
    rest.depth("BTC-USDT", limit=100)  # weight 5: 4795 fits, no wait
    assert rest.stats().weight_waits == 0 and rest.stats().used_weight == 4798
    start = time.monotonic()
    rest.depth("BTC-USDT", limit=100)  # 4798 + 5 > 4800: waits for the minute to roll
    waited = time.monotonic() - start
    assert 0.2 <= waited < 1.5
    stats = rest.stats()
    assert stats.weight_waits == 1 and stats.used_weight == 5
    assert len(server.paths) == 3


# -- failures -----------------------------------------------------------------------------------


def test_5xx_is_retried_with_backoff_then_succeeds(server, make_rest):
    server.add(503, b'{"code":-1001,"msg":"Internal error; unable to process your request"}')
    server.add(502, b"<html>bad gateway</html>")
    server.add(200, b'{"serverTime":5}')
    rest = make_rest(make_config(server.url))
    assert rest.server_time() == 5
    times = [t for t, _, _, _ in server.requests]
    assert times[1] - times[0] >= 0.04 - 0.005 and times[2] - times[1] >= 0.08 - 0.005
    assert rest.stats().retries == 2


def test_5xx_forever_raises_venue_unavailable_after_bounded_retries(server, make_rest):
    server.default = (500, {}, b'{"code":-1000,"msg":"An unknown error occurred"}', 0.0)
    rest = make_rest(make_config(server.url, rest_max_retries=2))
    with pytest.raises(VenueUnavailable, match="HTTP 500") as info:
        rest.ping()
    assert info.value.status == 500 and info.value.code == -1000
    assert len(server.paths) == 3  # the first try and two retries


def test_other_4xx_is_rejected_at_once_with_the_venue_code(server, make_rest):
    server.add(400, b'{"code":-1121,"msg":"Invalid symbol."}')
    rest = make_rest(make_config(server.url))
    with pytest.raises(RequestRejected, match="Invalid symbol") as info:
        rest.depth("FOO-BAR")
    assert (info.value.status, info.value.code) == (400, -1121)
    assert len(server.paths) == 1


def test_timeouts_are_retried_then_raise_venue_unavailable(server, make_rest):
    server.default = (200, {}, b"{}", 0.4)  # answers after the client gave up
    rest = make_rest(make_config(server.url, rest_timeout_s=0.1, rest_max_retries=1))
    with pytest.raises(VenueUnavailable, match="timed out"):
        rest.ping()
    assert rest.stats().requests == 2 and rest.stats().connections == 2


def test_refused_connections_raise_connect_error_after_retries(make_rest):
    rest = make_rest(make_config(f"http://127.0.0.1:{free_port()}", rest_max_retries=2))
    with pytest.raises(ConnectError, match="ConnectionRefusedError"):
        rest.ping()
    assert rest.stats().requests == 3 and rest.stats().retries == 2


def test_unparsable_server_time_is_a_protocol_error(server, make_rest):
    server.add(200, b"<html>maintenance</html>")
    rest = make_rest(make_config(server.url))
    with pytest.raises(ProtocolError):
        rest.server_time()


def test_close_ends_a_wait_in_progress(server, make_rest, no_thread_leak):
    server.add(429, b"{}", {"Retry-After": "4"})
    rest = make_rest(make_config(server.url))
    closer = threading.Timer(0.2, rest.close)
    closer.start()
    start = time.monotonic()
    with pytest.raises(VenueUnavailable, match="cancelled"):
        rest.ping()
    closer.join()
    assert time.monotonic() - start < 2.0
    with pytest.raises(VenueUnavailable, match="closed"):
        rest.ping()  # closed for good


def test_a_cancel_token_ends_waits_too(server, make_rest):
    server.add(503, b"{}")
    token = CancelToken()
    token.cancel()
    rest = make_rest(make_config(server.url), cancel_token=token)
    with pytest.raises(VenueUnavailable, match="cancelled"):
        rest.ping()


# -- secrets ------------------------------------------------------------------------------------


def test_api_key_header_is_sent_but_never_logged_or_raised(server, make_rest, caplog):
    caplog.set_level(logging.DEBUG)
    echo = orjson.dumps({"code": -2014, "msg": f"API-key format invalid: {KEY} / {SECRET}"})
    server.add(503, echo)
    server.add(401, echo)
    rest = make_rest(make_config(server.url, api_key=KEY, api_secret=SECRET))
    with pytest.raises(RequestRejected) as info:
        rest.get("/api/v3/account", api_key=True)
    assert server.requests[0][2]["X-MBX-APIKEY"] == KEY  # sent where it is needed
    text = str(info.value) + repr(info.value) + repr(rest)
    assert KEY not in text and SECRET not in text and "***" in str(info.value)
    assert caplog.records  # the 503 retry was logged, redacted
    for record in caplog.records:
        assert KEY not in record.getMessage() and SECRET not in record.getMessage()


def test_api_key_requests_need_a_key(make_rest):
    rest = make_rest(make_config("http://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="MELTICA_BINANCE_API_KEY"):
        rest.get("/api/v3/account", api_key=True)
