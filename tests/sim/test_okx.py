"""The simulator's OKX protocol over real sockets: acks, errors, ping, books with checksums."""

from __future__ import annotations

import zlib

import orjson
import pytest

from meltica_nb.sim.okx import WS_PATH, checksum, okx_text
from tests.sim.helpers import get, recv_json, send_json, ws_client

BOOKS = {"channel": "books", "instId": "BTC-USDT"}


def _until(ws, predicate, limit=5000):
    for _ in range(limit):
        msg = recv_json(ws)
        if predicate(msg):
            return msg
    raise AssertionError("message not seen")


def _book_pushes(ws, n):
    """The next ``n`` books pushes (after the ack), as parsed JSON."""
    return [_until(ws, lambda m: m.get("arg") == BOOKS and "data" in m) for _ in range(n)]


def _apply(book, data):
    for key in ("bids", "asks"):
        for px, sz, *_ in data[key]:
            if sz == "0":
                book[key].pop(px, None)
            else:
                book[key][px] = sz


def _ours(book):
    bids = sorted(book["bids"].items(), key=lambda kv: -float(kv[0]))
    asks = sorted(book["asks"].items(), key=lambda kv: float(kv[0]))
    return checksum([list(b) for b in bids], [list(a) for a in asks])


def test_published_vector_and_okx_text():
    assert checksum([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]]) == (
        -1881014294)
    assert okx_text("61837.60000000") == "61837.6" and okx_text("0.00000000") == "0"
    assert zlib.crc32(b"3366.1:7:3366.8:9:3368:8:3372:8") == 831078360


def test_books_snapshot_then_chained_updates_with_valid_checksums(make_sim):
    sim = make_sim(venue="okx", seed=3)
    with ws_client(sim, WS_PATH) as ws:
        send_json(ws, {"op": "subscribe", "args": [BOOKS]})
        ack = recv_json(ws)
        assert ack["event"] == "subscribe" and ack["arg"] == BOOKS
        pushes = _book_pushes(ws, 30)
    assert pushes[0]["action"] == "snapshot" and pushes[0]["data"][0]["prevSeqId"] == -1
    book = {"bids": {}, "asks": {}}
    seq = None
    for push in pushes:
        data = push["data"][0]
        assert seq is None or data["prevSeqId"] == seq
        seq = data["seqId"]
        _apply(book, data)
        assert _ours(book) == data["checksum"]
    assert all(p["action"] == "update" for p in pushes[1:])


def test_other_channels_ping_and_errors(make_sim):
    sim = make_sim(venue="okx", seed=4)
    args = [{"channel": c, "instId": "ETH-USDT"} for c in ("trades", "bbo-tbt", "tickers",
                                                            "books5")]
    with ws_client(sim, WS_PATH) as ws:
        send_json(ws, {"op": "subscribe", "args": args})
        seen = set()
        while len(seen) < 4:
            msg = recv_json(ws)
            if "data" in msg:
                seen.add(msg["arg"]["channel"])
        ws.send("ping")
        assert _pong(ws)
        send_json(ws, {"op": "subscribe", "args": [{"channel": "books", "instId": "XXX-YYY"}]})
        error = _until(ws, lambda m: m.get("event") == "error")
        assert error["code"] == "60018"
        ws.send("{not json")
        assert _until(ws, lambda m: m.get("event") == "error")["code"] == "60012"
        send_json(ws, {"op": "unsubscribe", "args": args[:1]})
        assert _until(ws, lambda m: m.get("event") == "unsubscribe")["arg"] == args[0]


def _pong(ws, limit=5000):
    """Read raw frames until the text ``pong``."""
    return any(ws.recv() == "pong" for _ in range(limit))


def test_wrong_path_is_404(make_sim):
    sim = make_sim(venue="okx")
    with pytest.raises(Exception, match="404"), ws_client(sim, "/ws/btcusdt@trade"):
        pass


def test_corrupt_fault_breaks_the_checksum(make_sim):
    sim = make_sim(venue="okx", seed=5, faults="corrupt=0.3")
    with ws_client(sim, WS_PATH) as ws:
        send_json(ws, {"op": "subscribe", "args": [BOOKS]})
        pushes = _book_pushes(ws, 20)
    book = {"bids": {}, "asks": {}}
    failed = 0
    for push in pushes:
        _apply(book, push["data"][0])
        failed += _ours(book) != push["data"][0]["checksum"]
    assert failed >= 1 and sim.stats()["faults"]["corrupt"] >= 1


def test_rest_instruments(make_sim):
    sim = make_sim(venue="okx")
    status, _, body = get(sim.rest_url + "/api/v5/public/instruments?instType=SPOT")
    assert status == 200 and body["code"] == "0"
    assert {d["instId"] for d in body["data"]} == {"BTC-USDT", "ETH-USDT"}
    assert body["data"][0]["tickSz"] == "0.01"
    status, _, body = get(sim.rest_url + "/api/v5/public/instruments?instType=SPOT&"
                          "instId=ETH-USDT")
    assert [d["instId"] for d in body["data"]] == ["ETH-USDT"]
    for other in ("MARGIN", "SWAP", "FUTURES", "OPTION&uly=BTC-USD"):
        # the types a spot exchange has nothing of: an empty list, as OKX answers (cryptofeed
        # asks for all of them before it subscribes)
        status, _, body = get(sim.rest_url + f"/api/v5/public/instruments?instType={other}")
        assert (status, body["code"], body["data"]) == (200, "0", [])
    for bad in ("PERP", "OPTION"):  # unknown type; OPTION needs an underlying
        status, _, body = get(sim.rest_url + f"/api/v5/public/instruments?instType={bad}")
        assert status == 400 and body["code"] == "51000" and body["data"] == []


def test_meltica_sim_venue_okx(capsys, no_thread_leak):
    from meltica_nb import cli

    assert cli.main(["sim", "--venue", "okx", "--fast", "--json", "--duration", "0.3"]) == 0
    urls = orjson.loads(capsys.readouterr().out)
    assert urls["ws_url"].startswith("ws://127.0.0.1:") and urls["market"] == "spot"


def test_okx_plays_the_generated_market_only():
    from meltica_nb.errors import ConfigError
    from meltica_nb.sim.server import ExchangeSimulator

    with pytest.raises(ConfigError, match="generated market only"):
        ExchangeSimulator(recording="x.jsonl", venue="okx")
    with pytest.raises(ConfigError, match="binance, okx or kraken"):
        ExchangeSimulator(venue="kraken-ish")
