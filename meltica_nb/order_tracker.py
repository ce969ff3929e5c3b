"""OrderTracker: the engine's own record of every order it sent, and the order of its reports.

Each order gets a venue-side client id of the engine's making (``mn<run><seq>``), so two
consumers may both use ``client_order_id="a1"`` without colliding at the venue, whose namespace
is the whole account. The tracker maps that id back to the consumer, its own id, the trace and
decision ids, and it keeps the last reported state of the order, which makes report delivery
exactly-once and in order no matter how often a report arrives (user data stream, a replay of
it after a reconnect, a REST query while reconciling):

* a report is *new* when it moves the order forward: more filled, or the same fill and a later
  status (ACK < PARTIAL < FILLED | CANCELLED | EXPIRED | REJECTED);
* anything else (the same state again, an older state, anything after a final state) is a
  duplicate and is dropped, counted.

Client ids stay reserved for ``retention_s`` after their order finished (the Go original kept
them an hour), so a duplicate submit within that time is refused and never re-sent.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .schema import OrderStatus

__all__ = ["FINAL_STATUSES", "OrderTracker", "TrackedOrder"]

#: Statuses after which an order never changes again.
FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED,
                            OrderStatus.REJECTED})

_RANK = {OrderStatus.NONE: 0, OrderStatus.ACK: 1, OrderStatus.PARTIAL: 2}


@dataclass
class TrackedOrder:
    """One order the engine sent: who sent it, what it was, and its last reported state."""

    venue_client_id: str
    client_order_id: str
    consumer: int
    venue: int
    instrument: int
    side: int
    order_type: int
    time_in_force: int
    price: int
    quantity: int
    trace_id: int
    decision_id: int
    exchange_order_id: int = 0
    status: int = OrderStatus.NONE
    filled: int = 0
    finished_at: float = 0.0

    @property
    def final(self) -> bool:
        """True once the order reached FILLED, CANCELLED, EXPIRED or REJECTED."""
        return self.status in FINAL_STATUSES


class OrderTracker:
    """Every order the engine sent, by (consumer, client_order_id) and by venue client id.

    Parameters
    ----------
    retention_s : how long a finished order's client id stays reserved (duplicates refused).
    prefix : start of every venue client id; a random per-process tag when None.
    """

    def __init__(self, retention_s: float = 3600.0, prefix: str | None = None):
        self.retention_s = retention_s
        self.prefix = prefix if prefix is not None else "mn" + os.urandom(3).hex()
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self._by_key: OrderedDict[tuple[int, str], TrackedOrder] = OrderedDict()
        self._by_venue_id: dict[str, TrackedOrder] = {}
        self._finished: OrderedDict[tuple[int, str], TrackedOrder] = OrderedDict()
        self.duplicates = 0

    def find(self, consumer: int, client_order_id: str) -> TrackedOrder | None:
        """The order ``consumer`` sent as ``client_order_id``, if it is still remembered."""
        with self.lock:
            self._expire(time.monotonic())
            return self._by_key.get((consumer, client_order_id))

    def by_venue_id(self, venue_client_id: str) -> TrackedOrder | None:
        """The order the venue knows as ``venue_client_id`` (None for foreign orders)."""
        with self.lock:
            return self._by_venue_id.get(venue_client_id)

    def register(self, request: np.void, client_order_id: str) -> TrackedOrder:
        """Remember an ORDER_REQUEST about to be sent; return it with its venue client id."""
        with self.lock:
            order = TrackedOrder(
                f"{self.prefix}{next(self._seq):x}", client_order_id,
                int(request["consumer_id"]), int(request["venue"]), int(request["instrument"]),
                int(request["side"]), int(request["order_type"]), int(request["time_in_force"]),
                int(request["price"]), int(request["quantity"]), int(request["trace_id"]),
                int(request["decision_id"]))
            self._by_key[order.consumer, client_order_id] = order
            self._by_venue_id[order.venue_client_id] = order
            return order

    def accepts(self, order: TrackedOrder, status: int, filled: int) -> bool:
        """Whether a reported (status, cumulative fill) moves ``order`` forward; a state
        already delivered or older is counted as a duplicate."""
        with self.lock:
            if self._is_new(order, OrderStatus(status), filled):
                return True
            self.duplicates += 1
            return False

    def advance(self, order: TrackedOrder, status: int, filled: int) -> bool:
        """Record that (status, cumulative fill) was delivered, if :meth:`accepts` it.

        Call both with :attr:`lock` held around publishing the report, so reports are
        delivered in order and a report that failed to publish is not marked delivered.
        """
        with self.lock:
            if not self.accepts(order, status, filled):
                return False
            order.status, order.filled = int(status), filled
            if order.final:
                order.finished_at = time.monotonic()
                self._finished[order.consumer, order.client_order_id] = order
            return True

    @staticmethod
    def _is_new(order: TrackedOrder, status: OrderStatus, filled: int) -> bool:
        if order.final or filled < order.filled:
            return False
        if filled > order.filled:
            return True
        if status in FINAL_STATUSES:
            return True
        return _RANK[status] > _RANK[OrderStatus(order.status)]

    def open_orders(self, venue: int) -> list[TrackedOrder]:
        """Orders on ``venue`` not yet final, oldest first (reconciled after a reconnect)."""
        with self.lock:
            return [o for o in self._by_key.values() if o.venue == venue and not o.final]

    def _expire(self, now: float) -> None:
        """Forget finished orders older than the retention (their ids become free again)."""
        while self._finished:
            key, order = next(iter(self._finished.items()))
            if now - order.finished_at < self.retention_s:
                return
            del self._finished[key]
            self._by_key.pop(key, None)
            self._by_venue_id.pop(order.venue_client_id, None)

    def __len__(self) -> int:
        with self.lock:
            return len(self._by_key)
