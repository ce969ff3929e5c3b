"""ExecReportPublisher: venue execution reports into pooled ExecReport records and critical events.

A venue adapter turns whatever its venue sends (a Binance ``executionReport``, a REST order
query while reconciling, a refused request) into a :class:`VenueReport`. The publisher looks
the order up in the :class:`~meltica_nb.order_tracker.OrderTracker`; only a report that moves
the order forward goes on (duplicates and stale states are dropped and counted). It is written
into a pooled EXEC_REPORT record (the full report), summarised into one CANONICAL_EVENT of type
EXEC_REPORT, published through the dispatcher (a critical kind: never coalesced, dropped or
reordered, waited for or spilled when a consumer is stalled) and the record is released.

Check, publish and tracker update happen under the tracker's lock, so reports of one order reach
every subscriber in lifecycle order even when two threads (user stream, control) report at
once; a report whose publish raised (pool exhausted) is not marked delivered, and the next
reconcile delivers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

import numpy as np

from .fixedpoint import to_mantissa
from .order_tracker import OrderTracker, TrackedOrder
from .pool import Pool
from .registry import Registry
from .schema import CANONICAL_EVENT, EventType, OrderStatus

__all__ = ["COMMISSION_EXP", "ExecReportPublisher", "ExecReportStats", "VenueReport", "exec_event"]

#: Exponent of ``commission`` mantissas: the fee may be in any asset (quote, base, BNB), so it
#: is kept at 8 decimals, the most Binance sends.
COMMISSION_EXP = 8


class VenueReport(NamedTuple):
    """One execution report as a venue stated it; amounts are the venue's decimal text."""

    venue_client_id: str
    exchange_order_id: int
    status: OrderStatus
    filled_qty: str              # cumulative
    cum_quote: str = "0"         # cumulative quote amount (for the average price)
    last_fill_price: str = "0"
    last_fill_qty: str = "0"
    commission: str = "0"
    transact_ms: int = 0
    reject_code: int = 0


@dataclass(frozen=True)
class ExecReportStats:
    """Reports published, dropped as duplicates or stale, and about orders we never sent."""

    published: int
    duplicates: int
    foreign: int


class ExecReportPublisher:
    """Publishes each new report of a tracked order once, in order, to every subscriber.

    Parameters
    ----------
    pool : the ExecReport record pool.
    registry : instrument exponents for the mantissas.
    tracker : the orders the engine sent.
    publish : ``publish(canonical_events)``, the engine's dispatcher entry.
    now_ns : the engine clock's ``now_ns``.
    """

    def __init__(self, pool: Pool, registry: Registry, tracker: OrderTracker,
                 publish: Callable[[np.ndarray], int], now_ns: Callable[[], int]):
        self.pool = pool
        self.registry = registry
        self.tracker = tracker
        self._publish = publish
        self._now_ns = now_ns
        self._published = self._foreign = 0

    def report(self, report: VenueReport) -> bool:
        """Publish ``report`` if it is new for its order; return whether it was published."""
        with self.tracker.lock:
            order = self.tracker.by_venue_id(report.venue_client_id)
            if order is None:
                self._foreign += 1
                return False
            info = self.registry.instrument(order.instrument)
            filled = to_mantissa(report.filled_qty, info.qty_exp)
            if not self.tracker.accepts(order, report.status, filled):
                return False
            if report.exchange_order_id:
                order.exchange_order_id = report.exchange_order_id
            self._emit(order, report, filled)  # raises (pool, dispatcher): not delivered
            return self.tracker.advance(order, report.status, filled)

    def _emit(self, order: TrackedOrder, report: VenueReport, filled: int) -> None:
        slot = self.pool.acquire(timeout=1.0)
        try:
            rec = self.pool.records[slot]
            self._fill(rec, order, report, filled)
            self._publish(exec_event(rec))
            self._published += 1
        finally:
            self.pool.release(slot)

    def _fill(self, rec: np.void, order: TrackedOrder, report: VenueReport, filled: int) -> None:
        info = self.registry.instrument(order.instrument)
        rec["transact_ns"] = report.transact_ms * 1_000_000
        rec["received_ns"] = self._now_ns()
        rec["exchange_order_id"] = order.exchange_order_id
        rec["price"], rec["quantity"] = order.price, order.quantity
        rec["filled_qty"], rec["remaining_qty"] = filled, order.quantity - filled
        rec["avg_price"] = _average(report.cum_quote, filled, info.qty_exp, info.price_exp)
        rec["last_fill_price"] = to_mantissa(report.last_fill_price, info.price_exp)
        rec["last_fill_qty"] = to_mantissa(report.last_fill_qty, info.qty_exp)
        rec["commission"] = to_mantissa(report.commission, COMMISSION_EXP)
        rec["trace_id"], rec["decision_id"] = order.trace_id, order.decision_id
        rec["consumer_id"], rec["reject_code"] = order.consumer, report.reject_code
        rec["instrument"], rec["venue"] = order.instrument, order.venue
        rec["status"], rec["side"] = report.status, order.side
        rec["order_type"], rec["time_in_force"] = order.order_type, order.time_in_force
        rec["client_order_id"] = order.client_order_id.encode("ascii")

    def stats(self) -> ExecReportStats:
        """Counters of this publisher and its tracker's duplicates."""
        return ExecReportStats(self._published, self.tracker.duplicates, self._foreign)


def _average(cum_quote: str, filled: int, qty_exp: int, price_exp: int) -> int:
    """Average fill price mantissa: cumulative quote / filled, rounded half-even to the tick
    exponent (the one derived value of a report; 0 before any fill)."""
    if filled <= 0:
        return 0
    qty = Decimal(filled).scaleb(-qty_exp)
    avg = (Decimal(cum_quote) / qty).scaleb(price_exp)
    return int(avg.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def exec_event(rec: np.void) -> np.ndarray:
    """The CANONICAL_EVENT summary of one EXEC_REPORT record (a one-row array)."""
    ev = np.zeros(1, CANONICAL_EVENT)
    ev["event_type"] = EventType.EXEC_REPORT  # the dispatcher stamps kind and version
    ev["exchange_ns"] = rec["transact_ns"]
    ev["seq_provider"] = rec["transact_ns"]
    ev["trace_id"], ev["decision_id"] = rec["trace_id"], rec["decision_id"]
    ev["instrument"], ev["venue"] = rec["instrument"], rec["venue"]
    ev["side"], ev["status"] = rec["side"], rec["status"]
    ev["order_type"], ev["time_in_force"] = rec["order_type"], rec["time_in_force"]
    ev["exchange_order_id"] = rec["exchange_order_id"]
    ev["order_qty"], ev["filled_qty"] = rec["quantity"], rec["filled_qty"]
    ev["fill_price"] = rec["last_fill_price"]
    ev["client_order_id"] = rec["client_order_id"]
    ev["reject_code"] = rec["reject_code"]
    return ev
