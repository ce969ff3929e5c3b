"""Protocol logic without sockets: stream paths, control messages, fault specs and draws."""

import orjson
import pytest

from meltica_nb.errors import ConfigError
from meltica_nb.sim.binance import Subscriptions, handle_control, parse_ws_path, valid_stream
from meltica_nb.sim.faults import FaultInjector, FaultSpec, malformed_frame, oversized_payload
from meltica_nb.sim.market import stream_kinds

KINDS = stream_kinds("spot")


def is_valid(name):
    return valid_stream(name, KINDS)


def control(message, subs=None):
    subs = subs if subs is not None else Subscriptions()
    return handle_control(message, subs, is_valid, max_streams=3).response


@pytest.mark.parametrize(("path", "expected"), [
    ("/ws/btcusdt@trade", (["btcusdt@trade"], False)),
    ("/ws/btcusdt@trade/ethusdt@trade", (["btcusdt@trade", "ethusdt@trade"], False)),
    ("/ws", ([], False)),
    ("/stream?streams=btcusdt@depth@100ms/btcusdt@trade", (
        ["btcusdt@depth@100ms", "btcusdt@trade"], True)),
    ("/stream", ([], True)),
    ("/market/stream?streams=btcusdt@trade", (["btcusdt@trade"], True)),
    ("/api/v3/ping", None),
])
def test_websocket_paths(path, expected):
    assert parse_ws_path(path) == expected


def test_stream_names():
    for name in ("btcusdt@depth@100ms", "btcusdt@depth", "ethusdt@aggTrade", "x@kline_5m",
                 "btcusdt@depth20@100ms", "btcusdt@bookTicker", "btcusdt@ticker"):
        assert is_valid(name), name
    for name in ("BTCUSDT@trade", "btcusdt", "btcusdt@nope", "btcusdt@depth@0ms", 5, "@trade"):
        assert not is_valid(name), name
    assert valid_stream("btcusdt@depth@0ms", stream_kinds("usdm"))


def test_subscribe_unsubscribe_list_and_properties():
    subs = Subscriptions()
    assert control('{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@trade"],"id":1}',
                   subs) == {"result": None, "id": 1}
    assert control('{"method":"LIST_SUBSCRIPTIONS","id":2}', subs) == {
        "result": ["btcusdt@trade"], "id": 2}
    assert control('{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":3}', subs)[
        "result"] is None
    assert subs.names() == []
    reply = control('{"method":"GET_PROPERTY","params":["combined"],"id":4}', subs)
    assert reply == {"result": False, "id": 4}
    assert control('{"method":"SET_PROPERTY","params":["combined",true],"id":5}', subs)[
        "result"] is None
    assert subs.combined is True


@pytest.mark.parametrize(("message", "code"), [
    ("not json", 3),
    ('{"params":[]}', 2),
    ('{"method":"FLY","id":1}', 2),
    ('{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":1}', 2),
    ('{"method":"SUBSCRIBE","params":[1],"id":1}', 2),
    ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":1}', 2),
    ('{"method":"SUBSCRIBE","params":[],"id":-1}', 2),
    ('{"method":"SET_PROPERTY","params":["colour",true],"id":1}', 0),
    ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}', 1),
    ('{"method":"SUBSCRIBE","params":["a@trade","b@trade","c@trade","d@trade"],"id":9}', 2),
])
def test_errors_like_binance(message, code):
    reply = control(message)
    assert reply["error"]["code"] == code
    assert set(reply) == {"error", "id"} and set(reply["error"]) == {"code", "msg"}


def test_fault_spec_parsing():
    spec = FaultSpec.parse("drop=0.01,dup=0.01,reorder=0.01,disconnect=0.001,stall=0.001:2s,"
                           "malformed=0.005,oversized=0.001,rest429=0.1,rest5xx=0.05")
    assert spec.rate("drop") == 0.01 and spec.stall_s == 2.0
    assert spec.oversized_bytes == 2 * 1024 * 1024 and spec.active
    assert FaultSpec.parse(str(spec)) == spec
    assert FaultSpec.parse("stall=0.5:50ms,oversized=1:64kb").stall_s == pytest.approx(0.05)
    assert FaultSpec.parse("oversized=1:64kb").oversized_bytes == 65536
    assert not FaultSpec.parse(None).active and not FaultSpec.parse("").active
    for bad in ("nope=0.1", "drop", "drop=x", "drop=2", "stall=0.1:soon"):
        with pytest.raises(ConfigError):
            FaultSpec.parse(bad)


def test_fault_draws_are_deterministic_per_seed_and_connection():
    spec = "drop=0.1,dup=0.1,reorder=0.1,malformed=0.1,stall=0.05,oversized=0.05,disconnect=0.01"

    def draws(seed, conn):
        faults = FaultInjector(spec, seed).connection(conn)
        return [faults.plan() for _ in range(500)]

    assert draws(1, 1) == draws(1, 1)
    assert draws(1, 1) != draws(2, 1)
    assert draws(1, 1) != draws(1, 2)
    rest = FaultInjector("rest429=0.3,rest5xx=0.3", 4)
    codes = [rest.rest() for _ in range(100)]
    again = FaultInjector("rest429=0.3,rest5xx=0.3", 4)
    assert codes == [again.rest() for _ in range(100)]
    assert {429, None} <= set(codes) and set(codes) & {500, 502, 503}
    assert rest.counts["rest429"] == codes.count(429)


def test_malformed_and_oversized_frames():
    frame = b'{"stream":"btcusdt@trade","data":{"e":"trade"}}'
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(malformed_frame(frame))
    big = oversized_payload(2 * 1024 * 1024)
    assert len(big) == 2 * 1024 * 1024 and orjson.loads(big)["e"] == "simOversized"
