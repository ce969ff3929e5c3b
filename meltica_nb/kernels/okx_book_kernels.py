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

**Books.** One book per instrument row ``i``: ``bid_px``/``bid_qty``/``bid_txt`` sorted by
price descending, ``ask_*`` ascending, counts ``bid_n``/``ask_n``. Kernels take them as one
int64 ``book[6, n_books, depth]`` (``bid_px, bid_qty, bid_txt, ask_px, ask_qty, ask_txt``) and
``counts[2, n_books]`` (``bid_n, ask_n``): few arguments, because each one costs the caller
~0.1 us of dispatch (a tuple of arrays several times that) on every call.

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
from meltica_nb.kernels.book_kernels import _find
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


# -- levels with text ------------------------------------------------------------------------

@_kernel
def _shift_out(px, qty, txt, i, j, n):
    """Close the gap at column ``j`` of row ``i`` (``n`` levels before), texts along."""
    for col in (px, qty, txt):
        bk.shift_row(col, i, j, j + 1, n - 1 - j)


@_kernel
def _shift_in(px, qty, txt, i, j, n):
    """Open a gap at column ``j`` of row ``i`` (``n`` levels before), texts along."""
    for col in (px, qty, txt):
        bk.shift_row(col, i, j + 1, j, n - j)


@_kernel
def set_level(px, qty, txt, count, i, descending, price, quantity, text):
    """Set one level (quantity absolute, 0 deletes) with its text form; return truncations."""
    n = count[i]
    j = _find(px, i, n, price, descending)
    if j < n and px[i, j] == price:
        if quantity == 0:
            _shift_out(px, qty, txt, i, j, n)
            count[i] = n - 1
        else:
            qty[i, j] = quantity
            txt[i, j] = text & TXT_FORM
        return 0
    if quantity == 0:
        return 0
    depth = px.shape[1]
    if j >= depth:
        return 1
    dropped = 0
    if n == depth:
        n -= 1
        dropped = 1
    _shift_in(px, qty, txt, i, j, n)
    px[i, j] = price
    qty[i, j] = quantity
    txt[i, j] = text & TXT_FORM
    count[i] = n + 1
    return dropped


@_kernel
def _in_book_order(levels, off, m, descending):
    """True when the run's prices are strictly in the side's order (OKX sends them so)."""
    for r in range(off + 1, off + m):
        if (levels[r - 1, 0] <= levels[r, 0]) if descending else (levels[r - 1, 0] >= levels[r, 0]):
            return False
    return True


@_kernel
def _merge_side(px, qty, txt, count, i, descending, levels, texts, off, m, plan):
    """Apply a sorted run through the shared one-pass merge (each old level moves at most
    once, texts along), then write the run's texts where its levels landed."""
    t = bk.merge_run((px, qty, txt), count, i, descending, levels, off, m, plan)
    depth = px.shape[1]
    before = 0
    for r in range(m):
        dest = plan[r, 0] + before
        if levels[off + r, 1] != 0 and dest < depth:
            txt[i, dest] = texts[off + r] & TXT_FORM
        before = plan[r, 1]
    return t


@_kernel
def _apply_side(px, qty, txt, count, i, descending, levels, texts, off, m, plan):
    if m > 0 and _in_book_order(levels, off, m, descending):
        return _merge_side(px, qty, txt, count, i, descending, levels, texts, off, m, plan)
    t = 0
    for r in range(off, off + m):
        t += set_level(px, qty, txt, count, i, descending, levels[r, 0], levels[r, 1], texts[r])
    return t


@_kernel
def apply_levels(book, counts, i, levels, texts, off, n_bids, n_asks, plan):
    """Apply ``n_bids`` then ``n_asks`` levels from ``levels[off:]``; return truncations.

    ``plan``: int64 ``[>= max(n_bids, n_asks), 2]`` scratch for the one-pass merge of a
    sorted run (:func:`book_kernels.merge_run`).
    """
    t = _apply_side(book[0], book[1], book[2], counts[0], i, True, levels, texts, off, n_bids,
                    plan)
    return t + _apply_side(book[3], book[4], book[5], counts[1], i, False, levels, texts,
                           off + n_bids, n_asks, plan)


# -- checksum ----------------------------------------------------------------------------------

@_inline
def _put_piece(buf, pos, px, qty, txt, i, j, pexp, qexp):
    """``px:sz`` of level ``j``, each printed with the decimals its received text had."""
    pd = (txt[i, j] >> 8) & 0xFF
    sd = txt[i, j] & 0xFF
    pos = put_decimal(buf, pos, div_pow10(px[i, j], pexp - pd), pd)
    buf[pos] = _COLON
    return put_decimal(buf, pos + 1, div_pow10(qty[i, j], qexp - sd), sd)


@_inline
def _put_level(buf, pos, px, qty, txt, i, j, pexp, qexp):
    """``px:sz:`` of level ``j``."""
    pos = _put_piece(buf, pos, px, qty, txt, i, j, pexp, qexp)
    buf[pos] = _COLON
    return pos + 1


@_kernel
def checksum_text(buf, book, counts, i, pexp, qexp):
    """Write book ``i``'s checksum string into ``buf``; return its length."""
    nb = min(counts[0][i], CHECKSUM_LEVELS)
    na = min(counts[1][i], CHECKSUM_LEVELS)
    pos = 0
    for j in range(max(nb, na)):
        if j < nb:
            pos = _put_level(buf, pos, book[0], book[1], book[2], i, j, pexp, qexp)
        if j < na:
            pos = _put_level(buf, pos, book[3], book[4], book[5], i, j, pexp, qexp)
    return pos - 1 if pos > 0 else 0


@_inline
def _piece(buf, px, qty, txt, i, j, pexp, qexp):
    """Level ``j``'s cached piece ``:px:sz`` as ``(register, length)``, printed and cached on
    first use."""
    t = txt[i, j]
    n = (t >> 16) & 0xFF
    if n > 0:
        return t >> 24, n
    buf[0] = _COLON
    n = _put_piece(buf, 1, px, qty, txt, i, j, pexp, qexp)
    if n > MAX_PIECE:  # too long for the shift tables: left in buf, not cached
        return 0, n
    txt[i, j] = (t & TXT_FORM) | (n << 16) | (crc32_piece(buf, 0, n) << 24)
    return txt[i, j] >> 24, n


#: The register a checksum starts from so that its first piece's colon drops out: with
#: ``L(":" + x) = shift(L(":"), len(x)) ^ L(x)`` and the shift linear, the register after ``x``
#: from 0xFFFFFFFF is :func:`crc32_append` of ``:x``'s register, ``len(x)``, from this one.
_FIRST = 0xFFFFFFFF ^ (int(CRC32_TABLES[0, _COLON]) & 0xFFFFFFFF)


@_inline
def _append_level(reg, first, buf, px, qty, txt, i, j, pexp, qexp):
    """The CRC register after ``:px:sz`` of level ``j`` (``px:sz`` when ``first``)."""
    piece, n = _piece(buf, px, qty, txt, i, j, pexp, qexp)
    if n > MAX_PIECE:  # no OKX text is this long; CRC the printed piece byte by byte
        return crc32_update(reg ^ 0xFFFFFFFF, buf, 1 if first else 0, n) ^ 0xFFFFFFFF
    return crc32_append(_FIRST, piece, n - 1) if first else crc32_append(reg, piece, n)


@_kernel
def book_checksum(buf, book, counts, i, pexp, qexp):
    """OKX's signed CRC32 of book ``i`` from the levels' cached pieces (see :data:`TXT_FORM`;
    ``buf``: CHECKSUM_BUFFER bytes of scratch for a piece to print)."""
    nb = min(counts[0][i], CHECKSUM_LEVELS)
    na = min(counts[1][i], CHECKSUM_LEVELS)
    reg = 0xFFFFFFFF
    for j in range(max(nb, na)):
        if j < nb:
            reg = _append_level(reg, j == 0, buf, book[0], book[1], book[2], i, j, pexp, qexp)
        if j < na:
            reg = _append_level(reg, j == 0 and nb == 0, buf, book[3], book[4], book[5], i, j,
                                pexp, qexp)
    return crc32_signed(reg ^ 0xFFFFFFFF)


# -- the procedure -----------------------------------------------------------------------------

@_kernel
def _drop(out_resync, st, counters, counts, i):
    """Forget book ``i`` and ask for a resubscribe."""
    st[i, S_STATE] = WAITING
    st[i, S_SEQ] = -1
    counts[0][i] = 0
    counts[1][i] = 0
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
def _load(book, counts, counters, st, i, levels, texts, row, plan):
    counts[0][i] = 0
    counts[1][i] = 0
    counters[i, C_TRUNCATED] += apply_levels(book, counts, i, levels, texts, row["level_off"],
                                             row["n_bids"], row["n_asks"], plan)
    st[i, S_STATE] = LIVE
    counters[i, C_SNAPSHOTS] += 1


@_kernel
def _update(out_resync, book, counts, st, counters, i, levels, texts, row, plan):
    """Steps 2-4 for one update; True when it was applied."""
    if st[i, S_STATE] != LIVE:
        counters[i, C_IGNORED] += 1
        return False
    order = _in_sequence(st, counters, i, row["final_id"], row["prev_final_id"])
    if order < 0:
        _drop(out_resync, st, counters, counts, i)
        return False
    if order == 0:
        return False
    counters[i, C_TRUNCATED] += apply_levels(book, counts, i, levels, texts, row["level_off"],
                                             row["n_bids"], row["n_asks"], plan)
    counters[i, C_APPLIED] += 1
    return True


@_kernel
def _verify(out_resync, scratch, book, counts, st, counters, exps, i, expected):
    """Step 5: True when the checksum matches or was not provided (then none is computed)."""
    if expected == 0:
        st[i, S_CHECKSUM] = 0
        counters[i, C_CHECKSUM_ABSENT] += 1
        return True
    ours = book_checksum(scratch, book, counts, i, exps[0][i], exps[1][i])
    st[i, S_CHECKSUM] = ours
    if ours == expected:
        counters[i, C_CHECKSUM_OK] += 1
        return True
    counters[i, C_CHECKSUM_FAIL] += 1
    _drop(out_resync, st, counters, counts, i)
    return False


@_kernel
def _emit(out_events, blank, e, book, counts, sync, tb_lv, tb_meta, i, k, row, checksum):
    """BookSnapshot (top-K into the table, with the venue's checksum) and, if the top changed,
    BBO, through the shared emitter; return the next ``e``."""
    sides = (book[0], book[1], book[3], book[4])
    nxt = bk._emit(out_events, blank, e, sync, sides, counts, tb_lv, tb_meta, i, k,
                   row["venue"], row["ingest_ns"], row["exchange_ns"])
    out_events[e]["checksum"] = checksum
    return nxt


@_kernel
def _one_row(out_resync, scratch, book, counts, sync, exps, i, levels, texts, row, checksum):
    """Steps 1-6 for one row; True when the book changed and is valid."""
    st, counters = sync[0], sync[1]
    st[i, S_SEEN] = 1
    if row["is_snapshot"]:
        _load(book, counts, counters, st, i, levels, texts, row, scratch[1])
    elif not _update(out_resync, book, counts, st, counters, i, levels, texts, row, scratch[1]):
        return False
    if row["final_id"] >= 0:
        st[i, S_SEQ] = row["final_id"]
        st[i, S_VERSION] = row["final_id"]
    else:
        st[i, S_VERSION] += 1
    return _verify(out_resync, scratch[0], book, counts, st, counters, exps, i, checksum)


@njit(cache=True, _nrt=False, nogil=True)  # the feed's lock guards its arrays
def apply_batch(out_events, out_resync, blank, text_buf, plan, state, counters, book, counts,
                exps, tb_bids, tb_asks, tb_nb, tb_na, tb_gen, tb_head, rows, levels, texts,
                checksums, k):
    """Run DEPTH_UPDATE ``rows`` (levels ``[m, 2]`` int64 with ``texts[m]``) through the books.

    ``checksums[r]`` is row ``r``'s venue checksum (0: none); ``text_buf`` (uint8
    ``[CHECKSUM_BUFFER]``) and ``plan`` (int64 ``[len(levels), 2]``) are scratch; ``state``
    and ``counters`` are the per-instrument rows (``S_*``, ``C_*``), ``exps[2, n_books]`` the
    price and quantity exponents and ``tb_*`` the BookTable's arrays. Writes at most two events
    per row into ``out_events`` and sets ``out_resync[i]`` for books dropped; returns
    ``(events written, rows rejected, books flagged in out_resync)`` (rejected: instrument
    outside the books, levels outside the arena).
    """
    scratch = (text_buf, plan)
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
        if _one_row(out_resync, scratch, book, counts, sync, exps, i, levels, texts, row,
                    checksums[r]):
            e = _emit(out_events, blank, e, book, counts, sync, tb_lv, tb_meta, i, k, row,
                      checksums[r])
    return e, rejected, bk.flagged(out_resync)
