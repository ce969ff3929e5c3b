"""Order matching for one instrument against a market the matcher does not own.

The matcher holds *our* orders only (records in :mod:`meltica_nb.sim.order_records`). The market's
liquidity comes from outside, as a :class:`BookView` (best levels per side) and :class:`MarketTrade`
prints, so the same component serves the live simulator (fed by its generated or recorded market)
and a backtest (fed by a replayed book and trades, in replay time). It has no sockets, no clock and
no threads: every call takes the time of the event and returns the :class:`Execution` reports it
caused, in order.

Rules, as on Binance spot:

* an incoming order first takes the opposing levels it crosses (each level one trade, at the
  level's price, ``maker=False``); ``MARKET`` takes by ``quantity`` or by quote amount
  (``quoteOrderQty``);
* what is left rests (``LIMIT`` ``GTC``) or expires (``IOC``, ``MARKET``); ``FOK`` fills
  completely at once or expires untouched; ``LIMIT_MAKER`` is refused when it would take;
* a resting order fills as maker, at its own price, when the market trades at or through it
  (:class:`FillPolicy`) or when the opposing side of the book moves through its price;
* filled + remaining == quantity after every step; amounts are exact decimals.

The market does not see our orders, so what our fills took from a level is remembered until the
market changes that level (a level we emptied does not fill us again); beyond that there is no
market impact. A replay driver feeds it in event time (with whatever latency it models) and gets
the reports back; ``tests/sim/test_matching_replay.py`` drives it from a real recording.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal

from meltica_nb.sim.filters import SymbolRules, reject
from meltica_nb.sim.order_records import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    LIMIT_MAKER,
    MARKET,
    NEW,
    ORDER_TYPES,
    PARTIALLY_FILLED,
    SELL,
    TRADE,
    BookView,
    Execution,
    Level,
    MarketTrade,
    Order,
    OrderRequest,
)

__all__ = [
    "BUY",
    "SELL",
    "BookView",
    "Execution",
    "FillPolicy",
    "MarketTrade",
    "Matcher",
    "Order",
    "OrderRequest",
]

_ZERO = Decimal(0)

Admit = Callable[[OrderRequest, list[Level]], None]


@dataclass(frozen=True, slots=True)
class FillPolicy:
    """When a market print fills a resting order.

    ``at_touch`` (default): a print at the order's own price fills it (the order is assumed at
    the front of its price level); False: only a print through the price does (conservative).
    """

    at_touch: bool = True

    def reached(self, side: str, limit: Decimal, trade_price: Decimal) -> bool:
        if trade_price == limit:
            return self.at_touch
        return trade_price < limit if side == BUY else trade_price > limit


def _crosses(side: str, limit: Decimal | None, level_price: Decimal) -> bool:
    if limit is None:
        return True
    return level_price <= limit if side == BUY else level_price >= limit


def _total(fills: list[Level]) -> Decimal:
    return sum((q for _, q in fills), _ZERO)


class _Footprint:
    """Liquidity our fills took from the market's levels, until the market changes them.

    The market does not know our orders, so without this a level we emptied would fill us again
    on the next look. A level's taken amount is capped by what the market still shows there and
    forgotten once the level is gone.
    """

    __slots__ = ("taken",)

    def __init__(self) -> None:
        self.taken: dict[tuple[str, Decimal], Decimal] = {}

    def left(self, side: str, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        """The levels an order of ``side`` can still take from."""
        out = []
        for price, qty in levels:
            key = (side, price)
            taken = self.taken.get(key)
            if taken is not None:
                taken = min(taken, qty)
                self.taken[key] = taken
                qty -= taken
            if qty > _ZERO:
                out.append((price, qty))
        return tuple(out)

    def forget_gone(self, side: str, levels: tuple[Level, ...]) -> None:
        """Drop what we took at prices of ``side`` the market no longer shows."""
        shown = {p for p, _ in levels}
        for key in [k for k in self.taken if k[0] == side and k[1] not in shown]:
            del self.taken[key]

    def take(self, side: str, price: Decimal, qty: Decimal) -> None:
        key = (side, price)
        self.taken[key] = self.taken.get(key, _ZERO) + qty


class Matcher:
    """Our orders on one symbol, matched against a market given as book views and trades."""

    def __init__(self, rules: SymbolRules, policy: FillPolicy | None = None, *,
                 order_ids: Iterator[int] | None = None,
                 trade_ids: Iterator[int] | None = None, keep_closed: int = 100_000) -> None:
        """``order_ids`` / ``trade_ids``: id sources (shared between symbols if wanted);
        ``keep_closed``: how many closed orders stay queryable (the oldest are forgotten)."""
        self.rules = rules
        self.policy = policy or FillPolicy()
        self._order_ids = order_ids or itertools.count(1)
        self._trade_ids = trade_ids or itertools.count(1)
        self._orders: dict[int, Order] = {}
        self._by_client: dict[str, int] = {}
        self._resting: list[int] = []  # order ids in time priority
        self._closed: deque[int] = deque()
        self._keep_closed = keep_closed
        self._footprint = _Footprint()

    # -- queries ---------------------------------------------------------------------------

    def find(self, order_id: int | None = None, client_order_id: str | None = None) -> Order:
        """An order by id or client id; -2013 when there is none."""
        found = self._lookup(order_id, client_order_id)
        if found is None:
            raise reject(-2013, "Order does not exist.")
        return found

    def open_orders(self) -> list[Order]:
        """Every order still open, oldest first."""
        return [self._orders[i] for i in self._resting]

    def orders(self) -> list[Order]:
        """Every order, open or closed, oldest first."""
        return list(self._orders.values())

    @property
    def has_resting(self) -> bool:
        return bool(self._resting)

    def _lookup(self, order_id: int | None, client_order_id: str | None) -> Order | None:
        if order_id is None and not client_order_id:
            raise reject(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both "
                                "were empty/null!")
        if order_id is None:
            order_id = self._by_client.get(client_order_id or "")
        order = self._orders.get(order_id) if order_id is not None else None
        if order is None or (client_order_id and order.client_order_id != client_order_id):
            return None
        return order

    # -- commands --------------------------------------------------------------------------

    def submit(self, request: OrderRequest, book: BookView, now_ms: int,
               admit: Admit | None = None) -> list[Execution]:
        """Accept ``request`` at ``now_ms`` against ``book``: NEW, then its fills and outcome.

        Raises RequestRejected (Binance's code and message) when the request breaks a rule.
        ``admit(request, fills)`` may refuse it too (e.g. funds), seeing the taker fills it
        would get, before anything changes.
        """
        self._footprint.forget_gone(request.side, book.opposing(request.side))
        levels = self._footprint.left(request.side, book.opposing(request.side))
        tif = self._check(request, levels)
        fills = self._plan(request, levels)
        if request.type == LIMIT_MAKER and fills:
            raise reject(-2010, "Order would immediately match and take.")
        if request.client_order_id in self._by_client and \
                self._orders[self._by_client[request.client_order_id]].is_open:
            raise reject(-2010, "Duplicate order sent.")
        if admit is not None:
            admit(request, fills)
        order = self._new_order(request, tif, _total(fills), now_ms)
        reports = [Execution(order, NEW, now_ms)]
        if tif == FOK and _total(fills) < order.orig_qty:
            fills = []
        for price, qty in fills:
            self._footprint.take(request.side, price, qty)
            order = self._trade(order, price, qty, False, now_ms, reports)
        if order.is_open and (order.type == MARKET or tif in (IOC, FOK)):
            order = self._store(replace(order, status=EXPIRED, update_ms=now_ms))
            reports.append(Execution(order, EXPIRED, now_ms))
        elif order.is_open:
            self._resting.append(order.order_id)
        return reports

    def cancel(self, now_ms: int, order_id: int | None = None,
               client_order_id: str | None = None, cancel_id: str = "") -> Execution:
        """Cancel an open order; -2011 ``Unknown order sent.`` when it is not open."""
        order = self._lookup(order_id, client_order_id)
        if order is None or not order.is_open:
            raise reject(-2011, "Unknown order sent.")
        order = self._store(replace(order, status=CANCELED, update_ms=now_ms))
        self._resting.remove(order.order_id)
        return Execution(order, CANCELED, now_ms, cancel_id=cancel_id)

    # -- the market moves ------------------------------------------------------------------

    def on_market(self, now_ms: int, book: BookView | None = None,
                  trades: Iterable[MarketTrade] = ()) -> list[Execution]:
        """Fill resting orders from the market's prints, then from a book that crossed them."""
        reports: list[Execution] = []
        for trade in trades:
            reports += self.on_trade(trade, now_ms)
        if book is not None:
            reports += self.on_book(book, now_ms)
        return reports

    def on_trade(self, trade: MarketTrade, now_ms: int) -> list[Execution]:
        """A print fills resting orders of the other side that it reached, best price first."""
        side = BUY if trade.taker_side == SELL else SELL
        reached = [o for o in self._by_priority(side)
                   if self.policy.reached(side, o.price, trade.price)]
        return self._fill_resting(reached, trade.qty, now_ms)

    def on_book(self, book: BookView, now_ms: int) -> list[Execution]:
        """Opposing liquidity at or through a resting order's price trades with it."""
        reports: list[Execution] = []
        for side in (BUY, SELL):
            self._footprint.forget_gone(side, book.opposing(side))
            for order in list(self._by_priority(side)):
                levels = self._footprint.left(side, book.opposing(side))
                for price, qty in levels:
                    if not order.is_open or not _crosses(side, order.price, price):
                        break
                    take = min(order.remaining, qty)
                    self._footprint.take(side, price, take)
                    order = self._trade(order, order.price, take, True, now_ms, reports)
        return reports

    # -- internals -------------------------------------------------------------------------

    def _check(self, request: OrderRequest, levels: tuple[Level, ...]) -> str:
        """Validate ``request`` against the symbol's filters; returns its time in force."""
        if request.side not in (BUY, SELL):
            raise reject(-1117, "Invalid side.")
        if request.type not in ORDER_TYPES:
            raise reject(-1116, "Invalid orderType.")
        if request.type == MARKET:
            return self._check_market(request, levels)
        return self._check_limit(request)

    def _check_limit(self, request: OrderRequest) -> str:
        tif = request.time_in_force or (GTC if request.type == LIMIT_MAKER else "")
        if request.type == LIMIT and not tif:
            raise reject(-1102, "Mandatory parameter 'timeInForce' was not sent, was "
                                "empty/null, or malformed.")
        if request.type == LIMIT_MAKER and request.time_in_force:
            raise reject(-1106, "Parameter 'timeInForce' sent when not required.")
        if tif not in (GTC, IOC, FOK):
            raise reject(-1115, "Invalid timeInForce.")
        for name, value in (("quantity", request.quantity), ("price", request.price)):
            if value is None:
                raise reject(-1102, f"Mandatory parameter '{name}' was not sent, was "
                                    "empty/null, or malformed.")
            self.rules.check_precision(name, value)
        assert request.price is not None and request.quantity is not None
        self.rules.check_price(request.price)
        self.rules.check_quantity(request.quantity)
        self.rules.check_notional(request.price * request.quantity)
        return tif

    def _check_market(self, request: OrderRequest, levels: tuple[Level, ...]) -> str:
        if request.time_in_force:
            raise reject(-1106, "Parameter 'timeInForce' sent when not required.")
        if request.price is not None:
            raise reject(-1106, "Parameter 'price' sent when not required.")
        if (request.quantity is None) == (request.quote_quantity is None):
            raise reject(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both "
                                "were empty/null!")
        if request.quote_quantity is not None:
            self.rules.check_precision("quoteOrderQty", request.quote_quantity)
            if request.quote_quantity <= _ZERO:
                raise reject(-1013, "Invalid quoteOrderQty.")
            self.rules.check_notional(request.quote_quantity)
            return ""
        assert request.quantity is not None
        self.rules.check_precision("quantity", request.quantity)
        self.rules.check_quantity(request.quantity)
        if levels:
            self.rules.check_notional(levels[0][0] * request.quantity)
        return ""

    def _plan(self, request: OrderRequest, levels: tuple[Level, ...]) -> list[Level]:
        """The taker fills ``request`` gets from ``levels``: (price, qty) per level."""
        if request.quote_quantity is not None:
            return self._plan_quote(levels, request.quote_quantity)
        assert request.quantity is not None
        fills, left = [], request.quantity
        for price, qty in levels:
            if left <= _ZERO or not _crosses(request.side, request.price, price):
                break
            take = min(qty, left)
            fills.append((price, take))
            left -= take
        return fills

    def _plan_quote(self, levels: tuple[Level, ...], quote: Decimal) -> list[Level]:
        fills = []
        for price, qty in levels:
            take = min(qty, self.rules.round_quantity(quote / price))
            if take > _ZERO:
                fills.append((price, take))
                quote -= price * take
            if take < qty:
                break
        if not fills:
            raise reject(-2010, "Order book liquidity is less than `LOT_SIZE` filter minimum "
                                "quantity.")
        return fills

    def _new_order(self, request: OrderRequest, tif: str, taken: Decimal, now_ms: int) -> Order:
        quote = request.quote_quantity
        qty = taken if quote is not None else request.quantity
        assert qty is not None
        order_id = next(self._order_ids)
        order = Order(symbol=self.rules.symbol, order_id=order_id,
                      client_order_id=request.client_order_id or f"sim-{order_id}",
                      side=request.side,
                      type=request.type, time_in_force=tif or GTC,
                      price=request.price if request.price is not None else _ZERO,
                      orig_qty=qty, orig_quote_qty=quote or _ZERO, time_ms=now_ms,
                      update_ms=now_ms, working_ms=-1 if request.type == MARKET else now_ms)
        return self._store(order)

    def _store(self, order: Order) -> Order:
        self._orders[order.order_id] = order
        self._by_client[order.client_order_id] = order.order_id
        if not order.is_open:
            self._forget_old(order.order_id)
        return order

    def _forget_old(self, closed_id: int) -> None:
        self._closed.append(closed_id)
        while len(self._closed) > self._keep_closed:
            gone = self._orders.pop(self._closed.popleft())
            if self._by_client.get(gone.client_order_id) == gone.order_id:
                del self._by_client[gone.client_order_id]

    def _trade(self, order: Order, price: Decimal, qty: Decimal, maker: bool, now_ms: int,
               reports: list[Execution]) -> Order:
        executed = order.executed_qty + qty
        status = FILLED if executed == order.orig_qty else PARTIALLY_FILLED
        order = self._store(replace(order, executed_qty=executed, status=status,
                                    cum_quote=order.cum_quote + price * qty, update_ms=now_ms))
        reports.append(Execution(order, TRADE, now_ms, last_qty=qty, last_price=price,
                                 trade_id=next(self._trade_ids), maker=maker))
        if status == FILLED and order.order_id in self._resting:
            self._resting.remove(order.order_id)
        return order

    def _by_priority(self, side: str) -> Iterator[Order]:
        """Resting orders of ``side``: best price first, then oldest."""
        orders = [self._orders[i] for i in self._resting if self._orders[i].side == side]
        orders.sort(key=lambda o: -o.price if side == BUY else o.price)  # stable: time kept
        return iter(orders)

    def _fill_resting(self, orders: Iterable[Order], available: Decimal,
                      now_ms: int) -> list[Execution]:
        reports: list[Execution] = []
        for order in orders:
            if available <= _ZERO:
                break
            take = min(order.remaining, available)
            self._trade(order, order.price, take, True, now_ms, reports)
            available -= take
        return reports
