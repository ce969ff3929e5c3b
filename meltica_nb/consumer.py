"""Consumer: the event processor that drains one subscriber's rings into its handler.

Each consumer owns a market-data ring (lossy: latest-wins / drop-oldest) and a critical ring
(lossless), runs on its own thread of the engine's TaskGroup, and hands ready batches to its
handler strategy (:mod:`meltica_nb.handlers`). Slots are free once a batch is copied out of the
ring (auto-release), whether the handler then returns or raises. Market data stamped with a
``routing_version`` below ``min_version`` is skipped and counted; critical kinds always pass.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from .clock import Clock
from .concurrency import CancelToken
from .dead_letter_queue import DeadLetterQueue, DeadLetterReason
from .errors import ConfigError
from .kernels import dispatch_kernels as dk
from .kernels.consumer_kernels import take_batch
from .kernels.ring_kernels import HEAD, TAIL
from .latency import LatencyHistogram
from .ring import CriticalRing, MarketDataRing, _atomic
from .ring_bank import RingBank
from .schema import CANONICAL_EVENT, CRITICAL_KINDS
from .wait_strategy import WaitStrategy
from .wake_chain import WakeChain

__all__ = ["CRITICAL_KIND_MASK", "Consumer", "ConsumerStats"]

log = logging.getLogger("meltica_nb.consumer")

#: critical_kind[kind] == 1 for ExecReport, ControlAck and ControlResult (kernel lookup table).
CRITICAL_KIND_MASK = np.zeros(8, dtype=np.uint8)
CRITICAL_KIND_MASK[[int(k) for k in CRITICAL_KINDS]] = 1

#: How long a producer waits for room in a full critical ring before spilling (never losing).
CRITICAL_WAIT_S = 1.0

#: The drain kernel, serialized with the rings' other kernels when JIT is disabled.
_take_batch = _atomic(take_batch)


@dataclass(frozen=True)
class ConsumerStats:
    """One consumer's counters: what reached it, what it skipped, what raised."""

    name: str
    mode: str
    routed: int
    delivered: int
    coalesced: int
    dropped: int
    filtered: int
    errors: int
    batches: int
    spilled: int
    ring_high_water: int
    critical_high_water: int
    pending: int
    latency_us: dict


class Consumer:
    """One subscriber: its rings, its handler and its delivery loop.

    Parameters
    ----------
    index : the consumer's column in the routing table.
    name : unique name, used in logs and stats.
    handler : a handler strategy from :func:`meltica_nb.handlers.make_handler`.
    clock : the engine's clock (handler-entry latency is measured against ``ingest_ns``).
    wait : the wait strategy shared by both rings (one signal wakes the consumer).
    ring_capacity, critical_capacity : ring sizes (powers of two).
    batch_size : most events handed to the handler at once.
    dlq : where handler errors are recorded.
    bank : the dispatcher's RingBank; the market-data ring takes its row ``index`` there.
    coalesce : latest-wins per stream in the market-data ring (False: keep every event).
    """

    def __init__(self, index: int, name: str, handler, clock: Clock, wait: WaitStrategy, *,
                 ring_capacity: int = 4096, critical_capacity: int = 1024,
                 batch_size: int = 256, dlq: DeadLetterQueue | None = None,
                 bank: RingBank | None = None, coalesce: bool = True):
        self.index = index
        self.name = name
        self.handler = handler
        self.clock = clock
        self.wait = wait
        self.dlq = dlq
        self.critical = CriticalRing(critical_capacity, name=f"{name}:critical", wait=wait)
        self.min_version = 0
        self.latency = LatencyHistogram()
        self.thread_ident: int | None = None
        self.chain: WakeChain | None = None  # set by the dispatcher: who wakes the next one
        self._batch = np.zeros(batch_size, CANONICAL_EVENT)
        self._select = np.zeros(256, CANONICAL_EVENT)
        self._spill: deque[np.ndarray] = deque()
        self._spill_lock = threading.Lock()
        self._critical_routed = self._delivered = self._filtered = self._errors = 0
        self._batches = self._spilled = 0
        # last: joining the bank is the one step that cannot be undone
        self.market = MarketDataRing(ring_capacity, name=f"{name}:market", wait=wait, bank=bank,
                                     coalesce=coalesce)
        if self.market.row != index:
            raise ConfigError(f"consumer {name!r}: ring bank row {self.market.row} is not its "
                              f"routing column {index}")

    def warm_up(self) -> None:
        """Compile every kernel of the delivery path on empty input, before threads start.

        A cold Numba cache compiles on first call; doing it here keeps that out of the first
        events' latency and out of a running thread that a stop would have to wait for.
        """
        empty = self._batch[:0]
        empty.flags.writeable = False  # handlers get read-only views: compile that signature
        mask = np.zeros((0, self.index + 1), np.uint8)
        self.accept_critical(empty, mask)
        self._take(self._batch[:0], 0)
        self.latency.record_batch(empty["ingest_ns"], 0)
        warm = getattr(self.handler, "warm_up", None)
        if warm is not None:
            warm(empty)

    # -- producer side (called by the dispatcher) ---------------------------------------------

    def accept_critical(self, events: np.ndarray, mask: np.ndarray) -> int:
        """Append the critical events routed here, in order; wait for room, never drop.

        Returns how many of ``events`` were routed here. (Market data reaches the consumer's
        ring through the dispatcher's one-call fan-out over the RingBank instead.)

        The producer waits up to CRITICAL_WAIT_S for the consumer thread; past that (or when
        no consumer thread runs, or the producer is that thread, which would wait for itself)
        the rest is spilled to an unbounded side queue that is delivered next, in order.
        """
        if self._select.shape[0] < events.shape[0]:
            self._select = np.zeros(events.shape[0], CANONICAL_EVENT)
        n = dk.select(self._select, events, mask, self.index)
        if not n:
            return 0
        self._critical_routed += n
        batch = self._select[:n]
        with self._spill_lock:
            written = 0 if self._spill else self.critical.publish_nowait(batch)
            if written < n and not self._spill and self._running_elsewhere():
                written += self._wait_and_publish(batch, written)
            if written < n:
                self._spill.append(batch[written:].copy())
                self._spilled += n - written
                self.wait.signal()
        return n

    def _running_elsewhere(self) -> bool:
        """True when a consumer thread runs and it is not the caller (so waiting can help)."""
        ident = self.thread_ident
        return ident is not None and ident != threading.get_ident()

    def _wait_and_publish(self, batch: np.ndarray, written: int) -> int:
        """Wait for room (bounded) and publish the rest; return how many more got in."""
        try:
            return self.critical.publish(batch[written:], timeout=CRITICAL_WAIT_S)
        except TimeoutError as exc:
            return int(getattr(exc, "written", 0))

    # -- consumer side (its own thread) --------------------------------------------------------

    def run(self, cancel: CancelToken) -> None:
        """Deliver until cancelled and both rings are empty (the TaskGroup's thread body)."""
        self.thread_ident = threading.get_ident()
        try:
            while True:
                self.poll()
                # no second poll to learn the rings are empty: the cursors say so, and the
                # wait returns at once when something is pending (a woken consumer's next
                # step matters: the wake chain's next consumer waits for this one's GIL)
                if cancel.cancelled and not self.has_pending():
                    return
                self.wait.wait_for(self.has_pending, timeout=0.05)
        finally:
            self.thread_ident = None

    def poll(self) -> int:
        """Deliver what is ready now, critical first; return the number of events handled."""
        return self._deliver_rings() + self._deliver_spill()

    def has_pending(self) -> bool:
        """True while any ring or the spill queue holds undelivered events.

        The wait predicate, evaluated several times per wake-up: it compares the cursors
        directly instead of calling a kernel per ring. A read racing a publish can only be
        stale, and a stale "nothing" is answered by the publisher's signal that follows.
        """
        crit, md = self.critical.cursors, self.market.cursors
        return bool(crit[HEAD] != crit[TAIL] or md[HEAD] != md[TAIL] or self._spill)

    def pending(self) -> int:
        """Events waiting for this consumer."""
        spilled = sum(len(b) for b in list(self._spill))
        return self.critical.size() + self.market.size() + spilled

    def _deliver_rings(self) -> int:
        """Take the next batch of both rings (one kernel call), handle it; return how many."""
        n, kept = self._take(self._batch, self.clock.now_ns())
        if n:
            if self.chain is not None:
                self.chain.wake_after(self.index)  # before the handler: never held up by it
            self.wait.signal()  # room again: a waiting lossless producer goes on
            self._filtered += int(n - kept)
            self._call(self._batch[:kept])
        return n

    def _take(self, out: np.ndarray, now_ns: int) -> tuple[int, int]:
        """Drain, version filter and latency of both rings, critical first, in one call."""
        crit, md = self.critical, self.market
        return _take_batch(out, crit.cursors, crit.counters, crit.records, md.cursors,
                           md.counters, md.records, self.min_version, CRITICAL_KIND_MASK,
                           self.latency.counts, now_ns)

    def _deliver_spill(self) -> int:
        """Deliver spilled critical events once the critical ring has caught up."""
        if not self._spill or self.critical.size():
            return 0
        with self._spill_lock:
            batch = self._spill.popleft() if self._spill else None
        if batch is None:
            return 0
        self.latency.record_batch(batch["ingest_ns"], self.clock.now_ns())  # never filtered
        self._call(batch)
        return batch.shape[0]

    def _call(self, view: np.ndarray) -> None:
        """Hand a read-only view to the handler; count it and any errors it raised."""
        if not view.shape[0]:
            return
        view.flags.writeable = False
        outcome = self.handler.deliver(view)
        self._batches += 1
        self._delivered += view.shape[0]
        if outcome.errors:
            self._on_error(view, outcome)

    def _on_error(self, view: np.ndarray, outcome) -> None:
        """Count a raising handler, log it with the trace id, keep a copy in the DLQ."""
        self._errors += outcome.errors
        first = view[outcome.first_index]
        log.error("consumer %s: handler raised on %d event(s); first trace_id=%#x: %r",
                  self.name, outcome.errors, int(first["trace_id"]), outcome.error)
        if self.dlq is not None:
            self.dlq.offer(view[outcome.first_index:outcome.first_index + 1],
                           DeadLetterReason.HANDLER_ERROR, self.index)

    def stats(self) -> ConsumerStats:
        """A snapshot of this consumer's counters and handler-entry latency."""
        md, crit = self.market.stats(), self.critical.stats()
        return ConsumerStats(
            name=self.name, mode=self.handler.mode, routed=md.published + self._critical_routed,
            delivered=self._delivered, coalesced=md.coalesced, dropped=md.dropped,
            filtered=self._filtered, errors=self._errors, batches=self._batches,
            spilled=self._spilled, ring_high_water=md.high_water,
            critical_high_water=crit.high_water, pending=self.pending(),
            latency_us=self.latency.snapshot())
