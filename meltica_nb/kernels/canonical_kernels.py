"""Canonical record kernels: book levels out of and back into a BookTable, a batch per call.

A BOOK_SNAPSHOT event points into a BookTable row (``book_row``, generation ``book_slot``);
a canonical record file keeps the levels beside the events instead: an int64 array
``levels[j, 1 + 2k, 2]`` per book event ``j``, whose pair 0 is ``(n_bids, n_asks)``, pairs
``1..k`` the bids and ``k+1..2k`` the asks as (price, quantity), unused pairs zero.
:func:`gather_levels` fills it when events are written (or digested); :func:`restore_levels`
writes it into the replaying engine's BookTable and points the events at their new rows.
"""

from numba import njit

from meltica_nb.schema import EventType

from .book_kernels import table_write

_BOOK = int(EventType.BOOK_SNAPSHOT)


@njit(cache=True)
def book_positions(events, out):
    """Write the positions of the BOOK_SNAPSHOT events among ``events`` into ``out`` (as long
    as the events) and return their number: one pass over a block's type bytes (a NumPy
    compare and ``flatnonzero`` on the strided field cost several times more)."""
    n = 0
    for i in range(events.shape[0]):
        if events[i]["event_type"] == _BOOK:
            out[n] = i
            n += 1
    return n


@njit(cache=True)
def latest_ingest(events):
    """The largest ``ingest_ns`` of ``events`` (0 when empty)."""
    latest = 0
    for i in range(events.shape[0]):
        latest = max(latest, events[i]["ingest_ns"])
    return latest


@njit(cache=True)
def gather_levels(out, events, book_idx, tb_bids, tb_asks, tb_nb, tb_na, k):
    """Fill ``out[j]`` from the table row of ``events[book_idx[j]]`` (zero beyond its levels)."""
    for j in range(book_idx.shape[0]):
        row = events[book_idx[j]]["book_row"]
        nb = min(tb_nb[row], k)
        na = min(tb_na[row], k)
        out[j, :, :] = 0
        out[j, 0, 0] = nb
        out[j, 0, 1] = na
        for i in range(nb):
            out[j, 1 + i, 0] = tb_bids[row, i, 0]
            out[j, 1 + i, 1] = tb_bids[row, i, 1]
        for i in range(na):
            out[j, 1 + k + i, 0] = tb_asks[row, i, 0]
            out[j, 1 + k + i, 1] = tb_asks[row, i, 1]


@njit(cache=True)
def restore_levels(events, book_idx, levels, k, tb_bids, tb_asks, tb_nb, tb_na, tb_gen,
                   tb_head):
    """Write each ``levels[j]`` into the next table row; point its event at the new handle.

    ``levels[j]`` is left as :func:`gather_levels` would read the row back (counts clipped to
    the table's ``k``, unused pairs zero), so the replay's tape can take it as it is."""
    for j in range(book_idx.shape[0]):
        row, gen = table_write(tb_bids, tb_asks, tb_nb, tb_na, tb_gen, tb_head,
                               levels[j, 1:1 + k], levels[j, 1 + k:1 + 2 * k],
                               levels[j, 0, 0], levels[j, 0, 1])
        ev = events[book_idx[j]]
        ev["book_row"] = row
        ev["book_slot"] = gen
        _as_gathered(levels[j], tb_nb[row], tb_na[row], k)


@njit(cache=True)
def _as_gathered(lv, nb, na, k):
    """Clip the counts of one ``[1 + 2k, 2]`` levels row to what the table kept; zero the rest."""
    lv[0, 0] = nb
    lv[0, 1] = na
    lv[1 + nb:1 + k, :] = 0
    lv[1 + k + na:, :] = 0
