"""Ring kernels: publish into and drain out of per-subscriber CanonicalEvent rings, in batches.

A ring is ``records`` (capacity a power of two), an int64 ``cursors`` array and an int64
``counters`` array. ``cursors[HEAD]`` is the next sequence the producer writes and
``cursors[TAIL]`` the next one the consumer reads; both only grow (Disruptor sequences), a
sequence lives at ``records[seq & (capacity - 1)]`` and the unconsumed records are
``[TAIL, HEAD)``.

Why there is no lock: these kernels are compiled without ``nogil``, so a call holds the GIL from
entry to return and is atomic with respect to every other Python thread. Every cursor change of
an operation happens inside one call, so the producer and the consumer never see a half-done
publish or drain. That is also why the producer may advance TAIL (drop-oldest): consumers copy
their batch out of the ring inside the drain call, so no consumer ever holds a ring slot.

Market-data rings coalesce BBO, book snapshots, tickers, klines and merged events latest-wins
per stream (venue, instrument, event type). A small open-addressing table (``keys``, ``seqs``:
stream key -> last sequence written for it) finds the unconsumed record to overwrite; a table
entry may be stale (the consumer moved past it), so the record is checked before it is reused.
When a quarter of the table is left, it is rebuilt from the live records; since it has at least
twice as many slots as the ring, a rebuild leaves it at most half full, which keeps probes short
and guarantees an empty slot ends every probe (and costs O(1) amortized per new stream).
"""

import numpy as np
from numba import njit

from meltica_nb.schema import EventType

#: cursors[HEAD]: next sequence the producer writes (producer-owned).
HEAD = 0
#: cursors[TAIL]: next sequence the consumer reads (consumer-owned; drop-oldest advances it).
TAIL = 1
#: cursors[STREAMS_USED]: occupied slots of the stream table (producer-owned).
STREAMS_USED = 2
#: Length of a ring's cursors array.
N_CURSORS = 3

#: counters[PUBLISHED]: events handed to publish (whatever became of them).
PUBLISHED = 0
#: counters[COALESCED]: unconsumed records overwritten by a newer event of their stream.
COALESCED = 1
#: counters[DROPPED]: oldest unconsumed records dropped to make room (sent to the DLQ).
DROPPED = 2
#: counters[DELIVERED]: records copied out to a consumer.
DELIVERED = 3
#: counters[HIGH_WATER]: most unconsumed records ever held.
HIGH_WATER = 4
#: counters[BLOCKED]: times a lossless producer had to wait for space.
BLOCKED = 5
#: Length of a ring's counters array.
N_COUNTERS = 6

#: snapshot[SNAP_SIZE]: unconsumed records (HEAD - TAIL) at the time of the snapshot.
SNAP_SIZE = N_COUNTERS
#: Length of a snapshot array: the counters, then the size.
SNAPSHOT_LEN = N_COUNTERS + 1

#: Stream-table key of an empty slot (real keys are >= 0).
EMPTY_KEY = -1

#: Bit ``t`` set: event type ``t`` is coalesced latest-wins per stream in market-data rings.
COALESCABLE_MASK = (
    (1 << int(EventType.BBO))
    | (1 << int(EventType.BOOK_SNAPSHOT))
    | (1 << int(EventType.TICKER))
    | (1 << int(EventType.KLINE))
    | (1 << int(EventType.MERGED))
)
#: Event types above this cannot be in the mask (and are never shifted by, see is_coalescable).
MAX_MASK_TYPE = 63

#: Odd multiplier below 2**31 (MurmurHash2's m): the product of a 32-bit value stays in int64.
HASH_MUL = 0x5BD1E995


@njit(cache=True, _nrt=False)
def is_coalescable(event_type):
    """True for event types whose newer event makes an unconsumed older one worthless."""
    et = np.int64(event_type)
    return et <= MAX_MASK_TYPE and (COALESCABLE_MASK >> et) & 1 == 1


@njit(cache=True, _nrt=False)
def stream_key(venue, instrument, event_type):
    """Pack (venue, instrument, event_type) into one non-negative int64: one compare per probe."""
    return (np.int64(venue) << 24) | (np.int64(instrument) << 8) | np.int64(event_type)


@njit(cache=True, _nrt=False)
def record_key(records, i):
    """The stream key of ``records[i]``."""
    rec = records[i]
    return stream_key(rec["venue"], rec["instrument"], rec["event_type"])


@njit(cache=True, _nrt=False)
def home_slot(key, mask):
    """Stream-table slot where the probe for ``key`` starts (no int64 overflow anywhere)."""
    h = key ^ (key >> 17)
    h = (h & 0xFFFFFFFF) * HASH_MUL
    return (h >> 16) & mask


@njit(cache=True, _nrt=False)
def find_slot(keys, key):
    """Linear-probe to ``key``'s slot, or to the empty slot where it would go."""
    mask = keys.shape[0] - 1
    j = home_slot(key, mask)
    while keys[j] != key and keys[j] != EMPTY_KEY:
        j = (j + 1) & mask
    return j


@njit(cache=True, _nrt=False)
def ring_size(cursors):
    """Unconsumed records, read in one call so HEAD and TAIL belong to the same instant."""
    return cursors[HEAD] - cursors[TAIL]


@njit(cache=True, _nrt=False)
def snapshot_into(out, cursors, counters):
    """Copy counters and size in one call, so a snapshot satisfies the conservation law."""
    for c in range(N_COUNTERS):
        out[c] = counters[c]
    out[SNAP_SIZE] = cursors[HEAD] - cursors[TAIL]


@njit(cache=True, _nrt=False)
def coalesce_target(keys, seqs, records, key, tail):
    """Return (table slot of ``key``, ring position of its unconsumed record or -1).

    The table entry may be stale (consumed or dropped since: ``seq < tail``); the record's own
    key is checked too, so another stream's record is never overwritten.
    """
    j = find_slot(keys, key)
    if keys[j] != key or seqs[j] < tail:
        return j, -1
    pos = seqs[j] & (records.shape[0] - 1)
    if record_key(records, pos) != key:
        return j, -1
    return j, pos


@njit(cache=True, _nrt=False)
def rebuild_streams(keys, seqs, records, tail, head):
    """Refill the stream table from the live records ``[tail, head)``; return slots used."""
    keys[:] = EMPTY_KEY
    mask = records.shape[0] - 1
    used = 0
    for seq in range(tail, head):
        pos = seq & mask
        if is_coalescable(records[pos]["event_type"]):
            key = record_key(records, pos)
            used = remember_stream(keys, seqs, find_slot(keys, key), key, seq, used)
    return used


@njit(cache=True, _nrt=False)
def remember_stream(keys, seqs, j, key, seq, used):
    """Store ``seq`` as the last sequence of ``key`` in slot ``j``; return slots used."""
    if keys[j] == EMPTY_KEY:
        keys[j] = key
        used += 1
    seqs[j] = seq
    return used


@njit(cache=True, _nrt=False)
def md_publish_core(dlq, records, cursors, counters, keys, seqs, events, mask, column,
                    coalesce):
    """Apply the market-data policy to the selected events; return (n_dropped, n_selected).

    ``coalesce`` False turns latest-wins off (a backtest consumer that must see every event
    and drains the ring after each publish, so nothing is dropped either; the dispatcher also
    passes False for a batch with nothing coalescable). Without coalescing and with room for
    the whole batch, the events are simply appended (:func:`append_selected`).

    Selected: every event when ``column < 0``, else those with ``mask[i, column]`` (a
    dispatcher's routing mask). Coalesce into the stream's unconsumed record, else append,
    dropping the oldest record into ``dlq`` (room for one per event) when the ring is full.
    Does not count PUBLISHED: the callers below do. Cursors live in locals during the loop and
    are stored once at the end (the call is atomic anyway); helpers get few arrays because
    every array argument of a Numba call costs a few ns.
    """
    mask_all = column < 0
    capacity_mask = records.shape[0] - 1
    head, tail, used = cursors[HEAD], cursors[TAIL], cursors[STREAMS_USED]
    high, n_dropped, n_coalesced, n_selected = counters[HIGH_WATER], 0, 0, 0
    if not coalesce and head - tail + events.shape[0] <= records.shape[0]:
        n_selected = append_selected(records, head, events, mask, column)
        cursors[HEAD] = head + n_selected
        counters[HIGH_WATER] = max(high, head + n_selected - tail)
        return 0, n_selected
    for i in range(events.shape[0]):
        if not (mask_all or mask[i, column]):
            continue
        n_selected += 1
        ev = events[i]
        j, key = -1, EMPTY_KEY
        if coalesce and is_coalescable(ev["event_type"]):
            key = stream_key(ev["venue"], ev["instrument"], ev["event_type"])
            j, pos = coalesce_target(keys, seqs, records, key, tail)
            if pos >= 0:
                records[pos] = events[i]
                n_coalesced += 1
                continue
        if head - tail > capacity_mask:  # full: the oldest unconsumed record goes to the DLQ
            dlq[n_dropped] = records[tail & capacity_mask]
            n_dropped += 1
            tail += 1
        records[head & capacity_mask] = events[i]
        if j >= 0:
            used = remember_stream(keys, seqs, j, key, head, used)
            if used * 4 > keys.shape[0] * 3:
                used = rebuild_streams(keys, seqs, records, tail, head + 1)
        head += 1
        high = max(high, head - tail)
    cursors[HEAD], cursors[TAIL], cursors[STREAMS_USED] = head, tail, used
    counters[COALESCED] += n_coalesced
    counters[DROPPED] += n_dropped
    counters[HIGH_WATER] = high
    return n_dropped, n_selected


@njit(cache=True, _nrt=False)
def append_selected(records, head, events, mask, column):
    """Append the selected events at ``head`` (room for all of them); return how many.

    The market-data policy with nothing to coalesce and nothing to drop: the plain copy the
    fan-out of a trade batch into a ring with room comes down to.
    """
    capacity_mask = records.shape[0] - 1
    n = 0
    for i in range(events.shape[0]):
        if column < 0 or mask[i, column]:
            records[(head + n) & capacity_mask] = events[i]
            n += 1
    return n


@njit(cache=True, _nrt=False)
def any_coalescable(events):
    """True when some event of the batch is of a coalescable type."""
    for i in range(events.shape[0]):  # noqa: SIM110 (no generators without the NRT)
        if is_coalescable(events[i]["event_type"]):
            return True
    return False


@njit(cache=True, _nrt=False)
def md_publish(dlq, records, cursors, counters, keys, seqs, events, coalesce, no_mask):
    """Publish a whole batch into a market-data ring; return how many records were dropped.

    ``dlq`` needs room for ``len(events)`` records; the dropped ones are ``dlq[:n]``, oldest
    first. ``no_mask`` is any 2-D uint8 array (every event is selected; the argument only
    gives the shared core its mask type without allocating one per call).
    """
    n_dropped, n = md_publish_core(dlq, records, cursors, counters, keys, seqs, events,
                                   no_mask, -1, coalesce)
    counters[PUBLISHED] += n
    return n_dropped


@njit(cache=True, _nrt=False)
def critical_publish(records, cursors, counters, events, start):
    """Append ``events[start:]`` in order as far as free space allows; return how many.

    Lossless: never overwrites an unconsumed record; the caller waits and calls again with
    ``start`` advanced by the count.
    """
    mask = records.shape[0] - 1
    head = cursors[HEAD]
    size = head - cursors[TAIL]
    n = min(events.shape[0] - start, records.shape[0] - size)
    if n <= 0:
        return 0
    for k in range(n):
        records[(head + k) & mask] = events[start + k]
    cursors[HEAD] = head + n
    counters[PUBLISHED] += n
    if size + n > counters[HIGH_WATER]:
        counters[HIGH_WATER] = size + n
    return n


@njit(cache=True, _nrt=False)
def drain_into(out, cursors, counters, records, max_n):
    """Copy up to ``max_n`` oldest records into ``out`` in order and free their slots.

    The copy is the consumer's auto-release: once it returns, the ring slots are free and the
    producer may reuse, coalesce or drop them while the handler reads ``out``.
    """
    mask = records.shape[0] - 1
    tail = cursors[TAIL]
    n = min(cursors[HEAD] - tail, max_n, out.shape[0])
    if n <= 0:
        return 0
    for k in range(n):
        out[k] = records[(tail + k) & mask]
    cursors[TAIL] = tail + n
    counters[DELIVERED] += n
    return n
