"""BinanceFeed: one Binance market session wired into the engine.

The connection thread reads frames in batches; each batch is parsed in one scanner call, its
trades, best bid/offers, tickers and klines are published to the engine, and its depth
messages go through the book procedure (:class:`BinanceBookSync`), whose BookSnapshot and BBO
events are published too. A second thread fetches REST snapshots when a book needs one (first
sync, gap, crossed book, reconnect) and on the refresh/staleness timer. Malformed and unknown
frames go to the engine's dead-letter queue with an excerpt and are counted; the stream goes
on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
import orjson

from meltica_nb.backoff import Backoff
from meltica_nb.book_table import BookTable
from meltica_nb.concurrency import CancelToken
from meltica_nb.errors import MelticaError
from meltica_nb.order_book import OrderBooks
from meltica_nb.venues.binance.books import BinanceBookSync
from meltica_nb.venues.binance.config import BinanceConfig, venue_symbol
from meltica_nb.venues.binance.connection import BinanceConnection
from meltica_nb.venues.binance.parsing import BinanceParser
from meltica_nb.venues.binance.rest import BinanceRest
from meltica_nb.venues.binance.symbols import BinanceSymbols
from meltica_nb.venues.venue_feed import VenueFeed, VenueFeedStats

__all__ = ["BinanceFeed", "FeedStats"]

log = logging.getLogger("meltica_nb.venues.binance")

_VENUE_NAMES = {"spot": "binance", "usdm": "binance-futures", "coinm": "binance-coinm"}
_SECOND = 1_000_000_000
_WARM_SNAPSHOT = b'{"lastUpdateId":10,"bids":[["1.00","1.0"]],"asks":[["2.00","1.0"]]}'
_WARM_FRAMES = (
    b'{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"s":"SYMBOL","U":11,"u":11,'
    b'"b":[["1.00","2.0"]],"a":[]}}',
    b'{"stream":"x@trade","data":{"e":"trade","E":1,"s":"SYMBOL","t":1,"p":"1.00","q":"1.0",'
    b'"T":1,"m":true,"M":true}}',
    b'{"stream":"x@bookTicker","data":{"u":11,"s":"SYMBOL","b":"1.00","B":"2.0","a":"2.00",'
    b'"A":"1.0"}}',
)


@dataclass(frozen=True)
class FeedStats(VenueFeedStats):
    """One feed's counters, its connection's and its books' (see :class:`VenueFeedStats`).

    Parameters (besides those of :class:`VenueFeedStats`)
    ----------------------------------------------------
    snapshots : REST snapshots loaded into a book.
    snapshot_errors : snapshots that failed or were refused.
    resyncs, gaps, applied : summed over the books.
    """

    snapshots: int
    snapshot_errors: int
    resyncs: int
    gaps: int
    applied: int


class BinanceFeed(VenueFeed):
    """Connection + REST snapshots + parser + books for one Binance market, into an engine.

    Parameters
    ----------
    engine : the engine whose ``publish``, registry, clock, book table and DLQ are used.
    config : the market, symbols, channels and endpoints (see :class:`BinanceConfig`).
    book_depth : levels kept per side of each local book.
    """

    LOG = log

    def __init__(self, engine, config: BinanceConfig, *, book_depth: int = 5000):
        super().__init__(engine, config, _VENUE_NAMES[config.market])
        self.book_depth = book_depth
        self.rest = BinanceRest(config, self.clock)
        self.wanted = threading.Event()
        self.symbols: BinanceSymbols | None = None
        self.parser: BinanceParser | None = None
        self.books: BinanceBookSync | None = None
        self.connection: BinanceConnection | None = None
        self._snapshots = self._snapshot_errors = 0

    # -- set-up (engine.start, caller's thread) ----------------------------------------------

    def prepare(self) -> None:
        """Fetch exchangeInfo, register the configured symbols, build parser/books/connection."""
        self.prepare_from(self.rest.exchange_info())

    def prepare_from(self, info: bytes) -> None:
        """Build symbols, parser, books and connection from an exchangeInfo body, no network.

        A replay passes the recorded exchangeInfo, or ``b"{}"`` when there is none (then every
        configured symbol is split by its quote suffix, with exponent 8).
        """
        table = _exchange_entries(info, {venue_symbol(s) for s in self.config.symbols})
        self.symbols = BinanceSymbols(self.engine.registry)
        self.symbols.add_exchange_info({"symbols": table})
        for symbol in self.config.symbols:  # symbols exchangeInfo did not list: by quote suffix
            self.symbols.add(venue_symbol(symbol))
        self.parser = BinanceParser(self.symbols, self.venue, self.config.market)
        n_books = 1 + max(self.symbols[venue_symbol(s)].instrument for s in self.config.symbols)
        self.books = BinanceBookSync(OrderBooks(n_books, self.book_depth),
                                     self.engine.book_table, self.config.market,
                                     k=self.engine.book_table.k)
        self._connect(BinanceConnection)
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile the scanner and book kernels now, on scratch objects, before threads start.

        A cold Numba cache compiles on first use (seconds for the book kernels); done inside
        the connection thread it would delay the first frames and any stop meanwhile.
        """
        symbol = venue_symbol(self.config.symbols[0])
        parser = BinanceParser(self.symbols, self.venue, self.config.market)
        sync = BinanceBookSync(OrderBooks(self.books.books.max_books, 16),
                               BookTable(4, self.engine.book_table.k), self.config.market,
                               k=self.engine.book_table.k)
        snapshot = parser.parse_snapshot(_WARM_SNAPSHOT, symbol, 1)
        sync.apply(snapshot.depth, snapshot.levels, 1)
        frames = [f.replace(b"SYMBOL", symbol.encode()) for f in _WARM_FRAMES]
        result = parser.parse_batch(frames, [1] * len(frames))
        sync.apply(result.depth, result.levels, 2)

    def tasks(self) -> list[tuple[str, object]]:
        """(name, thread body) pairs the engine starts in its TaskGroup."""
        return [*super().tasks(), (f"{self.name}:snapshots", self._snapshot_loop)]

    # -- connection thread ---------------------------------------------------------------------

    def _run_connection(self, cancel: CancelToken) -> None:
        try:
            super()._run_connection(cancel)
        finally:
            self.rest.close()  # ends a REST wait (Retry-After, backoff) of the snapshot thread
            self.wanted.set()  # and wakes it from its idle wait, to see the cancellation

    def _book_events(self, result) -> np.ndarray | None:
        """Depth rows through the book procedure (a REST snapshot is fetched when one asks)."""
        return self._apply_books(result.depth, result.levels) if result.depth.shape[0] else None

    def _apply_books(self, depth, levels) -> np.ndarray:
        """Run depth rows through the books; return their events (a view: use it at once)."""
        events, needs = self.books.apply(depth, levels, self.clock.monotonic_ns())
        if needs:
            self.wanted.set()
        return events

    def _on_reconnect(self) -> None:
        """A new stream has a gap behind it: every book restarts the procedure."""
        with self.lock:
            self.books.resync_all()

    # -- snapshot thread -----------------------------------------------------------------------

    def _snapshot_loop(self, cancel: CancelToken) -> None:
        """Fetch snapshots the books ask for, and refresh live books on the timer."""
        backoff = Backoff(self.config.backoff_policy)
        refresh_ns = int(self.config.refresh_interval_s * _SECOND)
        while not cancel.cancelled:
            self.wanted.wait(1.0)
            self.wanted.clear()
            with self.lock:
                due = set(self.books.needs_snapshot())
                due |= set(self.books.due_for_refresh(self.clock.monotonic_ns(), refresh_ns,
                                                      2 * refresh_ns))
            if not due:
                continue
            fetched = all(not cancel.cancelled and self._fetch(i) for i in sorted(due))
            with self.lock:
                refused = due & set(self.books.needs_snapshot())  # e.g. too old: ask again
            if fetched and not refused:
                backoff.reset()
                continue
            cancel.wait(backoff.next_delay())  # failed or refused: never a tight loop
            self.wanted.set()

    def _fetch(self, instrument: int) -> bool:
        """One REST snapshot into the books; False (logged, counted) when it failed."""
        symbol = self.engine.registry.instrument(instrument).symbol
        try:
            body = self.rest.depth(symbol)
        except MelticaError as exc:
            self._snapshot_errors += 1
            log.warning("%s snapshot %s failed: %s", self.name, symbol, exc)
            return False
        return self.on_snapshot(venue_symbol(symbol), body, self.clock.now_ns())

    def on_snapshot(self, symbol: str, body: bytes, recv_ns: int) -> bool:
        """A REST depth snapshot body of ``symbol`` into its book; False (counted) if refused.

        The snapshot thread calls this with what it fetched; a replay with a recorded
        ``rest:`` line. An unregistered ``symbol`` is a ConfigError.
        """
        with self.lock:
            result = self.parser.parse_snapshot(body, symbol, recv_ns)
            if not result.depth.shape[0]:
                self._snapshot_errors += 1
                return False
            self._snapshots += 1
            self._publish(self._apply_books(result.depth, result.levels))
        return True

    # -- observability -------------------------------------------------------------------------

    def best(self, instrument: int) -> tuple[int, int, int, int]:
        """``(bid_price, bid_qty, ask_price, ask_qty)`` of a local book (0s when empty)."""
        return self.books.books.best(instrument)

    def stats(self) -> FeedStats:
        """Counters of the feed, its connection and each instrument's book."""
        return FeedStats(snapshots=self._snapshots, snapshot_errors=self._snapshot_errors,
                         **self._stats_fields(("resyncs", "gaps", "applied")))


def _exchange_entries(info: bytes, wanted: set[str]) -> list:
    """The exchangeInfo entries of the symbols this feed trades (not the venue's thousands)."""
    entries = orjson.loads(info).get("symbols") or []
    return [e for e in entries if isinstance(e, dict) and e.get("symbol") in wanted]
