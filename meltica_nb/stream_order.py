"""StreamOrder: the dispatcher's per-stream reorder stage (owner of the ordering kernels' arrays).

Events of one stream (venue, instrument, event_type) leave in sequence order; streams are
independent. An in-order event leaves in the same :meth:`StreamOrder.push` call (zero wait);
an event after a gap is held at most ``lateness_ns`` (150 ms) for the missing ones, then
released with the gap skipped; an event whose sequence was already released is dropped and its
slot handed back for release. ``last_emitted`` persists per stream for the life of the stage,
unlike the Go original, which forgot it whenever a buffer emptied and so delayed every event by
the full tolerance. The rules per sequence kind are in
:mod:`meltica_nb.kernels.ordering_kernels`.

No clock is read here: every call takes ``now_ns`` from the caller, so a replay orders exactly
as the live run did. The caller calls :meth:`StreamOrder.flush` on a tick
(:data:`DEFAULT_FLUSH_INTERVAL_NS`) or sleeps until :meth:`StreamOrder.next_deadline`, and
flushes with a far-future ``now_ns`` at shutdown so no held slot is lost.

Not thread-safe: one owner (the dispatcher loop) calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .kernels import ordering_kernels as ok

__all__ = [
    "DEFAULT_FLUSH_INTERVAL_NS",
    "DEFAULT_LATENESS_NS",
    "DEFAULT_MAX_BUFFER",
    "DEFAULT_MAX_STREAMS",
    "StreamOrder",
    "StreamOrderStats",
    "split_stream_key",
    "stream_key",
]

#: Streams the stage can track (each costs ``4 * max_buffer`` int64 of buffer).
DEFAULT_MAX_STREAMS = 4096
#: Events one stream may hold before the smallest is force-released.
DEFAULT_MAX_BUFFER = 200
#: Longest a held event waits for the events before it.
DEFAULT_LATENESS_NS = 150_000_000
#: Suggested period of :meth:`StreamOrder.flush` calls.
DEFAULT_FLUSH_INTERVAL_NS = 50_000_000

_MIN_OUTPUT = 1024
_COUNTER_NAMES = (
    ("released", ok.RELEASED),
    ("duplicates", ok.DUPLICATES),
    ("gaps_skipped", ok.GAPS_SKIPPED),
    ("forced", ok.FORCED),
    ("expired", ok.EXPIRED),
    ("invalid", ok.INVALID),
)
_EMPTY = np.empty(0, np.int64)


def stream_key(venue: int, instrument: int, event_type: int) -> int:
    """Pack a stream's identity into the int64 key the stage is indexed by.

    Layout: venue 16 bits (40-55), instrument 32 bits (8-39), event_type 8 bits (0-7), so keys
    are never negative. Raises :class:`ConfigError` for a field out of range instead of
    silently folding two streams together (the kernel version ``stream_key_nb`` masks).
    """
    for name, value, bits in (("venue", venue, ok.VENUE_BITS),
                              ("instrument", instrument, ok.INSTRUMENT_BITS),
                              ("event_type", event_type, ok.EVENT_TYPE_BITS)):
        if not 0 <= int(value) < (1 << bits):
            raise ConfigError(f"{name} {value} does not fit {bits} unsigned bits")
    return int(ok.stream_key_nb(int(venue), int(instrument), int(event_type)))


def split_stream_key(key: int) -> tuple[int, int, int]:
    """Return the (venue, instrument, event_type) packed in ``key`` (for reports)."""
    key = int(key)
    return (
        (key >> ok.VENUE_SHIFT) & ok.VENUE_MASK,
        (key >> ok.INSTRUMENT_SHIFT) & ok.INSTRUMENT_MASK,
        key & ok.EVENT_TYPE_MASK,
    )


@dataclass(frozen=True)
class StreamOrderStats:
    """Totals over all streams since the stage was built."""

    streams: int
    held: int
    released: int
    duplicates: int
    gaps_skipped: int
    forced: int
    expired: int
    invalid: int
    held_high_water: int


def _positive_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _column(name: str, values, n: int | None) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.int64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        raise ConfigError(f"{name} must be a 1-D array of the batch length ({n}), got {arr.shape}")
    return arr


class StreamOrder:
    """Owns the per-stream reorder state and calls the ordering kernels on it.

    Every array is allocated here once (the 2-D buffers lazily by the OS, as zero pages);
    only the output arrays grow, when a batch plus the held events could outgrow them.
    Slots are int64 handles into the caller's record pool: this class never reads records.
    """

    def __init__(self, max_streams: int = DEFAULT_MAX_STREAMS,
                 max_buffer: int = DEFAULT_MAX_BUFFER,
                 lateness_ns: int = DEFAULT_LATENESS_NS):
        self.max_streams = _positive_int("max_streams", max_streams, 1)
        self.max_buffer = _positive_int("max_buffer", max_buffer, 1)
        self.lateness_ns = _positive_int("lateness_ns", lateness_ns, 0)
        table = 1 << (2 * self.max_streams - 1).bit_length()  # power of two, at most half full
        self._table_keys = np.full(table, ok.EMPTY_KEY, np.int64)
        self._table_index = np.zeros(table, np.int64)
        self._stream_keys = np.zeros(self.max_streams, np.int64)
        self._meta = np.zeros(ok.N_META, np.int64)
        self._last_emitted = np.zeros(self.max_streams, np.int64)
        self._buf_len = np.zeros(self.max_streams, np.int64)
        shape = (self.max_streams, self.max_buffer)
        self._buf_seq_first = np.zeros(shape, np.int64)
        self._buf_seq = np.zeros(shape, np.int64)
        self._buf_arrival = np.zeros(shape, np.int64)
        self._buf_slot = np.zeros(shape, np.int64)
        self._counters = np.zeros((self.max_streams, ok.N_COUNTERS), np.int64)
        self._counts = np.zeros(ok.N_COUNTS, np.int64)
        self._out_ready = np.empty(_MIN_OUTPUT, np.int64)
        self._out_dropped = np.empty(_MIN_OUTPUT, np.int64)
        self._scratch = np.empty(_MIN_OUTPUT, np.int64)
        #: Times the kernel outputs were reallocated: a caller caching them rebuilds on change.
        self.outputs_grown = 0

    # -- ordering ---------------------------------------------------------------------------

    def push(self, keys, seq_first, seq, ingest_ns, slots,
             now_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Order a batch arriving at ``now_ns``; return ``(ready_slots, dropped_slots)``.

        ``keys`` come from :func:`stream_key`; ``seq`` is the provider sequence (0: order by
        ``ingest_ns``), ``seq_first`` the first sequence the event covers (depth ``U``;
        0: monotonic-only stream). Ready slots are in release order; dropped slots
        (duplicates, late, malformed) must be released by the caller.

        Both results are views into preallocated arrays, valid until the next ``push`` or
        ``flush``: consume or copy them first. Raises :class:`ConfigError` (with nothing
        ordered) for mismatched arrays, a negative key or a full stream table.
        """
        keys = _column("keys", keys, None)
        n = keys.shape[0]
        seq_first = _column("seq_first", seq_first, n)
        seq = _column("seq", seq, n)
        ingest_ns = _column("ingest_ns", ingest_ns, n)
        slots = _column("slots", slots, n)
        self.reserve(n)
        status = ok.order_batch(
            self._out_ready, self._out_dropped, self._counts, self._scratch, self._table_keys,
            self._table_index, self._stream_keys, self._meta, self._last_emitted, self._buf_len,
            self._buf_seq_first, self._buf_seq, self._buf_arrival, self._buf_slot,
            self._counters, keys, seq_first, seq, ingest_ns, slots, int(now_ns),
            self.lateness_ns, self.max_buffer)
        self.check_status(status, keys)
        return self._results()

    def flush(self, now_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Release held events that waited ``lateness_ns`` by ``now_ns``; same results as push.

        ``dropped`` is normally empty; it is returned so no slot can ever go unaccounted.
        """
        self.reserve(0)
        status = ok.flush_due(
            self._out_ready, self._out_dropped, self._counts, self._meta, self._last_emitted,
            self._buf_len, self._buf_seq_first, self._buf_seq, self._buf_arrival,
            self._buf_slot, self._counters, int(now_ns), self.lateness_ns)
        self.check_status(status, _EMPTY)
        return self._results()

    def next_deadline(self) -> int | None:
        """When the earliest held event becomes due (ns, caller's clock); None if none is held."""
        if self.held() == 0:
            return None
        return int(ok.next_deadline(self._meta, self._buf_len, self._buf_arrival,
                                    self.lateness_ns))

    # -- reporting --------------------------------------------------------------------------

    def held(self) -> int:
        """Events currently held across all streams."""
        return int(self._meta[ok.META_HELD])

    def stats(self) -> StreamOrderStats:
        """Totals over every stream."""
        n = int(self._meta[ok.META_STREAMS])
        c = self._counters[:n]
        totals = {name: int(c[:, col].sum()) for name, col in _COUNTER_NAMES}
        high = int(c[:, ok.HELD_HIGH_WATER].max()) if n else 0
        return StreamOrderStats(streams=n, held=self.held(), held_high_water=high, **totals)

    def stream_stats(self) -> dict[int, dict]:
        """Per stream key: its fields, ``last_emitted``, ``held`` and every counter."""
        out: dict[int, dict] = {}
        for row in range(int(self._meta[ok.META_STREAMS])):
            key = int(self._stream_keys[row])
            venue, instrument, event_type = split_stream_key(key)
            c = self._counters[row]
            entry = {"venue": venue, "instrument": instrument, "event_type": event_type,
                     "last_emitted": int(self._last_emitted[row]),
                     "held": int(self._buf_len[row]),
                     "held_high_water": int(c[ok.HELD_HIGH_WATER])}
            entry.update({name: int(c[col]) for name, col in _COUNTER_NAMES})
            out[key] = entry
        return out

    # -- the dispatcher's fused kernel ---------------------------------------------------------

    def kernel_state(self) -> tuple[np.ndarray, ...]:
        """The ordering arrays in :func:`~meltica_nb.kernels.ordering_kernels.order_batch`'s
        order (outputs, then state), for a kernel that orders inside a larger call.

        Call :meth:`reserve` for the batch size first; read the outputs before the next call.
        """
        return (self._out_ready, self._out_dropped, self._counts, self._scratch,
                self._table_keys, self._table_index, self._stream_keys, self._meta,
                self._last_emitted, self._buf_len, self._buf_seq_first, self._buf_seq,
                self._buf_arrival, self._buf_slot, self._counters)

    def reserve(self, n: int) -> None:
        """Grow the outputs so ``n`` new plus every held event fit (the kernels' bound)."""
        need = n + self.held()
        if self._out_ready.shape[0] < need:
            size = max(need, 2 * self._out_ready.shape[0])
            self._out_ready = np.empty(size, np.int64)
            self._out_dropped = np.empty(size, np.int64)
            self.outputs_grown += 1
        if self._scratch.shape[0] < n:
            self._scratch = np.empty(max(n, 2 * self._scratch.shape[0]), np.int64)
            self.outputs_grown += 1

    def room(self) -> int:
        """New plus held events the outputs take now (what :meth:`reserve` last made room
        for, or more)."""
        return min(self._out_ready.shape[0], self._out_dropped.shape[0], self._scratch.shape[0])

    def _results(self) -> tuple[np.ndarray, np.ndarray]:
        return (self._out_ready[:self._counts[ok.COUNT_READY]],
                self._out_dropped[:self._counts[ok.COUNT_DROPPED]])

    def check_status(self, status: int, keys: np.ndarray) -> None:
        """Raise ConfigError for a batch the kernel refused (``keys``: its stream keys)."""
        if status == ok.OK:
            return
        at = int(self._counts[ok.COUNT_ERROR_AT])
        if status == ok.TABLE_FULL:
            raise ConfigError(
                f"stream table full: all {self.max_streams} streams are in use and key "
                f"{int(keys[at])} is new; raise max_streams")
        if status == ok.BAD_KEY:
            raise ConfigError(f"stream key {int(keys[at])} is negative; build keys with "
                              "stream_key()")
        raise ConfigError(f"ordering kernel rejected its arguments (status {status})")
