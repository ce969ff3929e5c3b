"""Dispatcher kernels: stamp incoming events, fan ready batches out into subscriber rings.

Free functions over arrays: the dispatcher calls ``stamp_batch`` once per published batch and
``fan_out`` once per ready batch of market data (gather, route and copy into every consumer's
market-data ring of the :class:`~meltica_nb.ring_bank.RingBank`, all in one call). Critical
events are rare and go consumer by consumer (``select``) into the lossless rings. A call costs
100-450 ns plus ~65 ns per array argument, the copy of one 128-byte record a few ns.
"""

from numba import njit

from . import ordering_kernels as ok
from .ordering_kernels import stream_key_nb
from .pool_kernels import IN_USE, count_acquired, find_poison_violation, release_slots
from .ring_kernels import PUBLISHED, any_coalescable, md_publish_core
from .routing_kernels import route_batch

#: Rows of the ``ordered`` output of :func:`stamp_batch`: the ordering stage's columns.
COL_KEY = 0
COL_SEQ_FIRST = 1
COL_SEQ = 2
COL_INGEST = 3
COL_SLOT = 4
N_COLS = 5

#: Header value meaning "no kind": the event type is unknown.
KIND_NONE = 0

#: ``dispatch_batch`` status: served.
DISPATCHED = 0
#: ``dispatch_batch`` status: fewer free pool slots than events; nothing was done.
NO_SLOTS = 1
#: ``dispatch_batch`` status (debug pools): a free slot was written after release; nothing done.
POISONED = 2
#: ``dispatch_batch`` status: the ordering stage refused the batch (``result[R_DETAIL]`` has its
#: status); the market-data slots were released, critical and invalid ones were not.
ORDER_REFUSED = 3

#: ``dispatch_batch`` params entries (the per-call scalars).
P_TRACE_BASE = 0
P_NOW_NS = 1
P_MONOTONIC_NS = 2
P_ROUTING_VERSION = 3
P_SCHEMA_VERSION = 4
P_LATENESS_NS = 5
P_MAX_BUFFER = 6
P_DEBUG = 7
N_PARAMS = 8

#: ``dispatch_batch`` result entries.
R_STATUS = 0
R_CRITICAL = 1
R_INVALID = 2
R_RELEASED = 3
R_BAD_RELEASES = 4
R_DETAIL = 5
N_RESULT = 6


@njit(cache=True, _nrt=False)
def stamp_batch(ordered, critical_out, invalid_out, records, slots, events, kind_of_type,
                critical_kind, routing_version, schema_version, trace_base, now_ns, last_ingest):
    """Copy ``events`` into pool ``slots``, stamp the header, and sort them three ways.

    Sets ``kind`` from the event type, ``schema_version``, ``routing_version`` (the orchestrator
    stamp), a ``trace_id`` where the producer set none (``trace_base + i``) and ``ingest_ns``
    where it is 0. Market data goes to the ``ordered`` columns (stream key, seq_first, seq,
    ingest time, slot), critical events to ``critical_out`` (FIFO, never ordered), unknown
    event types to ``invalid_out``. Returns ``(n_ordered, n_critical, n_invalid)``.

    Engine-stamped ingest times are strictly increasing (``last_ingest[0]`` keeps the last
    one): a stream without sequence numbers is ordered by ingest time, and two events of one
    batch stamped with the same ``now_ns`` would otherwise look like duplicates.
    """
    n_ordered = n_critical = n_invalid = 0
    n_types = kind_of_type.shape[0]
    for i in range(events.shape[0]):
        slot = slots[i]
        records[slot] = events[i]
        rec = records[slot]
        et = rec["event_type"]
        kind = kind_of_type[et] if et < n_types else KIND_NONE
        rec["kind"] = kind
        rec["schema_version"] = schema_version
        rec["routing_version"] = routing_version
        if rec["trace_id"] == 0:
            rec["trace_id"] = trace_base + i
        if rec["ingest_ns"] == 0:
            stamp = max(now_ns, last_ingest[0] + 1)
            rec["ingest_ns"] = stamp
            last_ingest[0] = stamp
        if kind == KIND_NONE:
            invalid_out[n_invalid] = slot
            n_invalid += 1
        elif critical_kind[kind]:
            critical_out[n_critical] = slot
            n_critical += 1
        else:
            ordered[COL_KEY, n_ordered] = stream_key_nb(rec["venue"], rec["instrument"], et)
            ordered[COL_SEQ_FIRST, n_ordered] = rec["seq_first"]
            ordered[COL_SEQ, n_ordered] = rec["seq_provider"]
            ordered[COL_INGEST, n_ordered] = rec["ingest_ns"]
            ordered[COL_SLOT, n_ordered] = slot
            n_ordered += 1
    return n_ordered, n_critical, n_invalid


@njit(cache=True, _nrt=False)
def fan_out(out_counts, due, dlq, dlq_column, mask, batch, pool_records, slots,
            route_memo, rule_consumer, type_start, type_rules, rule_venue_any, rule_venue_ok,
            rule_instr_any, rule_instr_ok, records, cursors, counters, stream_keys,
            stream_seqs, capacities, coalescing):
    """Deliver the ready market-data ``slots`` to every subscribed market-data ring.

    Gathers the records into ``batch``, routes them with the live table into ``mask``, then
    publishes into each ring of the bank (row ``c`` is consumer column ``c``) with the
    market-data policy: latest-wins per stream, else append, dropping the oldest into ``dlq``
    (``dlq_column`` names the ring) when full. ``due[c]`` is set to 1 when ring ``c`` took
    events (the wake chain's marks: never cleared here, the chain clears them). ``out_counts``
    receives (dropped, unrouted, deliveries, events): the ready events are
    ``batch[:events]``. The originals stay in the pool: the caller releases them.
    """
    n = slots.shape[0]
    gather(batch, pool_records, slots)
    events = batch[:n]
    route_batch(mask, events, route_memo, rule_consumer, type_start, type_rules,
                rule_venue_any, rule_venue_ok, rule_instr_any, rule_instr_ok)
    n_columns = capacities.shape[0]
    out_counts[1] = unrouted_count(mask, n, n_columns)
    n_dropped = deliveries = 0
    coalescable = any_coalescable(events)
    for c in range(n_columns):
        cap = capacities[c]
        table = max(8, 2 * cap)
        dropped, taken = md_publish_core(dlq[n_dropped:], records[c, :cap], cursors[c],
                                         counters[c], stream_keys[c, :table],
                                         stream_seqs[c, :table], events, mask, c,
                                         coalescable and coalescing[c] != 0)
        counters[c, PUBLISHED] += taken
        if taken:
            due[c] = 1
        dlq_column[n_dropped:n_dropped + dropped] = c
        n_dropped += dropped
        deliveries += taken
    out_counts[0] = n_dropped
    out_counts[2] = deliveries
    out_counts[3] = n


@njit(cache=True, _nrt=False)
def unrouted_count(mask, n, n_columns):
    """Events among the first ``n`` rows of ``mask`` that no consumer column wants."""
    unrouted = 0
    for i in range(n):
        wanted = False
        for c in range(n_columns):
            if mask[i, c]:
                wanted = True
                break
        if not wanted:
            unrouted += 1
    return unrouted


@njit(cache=True, _nrt=False)
def gather(out, records, slots):
    """Copy the records at ``slots`` into ``out`` in order (the ready batch)."""
    for i in range(slots.shape[0]):
        out[i] = records[slots[i]]


@njit(cache=True, _nrt=False)
def select(out, events, mask, column):
    """Copy the events routed to ``column`` into ``out``; return how many (critical path)."""
    n = 0
    for i in range(events.shape[0]):
        if mask[i, column]:
            out[n] = events[i]
            n += 1
    return n


@njit(cache=True, _nrt=False)
def keep_accepted(batch, n, min_version, critical_kind):
    """Compact ``batch[:n]`` in place, dropping market data older than ``min_version``.

    Critical kinds always pass. Returns the number kept; the caller counts the rest as
    filtered.
    """
    kept = 0
    for i in range(n):
        rec = batch[i]
        if critical_kind[rec["kind"]] or rec["routing_version"] >= min_version:
            if kept != i:
                batch[kept] = batch[i]
            kept += 1
    return kept


@njit(cache=True, _nrt=False)
def dispatch_batch(result, events, params, slots, pool_records, free_stack, free_top,
                   slot_state, generation, pool_words, pool_counts, kind_of_type, critical_kind,
                   last_ingest, critical_out, invalid_out, ordered, out_ready, out_dropped,
                   order_counts,
                   order_scratch, table_keys, table_index, stream_keys, meta, last_emitted,
                   buf_len, buf_seq_first, buf_seq, buf_arrival, buf_slot, order_counters,
                   fan_counts, due, dlq, dlq_column, mask, batch, route_memo, rule_consumer,
                   type_start, type_rules, rule_venue_any, rule_venue_ok, rule_instr_any,
                   rule_instr_ok, records, cursors, counters, ring_keys, ring_seqs, capacities,
                   coalescing, release_bad):
    """The dispatcher's whole market-data path for one published batch, in one call.

    Acquire pool slots (counted in ``pool_counts``, the free list's counts), stamp the events
    into them (:func:`stamp_batch`), order the market
    data (:func:`~meltica_nb.kernels.ordering_kernels.order_batch`), fan the ready events out
    to every subscribed ring (:func:`fan_out`) and release the delivered and dropped slots
    with the Recycler's kernel. The caller holds the pool's lock. Critical and invalid events
    stay acquired in ``critical_out`` / ``invalid_out`` for the caller's lossless path and
    DLQ; held events stay acquired in the ordering stage. One call instead of ten: each call
    and each argument costs, and a 256-event batch copied into 10 rings takes ~20 us.
    The per-call scalars are in ``params`` (``P_*``), so the caller can keep every other
    argument in one prebuilt tuple; ``release_bad`` is :func:`give_back`'s scratch, with room
    for every slot ``out_ready`` can hold.
    """
    result[:] = 0
    fan_counts[:] = 0  # read after every call, whether or not anything was fanned out
    n = events.shape[0]
    debug = params[P_DEBUG] != 0
    if free_top[0] < n:
        result[R_STATUS] = NO_SLOTS
        return
    if debug:
        bad = find_poison_violation(pool_words, free_stack, free_top, n)
        if bad >= 0:
            result[R_STATUS] = POISONED
            result[R_DETAIL] = bad
            return
    take_slots(slots[:n], free_stack, free_top, slot_state)
    count_acquired(pool_counts, n, free_stack.shape[0] - free_top[0])
    n_ordered, n_critical, n_invalid = stamp_batch(
        ordered, critical_out, invalid_out, pool_records, slots[:n], events, kind_of_type,
        critical_kind, params[P_ROUTING_VERSION], params[P_SCHEMA_VERSION], params[P_TRACE_BASE],
        params[P_NOW_NS], last_ingest)
    result[R_CRITICAL] = n_critical
    result[R_INVALID] = n_invalid
    if n_ordered == 0:
        return
    status = ok.order_batch(
        out_ready, out_dropped, order_counts, order_scratch, table_keys, table_index,
        stream_keys, meta, last_emitted, buf_len, buf_seq_first, buf_seq, buf_arrival, buf_slot,
        order_counters, ordered[COL_KEY, :n_ordered], ordered[COL_SEQ_FIRST, :n_ordered],
        ordered[COL_SEQ, :n_ordered], ordered[COL_INGEST, :n_ordered],
        ordered[COL_SLOT, :n_ordered], params[P_MONOTONIC_NS], params[P_LATENESS_NS],
        params[P_MAX_BUFFER])
    if status != ok.OK:
        result[R_STATUS] = ORDER_REFUSED
        result[R_DETAIL] = status
        done = ordered[COL_SLOT, :n_ordered]
    else:
        ready = out_ready[:order_counts[ok.COUNT_READY]]
        fan_out(fan_counts, due, dlq, dlq_column, mask, batch, pool_records, ready,
                route_memo, rule_consumer, type_start, type_rules, rule_venue_any, rule_venue_ok,
                rule_instr_any, rule_instr_ok, records, cursors, counters, ring_keys,
                ring_seqs, capacities, coalescing)
        done = out_ready[:order_counts[ok.COUNT_READY] + order_counts[ok.COUNT_DROPPED]]
        append_dropped(out_ready, order_counts, out_dropped)
    released, bad = give_back(release_bad, done, free_stack, free_top, slot_state, generation,
                              pool_words, debug, pool_counts)
    result[R_RELEASED] = released
    result[R_BAD_RELEASES] = bad


@njit(cache=True, _nrt=False)
def take_slots(out, free_stack, free_top, slot_state):
    """Pop ``len(out)`` slots off the free stack (the caller checked there are enough).

    Not zero-filled, unlike :func:`~meltica_nb.kernels.pool_kernels.acquire_slots`: the
    stamping step overwrites every byte of each record.
    """
    top = free_top[0]
    for i in range(out.shape[0]):
        top -= 1
        slot = free_stack[top]
        slot_state[slot] = IN_USE
        out[i] = slot
    free_top[0] = top


@njit(cache=True, _nrt=False)
def append_dropped(out_ready, order_counts, out_dropped):
    """Put the ordering stage's dropped slots right after its ready ones (one release)."""
    n_ready = order_counts[ok.COUNT_READY]
    for k in range(order_counts[ok.COUNT_DROPPED]):
        out_ready[n_ready + k] = out_dropped[k]


@njit(cache=True, _nrt=False)
def give_back(bad, slots, free_stack, free_top, slot_state, generation, pool_words, poison,
              pool_counts):
    """Release ``slots`` with the Recycler's kernel; return (released, bad handles).

    ``bad`` is caller scratch of shape (2, >= len(slots)) for the bad handles' index and
    problem code (the kernel allocates nothing).
    """
    n_bad = release_slots(bad[0], bad[1], slots, slots[:0], free_stack, free_top,
                          slot_state, generation, pool_words, poison, pool_counts)
    return slots.shape[0] - n_bad, n_bad
