"""Tape kernels: what the replay's EventTape does to a published batch, in one call.

:class:`meltica_nb.event_tape.EventTape` used to take a batch apart with a dozen NumPy calls
(flag, count, find the book events, keep the last book of each stream), each costing
microseconds on a batch of a few hundred records; :func:`take_batch` flags, counts, finds
the books and folds the digest (:mod:`meltica_nb.kernels.digest_kernels`) in one pass, and
:func:`last_per_stream` keeps the last book of each stream, beside the level gather
(:mod:`meltica_nb.kernels.canonical_kernels`).
"""

from numba import njit

from meltica_nb.kernels import digest_kernels as dk
from meltica_nb.schema import EventType

_BOOK = int(EventType.BOOK_SNAPSHOT)


@njit(cache=True, _nrt=False)
def take_batch(words, mark_bits, counts, book_idx, state, state_levels, level_words):
    """Take one batch of records given as uint64 ``words[n, WORDS_PER_RECORD]``: OR
    ``mark_bits`` into each one's flags word (``REPLAYED_BIT``, or 0), add it to ``counts`` by
    event type (types beyond its length are not counted), list the BOOK_SNAPSHOT positions in
    ``book_idx``, and fold the records into the digest ``state`` and the plain uint64
    ``level_words`` into ``state_levels`` (both uint64[2]). Returns the number of books.

    Each digest stream is folded in its own order, so the states are those of folding the
    records and then the levels; the loop advances both at once because each fold is a chain
    of dependent multiplies (latency-bound): interleaved, the CPU overlaps the two chains and
    the level words, the marks and the counts cost almost nothing beside the records. Called
    with no records it folds ``level_words`` alone (levels read after the books were found)."""
    s0, s1 = state[0], state[1]
    l0, l1 = state_levels[0], state_levels[1]
    n_levels = level_words.shape[0]
    n_types = counts.shape[0]
    c = 0
    n_book = 0
    for i in range(words.shape[0]):
        t = dk.record_type(words, i)
        words[i, dk.FLAGS_WORD] |= mark_bits
        if t < n_types:
            counts[t] += 1
        book = t == _BOOK
        if book:
            book_idx[n_book] = i
            n_book += 1
        for j in range(dk.WORDS_PER_RECORD):
            s0, s1 = dk.mix(s0, s1, dk.record_word(words, i, j, book))
        if c + dk.WORDS_PER_RECORD <= n_levels:
            for j in range(dk.WORDS_PER_RECORD):
                l0, l1 = dk.mix(l0, l1, level_words[c + j])
            c += dk.WORDS_PER_RECORD
    for j in range(c, n_levels):
        l0, l1 = dk.mix(l0, l1, level_words[j])
    state[0], state[1] = s0, s1
    state_levels[0], state_levels[1] = l0, l1
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
