"""EventTape: everything the feeds of a replay publish, counted, digested, optionally kept.

The replay engine hands every published batch to its tape before the dispatcher sees it. The
tape marks the records :attr:`~meltica_nb.schema.Flag.REPLAYED`, counts them per event type,
folds them into a digest, and (when asked) keeps a copy for analysis and writes them to a
canonical record file.

The digest covers each record's 128 bytes in publish order, with two exceptions: the REPLAYED
flag bit is masked out (a live session's tape and its replay compare equal), and a
BOOK_SNAPSHOT's BookTable handle (``book_row``, ``book_slot``) counts as zero and the levels it
points to (top-K, unused levels zero) are folded as a second stream: the handle depends on the
table's size, the levels are the content. Both streams are folded word by word by the kernels
of :mod:`meltica_nb.kernels.digest_kernels` (a fingerprint, not a cryptographic hash; BLAKE2b
finalizes the two states), so how the records were batched does not change it. No field of a
replayed record reads the wall clock (``ingest_ns`` is the recorded receive time), so two
replays of the same recordings with the same settings give the same digest, and replaying the
canonical file a replay (or ``meltica record --canonical``) wrote gives it again.
"""

from __future__ import annotations

import hashlib

import numpy as np

from meltica_nb.canonical_file import CanonicalWriter, join_events, levels_array
from meltica_nb.errors import ConfigError
from meltica_nb.kernels import digest_kernels as dk
from meltica_nb.kernels.canonical_kernels import gather_levels
from meltica_nb.kernels.tape_kernels import last_per_stream, take_batch
from meltica_nb.schema import CANONICAL_EVENT, EventType

__all__ = ["EventTape"]

_N_TYPES = 16
_NO_WORDS = np.zeros(0, np.uint64)
_NO_RECORDS = np.zeros((0, dk.WORDS_PER_RECORD), np.uint64)
_NO_MARK = np.uint64(0)


def _words(levels: np.ndarray) -> np.ndarray:
    """``levels_array`` rows as the plain uint64 words the digest folds."""
    return np.ascontiguousarray(levels).reshape(-1).view(np.uint64)


class EventTape:
    """Counts, digest, kept copies and canonical output of one replay's published events.

    Parameters
    ----------
    book_table : the engine's BookTable (the levels of book events are read from it).
    keep_events : keep a copy of every record (memory grows with the recording).
    writer : a CanonicalWriter to append every batch to, or None.
    mark_replayed : set the REPLAYED flag on the records (a replay; not a live recording).
    """

    def __init__(self, book_table, keep_events: bool = False,
                 writer: CanonicalWriter | None = None, mark_replayed: bool = True):
        self.table = book_table
        self.k = book_table.k
        self.keep_events = keep_events
        self.writer = writer
        self.mark_replayed = mark_replayed
        self.counts = np.zeros(_N_TYPES, np.int64)
        self.last_books: dict[tuple[int, int], tuple[np.ndarray, int, int]] = {}
        self._state = np.zeros(2, np.uint64)
        self._state_levels = np.zeros(2, np.uint64)
        self._kept: list[np.ndarray] = []
        self._levels = levels_array(256, self.k)
        self._grow(256)

    def record(self, events: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
        """Take one published batch; return the records to publish (flagged REPLAYED).

        ``levels``: the table levels of its book events, in order (``levels_array`` rows), when
        the caller has them already (a canonical file's block, as restored): one kernel pass
        then flags, counts and digests records and levels together; else the levels are read
        from the BookTable once the pass has found the books, and folded after it. Levels that
        do not match the books raise ConfigError (a caller's bug: the digest is void then)."""
        if not (events.flags.writeable and events.flags.c_contiguous):  # flagged in place
            events = events.copy()
        if self._book_idx.shape[0] < events.shape[0]:
            self._grow(max(events.shape[0], 2 * self._book_idx.shape[0]))
        words = events.view(np.uint64).reshape(-1, dk.WORDS_PER_RECORD)
        n_book = self._take(words, _NO_WORDS if levels is None else _words(levels))
        book_idx = self._book_idx[:n_book]
        if levels is None:
            levels = self._gather(events, book_idx)
            if n_book:
                self._take(_NO_RECORDS, _words(levels))
        elif levels.shape[0] != n_book:
            raise ConfigError(f"{levels.shape[0]} levels rows for {n_book} book events")
        if n_book:
            self._remember_books(events, book_idx, levels)
        if self.keep_events:
            self._kept.append(events.copy())
        if self.writer is not None:
            self.writer.write(events, levels)
        return events

    def _grow(self, size: int) -> None:
        """Scratch for batches of ``size`` records: their book positions, then the last book
        of each stream and its book count (:meth:`_remember_books`)."""
        self._book_idx = np.zeros(size, np.int64)
        self._last = np.zeros(size, np.int64)
        self._count = np.zeros(size, np.int64)

    def warm_up(self) -> None:
        """Compile (or load) the tape's kernel on empty input, before a replay's clock runs."""
        with np.errstate(over="ignore"):
            take_batch(_NO_RECORDS, _NO_MARK, np.zeros(_N_TYPES, np.int64), self._book_idx,
                       np.zeros(2, np.uint64), np.zeros(2, np.uint64), _NO_WORDS)

    def _take(self, words: np.ndarray, level_words: np.ndarray) -> int:
        """One :func:`take_batch` over the tape's counts, digest states and book scratch."""
        mark = dk.REPLAYED_BIT if self.mark_replayed else _NO_MARK
        with np.errstate(over="ignore"):  # the lanes wrap on purpose (JIT off: numpy scalars)
            return take_batch(words, mark, self.counts, self._book_idx, self._state,
                              self._state_levels, level_words)

    def _gather(self, events: np.ndarray, book_idx: np.ndarray) -> np.ndarray:
        """The table levels of the book events at ``book_idx`` (a view of reused scratch)."""
        n = book_idx.shape[0]
        if self._levels.shape[0] < n:
            self._levels = levels_array(max(n, 2 * self._levels.shape[0]), self.k)
        out = self._levels[:n]
        if n:
            t = self.table
            gather_levels(out, events, book_idx, t.bids_raw, t.asks_raw, t.n_bids, t.n_asks,
                          self.k)
        return out

    def _remember_books(self, events, book_idx, levels) -> None:
        """The last book event of each (venue, instrument): levels, update id, event count."""
        last, count = self._last[:book_idx.shape[0]], self._count[:book_idx.shape[0]]
        n = last_per_stream(events, book_idx, last, count)
        for j, seen_now in zip(last[:n].tolist(), count[:n].tolist(), strict=True):
            ev = events[book_idx[j]]
            key = (int(ev["venue"]), int(ev["instrument"]))
            seen = self.last_books.get(key, (None, 0, 0))[2]
            self.last_books[key] = (levels[j].copy(), int(ev["seq_provider"]), seen + seen_now)

    # -- results -------------------------------------------------------------------------

    def digest(self) -> str:
        """Hex BLAKE2b-128 of the two folds (records, book levels) of everything so far."""
        both = self._state.tobytes() + self._state_levels.tobytes()
        return hashlib.blake2b(both, digest_size=16).hexdigest()

    def by_type(self) -> dict[str, int]:
        """Records per event type name (only the types that occurred)."""
        return {EventType(t).name.lower(): int(c) for t, c in enumerate(self.counts.tolist())
                if c and t < len(EventType)}

    def kept(self) -> np.ndarray | None:
        """Every recorded record in order (``keep_events``), else None."""
        if not self.keep_events:
            return None
        if not self._kept:
            return np.zeros(0, CANONICAL_EVENT)
        self._kept = [join_events(self._kept)]
        return self._kept[0]

