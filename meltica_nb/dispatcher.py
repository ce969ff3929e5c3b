"""Dispatcher: per-stream ordering, routing and fan-out into every subscriber's rings.

A published batch is copied into CanonicalEvent pool slots and stamped (kind, schema version,
routing version, trace id, ingest time) in one kernel call. Market data goes through the
per-stream ordering stage (:class:`StreamOrder`); critical events (exec reports, control acks
and results) skip it, because they are already in order and must never wait. Ready market data
is gathered, routed by the live routing table (one table version per batch) and copied into
every subscribed consumer's market-data ring in ONE kernel call over the stacked
:class:`~meltica_nb.ring_bank.RingBank`; critical events go consumer by consumer into the
lossless rings. The originals are then released once through the Recycler; with no subscriber
they are released at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .clock import Clock
from .consumer import CRITICAL_KIND_MASK, Consumer
from .dead_letter_queue import DeadLetterQueue, DeadLetterReason
from .errors import ConfigError, PoolError
from .kernels import dispatch_kernels as dk
from .kernels import routing_kernels as rk
from .pool import Pool
from .ring import _atomic
from .ring_bank import RingBank
from .routing import Router
from .schema import CANONICAL_EVENT, SCHEMA_VERSION, EventType, kind_of
from .stream_order import StreamOrder, StreamOrderStats
from .wake_chain import WakeChain

__all__ = ["Dispatcher", "DispatcherConfig", "DispatcherStats"]

#: kind_of_type[event_type] -> Kind, as an array the stamping kernel can index.
KIND_OF_TYPE = np.array([int(kind_of(t)) for t in EventType], dtype=np.uint8)

#: The fan-out and dispatch kernels, serialized with the rings' own kernels when JIT is
#: disabled (compiled, each call holds the GIL and is atomic with the consumers' drains).
_fan_out_kernel = _atomic(dk.fan_out)
_dispatch_kernel = _atomic(dk.dispatch_batch)


@dataclass(frozen=True)
class DispatcherConfig:
    """Ordering and batching parameters.

    Parameters
    ----------
    lateness_ms : how long an out-of-order event may wait for the gap to fill (150 ms).
    flush_ms : period of the flush tick that releases events whose wait expired (50 ms).
    max_buffer : most events held per stream (200).
    max_streams : most (venue, instrument, event type) streams tracked (4096).
    batch_max : most events stamped per kernel call; larger publishes are chunked (4096).
    acquire_timeout_s : how long publish waits for free pool slots before PoolExhausted.
    """

    lateness_ms: float = 150.0
    flush_ms: float = 50.0
    max_buffer: int = 200
    max_streams: int = 4096
    batch_max: int = 4096
    acquire_timeout_s: float = 0.1

    def __post_init__(self) -> None:
        for name in ("lateness_ms", "flush_ms", "acquire_timeout_s"):
            _check_number(name, getattr(self, name), 0.0 if name == "lateness_ms" else None)
        for name in ("max_buffer", "max_streams", "batch_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"[dispatcher] {name} must be an integer >= 1, got {value!r}")


def _check_number(name: str, value, minimum: float | None) -> None:
    """A real number, > 0 (or >= ``minimum`` when given)."""
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if ok:
        ok = value > 0 if minimum is None else value >= minimum
    if not ok:
        bound = "> 0" if minimum is None else f">= {minimum:g}"
        raise ConfigError(f"[dispatcher] {name} must be a number {bound}, got {value!r}")


@dataclass(frozen=True)
class DispatcherStats:
    """Totals of the dispatcher and its ordering stage."""

    published: int
    invalid: int
    unrouted: int
    fanned_out: int
    routing_version: int
    ordering: StreamOrderStats


class Dispatcher:
    """Orders, routes and fans out CanonicalEvent batches; the one producer of every ring."""

    def __init__(self, pool: Pool, router: Router, clock: Clock, dlq: DeadLetterQueue,
                 config: DispatcherConfig | None = None, orchestrator=None):
        self.config = config or DispatcherConfig()
        self.orchestrator = orchestrator  # windowed merges: see _merge (the hook)
        self.pool = pool
        self.router = router
        self.clock = clock
        self.dlq = dlq
        self.order = StreamOrder(self.config.max_streams, self.config.max_buffer,
                                 int(self.config.lateness_ms * 1e6))
        self.consumers: list[Consumer] = []
        self.wake_chain = WakeChain(router.n_consumers_max)
        self.bank = RingBank()
        self.lock = threading.RLock()
        self._trace_next = 1
        self._last_ingest = np.zeros(1, np.int64)
        self._published = self._n_invalid = self._unrouted = self._fanned_out = 0
        self._scratch(self.config.batch_max)

    def _scratch(self, n: int) -> None:
        """(Re)allocate the per-batch working arrays for batches of up to ``n`` events."""
        self._slots = np.empty(n, np.int64)
        self._ordered = np.empty((dk.N_COLS, n), np.int64)
        self._critical = np.empty(n, np.int64)
        self._invalid = np.empty(n, np.int64)
        self._fan_counts = np.zeros(4, np.int64)
        self._result = np.zeros(dk.N_RESULT, np.int64)
        self._outcome: list[int] = [0] * dk.N_RESULT  # the last _result, as Python ints
        self._params = np.zeros(dk.N_PARAMS, np.int64)
        self._params[dk.P_SCHEMA_VERSION] = SCHEMA_VERSION
        self._params[dk.P_LATENESS_NS] = self.order.lateness_ns
        self._params[dk.P_MAX_BUFFER] = self.order.max_buffer
        self._params[dk.P_DEBUG] = self.pool.debug
        self._args_key: tuple = ()
        self._args: tuple = ()
        self._out_ready = np.zeros(0, np.int64)  # the ordering stage's, as in self._args
        self._release_bad = np.zeros((2, 0), np.int64)
        self._ready = np.zeros(max(n, 256), CANONICAL_EVENT)
        self._mask = np.zeros((max(n, 256), self.router.n_consumers_max), np.uint8)
        self._route_memo = rk.new_memo()
        self._dlq = np.zeros(0, CANONICAL_EVENT)
        self._dlq_column = np.zeros(0, np.int64)
        self._room = 0  # events (new + held) a publish takes without growing anything

    def add_consumer(self, consumer: Consumer) -> None:
        """Fan out to ``consumer`` (its column is its index) and wake it through the chain."""
        with self.lock:
            self._room = 0  # the DLQ scratch holds one drop per event and ring: grown on use
            self.consumers.append(consumer)
            self.wake_chain.add(consumer)
            consumer.chain = self.wake_chain

    # -- producer API ------------------------------------------------------------------------

    def publish(self, events: np.ndarray) -> int:
        """Order, route and fan out a batch of CanonicalEvent records; return how many.

        Batches are processed in chunks of at most ``batch_max`` events (and never more than
        the pool holds). Raises PoolExhausted when the pool has no room for a chunk within the
        acquire timeout (backpressure): earlier chunks were accepted, nothing of the refused
        chunk or after it was.
        """
        if not isinstance(events, np.ndarray) or events.dtype != CANONICAL_EVENT:
            raise ConfigError("publish needs an array of meltica_nb.schema.CANONICAL_EVENT")
        if events.ndim != 1 or not events.flags.c_contiguous:
            events = np.ascontiguousarray(events.reshape(-1))
        n, step = events.shape[0], self._step()
        with self.lock:
            if n > step:
                for start in range(0, n, step):
                    self._publish_chunk(events[start:start + step])
            elif n:
                self._publish_chunk(events)
        return n

    def publish_to(self, column: int, events: np.ndarray) -> None:
        """Deliver critical records (control acks and results) to one consumer only."""
        step = self._step()
        with self.lock:
            for start in range(0, events.shape[0], step):
                chunk = events[start:start + step]
                n = chunk.shape[0]
                slots = self.pool.acquire_many(n, self.config.acquire_timeout_s,
                                               out=self._slots)
                self._stamp(slots, chunk)  # control records are critical: they land in _critical
                mask = np.zeros((n, self.router.n_consumers_max), np.uint8)
                mask[:, column] = 1
                self._deliver(slots.copy(), critical=True, mask=mask)

    def warm_up(self) -> None:
        """Compile the fused dispatch kernel and the stamping, ordering, routing and counting
        kernels on empty input, and size the batch scratch for the consumers there are.

        Done on the starting thread: cold, the fused kernel compiles for many seconds, which
        inside a feed's connection thread would hold up its first frames and a stop.
        """
        with self.lock:
            self._make_room(self._step())
            none = self._slots[:0]
            self.pool.warm_up()
            with self.pool.condition:
                self._dispatch(self._ready[:0])  # no event: nothing acquired, nothing moves
            dk.stamp_batch(self._ordered, self._critical, self._invalid, self.pool.records,
                           none, self._ready[:0], KIND_OF_TYPE, CRITICAL_KIND_MASK, 0,
                           SCHEMA_VERSION, 0, 0, self._last_ingest)
            self.order.push(none, none, none, none, none, 0)
            self.order.flush(0)
            mask = self.router.route(self._ready[:0])
            dk.unrouted_count(mask, 0, 0)
            dk.gather(self._ready[:0], self.pool.records, none)
            self._fan_out(none)

    def flush(self, now_ns: int | None = None) -> int:
        """Release held events whose lateness expired (the flush tick); return how many."""
        with self.lock:
            now = self.clock.monotonic_ns() if now_ns is None else now_ns
            ready, dropped = self.order.flush(now)
            self._release(dropped)
            n = self._deliver(ready.copy(), critical=False)
            if self.orchestrator is not None:  # ORCHESTRATOR HOOK (tick): windows that expired
                self._merge(self.orchestrator.on_tick())
            return n

    def flush_all(self) -> int:
        """Release every held event now, in order (used when the engine stops)."""
        with self.lock:
            deadline = self.order.next_deadline()
            if deadline is None:
                return 0
            far = max(deadline, self.clock.monotonic_ns()) + self.order.lateness_ns + 1
            return self.flush(far)

    def next_deadline_ns(self) -> int | None:
        """When the earliest held event is due, on the clock's monotonic scale."""
        with self.lock:
            return self.order.next_deadline()

    # -- internals ---------------------------------------------------------------------------

    def _step(self) -> int:
        """Events per kernel call: never more than the pool could ever hand out at once."""
        return min(self.config.batch_max, self.pool.capacity)

    def _publish_chunk(self, events: np.ndarray) -> None:
        """Acquire, stamp, order, fan out and release in one kernel call (under the pool lock).

        Critical events come back acquired and go down the lossless path; unknown event
        types go to the DLQ; a batch the ordering stage refuses raises ConfigError after
        those two are handled.
        """
        n = events.shape[0]
        if n + self.order.held() > self._room:
            self._make_room(n)
        self.pool.serve(n, self.config.acquire_timeout_s, lambda: self._dispatch(events))
        self._trace_next += n
        self._published += n
        status, n_critical, n_invalid, _, _, detail = self._outcome
        if n_invalid:
            self._refuse(self._invalid[:n_invalid].copy())
        if n_critical:
            self._deliver(self._critical[:n_critical].copy(), critical=True)
        if status == dk.ORDER_REFUSED:
            self.order.check_status(detail, self._ordered[dk.COL_KEY])
        self._after_fan_out()

    def _dispatch(self, events: np.ndarray) -> bool:
        """One attempt of the fused kernel; False when the pool has too few free slots."""
        pool = self.pool
        pool.check_open()
        params, clock = self._params, self.clock
        params[dk.P_TRACE_BASE] = self._trace_next
        params[dk.P_NOW_NS] = clock.now_ns()
        params[dk.P_MONOTONIC_NS] = clock.monotonic_ns()
        _dispatch_kernel(self._result, events, *self._kernel_args())
        self._outcome = outcome = self._result.tolist()  # one conversion, read as Python ints
        status, _, _, released, bad, detail = outcome
        if status == dk.NO_SLOTS:
            return False
        if status == dk.POISONED:
            pool.refuse_poisoned(detail)
        pool.recycler.note_released(pool, self._released_slots(status, released))
        if bad:
            raise PoolError(f"pool {pool.name}: the dispatch kernel met {bad} slot(s) it did "
                            "not own")
        return True

    def _kernel_args(self) -> tuple:
        """The dispatch kernel's arguments after ``events``, rebuilt only when one changed.

        Building 50 arguments costs microseconds of Python per batch; they change only on a
        routing flip or when a scratch array grows.
        """
        table, old = self.router.table, self._args_key
        if (not old or table is not old[0] or self._ready is not old[1] or self._dlq is not old[2]
                or self.bank.records is not old[3] or self.order.outputs_grown != old[4]):
            pool, fl = self.pool, self.pool.free_list
            self._params[dk.P_ROUTING_VERSION] = table.version
            order_state = self.order.kernel_state()
            self._out_ready = order_state[0]
            if self._release_bad.shape[1] < self._out_ready.shape[0]:
                self._release_bad = np.zeros((2, self._out_ready.shape[0]), np.int64)
            self._args = (
                self._params, self._slots, pool.records, fl.stack, fl.top, fl.state,
                fl.generation, pool.words, fl.counts, KIND_OF_TYPE, CRITICAL_KIND_MASK,
                self._last_ingest, self._critical, self._invalid, self._ordered, *order_state,
                self._fan_counts, self.wake_chain.flags, self._dlq, self._dlq_column, self._mask,
                self._ready, self._route_memo, *table.arrays(), *self.bank.arrays(),
                self._release_bad)
            self._args_key = (table, self._ready, self._dlq, self.bank.records,
                              self.order.outputs_grown)
        return self._args

    def _released_slots(self, status: int, n: int) -> np.ndarray:
        """The ``n`` slots the last dispatch kernel released (ordered ones if ordering
        refused)."""
        if status == dk.ORDER_REFUSED:
            return self._ordered[dk.COL_SLOT, :n]
        return self._out_ready[:n]

    def _stamp(self, slots: np.ndarray, events: np.ndarray) -> tuple[int, int, int]:
        """Copy events into their slots, stamp the header; return (ordered, critical, invalid)."""
        n = events.shape[0]
        counts = dk.stamp_batch(
            self._ordered, self._critical, self._invalid, self.pool.records, slots, events,
            KIND_OF_TYPE, CRITICAL_KIND_MASK, self.router.version, SCHEMA_VERSION,
            self._trace_next, self.clock.now_ns(), self._last_ingest)
        self._trace_next += n
        self._published += n
        return counts

    def _refuse(self, slots: np.ndarray) -> None:
        """Unknown event types: counted, kept in the DLQ, released."""
        self._n_invalid += slots.shape[0]
        self.dlq.offer(self.pool.records[slots], DeadLetterReason.UNKNOWN_MESSAGE)
        self.pool.release_many(slots)

    def _release(self, slots: np.ndarray) -> None:
        if slots.shape[0]:
            self.pool.release_many(slots)

    def _deliver(self, slots: np.ndarray, critical: bool, mask: np.ndarray | None = None) -> int:
        """Copy the ready slots into every subscribed ring, then release the originals."""
        n = slots.shape[0]
        if not n:
            return 0
        if critical:
            self._deliver_critical(slots, mask)
        else:
            self._fan_out(slots)
        self.pool.release_many(slots)
        return n

    def _fan_out(self, slots: np.ndarray) -> None:
        """Market data: gather, route and publish into every market-data ring in one call."""
        self._reserve(slots.shape[0])
        _fan_out_kernel(self._fan_counts, self.wake_chain.flags, self._dlq, self._dlq_column,
                        self._mask, self._ready, self.pool.records, slots, self._route_memo,
                        *self.router.table.arrays(), *self.bank.arrays())
        self._after_fan_out()

    def _after_fan_out(self) -> None:
        """Count the last fan-out, wake the consumers it fed, hand its drops to the DLQ."""
        n_dropped, unrouted, fanned_out, n_ready = self._fan_counts.tolist()
        self._unrouted += unrouted
        self._fanned_out += fanned_out
        if fanned_out:
            self.wake_chain.start()
        if n_dropped:
            self._dead_letter_drops(n_dropped)
        if self.orchestrator is not None and n_ready:  # ORCHESTRATOR HOOK (batch)
            self._merge(self.orchestrator.on_batch(self._ready[:n_ready]))

    def _make_room(self, n: int) -> None:
        """Grow the ordering stage's outputs and the fan-out scratch for ``n`` new events plus
        every held one, and remember how many that is (so a publish checks one number)."""
        self.order.reserve(n)
        self._reserve(n + self.order.held())
        self._room = min(self.order.room(), self._ready.shape[0],
                         self._dlq.shape[0] // max(1, len(self.bank)))

    def _reserve(self, n: int) -> None:
        """Grow the fan-out scratch for ``n`` events (the DLQ: one drop per event and ring)."""
        if self._ready.shape[0] < n:
            self._ready = np.zeros(n, CANONICAL_EVENT)
            self._mask = np.zeros((n, self.router.n_consumers_max), np.uint8)
        need = n * max(1, len(self.bank))
        if self._dlq.shape[0] < need:
            self._dlq = np.zeros(need, CANONICAL_EVENT)
            self._dlq_column = np.zeros(need, np.int64)

    def _dead_letter_drops(self, n_dropped: int) -> None:
        """Hand the records that full market-data rings dropped to the DLQ, per consumer."""
        columns = self._dlq_column[:n_dropped]
        for column in np.unique(columns).tolist():
            dropped = self._dlq[:n_dropped][columns == column]
            self.dlq.offer(dropped, DeadLetterReason.OVERFLOW_DROPPED, column)

    def _deliver_critical(self, slots: np.ndarray, mask: np.ndarray | None) -> None:
        """Critical events: route, then append to each subscriber's lossless ring in order."""
        n = slots.shape[0]
        if self._ready.shape[0] < n:
            self._ready = np.zeros(n, CANONICAL_EVENT)
        batch = self._ready[:n]
        dk.gather(batch, self.pool.records, slots)
        mask = self.router.route(batch) if mask is None else mask
        self._unrouted += int(dk.unrouted_count(mask, n, len(self.consumers)))
        for consumer in self.consumers:
            self._fanned_out += consumer.accept_critical(batch, mask)

    def _merge(self, merged: np.ndarray) -> None:
        """Publish the MERGED events of windows the orchestrator closed (the hook's output).

        They take the venue path (stamp, order, route, fan out): their fan-out calls the hook
        again with a batch holding no fragments, which can only close windows due by then.
        """
        if merged.shape[0]:
            self._publish_chunk(merged)

    def stats(self) -> DispatcherStats:
        """Dispatcher totals and the ordering stage's counters."""
        with self.lock:
            return DispatcherStats(self._published, self._n_invalid, self._unrouted,
                                   self._fanned_out, self.router.version, self.order.stats())
