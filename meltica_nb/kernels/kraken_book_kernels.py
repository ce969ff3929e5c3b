"""Kraken book kernels: apply, truncate to the subscribed depth, verify the CRC32 checksum.

Kraken's rules (v1 and v2 ``book``): a snapshot replaces the book; an update's entries are
applied in array order (a repeated price keeps its last quantity; 0 deletes); after the whole
message each side is truncated to the subscribed depth, because Kraken never sends deletes for
levels that fall out of range; then the checksum of the message must equal the CRC32 of the
string made of the top 10 asks (ascending) and then the top 10 bids (descending), each level
as its price and then its quantity text with the ``.`` removed and leading zeros stripped.

Kraken prints every level of a pair with the pair's fixed decimals, so that text is exactly
the decimal digits of the mantissa at those decimals: the kernels keep mantissas at the
instrument's exponents and divide by ``10**shift`` (``shift`` = exponent - pair decimals, per
instrument) when they print, into a preallocated byte buffer handed to
:func:`~meltica_nb.kernels.checksum_kernels.crc32_update`. No string is built per message.

A failed checksum drops the book (state RESYNC, levels cleared) and flags the instrument in
``out_requested``: the feed resubscribes for a fresh snapshot, and updates arriving before it
are counted and skipped. The state and counter columns, the event writer and the book
primitives are those of :mod:`meltica_nb.kernels.book_kernels`; Kraken's own counters are the
``K_*`` columns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from meltica_nb.kernels import book_kernels as bk
from meltica_nb.kernels.checksum_kernels import crc32_update, div_pow10, put_digits

#: No kernel here allocates (the level merge works in the caller's ``work`` array): compiled
#: without reference counting, which saves an atomic incref/decref per array argument of every
#: call between kernels.
_kernel = njit(cache=True, _nrt=False)

__all__ = [
    "CHECKSUM_LEVELS",
    "K_CHECKSUM_FAIL",
    "K_CHECKSUM_OK",
    "K_SKIPPED",
    "K_UNCHECKED",
    "N_KRAKEN",
    "P_DEPTH",
    "P_PX_SHIFT",
    "P_QTY_SHIFT",
    "N_PARAMS",
    "SCRATCH_BYTES",
    "apply_batch",
    "book_checksum",
    "drop_all",
]

#: Levels per side that enter the checksum.
CHECKSUM_LEVELS = 10
#: Bytes of the checksum text buffer: 20 levels x 2 numbers x 19 digits at most.
SCRATCH_BYTES = 2 * CHECKSUM_LEVELS * 2 * 19

# Kraken counter columns
K_CHECKSUM_OK = 0     # messages whose checksum matched the book
K_CHECKSUM_FAIL = 1   # messages whose checksum did not (book dropped, resubscribe)
K_UNCHECKED = 2       # messages without a checksum (v1 snapshots)
K_SKIPPED = 3         # updates that arrived while the book waited for a snapshot
#: Length of a Kraken counter row.
N_KRAKEN = 4

# per-instrument parameter columns
P_DEPTH = 0      # subscribed depth: each side is truncated to it after every message
P_PX_SHIFT = 1   # price exponent - pair price decimals (>= 0)
P_QTY_SHIFT = 2  # quantity exponent - pair lot decimals (>= 0)
#: Length of a parameter row.
N_PARAMS = 3


@_kernel
def _side_text(out, pos, px, qty, i, n, px_shift, qty_shift):
    """Each level's price then quantity digits, leading zeros stripped (0 prints nothing)."""
    for j in range(min(n, CHECKSUM_LEVELS)):
        pos = put_digits(out, pos, div_pow10(px[i, j], px_shift))
        pos = put_digits(out, pos, div_pow10(qty[i, j], qty_shift))
    return pos


@_kernel
def book_checksum(book, counts, i, px_shift, qty_shift, scratch):
    """CRC32 (unsigned) of book ``i``'s checksum text (top 10 asks, then top 10 bids)."""
    pos = _side_text(scratch, 0, book[2], book[3], i, counts[1][i], px_shift, qty_shift)
    pos = _side_text(scratch, pos, book[0], book[1], i, counts[0][i], px_shift, qty_shift)
    return crc32_update(0, scratch, 0, pos)


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
def _check(out_requested, sync, book, counts, kc, params, i, expected, scratch):
    """Compare the book with the message's checksum -> ``(book kept, crc)``."""
    if expected < 0:
        kc[i, K_UNCHECKED] += 1
        return True, np.int64(0)
    crc = book_checksum(book, counts, i, params[i, P_PX_SHIFT], params[i, P_QTY_SHIFT], scratch)
    if crc == expected:
        kc[i, K_CHECKSUM_OK] += 1
        return True, crc
    kc[i, K_CHECKSUM_FAIL] += 1
    _drop(out_requested, sync, counts, i)
    return False, crc


@njit(cache=True, _nrt=False, nogil=True)  # the feed's lock guards its arrays
def apply_batch(out_events, out_requested, blank, sync, book, counts, kc, params, tb_lv,
                tb_meta, rows, levels, checksums, k, scratch, work):
    """Run DEPTH_UPDATE ``rows`` (levels in ``levels``, ``checksums[j]``: -1 = none) through
    the books -> ``(events written, rows rejected, books flagged in out_requested)``.

    ``out_events`` (CANONICAL_EVENT, at least ``2 * len(rows)``) receives a BookSnapshot (top
    ``k`` into the book table, its ``checksum`` field set) and, when the top changed, a BBO
    per message applied and verified; ``out_requested[i] = 1`` marks a book whose checksum
    failed. ``sync`` = (state, counters) with :mod:`book_kernels` columns, ``book`` = (bid_px,
    bid_qty, ask_px, ask_qty), ``counts`` = (bid_n, ask_n, truncated), ``kc`` the ``K_*``
    counters, ``params`` the ``P_*`` columns, ``tb_lv`` / ``tb_meta`` the book table's arrays,
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
            kc[i, K_SKIPPED] += 1
            continue
        cut = _truncate(counts, i, params[i, P_DEPTH])
        counts[2][i] += cut
        counters[i, bk.C_TRUNCATED] += cut
        kept, crc = _check(out_requested, sync, book, counts, kc, params, i, checksums[j],
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
