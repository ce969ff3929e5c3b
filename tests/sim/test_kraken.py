"""The simulator's Kraken protocol over real sockets: v1 and v2 websockets, REST AssetPairs.

A plain websocket-client (no engine code) subscribes and rebuilds the book by Kraken's rules
in Python (dicts, truncation, ``zlib.crc32``): every checksum the simulator sends must match,
and the rebuilt book must equal the simulator's once the market is paused.
"""

from __future__ import annotations

import time
import zlib
from decimal import Decimal

import pytest
import websocket

from meltica_nb.sim.kraken_market import checksum_of
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import main

from .helpers import get, recv_json, send_json, ws_client

FAST = MarketConfig.fast(updates_per_s=30.0)


@pytest.fixture
def kraken(make_sim):
    return make_sim(venue="kraken", config=FAST, seed=4)


def recv_until(ws, predicate, limit: int = 5000):
    for _ in range(limit):
        msg = recv_json(ws)
        if predicate(msg):
            return msg
    raise AssertionError("no such message")


class PyBook:
    """Kraken's book rules in plain Python: the oracle for the simulator's messages."""

    def __init__(self, depth: int) -> None:
        self.depth, self.bids, self.asks = depth, {}, {}

    def apply(self, side: dict, entries) -> None:
        for price, qty, *_ in entries:
            if Decimal(qty) == 0:
                side.pop(price, None)
            else:
                side[price] = qty

    def truncate(self) -> None:
        for side, best_first in ((self.bids, True), (self.asks, False)):
            keep = sorted(side, key=Decimal, reverse=best_first)[: self.depth]
            for price in set(side) - set(keep):
                del side[price]

    def ordered(self):
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        return asks, bids

    def checksum(self) -> int:
        return checksum_of(*self.ordered())


def v1_book_messages(ws, book: PyBook, seconds: float, republished: list | None = None) -> int:
    """Apply v1 book frames for ``seconds``; every checksum must match; return how many.
    Entries flagged ``"r"`` (republished) are appended to ``republished``."""
    checked = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = recv_json(ws)
        if not isinstance(msg, list) or not msg[-2].startswith("book-"):
            continue
        for part in msg[1:-2]:
            for key, side in (("as", book.asks), ("a", book.asks), ("bs", book.bids),
                              ("b", book.bids)):
                book.apply(side, part.get(key, []))
                if republished is not None:
                    republished.extend(e for e in part.get(key, []) if e[3:] == ["r"])
        book.truncate()
        if "c" in msg[-3]:
            assert int(msg[-3]["c"]) == book.checksum()
            checked += 1
    return checked


def test_v1_subscribe_ack_snapshot_updates_and_checksums(kraken):
    with ws_client(kraken, "/") as ws:
        assert recv_json(ws)["event"] == "systemStatus"
        send_json(ws, {"event": "subscribe", "pair": ["XBT/USD"],
                       "subscription": {"name": "book", "depth": 10}, "reqid": 5})
        ack = recv_until(ws, lambda m: isinstance(m, dict) and m.get("event") ==
                         "subscriptionStatus")
        assert (ack["status"], ack["reqid"], ack["channelName"]) == ("subscribed", 5, "book-10")
        snap = recv_json(ws)
        assert snap[-2:] == ["book-10", "XBT/USD"] and len(snap[1]["as"]) == 10
        book = PyBook(10)
        book.apply(book.asks, snap[1]["as"])
        book.apply(book.bids, snap[1]["bs"])
        republished: list = []
        assert v1_book_messages(ws, book, 1.5, republished) >= 5
        assert republished  # levels that entered the top 10 from below
        kraken.pause()
        time.sleep(0.1)
        v1_book_messages(ws, book, 0.3)
        top = kraken.book("XBT/USD", 10)
        asks, bids = book.ordered()
        assert [list(a) for a in asks] == top["asks"] and [list(b) for b in bids] == top["bids"]


def test_v2_subscribe_snapshot_checksum_ping_and_trades(kraken):
    with ws_client(kraken, "/v2") as ws:
        assert recv_json(ws)["channel"] == "status"
        send_json(ws, {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"],
                                                         "depth": 25}, "req_id": 9})
        ack = recv_until(ws, lambda m: m.get("method") == "subscribe")
        assert ack["success"] and ack["req_id"] == 9 and ack["result"]["depth"] == 25
        snap = recv_json(ws)
        assert snap["type"] == "snapshot"
        data = snap["data"][0]
        text = [(f"{lv['price']:.1f}", f"{lv['qty']:.8f}") for lv in data["asks"]]
        bids = [(f"{lv['price']:.1f}", f"{lv['qty']:.8f}") for lv in data["bids"]]
        assert len(text) == 25 and data["checksum"] == checksum_of(text, bids)
        send_json(ws, {"method": "ping", "req_id": 10})
        assert recv_until(ws, lambda m: m.get("method") == "pong")["req_id"] == 10
        send_json(ws, {"method": "subscribe", "params": {"channel": "trade",
                                                         "symbol": ["BTC/USD"]}})
        trade = recv_until(ws, lambda m: m.get("channel") == "trade")
        assert trade["data"][0]["side"] in ("buy", "sell") and trade["data"][0]["qty"] > 0


@pytest.mark.parametrize(("request_body", "error"), [
    ({"event": "subscribe", "pair": ["BTC/USD"], "subscription": {"name": "book"}},
     "Currency pair not supported"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "book", "depth": 7}},
     "depth not supported"),
    ({"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "spread"}},
     "Subscription name invalid"),
])
def test_v1_refusals(kraken, request_body, error):
    with ws_client(kraken, "/v1") as ws:
        send_json(ws, request_body)
        ack = recv_until(ws, lambda m: m.get("event") == "subscriptionStatus")
        assert ack["status"] == "error" and error in ack["errorMessage"]
        ws.send("{not json")
        assert recv_until(ws, lambda m: m.get("event") == "error")["status"] == "error"


def test_heartbeats_and_unknown_paths(kraken):
    with ws_client(kraken, "/v2") as ws:
        assert recv_until(ws, lambda m: m.get("channel") == "heartbeat", 5)
    with pytest.raises(websocket.WebSocketBadStatusException, match="404"), \
            ws_client(kraken, "/ws/btcusdt@trade"):
        pass


def test_checksum_fault_corrupts_a_level_not_the_checksum(make_sim):
    sim = make_sim(venue="kraken", config=FAST, seed=2, faults="corrupt=0.5")
    with ws_client(sim, "/") as ws:
        send_json(ws, {"event": "subscribe", "pair": ["ETH/USD"],
                       "subscription": {"name": "book", "depth": 10}})
        snap = recv_until(ws, lambda m: isinstance(m, list))
        book = PyBook(10)
        book.apply(book.asks, snap[1]["as"])
        book.apply(book.bids, snap[1]["bs"])
        with pytest.raises(AssertionError):
            v1_book_messages(ws, book, 2.0)
    assert sim.stats()["faults"]["corrupt"] >= 1


def test_rest_asset_pairs_and_time(kraken):
    status, _, body = get(kraken.rest_url + "/0/public/AssetPairs")
    assert status == 200 and body["error"] == []
    xbt = body["result"]["XXBTZUSD"]
    assert (xbt["wsname"], xbt["pair_decimals"], xbt["lot_decimals"]) == ("XBT/USD", 1, 8)
    status, _, body = get(kraken.rest_url + "/0/public/AssetPairs?pair=NOPE")
    assert status == 200 and body["error"] == ["EQuery:Unknown asset pair"]
    assert get(kraken.rest_url + "/0/public/Time")[2]["result"]["unixtime"] > 1_600_000_000
    assert get(kraken.rest_url + "/0/private/Balance")[0] == 404


def test_sim_command_runs_kraken(capsys):
    assert main(["--venue", "kraken", "--duration", "0.3", "--json", "--fast"]) == 0
    assert '"ws_url":"ws://127.0.0.1:' in capsys.readouterr().out


def test_oracle_checksum_is_zlib_of_the_stripped_text():
    assert checksum_of([("0.05005", "0.00000500")], []) == zlib.crc32(b"5005500")
