"""Binance's wire protocol, server side: stream paths, control messages, REST endpoints.

Pure protocol logic with no sockets: :mod:`meltica_nb.sim.server` feeds it paths, messages and
requests and sends back what it returns. Shapes, codes and limits follow Binance's public API
docs (spot ``web-socket-streams.md`` / ``rest-api.md`` and the USD-M futures docs):

* websocket paths ``/ws/<stream>[/<stream>...]`` (raw payloads) and
  ``/stream?streams=a/b/c`` (combined ``{"stream":..,"data":..}``);
* control messages ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` /
  ``SET_PROPERTY`` / ``GET_PROPERTY`` answered with ``{"result":..,"id":..}`` or
  ``{"error":{"code":..,"msg":..},"id":..}``;
* at most 1024 streams per connection and 5 incoming messages per second;
* REST ``/api/v3`` (spot) and ``/fapi/v1`` (USD-M) ping, time, exchangeInfo and depth, with
  request weights counted per minute in ``X-MBX-USED-WEIGHT-1M``, HTTP 429 + ``Retry-After``
  past the limit and 418 (IP ban) for clients that keep going.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson

from meltica_nb.sim.faults import FaultInjector
from meltica_nb.sim.market import Instrument

__all__ = [
    "BinanceLimits",
    "ControlResult",
    "Feed",
    "RestApi",
    "RestRequest",
    "RestResponse",
    "Subscriptions",
    "exchange_info",
    "handle_control",
    "parse_ws_path",
    "valid_stream",
]

_log = logging.getLogger("meltica_nb.sim")
KLINE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                   "1d", "3d", "1w", "1M")
_STREAM_RE = re.compile(r"^[a-z0-9]+@(?P<kind>[A-Za-z0-9_@]+)$")
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_WS_PREFIXES = ("/public", "/market")


@dataclass(frozen=True)
class BinanceLimits:
    """Protocol limits and timings (Binance's values by default)."""

    max_streams: int = 1024  # streams per connection
    max_messages_per_s: int = 5  # incoming messages per connection per second
    ping_interval: float | None = 20.0  # server ping every N s (None: no pings)
    ping_timeout: float = 60.0  # disconnect when no pong within this time
    max_queue: int = 20_000  # frames waiting per connection; more = slow client, disconnect
    rest_weight_limit: int | None = None  # per window; None: 6000 spot, 2400 USD-M
    rest_weight_window_s: float = 60.0
    ban_after: int = 3  # requests refused with 429 in one window before a 418 ban
    ban_s: float = 120.0


class Feed(Protocol):
    """What the protocol needs from a market source (generated or recorded)."""

    market: str
    instruments: tuple[Instrument, ...]
    stream_kinds: frozenset[str]
    extra_streams: frozenset[str]

    def depth_snapshot(self, symbol: str, limit: int) -> dict | None: ...


# -- websocket -----------------------------------------------------------------------------


def valid_stream(name: Any, kinds: frozenset[str], extra: Iterable[str] = ()) -> bool:
    """True for ``<lowercase symbol>@<kind>`` with a kind the market has (or a recorded name)."""
    if not isinstance(name, str):
        return False
    if name in extra:
        return True
    match = _STREAM_RE.match(name)
    if match is None:
        return False
    kind = match.group("kind")
    return kind in kinds or (kind.startswith("kline_") and kind[6:] in KLINE_INTERVALS)


def parse_ws_path(path: str) -> tuple[list[str], bool] | None:
    """``(streams, combined)`` of a websocket request path, None when it is no stream path."""
    parts = urlsplit(path)
    route = parts.path.rstrip("/") or "/"
    for prefix in _WS_PREFIXES:
        if route.startswith(prefix + "/"):
            route = route[len(prefix):]
    if route == "/ws" or route.startswith("/ws/"):
        return [s for s in route[4:].split("/") if s], False
    if route == "/stream":
        values = parse_qs(parts.query).get("streams", [])
        return [s for v in values for s in v.split("/") if s], True
    return None


@dataclass
class Subscriptions:
    """The streams of one connection (insertion ordered) and its combined flag."""

    combined: bool = False
    streams: dict[str, None] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.streams)


@dataclass(frozen=True, slots=True)
class ControlResult:
    """The response to send and the subscription changes to apply."""

    response: dict
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    is_subscribe: bool = False


def _error(code: int, msg: str, req_id: Any = None) -> ControlResult:
    return ControlResult({"error": {"code": code, "msg": msg}, "id": req_id})


def _valid_id(req_id: Any) -> bool:
    if isinstance(req_id, bool):
        return False
    if isinstance(req_id, int):
        return 0 <= req_id < 2**64
    return req_id is None or (isinstance(req_id, str) and len(req_id) <= 36)


def handle_control(message: str | bytes, subs: Subscriptions, is_valid: Callable[[str], bool],
                   max_streams: int = 1024) -> ControlResult:
    """Answer one JSON control message like Binance; ``subs`` is updated in place."""
    try:
        req = orjson.loads(message)
    except orjson.JSONDecodeError:
        return _error(3, "Invalid JSON: expected value at line 1 column 1")
    if not isinstance(req, dict) or "method" not in req:
        return _error(2, "Invalid request: missing field `method` at line 1 column 1")
    req_id = req.get("id")
    if not _valid_id(req_id):
        return _error(2, "Invalid request: request ID must be an unsigned integer")
    method = req["method"]
    if method not in _METHODS:
        return _error(2, f"Invalid request: unknown variant `{method}`, expected one of "
                         + ", ".join(f"`{m}`" for m in _METHODS), req_id)
    params = req.get("params", [])
    if not isinstance(params, list):
        return _error(2, "Invalid request: invalid type: expected a sequence", req_id)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        result = _subscribe(method, params, req_id, subs, is_valid, max_streams)
        return replace(result, is_subscribe=method == "SUBSCRIBE")
    if method == "LIST_SUBSCRIPTIONS":
        return ControlResult({"result": subs.names(), "id": req_id})
    return _property(method, params, req_id, subs)


def _subscribe(method: str, params: list, req_id: Any, subs: Subscriptions,
               is_valid: Callable[[str], bool], max_streams: int) -> ControlResult:
    if not all(isinstance(p, str) for p in params):
        return _error(2, "Invalid request: property name must be a string", req_id)
    bad = [p for p in params if not is_valid(p)]
    if bad:
        return _error(2, f"Invalid request: invalid stream name `{bad[0]}`", req_id)
    ok = {"result": None, "id": req_id}
    if method == "UNSUBSCRIBE":
        gone = tuple(p for p in dict.fromkeys(params) if p in subs.streams)
        for name in gone:
            del subs.streams[name]
        return ControlResult(ok, unsubscribe=gone)
    new = tuple(p for p in dict.fromkeys(params) if p not in subs.streams)
    if len(subs.streams) + len(new) > max_streams:
        return _error(2, f"Invalid request: too many streams, at most {max_streams} per "
                         "connection", req_id)
    subs.streams.update(dict.fromkeys(new))
    return ControlResult(ok, subscribe=new)


def _property(method: str, params: list, req_id: Any, subs: Subscriptions) -> ControlResult:
    if not params or params[0] != "combined":
        return _error(0, "Unknown property", req_id)
    if method == "GET_PROPERTY":
        return ControlResult({"result": subs.combined, "id": req_id})
    if len(params) != 2 or not isinstance(params[1], bool):
        return _error(1, "Invalid value type: expected Boolean", req_id)
    subs.combined = params[1]
    return ControlResult({"result": None, "id": req_id})


# -- REST ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One HTTP request as sent: raw query string and body, header names in lower case."""

    method: str
    path: str
    query: str = ""
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RestResponse:
    """An HTTP answer: status, JSON body, extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> RestResponse:
    return RestResponse(status, orjson.dumps(obj), headers)


def _api_error(status: int, code: int, msg: str) -> RestResponse:
    return _json(status, {"code": code, "msg": msg})


class _WeightWindow:
    """Request weight used in the current window (Binance: per minute).

    Windows are counted from the first request, not from the wall-clock minute, so a short
    test never sees its counter reset halfway.
    """

    __slots__ = ("banned_until", "limit", "origin", "start", "used", "violations", "window")

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window = limit, window_s
        self.origin: float | None = None
        self.start, self.used, self.violations = 0.0, 0, 0
        self.banned_until = 0.0

    def roll(self, now: float) -> None:
        if self.origin is None:
            self.origin = self.start = now
        start = self.origin + math.floor((now - self.origin) / self.window) * self.window
        if start != self.start:
            self.start, self.used, self.violations = start, 0, 0

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.start + self.window - now))


def _spot_depth_weight(limit: int) -> int:
    return 1 if limit <= 100 else 5 if limit <= 500 else 10 if limit <= 1000 else 50


def _usdm_depth_weight(limit: int) -> int:
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def exchange_info(instruments: Iterable[Instrument], market: str, now_ms: int,
                  weight_limit: int) -> dict:
    """The ``exchangeInfo`` body for ``market`` ("spot" or "usdm")."""
    limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
               "limit": weight_limit}]
    symbols = [_symbol_info(i, market) for i in instruments]
    body: dict = {"timezone": "UTC", "serverTime": now_ms, "rateLimits": limits,
                  "exchangeFilters": [], "symbols": symbols}
    if market == "usdm":
        body["assets"] = [{"asset": "USDT", "marginAvailable": True}]
    return body


def _symbol_info(inst: Instrument, market: str) -> dict:
    filters = [
        {"filterType": "PRICE_FILTER", "minPrice": inst.tick_size, "maxPrice": "1000000",
         "tickSize": inst.tick_size},
        {"filterType": "LOT_SIZE", "minQty": inst.step_size, "maxQty": "9000",
         "stepSize": inst.step_size},
    ]
    info: dict = {"symbol": inst.venue_symbol, "status": "TRADING", "baseAsset": inst.base,
                  "quoteAsset": inst.quote}
    if market == "usdm":
        filters.append({"filterType": "MIN_NOTIONAL", "notional": inst.min_notional})
        info.update(pair=inst.venue_symbol, contractType="PERPETUAL", marginAsset=inst.quote,
                    pricePrecision=_places(inst.tick_size),
                    quantityPrecision=_places(inst.step_size))
    else:
        filters.append({"filterType": "NOTIONAL", "minNotional": inst.min_notional,
                        "applyMinToMarket": True, "maxNotional": "9000000",
                        "applyMaxToMarket": False, "avgPriceMins": 5})
        info.update(baseAssetPrecision=8, quotePrecision=8, quoteAssetPrecision=8,
                    orderTypes=["LIMIT", "LIMIT_MAKER", "MARKET"], isSpotTradingAllowed=True)
    info["filters"] = filters
    return info


def _places(step: str) -> int:
    return len(step.partition(".")[2])


_READ = ("GET", "HEAD")


@dataclass
class _Route:
    handler: Callable[..., RestResponse]
    weight: Callable[[dict[str, str]], int]
    family: str  # "api" (spot) or "fapi" (USD-M)
    methods: tuple[str, ...] = _READ
    whole_request: bool = False  # the handler takes the RestRequest, not the query

    def call(self, request: RestRequest, query: dict[str, str], now: float) -> RestResponse:
        return self.handler(request if self.whole_request else query, now)


class RestApi:
    """Binance REST semantics over a feed: routing, weights, 429/418, injected faults."""

    def __init__(self, feed: Feed, limits: BinanceLimits, faults: FaultInjector,
                 clock_s: Callable[[], float], exchange_info_raw: bytes | None = None) -> None:
        self.feed, self.limits, self.faults, self.clock_s = feed, limits, faults, clock_s
        self.exchange_info_raw = exchange_info_raw
        self.status_counts: Counter[int] = Counter()
        self.requests = 0
        spot_limit = limits.rest_weight_limit or 6000
        usdm_limit = limits.rest_weight_limit or 2400
        self._windows = {"api": _WeightWindow(spot_limit, limits.rest_weight_window_s),
                         "fapi": _WeightWindow(usdm_limit, limits.rest_weight_window_s)}
        one = _const(1)
        self._routes = {
            "/api/v3/ping": _Route(self._ping, one, "api"),
            "/api/v3/time": _Route(self._time, one, "api"),
            "/api/v3/exchangeInfo": _Route(self._info_spot, _const(20), "api"),
            "/api/v3/depth": _Route(self._depth_spot, _limit_weight(100, 5000,
                                                                    _spot_depth_weight), "api"),
            "/fapi/v1/ping": _Route(self._ping, one, "fapi"),
            "/fapi/v1/time": _Route(self._time, one, "fapi"),
            "/fapi/v1/exchangeInfo": _Route(self._info_usdm, one, "fapi"),
            "/fapi/v1/depth": _Route(self._depth_usdm, _limit_weight(500, 1000,
                                                                     _usdm_depth_weight), "fapi"),
        }

    def mount(self, path: str, handler: Callable[[RestRequest, float], RestResponse],
              weight: int, methods: tuple[str, ...]) -> None:
        """Serve ``path`` (spot family) with ``handler``, which gets the whole request."""
        self._routes[path] = _Route(handler, _const(weight), "api", methods, True)

    def handle(self, method: str, target: str, body: bytes = b"",
               headers: dict[str, str] | None = None) -> RestResponse:
        """Answer one request (``target`` = path with query string; header names lower case)."""
        self.requests += 1
        try:
            response = self._handle(method, target, body, headers or {})
        except Exception:  # a simulator bug: answer like Binance's -1000, keep serving
            _log.exception("REST %s %s failed", method, target.partition("?")[0])
            response = _api_error(500, -1000, "An unknown error occurred while processing the "
                                              "request.")
        self.status_counts[response.status] += 1
        return response

    def _handle(self, method: str, target: str, body: bytes,
                headers: dict[str, str]) -> RestResponse:
        parts = urlsplit(target)
        route = self._routes.get(parts.path)
        if route is None:
            return _api_error(404, -1, f"Unknown path {parts.path}")
        if method not in route.methods:
            return _api_error(405, -1, f"Method {method} not allowed")
        request = RestRequest(method, parts.path, parts.query, body.decode("latin-1"), headers)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        now = self.clock_s()
        window = self._windows[route.family]
        window.roll(now)
        if now < window.banned_until:
            return self._banned(window, now)
        injected = self.faults.rest()
        if injected is not None:
            return self._injected(injected, window)
        window.used += route.weight(query)
        used = (("X-MBX-USED-WEIGHT-1M", str(window.used)),
                ("X-MBX-USED-WEIGHT", str(window.used)))
        if window.used > window.limit:
            return self._over_limit(window, now, used)
        response = route.call(request, query, now)
        return RestResponse(response.status, response.body, used + response.headers)

    def _over_limit(self, window: _WeightWindow, now: float,
                    used: tuple[tuple[str, str], ...]) -> RestResponse:
        window.violations += 1
        if window.violations > self.limits.ban_after:
            window.banned_until = now + self.limits.ban_s
            return self._banned(window, now)
        msg = (f"Too much request weight used; current limit is {window.limit} request weight "
               "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling "
               "the API.")
        body = orjson.dumps({"code": -1003, "msg": msg})
        return RestResponse(429, body, used + (("Retry-After", str(window.retry_after(now))),))

    def _banned(self, window: _WeightWindow, now: float) -> RestResponse:
        until_ms = int(window.banned_until * 1000)
        msg = (f"Way too much request weight used; IP banned until {until_ms}. Please use "
               "WebSocket Streams for live updates to avoid bans.")
        wait = str(max(1, math.ceil(window.banned_until - now)))
        return RestResponse(418, orjson.dumps({"code": -1003, "msg": msg}),
                            (("Retry-After", wait),))

    def _injected(self, status: int, window: _WeightWindow) -> RestResponse:
        used = (("X-MBX-USED-WEIGHT-1M", str(window.used)),)
        if status == 429:
            return RestResponse(429, orjson.dumps({"code": -1003, "msg": "Too many requests."}),
                                used + (("Retry-After", "1"),))
        msg = "Internal error; unable to process your request. Please try again."
        return RestResponse(status, orjson.dumps({"code": -1001, "msg": msg}), used)

    # -- endpoints -------------------------------------------------------------------------

    def _ping(self, _query: dict[str, str], _now: float) -> RestResponse:
        return RestResponse(200, b"{}")

    def _time(self, _query: dict[str, str], now: float) -> RestResponse:
        return _json(200, {"serverTime": int(now * 1000)})

    def _info(self, query: dict[str, str], now: float, market: str) -> RestResponse:
        if self.exchange_info_raw is not None and market == self.feed.market:
            return RestResponse(200, self.exchange_info_raw)
        wanted = _wanted_symbols(query)
        instruments = [i for i in self.feed.instruments
                       if wanted is None or i.venue_symbol in wanted]
        if wanted is not None and not instruments:
            return _api_error(400, -1121, "Invalid symbol.")
        limit = self._windows["fapi" if market == "usdm" else "api"].limit
        return _json(200, exchange_info(instruments, market, int(now * 1000), limit))

    def _info_spot(self, query: dict[str, str], now: float) -> RestResponse:
        return self._info(query, now, "spot")

    def _info_usdm(self, query: dict[str, str], now: float) -> RestResponse:
        return self._info(query, now, "usdm")

    def _depth(self, query: dict[str, str], default: int, cap: int) -> RestResponse | dict:
        symbol = query.get("symbol", "")
        if not symbol:
            return _api_error(400, -1102, "Mandatory parameter 'symbol' was not sent, was "
                                          "empty/null, or malformed.")
        limit = _limit(query, default, cap)
        if limit is None:
            return _api_error(400, -1100, "Illegal characters found in parameter 'limit'; "
                                          "legal range is '^[0-9]{1,20}$'.")
        body = self.feed.depth_snapshot(symbol, limit)
        if body is None:
            return _api_error(400, -1121, "Invalid symbol.")
        return body

    def _depth_spot(self, query: dict[str, str], _now: float) -> RestResponse:
        body = self._depth(query, 100, 5000)
        if isinstance(body, RestResponse):
            return body
        return _json(200, {k: body[k] for k in ("lastUpdateId", "bids", "asks")})

    def _depth_usdm(self, query: dict[str, str], now: float) -> RestResponse:
        body = self._depth(query, 500, 1000)
        if isinstance(body, RestResponse):
            return body
        ms = int(now * 1000)
        return _json(200, {"lastUpdateId": body["lastUpdateId"], "E": body.get("E", ms),
                           "T": body.get("T", ms), "bids": body["bids"], "asks": body["asks"]})

    def stats(self) -> dict:
        return {"requests": self.requests,
                "status": {str(k): v for k, v in sorted(self.status_counts.items())},
                "weight_used": {k: w.used for k, w in self._windows.items()}}


def _const(weight: int) -> Callable[[dict[str, str]], int]:
    return lambda _query: weight


def _limit(query: dict[str, str], default: int, cap: int) -> int | None:
    text = query.get("limit", "")
    if not text:
        return default
    if not text.isdigit():
        return None
    return max(1, min(int(text), cap))


def _limit_weight(default: int, cap: int,
                  table: Callable[[int], int]) -> Callable[[dict[str, str]], int]:
    def weight(query: dict[str, str]) -> int:
        return table(_limit(query, default, cap) or default)

    return weight


def _wanted_symbols(query: dict[str, str]) -> set[str] | None:
    if query.get("symbol"):
        return {query["symbol"].upper()}
    if query.get("symbols"):
        try:
            names = orjson.loads(query["symbols"])
        except orjson.JSONDecodeError:
            return set()
        return {str(n).upper() for n in names} if isinstance(names, list) else set()
    return None
