"""OrderTracker: reports move an order forward once; duplicates and stale states are dropped."""

import numpy as np

from meltica_nb.order_tracker import OrderTracker
from meltica_nb.schema import ORDER_REQUEST, OrderStatus

ACK, PARTIAL, FILLED = OrderStatus.ACK, OrderStatus.PARTIAL, OrderStatus.FILLED
CANCELLED = OrderStatus.CANCELLED


def request(consumer=0, quantity=10):
    rec = np.zeros(1, ORDER_REQUEST)[0]
    rec["consumer_id"], rec["venue"], rec["instrument"], rec["quantity"] = consumer, 1, 2, quantity
    return rec


def test_venue_ids_are_unique_and_map_back_to_the_consumers_id():
    tracker = OrderTracker(prefix="t")
    a = tracker.register(request(0), "same")
    b = tracker.register(request(1), "same")
    assert a.venue_client_id != b.venue_client_id
    assert tracker.by_venue_id(b.venue_client_id) is b
    assert tracker.find(0, "same") is a and tracker.find(1, "same") is b
    assert tracker.find(2, "same") is None and len(tracker) == 2


def test_lifecycle_moves_forward_only():
    tracker = OrderTracker()
    order = tracker.register(request(), "a")
    steps = [(ACK, 0, True), (ACK, 0, False), (PARTIAL, 4, True), (ACK, 0, False),
             (PARTIAL, 4, False), (PARTIAL, 7, True), (FILLED, 10, True), (FILLED, 10, False),
             (CANCELLED, 10, False)]
    assert [tracker.advance(order, s, f) for s, f, _ in steps] == [ok for *_, ok in steps]
    assert tracker.duplicates == 5 and order.final and order.filled == 10


def test_a_final_state_may_skip_intermediate_ones_and_closes_the_order():
    tracker = OrderTracker()
    order = tracker.register(request(), "a")
    assert tracker.advance(order, CANCELLED, 0)
    assert not tracker.advance(order, ACK, 0)
    assert tracker.open_orders(1) == []


def test_open_orders_are_listed_until_final():
    tracker = OrderTracker()
    a, b = tracker.register(request(), "a"), tracker.register(request(), "b")
    tracker.advance(a, ACK, 0)
    assert tracker.open_orders(1) == [a, b] and tracker.open_orders(2) == []
    tracker.advance(a, FILLED, 10)
    assert tracker.open_orders(1) == [b]


def test_finished_ids_are_forgotten_after_the_retention_only():
    tracker = OrderTracker(retention_s=0.0)
    done = tracker.register(request(), "a")
    still_open = tracker.register(request(), "b")
    tracker.advance(done, FILLED, 10)
    assert tracker.find(0, "a") is None and tracker.by_venue_id(done.venue_client_id) is None
    assert tracker.find(0, "b") is still_open
    keep = OrderTracker(retention_s=3600.0)
    kept = keep.register(request(), "a")
    keep.advance(kept, FILLED, 10)
    assert keep.find(0, "a") is kept
