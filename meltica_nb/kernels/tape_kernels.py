"""Tape kernels: what the replay's EventTape does to a published batch, in one call.

:class:`meltica_nb.event_tape.EventTape` used to take a batch apart with a dozen NumPy calls
(flag, count, find the book events, keep the last book of each stream), each costing
microseconds on a batch of a few hundred records; :func:`mark_and_count` and
:func:`last_per_stream` do that in one pass each, beside the level gather
(:mod:`meltica_nb.kernels.canonical_kernels`) and the digest folds
(:mod:`meltica_nb.kernels.digest_kernels`).
"""

import numpy as np
from numba import njit

from meltica_nb.schema import EventType, Flag

_BOOK = int(EventType.BOOK_SNAPSHOT)
_REPLAYED = np.uint8(int(Flag.REPLAYED))


@njit(cache=True)
def mark_and_count(events, mark, counts, book_idx):
    """Flag ``events`` REPLAYED (when ``mark``), add them to ``counts`` by event type (types
    beyond its length are not counted) and list the BOOK_SNAPSHOT positions in ``book_idx``.
    Returns the number of books."""
    n_book = 0
    n_types = counts.shape[0]
    for i in range(events.shape[0]):
        ev = events[i]
        if mark:
            ev["flags"] = ev["flags"] | _REPLAYED
        t = ev["event_type"]
        if t < n_types:
            counts[t] += 1
        if t == _BOOK:
            book_idx[n_book] = i
            n_book += 1
    return n_book


@njit(cache=True)
def last_per_stream(events, book_idx, out_last, out_count):
    """The last book event of each (venue, instrument) among ``events[book_idx]``: its
    position ``j`` in ``book_idx`` in ``out_last`` and the stream's book count in
    ``out_count``, streams in order of their last event, latest first. Returns their number.

    A batch holds books of a handful of streams, so a linear search beats a hash."""
    n = 0
    for j in range(book_idx.shape[0] - 1, -1, -1):
        ev = events[book_idx[j]]
        found = -1
        for s in range(n):
            other = events[book_idx[out_last[s]]]
            if other["venue"] == ev["venue"] and other["instrument"] == ev["instrument"]:
                found = s
                break
        if found < 0:
            out_last[n] = j
            out_count[n] = 1
            n += 1
        else:
            out_count[found] += 1
    return n
