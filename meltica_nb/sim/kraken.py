"""Kraken's wire protocol, server side: WebSocket v1 and v2 public channels, REST AssetPairs.

The market in Kraken's shapes (book views with checksums, trades, tickers) is
:mod:`meltica_nb.sim.kraken_market`; this module speaks Kraken to clients, from Kraken's
public docs:

* websocket paths ``/`` and ``/v1`` (v1: arrays ``[channelID, payload, channelName, pair]``,
  ``XBT/USD`` names) and ``/v2`` (v2: ``{"channel", "type", "data"}``, ``BTC/USD`` names);
  ``systemStatus`` / ``status`` on connect, a heartbeat every second, ``ping`` -> ``pong``;
* ``subscribe`` / ``unsubscribe`` of ``book`` (depth 10, 25, 100, 500, 1000), ``trade`` and
  ``ticker``, acked per pair (v1 ``subscriptionStatus``, v2 ``{"method", "success"}``), a book
  snapshot right after its ack, errors for unknown pairs, depths, channels and malformed
  requests;
* REST ``/0/public/AssetPairs`` (``pair_decimals``, ``lot_decimals``, ``wsname``) and
  ``/0/public/Time``, with the injected REST faults.

Frame faults apply as for Binance (the hub's writer); book snapshots, like acks, are never
faulted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from http import HTTPStatus
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from meltica_nb.sim.binance import BinanceLimits, RestResponse
from meltica_nb.sim.faults import FaultInjector
from meltica_nb.sim.kraken_market import (
    BOOK_DEPTHS,
    CHANNELS,
    KrakenMarket,
    KrakenPair,
    iso,
    stream_key,
)
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.ws import Session, StreamHub

__all__ = ["KRAKEN_LIMITS", "KrakenHub", "KrakenRestApi", "build_kraken"]

#: Kraken's limits here: no server pings (Kraken sends heartbeats), more requests per second.
KRAKEN_LIMITS = BinanceLimits(max_messages_per_s=50, ping_interval=None)
_HEARTBEAT_S = 1.0
_V2_PATH = "/v2"
_V1_PATHS = ("/", "/v1")


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
            key = stream_key(version, channel or "", pair or "", depth or 0)
            yield _ack(version, verb, channel, depth, pair, req_id, error, key), key, not error


def _request_problem(channel: Any, pairs: Any, depth: Any) -> str | None:
    if channel not in CHANNELS:
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
    body = {"method": verb, "success": error is None, "time_in": iso(time.time_ns()),
            "time_out": iso(time.time_ns())}
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
    body = {"error": message, "success": False, "time_in": iso(time.time_ns()),
            "time_out": iso(time.time_ns())}
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

    def handle(self, method: str, target: str, _body: bytes = b"",
               _headers: dict | None = None) -> RestResponse:
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


def _rest_key(pair: KrakenPair) -> str:
    return f"X{pair.inst.base}Z{pair.inst.quote}" if pair.inst.base == "XBT" else (
        pair.inst.venue_symbol)


def _asset_pair(pair: KrakenPair) -> dict:
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
