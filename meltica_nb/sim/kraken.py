"""Kraken's wire protocol, server side: WebSocket v1 and v2 public channels, REST AssetPairs.

The generated market (:mod:`meltica_nb.sim.market`) drives the books and trades; this module
speaks Kraken to clients, from Kraken's public docs:

* websocket paths ``/`` and ``/v1`` (v1: arrays ``[channelID, payload, channelName, pair]``,
  ``XBT/USD`` names) and ``/v2`` (v2: ``{"channel", "type", "data"}``, ``BTC/USD`` names);
  ``systemStatus`` / ``status`` on connect, a heartbeat every second, ``ping`` -> ``pong``;
* ``subscribe`` / ``unsubscribe`` of ``book`` (depth 10, 25, 100, 500, 1000), ``trade`` and
  ``ticker``, acked per pair (v1 ``subscriptionStatus``, v2 ``{"method", "success"}``),
  errors for unknown pairs, depths, channels and malformed requests;
* ``book``: a snapshot right after the ack, then updates carrying only what changed in the
  subscribed top ``depth`` (0 deletes; a level that enters the range because another left is
  republished, flagged ``"r"`` in v1; levels pushed out are not deleted: the client truncates)
  and the checksum of the new top 10 asks and bids, computed here from the book's text with
  ``zlib.crc32``. Every subscriber of one (channel, pair, depth) shares one view of the book,
  so a later subscriber's snapshot is exactly where the common updates continue from;
* REST ``/0/public/AssetPairs`` (``pair_decimals``, ``lot_decimals``, ``wsname``) and
  ``/0/public/Time``, with the injected REST faults.

Frame faults apply as for Binance (the hub's writer); the ``checksum`` fault corrupts one level
of a book update while its checksum stays that of the true book.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from meltica_nb.sim.binance import BinanceLimits, RestResponse
from meltica_nb.sim.faults import FaultInjector
from meltica_nb.sim.market import GeneratedMarket, Instrument, MarketConfig
from meltica_nb.sim.ws import Session, StreamHub

__all__ = ["KRAKEN_INSTRUMENTS", "KRAKEN_LIMITS", "KrakenHub", "KrakenMarket", "KrakenRestApi",
           "build_kraken", "checksum_of"]

#: The generated Kraken pairs: v1 names use XBT, v2 names BTC.
KRAKEN_INSTRUMENTS = (
    Instrument("BTC-USD", "XBTUSD", "XBT", "USD", "0.1", "0.00000001", "60000"),
    Instrument("ETH-USD", "ETHUSD", "ETH", "USD", "0.01", "0.00000001", "2000"),
)
#: Kraken's limits here: no server pings (Kraken sends heartbeats), more requests per second.
KRAKEN_LIMITS = BinanceLimits(max_messages_per_s=50, ping_interval=None)
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
_CHANNELS = ("book", "trade", "ticker")
_HEARTBEAT_S = 1.0
_V2_PATH = "/v2"
_V1_PATHS = ("/", "/v1")


def _decimals(step: str) -> int:
    return max(0, -Decimal(step).as_tuple().exponent)


def checksum_of(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken's book checksum of text levels (best first): top 10 asks then top 10 bids."""
    text = "".join(p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")
                   for p, q in [*asks[:10], *bids[:10]])
    return zlib.crc32(text.encode())


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{ns % 1_000_000_000 // 1000:06d}Z")


class _Pair:
    """One generated pair's spellings and decimals."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.v1 = f"{inst.base}/{inst.quote}"
        self.v2 = f"{'BTC' if inst.base == 'XBT' else inst.base}/{inst.quote}"
        self.pd, self.ld = _decimals(inst.tick_size), _decimals(inst.step_size)

    def px(self, text: str) -> str:
        return str(Decimal(text).quantize(Decimal(1).scaleb(-self.pd)))

    def qty(self, text: str) -> str:
        return str(Decimal(text).quantize(Decimal(1).scaleb(-self.ld)))


def _key(version: int, channel: str, pair: str, depth: int = 0) -> str:
    """Stream key of a subscription: ``v2|book|10|BTC/USD``."""
    return f"v{version}|{channel}|{depth}|{pair}"


def _split_key(key: str) -> tuple[int, str, int, str]:
    version, channel, depth, pair = key.split("|", 3)
    return int(version[1:]), channel, int(depth), pair


class _View:
    """What the subscribers of one book key were last told: top ``depth`` per side, as text."""

    __slots__ = ("alive", "asks", "bids", "depth")

    def __init__(self, depth: int, bids: dict[str, str], asks: dict[str, str],
                 alive: tuple[set, set]) -> None:
        self.depth, self.bids, self.asks = depth, bids, asks
        self.alive = alive  # every price of each side (bids, asks) when the view was made

    def ordered(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        return asks, bids


def _side_diff(old: dict[str, str], new: dict[str, str], was: set[str], alive: set[str]
               ) -> list[list[str]]:
    """Entries turning the ``old`` side into ``new``: changes, deletes of levels gone from the
    book, republishes (``"r"``) of levels that existed before and entered the range."""
    out: list[list[str]] = []
    for price, qty in new.items():
        if old.get(price) != qty:
            out.append([price, qty, "r"] if price not in old and price in was else [price, qty])
    zero = None
    for price, qty in old.items():
        if price not in new and price not in alive:
            zero = zero or "0." + "0" * max(len(qty.partition(".")[2]), 1)
            out.append([price, zero])
    return out


class KrakenMarket:
    """The generated market seen through Kraken's channels (the simulator's feed)."""

    needs_subscriber = False

    def __init__(self, config: MarketConfig | None = None, *, seed: int = 0,
                 faults: FaultInjector | None = None) -> None:
        base = config or MarketConfig()
        if base.instruments is None:
            base = replace(base, instruments=KRAKEN_INSTRUMENTS)
        self.inner = GeneratedMarket(base, market="spot", seed=seed)
        self.market = "spot"
        self.instruments = self.inner.instruments
        self.stream_kinds: frozenset[str] = frozenset(_CHANNELS)
        self.extra_streams: frozenset[str] = frozenset()
        self.faults = faults or FaultInjector()
        self.pairs = {p.inst.venue_symbol.lower(): p for p in map(_Pair, self.instruments)}
        self.by_name = {n: p for p in self.pairs.values() for n in (p.v1, p.v2)}
        self._views: dict[str, _View] = {}
        self._channel_ids: dict[str, int] = {}
        self._ids = count(100)
        self._trade_ids = {name: count(1) for name in self.by_name}  # per pair, as Kraken

    # -- the simulator's feed interface ---------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.inner.started

    def start(self, now_ns: int) -> None:
        self.inner.start(now_ns)

    def pause(self) -> None:
        self.inner.pause()

    def resume(self) -> None:
        self.inner.resume()

    def stats(self) -> dict:
        return {**self.inner.stats(), "kind": "kraken", "book_views": len(self._views)}

    def poll(self, now_ns: int, wanted: Callable[[str], bool]) -> tuple[list, float]:
        """Advance the market; Kraken payloads (bytes) for every wanted stream key."""
        events, delay = self.inner.poll(now_ns)
        out: list[tuple[str, bytes]] = []
        for stream, payload in events:
            symbol, _, kind = stream.partition("@")
            pair = self.pairs.get(symbol)
            if pair is not None and kind in ("trade", "ticker"):
                out.extend(self._market_event(kind, pair, payload, now_ns, wanted))
        for key in [k for k in self._views if not wanted(k)]:
            del self._views[key]
        for key in list(self._views):
            update = self._book_update(key, now_ns)
            if update is not None:
                out.append((key, update))
        return out, delay

    def book(self, symbol: str, depth: int = 20) -> dict | None:
        """The live top ``depth`` levels per side as Kraken text (``[price, qty]``, best first)."""
        pair = self.by_name.get(symbol) or self.pairs.get(
            symbol.replace("-", "").replace("/", "").lower().replace("btc", "xbt"))
        raw = None if pair is None else self.inner.book(pair.inst.venue_symbol, depth)
        if raw is None:
            return None
        return {"symbol": pair.v2, "bids": [[pair.px(p), pair.qty(q)] for p, q in raw["bids"]],
                "asks": [[pair.px(p), pair.qty(q)] for p, q in raw["asks"]]}

    # -- books ----------------------------------------------------------------------------------

    def _top(self, pair: _Pair, depth: int) -> tuple[dict[str, str], dict[str, str], set, set]:
        """Top ``depth`` per side as text, and every price of each side (to tell gone levels)."""
        live = self.book(pair.v2, depth + 64)
        bids = dict(live["bids"])
        asks = dict(live["asks"])
        return (dict(list(bids.items())[:depth]), dict(list(asks.items())[:depth]), set(bids),
                set(asks))

    def snapshot(self, key: str, now_ns: int) -> bytes:
        """The snapshot a new subscriber of ``key`` gets: the shared view (made if new)."""
        version, _, depth, name = _split_key(key)
        pair = self.by_name[name]
        if key not in self._views:
            bids, asks, all_bids, all_asks = self._top(pair, depth)
            self._views[key] = _View(depth, bids, asks, (all_bids, all_asks))
        asks, bids = self._views[key].ordered()
        if version == 1:
            ts = f"{now_ns / 1e9:.6f}"
            body = {"as": [[p, q, ts] for p, q in asks], "bs": [[p, q, ts] for p, q in bids]}
            return orjson.dumps([self._channel_id(key), body, f"book-{depth}", name])
        data = {"symbol": name, "bids": [_v2_level(p, q) for p, q in bids],
                "asks": [_v2_level(p, q) for p, q in asks],
                "checksum": checksum_of(asks, bids), "timestamp": _iso(now_ns)}
        return orjson.dumps({"channel": "book", "type": "snapshot", "data": [data]})

    def _book_update(self, key: str, now_ns: int) -> bytes | None:
        version, _, depth, name = _split_key(key)
        pair, view = self.by_name[name], self._views[key]
        bids, asks, all_bids, all_asks = self._top(pair, depth)
        bid_diff = _side_diff(view.bids, bids, view.alive[0], all_bids)
        ask_diff = _side_diff(view.asks, asks, view.alive[1], all_asks)
        view.alive = (all_bids, all_asks)
        if not bid_diff and not ask_diff:
            return None
        view.bids, view.asks = bids, asks
        checksum = checksum_of(*view.ordered())
        if self.faults.corrupt_checksum():
            entry = (bid_diff or ask_diff)[0]
            entry[1] = pair.qty(str(Decimal(entry[1]) + Decimal(1).scaleb(-pair.ld)))
        if version == 1:
            return self._v1_update(key, name, depth, bid_diff, ask_diff, checksum, now_ns)
        data = {"symbol": name, "bids": [_v2_level(e[0], e[1]) for e in bid_diff],
                "asks": [_v2_level(e[0], e[1]) for e in ask_diff], "checksum": checksum,
                "timestamp": _iso(now_ns)}
        return orjson.dumps({"channel": "book", "type": "update", "data": [data]})

    def _v1_update(self, key: str, name: str, depth: int, bid_diff: list, ask_diff: list,
                   checksum: int, now_ns: int) -> bytes:
        ts = f"{now_ns / 1e9:.6f}"

        def entries(diff: list) -> list:
            return [[e[0], e[1], ts, *e[2:]] for e in diff]

        parts: list[Any] = [self._channel_id(key)]
        if ask_diff:
            parts.append({"a": entries(ask_diff)})
        if bid_diff:
            parts.append({"b": entries(bid_diff)})
        parts[-1]["c"] = str(checksum)
        return orjson.dumps([*parts, f"book-{depth}", name])

    def _channel_id(self, key: str) -> int:
        if key not in self._channel_ids:
            self._channel_ids[key] = next(self._ids)
        return self._channel_ids[key]

    # -- trades and tickers ---------------------------------------------------------------------

    def _market_event(self, kind: str, pair: _Pair, payload: dict, now_ns: int,
                      wanted: Callable[[str], bool]) -> Iterable[tuple[str, bytes]]:
        for version, name in ((1, pair.v1), (2, pair.v2)):
            key = _key(version, kind, name)
            if wanted(key):
                maker = _v1_trade if kind == "trade" else _v1_ticker
                if version == 2:
                    maker = self._v2_trade if kind == "trade" else _v2_ticker
                yield key, maker(self._channel_id(key), pair, payload, now_ns)

    def _v2_trade(self, _cid: int, pair: _Pair, t: dict, now_ns: int) -> bytes:
        data = {"symbol": pair.v2, "side": "sell" if t["m"] else "buy",
                "price": float(pair.px(t["p"])), "qty": float(pair.qty(t["q"])),
                "ord_type": "market", "trade_id": next(self._trade_ids[pair.v2]),
                "timestamp": _iso(now_ns)}
        return orjson.dumps({"channel": "trade", "type": "update", "data": [data]})


def _v2_level(price: str, qty: str) -> dict:
    return {"price": float(price), "qty": float(qty)}


def _v1_trade(cid: int, pair: _Pair, t: dict, now_ns: int) -> bytes:
    trade = [pair.px(t["p"]), pair.qty(t["q"]), f"{now_ns / 1e9:.6f}", "s" if t["m"] else "b",
             "m", ""]
    return orjson.dumps([cid, [trade], "trade", pair.v1])


def _v1_ticker(cid: int, pair: _Pair, t: dict, _now_ns: int) -> bytes:
    px, qty = pair.px, pair.qty
    body = {"a": [px(t["a"]), 1, qty(t["A"])], "b": [px(t["b"]), 1, qty(t["B"])],
            "c": [px(t["c"]), qty(t["Q"])], "v": [qty(t["v"]), qty(t["v"])],
            "p": [px(t["w"]), px(t["w"])], "t": [t["n"], t["n"]], "l": [px(t["l"]), px(t["l"])],
            "h": [px(t["h"]), px(t["h"])], "o": [px(t["o"]), px(t["o"])]}
    return orjson.dumps([cid, body, "ticker", pair.v1])


def _v2_ticker(_cid: int, pair: _Pair, t: dict, _now_ns: int) -> bytes:
    last, open_ = Decimal(pair.px(t["c"])), Decimal(pair.px(t["o"]))
    data = {"symbol": pair.v2, "bid": float(pair.px(t["b"])), "bid_qty": float(pair.qty(t["B"])),
            "ask": float(pair.px(t["a"])), "ask_qty": float(pair.qty(t["A"])),
            "last": float(last), "volume": float(pair.qty(t["v"])),
            "vwap": float(pair.px(t["w"])), "low": float(pair.px(t["l"])),
            "high": float(pair.px(t["h"])), "change": float(last - open_),
            "change_pct": float(round((last - open_) * 100 / open_, 2)) if open_ else 0.0}
    return orjson.dumps({"channel": "ticker", "type": "update", "data": [data]})


# -- websocket control --------------------------------------------------------------------------

def _version_of(path: str) -> int | None:
    route = urlsplit(path).path.rstrip("/") or "/"
    return 2 if route == _V2_PATH else 1 if route in _V1_PATHS else None


class KrakenHub(StreamHub):
    """The simulator's websocket hub speaking Kraken v1 (``/``, ``/v1``) and v2 (``/v2``)."""

    def __init__(self, limits: BinanceLimits, faults: FaultInjector, market: KrakenMarket,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(limits, faults, lambda _key: True)
        self.market = market
        self.clock_ns = clock_ns
        self._connection_ids = count(1)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if _version_of(request.path) is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        """Serve one connection with a status message first and heartbeats while it lasts."""
        heart = asyncio.create_task(self._heartbeats(ws))
        try:
            await super().handler(ws)
        finally:
            heart.cancel()
            await asyncio.gather(heart, return_exceptions=True)

    async def _heartbeats(self, ws: ServerConnection) -> None:
        version = _version_of(ws.request.path)
        session = None
        while session is None:
            await asyncio.sleep(0)
            session = next((s for s in self.sessions if s.ws is ws), None)
        session.enqueue(None, _status(version, next(self._connection_ids)))
        beat = orjson.dumps({"event": "heartbeat"} if version == 1 else {"channel": "heartbeat"})
        while not session.closed:
            await asyncio.sleep(_HEARTBEAT_S)
            if not session.queue:
                session.enqueue(None, beat)

    def _control(self, session: Session, message: str | bytes) -> None:
        version = _version_of(session.ws.request.path) or 1
        try:
            req = orjson.loads(message)
        except orjson.JSONDecodeError:
            req = None
        if not isinstance(req, dict):
            session.enqueue(None, _error_reply(version, None, "Malformed request"))
            return
        verb = req.get("event") if version == 1 else req.get("method")
        req_id = req.get("reqid") if version == 1 else req.get("req_id")
        if verb == "ping":
            pong = {"event": "pong"} if version == 1 else {"method": "pong"}
            pong["reqid" if version == 1 else "req_id"] = req_id
            session.enqueue(None, orjson.dumps({k: v for k, v in pong.items() if v is not None}))
            return
        if verb not in ("subscribe", "unsubscribe"):
            session.enqueue(None, _error_reply(version, req_id, f"Unsupported event {verb!r}"))
            return
        self.counters["subscribe_requests"] += verb == "subscribe"
        for reply, key, ok in self._requests(version, verb, req, req_id):
            session.enqueue(None, reply)
            if ok and verb == "subscribe" and key not in session.subs.streams:
                session.subs.streams[key] = None
                self._subscribe(session, [key])
                if key.split("|")[1] == "book":
                    session.enqueue(None, self.market.snapshot(key, self.clock_ns()))
            elif ok and verb == "unsubscribe" and key in session.subs.streams:
                del session.subs.streams[key]
                self._unsubscribe(session, [key])

    def _requests(self, version: int, verb: str, req: dict, req_id: Any):
        """(reply, stream key, ok) per pair of a (un)subscribe request."""
        sub = req.get("subscription") if version == 1 else req.get("params")
        sub = sub if isinstance(sub, dict) else {}
        channel = sub.get("name") if version == 1 else sub.get("channel")
        pairs = req.get("pair") if version == 1 else sub.get("symbol")
        depth = sub.get("depth", 10) if channel == "book" else 0
        problem = _request_problem(channel, pairs, depth)
        for pair in pairs if isinstance(pairs, list) and pairs else [None]:
            known = self.market.by_name.get(pair) if isinstance(pair, str) else None
            spelled = known is not None and pair == (known.v1 if version == 1 else known.v2)
            error = problem or (None if spelled else f"Currency pair not supported {pair}")
            key = _key(version, channel or "", pair or "", depth or 0)
            yield _ack(version, verb, channel, depth, pair, req_id, error, key), key, not error


def _request_problem(channel: Any, pairs: Any, depth: Any) -> str | None:
    if channel not in _CHANNELS:
        return f"Subscription name invalid {channel!r}"
    if not isinstance(pairs, list) or not pairs:
        return "Pair(s) not found"
    if channel == "book" and depth not in BOOK_DEPTHS:
        return f"Subscription depth not supported {depth!r}"
    return None


def _ack(version: int, verb: str, channel: Any, depth: int, pair: Any, req_id: Any,
         error: str | None, key: str) -> bytes:
    if version == 1:
        sub = {"name": channel, **({"depth": depth} if channel == "book" else {})}
        body: dict[str, Any] = {"event": "subscriptionStatus", "pair": pair,
                                "status": "error" if error else verb + "d", "subscription": sub}
        if error:
            body["errorMessage"] = error
        else:
            body["channelName"] = f"book-{depth}" if channel == "book" else channel
        if req_id is not None:
            body["reqid"] = req_id
        return orjson.dumps(body)
    body = {"method": verb, "success": error is None, "time_in": _iso(time.time_ns()),
            "time_out": _iso(time.time_ns())}
    if error:
        body["error"] = error
        body["symbol"] = pair
    else:
        body["result"] = {"channel": channel, "symbol": pair,
                          **({"depth": depth, "snapshot": True} if channel == "book" else {})}
    if req_id is not None:
        body["req_id"] = req_id
    return orjson.dumps(body)


def _error_reply(version: int, req_id: Any, message: str) -> bytes:
    if version == 1:
        body: dict[str, Any] = {"event": "error", "errorMessage": message, "status": "error"}
        if req_id is not None:
            body["reqid"] = req_id
        return orjson.dumps(body)
    body = {"error": message, "success": False, "time_in": _iso(time.time_ns()),
            "time_out": _iso(time.time_ns())}
    if req_id is not None:
        body["req_id"] = req_id
    return orjson.dumps(body)


def _status(version: int, connection_id: int) -> bytes:
    if version == 1:
        return orjson.dumps({"connectionID": connection_id, "event": "systemStatus",
                             "status": "online", "version": "1.9.0"})
    return orjson.dumps({"channel": "status", "type": "update", "data": [
        {"api_version": "v2", "connection_id": connection_id, "system": "online",
         "version": "2.0.0"}]})


# -- REST -----------------------------------------------------------------------------------------

class KrakenRestApi:
    """``/0/public/AssetPairs`` and ``/0/public/Time`` over the generated pairs, with faults."""

    def __init__(self, market: KrakenMarket, faults: FaultInjector,
                 clock_s: Callable[[], float]) -> None:
        self.market, self.faults, self.clock_s = market, faults, clock_s
        self.requests = 0
        self.status_counts: dict[int, int] = {}

    def handle(self, method: str, target: str) -> RestResponse:
        self.requests += 1
        response = self._handle(method, target)
        self.status_counts[response.status] = self.status_counts.get(response.status, 0) + 1
        return response

    def _handle(self, method: str, target: str) -> RestResponse:
        parts = urlsplit(target)
        if parts.path not in ("/0/public/AssetPairs", "/0/public/Time"):
            return RestResponse(404, orjson.dumps({"error": ["EGeneral:Unknown method"]}))
        if method not in ("GET", "HEAD"):
            return RestResponse(405, orjson.dumps({"error": ["EGeneral:Invalid arguments"]}))
        injected = self.faults.rest()
        if injected is not None:
            return RestResponse(injected, orjson.dumps({"error": ["EService:Unavailable"]}))
        if parts.path == "/0/public/Time":
            now = self.clock_s()
            return _kraken_ok({"unixtime": int(now), "rfc1123": time.strftime(
                "%a, %d %b %y %H:%M:%S +0000", time.gmtime(now))})
        wanted = parse_qs(parts.query).get("pair", [""])[-1]
        pairs = {_rest_key(p): _asset_pair(p) for p in self.market.pairs.values()
                 if not wanted or _rest_key(p) in wanted.split(",")
                 or p.inst.venue_symbol in wanted.split(",")}
        if wanted and not pairs:
            return RestResponse(200, orjson.dumps({"error": ["EQuery:Unknown asset pair"]}))
        return _kraken_ok(pairs)

    def stats(self) -> dict:
        return {"requests": self.requests,
                "status": {str(k): v for k, v in sorted(self.status_counts.items())}}


def _kraken_ok(result: Any) -> RestResponse:
    return RestResponse(200, orjson.dumps({"error": [], "result": result}))


def _rest_key(pair: _Pair) -> str:
    return f"X{pair.inst.base}Z{pair.inst.quote}" if pair.inst.base == "XBT" else (
        pair.inst.venue_symbol)


def _asset_pair(pair: _Pair) -> dict:
    inst = pair.inst
    return {"altname": inst.venue_symbol, "wsname": pair.v1, "aclass_base": "currency",
            "base": inst.base, "aclass_quote": "currency", "quote": inst.quote,
            "pair_decimals": pair.pd, "cost_decimals": 5, "lot_decimals": pair.ld,
            "lot_multiplier": 1, "tick_size": inst.tick_size, "ordermin": inst.step_size,
            "status": "online"}


def build_kraken(config: MarketConfig | None, faults: FaultInjector, seed: int,
                 clock_s: Callable[[], float]) -> tuple[KrakenMarket, KrakenHub, KrakenRestApi]:
    """The Kraken feed, websocket hub (Kraken's limits) and REST API of one simulator."""
    market = KrakenMarket(config, seed=seed, faults=faults)
    hub = KrakenHub(KRAKEN_LIMITS, faults, market, lambda: int(clock_s() * 1e9))
    return market, hub, KrakenRestApi(market, faults, clock_s)
