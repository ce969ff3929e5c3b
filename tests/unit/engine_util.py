"""Helpers shared by the engine-level tests: building CanonicalEvent batches and collecting.

Events are built by name through the engine's own registry, exactly as a bring-your-own feed
would build them, so every test goes through the real Engine (ordering, routing, rings).
"""

from __future__ import annotations

import threading

import numpy as np
from waiting import wait_until as wait_until  # re-exported: the tests import it here

from meltica_nb.schema import CANONICAL_EVENT, EventType

TRADE = int(EventType.TRADE)
BBO = int(EventType.BBO)
BOOK = int(EventType.BOOK_SNAPSHOT)
EXEC = int(EventType.EXEC_REPORT)
ACK = int(EventType.CONTROL_ACK)

#: Manual clock origin used by the tests (1 s after the epoch, well clear of 0 = "unset").
T0 = 1_000_000_000
#: The default lateness tolerance, in ns.
LATENESS_NS = 150_000_000


def make(engine, event_type, seqs, *, venue="custom", instrument="BTC-USDT", seq_first=None,
         price=None, trace_ids=None, ingest_ns=None):
    """CanonicalEvents of one stream: ``seq_provider = seqs``, contiguous unless told.

    ``seq_first`` defaults to ``seqs`` (single-sequence contiguous events); pass 0 for
    monotonic-only events. ``price`` defaults to the sequence number.
    """
    seqs = np.asarray(seqs, np.int64)
    out = np.zeros(seqs.shape[0], CANONICAL_EVENT)
    out["event_type"] = int(event_type)
    out["venue"] = engine.registry.venue_id(venue)
    out["instrument"] = engine.registry.instrument_id(instrument)
    out["seq_provider"] = seqs
    out["seq_first"] = seqs if seq_first is None else seq_first
    if int(event_type) == EXEC:
        out["exchange_order_id"] = seqs
    else:
        out["price"] = seqs if price is None else price
    if trace_ids is not None:
        out["trace_id"] = trace_ids
    if ingest_ns is not None:
        out["ingest_ns"] = ingest_ns
    return out


def cat(*batches: np.ndarray) -> np.ndarray:
    """Concatenate CanonicalEvent arrays (``np.concatenate`` rebuilds the union dtype with
    disjoint fields, 352 bytes, which the engine rightly refuses)."""
    out = np.zeros(sum(len(b) for b in batches), CANONICAL_EVENT)
    at = 0
    for b in batches:
        out[at:at + len(b)] = b
        at += len(b)
    return out


class Collector:
    """A batch handler that keeps a copy of everything it is given (thread-safe)."""

    def __init__(self):
        self.batches: list[np.ndarray] = []
        self.lock = threading.Lock()

    def __call__(self, events: np.ndarray) -> None:
        with self.lock:
            self.batches.append(events.copy())

    @property
    def events(self) -> np.ndarray:
        with self.lock:
            if not self.batches:
                return np.zeros(0, CANONICAL_EVENT)
            return cat(*self.batches)

    def seqs(self, event_type=None) -> list[int]:
        ev = self.events
        if event_type is not None:
            ev = ev[ev["event_type"] == int(event_type)]
        return ev["seq_provider"].tolist()

    def __len__(self) -> int:
        with self.lock:
            return sum(len(b) for b in self.batches)


def conservation(stats) -> bool:
    """``routed == delivered + coalesced + dropped + filtered + pending`` for ConsumerStats."""
    return stats.routed == (stats.delivered + stats.coalesced + stats.dropped + stats.filtered
                            + stats.pending)
