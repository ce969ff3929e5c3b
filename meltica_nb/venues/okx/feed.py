"""OkxFeed: one OKX public connection wired into the engine.

The connection thread hands each batch of frames to :meth:`OkxFeed.on_frames`, which parses it
in one scanner call (:class:`~meltica_nb.venues.okx.parsing.OkxParser`), runs its ``books``
rows through the checksummed books and its ``books5`` rows through a second, shallow set of
books (every ``books5`` push is a snapshot), and publishes the trades, best bid/offers,
tickers, BookSnapshots and book BBOs of the batch at once. A book dropped for a checksum
mismatch or a seqId gap makes the connection resubscribe its ``books`` channel; the next
snapshot restarts it. Malformed, unknown and unusable frames go to the engine's dead-letter
queue with an excerpt and are counted; the stream goes on.

``on_frames`` is public so a replay driver can feed recorded frames without a connection:
call :meth:`OkxFeed.load_instruments` (with a recorded instruments answer, or None for the
default exponents) instead of :meth:`OkxFeed.prepare`, then ``on_frames`` batch by batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from meltica_nb.backoff import Backoff
from meltica_nb.book_table import BookTable
from meltica_nb.venues.okx.books import OkxBooks
from meltica_nb.venues.okx.config import OkxConfig, venue_name
from meltica_nb.venues.okx.connection import OkxConnection
from meltica_nb.venues.okx.parsing import BOOKS, BOOKS5, OkxParser
from meltica_nb.venues.okx.rest import fetch_instruments
from meltica_nb.venues.okx.symbols import OkxSymbols
from meltica_nb.venues.records import concat_events
from meltica_nb.venues.venue_feed import VenueFeed, VenueFeedStats

__all__ = ["OkxFeed", "OkxFeedStats"]

log = logging.getLogger("meltica_nb.venues.okx")

_BOOKS5_DEPTH = 5
_WARM_FRAMES = (
    b'{"arg":{"channel":"books","instId":"INST"},"action":"snapshot","data":[{"asks":'
    b'[["2.5","1","0","1"]],"bids":[["2.4","1","0","1"]],"ts":"1","checksum":0,'
    b'"prevSeqId":-1,"seqId":1}]}',
    b'{"arg":{"channel":"books5","instId":"INST"},"data":[{"asks":[["2.5","1","0","1"]],'
    b'"bids":[["2.4","1","0","1"]],"instId":"INST","ts":"1","seqId":2}]}',
)


@dataclass(frozen=True)
class OkxFeedStats(VenueFeedStats):
    """One feed's counters, its parser's, its connection's and its books'.

    ``malformed`` counts frames that are not JSON or carry a value that cannot be used
    (BAD_VALUE); ``unknown`` unknown channels, shapes or instruments.

    Parameters (besides those of :class:`VenueFeedStats`)
    ----------------------------------------------------
    resubscribes : books channels resubscribed (checksum mismatch or gap).
    snapshots : books snapshots loaded.
    applied, checksum_ok, checksum_fail, gaps, resyncs : summed over the books.
    parser : the parser's stats.
    """

    resubscribes: int
    snapshots: int
    applied: int
    checksum_ok: int
    checksum_fail: int
    gaps: int
    resyncs: int
    parser: object


class OkxFeed(VenueFeed):
    """Connection + instruments + parser + books for one OKX instrument type, into an engine."""

    LOG = log

    def __init__(self, engine, config: OkxConfig):
        super().__init__(engine, config, venue_name(config.market))
        self.symbols: OkxSymbols | None = None
        self.parser: OkxParser | None = None
        self.books: OkxBooks | None = None
        self.books5: OkxBooks | None = None
        self.connection: OkxConnection | None = None
        self._inst_ids: dict[int, str] = {}
        self._backoffs: dict[int, Backoff] = {}
        self._progress_at_resubscribe: dict[int, int] = {}
        self._resubscribes = 0

    # -- set-up (engine.start, caller's thread) ----------------------------------------------

    def prepare(self) -> None:
        """Fetch the instruments over REST, build parser, books and connection."""
        self.load_instruments(fetch_instruments(self.config))
        self._connect(OkxConnection)

    def load_instruments(self, body: bytes | None) -> None:
        """Register the configured instIds (exponents from an instruments answer, else 8),
        build parser and books, and compile their kernels."""
        symbols = OkxSymbols(self.engine.registry)
        wanted = self.config.inst_ids()
        if body is not None:
            symbols.add_instruments(body, wanted)
        for inst_id in wanted:  # not in the answer: default exponents
            if symbols.get(inst_id) is None:
                symbols.add(inst_id)
        self.symbols = symbols
        self._inst_ids = {e.instrument: e.symbol for e in symbols}
        self.parser = OkxParser(symbols, self.venue)
        self.books, self.books5 = self._new_books(self.engine.book_table)
        self._warm_up()

    def _new_books(self, table: BookTable) -> tuple[OkxBooks, OkxBooks]:
        n = 1 + max(self._inst_ids)
        price_exp, qty_exp = self.engine.registry.exponents_array()
        return (OkxBooks(n, table, price_exp, qty_exp, depth=self.config.book_depth, k=table.k),
                OkxBooks(n, table, price_exp, qty_exp, depth=_BOOKS5_DEPTH,
                         k=min(_BOOKS5_DEPTH, table.k)))

    def _warm_up(self) -> None:
        """Compile the scanner and book kernels on scratch objects before threads start."""
        inst_id = next(iter(self._inst_ids.values())).encode()
        parser = OkxParser(self.symbols, self.venue)
        books, books5 = self._new_books(BookTable(4, self.engine.book_table.k))
        frames = [f.replace(b"INST", inst_id) for f in _WARM_FRAMES]
        self._apply_books(parser.parse_batch(frames, [1, 2]), books, books5)

    # -- frames (connection thread, or a replay driver) ---------------------------------------

    def _book_events(self, result) -> np.ndarray:
        """``books`` and ``books5`` rows through their books; a dropped book is resubscribed."""
        events, dropped = self._apply_books(result, self.books, self.books5)
        if dropped:
            self._resubscribe(dropped)
        return events

    @staticmethod
    def _apply_books(result, books: OkxBooks, books5: OkxBooks) -> tuple[np.ndarray, list]:
        """Book rows of both channels through their books: (events copied, books dropped)."""
        out, dropped = [], []
        for kind, target in ((BOOKS, books), (BOOKS5, books5)):
            rows = np.flatnonzero(result.kinds == kind)
            if rows.shape[0]:
                events, lost = target.apply(result.depth[rows], result.levels, result.texts,
                                            result.checksums[rows])
                out.append(events)
                dropped += lost if kind == BOOKS else []
        return concat_events(out), dropped

    def _resubscribe(self, instruments: list[int]) -> None:
        """Resubscribe dropped books: at once after progress (an update applied or a checksum
        validated since the last resubscribe), else with capped exponential backoff."""
        for inst in instruments:
            name = self._inst_ids.get(inst)
            if name is None:
                continue
            stats = self.books.stats(inst)
            progress = stats.applied + stats.checksum_ok
            backoff = self._backoffs.setdefault(inst, Backoff(self.config.backoff_policy))
            if self._progress_at_resubscribe.get(inst, -1) < progress:
                backoff.reset()
                delay = 0.0
            else:
                delay = backoff.next_delay()
            self._progress_at_resubscribe[inst] = progress
            self._resubscribes += 1
            log.info("%s: resubscribing books:%s in %.2f s (checksum mismatch or seqId gap)",
                     self.name, name, delay)
            if self.connection is not None:
                self.connection.resubscribe([f"books:{name}"], delay)

    def _on_reconnect(self) -> None:
        """A new connection starts with fresh snapshots."""
        with self.lock:
            self.books.reset()
            self.books5.reset()

    # -- observability -------------------------------------------------------------------------

    def best(self, instrument: int) -> tuple[int, int, int, int]:
        """``(bid_price, bid_qty, ask_price, ask_qty)`` of a ``books`` book (0s when empty)."""
        return self.books.best(instrument)

    def stats(self) -> OkxFeedStats:
        """Counters of the feed, its parser, its connection and each instrument's book."""
        return OkxFeedStats(
            resubscribes=self._resubscribes,
            parser=self.parser.stats() if self.parser else None,
            **self._stats_fields(("snapshots", "applied", "checksum_ok", "checksum_fail", "gaps",
                                  "resyncs")))

    def __repr__(self) -> str:
        return f"OkxFeed({self.name!r}, {len(self._inst_ids)} instruments)"
