"""KrakenFeed: one Kraken websocket session (v1 or v2) wired into the engine.

``prepare()`` reads every pair's decimals from ``/0/public/AssetPairs`` (real HTTP), registers
the configured symbols, and builds the parser, the books and the connection. The connection
thread hands each batch of frames to :meth:`KrakenFeed.on_frames`, which is public so a replay
driver can feed recorded frames without a connection: one parser call, one book kernel call,
one publish of the trades, tickers, BookSnapshots and BBOs together. A book whose checksum
fails is resubscribed (fresh snapshot); malformed and unknown frames go to the engine's
dead-letter queue with an excerpt and are counted; the stream goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from meltica_nb.book_table import BookTable
from meltica_nb.venues.kraken.books import KrakenBooks
from meltica_nb.venues.kraken.config import KrakenConfig
from meltica_nb.venues.kraken.connection import KrakenConnection
from meltica_nb.venues.kraken.parsing import KrakenParser
from meltica_nb.venues.kraken.rest import fetch_asset_pairs
from meltica_nb.venues.kraken.symbols import KrakenSymbols, v1_name, v2_name
from meltica_nb.venues.venue_feed import VenueFeed, VenueFeedStats

__all__ = ["KrakenFeed", "KrakenFeedStats"]

log = logging.getLogger("meltica_nb.venues.kraken")

_WARM_FRAMES = (
    b'[1,{"as":[["2.0","1.0","1.0"]],"bs":[["1.0","1.0","1.0"]]},"book-10","PAIR1"]',
    b'[1,{"b":[["1.0","2.0","1.0","r"]],"c":"0"},"book-10","PAIR1"]',
    b'{"channel":"book","type":"snapshot","data":[{"symbol":"PAIR2","bids":[{"price":1.0,'
    b'"qty":1.0}],"asks":[{"price":2.0,"qty":1.0}],"checksum":0,'
    b'"timestamp":"2024-01-01T00:00:00.000000Z"}]}',
)


@dataclass(frozen=True)
class KrakenFeedStats(VenueFeedStats):
    """One feed's counters, its parser's, its connection's and each book's.

    Parameters (besides those of :class:`VenueFeedStats`)
    ----------------------------------------------------
    resubscribes : book resubscriptions requested after a checksum mismatch.
    resyncs : books dropped after a checksum mismatch.
    snapshots : book snapshots loaded.
    applied, checksum_ok, checksum_fail : summed over the books.
    parser : the parser's stats.
    """

    resubscribes: int
    resyncs: int
    snapshots: int
    applied: int
    checksum_ok: int
    checksum_fail: int
    parser: object


class KrakenFeed(VenueFeed):
    """AssetPairs + connection + parser + books for one Kraken session, into an engine.

    Parameters
    ----------
    engine : the engine whose ``publish``, registry, clock, book table and DLQ are used.
    config : endpoints, protocol version, symbols, channels and book depth.
    """

    LOG = log

    def __init__(self, engine, config: KrakenConfig):
        super().__init__(engine, config, "kraken")
        self.symbols = KrakenSymbols(engine.registry)
        self.parser: KrakenParser | None = None
        self.books: KrakenBooks | None = None
        self.connection: KrakenConnection | None = None
        self._resubscribes = 0

    # -- set-up (engine.start, caller's thread) --------------------------------------------------

    def prepare(self) -> None:
        """Read pair decimals over REST, register the symbols, build parser/books/connection."""
        body = fetch_asset_pairs(self.config)
        self.symbols.add_asset_pairs(body, self.config.symbols)
        self.build()
        self._connect(KrakenConnection)

    def build(self, pairs: dict[str, tuple[int, int]] | None = None) -> None:
        """Build parser and books over the registered pairs, plus ``pairs`` (symbol ->
        (price decimals, lot decimals)) given directly: the replay path, without REST."""
        for symbol, (price_decimals, qty_decimals) in (pairs or {}).items():
            self.symbols.add(symbol, price_decimals, qty_decimals)
        n_books = 1 + max(p.instrument for p in self.symbols.pairs())
        self.parser = KrakenParser(self.symbols, self.venue)
        self.books = KrakenBooks(n_books, self.config.book_depth, self.engine.book_table,
                                 k=self.engine.book_table.k)
        for pair in self.symbols.pairs():
            self.books.add_pair(pair)
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile the scanner and book kernels now, on scratch objects, before threads start."""
        pair = self.symbols.pairs()[0]
        frames = [f.replace(b"PAIR1", v1_name(pair.canonical).encode())
                  .replace(b"PAIR2", v2_name(pair.canonical).encode()) for f in _WARM_FRAMES]
        parser = KrakenParser(self.symbols, self.venue)
        books = KrakenBooks(self.books.books.max_books, 10, BookTable(4, self.engine.book_table.k),
                            k=self.engine.book_table.k)
        result = parser.parse_batch(frames, [1] * len(frames))
        books.apply(result.depth, result.levels, result.checksums)

    # -- frames (connection thread, or a replay driver) ------------------------------------------

    def _book_events(self, result) -> np.ndarray | None:
        """Book messages through the books; a book whose checksum failed is resubscribed."""
        if not result.depth.shape[0]:
            return None
        events, failed = self.books.apply(result.depth, result.levels, result.checksums)
        if failed:
            self._resubscribe(failed)
        return events

    def _resubscribe(self, instruments: list[int]) -> None:
        """Books whose checksum failed: ask Kraken for a fresh snapshot of each."""
        self._resubscribes += len(instruments)
        streams = [self.config.stream_of("book", self.engine.registry.instrument(i).symbol)
                   for i in instruments]
        log.warning("%s: checksum mismatch, resubscribing %s", self.name, streams)
        if self.connection is not None:
            self.connection.resubscribe(streams)

    def _on_reconnect(self) -> None:
        """A new connection: every book waits for the snapshot its resubscription brings."""
        with self.lock:
            self.books.reset()

    # -- observability ---------------------------------------------------------------------------

    def stats(self) -> KrakenFeedStats:
        """Counters of the feed, its parser, its connection and each instrument's book."""
        return KrakenFeedStats(
            resubscribes=self._resubscribes,
            parser=self.parser.stats() if self.parser is not None else None,
            **self._stats_fields(("resyncs", "snapshots", "applied", "checksum_ok",
                                  "checksum_fail")))
