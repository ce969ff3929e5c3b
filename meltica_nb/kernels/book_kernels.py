"""Book kernels: L2 order books over plain arrays, the top-K book table, sequenced diff sync.

**Books.** One book per instrument row ``i`` of four ``[n_books, depth]`` int64 arrays:
``bid_px``/``bid_qty`` sorted by price descending and ``ask_px``/``ask_qty`` ascending, so the
best level of each side is at column 0, plus one count per side (``bid_n``, ``ask_n``). A
*side* is ``(px, qty, count)`` and a flag ``descending``. Levels come as int64 ``[m, 2]`` rows
``(price, quantity)`` (a ``BOOK_LEVEL`` arena viewed as int64); the quantity is absolute and 0
deletes (deleting a level the book does not have is normal). :func:`apply_levels` applies a
run of levels (one side of one depth message) as one change: each price is found by binary
search from the previous one, and each untouched level moves at most once, by the number of
inserts minus deletes before it, so an insert and a delete near the top do not shift the deep
book. Afterwards a full side keeps its best ``depth`` levels; every level dropped (or never
inserted) for that counts as one truncation. :func:`set_level` is the one-level version.
The merge needs a little scratch (a plan per level, a sorted copy of an unsorted run): the
``*_in`` kernels take it as a :func:`level_work` array and never allocate, so they and every
kernel calling them compile without reference counting; :func:`apply_levels` and
:func:`apply_depth` allocate it per call for callers that do not keep one. :func:`merge_run`
moves any further per-level arrays along (OKX keeps each level's text form beside it).

**Book table.** The side table BookSnapshot events point into: ``rows`` rows of top-K bids and
asks (int64 ``[rows, k, 2]`` views of BOOK_LEVEL arrays), per-row level counts and a per-row
generation. Writes go round the ring; a write's generation is the table's write count after it
(``head``), unique, so an event's ``(book_row, book_slot)`` handle is stale exactly when the
row's generation changed.

**Sequenced diff sync** (:func:`sync_batch`): the "local order book" procedure of venues whose
diffs carry an update-id range ``[U, u]`` and whose REST snapshot carries ``lastUpdateId``:
buffer diffs until a snapshot arrives, drop the buffered diffs the snapshot already contains,
load it, replay the rest under a first-event rule, then check continuity of every live diff.
Two continuity rules exist:

- ``RULE_RANGE`` (Binance spot): drop ``u <= L`` before loading; the first applied diff has
  ``U <= L + 1 <= u``; then ``u < id`` is stale (ignored) and ``U > id + 1`` is a gap.
- ``RULE_PREV`` (Binance USD-M futures, ``pu``): drop ``u < L``; the first applied diff has
  ``U <= L <= u``; then every diff's ``prev_final_id`` must equal the book's id, else a gap.

A snapshot older than the first buffered diff (``L < U``) is too old: a new one is requested.
A gap, or a crossed book after a diff, drops the book and requests a snapshot while the diffs
from the gap on stay buffered, so the next snapshot resumes without losing any. While live the
buffer keeps the most recent applied diffs as history, which lets a periodic refresh snapshot
older than the book be loaded and brought forward exactly. The procedure never allocates (the
caller hands :func:`sync_batch` a :func:`level_work` array, grown when a batch asks for more),
so it compiles without reference counting, like the book kernels it calls.

Per-instrument state is an int64 ``[n, N_STATE]`` array (``S_*`` columns) with counters in
``[n, N_COUNTERS]`` (``C_*`` columns); the buffer is a ring of ``[n, cap, N_HDR]`` headers
(``H_*`` columns, sequence numbers ``S_RING_TAIL..S_RING_HEAD``) with the levels of each
buffered diff stored contiguously in a ``[n, level_cap, 2]`` level ring. Every function is
``@njit(cache=True)``; outputs come first.
"""

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from meltica_nb.schema import SCHEMA_VERSION, EventType, Kind

#: The kernels of this part (all but the allocating conveniences) never allocate (the caller
#: hands them their work arrays), so they
#: are compiled without reference counting: an NRT function pays an atomic incref/decref per
#: array argument on every call, and an update makes dozens of these calls per side.
_kernel = njit(cache=True, _nrt=False)

# --------------------------------------------------------------------------------------------
# moving levels


def shift_row(a, i, dst, src, n):
    """Move ``a[i, src:src + n]`` to ``a[i, dst:dst + n]`` (the ranges may overlap).

    A book side's levels move when a level is inserted or deleted above them; compiled, this
    is one ``memmove`` (a loop of element copies whose distance is only known at run time is
    not vectorised, and moving a 400-level side level by level cost more than everything else
    an update does). As plain Python (kernels run with NUMBA_DISABLE_JIT=1), NumPy's slice
    assignment, which copies overlapping ranges correctly.
    """
    if n > 0:
        a[i, dst:dst + n] = a[i, src:src + n]


@intrinsic
def _memmove_row(typingctx, a, i, dst, src, n):
    """``memmove`` of ``n`` items of row ``i`` of a C-contiguous 2-D array, ``src`` to ``dst``."""
    sig = types.void(a, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        row, to, frm, count = args[1:]
        to_ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [row, to])
        from_ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary,
                                            [row, frm])
        cgutils.raw_memmove(builder, to_ptr, from_ptr, count, ary.itemsize)
        return context.get_dummy_value()

    return sig, codegen


@overload(shift_row, jit_options={"cache": True, "_nrt": False})
def _shift_row_compiled(a, i, dst, src, n):
    if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
        return None

    def impl(a, i, dst, src, n):
        if n > 0:
            _memmove_row(a, i, dst, src, n)

    return impl


# --------------------------------------------------------------------------------------------
# books

#: Level row column: the price mantissa.
PX = 0
#: Level row column: the quantity mantissa.
QTY = 1


@_kernel
def _find(px, i, n, price, descending):
    """Index of ``price`` in row ``i`` or where it would be inserted (binary search)."""
    return _find_from(px, i, 0, n, price, descending)


@_kernel
def _find_from(px, i, lo, n, price, descending):
    """:func:`_find` searching columns ``lo..n`` only."""
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        p = px[i, mid]
        ahead = p > price if descending else p < price
        if ahead:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_kernel
def _remove_at(px, qty, i, j, n):
    """Shift row ``i`` left over column ``j`` (``n`` levels before)."""
    shift_row(px, i, j, j + 1, n - 1 - j)
    shift_row(qty, i, j, j + 1, n - 1 - j)


@_kernel
def _insert_at(px, qty, i, j, n, price, quantity):
    """Shift row ``i`` right from column ``j`` (``n`` levels before) and write the level."""
    shift_row(px, i, j + 1, j, n - j)
    shift_row(qty, i, j + 1, j, n - j)
    px[i, j] = price
    qty[i, j] = quantity


@_kernel
def set_level(px, qty, count, i, descending, price, quantity):
    """Set one level of one side (quantity absolute, 0 deletes); return truncations (0 or 1)."""
    n = count[i]
    j = _find(px, i, n, price, descending)
    if j < n and px[i, j] == price:
        if quantity == 0:
            _remove_at(px, qty, i, j, n)
            count[i] = n - 1
        else:
            qty[i, j] = quantity
        return 0
    if quantity == 0:
        return 0
    depth = px.shape[1]
    if j >= depth:
        return 1  # worse than every level of a full side
    dropped = 0
    if n == depth:
        n -= 1  # the worst level falls off the end
        dropped = 1
    _insert_at(px, qty, i, j, n, price, quantity)
    count[i] = n + 1
    return dropped


@_kernel
def _is_sorted(levels, off, n, descending):
    """True when the run's prices strictly follow the side's order (no repeated price)."""
    for r in range(off + 1, off + n):
        a = levels[r - 1, PX]
        b = levels[r, PX]
        if (a <= b) if descending else (a >= b):
            return False
    return True


#: Rows of a level work array (:func:`level_work`): the merge plan, a sorted copy of an
#: unsorted run, and the merge sort's second buffer.
W_PLAN = 0
W_RUN = 1
W_SORT = 2


def level_work(cap: int) -> np.ndarray:
    """Scratch for :func:`apply_levels_in` runs of up to ``cap`` levels: int64 ``[3, cap, 2]``."""
    return np.zeros((3, max(int(cap), 1), 2), np.int64)


@_kernel
def _before(a, b, descending):
    """True when price ``a`` comes strictly before ``b`` in the side's order."""
    return a > b if descending else a < b


@_kernel
def _merge_pass(dst, src, width, n, descending):
    """One bottom-up merge pass: runs of ``width`` rows of ``src`` merged pairwise into ``dst``
    (stable: of equal prices the earlier row comes first)."""
    for lo in range(0, n, 2 * width):
        mid = min(lo + width, n)
        hi = min(lo + 2 * width, n)
        a, b = lo, mid
        for w in range(lo, hi):
            if b >= hi or (a < mid and not _before(src[b, PX], src[a, PX], descending)):
                dst[w, PX] = src[a, PX]
                dst[w, QTY] = src[a, QTY]
                a += 1
            else:
                dst[w, PX] = src[b, PX]
                dst[w, QTY] = src[b, QTY]
                b += 1


@_kernel
def _sort_run(work, levels, off, n, descending):
    """Write the run into ``work[W_RUN]`` in the side's order, a repeated price keeping its
    last quantity (stable merge sort, no allocation); return its length."""
    a = work[W_RUN]
    b = work[W_SORT]
    for t in range(n):
        a[t, PX] = levels[off + t, PX]
        a[t, QTY] = levels[off + t, QTY]
    width = 1
    while width < n:
        _merge_pass(b, a, width, n, descending)
        _merge_pass(a, b, 2 * width, n, descending)
        width *= 4
    w = 0
    for t in range(n):  # repeats are adjacent, in arrival order: the last one wins
        if w > 0 and a[w - 1, PX] == a[t, PX]:
            w -= 1
        a[w, PX] = a[t, PX]
        a[w, QTY] = a[t, QTY]
        w += 1
    return w


@njit(cache=True, _nrt=False, inline="always")
def size_change(exists, quantity):
    """How a level update changes its side's length: -1 deletes a level that exists, +1 adds
    a price that does not, 0 otherwise (an update in place, or a delete of nothing)."""
    if quantity == 0:
        return -1 if exists else 0
    return 0 if exists else 1


@_kernel
def _plan(plan, px, i, n, descending, run, off, m):
    """Where each run level lands in the old row, and the running size change after it.

    ``plan[t, 0]`` is the old index of the run's price ``t`` (or where it would be inserted)
    and ``plan[t, 1]`` the cumulative change of the row's length once levels ``0..t`` apply.
    """
    lo = 0
    d = 0
    for t in range(m):
        p = run[off + t, PX]
        lo = _find_from(px, i, lo, n, p, descending)
        exists = lo < n and px[i, lo] == p
        d += size_change(exists, run[off + t, QTY])
        plan[t, 0] = lo
        plan[t, 1] = d
        if exists:
            lo += 1


@_kernel
def _segment(px, plan, run, off, i, t, n, m):
    """Old indices ``[start, end)`` between run level ``t`` and the next one."""
    p = plan[t, 0]
    start = p + (1 if p < n and px[i, p] == run[off + t, PX] else 0)
    end = plan[t + 1, 0] if t + 1 < m else n
    return start, end


@_kernel
def _move(cols, i, n, plan, run, off, m):
    """Move the untouched levels between run levels by their running shift, in place.

    ``cols`` are the side's per-level arrays, prices first. Moves are monotone, so left moves
    in increasing order and right moves in decreasing order never overwrite a level still to
    be moved; levels pushed past ``depth`` are dropped.
    """
    px = cols[0]
    depth = px.shape[1]
    for t in range(m):
        d = plan[t, 1]
        if d < 0:
            start, end = _segment(px, plan, run, off, i, t, n, m)
            for col in cols:
                shift_row(col, i, start + d, start, end - start)
    for t in range(m - 1, -1, -1):
        d = plan[t, 1]
        if d > 0:
            start, end = _segment(px, plan, run, off, i, t, n, m)
            for col in cols:
                shift_row(col, i, start + d, start, min(end, depth - d) - start)


@_kernel
def _write(px, qty, i, plan, run, off, m):
    """Write the run's non-zero levels at their new indices (after the moves)."""
    depth = px.shape[1]
    before = 0
    for t in range(m):
        q = run[off + t, QTY]
        dest = plan[t, 0] + before
        if q != 0 and dest < depth:
            px[i, dest] = run[off + t, PX]
            qty[i, dest] = q
        before = plan[t, 1]


@_kernel
def merge_run(cols, count, i, descending, run, off, m, plan):
    """Apply a run (``m >= 1`` levels in the side's order, one per price) to row ``i`` of the
    side ``cols`` (``(px, qty, ...)``: further per-level arrays move along, the caller writes
    them) and return the levels truncated.

    Each level is found by binary search from the previous one; each untouched level moves at
    most once (and only where inserts and deletes before it do not cancel). ``plan``: int64
    ``[>= m, 2]`` scratch, left holding each level's old index and running shift.
    """
    px = cols[0]
    n = count[i]
    _plan(plan, px, i, n, descending, run, off, m)
    _move(cols, i, n, plan, run, off, m)
    _write(px, cols[1], i, plan, run, off, m)
    new_n = n + plan[m - 1, 1]
    depth = px.shape[1]
    count[i] = min(new_n, depth)
    return max(new_n - depth, 0)


@_kernel
def apply_levels_in(work, px, qty, count, i, descending, levels, off, n):
    """Apply ``levels[off:off + n]`` to one side of book ``i`` as one change; return the
    number of levels truncated. ``work``: a :func:`level_work` of at least ``n`` levels (no
    allocation here).

    Quantities are absolute, 0 deletes (a missing level is fine), a price repeated in the run
    keeps its last quantity; afterwards the side keeps its best ``depth`` levels. A run in the
    side's price order (as venues send it) is merged in one pass from its first price on.
    """
    if n <= 0:
        return 0
    if _is_sorted(levels, off, n, descending):
        return merge_run((px, qty), count, i, descending, levels, off, n, work[W_PLAN])
    m = _sort_run(work, levels, off, n, descending)
    return merge_run((px, qty), count, i, descending, work[W_RUN], 0, m, work[W_PLAN])


@njit(cache=True)
def apply_levels(px, qty, count, i, descending, levels, off, n):
    """:func:`apply_levels_in` with its work array allocated per call."""
    return apply_levels_in(np.empty((3, max(n, 1), 2), np.int64), px, qty, count, i, descending,
                           levels, off, n)


@_kernel
def apply_depth_in(work, bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n, i, levels, off, n_bids,
                   n_asks):
    """Apply one depth message (``n_bids`` bid rows then ``n_asks`` ask rows from ``off``);
    ``work``: a :func:`level_work` of at least ``max(n_bids, n_asks)`` levels."""
    t = apply_levels_in(work, bid_px, bid_qty, bid_n, i, True, levels, off, n_bids)
    return t + apply_levels_in(work, ask_px, ask_qty, ask_n, i, False, levels, off + n_bids,
                               n_asks)


@njit(cache=True)
def apply_depth(bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n, i, levels, off, n_bids, n_asks):
    """:func:`apply_depth_in` with its work array allocated per call."""
    work = np.empty((3, max(n_bids, n_asks, 1), 2), np.int64)
    return apply_depth_in(work, bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n, i, levels, off,
                          n_bids, n_asks)


@njit(cache=True)
def load_snapshot(bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n, i, levels, off, n_bids,
                  n_asks):
    """Replace book ``i`` by a snapshot's levels (any order; 0 quantities skipped)."""
    bid_n[i] = 0
    ask_n[i] = 0
    return apply_depth(bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n, i, levels, off, n_bids,
                       n_asks)


@_kernel
def clear_book(bid_n, ask_n, i):
    """Empty book ``i``."""
    bid_n[i] = 0
    ask_n[i] = 0


@_kernel
def top_k(out_bids, out_asks, bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n, i):
    """Copy the best ``len(out_*)`` levels of each side into ``[k, 2]`` rows; return counts."""
    nb = min(bid_n[i], out_bids.shape[0])
    na = min(ask_n[i], out_asks.shape[0])
    for j in range(nb):
        out_bids[j, PX] = bid_px[i, j]
        out_bids[j, QTY] = bid_qty[i, j]
    for j in range(na):
        out_asks[j, PX] = ask_px[i, j]
        out_asks[j, QTY] = ask_qty[i, j]
    return nb, na


@_kernel
def best(bid_px, bid_qty, bid_n, ask_px, ask_qty, ask_n, i):
    """``(bid_px, bid_qty, ask_px, ask_qty)`` of book ``i``; an empty side reads ``0, 0``."""
    bp = bid_px[i, 0] if bid_n[i] > 0 else 0
    bq = bid_qty[i, 0] if bid_n[i] > 0 else 0
    ap = ask_px[i, 0] if ask_n[i] > 0 else 0
    aq = ask_qty[i, 0] if ask_n[i] > 0 else 0
    return bp, bq, ap, aq


@_kernel
def flagged(flags):
    """How many books a per-book ``uint8`` flag array marks (a batch's caller then looks up
    which ones; usually none, which this tells it without a NumPy call)."""
    n = 0
    for i in range(flags.shape[0]):
        n += flags[i]
    return n


@_kernel
def is_crossed(bid_px, bid_n, ask_px, ask_n, i):
    """True when both sides have levels and the best bid is at or above the best ask."""
    return bid_n[i] > 0 and ask_n[i] > 0 and bid_px[i, 0] >= ask_px[i, 0]


# --------------------------------------------------------------------------------------------
# book table


@_kernel
def table_begin(tb_gen, tb_head):
    """Claim the next table row for writing (its generation reads -1 until committed)."""
    row = tb_head[0] % tb_gen.shape[0]
    tb_gen[row] = -1
    return row


@_kernel
def table_commit(tb_nb, tb_na, tb_gen, tb_head, row, nb, na):
    """Publish a written row; return its generation (the table's write count)."""
    gen = tb_head[0] + 1
    tb_nb[row] = nb
    tb_na[row] = na
    tb_gen[row] = gen
    tb_head[0] = gen
    return gen


@_kernel
def table_write(tb_bids, tb_asks, tb_nb, tb_na, tb_gen, tb_head, bids, asks, nb, na):
    """Write ``nb`` bid and ``na`` ask ``[., 2]`` rows into the next row; return (row, gen)."""
    row = table_begin(tb_gen, tb_head)
    nb = min(nb, tb_bids.shape[1])
    na = min(na, tb_asks.shape[1])
    for j in range(nb):
        tb_bids[row, j, PX] = bids[j, PX]
        tb_bids[row, j, QTY] = bids[j, QTY]
    for j in range(na):
        tb_asks[row, j, PX] = asks[j, PX]
        tb_asks[row, j, QTY] = asks[j, QTY]
    return row, table_commit(tb_nb, tb_na, tb_gen, tb_head, row, nb, na)


# --------------------------------------------------------------------------------------------
# sequenced diff sync

#: Continuity rule: ranges ``[U, u]`` (first ``U <= L + 1 <= u``, then ``U <= id + 1``).
RULE_RANGE = 0
#: Continuity rule: previous-id chain (first ``U <= L <= u``, then ``prev_final_id == id``).
RULE_PREV = 1

#: Instrument state: no book yet; diffs are buffered until a snapshot arrives.
SYNCING = 0
#: Instrument state: the book is valid and every diff is checked and applied.
LIVE = 1
#: Instrument state: the book was dropped (gap, crossed); diffs are buffered for the next one.
RESYNC = 2

# per-instrument state columns
S_STATE = 0           # SYNCING / LIVE / RESYNC
S_BOOK_ID = 1         # update id of the book (L, then the last applied u)
S_FIRST_PENDING = 2   # 1 until the first diff after a snapshot is applied
S_NEEDS_SNAPSHOT = 3  # 1 from a snapshot request until a snapshot is loaded
S_SNAPSHOT_NS = 4     # caller clock when the last snapshot was loaded
S_UPDATE_NS = 5       # caller clock when the last diff arrived
S_EMITTED_ID = 6      # seq_provider of the last BookSnapshot event
S_BBO_BID_PX = 7      # best bid/ask of the last BBO event
S_BBO_BID_QTY = 8
S_BBO_ASK_PX = 9
S_BBO_ASK_QTY = 10
S_RING_HEAD = 11      # next buffer sequence to write
S_RING_TAIL = 12      # oldest buffered sequence
S_LVL_HEAD = 13       # next free position of the level ring (monotonic)
S_SEEN = 14           # 1 once any row arrived for the instrument
S_REQUESTED_NS = 15   # caller clock of the last snapshot request
#: Length of a state row.
N_STATE = 16

# per-instrument counter columns
C_APPLIED = 0         # diffs applied for the first time
C_REPLAYED = 1        # buffered history diffs re-applied over a refresh snapshot
C_STALE = 2           # diffs ignored as stale (u below the book id)
C_DISCARDED = 3       # buffered diffs a snapshot already contained
C_GAPS = 4            # continuity breaks
C_RESYNCS = 5         # books dropped for a new snapshot (gap or crossed)
C_CROSSED = 6         # books crossed after a diff
C_TRUNCATED = 7       # levels dropped to keep the depth
C_SNAPSHOTS = 8       # snapshots loaded
C_TOO_OLD = 9         # snapshots refused as older than the buffered diffs
C_BUFFERED = 10       # diffs buffered while waiting for a snapshot
C_BUFFER_HIGH_WATER = 11  # most diffs ever waiting in the buffer
C_BUFFER_DROPPED = 12     # waiting diffs evicted because the buffer was full
C_BOOK_EVENTS = 13    # BookSnapshot events emitted
C_BBO_EVENTS = 14     # BBO events emitted
#: Length of a counter row.
N_COUNTERS = 15

# buffer header columns (one buffered diff; its levels are in the level ring at H_LVL_OFF)
H_FIRST = 0
H_FINAL = 1
H_PREV = 2
H_INGEST = 3
H_EXCHANGE = 4
H_LVL_OFF = 5
H_NB = 6
H_NA = 7
#: Length of a buffer header row.
N_HDR = 8

#: Continuity verdicts.
APPLY = 0
STALE = 1
GAP = 2

_BOOK_SNAPSHOT = int(EventType.BOOK_SNAPSHOT)
_BBO = int(EventType.BBO)
_MARKET_DATA = int(Kind.MARKET_DATA)


@_kernel
def continuity(st, i, first_id, final_id, prev_id, rule):
    """APPLY, STALE or GAP for a diff ``[first_id, final_id]`` on instrument ``i``."""
    book_id = st[i, S_BOOK_ID]
    if rule == RULE_PREV:
        if st[i, S_FIRST_PENDING] == 0:
            if final_id <= book_id:  # a repeated diff carries nothing new: not a gap
                return STALE
            return APPLY if prev_id == book_id else GAP
        if final_id < book_id:
            return STALE
        return GAP if first_id > book_id else APPLY
    if st[i, S_FIRST_PENDING] == 1 and final_id <= book_id:
        return STALE
    if final_id < book_id:
        return STALE
    return GAP if first_id > book_id + 1 else APPLY


@_kernel
def _contained(final_id, snapshot_id, rule):
    """True when a buffered diff ending at ``final_id`` is already inside the snapshot."""
    if rule == RULE_PREV:
        return final_id < snapshot_id
    return final_id <= snapshot_id


@_kernel
def _ring_len(st, i):
    return st[i, S_RING_HEAD] - st[i, S_RING_TAIL]


@_kernel
def _ring_evict(st, counters, i):
    """Drop the oldest buffered diff (counted when it was still waiting to be applied)."""
    st[i, S_RING_TAIL] += 1
    if st[i, S_STATE] != LIVE:
        counters[i, C_BUFFER_DROPPED] += 1


@_kernel
def _ring_clear(st, i):
    st[i, S_RING_TAIL] = st[i, S_RING_HEAD]


@_kernel
def _ring_fit(st, counters, ring_hdr, i, end, lcap):
    """Evict the oldest diffs until one more header fits and the levels end by ``end``."""
    cap = ring_hdr.shape[1]
    while _ring_len(st, i) > 0:
        oldest_off = ring_hdr[i, st[i, S_RING_TAIL] % cap, H_LVL_OFF]
        if _ring_len(st, i) < cap and end - oldest_off <= lcap:
            return
        _ring_evict(st, counters, i)


@_kernel
def ring_push(st, counters, ring_hdr, ring_lv, i, first_id, final_id, prev_id, ingest_ns,
              exchange_ns, levels, off, n_bids, n_asks):
    """Append one diff and a copy of its levels; return False if it can never fit."""
    cap = ring_hdr.shape[1]
    lcap = ring_lv.shape[1]
    n = n_bids + n_asks
    if n > lcap:
        while _ring_len(st, i) > 0:
            _ring_evict(st, counters, i)
        if st[i, S_STATE] != LIVE:
            counters[i, C_BUFFER_DROPPED] += 1
        return False
    start = st[i, S_LVL_HEAD]
    pos = start % lcap
    if pos + n > lcap:
        start += lcap - pos  # keep each diff contiguous: wrap to the ring start
    _ring_fit(st, counters, ring_hdr, i, start + n, lcap)
    h = ring_hdr[i, st[i, S_RING_HEAD] % cap]
    h[H_FIRST] = first_id
    h[H_FINAL] = final_id
    h[H_PREV] = prev_id
    h[H_INGEST] = ingest_ns
    h[H_EXCHANGE] = exchange_ns
    h[H_LVL_OFF] = start
    h[H_NB] = n_bids
    h[H_NA] = n_asks
    p = start % lcap
    for r in range(n):
        ring_lv[i, p + r, PX] = levels[off + r, PX]
        ring_lv[i, p + r, QTY] = levels[off + r, QTY]
    st[i, S_LVL_HEAD] = start + n
    st[i, S_RING_HEAD] += 1
    return True


@_kernel
def _apply_to_book(work, book, counts, i, levels, off, n_bids, n_asks):
    """Apply one diff to book ``i`` (``book``: 4 level arrays, ``counts``: bid_n, ask_n, trunc)."""
    t = apply_depth_in(work, book[0], book[1], counts[0], book[2], book[3], counts[1], i, levels,
                       off, n_bids, n_asks)
    counts[2][i] += t
    return t


@_kernel
def _crossed(book, counts, i):
    return is_crossed(book[0], counts[0], book[2], counts[1], i)


@_kernel
def _request(out_requested, st, i, now_ns):
    """Ask the caller for a snapshot of instrument ``i``."""
    st[i, S_NEEDS_SNAPSHOT] = 1
    st[i, S_REQUESTED_NS] = now_ns
    out_requested[i] = 1


@_kernel
def _drop_book(out_requested, st, counters, counts, i, now_ns):
    """Resync: empty the book, request a snapshot; later diffs are buffered."""
    counters[i, C_RESYNCS] += 1
    st[i, S_STATE] = RESYNC
    counts[0][i] = 0
    counts[1][i] = 0
    for c in range(S_BBO_BID_PX, S_BBO_ASK_QTY + 1):
        st[i, c] = 0
    _request(out_requested, st, i, now_ns)


@_kernel
def _buffer(out_requested, st, counters, ring, i, row, levels, now_ns):
    """Keep a diff that arrived without a valid book; the first one asks for a snapshot."""
    ring_push(st, counters, ring[0], ring[1], i, row["first_id"], row["final_id"],
              row["prev_final_id"], row["ingest_ns"], row["exchange_ns"], levels,
              row["level_off"], row["n_bids"], row["n_asks"])
    counters[i, C_BUFFERED] += 1
    counters[i, C_BUFFER_HIGH_WATER] = max(counters[i, C_BUFFER_HIGH_WATER], _ring_len(st, i))
    if st[i, S_NEEDS_SNAPSHOT] == 0:
        _request(out_requested, st, i, now_ns)


@_kernel
def _event(out_events, blank, e, event_type, i, venue, ingest_ns, exchange_ns, seq):
    """Zero ``out_events[e]`` and write a market-data header; return the record."""
    out_events[e] = blank[0]
    ev = out_events[e]
    ev["ingest_ns"] = ingest_ns
    ev["exchange_ns"] = exchange_ns
    ev["seq_provider"] = seq
    ev["seq_first"] = 0
    ev["instrument"] = i
    ev["venue"] = venue
    ev["event_type"] = event_type
    ev["kind"] = _MARKET_DATA
    ev["schema_version"] = SCHEMA_VERSION
    return ev


@_kernel
def _bbo_changed(st, i, bp, bq, ap, aq):
    """Store the best bid/ask; True when it differs from the last BBO event."""
    if (st[i, S_BBO_BID_PX] == bp and st[i, S_BBO_BID_QTY] == bq
            and st[i, S_BBO_ASK_PX] == ap and st[i, S_BBO_ASK_QTY] == aq):
        return False
    st[i, S_BBO_BID_PX] = bp
    st[i, S_BBO_BID_QTY] = bq
    st[i, S_BBO_ASK_PX] = ap
    st[i, S_BBO_ASK_QTY] = aq
    return True


@_kernel
def _emit(out_events, blank, e, sync, book, counts, tb_lv, tb_meta, i, k, venue, ingest_ns,
          exchange_ns):
    """BookSnapshot (top-K into the table) and, if the top changed, BBO; return next ``e``."""
    st, counters = sync[0], sync[1]
    seq = st[i, S_BOOK_ID]
    if seq <= st[i, S_EMITTED_ID]:
        return e
    row = table_begin(tb_meta[2], tb_meta[3])
    nb, na = top_k(tb_lv[0][row, :k], tb_lv[1][row, :k], book[0], book[1], counts[0], book[2],
                   book[3], counts[1], i)
    gen = table_commit(tb_meta[0], tb_meta[1], tb_meta[2], tb_meta[3], row, nb, na)
    ev = _event(out_events, blank, e, _BOOK_SNAPSHOT, i, venue, ingest_ns, exchange_ns, seq)
    ev["book_row"] = row
    ev["n_bids"] = nb
    ev["n_asks"] = na
    ev["checksum"] = 0
    ev["book_slot"] = gen
    st[i, S_EMITTED_ID] = seq
    counters[i, C_BOOK_EVENTS] += 1
    bp, bq, ap, aq = best(book[0], book[1], counts[0], book[2], book[3], counts[1], i)
    if not _bbo_changed(st, i, bp, bq, ap, aq):
        return e + 1
    ev = _event(out_events, blank, e + 1, _BBO, i, venue, ingest_ns, exchange_ns, seq)
    ev["bid_price"] = bp
    ev["bid_qty"] = bq
    ev["ask_price"] = ap
    ev["ask_qty"] = aq
    counters[i, C_BBO_EVENTS] += 1
    return e + 2


@_kernel
def _too_old(st, ring_hdr, i, snapshot_id):
    """A snapshot below the first buffered diff (or, live, below a book without history)."""
    if _ring_len(st, i) > 0:
        oldest = st[i, S_RING_TAIL] % ring_hdr.shape[1]
        return snapshot_id < ring_hdr[i, oldest, H_FIRST]
    return st[i, S_STATE] == LIVE and snapshot_id < st[i, S_BOOK_ID]


@_kernel
def _discard(st, counters, ring_hdr, i, snapshot_id, rule, live):
    """Drop buffered diffs the snapshot already contains (oldest first)."""
    cap = ring_hdr.shape[1]
    while _ring_len(st, i) > 0:
        if not _contained(ring_hdr[i, st[i, S_RING_TAIL] % cap, H_FINAL], snapshot_id, rule):
            return
        st[i, S_RING_TAIL] += 1
        if not live:
            counters[i, C_DISCARDED] += 1


@_kernel
def _replay_one(work, sync, ring, book, counts, i, seq, rule, live):
    """Check and apply buffered diff ``seq``; return its verdict (GAP also when crossed)."""
    st, counters = sync[0], sync[1]
    h = ring[0][i, seq % ring[0].shape[1]]
    verdict = continuity(st, i, h[H_FIRST], h[H_FINAL], h[H_PREV], rule)
    if verdict == STALE:
        counters[i, C_STALE] += 0 if live else 1
        return STALE
    if verdict == GAP:
        counters[i, C_GAPS] += 1
        return GAP
    counters[i, C_TRUNCATED] += _apply_to_book(work, book, counts, i, ring[1][i],
                                               h[H_LVL_OFF] % ring[1].shape[1], h[H_NB], h[H_NA])
    counters[i, C_REPLAYED if live else C_APPLIED] += 1
    st[i, S_BOOK_ID] = h[H_FINAL]
    st[i, S_FIRST_PENDING] = 0
    return APPLY


@_kernel
def _replay(work, out_requested, sync, ring, book, counts, i, rule, live, now_ns):
    """Bring a freshly loaded snapshot forward through the buffer; False if it resynced."""
    st, counters = sync[0], sync[1]
    if _crossed(book, counts, i):
        counters[i, C_CROSSED] += 1
        _drop_book(out_requested, st, counters, counts, i, now_ns)
        return False
    seq = st[i, S_RING_TAIL]
    while seq < st[i, S_RING_HEAD]:
        verdict = _replay_one(work, sync, ring, book, counts, i, seq, rule, live)
        if verdict == GAP:
            st[i, S_RING_TAIL] = seq  # the diffs from the gap on wait for the next snapshot
            _drop_book(out_requested, st, counters, counts, i, now_ns)
            return False
        seq += 1
        if verdict == APPLY and _crossed(book, counts, i):
            counters[i, C_CROSSED] += 1
            st[i, S_RING_TAIL] = seq
            _drop_book(out_requested, st, counters, counts, i, now_ns)
            return False
    return True


@_kernel
def _on_snapshot(work, out_events, out_requested, blank, e, sync, ring, book, counts, tb_lv,
                 tb_meta, row, levels, now_ns, rule, k):
    """Load a snapshot row: too-old check, discard, load, replay the buffer, emit."""
    st, counters = sync[0], sync[1]
    i = np.int64(row["instrument"])
    snapshot_id = row["final_id"]
    live = st[i, S_STATE] == LIVE
    if _too_old(st, ring[0], i, snapshot_id):
        counters[i, C_TOO_OLD] += 1
        if not live:
            _request(out_requested, st, i, now_ns)
        return e
    _discard(st, counters, ring[0], i, snapshot_id, rule, live)
    clear_book(counts[0], counts[1], i)
    t = apply_depth_in(work, book[0], book[1], counts[0], book[2], book[3], counts[1], i, levels,
                       row["level_off"], row["n_bids"], row["n_asks"])
    counters[i, C_TRUNCATED] += t
    counts[2][i] += t
    st[i, S_BOOK_ID] = snapshot_id
    st[i, S_FIRST_PENDING] = 1
    st[i, S_STATE] = LIVE
    st[i, S_NEEDS_SNAPSHOT] = 0
    st[i, S_SNAPSHOT_NS] = now_ns
    counters[i, C_SNAPSHOTS] += 1
    if not _replay(work, out_requested, sync, ring, book, counts, i, rule, live, now_ns):
        return e
    return _emit(out_events, blank, e, sync, book, counts, tb_lv, tb_meta, i, k, row["venue"],
                 row["ingest_ns"], row["exchange_ns"])


@_kernel
def _on_diff(work, out_events, out_requested, blank, e, sync, ring, book, counts, tb_lv, tb_meta,
             row, levels, now_ns, rule, k):
    """Buffer a diff (no book) or check and apply it (live); emit after applying."""
    st, counters = sync[0], sync[1]
    i = np.int64(row["instrument"])
    st[i, S_UPDATE_NS] = now_ns
    if st[i, S_STATE] != LIVE:
        _buffer(out_requested, st, counters, ring, i, row, levels, now_ns)
        return e
    verdict = continuity(st, i, row["first_id"], row["final_id"], row["prev_final_id"], rule)
    if verdict == STALE:
        counters[i, C_STALE] += 1
        return e
    if verdict == GAP:
        counters[i, C_GAPS] += 1
        _drop_book(out_requested, st, counters, counts, i, now_ns)
        _ring_clear(st, i)
        _buffer(out_requested, st, counters, ring, i, row, levels, now_ns)
        return e
    counters[i, C_TRUNCATED] += _apply_to_book(work, book, counts, i, levels, row["level_off"],
                                               row["n_bids"], row["n_asks"])
    counters[i, C_APPLIED] += 1
    st[i, S_BOOK_ID] = row["final_id"]
    st[i, S_FIRST_PENDING] = 0
    if _crossed(book, counts, i):
        counters[i, C_CROSSED] += 1
        _drop_book(out_requested, st, counters, counts, i, now_ns)
        _ring_clear(st, i)
        return e
    ring_push(st, counters, ring[0], ring[1], i, row["first_id"], row["final_id"],
              row["prev_final_id"], row["ingest_ns"], row["exchange_ns"], levels,
              row["level_off"], row["n_bids"], row["n_asks"])
    return _emit(out_events, blank, e, sync, book, counts, tb_lv, tb_meta, i, k, row["venue"],
                 row["ingest_ns"], row["exchange_ns"])


@_kernel
def _row_ok(row, n_books, n_levels):
    """A row whose instrument is a book and whose levels lie inside the arena."""
    off = row["level_off"]
    nb = np.int64(row["n_bids"])
    na = np.int64(row["n_asks"])
    return (np.int64(row["instrument"]) < n_books and off >= 0 and nb >= 0 and na >= 0
            and off + nb + na <= n_levels)


@_kernel
def _work_needed(rows, n_books, n_levels):
    """The most levels one side of a valid row has (the level work a batch needs)."""
    need = 1
    for j in range(rows.shape[0]):
        row = rows[j]
        if _row_ok(row, n_books, n_levels):
            need = max(need, np.int64(row["n_bids"]), np.int64(row["n_asks"]))
    return need


@njit(cache=True, _nrt=False, nogil=True)
def sync_batch(out_events, out_requested, blank, work, sync, ring, book, counts, tb_lv, tb_meta,
               rows, levels, now_ns, rule, k):
    """Run a batch of DEPTH_UPDATE ``rows`` (levels in ``levels``) through the sync procedure.

    ``out_events`` (CANONICAL_EVENT, at least ``2 * len(rows)``) receives the BookSnapshot and
    BBO events; ``out_requested[i]`` is set to 1 for every instrument that needs a (new)
    snapshot after this batch's rows. ``blank`` is a one-record zero event. ``work`` is a
    :func:`level_work` (nothing here allocates, so the procedure runs without reference
    counting): when a row has more levels on one side than it holds, nothing is done and the
    size needed is returned, for the caller to grow it (only ever up: buffered diffs were rows
    of earlier batches) and call again. ``sync`` is
    ``(state, counters)``, ``ring`` ``(headers, levels)``, ``book`` ``(bid_px, bid_qty,
    ask_px, ask_qty)``, ``counts`` ``(bid_n, ask_n, truncated)``, ``tb_lv`` ``(bids, asks)``
    and ``tb_meta`` ``(n_bids, n_asks, generation, head)`` of the book table. ``rule`` is
    RULE_RANGE or RULE_PREV, ``k`` the levels per side written to the table. Rows naming an
    instrument outside the books or levels outside ``levels`` are skipped. Returns
    ``(events written, rows skipped, work needed)``, work needed 0 once the batch ran.
    """
    st = sync[0]
    need = _work_needed(rows, st.shape[0], levels.shape[0])
    if need > work.shape[1]:
        return 0, 0, need
    e = 0
    rejected = 0
    for j in range(rows.shape[0]):
        row = rows[j]
        if not _row_ok(row, st.shape[0], levels.shape[0]):
            rejected += 1
            continue
        st[np.int64(row["instrument"]), S_SEEN] = 1
        if row["is_snapshot"]:
            e = _on_snapshot(work, out_events, out_requested, blank, e, sync, ring, book, counts,
                             tb_lv, tb_meta, row, levels, now_ns, rule, k)
        else:
            e = _on_diff(work, out_events, out_requested, blank, e, sync, ring, book, counts,
                         tb_lv, tb_meta, row, levels, now_ns, rule, k)
    return e, rejected, 0
