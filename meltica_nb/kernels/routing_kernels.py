"""Routing kernels: which consumers subscribe each event of a batch, from compiled rule arrays.

A consumer subscribes with one or more subscriptions, each a product ``venues x instruments x
event_types`` (``venues`` / ``instruments`` may be "any"). A consumer wants an event when *any*
of its subscriptions matches all three dimensions. The OR of products is not the product of the
per-dimension ORs (``{BTC} x {trade}`` OR ``{ETH} x {bbo}`` must not deliver ETH trades), so the
table keeps one *rule* per subscription rather than one row per consumer.

Arrays over R rules, built by :meth:`meltica_nb.routing.RoutingTable.compile`:

- ``rule_consumer[R]``: the consumer column a rule sets;
- ``type_start[N_TYPE_SLOTS + 1]`` / ``type_rules[...]``: for event type ``t`` the rules that
  accept ``t`` are ``type_rules[type_start[t]:type_start[t + 1]]`` (a CSR index, so an event
  only visits rules of its own type);
- ``rule_venue_any[R]`` / ``rule_venue_ok[R, V + 1]``: venue wildcard flag, else venue-id flags;
- ``rule_instr_any[R]`` / ``rule_instr_ok[R, I + 1]``: the same for instruments.

Ids beyond the compiled widths (and event types ``>= N_TYPE_SLOTS``) match nothing but
wildcards. Everything is a plain ``@njit`` function over arrays, one call per batch: a Numba
call costs far more than routing one event, and the hot path never touches a Python set.
"""

import numpy as np
from numba import njit

from .ring_kernels import home_slot, stream_key

#: Width of the event-type axis: room for every :class:`~meltica_nb.schema.EventType` and more.
N_TYPE_SLOTS = 16

#: Streams a route memo remembers per batch (direct-mapped by stream key; a power of two).
MEMO_SIZE = 64
#: Rows of a route memo: the stream key, the batch row routed for it, that row's deliveries.
MEMO_KEY, MEMO_ROW, MEMO_TOTAL = 0, 1, 2
N_MEMO_ROWS = 3

#: Status returned by :func:`route_batch` when ``out_mask`` is too small for the batch or the
#: table's consumers; nothing was written.
BAD_ARGS = -1


@njit(cache=True, _nrt=False)
def _fits(out_mask, n, rule_consumer):
    """True when ``out_mask`` has a row per event and a column per consumer of the rules."""
    if out_mask.shape[0] < n:
        return False
    for r in range(rule_consumer.shape[0]):  # noqa: SIM110 (no generators without the NRT)
        if rule_consumer[r] >= out_mask.shape[1]:
            return False
    return True


def new_memo():
    """Scratch for :func:`route_batch`: one per caller (it is rewritten on every call)."""
    return np.empty((N_MEMO_ROWS, MEMO_SIZE), np.int64)


@njit(cache=True, _nrt=False)
def route_batch(out_mask, events, memo, rule_consumer, type_start, type_rules,
                rule_venue_any, rule_venue_ok, rule_instr_any, rule_instr_ok):
    """Fill ``out_mask[i, c]`` (uint8) with 1 where consumer ``c`` subscribes ``events[i]``.

    ``events`` is a CANONICAL_EVENT array (``venue``, ``instrument``, ``event_type`` are read).
    Rows ``0..len(events)-1`` of ``out_mask`` are overwritten entirely (no pre-zeroing needed);
    other rows are left alone. Returns the number of (event, consumer) deliveries, or
    :data:`BAD_ARGS` when ``out_mask`` has fewer rows than events or fewer columns than the
    largest consumer of the table needs (then nothing is written).

    A batch holds few streams, so each stream is routed once: ``memo`` (:func:`new_memo`)
    remembers, per stream key, the row routed for it, and later events of the stream copy
    that row instead of walking the rules (a copy of a few bytes against ~2 ns per rule).
    """
    n = events.shape[0]
    if not _fits(out_mask, n, rule_consumer):
        return BAD_ARGS
    memo[MEMO_KEY, :] = -1
    n_columns = out_mask.shape[1]
    total = 0
    for i in range(n):
        etype = np.int64(events[i]["event_type"])
        venue = np.int64(events[i]["venue"])
        instr = np.int64(events[i]["instrument"])
        key = stream_key(venue, instr, etype)
        j = home_slot(key, MEMO_SIZE - 1)
        if memo[MEMO_KEY, j] == key:
            prev = memo[MEMO_ROW, j]
            for c in range(n_columns):
                out_mask[i, c] = out_mask[prev, c]
            total += memo[MEMO_TOTAL, j]
            continue
        row_total = _route_one(out_mask, i, etype, venue, instr, rule_consumer, type_start,
                               type_rules, rule_venue_any, rule_venue_ok, rule_instr_any,
                               rule_instr_ok)
        memo[MEMO_KEY, j], memo[MEMO_ROW, j], memo[MEMO_TOTAL, j] = key, i, row_total
        total += row_total
    return total


@njit(cache=True, _nrt=False)
def _route_one(out_mask, i, etype, venue, instr, rule_consumer, type_start, type_rules,
               rule_venue_any, rule_venue_ok, rule_instr_any, rule_instr_ok):
    """Walk the rules of ``etype`` for one event into row ``i``; return its deliveries."""
    for c in range(out_mask.shape[1]):
        out_mask[i, c] = 0
    if etype >= type_start.shape[0] - 1 or etype < 0:
        return 0
    total = 0
    for k in range(type_start[etype], type_start[etype + 1]):
        r = type_rules[k]
        c = rule_consumer[r]
        if out_mask[i, c] != 0:
            continue
        if rule_venue_any[r] == 0 and (venue >= rule_venue_ok.shape[1]
                                       or rule_venue_ok[r, venue] == 0):
            continue
        if rule_instr_any[r] == 0 and (instr >= rule_instr_ok.shape[1]
                                       or rule_instr_ok[r, instr] == 0):
            continue
        out_mask[i, c] = 1
        total += 1
    return total
