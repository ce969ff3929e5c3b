"""Ordering kernels: the dispatcher's per-stream reorder stage over preallocated arrays.

A stream is one (venue, instrument, event_type), packed into an int64 key by
:func:`stream_key_nb`. Streams are independent: there is no global order. Per stream the stage
keeps ``last_emitted`` (the highest sequence released, for the life of the stage) and a small
reorder buffer of held events sorted by sequence. An event is released at once when it
continues the stream, held when it leaves a gap, and dropped when its sequence was already
released. Held events wait at most ``lateness_ns`` after they arrived, then are released in
order with the gap skipped.

Why persistent ``last_emitted``: the Go original deleted a stream's state whenever its buffer
emptied, so ``last_emitted`` fell back to 0 and every in-order event that did not start at 1 sat
out the whole tolerance (150-200 ms added to every event). Here state lives as long as the stage.

Sequence kinds, per event (``seq_first``, ``seq``):

- ``seq == 0``: no usable sequence; ``ingest_ns`` becomes the sequence and the event is
  monotonic-only.
- ``seq_first == 0``: monotonic-only (ticker event time): released whenever ``seq`` is above
  ``last_emitted``; no contiguity is promised, so such events are never held.
- otherwise contiguous, covering ``seq_first..seq`` (Binance depth ``U..u``; single-sequence
  events have ``seq_first == seq``): released when ``seq_first <= last_emitted + 1``.

Everything is a free ``@njit`` function over int64 arrays the owner
(:class:`meltica_nb.stream_order.StreamOrder`) preallocates; time comes in as ``now_ns`` so
replay and live behave the same. Outputs are slot handles into the caller's record pool:
``out_ready`` in release order, ``out_dropped`` for the caller to release. One call serves a
whole batch, because a Numba call costs far more than ordering one event.

Every kernel is compiled with ``_nrt=False``: none allocates, and with the Numba runtime on,
each call of a helper that passes arrays on to another helper pays atomic reference-count
updates on every array argument (numba issue #2345), measured at ~400 ns per event here instead
of ~5 ns. The per-event helpers are also ``inline="always"`` so the batch loop carries no call
frames passing a dozen array structs. Adding an allocation to a kernel fails compilation,
loudly, rather than slowing it down.
"""

import numpy as np
from numba import njit

#: Sentinel in the hash table's ``keys`` for an unused entry (packed keys are never negative).
EMPTY_KEY = -1

#: Status: the call was served.
OK = 0
#: Status: a new stream did not fit; nothing in the batch was ordered (raise max_streams).
TABLE_FULL = 1
#: Status: a stream key was negative; nothing in the batch was ordered.
BAD_KEY = 2
#: Status: array lengths or arguments do not fit the state; nothing was ordered.
BAD_ARGS = 3

#: ``counts_out`` column: slots written to ``out_ready``.
COUNT_READY = 0
#: ``counts_out`` column: slots written to ``out_dropped``.
COUNT_DROPPED = 1
#: ``counts_out`` column: index of the batch event behind a TABLE_FULL / BAD_KEY status, else -1.
COUNT_ERROR_AT = 2
#: Length of ``counts_out``.
N_COUNTS = 3

#: ``meta`` entry: number of streams registered (rows in use in every per-stream array).
META_STREAMS = 0
#: ``meta`` entry: events held across all streams (bounds the output size of the next call).
META_HELD = 1
#: Length of ``meta``.
N_META = 2

#: Per-stream counter column: events released.
RELEASED = 0
#: Per-stream counter column: events dropped because their sequence was already released/held.
DUPLICATES = 1
#: Per-stream counter column: sequence numbers skipped when a held event was released over a
#: gap (not counted before the first release: a stream's start is unknown).
GAPS_SKIPPED = 2
#: Per-stream counter column: events force-released because the buffer was full.
FORCED = 3
#: Per-stream counter column: held events released by the lateness tolerance.
EXPIRED = 4
#: Per-stream counter column: events dropped for a malformed sequence (negative,
#: ``seq_first > seq``, or no sequence and no ingest time).
INVALID = 5
#: Per-stream counter column: most events ever held at once.
HELD_HIGH_WATER = 6
#: Width of the per-stream counters array.
N_COUNTERS = 7

#: Stream key layout: venue in bits 40-55, instrument in bits 8-39, event_type in bits 0-7.
VENUE_BITS = 16
INSTRUMENT_BITS = 32
EVENT_TYPE_BITS = 8
INSTRUMENT_SHIFT = EVENT_TYPE_BITS
VENUE_SHIFT = EVENT_TYPE_BITS + INSTRUMENT_BITS
VENUE_MASK = (1 << VENUE_BITS) - 1
INSTRUMENT_MASK = (1 << INSTRUMENT_BITS) - 1
EVENT_TYPE_MASK = (1 << EVENT_TYPE_BITS) - 1

_GOLDEN = 0x9E3779B1  # 32-bit golden-ratio multiplier; times a 31-bit value it stays in int64
_LOW31 = 0x7FFFFFFF
_INT64_MAX = (1 << 63) - 1


@njit(cache=True, _nrt=False)
def stream_key_nb(venue, instrument, event_type):
    """Pack (venue, instrument, event_type) into one int64 stream key, masking each field.

    Callers build keys straight from record columns (uint16 / uint8), hence the int64 casts.
    """
    v = np.int64(venue) & VENUE_MASK
    i = np.int64(instrument) & INSTRUMENT_MASK
    t = np.int64(event_type) & EVENT_TYPE_MASK
    return (v << VENUE_SHIFT) | (i << INSTRUMENT_SHIFT) | t


@njit(cache=True, _nrt=False)
def _hash_slot(key, mask):
    """Home entry of ``key``: fold venue and instrument bits together, then mix by multiply.

    Only 31 bits are multiplied so the product fits int64 (no wrap-around, identical with and
    without JIT).
    """
    h = (key ^ (key >> 21) ^ (key >> 42)) & _LOW31
    h = h * _GOLDEN
    return (h ^ (h >> 29)) & mask


@njit(cache=True, _nrt=False)
def _add_stream(entry, key, table_keys, table_index, stream_keys, meta):
    """Register ``key`` at a free hash entry as the next stream row; -1 if all rows are used."""
    n = meta[META_STREAMS]
    if n >= stream_keys.shape[0]:
        return -1
    table_keys[entry] = key
    table_index[entry] = n
    stream_keys[n] = key
    meta[META_STREAMS] = n + 1
    return n


@njit(cache=True, _nrt=False)
def _find_or_add(key, table_keys, table_index, stream_keys, meta):
    """Return the stream row of ``key`` (linear probing), adding it if new; -1 when full."""
    mask = table_keys.shape[0] - 1
    entry = _hash_slot(key, mask)
    for _ in range(table_keys.shape[0]):
        k = table_keys[entry]
        if k == key:
            return table_index[entry]
        if k == EMPTY_KEY:
            return _add_stream(entry, key, table_keys, table_index, stream_keys, meta)
        entry = (entry + 1) & mask
    return -1


@njit(cache=True, _nrt=False)
def _resolve_streams(out_stream, counts_out, keys, table_keys, table_index, stream_keys, meta):
    """Map every key of the batch to its stream row before any event is ordered.

    A separate first pass makes a bad key or a full table fail the batch as a whole: no slot
    is released or held that the caller would then lose track of when the owner raises.
    """
    for i in range(keys.shape[0]):
        key = keys[i]
        if key < 0:
            counts_out[COUNT_ERROR_AT] = i
            return BAD_KEY
        row = _find_or_add(key, table_keys, table_index, stream_keys, meta)
        if row < 0:
            counts_out[COUNT_ERROR_AT] = i
            return TABLE_FULL
        out_stream[i] = row
    return OK


@njit(cache=True, _nrt=False, inline="always")
def _effective(seq_first, seq, ingest_ns):
    """Return the (seq_first, seq) to order by, with the ingest-time fallback; (-1, -1) if bad."""
    if seq == 0:
        if ingest_ns <= 0:
            return -1, -1
        return 0, ingest_ns
    if seq < 0 or seq_first < 0 or seq_first > seq:
        return -1, -1
    return seq_first, seq


@njit(cache=True, _nrt=False)
def _gap(seq_first, last):
    """Sequence numbers skipped when an event starting at ``seq_first`` follows ``last``.

    Zero before the first release: where a stream starts (a depth stream after its snapshot, a
    trade id) is unknown, so a count from 0 would be noise. Only contiguous events are ever
    held, so a monotonic event (``seq_first == 0``) never skips anything here.
    """
    if last == 0 or seq_first <= last + 1:
        return 0
    return seq_first - last - 1


@njit(cache=True, _nrt=False, inline="always")
def _emit(out_ready, counts_out, last_emitted, counters, row, seq, slot):
    """Append ``slot`` to the ready output and advance the stream's ``last_emitted``."""
    out_ready[counts_out[COUNT_READY]] = slot
    counts_out[COUNT_READY] += 1
    last_emitted[row] = seq
    counters[row, RELEASED] += 1


@njit(cache=True, _nrt=False)
def _emit_over_gap(out_ready, counts_out, last_emitted, counters, row, seq_first, seq, slot,
                   reason):
    """Release a held (or forced) event that may skip a gap, counting the gap and the reason."""
    counters[row, GAPS_SKIPPED] += _gap(seq_first, last_emitted[row])
    counters[row, reason] += 1
    _emit(out_ready, counts_out, last_emitted, counters, row, seq, slot)


@njit(cache=True, _nrt=False, inline="always")
def _drop(out_dropped, counts_out, counters, row, slot, reason):
    """Hand ``slot`` back through the dropped output, counting why."""
    out_dropped[counts_out[COUNT_DROPPED]] = slot
    counts_out[COUNT_DROPPED] += 1
    counters[row, reason] += 1


@njit(cache=True, _nrt=False)
def _drain_contiguous(out_ready, out_dropped, counts_out, last_emitted, counters, b_seq_first,
                      b_seq, b_slot, row, n, start):
    """Consume held entries from ``start`` while they continue the stream; return the stop.

    Entries at or below ``last_emitted`` (overtaken by a range event) are duplicates now.
    """
    k = start
    while k < n:
        last = last_emitted[row]
        if b_seq[k] <= last:
            _drop(out_dropped, counts_out, counters, row, b_slot[k], DUPLICATES)
        elif b_seq_first[k] <= last + 1:
            _emit(out_ready, counts_out, last_emitted, counters, row, b_seq[k], b_slot[k])
        else:
            break
        k += 1
    return k


@njit(cache=True, _nrt=False)
def _remove_front(b_seq_first, b_seq, b_arrival, b_slot, n, k):
    """Shift out the first ``k`` of ``n`` held entries in one pass (not one shift per event)."""
    for i in range(k, n):
        b_seq_first[i - k] = b_seq_first[i]
        b_seq[i - k] = b_seq[i]
        b_arrival[i - k] = b_arrival[i]
        b_slot[i - k] = b_slot[i]


@njit(cache=True, _nrt=False)
def _pop_front(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
               buf_seq, buf_arrival, buf_slot, counters, row, stop, reason):
    """Release held entries ``[0, stop)`` over their gaps, then every entry that now continues.

    With ``stop == 0`` this is the plain drain run after every release.
    """
    b_seq_first = buf_seq_first[row]
    b_seq = buf_seq[row]
    b_slot = buf_slot[row]
    for i in range(stop):
        _emit_over_gap(out_ready, counts_out, last_emitted, counters, row, b_seq_first[i],
                       b_seq[i], b_slot[i], reason)
    n = buf_len[row]
    k = _drain_contiguous(out_ready, out_dropped, counts_out, last_emitted, counters,
                          b_seq_first, b_seq, b_slot, row, n, stop)
    if k > 0:
        _remove_front(b_seq_first, b_seq, buf_arrival[row], b_slot, n, k)
        buf_len[row] = n - k
        meta[META_HELD] -= k


@njit(cache=True, _nrt=False)
def _due_stop(b_arrival, n, now_ns, lateness_ns):
    """One past the last held entry whose wait reached the tolerance; 0 when none is due.

    Entries below a due one are released with it, even if they arrived later: they are
    smaller, so holding them longer would only turn them into drops.
    """
    for i in range(n - 1, -1, -1):
        if now_ns - b_arrival[i] >= lateness_ns:
            return i + 1
    return 0


@njit(cache=True, _nrt=False, inline="always")
def _expire_due(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
                buf_seq, buf_arrival, buf_slot, counters, row, now_ns, lateness_ns):
    """Release the stream's held events whose wait reached ``lateness_ns`` (and those below)."""
    n = buf_len[row]
    if n == 0:
        return
    stop = _due_stop(buf_arrival[row], n, now_ns, lateness_ns)
    if stop > 0:
        _pop_front(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
                   buf_seq, buf_arrival, buf_slot, counters, row, stop, EXPIRED)


@njit(cache=True, _nrt=False)
def _held_index(b_seq, n, seq):
    """Index of ``seq`` among the ``n`` sorted held sequences, or -1 (binary search)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if b_seq[mid] < seq:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and b_seq[lo] == seq:
        return lo
    return -1


@njit(cache=True, _nrt=False)
def _insert(meta, buf_len, buf_seq_first, buf_seq, buf_arrival, buf_slot, counters, row,
            seq_first, seq, arrival_ns, slot):
    """Hold an event, keeping the row sorted by seq (insertion from the back: usually last)."""
    b_seq_first = buf_seq_first[row]
    b_seq = buf_seq[row]
    b_arrival = buf_arrival[row]
    b_slot = buf_slot[row]
    p = buf_len[row]
    while p > 0 and b_seq[p - 1] > seq:
        b_seq_first[p] = b_seq_first[p - 1]
        b_seq[p] = b_seq[p - 1]
        b_arrival[p] = b_arrival[p - 1]
        b_slot[p] = b_slot[p - 1]
        p -= 1
    b_seq_first[p] = seq_first
    b_seq[p] = seq
    b_arrival[p] = arrival_ns
    b_slot[p] = slot
    buf_len[row] += 1
    meta[META_HELD] += 1
    if buf_len[row] > counters[row, HELD_HIGH_WATER]:
        counters[row, HELD_HIGH_WATER] = buf_len[row]


@njit(cache=True, _nrt=False)
def _hold_or_force(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len,
                   buf_seq_first, buf_seq, buf_arrival, buf_slot, counters, row, seq_first, seq,
                   now_ns, slot, max_buffer):
    """Hold a gapped event; with the buffer full, force out the smallest sequence first.

    Returns False when only the buffer's front was forced out: the caller must look at the
    event again, since the release may have made it contiguous or late.
    """
    n = buf_len[row]
    if _held_index(buf_seq[row], n, seq) >= 0:
        _drop(out_dropped, counts_out, counters, row, slot, DUPLICATES)
        return True
    if n < max_buffer:
        _insert(meta, buf_len, buf_seq_first, buf_seq, buf_arrival, buf_slot, counters, row,
                seq_first, seq, now_ns, slot)
        return True
    if seq < buf_seq[row, 0]:
        _emit_over_gap(out_ready, counts_out, last_emitted, counters, row, seq_first, seq, slot,
                       FORCED)
        _pop_front(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
                   buf_seq, buf_arrival, buf_slot, counters, row, 0, FORCED)
        return True
    _pop_front(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
               buf_seq, buf_arrival, buf_slot, counters, row, 1, FORCED)
    return False


@njit(cache=True, _nrt=False, inline="always")
def _place(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
           buf_seq, buf_arrival, buf_slot, counters, row, seq_first, seq, now_ns, slot,
           max_buffer):
    """Drop, release or hold one valid event; False if it must be placed again (see above).

    A contiguous event is released even when the same seq is held (with a smaller range):
    the drain that follows drops the held twin, so exactly one of them goes out, sooner.
    """
    last = last_emitted[row]
    if seq <= last:
        _drop(out_dropped, counts_out, counters, row, slot, DUPLICATES)
        return True
    if seq_first <= last + 1:  # seq_first == 0 (monotonic) always passes
        _emit(out_ready, counts_out, last_emitted, counters, row, seq, slot)
        if buf_len[row] > 0:
            _pop_front(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len,
                       buf_seq_first, buf_seq, buf_arrival, buf_slot, counters, row, 0,
                       RELEASED)  # stop == 0: the reason is not used
        return True
    return _hold_or_force(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len,
                          buf_seq_first, buf_seq, buf_arrival, buf_slot, counters, row,
                          seq_first, seq, now_ns, slot, max_buffer)


@njit(cache=True, _nrt=False, inline="always")
def _admit(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
           buf_seq, buf_arrival, buf_slot, counters, row, seq_first, seq, ingest_ns, slot,
           now_ns, lateness_ns, max_buffer):
    """Order one event of a batch.

    The stream's overdue held events go first, exactly as a flush at ``now_ns`` would release
    them, so what is released or dropped does not depend on how often the caller flushes.
    """
    eff_first, eff_seq = _effective(seq_first, seq, ingest_ns)
    if eff_seq < 0:
        _drop(out_dropped, counts_out, counters, row, slot, INVALID)
        return
    _expire_due(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
                buf_seq, buf_arrival, buf_slot, counters, row, now_ns, lateness_ns)
    for _ in range(2):  # a forced release frees a place, so the second try always settles
        if _place(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len,
                  buf_seq_first, buf_seq, buf_arrival, buf_slot, counters, row, eff_first,
                  eff_seq, now_ns, slot, max_buffer):
            return


@njit(cache=True, _nrt=False)
def _batch_fits(out_ready, out_dropped, counts_out, out_stream, meta, buf_seq, keys, seq_first,
                seq, ingest_ns, slots, lateness_ns, max_buffer):
    """True when inputs agree in length and outputs hold every slot the batch can release.

    Each input event and each held event leaves through at most one output, so
    ``n + held`` entries per output always suffice.
    """
    n = keys.shape[0]
    same = (seq_first.shape[0] == n and seq.shape[0] == n and ingest_ns.shape[0] == n
            and slots.shape[0] == n)
    room = n + meta[META_HELD]
    outputs = (out_ready.shape[0] >= room and out_dropped.shape[0] >= room
               and out_stream.shape[0] >= n and counts_out.shape[0] >= N_COUNTS)
    limits = 1 <= max_buffer <= buf_seq.shape[1] and lateness_ns >= 0
    return same and outputs and limits


@njit(cache=True, _nrt=False)
def order_batch(out_ready, out_dropped, counts_out, out_stream, table_keys, table_index,
                stream_keys, meta, last_emitted, buf_len, buf_seq_first, buf_seq, buf_arrival,
                buf_slot, counters, keys, seq_first, seq, ingest_ns, slots, now_ns, lateness_ns,
                max_buffer):
    """Order a batch of events; return a status (OK, TABLE_FULL, BAD_KEY, BAD_ARGS).

    Ready slots go to ``out_ready`` in release order, dropped slots (duplicates, late, invalid)
    to ``out_dropped``; ``counts_out`` gets their counts. ``out_stream`` is scratch receiving
    each event's stream row. Events are taken in batch order, all arriving at ``now_ns``.
    On a non-OK status nothing was released, held or dropped.
    """
    counts_out[:] = 0
    counts_out[COUNT_ERROR_AT] = -1
    if not _batch_fits(out_ready, out_dropped, counts_out, out_stream, meta, buf_seq, keys,
                       seq_first, seq, ingest_ns, slots, lateness_ns, max_buffer):
        return BAD_ARGS
    status = _resolve_streams(out_stream, counts_out, keys, table_keys, table_index,
                              stream_keys, meta)
    if status != OK:
        return status
    for i in range(keys.shape[0]):
        _admit(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
               buf_seq, buf_arrival, buf_slot, counters, out_stream[i], seq_first[i], seq[i],
               ingest_ns[i], slots[i], now_ns, lateness_ns, max_buffer)
    return OK


@njit(cache=True, _nrt=False)
def flush_due(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len, buf_seq_first,
              buf_seq, buf_arrival, buf_slot, counters, now_ns, lateness_ns):
    """Release, in every stream, the held events whose wait reached ``lateness_ns``.

    Run on the flush tick (50 ms by default) and at shutdown (with a far-future ``now_ns``).
    Gaps are skipped and counted; held events that then continue the stream follow at once.
    Returns OK, or BAD_ARGS when an output cannot take every held slot.
    """
    counts_out[:] = 0
    counts_out[COUNT_ERROR_AT] = -1
    held = meta[META_HELD]
    if out_ready.shape[0] < held or out_dropped.shape[0] < held or lateness_ns < 0:
        return BAD_ARGS
    for row in range(meta[META_STREAMS]):
        _expire_due(out_ready, out_dropped, counts_out, meta, last_emitted, buf_len,
                    buf_seq_first, buf_seq, buf_arrival, buf_slot, counters, row, now_ns,
                    lateness_ns)
    return OK


@njit(cache=True, _nrt=False)
def next_deadline(meta, buf_len, buf_arrival, lateness_ns):
    """Earliest time a held event becomes due (arrival + lateness), or -1 when none is held.

    Lets the caller sleep until exactly then instead of polling.
    """
    if meta[META_HELD] == 0:
        return -1
    earliest = _INT64_MAX
    for row in range(meta[META_STREAMS]):
        for i in range(buf_len[row]):
            earliest = min(earliest, buf_arrival[row, i])
    return earliest + lateness_ns
