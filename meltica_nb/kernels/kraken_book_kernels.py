"""Kraken book kernels: apply, truncate to the subscribed depth, verify the CRC32 checksum.

Kraken's rules (v1 and v2 ``book``): a snapshot replaces the book; an update's entries are
applied in array order (a repeated price keeps its last quantity; 0 deletes); after the whole
message each side is truncated to the subscribed depth, because Kraken never sends deletes for
levels that fall out of range; then the checksum of the message must equal the CRC32 of the
string made of the top 10 asks (ascending) and then the top 10 bids (descending), each level
as its price and then its quantity text with the ``.`` removed and leading zeros stripped.

Kraken prints every level of a pair with the pair's fixed decimals, so a level's text is
exactly the decimal digits of its mantissas at those decimals (``shift`` = exponent - pair
decimals, per instrument). Most of the top 10 levels are the same from one message to the
next, so each book keeps a small memo of level texts, keyed by price and quantity: the CRC
piece (:func:`~meltica_nb.kernels.checksum_kernels.crc32_piece`) of a level's text is printed
and hashed once, and the checksum joins the 20 pieces with
:func:`~meltica_nb.kernels.checksum_kernels.crc32_append`, four table lookups each. No string
is built per message; only a message carrying a checksum computes one.

A failed checksum drops the book (state RESYNC, levels cleared) and flags the instrument in
``out_requested``: the feed resubscribes for a fresh snapshot, and updates arriving before it
are counted and skipped. The state and counter columns, the event writer and the book
primitives are those of :mod:`meltica_nb.kernels.book_kernels`; Kraken's own per-instrument
row (``kraken``, the ``K_*`` columns) holds its counters, the pair's print parameters and the
CRCs of the asks' text and of the whole text as of the last checksum. A message that leaves a
side's top 10 as they were (no levels for that side, or all of them behind its 10th level)
does not hash that side again: after an update without asks (half of them) the checksum goes
on from the asks' CRC over the bids, and one that changes neither top 10 (a fifth) has the
last checksum.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from meltica_nb.kernels import book_kernels as bk
from meltica_nb.kernels.checksum_kernels import crc32_append, crc32_piece, div_pow10, put_digits

#: No kernel here allocates (the level merge works in the caller's ``work`` array): compiled
#: without reference counting, which saves an atomic incref/decref per array argument of every
#: call between kernels.
_kernel = njit(cache=True, _nrt=False)

__all__ = [
    "CHECKSUM_LEVELS",
    "K_ASK_CRC",
    "K_BOOK_CRC",
    "K_CHECKSUM_FAIL",
    "K_CHECKSUM_OK",
    "K_DEPTH",
    "K_PX_SHIFT",
    "K_QTY_SHIFT",
    "K_SKIPPED",
    "K_UNCHECKED",
    "MEMO_SLOTS",
    "N_KRAKEN",
    "SCRATCH_BYTES",
    "apply_batch",
    "book_checksum",
    "drop_all",
]

#: Levels per side that enter the checksum.
CHECKSUM_LEVELS = 10
#: Bytes of the text buffer: one level's price and quantity, 19 digits each at most.
SCRATCH_BYTES = 2 * 19
#: Slots of each book's level-text memo (a power of two): ``[MEMO_SLOTS, 3]`` int64 rows of
#: (price, quantity, CRC piece of the level's text); a price picks its slot by hash.
MEMO_SLOTS = 128
_MEMO_BITS = 7

# Kraken's per-instrument columns: counters
K_CHECKSUM_OK = 0     # messages whose checksum matched the book
K_CHECKSUM_FAIL = 1   # messages whose checksum did not (book dropped, resubscribe)
K_UNCHECKED = 2       # messages without a checksum (v1 snapshots)
K_SKIPPED = 3         # updates that arrived while the book waited for a snapshot
# ... parameters
K_DEPTH = 4      # subscribed depth: each side is truncated to it after every message
K_PX_SHIFT = 5   # price exponent - pair price decimals (>= 0)
K_QTY_SHIFT = 6  # quantity exponent - pair lot decimals (>= 0)
# ... and the checksum's state (-1: that text changed since)
K_ASK_CRC = 7    # CRC32 of the asks' text at the last checksum
K_BOOK_CRC = 8   # CRC32 of the whole text (asks then bids) at the last checksum
#: Length of a Kraken row.
N_KRAKEN = 9


@njit(cache=True, _nrt=False, inline="always")
def _slot(px):
    """The memo slot of a price (Fibonacci hashing of its low 31 bits: neighbouring prices,
    which differ by a tick, land far apart)."""
    return ((px & 0x7FFFFFFF) * 2654435761 & 0xFFFFFFFF) >> (32 - _MEMO_BITS)


@_kernel
def _print_piece(memo, slot, scratch, px, qty, px_shift, qty_shift):
    """Print a level's text (price digits then quantity digits, leading zeros stripped),
    keep its CRC piece in the memo ``slot`` and return it."""
    n = put_digits(scratch, 0, div_pow10(px, px_shift))
    n = put_digits(scratch, n, div_pow10(qty, qty_shift))
    piece = (n << 32) | crc32_piece(scratch, 0, n)  # its length beside its register
    memo[slot, 0] = px
    memo[slot, 1] = qty
    memo[slot, 2] = piece
    return piece


@_kernel
def _side_crc(crc, memo, scratch, px, qty, i, n, px_shift, qty_shift):
    """``crc`` continued over the text of a side's top 10 levels (a level the memo holds is
    not printed again; the check is written out here, the printing is the rare call)."""
    reg = crc ^ 0xFFFFFFFF
    for j in range(min(n, CHECKSUM_LEVELS)):
        p = px[i, j]
        q = qty[i, j]
        slot = _slot(p)
        if memo[slot, 0] == p and memo[slot, 1] == q:
            piece = memo[slot, 2]
        else:
            piece = _print_piece(memo, slot, scratch, p, q, px_shift, qty_shift)
        reg = crc32_append(reg, piece & 0xFFFFFFFF, piece >> 32)
    return reg ^ 0xFFFFFFFF


@_kernel
def book_checksum(book, counts, memo, i, px_shift, qty_shift, scratch):
    """CRC32 (unsigned) of book ``i``'s checksum text (top 10 asks, then top 10 bids);
    ``memo`` is the book's level-text memo (``[MEMO_SLOTS, 3]``)."""
    crc = _side_crc(0, memo, scratch, book[2], book[3], i, counts[1][i], px_shift, qty_shift)
    return _side_crc(crc, memo, scratch, book[0], book[1], i, counts[0][i], px_shift, qty_shift)


@_kernel
def _truncate(counts, i, depth):
    """Keep the best ``depth`` levels per side; return the levels cut."""
    cut = max(counts[0][i] - depth, 0) + max(counts[1][i] - depth, 0)
    counts[0][i] = min(counts[0][i], depth)
    counts[1][i] = min(counts[1][i], depth)
    return cut


@_kernel
def _drop(out_requested, sync, counts, i):
    """Forget book ``i`` and ask for a fresh snapshot (a resubscription)."""
    st, counters = sync[0], sync[1]
    counters[i, bk.C_RESYNCS] += 1
    st[i, bk.S_STATE] = bk.RESYNC
    counts[0][i] = 0
    counts[1][i] = 0
    for c in range(bk.S_BBO_BID_PX, bk.S_BBO_ASK_QTY + 1):
        st[i, c] = 0
    out_requested[i] = 1


@_kernel
def _apply_row(sync, book, counts, row, levels, work):
    """Load or apply one row; False when it is an update without a live book (skipped)."""
    st, counters = sync[0], sync[1]
    i = np.int64(row["instrument"])
    if row["is_snapshot"]:
        bk.clear_book(counts[0], counts[1], i)
        st[i, bk.S_STATE] = bk.LIVE
        counters[i, bk.C_SNAPSHOTS] += 1
    elif st[i, bk.S_STATE] != bk.LIVE:
        return False
    else:
        counters[i, bk.C_APPLIED] += 1
    t = bk.apply_depth_in(work, book[0], book[1], counts[0], book[2], book[3], counts[1], i,
                          levels, row["level_off"], row["n_bids"], row["n_asks"])
    counts[2][i] += t
    counters[i, bk.C_TRUNCATED] += t
    return True


@_kernel
def _top_kept(px, count, i, levels, off, n, descending):
    """True when ``levels[off:off + n]``, applied to a side, left its top 10 as they were:
    each is priced behind the 10th level after them (on a side of fewer than 10 levels, any
    change shows)."""
    if n == 0:
        return True
    if count[i] < CHECKSUM_LEVELS:
        return False
    tenth = px[i, CHECKSUM_LEVELS - 1]
    for r in range(off, off + n):
        p = levels[r, 0]
        if (p >= tenth) if descending else (p <= tenth):
            return False
    return True


@_kernel
def _forget_changed(kraken, book, counts, row, levels, i):
    """Forget the CRCs of the text an applied row changed."""
    off = row["level_off"]
    nb = np.int64(row["n_bids"])
    if row["is_snapshot"] or not _top_kept(book[2], counts[1], i, levels, off + nb,
                                           np.int64(row["n_asks"]), False):
        kraken[i, K_ASK_CRC] = -1
        kraken[i, K_BOOK_CRC] = -1
    elif not _top_kept(book[0], counts[0], i, levels, off, nb, True):
        kraken[i, K_BOOK_CRC] = -1


@_kernel
def _book_crc(book, counts, kraken, memo, i, scratch):
    """:func:`book_checksum`, hashing only the sides whose text changed since the last."""
    crc = kraken[i, K_BOOK_CRC]
    if crc >= 0:
        return crc
    ps, qs = kraken[i, K_PX_SHIFT], kraken[i, K_QTY_SHIFT]
    asks = kraken[i, K_ASK_CRC]
    if asks < 0:
        asks = _side_crc(0, memo, scratch, book[2], book[3], i, counts[1][i], ps, qs)
        kraken[i, K_ASK_CRC] = asks
    crc = _side_crc(asks, memo, scratch, book[0], book[1], i, counts[0][i], ps, qs)
    kraken[i, K_BOOK_CRC] = crc
    return crc


@_kernel
def _check(out_requested, sync, book, counts, kraken, memo, i, expected, scratch):
    """Compare the book with the message's checksum -> ``(book kept, crc)``."""
    if expected < 0:
        kraken[i, K_UNCHECKED] += 1
        return True, np.int64(0)
    crc = _book_crc(book, counts, kraken, memo[i], i, scratch)
    if crc == expected:
        kraken[i, K_CHECKSUM_OK] += 1
        return True, crc
    kraken[i, K_CHECKSUM_FAIL] += 1
    _drop(out_requested, sync, counts, i)
    return False, crc


@njit(cache=True, _nrt=False, nogil=True)  # the feed's lock guards its arrays
def apply_batch(out_events, out_requested, blank, sync, book, counts, kraken, memo, tb_lv,
                tb_meta, rows, levels, checksums, k, scratch, work):
    """Run DEPTH_UPDATE ``rows`` (levels in ``levels``, ``checksums[j]``: -1 = none) through
    the books -> ``(events written, rows rejected, books flagged in out_requested)``.

    ``out_events`` (CANONICAL_EVENT, at least ``2 * len(rows)``) receives a BookSnapshot (top
    ``k`` into the book table, its ``checksum`` field set) and, when the top changed, a BBO
    per message applied and verified; ``out_requested[i] = 1`` marks a book whose checksum
    failed. ``sync`` = (state, counters) with :mod:`book_kernels` columns, ``book`` = (bid_px,
    bid_qty, ask_px, ask_qty), ``counts`` = (bid_n, ask_n, truncated), ``kraken`` the
    ``K_*`` columns, ``memo`` the books' level-text memos
    (``[n_books, MEMO_SLOTS, 3]``), ``tb_lv`` / ``tb_meta`` the book table's arrays,
    ``scratch`` :data:`SCRATCH_BYTES` uint8, ``work`` a :func:`book_kernels.level_work` of at
    least ``len(levels)`` levels. Rows naming no book or levels outside the arena are rejected.
    """
    e = 0
    rejected = 0
    st, counters = sync[0], sync[1]
    for j in range(rows.shape[0]):
        row = rows[j]
        if not bk._row_ok(row, st.shape[0], levels.shape[0]):
            rejected += 1
            continue
        i = np.int64(row["instrument"])
        st[i, bk.S_SEEN] = 1
        if not _apply_row(sync, book, counts, row, levels, work):
            kraken[i, K_SKIPPED] += 1
            continue
        cut = _truncate(counts, i, kraken[i, K_DEPTH])
        counts[2][i] += cut
        counters[i, bk.C_TRUNCATED] += cut
        _forget_changed(kraken, book, counts, row, levels, i)
        kept, crc = _check(out_requested, sync, book, counts, kraken, memo, i, checksums[j],
                           scratch)
        if not kept:
            continue
        st[i, bk.S_BOOK_ID] += 1
        first = e
        e = bk._emit(out_events, blank, e, sync, book, counts, tb_lv, tb_meta, i, k, row["venue"],
                     row["ingest_ns"], row["exchange_ns"])
        if e > first:
            out_events[first]["checksum"] = crc
    return e, rejected, bk.flagged(out_requested)


@_kernel
def drop_all(sync, counts):
    """Every book waits for a new snapshot (after a reconnect: the server sends them)."""
    st = sync[0]
    for i in range(st.shape[0]):
        if st[i, bk.S_STATE] == bk.LIVE:
            st[i, bk.S_STATE] = bk.SYNCING
        counts[0][i] = 0
        counts[1][i] = 0
        for c in range(bk.S_BBO_BID_PX, bk.S_BBO_ASK_QTY + 1):
            st[i, c] = 0
