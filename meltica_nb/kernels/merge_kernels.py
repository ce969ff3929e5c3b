"""Merge kernels: route fragments into merge windows, close windows by time or count, emit.

A merged subscription ("rule") merges one (instrument, event type) across 2..V venues. Each
rule has at most one open window (windows never overlap): it opens on the first fragment,
keeps the latest fragment of each venue, and closes when ``window_ns`` has passed since it
opened or after ``max_events`` fragments, whichever comes first. A closed window that every
venue contributed to is emitted; a partial one is emitted flagged PARTIAL, suppressed (counted
with the venues that were missing) or dropped (counted), by the rule's policy. A fragment whose
ingest time is before the close of the rule's last window belongs to a closed window: it is
late, dropped from the merge and counted.

Time is the fragment's ``ingest_ns`` (engine receive time, on the injected clock), so a replay
merges exactly as the live run did: a window covers ``[open, open + window_ns)``; a fragment at
or past the end closes the window before it opens the next one, and the batch's ``now_ns``
closes windows nobody sent a fragment to since.

State is plain arrays indexed by rule row ``r`` (see the column constants): ``rules[R,
N_RULE_COLS]`` and ``venue_pos[R, n_venue_ids]`` (the subscription; each venue id's position
in the rule's venue list, -1 if not listed), ``windows[R, N_WIN_COLS]`` (the open window),
``fragments[R, V]`` (CanonicalEvents, the latest per venue position), ``counters[R,
N_COUNTERS]``, ``missing[R, V]`` and ``late[R, V]`` (per venue telemetry) and ``next_id[1]``
(the next merge id). Emitted windows are written to ``out_merged`` (MERGED_EVENT)
and ``out_events`` (the MERGED CanonicalEvent announcing it, ``merged_slot`` = its index in
``out_merged`` until the caller maps it to a pool slot). ``blank`` is one zero MERGED_EVENT,
copied over each output record before it is filled (records are reused scratch).
"""

import numpy as np
from numba import njit

from meltica_nb.schema import EventType, Flag

# rules[r, :]: the subscription of rule row r
R_ACTIVE = 0       # 1 while the row holds a subscription (the caller lists active rows)
R_INSTRUMENT = 1
R_TYPE = 2
R_N_VENUES = 3
R_WINDOW_NS = 4
R_MAX_EVENTS = 5
R_POLICY = 6
R_MERGE_VENUE = 7  # venue id stamped on the rule's MERGED events (its own stream)
R_SEQ = 8          # MERGED events emitted by this row, ever: their seq_provider
N_RULE_COLS = 9

# windows[r, :]: the open window of rule row r
W_OPEN = 0
W_OPEN_NS = 1
W_COUNT = 2
W_SEEN = 3         # bit p set: venue position p contributed
W_MERGE_ID = 4
W_TRACE = 5        # trace id of the fragment that opened the window
W_LAST_CLOSE = 6   # close time of the last window (0 before any): earlier fragments are late
N_WIN_COLS = 7

# counters[r, :]
C_FRAGMENTS = 0
C_WINDOWS = 1
C_EMITTED = 2
C_EMITTED_PARTIAL = 3
C_SUPPRESSED = 4
C_DROPPED_PARTIAL = 5
C_DROPPED_LATE = 6
C_CLOSED_BY_COUNT = 7
C_CLOSED_BY_TIME = 8
C_DISCARDED = 9
C_MAX_LATENESS_NS = 10
N_COUNTERS = 11

# partial-window policies
SUPPRESS = 0
EMIT = 1
DROP = 2

#: Event types and the flag the kernels use, as plain ints (compile-time constants).
BBO = int(EventType.BBO)
TICKER = int(EventType.TICKER)
MERGED = int(EventType.MERGED)
FLAG_PARTIAL = int(Flag.PARTIAL)


@njit(cache=True)
def consolidate(out_event, frags, n):
    """Best bid (highest price) and best ask (lowest) over ``frags[:n]``, with their venues.

    Sides with zero quantity are empty and skipped. Ties go to the larger quantity, then to
    the venue listed first in the subscription.
    """
    for j in range(n):
        f = frags[j]
        if f["bid_qty"] > 0 and (out_event["best_bid_venue"] == 0
                                 or f["bid_price"] > out_event["best_bid_price"]
                                 or (f["bid_price"] == out_event["best_bid_price"]
                                     and f["bid_qty"] > out_event["best_bid_qty"])):
            out_event["best_bid_price"] = f["bid_price"]
            out_event["best_bid_qty"] = f["bid_qty"]
            out_event["best_bid_venue"] = f["venue"]
        if f["ask_qty"] > 0 and (out_event["best_ask_venue"] == 0
                                 or f["ask_price"] < out_event["best_ask_price"]
                                 or (f["ask_price"] == out_event["best_ask_price"]
                                     and f["ask_qty"] > out_event["best_ask_qty"])):
            out_event["best_ask_price"] = f["ask_price"]
            out_event["best_ask_qty"] = f["ask_qty"]
            out_event["best_ask_venue"] = f["venue"]


@njit(cache=True)
def emit(r, close_ns, complete, rules, windows, fragments, blank, out_merged, out_events, k):
    """Write rule ``r``'s window as ``out_merged[k]`` and its MERGED event as ``out_events[k]``.

    Fragments are packed in the subscription's venue order, present venues only.
    """
    out_merged[k] = blank[0]
    out_events[k] = blank[0]["fragments"][0]
    m = out_merged[k]
    m["merge_id"] = windows[r, W_MERGE_ID]
    m["window_open_ns"] = windows[r, W_OPEN_NS]
    m["window_close_ns"] = close_ns
    m["trace_id"] = windows[r, W_TRACE]
    m["instrument"] = rules[r, R_INSTRUMENT]
    m["event_type"] = rules[r, R_TYPE]
    m["is_complete"] = complete
    frags = m["fragments"]
    nf = 0
    for p in range(rules[r, R_N_VENUES]):
        if (windows[r, W_SEEN] >> p) & 1:
            frags[nf] = fragments[r, p]
            nf += 1
    m["n_fragments"] = nf
    rules[r, R_SEQ] += 1
    e = out_events[k]
    e["event_type"] = MERGED
    e["venue"] = rules[r, R_MERGE_VENUE]
    e["instrument"] = rules[r, R_INSTRUMENT]
    e["seq_provider"] = rules[r, R_SEQ]
    e["seq_first"] = 0  # monotonic-only: released at once, gaps (overflow) never waited for
    e["exchange_ns"] = close_ns
    e["merged_slot"] = k
    e["merge_id"] = windows[r, W_MERGE_ID]
    e["merged_type"] = rules[r, R_TYPE]
    if not complete:
        e["flags"] = FLAG_PARTIAL
    if rules[r, R_TYPE] == BBO or rules[r, R_TYPE] == TICKER:
        consolidate(e, frags, nf)


@njit(cache=True)
def close_window(r, close_ns, by_count, rules, windows, fragments, counters, missing, blank,
                 out_merged, out_events, k):
    """Close rule ``r``'s open window at ``close_ns``; return the new number of outputs.

    Complete windows are emitted; partial ones follow the rule's policy.
    """
    nv = rules[r, R_N_VENUES]
    seen = windows[r, W_SEEN]
    complete = seen == (1 << nv) - 1
    counters[r, C_CLOSED_BY_COUNT if by_count else C_CLOSED_BY_TIME] += 1
    windows[r, W_OPEN] = 0
    windows[r, W_LAST_CLOSE] = close_ns
    policy = rules[r, R_POLICY]
    if complete or policy == EMIT:
        emit(r, close_ns, complete, rules, windows, fragments, blank, out_merged, out_events, k)
        counters[r, C_EMITTED] += 1
        if not complete:
            counters[r, C_EMITTED_PARTIAL] += 1
        k += 1
    elif policy == SUPPRESS:
        counters[r, C_SUPPRESSED] += 1
        for p in range(nv):
            if not (seen >> p) & 1:
                missing[r, p] += 1
    else:
        counters[r, C_DROPPED_PARTIAL] += 1
    windows[r, W_SEEN] = 0
    windows[r, W_COUNT] = 0
    return k


@njit(cache=True)
def count_late(r, p, t, windows, counters, late):
    """A fragment whose window closed already: count it, per venue, and its lateness."""
    counters[r, C_DROPPED_LATE] += 1
    late[r, p] += 1
    lateness = windows[r, W_LAST_CLOSE] - t
    counters[r, C_MAX_LATENESS_NS] = max(counters[r, C_MAX_LATENESS_NS], lateness)


@njit(cache=True)
def open_window(r, t, trace_id, windows, counters, next_id):
    """Open rule ``r``'s next window at ``t`` with a new merge id."""
    windows[r, W_OPEN] = 1
    windows[r, W_OPEN_NS] = t
    windows[r, W_MERGE_ID] = next_id[0]
    windows[r, W_TRACE] = trace_id
    next_id[0] += 1
    counters[r, C_WINDOWS] += 1


@njit(cache=True)
def close_expired(now_ns, active, rules, windows, fragments, counters, missing, blank,
                  out_merged, out_events, k):
    """Close every open window whose time is up at ``now_ns``; return the new output count.

    ``active`` lists the rule rows in use, in row order.
    """
    for j in range(active.shape[0]):
        r = active[j]
        if windows[r, W_OPEN]:
            end = windows[r, W_OPEN_NS] + rules[r, R_WINDOW_NS]
            if now_ns >= end:
                k = close_window(r, end, False, rules, windows, fragments, counters, missing,
                                 blank, out_merged, out_events, k)
    return k


@njit(cache=True)
def merge_batch(events, now_ns, active, rules, venue_pos, windows, fragments, counters,
                missing, late, next_id, blank, out_merged, out_events):
    """Route a ready batch into the windows of every matching rule, then close what expired.

    ``active`` lists the rule rows in use (in row order): an event only visits those.
    ``venue_pos[r, venue]`` is the venue's position in rule ``r``'s list, or -1.
    ``out_merged`` / ``out_events`` need room for ``len(events) + len(active)`` records (each
    fragment closes at most one window, and each rule at most one more at the end). Returns
    the number of windows emitted.

    One flat loop on purpose: the common path (a fragment joins an open window) calls no
    helper, since a call passing arrays costs more in reference counting than the work; the
    helpers run only on the rare paths (open, close, late).
    """
    k = 0
    n_venues = venue_pos.shape[1]
    for i in range(events.shape[0]):
        ev = events[i]
        venue = np.int64(ev["venue"])
        for j in range(active.shape[0]):
            r = active[j]
            if rules[r, R_INSTRUMENT] != ev["instrument"] or rules[r, R_TYPE] != ev["event_type"] \
                    or venue >= n_venues or venue_pos[r, venue] < 0:
                continue
            p = venue_pos[r, venue]
            t = ev["ingest_ns"]
            if t < windows[r, W_LAST_CLOSE]:  # its window closed already
                count_late(r, p, t, windows, counters, late)
                continue
            if windows[r, W_OPEN] and t >= windows[r, W_OPEN_NS] + rules[r, R_WINDOW_NS]:
                k = close_window(r, windows[r, W_OPEN_NS] + rules[r, R_WINDOW_NS], False, rules,
                                 windows, fragments, counters, missing, blank, out_merged,
                                 out_events, k)
            if not windows[r, W_OPEN]:
                open_window(r, t, ev["trace_id"], windows, counters, next_id)
            fragments[r, p] = ev
            windows[r, W_SEEN] |= 1 << p
            windows[r, W_COUNT] += 1
            counters[r, C_FRAGMENTS] += 1
            if windows[r, W_COUNT] >= rules[r, R_MAX_EVENTS]:
                k = close_window(r, t, True, rules, windows, fragments, counters, missing, blank,
                                 out_merged, out_events, k)
    return close_expired(now_ns, active, rules, windows, fragments, counters, missing, blank,
                         out_merged, out_events, k)


@njit(cache=True)
def discard_windows(windows, counters, rows):
    """Forget the open windows (and last close times) of ``rows``; return how many were open.

    Used on restart and when a rule is removed: open windows are never emitted late.
    """
    n = 0
    for j in range(rows.shape[0]):
        r = rows[j]
        if windows[r, W_OPEN]:
            counters[r, C_DISCARDED] += 1
            n += 1
        windows[r, W_OPEN] = 0
        windows[r, W_SEEN] = 0
        windows[r, W_COUNT] = 0
        windows[r, W_LAST_CLOSE] = 0
    return n


@njit(cache=True)
def store_merged(records, slots, merged, events, routing_version, slot_merge_id):
    """Copy emitted windows into their MergedEvent pool ``slots`` and point their events there.

    Stamps ``routing_version`` on each record and remembers each slot's merge id (the handle
    check of :meth:`meltica_nb.orchestrator.Orchestrator.merged_event`).
    """
    for k in range(slots.shape[0]):
        slot = slots[k]
        records[slot] = merged[k]
        records[slot]["routing_version"] = routing_version
        slot_merge_id[slot] = merged[k]["merge_id"]
        events[k]["merged_slot"] = slot
