"""The OKX v5 public protocol for the simulator: channels, subscribe ops, checksums, REST.

:class:`OkxMarket` turns the generated market (:mod:`meltica_nb.sim.market`, spot) into OKX
pushes, keyed ``"<channel>:<instId>"`` for the hub:

* ``books``: a mirror book per instrument follows the market's 100 ms diff windows; each window
  becomes an ``update`` with ``seqId`` = the window's last update id, ``prevSeqId`` = the
  previous push's ``seqId``, and the CRC32 ``checksum`` of the mirror's top 25 levels built from
  the texts it sends. Texts are OKX-like: trailing zeros dropped (``"0.5"``, ``"61837.6"``).
  A subscriber gets a ``snapshot`` (top 400, ``prevSeqId`` -1) right after its ack;
* ``books5`` (every 100 ms, the top 5), ``bbo-tbt`` (each top-of-book change), ``trades``
  and ``tickers`` (from the market's trade and 24 h statistics).

:class:`OkxHub` speaks the websocket side on ``/ws/v5/public``: ``{"op":"subscribe","args":[
{"channel":..,"instId":..}]}`` gets one ``{"event":"subscribe","arg":..}`` per arg, bad requests
an ``{"event":"error","code":..,"msg":..}``, the text ``ping`` a ``pong``. Frame faults are the
simulator's (drop -> a seqId gap, dup, reorder, disconnect, malformed) plus ``corrupt``: one
level of a ``books`` update changes size while its checksum stays, so the client's checksum
fails. :class:`OkxRestApi` serves ``GET /api/v5/public/instruments``.
"""

from __future__ import annotations

import bisect
import zlib
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from meltica_nb.sim.binance import RestResponse, _json
from meltica_nb.sim.faults import FaultInjector
from meltica_nb.sim.market import GeneratedMarket, MarketConfig
from meltica_nb.sim.ws import Session, StreamHub

__all__ = ["CHANNELS", "WS_PATH", "OkxHub", "OkxMarket", "OkxRestApi", "okx_text"]

WS_PATH = "/ws/v5/public"
#: Channels the simulator serves.
CHANNELS = ("books", "books5", "bbo-tbt", "trades", "tickers")

_SNAPSHOT_LEVELS = 400
_CHECKSUM_LEVELS = 25
_DIFF = "depth@100ms"
_PARTIAL = "depth5@100ms"


def okx_text(text: str) -> str:
    """``"61837.60000000" -> "61837.6"``, ``"2.00000000" -> "2"``: OKX's spelling."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top 25."""
    parts: list[str] = []
    for j in range(max(min(len(bids), _CHECKSUM_LEVELS), min(len(asks), _CHECKSUM_LEVELS))):
        for side in (bids, asks):
            if j < min(len(side), _CHECKSUM_LEVELS):
                parts.extend(side[j][:2])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class _MirrorSide:
    """One side of a mirror book: price units -> [price text, size text], kept sorted."""

    def __init__(self, bid: bool) -> None:
        self.bid = bid
        self.levels: dict[int, list[str]] = {}
        self.prices: list[int] = []

    def set(self, px: str, sz: str) -> None:
        price = int(px.replace(".", ""))  # fixed decimals from the market: exact units
        if float(sz) == 0.0:
            if self.levels.pop(price, None) is not None:
                del self.prices[bisect.bisect_left(self.prices, price)]
            return
        if price not in self.levels:
            bisect.insort(self.prices, price)
        self.levels[price] = [okx_text(px), okx_text(sz)]

    def top(self, n: int) -> list[list[str]]:
        prices = self.prices[::-1][:n] if self.bid else self.prices[:n]
        return [self.levels[p] for p in prices]


class _Mirror:
    """The book the ``books`` channel describes, with its last seqId."""

    def __init__(self, book: dict) -> None:
        self.bids, self.asks = _MirrorSide(True), _MirrorSide(False)
        self.apply(book["bids"], book["asks"])
        self.seq = book["lastUpdateId"]

    def apply(self, bids: list, asks: list) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for px, sz in levels:
                side.set(px, sz)

    def levels(self, depth: int) -> tuple[list[list[str]], list[list[str]]]:
        return self.bids.top(depth), self.asks.top(depth)


def _rows(levels: list[list[str]]) -> list[list[str]]:
    return [[px, sz, "0", "1"] for px, sz in levels]


class OkxMarket:
    """The generated spot market as OKX pushes (see the module docstring)."""

    needs_subscriber = False
    market = "spot"

    def __init__(self, config: MarketConfig | None = None, seed: int = 0) -> None:
        self.generated = GeneratedMarket(config, market="spot", seed=seed)
        self.instruments = self.generated.instruments
        self._inst = {i.venue_symbol: i.symbol for i in self.instruments}  # BTCUSDT -> BTC-USDT
        self._mirrors: dict[str, _Mirror] = {}

    @property
    def started(self) -> bool:
        return self.generated.started

    @property
    def inst_ids(self) -> tuple[str, ...]:
        return tuple(i.symbol for i in self.instruments)

    def start(self, now_ns: int) -> None:
        self.generated.start(now_ns)
        self._mirrors = {i.symbol: _Mirror(self.generated.book(i.symbol, 10**6))
                         for i in self.instruments}

    def pause(self) -> None:
        self.generated.pause()

    def resume(self) -> None:
        self.generated.resume()

    def poll(self, now_ns: int, wanted: Callable[[str], bool]) -> tuple[list, float]:
        """OKX pushes due at ``now_ns`` as ``(channel:instId, payload)``, and the next delay."""
        events, delay = self.generated.poll(now_ns, _partials_wanted)
        out = []
        for stream, body in events:
            symbol, _, kind = stream.partition("@")
            inst_id = self._inst[symbol.upper()]
            build = self._BUILDERS.get(kind)
            if build is not None:
                out.append(build(self, inst_id, body))
        return out, delay

    def snapshot(self, inst_id: str) -> dict:
        """A ``books`` snapshot push of the mirror as it is now."""
        mirror = self._mirrors[inst_id]
        bids, asks = mirror.levels(_SNAPSHOT_LEVELS)
        return _push("books", inst_id, {
            "asks": _rows(asks), "bids": _rows(bids), "ts": "0", "checksum": checksum(bids, asks),
            "prevSeqId": -1, "seqId": mirror.seq}, action="snapshot")

    def book(self, inst_id: str, depth: int = 20) -> dict | None:
        """The mirror's top ``depth`` levels (OKX texts) and seqId."""
        mirror = self._mirrors.get(inst_id)
        if mirror is None:
            return None
        bids, asks = mirror.levels(depth)
        return {"instId": inst_id, "seqId": mirror.seq, "bids": bids, "asks": asks}

    def stats(self) -> dict:
        return {"kind": "okx", **self.generated.stats(),
                "seq_ids": {k: m.seq for k, m in self._mirrors.items()}}

    # -- pushes ----------------------------------------------------------------------------

    def _books(self, inst_id: str, diff: dict) -> tuple[str, dict]:
        mirror = self._mirrors[inst_id]
        mirror.apply(diff["b"], diff["a"])
        prev, mirror.seq = mirror.seq, diff["u"]
        bids, asks = mirror.levels(_CHECKSUM_LEVELS)
        return _push("books", inst_id, {
            "asks": _rows([[okx_text(p), okx_text(s)] for p, s in diff["a"]]),
            "bids": _rows([[okx_text(p), okx_text(s)] for p, s in diff["b"]]),
            "ts": str(diff["E"]), "checksum": checksum(bids, asks), "prevSeqId": prev,
            "seqId": mirror.seq}, action="update")

    def _books5(self, inst_id: str, partial: dict) -> tuple[str, dict]:
        levels = {k: _rows([[okx_text(p), okx_text(s)] for p, s in partial[k]])
                  for k in ("asks", "bids")}
        return _push("books5", inst_id, {**levels, "instId": inst_id, "ts": "0",
                                         "seqId": partial["lastUpdateId"]})

    def _bbo(self, inst_id: str, top: dict) -> tuple[str, dict]:
        return _push("bbo-tbt", inst_id, {
            "asks": _rows([[okx_text(top["a"]), okx_text(top["A"])]]),
            "bids": _rows([[okx_text(top["b"]), okx_text(top["B"])]]), "ts": "0",
            "seqId": top["u"]})

    def _trade(self, inst_id: str, trade: dict) -> tuple[str, dict]:
        return _push("trades", inst_id, {
            "instId": inst_id, "tradeId": str(trade["t"]), "px": okx_text(trade["p"]),
            "sz": okx_text(trade["q"]), "side": "sell" if trade["m"] else "buy",
            "ts": str(trade["T"])})

    def _ticker(self, inst_id: str, t: dict) -> tuple[str, dict]:
        names = {"last": "c", "lastSz": "Q", "askPx": "a", "askSz": "A", "bidPx": "b",
                 "bidSz": "B", "open24h": "o", "high24h": "h", "low24h": "l",
                 "volCcy24h": "q", "vol24h": "v"}
        body = {k: okx_text(t[v]) for k, v in names.items()}
        return _push("tickers", inst_id, {"instType": "SPOT", "instId": inst_id, **body,
                                          "ts": str(t["E"])})

    _BUILDERS = {_DIFF: _books, _PARTIAL: _books5, "bookTicker": _bbo, "trade": _trade,
                 "ticker": _ticker}


def _partials_wanted(stream: str) -> bool:
    return stream.endswith(_PARTIAL)


def _push(channel: str, inst_id: str, data: dict, action: str | None = None
          ) -> tuple[str, dict]:
    msg: dict[str, Any] = {"arg": {"channel": channel, "instId": inst_id}}
    if action is not None:
        msg["action"] = action
    msg["data"] = [data]
    return f"{channel}:{inst_id}", msg


# -- websocket -----------------------------------------------------------------------------

def _error(code: str, msg: str) -> dict:
    return {"event": "error", "code": code, "msg": msg}


class OkxHub(StreamHub):
    """The OKX websocket side: ``/ws/v5/public``, subscribe ops, ``ping``, checksum faults."""

    def __init__(self, limits, faults: FaultInjector, market: OkxMarket) -> None:
        super().__init__(limits, faults, self._valid)
        self.okx_market = market

    def _valid(self, stream: str) -> bool:
        channel, _, inst_id = stream.partition(":")
        return channel in CHANNELS and inst_id in self.okx_market.inst_ids

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") != WS_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    def initial_streams(self, path: str) -> tuple[list[str], bool]:
        return [], False

    def _control(self, session: Session, message: str | bytes) -> None:
        if message in ("ping", b"ping"):
            session.enqueue(None, b"pong")
            return
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError:
            session.enqueue(None, orjson.dumps(_error("60012", "Invalid request: not JSON")))
            return
        op = msg.get("op") if isinstance(msg, dict) else None
        args = msg.get("args") if isinstance(msg, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            session.enqueue(None, orjson.dumps(_error("60012", f"Invalid request: {message!r}"[
                :200])))
            return
        self.counters["subscribe_requests"] += op == "subscribe"
        for arg in args:
            self._one_op(session, op, arg)

    def _one_op(self, session: Session, op: str, arg: Any) -> None:
        channel = arg.get("channel") if isinstance(arg, dict) else None
        inst_id = arg.get("instId") if isinstance(arg, dict) else None
        stream = f"{channel}:{inst_id}"
        if not self._valid(stream):
            session.enqueue(None, orjson.dumps(_error(
                "60018", f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist")))
            return
        ack = {"event": op, "arg": {"channel": channel, "instId": inst_id},
               "connId": f"{session.conn_id:08x}"}
        session.enqueue(None, orjson.dumps(ack))
        if op == "unsubscribe":
            session.subs.streams.pop(stream, None)
            self._unsubscribe(session, [stream])
            return
        session.subs.streams[stream] = None
        self._subscribe(session, [stream])
        if channel == "books":  # the snapshot follows the ack, never faulted
            session.enqueue(None, orjson.dumps(self.okx_market.snapshot(inst_id)[1]))

    def corrupt(self, stream: str, frame: bytes) -> bytes:
        """A ``books`` update that also sets the best bid's size to 7.77, checksum kept.

        The best bid is in the top 25 of every book, so the client's checksum must fail.
        """
        if not stream.startswith("books:"):
            return frame
        msg = orjson.loads(frame)
        book = self.okx_market.book(stream.partition(":")[2], 1)
        if not book or not book["bids"]:
            return frame
        price = book["bids"][0][0]
        data = msg["data"][0]
        data["bids"] = [[price, "7.77", "0", "1"]] + [lv for lv in data["bids"] if lv[0] != price]
        return orjson.dumps(msg)


# -- REST ----------------------------------------------------------------------------------

#: The instTypes OKX's instruments endpoint knows; the simulated exchange lists only SPOT ones
#: (the others answer an empty list, as OKX does for a type with nothing live), so a client
#: that asks for every type (cryptofeed does) loads.
_INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


class OkxRestApi:
    """``GET /api/v5/public/instruments?instType=SPOT[&instId=..]`` with injected faults."""

    def __init__(self, market: OkxMarket, faults: FaultInjector) -> None:
        self.market, self.faults = market, faults
        self.status_counts: Counter[int] = Counter()
        self.requests = 0

    def handle(self, method: str, target: str, _body: bytes = b"",
               _headers: dict | None = None) -> RestResponse:
        self.requests += 1
        response = self._handle(method, target)
        self.status_counts[response.status] += 1
        return response

    def _handle(self, method: str, target: str) -> RestResponse:
        parts = urlsplit(target)
        if parts.path != "/api/v5/public/instruments":
            return _json(404, {"code": "50000", "msg": f"Unknown path {parts.path}", "data": []})
        if method not in ("GET", "HEAD"):
            return _json(405, {"code": "50000", "msg": f"Method {method} not allowed",
                               "data": []})
        injected = self.faults.rest()
        if injected is not None:
            return _json(injected, {"code": "50011" if injected == 429 else "50001",
                                    "msg": "injected", "data": []})
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        inst_type = query.get("instType")
        if inst_type not in _INST_TYPES:
            return _json(400, {"code": "51000", "msg": "Parameter instType error", "data": []})
        if inst_type == "OPTION" and not (query.get("uly") or query.get("instFamily")):
            return _json(400, {"code": "51000", "msg": "Parameter uly error", "data": []})
        wanted = query.get("instId")
        data = [_instrument(i) for i in self.market.instruments
                if inst_type == "SPOT" and (wanted is None or i.symbol == wanted)]
        return _json(200, {"code": "0", "msg": "", "data": data})

    def stats(self) -> dict:
        return {"requests": self.requests, "status": dict(self.status_counts)}


def _instrument(inst) -> dict:
    return {"instType": "SPOT", "instId": inst.symbol, "baseCcy": inst.base,
            "quoteCcy": inst.quote, "tickSz": okx_text(inst.tick_size),
            "lotSz": okx_text(inst.step_size), "minSz": okx_text(inst.step_size),
            "state": "live"}
