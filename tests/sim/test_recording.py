"""Recording playback: a small recording made here (from the generated market) played back."""

import gzip
import time

import orjson
import pytest
from waiting import wait_until

from meltica_nb.errors import ConfigError
from meltica_nb.sim import GeneratedMarket, MarketConfig, RecordingFeed

from .helpers import get, recv_json, ws_client

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
KEEP = ("btcusdt@depth@100ms", "btcusdt@trade")
DEPTH_URL = "rest:https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"


def make_recording(path, polls=40, market="spot"):
    """Normalized lines as the recorder writes them; returns (lines, final book)."""
    market = GeneratedMarket(MarketConfig.fast(levels=50), market=market, seed=3)
    market.start(T0)
    lines = [{"recv_ns": T0, "stream": "event:subscribe", "raw": '{"result":null,"id":1}'}]
    for i in range(1, polls + 1):
        now = T0 + i * 10 * MS
        for stream, payload in market.poll(now)[0]:
            if stream in KEEP:
                raw = orjson.dumps({"stream": stream, "data": payload}).decode()
                lines.append({"recv_ns": now, "stream": stream, "raw": raw})
        if i == polls // 3:
            snapshot = market.depth_snapshot("BTCUSDT", 1000)
            raw = orjson.dumps(snapshot).decode()
            lines.append({"recv_ns": now, "stream": DEPTH_URL, "raw": raw})
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return lines, market.book("BTCUSDT", 20)


def test_playback_as_fast_as_possible_sends_the_exact_messages(make_sim, tmp_path):
    path = tmp_path / "rec.jsonl.gz"
    lines, final_book = make_recording(path)
    sim = make_sim(recording=path, speed=0)
    stream_lines = [line for line in lines if line["stream"] in KEEP]
    with ws_client(sim, "/stream?streams=" + "/".join(KEEP)) as ws:
        received = [ws.recv() for _ in stream_lines]
    assert received == [line["raw"] for line in stream_lines]
    wait_until(lambda: sim.stats()["feed"]["done"], what="the recorded feed to end")
    assert sim.book("BTC-USDT") == final_book
    snapshot = orjson.loads(next(line["raw"] for line in lines if line["stream"] == DEPTH_URL))
    status, _, depth = get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5")
    assert status == 200 and depth["lastUpdateId"] == snapshot["lastUpdateId"]
    assert depth["bids"] == snapshot["bids"][:5]
    info = get(sim.rest_url + "/api/v3/exchangeInfo")[2]["symbols"][0]
    assert (info["symbol"], info["baseAsset"], info["quoteAsset"]) == ("BTCUSDT", "BTC", "USDT")
    assert {f["filterType"]: f for f in info["filters"]}["PRICE_FILTER"]["tickSize"] == "0.01"


def test_playback_follows_the_recorded_times_at_the_given_speed(make_sim, tmp_path):
    path = tmp_path / "rec.jsonl"
    lines, _ = make_recording(path, polls=40)  # 400 ms of recording
    sim = make_sim(recording=path, speed=2.0)
    count = sum(line["stream"] == "btcusdt@trade" for line in lines)
    with ws_client(sim, "/ws/btcusdt@trade") as ws:
        first = recv_json(ws)
        started = time.monotonic()
        for _ in range(count - 1):
            last = recv_json(ws)
        elapsed = time.monotonic() - started
    span_s = (last["T"] - first["T"]) / 1000
    assert span_s / 2 - 0.05 <= elapsed <= span_s / 2 + 0.5
    assert sim.stats()["feed"]["market"] == "spot"


def test_a_usdm_recording_is_detected_and_served_on_fapi(make_sim, tmp_path):
    path = tmp_path / "usdm.jsonl"
    make_recording(path, polls=10, market="usdm")
    sim = make_sim(recording=path, speed=0)
    assert sim.market == "usdm"
    status, _, depth = get(sim.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    assert status == 200 and {"E", "T", "lastUpdateId"} <= set(depth) and len(depth["asks"]) == 5


def test_bad_speed_is_refused(tmp_path):
    path = tmp_path / "rec.jsonl"
    make_recording(path, polls=3)
    with pytest.raises(ConfigError):
        RecordingFeed(path, speed=-1)
