"""The tuned (or naive) pure-Python live pipeline: a websocket reader, dict books, consumer threads.

One reader thread with websocket-client (``skip_utf8_validation=True``, ``recv_data()``, no
multithread lock) decodes each frame (``orjson.loads`` tuned, ``json.loads`` naive), builds one
object per message (floats for prices), keeps a dict book per symbol (REST snapshot,
continuity check, sorted top 20 and BBO after each diff) and puts every object into one queue
per consumer thread (``queue.SimpleQueue`` tuned, ``queue.Queue`` naive), shared by all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.request import urlopen

import orjson
import websocket

from bench.baselines.styles import TUNED, Style
from meltica_nb.venues.binance.config import stream_name, venue_symbol

__all__ = ["Gate", "PyBbo", "PyPipeline", "PyTally", "PyTrade"]

#: Levels per side the pure-Python book publishes (the engine's BookTable keeps 20 too).
TOP = 20


class Gate:
    """Whether the measuring window is open (read by every handler)."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = False



class PyTally:
    """One Python consumer thread: count, stamp, keep latencies in the window."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.count = 0
        self.last_entry = 0
        self.samples: list[int] = []

    def run(self, q) -> None:
        get, now, gate, samples = q.get, time.time_ns, self.gate, self.samples
        count = 0
        while True:
            obj = get()
            t = now()
            if obj is None:
                break
            count += 1
            self.count = count
            self.last_entry = t
            if gate.open:
                samples.append(t - obj.recv_ns)



# -- Python pipeline ----------------------------------------------------------------------------

@dataclass(slots=True)
class PyTrade:
    """A trade as the Python pipelines keep it (prices as float, or Decimal in bench_parse)."""

    symbol: str
    trade_id: int
    price: float
    qty: float
    trade_ms: int
    buyer_maker: bool
    recv_ns: int


@dataclass(slots=True)
class PyBbo:
    """A best bid/offer as the Python pipelines keep it."""

    symbol: str
    update_id: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    recv_ns: int


@dataclass(slots=True)
class PyBookTop:
    symbol: str
    update_id: int
    bids: list
    asks: list
    recv_ns: int


class PyBook:
    """A dict book following Binance's spot procedure, snapshots fetched on a helper thread."""

    def __init__(self, symbol: str, rest_url: str) -> None:
        self.symbol = symbol
        self.url = f"{rest_url}/api/v3/depth?symbol={symbol}&limit=1000"
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.book_id = -1  # waiting for a snapshot
        self.buffer: list[dict] = []
        self.fetched: dict | None = None
        self.fetching = False
        self.bbo: tuple | None = None
        self.snapshots = self.gaps = 0

    def on_diff(self, d: dict, recv_ns: int) -> list:
        if self.book_id < 0:
            self.buffer.append(d)
            if self.fetched is not None:
                return self._load(recv_ns)
            if not self.fetching:
                self._fetch_async()
            return []
        if d["u"] <= self.book_id:
            return []
        if d["U"] > self.book_id + 1:  # a gap: back to step 1
            self.gaps += 1
            self.book_id, self.buffer = -1, [d]
            self._fetch_async()
            return []
        self._apply(d)
        return self._publish(recv_ns)

    def _fetch_async(self) -> None:
        self.fetching = True
        threading.Thread(target=self._fetch, daemon=True).start()

    def _fetch(self) -> None:
        with urlopen(self.url, timeout=10) as response:
            self.fetched = orjson.loads(response.read())

    def _load(self, recv_ns: int) -> list:
        snap, self.fetched, self.fetching = self.fetched, None, False
        last = snap["lastUpdateId"]
        if self.buffer[0]["U"] > last + 1:  # older than what we buffered: fetch again
            self._fetch_async()
            return []
        self.bids = {float(p): float(q) for p, q in snap["bids"] if float(q)}
        self.asks = {float(p): float(q) for p, q in snap["asks"] if float(q)}
        self.book_id = last
        self.snapshots += 1
        buffered, self.buffer = self.buffer, []
        for d in buffered:
            if d["u"] > self.book_id:
                self._apply(d)
        return self._publish(recv_ns)

    def _apply(self, d: dict) -> None:
        for side, levels in ((self.bids, d["b"]), (self.asks, d["a"])):
            for p, q in levels:
                qty = float(q)
                if qty:
                    side[float(p)] = qty
                else:
                    side.pop(float(p), None)
        self.book_id = d["u"]

    def _publish(self, recv_ns: int) -> list:
        bids, asks = self.bids, self.asks
        top_b = sorted(bids, reverse=True)[:TOP]
        top_a = sorted(asks)[:TOP]
        out: list = [PyBookTop(self.symbol, self.book_id, [(p, bids[p]) for p in top_b],
                               [(p, asks[p]) for p in top_a], recv_ns)]
        if top_b and top_a:
            bbo = (top_b[0], bids[top_b[0]], top_a[0], asks[top_a[0]])
            if bbo != self.bbo:
                self.bbo = bbo
                out.append(PyBbo(self.symbol, self.book_id, *bbo, recv_ns))
        return out


class PyPipeline:
    """A reader thread and ``consumers`` consumer threads, written in ``style``."""

    def __init__(self, ws_url: str, rest_url: str, symbols: tuple[str, ...],
                 channels: tuple[str, ...], consumers: int, style: Style = TUNED) -> None:
        streams = "/".join(stream_name(s, c) for s in symbols for c in channels)
        self.style = style
        self.url = f"{ws_url}/stream?streams={streams}"
        self.gate = Gate()
        self.queues = [style.make_queue() for _ in range(consumers)]
        self.tallies = [PyTally(self.gate) for _ in range(consumers)]
        self.books = {venue_symbol(s): PyBook(venue_symbol(s), rest_url) for s in symbols}
        self.stopping = threading.Event()
        self.frames = self.published = self.first_recv = 0
        self.threads = [threading.Thread(target=t.run, args=(q,), daemon=True)
                        for t, q in zip(self.tallies, self.queues, strict=True)]
        self.reader = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        for t in self.threads:
            t.start()
        self.reader.start()

    def stop(self) -> None:
        self.stopping.set()
        self.reader.join(5)
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            t.join(5)

    def books_live(self) -> bool:
        return all(b.book_id >= 0 for b in self.books.values())

    def _build(self, stream: str, d: dict, recv_ns: int) -> list | tuple:
        kind = stream[stream.index("@") + 1:]
        if kind == "bookTicker":
            return (PyBbo(d["s"], d["u"], float(d["b"]), float(d["B"]), float(d["a"]),
                          float(d["A"]), recv_ns),)
        if kind == "trade":
            return (PyTrade(d["s"], d["t"], float(d["p"]), float(d["q"]), d["T"], d["m"],
                            recv_ns),)
        return self.books[d["s"]].on_diff(d, recv_ns)

    def _read(self) -> None:
        ws = websocket.create_connection(self.url, timeout=10, skip_utf8_validation=True,
                                         enable_multithread=False)
        ws.settimeout(0.2)
        recv, now, loads, build = ws.recv_data, time.time_ns, self.style.loads, self._build
        puts = [q.put for q in self.queues]
        try:
            while not self.stopping.is_set():
                try:
                    _, data = recv()
                except websocket.WebSocketTimeoutException:
                    continue
                t = now()
                if not self.first_recv:
                    self.first_recv = t
                msg = loads(data)
                self.frames += 1
                for obj in build(msg["stream"], msg["data"], t):
                    for put in puts:
                        put(obj)
                    self.published += 1
        except websocket.WebSocketConnectionClosedException:
            pass
        finally:
            ws.close()
