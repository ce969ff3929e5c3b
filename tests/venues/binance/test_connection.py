"""BinanceConnection against a scripted websocket server on 127.0.0.1 (real sockets).

Also the config it reads: market defaults, stream names, validation, credentials.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

import pytest
from waiting import wait_until

from meltica_nb.concurrency import TaskGroup
from meltica_nb.errors import ConfigError, ConnectError
from meltica_nb.venues.binance.config import (
    API_KEY_ENV,
    API_SECRET_ENV,
    BinanceConfig,
    Secret,
    redact,
    stream_name,
    venue_symbol,
)
from meltica_nb.venues.binance.connection import BinanceConnection
from meltica_nb.venues.ws_connection import RAW_PREFIX_BYTES
from meltica_nb.venues.ws_session import ControlPacer

from .loopback import WsServer, encode_frame, free_port, stream_frame

KEY = "KEY-4f9c1e7d0a2b"
SECRET = "SECRET-b81d55e0c3aa"


# -- helpers ------------------------------------------------------------------------------------


class Sink:
    """Collects what a connection reports, for tests to wait on."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[bytes], list[int]]] = []
        self.errors: list[tuple[str, str, bytes]] = []
        self.reconnects = 0
        self._cond = threading.Condition()

    def on_frames(self, frames, recv_ns) -> None:
        with self._cond:  # the connection refills both for its next batch: keep copies
            self.batches.append(([bytes(f) for f in frames], [int(t) for t in recv_ns]))
            self._cond.notify_all()

    def on_error(self, kind: str, detail: str, raw: bytes) -> None:
        with self._cond:
            self.errors.append((kind, detail, raw))
            self._cond.notify_all()

    def on_reconnect(self) -> None:
        with self._cond:
            self.reconnects += 1
            self._cond.notify_all()

    @property
    def frames(self) -> list[bytes]:
        with self._cond:
            return [f for batch, _ in self.batches for f in batch]

    def kinds(self) -> list[str]:
        with self._cond:
            return [k for k, _, _ in self.errors]

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        with self._cond:
            return bool(self._cond.wait_for(predicate, timeout))


def make_config(url: str, **overrides) -> BinanceConfig:
    values = dict(
        ws_url=url,
        symbols=("BTC-USDT", "ETH-USDT"),
        channels=("trade", "depth@100ms"),
        read_timeout_s=0.1,
        connect_timeout_s=2.0,
        backoff_base_s=0.05,
        backoff_cap_s=0.2,
        backoff_seed=7,
    )
    values.update(overrides)
    return BinanceConfig(**values)


def make_connection(config: BinanceConfig, sink: Sink, **kw) -> BinanceConnection:
    return BinanceConnection(config, sink.on_frames, on_reconnect=sink.on_reconnect,
                             on_error=sink.on_error, **kw)


@contextmanager
def running(conn: BinanceConnection):
    group = TaskGroup("ws-test")
    group.start(conn.run, name="binance-ws")
    try:
        yield group
    finally:
        group.stop(timeout=5)


def event(i: int, stream: str = "btcusdt@trade") -> bytes:
    return stream_frame(stream, {"e": "trade", "s": "BTCUSDT", "t": i, "p": "1.0", "q": "2"})


STREAMS = ["btcusdt@trade", "btcusdt@depth@100ms", "ethusdt@trade", "ethusdt@depth@100ms"]


@pytest.fixture
def server(no_thread_leak):
    srv = WsServer().start()
    yield srv
    srv.stop()


# -- connecting, batching -----------------------------------------------------------------------


def test_dials_combined_stream_endpoint_and_subscribes_configured_streams(server):
    sink = Sink()
    conn = make_connection(make_config(server.url), sink)
    with running(conn):
        ws = server.conn(0)
        assert server.wait_for(lambda: len(server.controls(0)) == 1)
        assert conn.url == server.url + "/stream"
        assert ws.path == "/stream"
        msg = server.controls(0)[0]
        assert msg["method"] == "SUBSCRIBE"
        assert msg["params"] == STREAMS
        assert isinstance(msg["id"], int)
        assert wait_until(lambda: conn.stats().acks == 1)
        stats = conn.stats()
        assert (stats.connects, stats.reconnects, stats.subscribe_requests) == (1, 0, 1)
        assert stats.connected and stats.streams == 4 and dict(stats.errors) == {}
    assert not conn.stats().connected
    assert ws.closed.wait(2) and ws.client_closed  # a graceful close frame on stop


def test_frames_arrive_in_order_in_batches_no_larger_than_batch_size(server):
    sink = Sink()
    conn = make_connection(make_config(server.url, batch_size=64), sink)
    with running(conn):
        ws = server.conn(0)
        payloads = [event(i) for i in range(1000)]
        ws.send_raw(b"".join(encode_frame(0x1, p) for p in payloads))  # one burst
        assert sink.wait_for(lambda: len(sink.frames) == 1000)
    assert sink.frames == payloads
    sizes = [len(b) for b, _ in sink.batches]
    assert max(sizes) == 64 and len(sizes) < 500  # batched, never above batch_size
    stamps = [t for _, ns in sink.batches for t in ns]
    assert stamps == sorted(stamps) and stamps[0] > 1_600_000_000 * 10**9
    stats = conn.stats()
    assert stats.frames == 1000 and stats.batches == len(sizes)
    assert stats.bytes == sum(map(len, payloads))
    assert stats.last_frame_ns == stamps[-1]


def test_frames_of_every_length_encoding_and_fragments_arrive_intact(server):
    sink = Sink()
    conn = make_connection(make_config(server.url), sink)
    sizes = (10, 125, 126, 4000, 65535, 70_000, 300_000)  # 7-bit, 16-bit and 64-bit lengths
    payloads = [stream_frame("btcusdt@depth", {"pad": "x" * n}) for n in sizes]
    with running(conn):
        ws = server.conn(0)
        ws.send_raw(b"".join(encode_frame(0x1, p) for p in payloads))
        fragmented = event(99)
        ws.send_raw(encode_frame(0x1, fragmented[:20], fin=False)
                    + encode_frame(0x0, fragmented[20:30], fin=False)
                    + encode_frame(0x0, fragmented[30:]))
        assert sink.wait_for(lambda: len(sink.frames) == len(payloads) + 1)
    assert sink.frames == [*payloads, fragmented]
    assert dict(conn.stats().errors) == {}


def test_text_frames_split_by_the_kernel_interleave_with_websocket_client_frames(server):
    """One burst mixing the kernel's frames (plain text) with websocket-client's (a ping, a
    fragmented message, an oversized frame): every data frame in order, the ping answered."""
    sink = Sink()
    conn = make_connection(make_config(server.url, max_frame_bytes=4096), sink)
    texts = [event(i) for i in range(6)]
    fragmented = event(99)
    big = stream_frame("btcusdt@depth", {"pad": "x" * 5000})
    burst = (encode_frame(0x1, texts[0]) + encode_frame(0x1, texts[1])
             + encode_frame(0x9, b"mid-burst") + encode_frame(0x1, texts[2])
             + encode_frame(0x1, fragmented[:15], fin=False)
             + encode_frame(0x0, fragmented[15:]) + encode_frame(0x1, texts[3])
             + encode_frame(0x1, big) + encode_frame(0x1, texts[4]) + encode_frame(0x1, texts[5]))
    with running(conn):
        ws = server.conn(0)
        assert wait_until(lambda: conn.stats().acks == 1)
        for cut in (7, 40, len(burst) // 2):  # delivered in pieces: frames cut anywhere
            ws.send_raw(burst[:cut])
            burst = burst[cut:]
            time.sleep(0.02)
        ws.send_raw(burst)
        assert sink.wait_for(lambda: len(sink.frames) == 7)
        assert server.wait_for(lambda: ws.pongs == [b"mid-burst"])
    assert sink.frames == [*texts[:3], fragmented, *texts[3:]]
    assert sink.kinds() == ["oversized"]
    assert conn.stats().reconnects == 0


def test_a_lone_frame_is_delivered_at_once_not_after_the_read_timeout(server):
    sink = Sink()
    conn = make_connection(make_config(server.url, read_timeout_s=3.0), sink)
    with running(conn):
        ws = server.conn(0)
        assert wait_until(lambda: conn.stats().acks == 1)
        start = time.monotonic()
        ws.send_text(event(1))
        assert sink.wait_for(lambda: len(sink.frames) == 1, timeout=2.0)
        assert time.monotonic() - start < 0.5
        conn.unsubscribe(["btcusdt@trade"])  # wakes the thread so stop does not wait 3 s
        assert server.wait_for(lambda: len(server.controls(0)) == 2, timeout=1.0)


def test_other_json_is_passed_on_and_replies_are_not(server):
    sink = Sink()
    conn = make_connection(make_config(server.url), sink)
    with running(conn):
        ws = server.conn(0)
        assert wait_until(lambda: conn.stats().acks == 1)
        ws.send_text(b'{"e":"outboundAccountPosition","E":1}')
        ws.send_text(b'{"result":null,"id":999999}')  # answers nothing we sent
        assert sink.wait_for(lambda: sink.frames and "unexpected_reply" in sink.kinds())
    assert sink.frames == [b'{"e":"outboundAccountPosition","E":1}']


# -- control messages ---------------------------------------------------------------------------


def test_subscriptions_are_chunked_by_100_and_paced_to_5_per_second(server):
    symbols = tuple(f"C{i}-USDT" for i in range(120))
    channels = ("trade", "aggTrade", "bookTicker", "depth@100ms", "ticker")  # 600 streams
    extra = [f"x{i}usdt@trade" for i in range(150)]
    sink = Sink()
    conn = make_connection(make_config(server.url, symbols=symbols, channels=channels), sink)
    with running(conn):
        conn.subscribe(extra)
        assert server.wait_for(lambda: len(server.control) >= 8, timeout=10)
        assert wait_until(lambda: conn.stats().acks == 8)
    times = [t for t, _, _ in server.control]
    messages = [m for _, _, m in server.control]
    assert len(messages) == 8  # 6 x 100 configured streams, then 150 more as 100 + 50
    assert all(len(m["params"]) <= 100 for m in messages)
    wanted = [stream_name(s, c) for s in symbols for c in channels] + extra
    assert [s for m in messages for s in m["params"]] == wanted
    assert len({m["id"] for m in messages}) == 8
    for i in range(len(times) - 5):  # any 6 consecutive messages span more than 1 s
        assert times[i + 5] - times[i] > 1.0, times
    assert conn.stats().subscribe_requests == 8


def test_subscribe_and_unsubscribe_from_another_thread_are_sent_and_acked(server):
    sink = Sink()
    conn = make_connection(make_config(server.url), sink)
    with running(conn):
        ws = server.conn(0)
        assert server.wait_for(lambda: len(server.controls(0)) == 1)
        conn.subscribe(["solusdt@trade", "btcusdt@trade"])  # btcusdt@trade is already wanted
        conn.unsubscribe(["ethusdt@trade", "nope@trade"])  # nope@trade was never wanted
        assert server.wait_for(lambda: len(server.controls(0)) == 3)
        assert wait_until(lambda: conn.stats().acks == 3)
        sub, unsub = server.controls(0)[1:]
        assert (sub["method"], sub["params"]) == ("SUBSCRIBE", ["solusdt@trade"])
        assert (unsub["method"], unsub["params"]) == ("UNSUBSCRIBE", ["ethusdt@trade"])
        assert ws.subscribed == {"btcusdt@trade", "btcusdt@depth@100ms", "ethusdt@depth@100ms",
                                 "solusdt@trade"}
    assert conn.streams() == ("btcusdt@trade", "btcusdt@depth@100ms", "ethusdt@depth@100ms",
                              "solusdt@trade")


def test_subscribe_rejects_bad_names_and_too_many_streams():
    conn = BinanceConnection(make_config("ws://127.0.0.1:1", max_streams_per_connection=5),
                             lambda frames, ns: None)
    with pytest.raises(ConfigError):
        conn.subscribe("btcusdt@trade")  # a string, not a list of names
    with pytest.raises(ConfigError):
        conn.subscribe(["no stream"])
    with pytest.raises(ConfigError, match="max_streams_per_connection"):
        conn.subscribe(["a@trade", "b@trade"])  # 4 configured + 2 > 5
    conn.subscribe(["a@trade"])
    assert conn.stats().streams == 5


@pytest.mark.parametrize(("server_kw", "kind"), [({"ack_error": True}, "subscribe_error"),
                                                 ({"ack": False}, "ack_timeout")])
def test_refused_subscription_and_missing_ack_are_reported(no_thread_leak, server_kw, kind):
    srv = WsServer(**server_kw).start()
    try:
        sink = Sink()
        conn = make_connection(make_config(srv.url, ack_timeout_s=0.2), sink)
        with running(conn):
            assert sink.wait_for(lambda: kind in sink.kinds())
        assert conn.stats().errors[kind] == 1
        assert conn.stats().reconnects == 0
    finally:
        srv.stop()


def test_control_pacer_never_allows_more_than_the_limit_in_a_window():
    pacer = ControlPacer(limit=5, window_s=1.0)
    sent, now = [], 0.0
    while len(sent) < 23:
        wait = pacer.wait_s(now)
        if wait == 0:
            pacer.record(now)
            sent.append(now)
        now += wait
    assert sent[:5] == [0.0] * 5  # a burst up to the limit goes at once
    assert all(sent[i + 5] - sent[i] >= 1.0 - 1e-9 for i in range(len(sent) - 5))
    assert ControlPacer.per_second(5).wait_s(0.0) == 0.0
    with pytest.raises(ConfigError):
        ControlPacer(0, 1.0)


# -- failures and reconnects --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["drop", "close"])
def test_reconnects_resubscribes_everything_and_calls_on_reconnect(server, how):
    sink = Sink()
    conn = make_connection(make_config(server.url), sink)
    with running(conn):
        first = server.conn(0)
        assert server.wait_for(lambda: len(server.controls(0)) == 1)
        conn.subscribe(["solusdt@trade"])
        conn.unsubscribe(["ethusdt@trade"])
        assert server.wait_for(lambda: len(server.controls(0)) == 3)
        first.drop() if how == "drop" else first.send_close(1001, b"going away")
        second = server.conn(1)
        assert sink.wait_for(lambda: sink.reconnects == 1)
        assert server.wait_for(lambda: len(server.controls(1)) == 1)
        assert server.subscribed_streams(1) == ["btcusdt@trade", "btcusdt@depth@100ms",
                                                "ethusdt@depth@100ms", "solusdt@trade"]
        second.send_text(event(1))
        assert sink.wait_for(lambda: len(sink.frames) == 1)
        stats = conn.stats()
        assert (stats.connects, stats.reconnects) == (2, 1)
        assert dict(stats.errors) == {"disconnect": 1}
    assert sink.kinds() == ["disconnect"]
    if how == "close":
        assert "1001" in sink.errors[0][1]


def test_failed_connects_back_off_exponentially_up_to_the_cap(no_thread_leak):
    srv = WsServer(reject_first=5).start()
    try:
        sink = Sink()
        conn = make_connection(make_config(srv.url, backoff_base_s=0.05, backoff_cap_s=0.2), sink)
        with running(conn):
            srv.conn(0, timeout=5)
            assert wait_until(lambda: conn.stats().acks == 1)
        gaps = [b - a for a, b in zip(srv.attempts, srv.attempts[1:], strict=False)]
        ceilings = [0.05, 0.1, 0.2, 0.2, 0.2]
        assert len(gaps) == 5
        for gap, ceiling in zip(gaps, ceilings, strict=True):
            assert 0.8 * ceiling - 0.01 <= gap <= ceiling + 0.15, (gaps, ceilings)
        stats = conn.stats()
        assert stats.errors["connect"] == 5 and stats.connects == 1 and stats.reconnects == 0
        assert sink.reconnects == 0  # the first successful connect is not a reconnect
    finally:
        srv.stop()


def test_gives_up_with_connect_error_after_max_connect_attempts(no_thread_leak):
    sink = Sink()
    config = make_config(f"ws://127.0.0.1:{free_port()}", max_connect_attempts=3,
                         api_key=KEY, api_secret=SECRET)
    conn = make_connection(config, sink)
    group = TaskGroup("ws-test")
    group.start(conn.run, name="binance-ws")
    with pytest.raises(ConnectError, match="3 consecutive connect attempts failed") as info:
        group.join(timeout=5)
    assert sink.kinds() == ["connect"] * 3
    assert KEY not in str(info.value) and SECRET not in str(info.value)


def test_a_read_timeout_never_drops_the_connection_even_mid_frame(server):
    sink = Sink()
    conn = make_connection(make_config(server.url, read_timeout_s=0.05), sink)
    with running(conn):
        ws = server.conn(0)
        assert wait_until(lambda: conn.stats().acks == 1)
        time.sleep(0.4)  # silence: 8 read timeouts
        frame = encode_frame(0x1, event(1) + b" " * 300)
        ws.send_raw(frame[:7])  # header and a few payload bytes
        time.sleep(0.3)  # the client times out with a partial frame buffered
        ws.send_raw(frame[7:] + encode_frame(0x1, event(2)))
        assert sink.wait_for(lambda: len(sink.frames) == 2)
    assert sink.frames == [event(1) + b" " * 300, event(2)]
    stats = conn.stats()
    assert (stats.connects, stats.reconnects, dict(stats.errors)) == (1, 0, {})


def test_oversized_binary_and_garbage_frames_are_counted_not_fatal(server):
    sink = Sink()
    conn = make_connection(make_config(server.url, max_frame_bytes=1024), sink)
    with running(conn):
        ws = server.conn(0)
        assert wait_until(lambda: conn.stats().acks == 1)
        big = stream_frame("btcusdt@depth@100ms", {"b": [["1.0", "2.0"]] * 500})
        ws.send_text(big)
        ws.send_binary(b"\x00\x01binary")
        ws.send_text(b"not json at all")
        ws.send_text(event(1))
        assert sink.wait_for(lambda: len(sink.frames) == 1)
    assert sink.frames == [event(1)]
    assert sink.kinds() == ["oversized", "binary", "protocol"]
    kind, detail, raw = sink.errors[0]
    assert str(len(big)) in detail and raw == big[:RAW_PREFIX_BYTES]
    assert sink.errors[1][2] == b"\x00\x01binary"
    stats = conn.stats()
    assert dict(stats.errors) == {"oversized": 1, "binary": 1, "protocol": 1}
    assert stats.reconnects == 0


def test_a_frame_announcing_a_huge_length_is_not_read_and_the_link_is_replaced(server):
    sink = Sink()
    conn = make_connection(make_config(server.url, max_frame_bytes=1024), sink)
    with running(conn):
        ws = server.conn(0)
        ws.send_raw(bytes([0x81, 127]) + (1 << 40).to_bytes(8, "big") + b"x" * 100)
        server.conn(1).send_text(event(1))
        assert sink.wait_for(lambda: len(sink.frames) == 1)
    assert sink.kinds() == ["protocol"] and "hard limit" in sink.errors[0][1]
    assert sink.reconnects == 1


def test_proactive_reconnect_replaces_the_connection_before_its_age_limit(server):
    sink = Sink()
    conn = make_connection(make_config(server.url, proactive_reconnect_s=0.4), sink)
    with running(conn):
        server.conn(2, timeout=5)
        assert sink.wait_for(lambda: sink.reconnects >= 2)
        assert server.wait_for(lambda: len(server.controls(2)) == 1)
    first, second = server.conns[0], server.conns[1]
    assert first.closed.wait(2) and first.client_closed  # closed gracefully by the client
    assert 0.35 <= second.opened - first.opened <= 1.0
    for i in (0, 1, 2):
        assert server.subscribed_streams(i) == STREAMS
    assert conn.stats().reconnects >= 2
    assert "dead" not in sink.kinds() and "disconnect" not in sink.kinds()


# -- ping / pong --------------------------------------------------------------------------------


def test_server_pings_are_answered_with_the_same_payload(server):
    sink = Sink()
    conn = make_connection(make_config(server.url), sink)
    with running(conn):
        ws = server.conn(0)
        ws.send_ping(b"are-you-there")
        assert server.wait_for(lambda: ws.pongs == [b"are-you-there"])


def test_pings_when_idle_and_stays_connected_while_pongs_come_back(server):
    sink = Sink()
    config = make_config(server.url, ping_interval_s=0.15, pong_timeout_s=0.3)
    conn = make_connection(config, sink)
    with running(conn):
        ws = server.conn(0)
        assert server.wait_for(lambda: len(ws.pings) >= 3, timeout=3)
    stats = conn.stats()
    assert stats.pings >= 3 and stats.reconnects == 0 and dict(stats.errors) == {}


def test_a_connection_without_data_or_pong_is_declared_dead_and_replaced(no_thread_leak):
    srv = WsServer(answer_pings=False).start()
    try:
        sink = Sink()
        config = make_config(srv.url, ping_interval_s=0.1, pong_timeout_s=0.2)
        conn = make_connection(config, sink)
        with running(conn):
            srv.conn(1, timeout=5)
            assert sink.wait_for(lambda: sink.reconnects >= 1)
        assert srv.conns[0].pings  # it did ask
        assert conn.stats().errors["dead"] >= 1
    finally:
        srv.stop()


# -- secrets ------------------------------------------------------------------------------------


def test_secrets_stay_out_of_reprs_logs_and_error_reports(server, caplog):
    caplog.set_level(logging.DEBUG)
    config = make_config(server.url, api_key=KEY, api_secret=SECRET)
    errors: list[tuple[str, str, bytes]] = []
    conn = BinanceConnection(config, lambda f, n: None,
                             on_error=lambda k, d, r: errors.append((k, d, r)))
    for text in (repr(config), str(config), repr(conn), f"{config.api_key}", str(config.api_key)):
        assert KEY not in text and SECRET not in text
    with running(conn):
        ws = server.conn(0)
        ws.send_text(f"oops {KEY} and {SECRET}".encode())  # a venue echoing a credential
        ws.send_binary(f"{SECRET}".encode())
        assert wait_until(lambda: len(errors) == 2)
    assert [k for k, _, _ in errors] == ["protocol", "binary"]
    for _, detail, raw in errors:
        assert KEY not in detail and SECRET not in detail
        assert KEY.encode() not in raw and SECRET.encode() not in raw
    assert errors[0][2] == b"oops *** and ***"
    # the default on_error logs; nothing logged may carry a credential
    default = BinanceConnection(make_config(f"ws://127.0.0.1:{free_port()}", api_key=KEY,
                                            max_connect_attempts=1), lambda f, n: None)
    with pytest.raises(ConnectError), TaskGroup("ws-test") as group:
        group.start(default.run)
    assert any(r.name.startswith("meltica_nb.venues.binance") for r in caplog.records)
    for record in caplog.records:
        assert KEY not in record.getMessage() and SECRET not in record.getMessage()


# -- config -------------------------------------------------------------------------------------


def test_config_fills_market_defaults():
    spot, usdm = BinanceConfig(), BinanceConfig(market="usdm")
    assert spot.ws_url == "wss://stream.binance.com:9443"
    assert spot.rest_url == "https://api.binance.com"
    assert usdm.ws_url == "wss://fstream.binance.com"
    assert usdm.rest_url == "https://fapi.binance.com"
    assert (spot.snapshot_limit, usdm.snapshot_limit) == (5000, 1000)
    assert (spot.rest_weight_limit_1m, usdm.rest_weight_limit_1m) == (6000, 2400)
    assert spot.max_streams_per_request == 100 and spot.control_rate_per_s == 5
    assert (spot.backoff_base_s, spot.backoff_cap_s) == (0.5, 30.0)
    assert spot.proactive_reconnect_s == 23.5 * 3600 and spot.refresh_interval_s == 60
    assert spot.max_frame_bytes == 1 << 20
    custom = BinanceConfig(ws_url="ws://127.0.0.1:9/", snapshot_limit=100)
    assert custom.ws_url == "ws://127.0.0.1:9" and custom.snapshot_limit == 100


def test_stream_names_and_symbols():
    assert stream_name("BTC-USDT", "depth@100ms") == "btcusdt@depth@100ms"
    assert stream_name("ETH-BTC", "bookTicker") == "ethbtc@bookTicker"
    assert stream_name("BTC-USDT", "kline_1m") == "btcusdt@kline_1m"
    assert venue_symbol("BTC-USDT") == "BTCUSDT"
    config = BinanceConfig(symbols=["BTC-USDT", "ETH-USDT"], channels=["trade", "depth"])
    assert config.symbols == ("BTC-USDT", "ETH-USDT")
    assert config.streams() == ("btcusdt@trade", "btcusdt@depth", "ethusdt@trade",
                                "ethusdt@depth")
    for bad in ("btcusdt", "BTCUSDT", "btc-usdt", "BTC/USDT"):
        with pytest.raises(ConfigError):
            venue_symbol(bad)
    with pytest.raises(ConfigError):
        stream_name("BTC-USDT", "depth@7ms")


@pytest.mark.parametrize("values", [
    {"market": "coinm"},
    {"channels": ("depth@0ms",)},  # futures only
    {"market": "usdm", "channels": ("depth@0ms",), "snapshot_limit": 5000},
    {"ws_url": "https://stream.binance.com"},
    {"rest_url": "wss://api.binance.com"},
    {"read_timeout_s": 0},
    {"batch_size": 0},
    {"rest_weight_fraction": 1.5},
    {"backoff_base_s": 5.0, "backoff_cap_s": 1.0},
    {"rest_max_retries": -1},
    {"symbols": ("btcusdt",)},
    {"symbols": tuple(f"C{i}-USDT" for i in range(300)), "market": "usdm"},  # > 200 streams
    {"api_key": 42},
])
def test_config_rejects_invalid_values(values):
    with pytest.raises(ConfigError):
        BinanceConfig(**values)


def test_config_is_frozen_and_usdm_accepts_depth_0ms():
    config = BinanceConfig(market="usdm", symbols=("BTC-USDT",), channels=("depth@0ms",))
    assert config.streams() == ("btcusdt@depth@0ms",)
    with pytest.raises(AttributeError):
        config.market = "spot"


def test_credentials_from_environment_or_files(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}\n")
    config = BinanceConfig.from_env(
        {API_KEY_ENV + "_FILE": str(key_file), API_SECRET_ENV: SECRET}, market="usdm")
    assert config.market == "usdm"
    assert config.api_key.reveal() == KEY and config.api_secret.reveal() == SECRET
    assert KEY not in repr(config) and SECRET not in repr(config)
    assert "Secret('***')" in repr(config)
    assert BinanceConfig.from_env({}).api_key is None
    explicit = BinanceConfig.from_env({API_KEY_ENV: "from-env"}, api_key="given")
    assert explicit.api_key == Secret("given")
    with pytest.raises(ConfigError, match="cannot read") as info:
        BinanceConfig.from_env({API_SECRET_ENV + "_FILE": str(tmp_path / "missing")})
    assert SECRET not in str(info.value)


def test_secret_and_redact():
    secret = Secret(KEY)
    assert repr(secret) == "Secret('***')" and str(secret) == "***" and f"{secret}" == "***"
    assert secret == Secret(KEY) and secret != Secret(SECRET) and hash(secret) == hash(Secret(KEY))
    assert redact(f"key={KEY}&x={KEY}", [secret, None]) == "key=***&x=***"
    with pytest.raises(ConfigError):
        Secret("  ")

