"""What every venue feed does around its parser and books: batches in, one publish out.

:class:`VenueFeed` is the base of the venue feeds (:mod:`meltica_nb.venues.binance.feed`,
:mod:`meltica_nb.venues.okx.feed`, :mod:`meltica_nb.venues.kraken.feed`). It owns the engine
side: the lock over parser and books, :meth:`VenueFeed.on_frames` (one parser call, the venue's
book procedure, one publish per batch), the dead letters of refused frames and bad-input
connection errors, the connection thread, and the counters every :class:`VenueFeedStats` has.
A venue fills in how it starts (``prepare``: symbols over REST, parser, books, connection),
what its books make of a parsed batch (``_book_events``), what a reconnect does to its books
(``_on_reconnect``) and its own stats record.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from meltica_nb.concurrency import CancelToken
from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.kernels.event_kernels import join_events
from meltica_nb.schema import CANONICAL_EVENT
from meltica_nb.venues.dead_letters import offer_bad_frames, offer_connection_error
from meltica_nb.venues.frame_status import FrameStatus

__all__ = ["VenueFeed", "VenueFeedStats"]


@dataclass(frozen=True)
class VenueFeedStats:
    """The counters every feed reports; each venue's stats record adds its own after these.

    Parameters
    ----------
    name : the feed's registry venue (``binance``, ``okx-swap``, ``kraken`` ...).
    frames : frames parsed.
    events : events published (parsed events and book events).
    malformed : frames and connection errors dead-lettered as malformed.
    unknown : frames dead-lettered as unknown messages.
    connection : the connection's stats, None before ``prepare``.
    books : each instrument's book stats.
    """

    name: str
    frames: int
    events: int
    malformed: int
    unknown: int
    connection: object
    books: dict


class VenueFeed(ABC):
    """Parser + books + connection of one venue session, into an engine.

    Parameters
    ----------
    engine : the engine whose ``publish``, registry, clock, book table and DLQ are used.
    config : the venue's config (endpoints, symbols, channels).
    name : the registry venue this feed publishes as.
    """

    #: Parser statuses that are dead letters, and as what.
    DEAD_LETTER: Mapping[FrameStatus, DeadLetterReason] = MappingProxyType({
        FrameStatus.MALFORMED: DeadLetterReason.MALFORMED,
        FrameStatus.BAD_VALUE: DeadLetterReason.MALFORMED,
        FrameStatus.UNKNOWN: DeadLetterReason.UNKNOWN_MESSAGE,
        FrameStatus.UNKNOWN_SYMBOL: DeadLetterReason.UNKNOWN_MESSAGE})
    #: Where the feed logs (each venue sets its own).
    LOG: logging.Logger

    def __init__(self, engine, config, name: str) -> None:
        self.engine = engine
        self.config = config
        self.name = name
        self.venue = engine.registry.venue_id(name)
        self.clock = engine.clock
        self.lock = threading.Lock()  # parser and books: connection (and snapshot) threads
        self.parser = None
        self.books = None
        self.connection = None
        self._frames = self._events = self._malformed = self._unknown = 0
        self._joined = np.zeros(256, CANONICAL_EVENT)  # a batch's events and book events

    @abstractmethod
    def prepare(self) -> None:
        """Read the venue's symbols, build parser, books and connection (engine.start)."""

    def _connect(self, connection_class: type) -> None:
        """The venue's connection, calling back into this feed."""
        self.connection = connection_class(self.config, self.on_frames, self.clock,
                                           on_reconnect=self._on_reconnect,
                                           on_error=self._on_error)
        self.connection.warm_up()  # compiled now, not on the first frames
        self._join(self._joined[:1], self._joined[:1])

    def tasks(self) -> list[tuple[str, object]]:
        """(name, thread body) pairs the engine starts in its TaskGroup."""
        return [(f"{self.name}:ws", self._run_connection)]

    def _run_connection(self, cancel: CancelToken) -> None:
        self.connection.run(cancel)

    # -- frames (connection thread, or a replay driver) ------------------------------------------

    def on_frames(self, frames: Sequence[bytes], recv_ns: Sequence[int] | np.ndarray
                  ) -> np.ndarray:
        """Parse a batch, run its book rows through the books, publish it all at once.

        One publish per batch: each one pays the dispatcher's fixed cost and wakes every
        consumer, so the parsed events and the book events travel together. The connection
        calls this live; a replay calls it with recorded frames. Returns each frame's parse
        status (a view, valid until the next call) so a replay can name the recorded line of a
        refused frame. ``frames`` is any sequence of ``bytes``: a list, or the connection's
        :class:`~meltica_nb.venues.frame_arena.FrameArena`, which parsers read in place.
        """
        with self.lock:
            result = self.parser.parse_batch(frames, recv_ns)
            self._frames += result.n_frames
            self._dead_letters(result, frames)
            events = result.events
            book_events = self._book_events(result)
            if book_events is not None and book_events.shape[0]:
                events = self._join(events, book_events) if events.shape[0] else book_events
            self._publish(events)
            return result.status

    def _join(self, events: np.ndarray, book_events: np.ndarray) -> np.ndarray:
        """The parsed events then the book events, in the feed's buffer (valid until the
        next batch: publish copies them into the pool at once)."""
        n = events.shape[0] + book_events.shape[0]
        if self._joined.shape[0] < n:
            self._joined = np.zeros(max(n, 2 * self._joined.shape[0]), CANONICAL_EVENT)
        return self._joined[:join_events(self._joined, events, book_events)]

    @abstractmethod
    def _book_events(self, result) -> np.ndarray | None:
        """The events the books make of a parsed batch (None: no book rows); under the lock."""

    def _publish(self, events: np.ndarray) -> None:
        if events.shape[0]:
            self._events += events.shape[0]
            self.engine.publish(events)

    def _dead_letters(self, result, frames: list[bytes]) -> None:
        """Refused frames: counted and kept (with an excerpt) in the DLQ."""
        malformed, unknown = offer_bad_frames(self.engine.dlq, self.name, result, frames,
                                              self.DEAD_LETTER)
        self._malformed += malformed
        self._unknown += unknown

    @abstractmethod
    def _on_reconnect(self) -> None:
        """A new connection has a gap behind it: the books start over (connection thread)."""

    def _on_error(self, kind: str, detail: str, raw_prefix: bytes) -> None:
        self._malformed += offer_connection_error(self.engine.dlq, self.name, kind, detail,
                                                  raw_prefix)
        self.LOG.warning("%s connection: %s: %s", self.name, kind, detail)

    # -- observability ---------------------------------------------------------------------------

    def _stats_fields(self, totals: tuple[str, ...]) -> dict:
        """The :class:`VenueFeedStats` fields, plus the sum over the books of each ``totals``."""
        books = self.books.stats() if self.books is not None else {}
        summed = {k: sum(getattr(b, k) for b in books.values()) for k in totals}
        connection = self.connection.stats() if self.connection is not None else None
        return dict(name=self.name, frames=self._frames, events=self._events,
                    malformed=self._malformed, unknown=self._unknown, connection=connection,
                    books=books, **summed)
