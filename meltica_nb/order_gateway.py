"""OrderGateway: the one door orders leave the engine by.

The Control Bus hands it SubmitOrder, CancelOrder, QueryOrder and SetTradingMode; it applies,
in this order, the rules the design promises before anything reaches a venue:

1. the consumer's **trading switch**: off (the default) means the order is *suppressed*: a
   failed ack, counted, nothing sent and the client id not used up;
2. **idempotency**: a ``client_order_id`` the consumer already used (within the tracker's
   retention) is refused as a duplicate and never sent again; ids are per consumer, so two
   consumers may use the same one;
3. **validation** against the venue's filters (:mod:`meltica_nb.order_validation`), written
   into a pooled ORDER_REQUEST record that lives until the venue answered.

Then the venue's trader sends it. Execution reports come back asynchronously through the
trader's report stream and the :class:`~meltica_nb.exec_reports.ExecReportPublisher`; a
request the venue refuses outright (it sends no report for those) is published here as a
REJECTED report carrying the venue's error code, and the ack carries the venue's code and text.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .clock import Clock
from .errors import CommandRefused, ConfigError, PoolExhausted, RequestRejected, VenueError
from .exec_reports import ExecReportPublisher, ExecReportStats, VenueReport
from .fixedpoint import from_mantissa
from .order_tracker import OrderTracker, TrackedOrder
from .order_validation import ORDER_FIELDS, OrderValidator, check_client_order_id
from .pool_manager import PoolManager
from .registry import Registry
from .schema import ErrorCode, OrderStatus

__all__ = ["GatewayStats", "OrderGateway", "OrderState", "Trader"]

#: Trace ids of orders live above this bit, apart from the dispatcher's ingest trace ids.
_TRACE_BASE = 1 << 62


class Trader(Protocol):
    """What a venue adapter provides to the gateway (e.g. ``BinanceTrader``)."""

    venue: int
    name: str

    def stats(self) -> object:
        """A snapshot of the trader's counters."""

    def place(self, order: TrackedOrder) -> int:
        """Send a new order; return the venue's order id. Raises VenueError."""

    def cancel(self, order: TrackedOrder) -> None:
        """Ask the venue to cancel. Raises VenueError."""

    def query(self, order: TrackedOrder) -> VenueReport:
        """The venue's current state of the order. Raises VenueError."""


@dataclass(frozen=True)
class OrderState:
    """An order as the ack of a command reports it (amounts as decimal text)."""

    client_order_id: str
    venue_client_id: str
    exchange_order_id: int
    status: str
    quantity: str
    filled: str
    price: str


@dataclass(frozen=True)
class GatewayStats:
    """What the gateway did with the orders it was given."""

    submitted: int
    suppressed: int
    duplicates: int
    invalid: int
    venue_errors: int
    cancels: int
    queries: int
    trading_enabled: int
    reports: ExecReportStats
    traders: dict


class OrderGateway:
    """Trading switches, idempotency, validation and the traders of every venue.

    Parameters
    ----------
    pools : the engine's pools (OrderRequest and ExecReport are used).
    registry : venue and instrument names to ids.
    clock : the engine clock.
    publish : the dispatcher's publish (exec reports travel the critical path).
    consumer_name : column -> consumer name, for messages.
    retention_s : how long a finished order's client id stays reserved.
    """

    def __init__(self, pools: PoolManager, registry: Registry, clock: Clock,
                 publish: Callable[[np.ndarray], int],
                 consumer_name: Callable[[int], str] = str, retention_s: float = 3600.0):
        self.registry = registry
        self.clock = clock
        self.requests = pools["OrderRequest"]
        self.validator = OrderValidator()
        self.tracker = OrderTracker(retention_s)
        self.reports = ExecReportPublisher(pools["ExecReport"], registry, self.tracker,
                                           publish, clock.now_ns)
        self._consumer_name = consumer_name
        self._traders: dict[int, Trader] = {}
        self._trading: set[int] = set()
        self._traces = itertools.count(_TRACE_BASE + 1)
        self._lock = threading.Lock()
        self._n = dict.fromkeys(("submitted", "suppressed", "duplicates", "invalid",
                                 "venue_errors", "cancels", "queries"), 0)

    # -- set-up -----------------------------------------------------------------------------

    def add_trader(self, trader: Trader) -> None:
        """Route orders for ``trader.venue`` to ``trader`` (one trader per venue)."""
        if trader.venue in self._traders:
            raise ConfigError(f"venue {self.registry.venue_name(trader.venue)!r} already "
                              "has a trader")
        self._traders[trader.venue] = trader

    # -- commands ----------------------------------------------------------------------------

    def set_trading(self, column: int, payload: Mapping) -> None:
        """SetTradingMode ``{"enabled": true|false}`` for one consumer."""
        _only(payload, {"enabled"})
        enabled = payload.get("enabled")
        if not isinstance(enabled, bool):
            raise CommandRefused(ErrorCode.BAD_PAYLOAD,
                                 f"enabled must be true or false, got {enabled!r}")
        with self._lock:
            (self._trading.add if enabled else self._trading.discard)(column)

    def trading_enabled(self, column: int) -> bool:
        """Whether ``column``'s orders may leave the engine."""
        return column in self._trading

    def submit(self, column: int, payload: Mapping) -> OrderState:
        """SubmitOrder: switch, idempotency, validation, then the venue (see module doc)."""
        _only(payload, ORDER_FIELDS)
        client_id = check_client_order_id(payload.get("client_order_id"))
        if column not in self._trading:
            self._count("suppressed")
            raise CommandRefused(ErrorCode.TRADING_DISABLED,
                                 f"suppressed: trading switch is off for consumer "
                                 f"{self._consumer_name(column)!r}")
        if self.tracker.find(column, client_id) is not None:
            self._count("duplicates")
            raise CommandRefused(ErrorCode.DUPLICATE_ORDER,
                                 f"duplicate client_order_id {client_id!r}: never re-sent")
        trader = self._trader(payload.get("venue", "binance"))
        try:
            slot = self.requests.acquire(timeout=1.0)
        except PoolExhausted:
            raise CommandRefused(ErrorCode.BACKPRESSURE, "no free OrderRequest slot: too many "
                                 "orders in flight, retry later") from None
        try:  # the request record lives until the venue answered
            request = self.requests.records[slot]
            self._fill_request(request, column, trader.venue, payload)
            order = self.tracker.register(request, client_id)
            self._send(trader, order)
        finally:
            self.requests.release(slot)
        self._count("submitted")
        return self.state(order)

    def cancel(self, column: int, payload: Mapping) -> OrderState:
        """CancelOrder ``{"client_order_id": ...}``; the CANCELLED report follows."""
        order = self._known(column, payload)
        if order.final:
            raise CommandRefused(ErrorCode.UNKNOWN_ORDER,
                                 f"order {order.client_order_id!r} is already "
                                 f"{OrderStatus(order.status).name}")
        self._count("cancels")
        self._venue_call(lambda: self._traders[order.venue].cancel(order))
        return self.state(order)

    def query(self, column: int, payload: Mapping) -> OrderState:
        """QueryOrder: ask the venue; a state newer than the last report is published too."""
        order = self._known(column, payload)
        self._count("queries")
        report = self._venue_call(lambda: self._traders[order.venue].query(order))
        self.reports.report(report)
        return self.state(order)

    # -- internals ---------------------------------------------------------------------------

    def _trader(self, venue_name) -> Trader:
        venue = self.registry.venue_id(venue_name, create=False) \
            if isinstance(venue_name, str) else 0
        if venue not in self._traders:
            raise CommandRefused(ErrorCode.UNKNOWN_VENUE,
                                 f"no trader for venue {venue_name!r}; trading venues: "
                                 f"{sorted(self.registry.venue_name(v) for v in self._traders)}")
        return self._traders[venue]

    def _fill_request(self, request: np.void, column: int, venue: int, payload: Mapping) -> None:
        name = payload.get("instrument")
        instrument = self.registry.instrument_id(name, create=False) \
            if isinstance(name, str) and name.count("-") == 1 else 0
        if not instrument:
            self._count("invalid")
            raise CommandRefused(ErrorCode.INVALID_ORDER, f"unknown instrument {name!r}")
        try:
            self.validator.fill(request, payload, venue, instrument)
        except CommandRefused:
            self._count("invalid")
            raise
        trace = _optional_id(payload, "trace_id") or next(self._traces)
        request["created_ns"] = self.clock.now_ns()
        request["trace_id"] = trace
        request["decision_id"] = _optional_id(payload, "decision_id") or trace
        request["consumer_id"], request["venue"], request["instrument"] = column, venue, instrument
        request["client_order_id"] = payload["client_order_id"].encode("ascii")

    def _send(self, trader: Trader, order: TrackedOrder) -> None:
        """Place the order; a venue refusal becomes a REJECTED report and a failed ack."""
        try:
            order.exchange_order_id = trader.place(order)
        except RequestRejected as exc:
            self.reports.report(VenueReport(order.venue_client_id, 0, OrderStatus.REJECTED,
                                            "0", reject_code=exc.code or 0))
            self._refuse_venue(exc)
        except VenueError as exc:  # outcome unknown: the order stays open, reconciled later
            self._refuse_venue(exc)

    def _venue_call(self, call):
        try:
            return call()
        except VenueError as exc:
            self._refuse_venue(exc)

    def _refuse_venue(self, exc: VenueError):
        self._count("venue_errors")
        raise CommandRefused(ErrorCode.VENUE_ERROR, str(exc), venue_code=exc.code) from None

    def _known(self, column: int, payload: Mapping) -> TrackedOrder:
        _only(payload, {"client_order_id"})
        client_id = check_client_order_id(payload.get("client_order_id"))
        order = self.tracker.find(column, client_id)
        if order is None:
            raise CommandRefused(ErrorCode.UNKNOWN_ORDER,
                                 f"no order {client_id!r} from consumer "
                                 f"{self._consumer_name(column)!r}")
        return order

    def state(self, order: TrackedOrder) -> OrderState:
        """The order's last reported state, amounts as text."""
        info = self.registry.instrument(order.instrument)
        return OrderState(order.client_order_id, order.venue_client_id, order.exchange_order_id,
                          OrderStatus(order.status).name,
                          from_mantissa(order.quantity, info.qty_exp),
                          from_mantissa(order.filled, info.qty_exp),
                          from_mantissa(order.price, info.price_exp))

    def _count(self, what: str) -> None:
        with self._lock:
            self._n[what] += 1

    def stats(self) -> GatewayStats:
        """Counters of the gateway."""
        with self._lock:
            return GatewayStats(**self._n, trading_enabled=len(self._trading),
                                reports=self.reports.stats(),
                                traders={t.name: t.stats() for t in self._traders.values()})


def _only(payload: Mapping, known: frozenset | set) -> None:
    unknown = set(payload) - set(known)
    if unknown:
        raise CommandRefused(ErrorCode.BAD_PAYLOAD,
                             f"unknown payload field(s) {sorted(map(str, unknown))}; "
                             f"known: {sorted(known)}")


def _optional_id(payload: Mapping, key: str) -> int:
    value = payload.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**64:
        raise CommandRefused(ErrorCode.BAD_PAYLOAD, f"{key} must be a positive 64-bit int, "
                             f"got {value!r}")
    return value
