"""Binance spot trading on the simulator: signed order endpoints and the user data stream.

Mounted on the simulator's :class:`~meltica_nb.sim.binance.RestApi` (so request weights, 429/418
and injected REST faults apply to them as to market data):

* ``POST/GET/DELETE /api/v3/order``, ``POST /api/v3/order/test``, ``GET/DELETE
  /api/v3/openOrders`` (SIGNED: ``X-MBX-APIKEY``, ``timestamp``, ``recvWindow``, ``signature``);
* ``GET /api/v3/account`` (SIGNED): balances, free and locked; ``GET /api/v3/myTrades``,
  ``GET /api/v3/allOrders``;
* ``POST/PUT/DELETE /api/v3/userDataStream`` (USER_STREAM: API key only) for ``listenKey``\\ s.

Orders match in one :class:`~meltica_nb.sim.matching.Matcher` per symbol against the simulated
market (its book at submission, then its trades and book moves). Every execution is pushed as an
``executionReport`` to the active listen key's stream; the websocket hub serves it on
``/ws/<listenKey>``, followed by an ``outboundAccountPosition`` of the balances it changed (see
:mod:`meltica_nb.sim.account`; every asset starts at 1,000,000 unless set). Shapes, codes and
messages follow Binance's spot REST and user data stream documentation (bodies in
:mod:`meltica_nb.sim.binance_payloads`). Errors answer ``{"code": .., "msg": ..}`` with
Binance's HTTP status.
"""

from __future__ import annotations

import itertools
import random
import re
import string
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TypeVar

import orjson

from meltica_nb.errors import RequestRejected
from meltica_nb.sim.account import Account
from meltica_nb.sim.auth import Credentials, SignedParams, authenticate, integer, mandatory
from meltica_nb.sim.binance import RestApi, RestRequest, RestResponse
from meltica_nb.sim.binance_payloads import (
    cancel_body,
    execution_report,
    fmt,
    new_order_body,
    query_body,
    trade_body,
)
from meltica_nb.sim.filters import SymbolRules, reject
from meltica_nb.sim.listen_keys import ListenKeys
from meltica_nb.sim.matching import (
    BookView,
    Execution,
    FillPolicy,
    Level,
    MarketTrade,
    Matcher,
    OrderRequest,
)
from meltica_nb.sim.ws import StreamHub

__all__ = ["DEFAULT_BALANCE", "SpotTrading"]

_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE = r"'^([0-9]{1,20})(\.[0-9]{1,20})?$'"
_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_CLIENT_ID_RANGE = r"'^[\.A-Z\:/a-z0-9_-]{1,36}$'"
_ID_ALPHABET = string.ascii_letters + string.digits
_COMMON = frozenset({"symbol", "recvWindow", "timestamp"})
_NEW_ORDER = _COMMON | {"side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
                        "newClientOrderId", "newOrderRespType", "selfTradePreventionMode"}
_ONE_ORDER = _COMMON | {"orderId", "origClientOrderId", "newClientOrderId"}
_RESP_TYPES = ("ACK", "RESULT", "FULL")
_BOOK_DEPTH = 100  # levels an incoming order may take
_RESTING_DEPTH = 20  # levels read each poll to see the book cross resting orders
_KEPT_TRADES = 100_000  # per symbol, for myTrades
_TRADE_QUERY = _COMMON | {"orderId", "startTime", "endTime", "fromId", "limit"}
_ALL_ORDERS = _COMMON | {"orderId", "startTime", "endTime", "limit"}
DEFAULT_BALANCE = Decimal(1_000_000)

BookSource = Callable[[str, int], dict | None]
T = TypeVar("T")


def _json(obj: object, status: int = 200) -> RestResponse:
    return RestResponse(status, orjson.dumps(obj))


def _error(exc: RequestRejected) -> RestResponse:
    return _json({"code": exc.code, "msg": str(exc)}, exc.status or 400)


def _need(rules: SymbolRules, request: OrderRequest, fills: list[Level]) -> tuple[str, Decimal]:
    """What an order reserves: the asset it pays with and the most it can spend of it."""
    if request.side == "SELL":
        qty = request.quantity
        return rules.base, qty if qty is not None else sum((q for _, q in fills), Decimal(0))
    if request.quote_quantity is not None:
        return rules.quote, request.quote_quantity
    if request.type == "MARKET" or request.price is None or request.quantity is None:
        return rules.quote, sum((p * q for p, q in fills), Decimal(0))
    return rules.quote, request.price * request.quantity


def _decimal(params: SignedParams, name: str) -> Decimal | None:
    text = params.get(name)
    if text is None:
        return None
    if not _DECIMAL_RE.match(text):
        raise reject(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                            f"{_DECIMAL_RANGE}.")
    return Decimal(text)


def _integer(params: SignedParams, name: str) -> int | None:
    text = params.get(name)
    return None if text is None else integer(name, text)


def _page(items: list[T], params: SignedParams, from_param: str,
          id_and_time: Callable[[T], tuple[int, int]]) -> list[T]:
    """A history query's page: ids from ``from_param`` on (the first ``limit``), or times within
    [startTime, endTime] (the last ``limit``); ``limit`` defaults to 500, at most 1000."""
    limit = min(_integer(params, "limit") or 500, 1000)
    from_id = _integer(params, from_param)
    start, end = _integer(params, "startTime"), _integer(params, "endTime")
    chosen = []
    for item in items:
        item_id, time_ms = id_and_time(item)
        if (from_id is None or item_id >= from_id) and (start is None or time_ms >= start) \
                and (end is None or time_ms <= end):
            chosen.append(item)
    return chosen[:limit] if from_id is not None else chosen[-limit:]


def _only(params: SignedParams, allowed: frozenset[str]) -> None:
    """Binance refuses parameters an endpoint does not read (-1104)."""
    read = sum(1 for name in params.values if name in allowed)
    if read != len(params.values):
        raise reject(-1104, f"Not all sent parameters were read; read '{read}' parameter(s) but "
                            f"was sent '{len(params.values)}'.")


def _mandatory(params: SignedParams, name: str) -> str:
    return mandatory(params.values, name)


class SpotTrading:
    """The simulator's one spot account: its orders, its listen keys, its REST endpoints."""

    def __init__(self, symbols: Iterable[dict], credentials: Credentials, keys: ListenKeys,
                 hub: StreamHub, book: BookSource, *, policy: FillPolicy | None = None,
                 balances: dict[str, Decimal] | None = None, seed: int = 0,
                 trade_kind: str = "trade") -> None:
        """``symbols``: ``exchangeInfo["symbols"]`` entries; ``hub``: the websocket side, where
        reports go out (and its faults: ``userdisconnect``); ``book(symbol, depth)`` reads the
        market's book (None: unknown symbol); ``balances``: starting balances (assets not named
        start at 1,000,000); ``trade_kind``: the market's prints ("trade" or "aggTrade")."""
        symbols = list(symbols)
        self.credentials, self.keys, self.hub, self.book = credentials, keys, hub, book
        assets = {a for info in symbols for a in (info["baseAsset"], info["quoteAsset"])}
        self.trades: dict[str, deque[dict]] = {
            info["symbol"]: deque(maxlen=_KEPT_TRADES) for info in symbols}
        self.account = Account({**dict.fromkeys(sorted(assets), DEFAULT_BALANCE),
                                **(balances or {})})
        order_ids, trade_ids = itertools.count(1), itertools.count(1)
        self.matchers = {info["symbol"]: Matcher(SymbolRules.from_symbol_info(info), policy,
                                                 order_ids=order_ids, trade_ids=trade_ids)
                         for info in symbols}
        self.trade_suffix = "@" + trade_kind
        self._ids = random.Random(f"{seed}/clientOrderId")
        self.reports_sent = 0
        self.bad_prints = 0

    def mount(self, rest: RestApi) -> None:
        """Serve the trading endpoints on ``rest`` (with Binance's request weights)."""
        rest.mount("/api/v3/order", self._order, 1, ("POST", "GET", "DELETE"))
        rest.mount("/api/v3/order/test", self._order_test, 1, ("POST",))
        rest.mount("/api/v3/openOrders", self._open_orders, 6, ("GET", "DELETE"))
        rest.mount("/api/v3/account", self._account, 20, ("GET",))
        rest.mount("/api/v3/myTrades", self._my_trades, 20, ("GET",))
        rest.mount("/api/v3/allOrders", self._all_orders, 20, ("GET",))
        rest.mount("/api/v3/userDataStream", self._user_stream, 2, ("POST", "PUT", "DELETE"))

    # -- the market moves ------------------------------------------------------------------

    def on_market(self, events: Iterable[tuple[str, dict | bytes]], now_ms: int) -> None:
        """Fill resting orders from the market's new prints and book; expire old listen keys."""
        for key in self.keys.expire(now_ms / 1000):
            self.hub.publish(key, {"e": "listenKeyExpired", "E": now_ms, "listenKey": key})
            self.hub.close_stream(key, "listen_key_expired")
        trades: dict[str, list[MarketTrade]] = {}
        for stream, payload in events:
            if stream.endswith(self.trade_suffix):
                self._add_print(payload, trades)
        for symbol, matcher in self.matchers.items():
            if matcher.has_resting:
                book = self._book(symbol, _RESTING_DEPTH)
                reports = matcher.on_market(now_ms, book, trades.get(symbol, ()))
                self._deliver(reports, matcher.rules, now_ms)

    def _add_print(self, payload: dict | bytes, trades: dict[str, list[MarketTrade]]) -> None:
        """One market print by symbol; a recorded frame that is no trade is counted, skipped."""
        try:
            body = payload if isinstance(payload, dict) else orjson.loads(payload)
            trade = MarketTrade(Decimal(body["p"]), Decimal(body["q"]),
                                "SELL" if body["m"] else "BUY")
            trades.setdefault(body["s"], []).append(trade)
        except (orjson.JSONDecodeError, KeyError, TypeError, ArithmeticError):
            self.bad_prints += 1

    def _book(self, symbol: str, levels: int = _BOOK_DEPTH) -> BookView:
        depth = self.book(symbol, levels)
        return BookView() if depth is None else BookView.from_depth(depth)

    def _deliver(self, reports: list[Execution], rules: SymbolRules, now_ms: int) -> None:
        """Settle the fills on the account, then push the reports and the new balances."""
        self._settle(reports, rules)
        events = [execution_report(ex, now_ms) for ex in reports]
        changed = self.account.take_changed()
        if changed:
            events.append(self._position(changed, now_ms))
        for key in self.keys.active_keys():
            for event in events:
                if self.hub.faults.user_disconnect():
                    self.hub.drop(key, "user_stream_fault")
                self.hub.publish(key, event)
        self.reports_sent += len(reports)

    def _settle(self, reports: list[Execution], rules: SymbolRules) -> None:
        account = self.account
        for ex in reports:
            order = ex.order
            if ex.kind == "TRADE":
                self.trades[order.symbol].append(trade_body(ex, rules.quote))
                quote = ex.last_price * ex.last_qty
                if order.side == "SELL":
                    account.spend(order.order_id, ex.last_qty, ex.last_qty)
                    account.credit(rules.quote, quote)
                else:
                    limit = order.price if order.type != "MARKET" else ex.last_price
                    account.spend(order.order_id, limit * ex.last_qty, quote)
                    account.credit(rules.base, ex.last_qty)
            if not order.is_open:
                account.release(order.order_id)

    def _position(self, assets: list[str], now_ms: int) -> dict:
        """Binance's ``outboundAccountPosition`` event for ``assets``."""
        return {"e": "outboundAccountPosition", "E": now_ms, "u": now_ms,
                "B": [self._balance(a) for a in assets]}

    def _balance(self, asset: str) -> dict:
        free, locked = self.account.balance(asset)
        return {"a": asset, "f": fmt(free), "l": fmt(locked)}

    # -- endpoints -------------------------------------------------------------------------

    def _authenticated(self, request: RestRequest, now: float, handler: Callable[
            [str, SignedParams, int], RestResponse], signed: bool = True) -> RestResponse:
        now_ms = int(now * 1000)
        try:
            params = authenticate(self.credentials, request.headers.get("x-mbx-apikey"),
                                  request.query, request.body, now_ms, signed)
            return handler(request.method, params, now_ms)
        except RequestRejected as exc:
            return _error(exc)

    def _matcher(self, params: SignedParams) -> Matcher:
        matcher = self.matchers.get(_mandatory(params, "symbol"))
        if matcher is None:
            raise reject(-1121, "Invalid symbol.")
        return matcher

    def _order(self, request: RestRequest, now: float) -> RestResponse:
        handler = {"POST": self._new_order, "GET": self._query_order,
                   "DELETE": self._cancel_order}[request.method]
        return self._authenticated(request, now, handler)

    def _order_test(self, request: RestRequest, now: float) -> RestResponse:
        return self._authenticated(request, now, self._test_order)

    def _open_orders(self, request: RestRequest, now: float) -> RestResponse:
        handler = self._list_open if request.method == "GET" else self._cancel_all
        return self._authenticated(request, now, handler)

    def _user_stream(self, request: RestRequest, now: float) -> RestResponse:
        return self._authenticated(request, now, self._listen_key, signed=False)

    # -- handlers (parameters authenticated) -----------------------------------------------

    def _request(self, params: SignedParams) -> tuple[OrderRequest, str]:
        _only(params, _NEW_ORDER)
        client_id = params.get("newClientOrderId") or self._new_id()
        if not _CLIENT_ID_RE.match(client_id):
            raise reject(-1100, "Illegal characters found in parameter 'newClientOrderId'; "
                                f"legal range is {_CLIENT_ID_RANGE}.")
        order_type = _mandatory(params, "type")
        resp_type = params.get("newOrderRespType") or (
            "FULL" if order_type in ("LIMIT", "MARKET") else "ACK")
        if resp_type not in _RESP_TYPES:
            raise reject(-1100, "Illegal characters found in parameter 'newOrderRespType'; "
                                "legal range is 'ACK, RESULT, FULL'.")
        return OrderRequest(side=_mandatory(params, "side"), type=order_type,
                            quantity=_decimal(params, "quantity"),
                            price=_decimal(params, "price"),
                            time_in_force=params.get("timeInForce"),
                            quote_quantity=_decimal(params, "quoteOrderQty"),
                            client_order_id=client_id), resp_type

    def _new_order(self, _method: str, params: SignedParams, now_ms: int) -> RestResponse:
        matcher = self._matcher(params)
        order, resp_type = self._request(params)
        needs: list[tuple[str, Decimal]] = []

        def admit(request: OrderRequest, fills: list[Level]) -> None:
            needs.append(_need(matcher.rules, request, fills))
            self.account.require(*needs[-1])

        reports = matcher.submit(order, self._book(matcher.rules.symbol), now_ms, admit)
        self.account.reserve(reports[0].order.order_id, *needs[-1])
        self._deliver(reports, matcher.rules, now_ms)
        return _json(new_order_body(reports, resp_type, matcher.rules.quote))

    def _test_order(self, _method: str, params: SignedParams, now_ms: int) -> RestResponse:
        """Validate like a new order, place nothing: ``{}``."""
        matcher = self._matcher(params)
        order, _ = self._request(params)
        probe = Matcher(matcher.rules, matcher.policy)
        probe.submit(order, self._book(matcher.rules.symbol), now_ms,
                     lambda request, fills: self.account.require(
                         *_need(matcher.rules, request, fills)))
        return _json({})

    def _query_order(self, _method: str, params: SignedParams, _now_ms: int) -> RestResponse:
        _only(params, _ONE_ORDER)
        matcher = self._matcher(params)
        order = matcher.find(_integer(params, "orderId"), params.get("origClientOrderId"))
        return _json(query_body(order))

    def _cancel_order(self, _method: str, params: SignedParams, now_ms: int) -> RestResponse:
        _only(params, _ONE_ORDER)
        matcher = self._matcher(params)
        cancel_id = params.get("newClientOrderId") or self._new_id()
        ex = matcher.cancel(now_ms, _integer(params, "orderId"), params.get("origClientOrderId"),
                            cancel_id)
        self._deliver([ex], matcher.rules, now_ms)
        return _json(cancel_body(ex))

    def _list_open(self, _method: str, params: SignedParams, _now_ms: int) -> RestResponse:
        _only(params, _COMMON)
        matchers = [self._matcher(params)] if params.get("symbol") else self.matchers.values()
        return _json([query_body(o) for m in matchers for o in m.open_orders()])

    def _cancel_all(self, _method: str, params: SignedParams, now_ms: int) -> RestResponse:
        _only(params, _COMMON)
        matcher = self._matcher(params)
        reports = [matcher.cancel(now_ms, o.order_id, cancel_id=self._new_id())
                   for o in matcher.open_orders()]
        if not reports:
            raise reject(-2011, "Unknown order sent.")
        self._deliver(reports, matcher.rules, now_ms)
        return _json([cancel_body(ex) for ex in reports])

    def _account(self, request: RestRequest, now: float) -> RestResponse:
        return self._authenticated(request, now, self._account_info)

    def _account_info(self, _method: str, params: SignedParams, now_ms: int) -> RestResponse:
        _only(params, frozenset({"recvWindow", "timestamp", "omitZeroBalances"}))
        held = [(asset, *self.account.balance(asset)) for asset in self.account.assets()]
        if params.get("omitZeroBalances") == "true":
            held = [(asset, free, locked) for asset, free, locked in held if free or locked]
        balances = [{"asset": a, "free": fmt(f), "locked": fmt(lk)} for a, f, lk in held]
        return _json({"makerCommission": 0, "takerCommission": 0, "buyerCommission": 0,
                      "sellerCommission": 0, "canTrade": True, "canWithdraw": False,
                      "canDeposit": False, "brokered": False,
                      "requireSelfTradePrevention": False, "preventSor": False,
                      "updateTime": now_ms, "accountType": "SPOT", "balances": balances,
                      "permissions": ["SPOT"]})

    def _my_trades(self, request: RestRequest, now: float) -> RestResponse:
        return self._authenticated(request, now, self._trade_list)

    def _trade_list(self, _method: str, params: SignedParams, _now_ms: int) -> RestResponse:
        """``myTrades``: by orderId, or from ``fromId``, or within [startTime, endTime]."""
        _only(params, _TRADE_QUERY)
        trades = self.trades[self._matcher(params).rules.symbol]
        order_id = _integer(params, "orderId")
        mine = [t for t in trades if order_id is None or t["orderId"] == order_id]
        return _json(_page(mine, params, "fromId", lambda t: (t["id"], t["time"])))

    def _all_orders(self, request: RestRequest, now: float) -> RestResponse:
        return self._authenticated(request, now, self._order_list)

    def _order_list(self, _method: str, params: SignedParams, _now_ms: int) -> RestResponse:
        """``allOrders``: from ``orderId`` on, else within [startTime, endTime], oldest first."""
        _only(params, _ALL_ORDERS)
        orders = self._matcher(params).orders()
        page = _page(orders, params, "orderId", lambda o: (o.order_id, o.time_ms))
        return _json([query_body(o) for o in page])

    def _listen_key(self, method: str, params: SignedParams, now_ms: int) -> RestResponse:
        now_s = now_ms / 1000
        if method == "POST":
            return _json({"listenKey": self.keys.create(now_s)})
        key = _mandatory(params, "listenKey")
        done = self.keys.keep_alive(key, now_s) if method == "PUT" else self.keys.close(key)
        if not done:
            raise reject(-1125, "This listenKey does not exist.")
        if method == "DELETE":
            self.hub.close_stream(key, "listen_key_closed")
        return _json({})

    def _new_id(self) -> str:
        """A client order id like the ones Binance makes up (22 letters and digits)."""
        return "".join(self._ids.choice(_ID_ALPHABET) for _ in range(22))

    def stats(self) -> dict:
        return {"open_orders": sum(len(m.open_orders()) for m in self.matchers.values()),
                "reports_sent": self.reports_sent, "listen_keys": len(self.keys.active_keys()),
                "bad_prints": self.bad_prints}
