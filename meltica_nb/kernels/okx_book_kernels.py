"""OKX book kernels: L2 books that remember each level's text, CRC32 checksums, seqId chains.

OKX's ``books`` checksum is the CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` over the
top 25 levels, built from the price and size **text as received** (``"0.0112"`` and
``"0.01120"`` hash differently). A book here keeps, beside each level's int64 mantissas
(at the instrument's exponents), the number of decimals its price and size text had:
``txt = price_decimals << 8 | size_decimals``. The parser accepts only canonical decimal text
(``0|[1-9][0-9]*`` then optionally ``.`` and digits, with at most the exponent's decimals), so
``format_decimal(mantissa // 10**(exponent - decimals), decimals)`` gives back the received
text byte for byte, and the checksum string is rebuilt without a Python object. A level prints
its ``:px:sz`` piece once, the first time a checksum reads it, and keeps the piece's CRC
register in the upper bits of ``txt`` (:data:`TXT_FORM`): a checksum then costs a few table
lookups per unchanged level (:func:`checksum_kernels.crc32_append`).

**Books.** One book per instrument row ``i`` and side: int64 ``book[2, n_books, 3 * width]``
(bids, asks), a level being three words ``price, size, txt`` (one move carries all three), and
``extent[2, 2, n_books]``: per side the level count (``N``) and the position its best level
sits at (``LO``). A side's levels lie best first (bids by price descending, asks ascending) at
positions ``LO .. LO + N`` of a row ``width = 2 * depth`` levels wide, floating: the used part
can grow or shrink at either end, and each change shifts its start by whatever keeps most
levels in place (:func:`merge_run`). OKX changes cluster at the top of a 400-level side; in
a row whose best level is pinned to column 0 every insert or delete there moved the whole side
(in the 2022 recording, 270 levels per message; floating, 70). :func:`top_window` copies the
best levels into the best-first rows the shared emitter reads. Few kernel arguments, because
each one costs the caller ~0.1 us of dispatch (a tuple of arrays several times that) on every
call. (The floating row is a layout any venue's book could use; it lives here because only
OKX's books keep a text word per level.)

**Procedure** (:func:`apply_batch`, per DEPTH_UPDATE row, from ``exchange-book-rules.md``):

1. a snapshot (``is_snapshot``) replaces the book and makes it live;
2. an update for a book that is not live is ignored (counted): a resubscribe is on its way;
3. sequence: when the update and the book both carry a ``seqId`` (``final_id >= 0``; our 2022
   recording has none), ``prev_final_id`` must equal the book's ``seqId`` (a keep-alive has
   ``prevSeqId == seqId``, a reset after maintenance still chains through ``prevSeqId``). A
   repeat of the last message (``seqId`` equal, chained elsewhere) is a duplicate, ignored;
   anything else is a gap;
4. levels apply (size ``0`` deletes, a known price takes the new size and text, a new price
   is inserted in order); a run sorted in book order, as OKX sends it, merges in one pass,
   any other run applies level by level; a full side keeps its best ``depth`` levels;
5. a non-zero checksum must equal the book's (``0`` means "not provided", as OKX announced
   for June 2026);
6. a gap or a checksum mismatch drops the book and flags the instrument in ``out_resync``: the
   caller resubscribes the channel, whose next snapshot restarts at step 1.

A live book emits a BookSnapshot (top-K into the BookTable, ``checksum`` = the venue's value)
and, when the best bid or ask changed, a BBO, when its version moved. ``seq_provider`` is the
message's ``seqId`` (the sequence ``bbo-tbt`` pushes carry too, so both feed one BBO stream in
order); without one (the 2022 recording) it counts applied messages. A keep-alive (same
``seqId``) emits nothing. After an OKX ``seqId`` reset the book stays correct, but events wait
until the new ``seqId`` passes the last one emitted (the dispatcher would drop them anyway).
"""

from numba import njit

from meltica_nb.kernels import book_kernels as bk
from meltica_nb.kernels.checksum_kernels import (
    CRC32_TABLES,
    MAX_PIECE,
    crc32_append,
    crc32_piece,
    crc32_signed,
    crc32_update,
    div_pow10,
    put_decimal,
)

#: Instrument states (``S_STATE``).
WAITING = bk.SYNCING  # no book: waiting for a snapshot
LIVE = bk.LIVE

#: Columns of the per-instrument state array. The ones the shared top-K/BBO emitter
#: (:func:`meltica_nb.kernels.book_kernels._emit`) reads keep book_kernels' positions.
S_STATE = bk.S_STATE
S_VERSION = bk.S_BOOK_ID         # the events' seq_provider: seqId, else a message count
S_EMITTED = bk.S_EMITTED_ID      # seq_provider of the last BookSnapshot event
S_SEEN = bk.S_SEEN               # 1 once the instrument had a row
S_BBO_BID_PX = bk.S_BBO_BID_PX   # the last BBO event's best bid and ask
S_BBO_ASK_QTY = bk.S_BBO_ASK_QTY
S_SEQ = bk.N_STATE               # last seqId (-1: none)
S_CHECKSUM = bk.N_STATE + 1      # our checksum after the last message (0: none sent to check)
N_STATE = bk.N_STATE + 2

#: Columns of the per-instrument counter array (shared meanings at book_kernels' positions).
C_APPLIED = bk.C_APPLIED          # updates applied
C_SNAPSHOTS = bk.C_SNAPSHOTS
C_GAPS = bk.C_GAPS
C_RESYNCS = bk.C_RESYNCS          # books dropped (gap or checksum mismatch)
C_TRUNCATED = bk.C_TRUNCATED
C_BOOK_EVENTS = bk.C_BOOK_EVENTS
C_BBO_EVENTS = bk.C_BBO_EVENTS
C_CHECKSUM_OK = bk.N_COUNTERS
C_CHECKSUM_FAIL = bk.N_COUNTERS + 1
C_CHECKSUM_ABSENT = bk.N_COUNTERS + 2  # messages with checksum 0 (not provided)
C_DUPLICATES = bk.N_COUNTERS + 3
C_IGNORED = bk.N_COUNTERS + 4          # updates while waiting for a snapshot
N_COUNTERS = bk.N_COUNTERS + 5

#: Levels per side in the checksum.
CHECKSUM_LEVELS = 25
#: Bytes the checksum string can take: 100 values of at most 21 + 18 bytes, and separators.
CHECKSUM_BUFFER = 4 * CHECKSUM_LEVELS * 40

#: No kernel here allocates: compiled without reference counting, as the Binance scanner is
#: (each call between NRT functions pays an atomic incref/decref per array argument, and the
#: checksum string takes ~200 small calls per message).
_kernel = njit(cache=True, _nrt=False)
#: The per-value helpers of the hot loops are inlined at the Numba level (a call per value
#: costs more than the value's work).
_inline = njit(cache=True, _nrt=False, inline="always")

_COLON = 58

#: A level's ``txt`` word: the received text form in its low 16 bits
#: (``price_decimals << 8 | size_decimals``) and, once a checksum needed it, the level's
#: checksum piece ``:px:sz``: its length in bits 16-23 (0: not printed yet) and its CRC register
#: (:func:`checksum_kernels.crc32_piece`) in bits 24-55. Writing a level keeps only the form,
#: so a changed level is printed again; an unchanged one costs four lookups per checksum.
TXT_FORM = 0xFFFF

#: Words per level in a side's row: price, size, txt.
LEVEL = 3
#: Rows of a side's ``extent``: its level count and the position of its best level.
N = 0
LO = 1


# -- levels with text, floating in their row ----------------------------------------------

@_inline
def _ahead(p, price, descending):
    """True when price ``p`` comes strictly before ``price`` in the side's order."""
    return p > price if descending else p < price


@_inline
def _seek(side, i, lo, hi, price, descending):
    """The first position in ``[lo, hi)`` whose price is not ahead of ``price`` (``hi`` when
    none): galloping from ``lo`` (steps 1, 2, 4, ...), then a binary search in the last step.
    OKX's changes cluster at the top and a run's next price lies just below its last, so
    most searches end in one or two probes where a plain binary search would take nine."""
    if lo >= hi or not _ahead(side[i, LEVEL * lo], price, descending):
        return lo
    known = lo  # ahead of price
    step = 1
    top = hi
    while known + step < hi:
        if not _ahead(side[i, LEVEL * (known + step)], price, descending):
            top = known + step
            break
        known += step
        step *= 2
    lo = known + 1
    while lo < top:
        mid = (lo + top) >> 1
        if _ahead(side[i, LEVEL * mid], price, descending):
            lo = mid + 1
        else:
            top = mid
    return lo


@_kernel
def _plan(plan, side, i, lo, n, descending, levels, off, m):
    """For run level ``t``: ``plan[t, 0]`` its old position (or where it would go),
    ``plan[t, 1]`` the running change of the side's length once levels ``0..t`` apply and
    ``plan[t, 2]`` the first old position after it (the untouched segment it starts)."""
    at = lo
    end = lo + n
    d = 0
    for t in range(m):
        p = levels[off + t, 0]
        at = _seek(side, i, at, end, p, descending)
        exists = at < end and side[i, LEVEL * at] == p
        d += bk.size_change(exists, levels[off + t, 1])
        plan[t, 0] = at
        plan[t, 1] = d
        if exists:
            at += 1
        plan[t, 2] = at


@_inline
def _segment(plan, t, lo, n, m):
    """Old positions ``[start, end)`` of untouched segment ``t`` (``-1``: above the run's
    first level) and the length change before it."""
    start = lo if t < 0 else plan[t, 2]
    end = plan[t + 1, 0] if t + 1 < m else lo + n
    return start, end, 0 if t < 0 else plan[t, 1]


@_kernel
def _base(plan, lo, n, m):
    """The shift of the row's start that keeps most levels in place among three: none (the
    top stays, as in a best-first row), the whole length change (the bottom stays) and the one
    that keeps the longest untouched segment in place. A segment stays exactly when the shift
    cancels the length change before it; one pass counts what each candidate keeps (the
    longest segment's candidate counted by that segment alone)."""
    d_last = plan[m - 1, 1]
    keep_top = 0
    keep_bottom = 0
    longest = -1
    d_longest = 0
    for t in range(-1, m):
        start, end, d = _segment(plan, t, lo, n, m)
        length = end - start
        keep_top += length if d == 0 else 0
        keep_bottom += length if d == d_last else 0
        if length > longest:
            longest = length
            d_longest = d
    if keep_top >= keep_bottom and keep_top >= longest:
        return 0
    return -d_last if keep_bottom >= longest else -d_longest


@_inline
def _shift_segment(side, i, start, end, shift, limit):
    """Move old positions ``[start, end)`` by ``shift``, dropping what lands at ``limit`` or
    beyond (levels pushed out of a full side)."""
    end = min(end, limit - shift)
    if end > start:
        bk.shift_row(side, i, LEVEL * (start + shift), LEVEL * start, LEVEL * (end - start))


@_kernel
def _move(side, i, plan, lo, n, m, base, limit):
    """Move every untouched segment by ``base`` plus the length change before it, in place:
    the moves are monotone, so left moves in increasing order and right moves in decreasing
    order never overwrite a level still to be moved."""
    for t in range(-1, m):
        start, end, d = _segment(plan, t, lo, n, m)
        if d + base < 0:
            _shift_segment(side, i, start, end, d + base, limit)
    for t in range(m - 1, -2, -1):
        start, end, d = _segment(plan, t, lo, n, m)
        if d + base > 0:
            _shift_segment(side, i, start, end, d + base, limit)


@_kernel
def _write(side, i, plan, lo, new_lo, levels, texts, off, m, limit):
    """Write the run's non-zero levels, with their text forms, at their new positions."""
    before = 0
    for t in range(m):
        q = levels[off + t, 1]
        dest = new_lo + plan[t, 0] - lo + before
        if q != 0 and dest < limit:
            w = LEVEL * dest
            side[i, w] = levels[off + t, 0]
            side[i, w + 1] = q
            side[i, w + 2] = texts[off + t] & TXT_FORM
        before = plan[t, 1]


@_kernel
def merge_run(side, ext, i, descending, levels, texts, off, m, depth, plan):
    """Apply a run (``m >= 1`` levels in the side's order, one per price; quantity absolute,
    0 deletes) to row ``i`` of a floating side and return the levels truncated.

    The row's levels sit best first at positions ``ext[LO, i] ..`` of a row twice ``depth``
    wide, so the used part can grow at either end: each untouched level moves at most once,
    and the row's start shifts by whatever keeps most of them in place (:func:`_base`), so an
    insert or delete near the top moves the few levels above it, not the side below. When the
    start would leave the row it is centred again (every level moves once). Afterwards the
    side keeps its best ``depth`` levels. ``plan``: int64 ``[>= m, 3]`` scratch.
    """
    n = ext[N, i]
    lo = ext[LO, i]
    _plan(plan, side, i, lo, n, descending, levels, off, m)
    new_n = n + plan[m - 1, 1]
    kept = min(new_n, depth)
    new_lo = lo + (_base(plan, lo, n, m) if n > 0 else 0)
    width = side.shape[1] // LEVEL
    if new_lo < 0 or new_lo + kept > width:
        new_lo = (width - kept) >> 1
    _move(side, i, plan, lo, n, m, new_lo - lo, new_lo + kept)
    _write(side, i, plan, lo, new_lo, levels, texts, off, m, new_lo + kept)
    ext[N, i] = kept
    ext[LO, i] = new_lo
    return max(new_n - depth, 0)


@_kernel
def _in_book_order(levels, off, m, descending):
    """True when the run's prices are strictly in the side's order (OKX sends them so)."""
    for r in range(off + 1, off + m):
        if (levels[r - 1, 0] <= levels[r, 0]) if descending else (levels[r - 1, 0] >= levels[r, 0]):
            return False
    return True


@_kernel
def _apply_side(side, ext, i, descending, levels, texts, off, m, depth, plan):
    """A run in book order merges in one pass; any other applies level by level (each a
    run of one, a repeated price keeping its last size)."""
    if m > 0 and _in_book_order(levels, off, m, descending):
        return merge_run(side, ext, i, descending, levels, texts, off, m, depth, plan)
    t = 0
    for r in range(off, off + m):
        t += merge_run(side, ext, i, descending, levels, texts, r, 1, depth, plan)
    return t


@_kernel
def clear(book, extent, i):
    """Empty book ``i``: both sides start at their row's middle (room to grow either way)."""
    middle = book.shape[2] // LEVEL // 4
    for s in range(2):
        extent[s, N, i] = 0
        extent[s, LO, i] = middle


@_kernel
def apply_levels(book, extent, i, levels, texts, off, n_bids, n_asks, plan):
    """Apply ``n_bids`` then ``n_asks`` levels from ``levels[off:]``; return truncations.

    ``plan``: int64 ``[>= max(n_bids, n_asks), 3]`` scratch for the merge.
    """
    depth = book.shape[2] // LEVEL // 2
    t = _apply_side(book[0], extent[0], i, True, levels, texts, off, n_bids, depth, plan)
    return t + _apply_side(book[1], extent[1], i, False, levels, texts, off + n_bids, n_asks,
                           depth, plan)


@_kernel
def top_window(top, top_n, book, extent, i):
    """Copy book ``i``'s best ``top.shape[2]`` levels a side into ``top`` (bid px, bid qty,
    ask px, ask qty, best first) and their counts into ``top_n``: the shape the shared
    top-K/BBO emitter reads."""
    k = top.shape[2]
    for s in range(2):
        side = book[s]
        lo = extent[s, LO, i]
        n = min(extent[s, N, i], k)
        for j in range(n):
            w = LEVEL * (lo + j)
            top[2 * s, i, j] = side[i, w]
            top[2 * s + 1, i, j] = side[i, w + 1]
        top_n[s, i] = n


# -- checksum ----------------------------------------------------------------------------------

@_inline
def _put_piece(buf, pos, side, i, w, pexp, qexp):
    """``px:sz`` of the level at word ``w``, each printed with the decimals its received text
    had."""
    pd = (side[i, w + 2] >> 8) & 0xFF
    sd = side[i, w + 2] & 0xFF
    pos = put_decimal(buf, pos, div_pow10(side[i, w], pexp - pd), pd)
    buf[pos] = _COLON
    return put_decimal(buf, pos + 1, div_pow10(side[i, w + 1], qexp - sd), sd)


@_inline
def _put_level(buf, pos, side, i, w, pexp, qexp):
    """``px:sz:`` of the level at word ``w``."""
    pos = _put_piece(buf, pos, side, i, w, pexp, qexp)
    buf[pos] = _COLON
    return pos + 1


@_inline
def _word(extent, s, i, j):
    """Word index of side ``s``'s ``j``-th best level in row ``i``."""
    return LEVEL * (extent[s, LO, i] + j)


@_kernel
def checksum_text(buf, book, extent, i, pexp, qexp):
    """Write book ``i``'s checksum string into ``buf``; return its length."""
    nb = min(extent[0, N, i], CHECKSUM_LEVELS)
    na = min(extent[1, N, i], CHECKSUM_LEVELS)
    pos = 0
    for j in range(max(nb, na)):
        if j < nb:
            pos = _put_level(buf, pos, book[0], i, _word(extent, 0, i, j), pexp, qexp)
        if j < na:
            pos = _put_level(buf, pos, book[1], i, _word(extent, 1, i, j), pexp, qexp)
    return pos - 1 if pos > 0 else 0


@_inline
def _piece(buf, side, i, w, pexp, qexp):
    """The cached piece ``:px:sz`` of the level at word ``w`` as ``(register, length)``,
    printed and cached on first use."""
    t = side[i, w + 2]
    n = (t >> 16) & 0xFF
    if n > 0:
        return t >> 24, n
    buf[0] = _COLON
    n = _put_piece(buf, 1, side, i, w, pexp, qexp)
    if n > MAX_PIECE:  # too long for the shift tables: left in buf, not cached
        return 0, n
    side[i, w + 2] = (t & TXT_FORM) | (n << 16) | (crc32_piece(buf, 0, n) << 24)
    return side[i, w + 2] >> 24, n


#: The register a checksum starts from so that its first piece's colon drops out: with
#: ``L(":" + x) = shift(L(":"), len(x)) ^ L(x)`` and the shift linear, the register after ``x``
#: from 0xFFFFFFFF is :func:`crc32_append` of ``:x``'s register, ``len(x)``, from this one.
_FIRST = 0xFFFFFFFF ^ (int(CRC32_TABLES[0, _COLON]) & 0xFFFFFFFF)


@_inline
def _append_level(reg, first, buf, side, i, w, pexp, qexp):
    """The CRC register after ``:px:sz`` of the level at word ``w`` (``px:sz`` when
    ``first``)."""
    piece, n = _piece(buf, side, i, w, pexp, qexp)
    if n > MAX_PIECE:  # no OKX text is this long; CRC the printed piece byte by byte
        return crc32_update(reg ^ 0xFFFFFFFF, buf, 1 if first else 0, n) ^ 0xFFFFFFFF
    return crc32_append(_FIRST, piece, n - 1) if first else crc32_append(reg, piece, n)


@_kernel
def book_checksum(buf, book, extent, i, pexp, qexp):
    """OKX's signed CRC32 of book ``i`` from the levels' cached pieces (see :data:`TXT_FORM`;
    ``buf``: CHECKSUM_BUFFER bytes of scratch for a piece to print)."""
    nb = min(extent[0, N, i], CHECKSUM_LEVELS)
    na = min(extent[1, N, i], CHECKSUM_LEVELS)
    reg = 0xFFFFFFFF
    for j in range(max(nb, na)):
        if j < nb:
            reg = _append_level(reg, j == 0, buf, book[0], i, _word(extent, 0, i, j), pexp,
                                qexp)
        if j < na:
            reg = _append_level(reg, j == 0 and nb == 0, buf, book[1], i,
                                _word(extent, 1, i, j), pexp, qexp)
    return crc32_signed(reg ^ 0xFFFFFFFF)


# -- the procedure -----------------------------------------------------------------------------

@_kernel
def _drop(out_resync, st, counters, book, extent, i):
    """Forget book ``i`` and ask for a resubscribe."""
    st[i, S_STATE] = WAITING
    st[i, S_SEQ] = -1
    clear(book, extent, i)
    counters[i, C_RESYNCS] += 1
    out_resync[i] = 1


@_kernel
def _in_sequence(st, counters, i, seq, prev):
    """1 when the update chains on the book, 0 for a duplicate, -1 for a gap."""
    last = st[i, S_SEQ]
    if seq < 0 or last < 0 or prev == last:
        return 1
    if seq == last:
        counters[i, C_DUPLICATES] += 1
        return 0
    counters[i, C_GAPS] += 1
    return -1


@_kernel
def _load(book, extent, counters, st, i, levels, texts, row, plan):
    clear(book, extent, i)
    counters[i, C_TRUNCATED] += apply_levels(book, extent, i, levels, texts, row["level_off"],
                                             row["n_bids"], row["n_asks"], plan)
    st[i, S_STATE] = LIVE
    counters[i, C_SNAPSHOTS] += 1


@_kernel
def _update(out_resync, book, extent, st, counters, i, levels, texts, row, plan):
    """Steps 2-4 for one update; True when it was applied."""
    if st[i, S_STATE] != LIVE:
        counters[i, C_IGNORED] += 1
        return False
    order = _in_sequence(st, counters, i, row["final_id"], row["prev_final_id"])
    if order < 0:
        _drop(out_resync, st, counters, book, extent, i)
        return False
    if order == 0:
        return False
    counters[i, C_TRUNCATED] += apply_levels(book, extent, i, levels, texts, row["level_off"],
                                             row["n_bids"], row["n_asks"], plan)
    counters[i, C_APPLIED] += 1
    return True


@_kernel
def _verify(out_resync, scratch, book, extent, st, counters, exps, i, expected):
    """Step 5: True when the checksum matches or was not provided (then none is computed)."""
    if expected == 0:
        st[i, S_CHECKSUM] = 0
        counters[i, C_CHECKSUM_ABSENT] += 1
        return True
    ours = book_checksum(scratch, book, extent, i, exps[0][i], exps[1][i])
    st[i, S_CHECKSUM] = ours
    if ours == expected:
        counters[i, C_CHECKSUM_OK] += 1
        return True
    counters[i, C_CHECKSUM_FAIL] += 1
    _drop(out_resync, st, counters, book, extent, i)
    return False


@_kernel
def _emit(out_events, blank, e, top, book, extent, sync, tb_lv, tb_meta, i, k, row, checksum):
    """BookSnapshot (top-K into the table, with the venue's checksum) and, if the top changed,
    BBO, through the shared emitter (which reads best-first rows: ``top``, the book's top
    window); return the next ``e``."""
    if sync[0][i, S_VERSION] <= sync[0][i, S_EMITTED]:
        return e  # nothing new (a keep-alive, or seqIds after a reset)
    top_window(top[0], top[1], book, extent, i)
    nxt = bk._emit(out_events, blank, e, sync, top[0], top[1], tb_lv, tb_meta, i, k,
                   row["venue"], row["ingest_ns"], row["exchange_ns"])
    out_events[e]["checksum"] = checksum
    return nxt


@_kernel
def _one_row(out_resync, scratch, book, extent, sync, exps, i, levels, texts, row, checksum):
    """Steps 1-6 for one row; True when the book changed and is valid."""
    st, counters = sync[0], sync[1]
    st[i, S_SEEN] = 1
    if row["is_snapshot"]:
        _load(book, extent, counters, st, i, levels, texts, row, scratch[1])
    elif not _update(out_resync, book, extent, st, counters, i, levels, texts, row, scratch[1]):
        return False
    if row["final_id"] >= 0:
        st[i, S_SEQ] = row["final_id"]
        st[i, S_VERSION] = row["final_id"]
    else:
        st[i, S_VERSION] += 1
    return _verify(out_resync, scratch[0], book, extent, st, counters, exps, i, checksum)


@njit(cache=True, _nrt=False, nogil=True)  # the feed's lock guards its arrays
def apply_batch(out_events, out_resync, blank, text_buf, plan, top_levels, top_n, state, counters,
                book, extent, exps, tb_bids, tb_asks, tb_nb, tb_na, tb_gen, tb_head, rows, levels,
                texts, checksums, k):
    """Run DEPTH_UPDATE ``rows`` (levels ``[m, 2]`` int64 with ``texts[m]``) through the books.

    ``checksums[r]`` is row ``r``'s venue checksum (0: none); ``text_buf`` (uint8
    ``[CHECKSUM_BUFFER]``), ``plan`` (int64 ``[len(levels), 3]``) and ``top_levels`` (int64
    ``[4, n_books, >= k]``) with ``top_n`` (int64 ``[2, n_books]``) are scratch; ``state``
    and ``counters`` are the per-instrument rows (``S_*``, ``C_*``), ``exps[2, n_books]`` the
    price and quantity exponents and ``tb_*`` the BookTable's arrays. Writes at most two events
    per row into ``out_events`` and sets ``out_resync[i]`` for books dropped; returns
    ``(events written, rows rejected, books flagged in out_resync)`` (rejected: instrument
    outside the books, levels outside the arena).
    """
    scratch = (text_buf, plan)
    top = (top_levels, top_n)
    sync = (state, counters)
    tb_lv = (tb_bids, tb_asks)
    tb_meta = (tb_nb, tb_na, tb_gen, tb_head)
    e = 0
    rejected = 0
    n_books = state.shape[0]
    n_levels = levels.shape[0]
    for r in range(rows.shape[0]):
        row = rows[r]
        i = row["instrument"]
        end = row["level_off"] + row["n_bids"] + row["n_asks"]
        if i <= 0 or i >= n_books or row["level_off"] < 0 or end > n_levels:
            rejected += 1
            continue
        if _one_row(out_resync, scratch, book, extent, sync, exps, i, levels, texts, row,
                    checksums[r]):
            e = _emit(out_events, blank, e, top, book, extent, sync, tb_lv, tb_meta, i, k, row,
                      checksums[r])
    return e, rejected, bk.flagged(out_resync)
