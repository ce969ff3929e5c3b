"""PaperTrader: a venue that fills the engine's orders against the engine's own market data.

Paper trading live and backtests in replay are the same thing here: orders placed at time ``t``
(the engine's clock: wall time live, the recording's receive time in replay) reach a simulated
matching engine at ``t + latency``, where they take the book the engine last delivered for
their instrument and then rest until the venue's trades or book reach their price. The matching
is the simulator's own (:class:`meltica_nb.sim.matching.Matcher`: limit and market orders, IOC
and FOK, partial fills, liquidity it took is not taken twice). Its execution reports become
Binance-shaped ``executionReport`` reports and go through the gateway's publisher, so a
strategy receives ACK, PARTIAL, FILLED, CANCELLED, EXPIRED and REJECTED exactly as from a real
venue: critical events, in order, in engine time.

The market reaches it through an internal batch consumer (``paper:<venue>``) of the venue's
book snapshots, trades and best bid/offers (the first event of an instrument makes it
tradable: the gateway's validator learns its tick and step from the registry). The top levels
are turned into decimals only while the instrument has orders pending or resting, so a quiet
paper venue costs one batch call per delivery.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .errors import ConfigError, RequestRejected, StaleHandle
from .exec_reports import VenueReport
from .fixedpoint import from_mantissa
from .order_tracker import TrackedOrder
from .order_validation import SymbolFilters
from .schema import EventType, Flag, OrderStatus, OrderType, Side, TimeInForce
from .sim.filters import SymbolRules
from .sim.matching import BookView, Execution, MarketTrade, Matcher, OrderRequest
from .venues.binance.orders import report_from_execution

__all__ = ["PaperTrader", "PaperTraderStats"]

_BOOK, _TRADE = int(EventType.BOOK_SNAPSHOT), int(EventType.TRADE)
_SIDES = {int(Side.BUY): "BUY", int(Side.SELL): "SELL"}
_TYPES = {int(OrderType.LIMIT): "LIMIT", int(OrderType.MARKET): "MARKET",
          int(OrderType.LIMIT_MAKER): "LIMIT_MAKER"}
_TIFS = {int(TimeInForce.GTC): "GTC", int(TimeInForce.IOC): "IOC", int(TimeInForce.FOK): "FOK"}


@dataclass(frozen=True)
class PaperTraderStats:
    """What the paper venue did: orders, cancels, fills, rejections, and what is in flight."""

    name: str
    placed: int
    cancels: int
    executions: int
    rejected: int
    pending: int
    resting: int
    instruments: int


@dataclass
class _Instrument:
    """One instrument's matcher and the last book the engine delivered for it."""

    matcher: Matcher
    price_exp: int
    qty_exp: int
    book: BookView | None = None


class PaperTrader:
    """A simulated venue for the engine's order gateway (``engine.add_trader``).

    Parameters
    ----------
    engine : the engine whose market data the orders fill against.
    venue : the venue whose book snapshots and trades are matched (e.g. ``"binance"``);
        orders name it as their venue.
    latency_ms : how long an order or cancel takes to reach the matcher (engine time).
    """

    def __init__(self, engine, venue: str = "binance", latency_ms: float = 5.0):
        if not latency_ms >= 0:
            raise ConfigError(f"paper trader latency_ms must be >= 0, got {latency_ms!r}")
        self.engine = engine
        self.venue = engine.registry.venue_id(venue)
        self.name = f"{venue}:paper"
        self.latency_ns = int(latency_ms * 1_000_000)
        self.gateway = engine.orders
        self._lock = threading.RLock()
        self._pending: deque[tuple[int, str, TrackedOrder]] = deque()
        self._instruments: dict[int, _Instrument] = {}
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._n = dict.fromkeys(("placed", "cancels", "executions", "rejected"), 0)
        engine.add_consumer(self.name, self._on_market, venues=[venue],
                            events=["book_snapshot", "trade", "bbo"], mode="batch")

    # -- life cycle (engine.start / stop) -----------------------------------------------------

    def prepare(self) -> None:
        """Nothing to load: instruments join as their market data arrives."""

    def tasks(self) -> list:
        """No threads: the market consumer drives the matching."""
        return []

    # -- the gateway's Trader methods ----------------------------------------------------------

    def place(self, order: TrackedOrder) -> int:
        """Queue the order for the matcher; its id comes with the ACK (0 until then)."""
        self._known(order.instrument)
        with self._lock:
            self._n["placed"] += 1
            self._pending.append((self._due(), "submit", order))
        return 0

    def cancel(self, order: TrackedOrder) -> None:
        """Queue a cancel; its CANCELLED report (or nothing, if it filled first) follows."""
        with self._lock:
            self._n["cancels"] += 1
            self._pending.append((self._due(), "cancel", order))

    def query(self, order: TrackedOrder) -> VenueReport:
        """The matcher's state of the order; -2013 while it is still on its way."""
        with self._lock:
            inst = self._instruments.get(order.instrument)
            if inst is None:
                raise RequestRejected("Order does not exist.", code=-2013)
            found = inst.matcher.find(client_order_id=order.venue_client_id)
            return _report(Execution(found, found.status, found.update_ms))

    # -- the market ----------------------------------------------------------------------------

    def _on_market(self, events: np.ndarray) -> None:
        """Remember books, match trades and books against resting orders, release due orders."""
        with self._lock:
            now = self.engine.clock.now_ns()
            trades: dict[int, list[MarketTrade]] = {}
            for ev in events:
                inst = self._known(int(ev["instrument"]))
                if int(ev["event_type"]) == _BOOK:
                    self._remember_book(inst, ev)
                elif inst.matcher.has_resting:
                    trades.setdefault(int(ev["instrument"]), []).append(_trade(inst, ev))
            self._release_due(now)
            for instrument, inst in self._instruments.items():
                if inst.matcher.has_resting:
                    self._publish(inst.matcher.on_market(now // 1_000_000, inst.book,
                                                         trades.get(instrument, ())))

    def _remember_book(self, inst: _Instrument, ev) -> None:
        """Keep the book as decimals only while orders are pending or resting."""
        if not (self._pending or inst.matcher.has_resting):
            inst.book = None
            return
        try:
            bids, asks = self.engine.book_levels(ev)
        except StaleHandle:
            return
        inst.book = BookView(_levels(bids, inst), _levels(asks, inst))

    def _release_due(self, now: int) -> None:
        """Orders and cancels whose latency has passed reach the matcher, in order."""
        while self._pending and self._pending[0][0] <= now:
            inst = self._instruments[self._pending[0][2].instrument]
            if self._pending[0][1] == "submit" and inst.book is None:
                return  # no book delivered yet: wait for one (orders stay in arrival order)
            due, action, order = self._pending.popleft()
            self._apply(inst, action, order, due // 1_000_000)

    def _apply(self, inst: _Instrument, action: str, order: TrackedOrder, at_ms: int) -> None:
        try:
            if action == "submit":
                self._publish(inst.matcher.submit(_request(order, inst), inst.book, at_ms))
            else:
                self._publish([inst.matcher.cancel(at_ms, client_order_id=order.venue_client_id)])
        except RequestRejected as exc:
            if action == "submit":
                self._n["rejected"] += 1
                self.gateway.reports.report(VenueReport(
                    order.venue_client_id, 0, OrderStatus.REJECTED, "0",
                    reject_code=exc.code or 0))

    def _publish(self, executions: list[Execution]) -> None:
        for execution in executions:
            self._n["executions"] += 1
            self.gateway.reports.report(_report(execution))

    # -- instruments -----------------------------------------------------------------------------

    def _known(self, instrument: int) -> _Instrument:
        """The instrument's matcher, made (with validator filters) on first sight."""
        inst = self._instruments.get(instrument)
        if inst is None:
            info = self.engine.registry.instrument(instrument)
            tick, step = from_mantissa(1, info.price_exp), from_mantissa(1, info.qty_exp)
            entry = {"filters": [{"filterType": "PRICE_FILTER", "tickSize": tick},
                                 {"filterType": "LOT_SIZE", "stepSize": step}]}
            self.gateway.validator.add(self.venue, SymbolFilters.from_exchange_info(
                entry, instrument, info.symbol, info.price_exp, info.qty_exp))
            rules = SymbolRules(info.symbol, info.base, info.quote, Decimal(tick),
                                Decimal(step))
            inst = _Instrument(Matcher(rules, order_ids=self._order_ids,
                                       trade_ids=self._trade_ids), info.price_exp, info.qty_exp)
            self._instruments[instrument] = inst
        return inst

    def _due(self) -> int:
        return self.engine.clock.now_ns() + self.latency_ns

    def stats(self) -> PaperTraderStats:
        with self._lock:
            resting = sum(len(i.matcher.open_orders()) for i in self._instruments.values())
            return PaperTraderStats(self.name, pending=len(self._pending), resting=resting,
                                    instruments=len(self._instruments), **self._n)


def _levels(levels: np.ndarray, inst: _Instrument) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(from_mantissa(int(p), inst.price_exp)),
                  Decimal(from_mantissa(int(q), inst.qty_exp)))
                 for p, q in zip(levels["price"].tolist(), levels["quantity"].tolist(),
                                 strict=True) if q)


def _trade(inst: _Instrument, ev) -> MarketTrade:
    """A delivered TRADE as a print; the aggressor sold when the buyer was the maker."""
    taker = "SELL" if int(ev["flags"]) & Flag.BUYER_MAKER else "BUY"
    return MarketTrade(Decimal(from_mantissa(int(ev["price"]), inst.price_exp)),
                       Decimal(from_mantissa(int(ev["quantity"]), inst.qty_exp)), taker)


def _request(order: TrackedOrder, inst: _Instrument) -> OrderRequest:
    order_type = _TYPES.get(order.order_type, "LIMIT")
    limit = order_type != "MARKET"
    price = Decimal(from_mantissa(order.price, inst.price_exp)) if limit else None
    return OrderRequest(_SIDES[order.side], order_type,
                        Decimal(from_mantissa(order.quantity, inst.qty_exp)), price,
                        _TIFS.get(order.time_in_force) if order_type == "LIMIT" else None,
                        client_order_id=order.venue_client_id)


def _report(execution: Execution) -> VenueReport:
    """The matcher's execution as the executionReport Binance would send for it."""
    order = execution.order
    return report_from_execution({
        "X": order.status, "c": order.client_order_id, "i": order.order_id,
        "z": str(order.executed_qty), "Z": str(order.cum_quote),
        "L": str(execution.last_price), "l": str(execution.last_qty), "T": execution.time_ms})
