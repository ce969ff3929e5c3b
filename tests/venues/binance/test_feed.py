"""BinanceFeed live against the exchange simulator: real websockets and HTTP on 127.0.0.1.

Each test starts a simulator (spot or USD-M, a fast generated market, a fault spec drawn from a
fixed seed) and an Engine with one BinanceFeed and one recording batch consumer, lets the market
run for a moment, then pauses it and waits for the feed to catch up. The feed's books must then
equal the simulator's own book (every level, and ``lastUpdateId``); every BOOK_SNAPSHOT event the
consumer received whose update id the test also sampled from the simulator must carry exactly
the simulator's top-K at that id; the sequence numbers the consumer sees must be strictly
increasing per (instrument, event type); and ``engine.stop()`` must return every pool slot.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from waiting import wait_until

from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.engine import Engine
from meltica_nb.fixedpoint import to_mantissa
from meltica_nb.schema import EventType
from meltica_nb.sim.binance import BinanceLimits
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import ExchangeSimulator
from meltica_nb.venues.binance.config import BinanceConfig, venue_symbol
from meltica_nb.venues.binance.feed import BinanceFeed

SYMBOLS = ("BTC-USDT", "ETH-USDT")
TRADE, BBO, BOOK = int(EventType.TRADE), int(EventType.BBO), int(EventType.BOOK_SNAPSHOT)
ALL_CHANNELS = ("depth@100ms", "bookTicker", "trade")
#: A small, fast market: ~300 book changes/s per symbol, so no-JIT runs keep up too.
MARKET = MarketConfig.fast(updates_per_s=30.0)


# -- helpers ----------------------------------------------------------------------------------


class Tape:
    """A batch consumer keeping what it was given: seqs per (instrument, type), book levels
    per BOOK_SNAPSHOT (read inside the handler, as the handle is only good while fresh), the
    last BBO per instrument."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.seqs: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.books: dict[int, dict[int, tuple[list, list]]] = defaultdict(dict)
        self.bbo: dict[int, tuple[int, int, int, int, int]] = {}
        self.events = 0

    def __call__(self, events) -> None:
        rows = zip(events["event_type"].tolist(), events["instrument"].tolist(),
                   events["seq_provider"].tolist(), strict=True)
        with self.lock:
            for k, (etype, inst, seq) in enumerate(rows):
                self.seqs[inst, etype].append(seq)
                if etype == BOOK:
                    bids, asks = self.engine.book_levels(events[k])
                    self.books[inst][seq] = (bids.tolist(), asks.tolist())
                elif etype == BBO:
                    e = events[k]
                    self.bbo[inst] = (seq, int(e["bid_price"]), int(e["bid_qty"]),
                                      int(e["ask_price"]), int(e["ask_qty"]))
            self.events += len(events)

    def seq_list(self, inst: int, etype: int) -> list[int]:
        with self.lock:
            return list(self.seqs.get((inst, etype), ()))

    def count(self, inst: int, etype: int) -> int:
        with self.lock:
            return len(self.seqs.get((inst, etype), ()))


@dataclass
class Live:
    """One simulator + engine + feed + tape, and the sim's books sampled while running."""

    sim: ExchangeSimulator
    engine: Engine
    feed: BinanceFeed
    tape: Tape
    symbols: tuple[str, ...]
    samples: dict[int, dict[int, tuple[list, list]]] = field(
        default_factory=lambda: defaultdict(dict))
    report: object = None
    started: float = 0.0

    def instruments(self) -> dict[int, str]:
        """Instrument id -> Binance symbol, for every subscribed symbol."""
        return {self.engine.registry.instrument_id(s): venue_symbol(s) for s in self.symbols}

    def sim_book(self, inst: int, depth: int) -> tuple[int, list, list]:
        """The simulator's book of ``inst``: (lastUpdateId, bids, asks) as mantissas."""
        info = self.engine.registry.instrument(inst)
        book = self.sim.book(venue_symbol(info.symbol), depth)

        def side(levels):
            return [(to_mantissa(p, info.price_exp), to_mantissa(q, info.qty_exp))
                    for p, q in levels]

        return book["lastUpdateId"], side(book["bids"]), side(book["asks"])

    def sample(self) -> None:
        """Keep the simulator's top-K of every book at its current update id."""
        k = self.engine.book_table.k
        for inst in self.instruments():
            uid, bids, asks = self.sim_book(inst, k)
            self.samples[inst][uid] = (bids, asks)

    def run_for(self, seconds: float, until=None) -> None:
        """Let the market run ``seconds`` (sampling the sim's books); with ``until``, keep
        going (up to 4x longer) until it holds."""
        start = time.monotonic()
        while True:
            self.sample()
            elapsed = time.monotonic() - start
            if elapsed >= seconds and (until is None or until() or elapsed >= 4 * seconds):
                return
            time.sleep(0.02)

    def caught_up(self) -> bool:
        """Every book live at the simulator's update id."""
        books = self.feed.books
        for inst in self.instruments():
            if books.state_of(inst) != "live":
                return False
            if books.stats(inst).book_id != self.sim_book(inst, 0)[0]:
                return False
        return True

    def settle(self, timeout: float = 10.0) -> None:
        """Pause the market and wait until the feed caught up. A fault on the last frames
        (a dropped last diff, a disconnect after the last diff) leaves nothing to repair the
        book with in a paused market, so the market then runs a little longer and pauses
        again."""
        deadline = time.monotonic() + timeout
        while True:
            self.sim.pause()
            if wait_until(self.caught_up, min(1.5, max(0.0, deadline - time.monotonic()))):
                return
            assert time.monotonic() < deadline, f"feed never caught up: {self.describe()}"
            self.sim.resume()
            self.run_for(0.15)

    def describe(self) -> str:
        return (f"books={self.feed.books.stats()} sim={self.sim.stats()['feed']} "
                f"conn={self.feed.connection.stats()}")

    def stop(self):
        """engine.stop(); the report must be clean: every slot returned."""
        if self.report is None:
            self.report = self.engine.stop(5.0)
            self.sim.stop()
        assert self.report.clean and self.report.count == 0, self.report
        return self.report


@pytest.fixture
def live(no_thread_leak):
    """Start simulator + engine + BinanceFeed; everything is stopped after the test."""
    started: list[Live] = []

    def start(market: str = "spot", *, faults: str | None = None, seed: int = 7,
              channels=ALL_CHANNELS, symbols=SYMBOLS, **feed_config) -> Live:
        sim = ExchangeSimulator(market, config=MARKET, faults=faults, seed=seed,
                                limits=BinanceLimits(ping_interval=None)).start()
        engine = Engine()
        tape = Tape(engine)
        engine.add_consumer("tape", tape, mode="batch")
        feed_config.setdefault("backoff_base_s", 0.05)
        feed_config.setdefault("backoff_cap_s", 0.5)
        feed_config.setdefault("backoff_seed", seed)
        config = BinanceConfig(market=market, symbols=symbols, channels=channels,
                               ws_url=sim.ws_url, rest_url=sim.rest_url, **feed_config)
        feed = BinanceFeed(engine, config)
        engine.add_feed(feed)
        one = Live(sim, engine, feed, tape, tuple(symbols))
        started.append(one)
        one.started = time.monotonic()
        try:
            engine.start()
        except BaseException:
            sim.stop()
            raise
        return one

    yield start
    for one in started:
        try:
            if one.report is None:
                one.report = one.engine.stop(5.0)
        finally:
            one.sim.stop()


# -- checks shared by the tests --------------------------------------------------------------


def assert_books_equal_the_simulator(live: Live) -> None:
    """After settle(): every level of every book and its update id equal the simulator's."""
    for inst in live.instruments():
        uid, bids, asks = live.sim_book(inst, 100_000)
        local_bids, local_asks = live.feed.books.books.levels(inst)
        stats = live.feed.books.stats(inst)
        assert stats.state == "live" and stats.book_id == uid
        assert stats.truncated == 0
        assert local_bids.tolist() == bids
        assert local_asks.tolist() == asks


def assert_book_events_match(live: Live, min_matches: int = 1) -> None:
    """The last BOOK_SNAPSHOT of every instrument is the simulator's top-K at its update id,
    and so is every other one whose update id was sampled while the market ran."""
    k = live.engine.book_table.k
    for inst in live.instruments():
        uid, bids, asks = live.sim_book(inst, k)
        assert wait_until(lambda i=inst, u=uid: u in live.tape.books.get(i, {}), 5.0), \
            f"no BOOK_SNAPSHOT at {uid} for {inst}"
        with live.tape.lock:
            events = dict(live.tape.books[inst])
        assert max(events) == uid
        assert events[uid] == (bids, asks)
        matched = [u for u in live.samples[inst] if u in events]
        for u in matched:
            assert events[u] == live.samples[inst][u], f"book event {u} of {inst}"
        assert len(matched) >= min_matches, (len(matched), len(events))


def assert_strictly_increasing(live: Live) -> None:
    """Per (instrument, event type) the consumer saw strictly increasing sequence numbers."""
    with live.tape.lock:
        streams = {key: list(seqs) for key, seqs in live.tape.seqs.items()}
    assert streams
    for key, seqs in streams.items():
        assert all(a < b for a, b in itertools.pairwise(seqs)), f"stream {key} out of order"


def trade_gaps(seqs: list[int]) -> int:
    """Places where the trade ids a consumer received are not contiguous."""
    return sum(b != a + 1 for a, b in itertools.pairwise(seqs))


def assert_last_bbo_is_the_top(live: Live) -> None:
    """The newest BBO delivered is the simulator's best bid and ask (prices and sizes)."""
    for inst in live.instruments():
        _, bids, asks = live.sim_book(inst, 1)
        want = (bids[0][0], bids[0][1], asks[0][0], asks[0][1])
        assert wait_until(lambda i=inst, w=want: live.tape.bbo.get(i, (0,))[1:] == w, 5.0), \
            (live.tape.bbo.get(inst), want)


def assert_stats_consistent(live: Live) -> None:
    """After stop: the engine reports the feed's own stats, and the counters add up."""
    feed, engine = live.feed, live.engine
    stats = feed.stats()
    assert engine.stats()["feeds"] == {feed.name: stats}
    books = stats.books
    assert set(books) == set(live.instruments())
    assert stats.resyncs == sum(b.resyncs for b in books.values())
    assert stats.gaps == sum(b.gaps for b in books.values())
    assert stats.applied == sum(b.applied for b in books.values())
    assert stats.frames == stats.connection.frames > 0
    assert stats.snapshots == sum(b.snapshots + b.too_old for b in books.values())
    assert engine.stats()["dispatcher"].published == stats.events
    by_reason = engine.dlq.stats().by_reason
    assert by_reason.get(DeadLetterReason.MALFORMED, 0) == stats.malformed
    assert by_reason.get(DeadLetterReason.UNKNOWN_MESSAGE, 0) == stats.unknown
    tape = engine.stats()["consumers"]["tape"]
    assert tape.delivered == live.tape.events
    assert tape.errors == 0


# -- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_books_trades_and_book_events_equal_the_simulator(live, market):
    one = live(market)
    insts = one.instruments()
    one.run_for(1.5, until=lambda: all(one.tape.count(i, t) > 3 for i in insts
                                      for t in (TRADE, BBO, BOOK)))
    one.settle()

    for inst in insts:
        assert all(one.tape.count(inst, t) > 0 for t in (TRADE, BBO, BOOK))
    assert_books_equal_the_simulator(one)
    assert_book_events_match(one, min_matches=2)
    assert_last_bbo_is_the_top(one)
    trade_ids = one.sim.stats()["feed"]["trade_ids"]
    for inst, symbol in insts.items():
        assert wait_until(lambda i=inst, s=symbol: one.tape.seq_list(i, TRADE)[-1:]
                          == [trade_ids[s]], 5.0)
        trades = one.tape.seq_list(inst, TRADE)
        assert len(trades) > 3 and trade_gaps(trades) == 0
    assert_strictly_increasing(one)
    stats = one.feed.stats()
    assert stats.resyncs == stats.gaps == stats.malformed == stats.unknown == 0
    assert stats.snapshots == len(insts)
    assert stats.connection.connects == 1 and stats.connection.reconnects == 0

    one.stop()
    assert_stats_consistent(one)


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_a_dropped_diff_resyncs_the_book(live, market):
    one = live(market, faults="drop=0.05", seed=3, channels=("depth@100ms",))
    one.run_for(1.0, until=lambda: one.feed.stats().resyncs >= 2)
    one.settle()

    stats = one.feed.stats()
    assert one.sim.stats()["faults"]["drop"] > 0
    assert stats.gaps > 0 and stats.resyncs > 0
    assert stats.snapshots > len(one.instruments())
    assert_books_equal_the_simulator(one)
    assert_book_events_match(one)
    assert_strictly_increasing(one)

    one.stop()
    assert_stats_consistent(one)


def test_a_disconnect_reconnects_resubscribes_and_delivers_nothing_twice(live):
    # the simulator drops the TCP connection on ~0.3 % of frames and duplicates 2 %
    one = live("usdm", faults="disconnect=0.003,dup=0.02", seed=5)
    insts = one.instruments()
    one.run_for(1.0, until=lambda: one.feed.connection.stats().reconnects >= 2)
    assert one.feed.connection.stats().reconnects >= 1, one.describe()
    after = {i: one.tape.count(i, TRADE) for i in insts}
    one.run_for(0.3, until=lambda: all(one.tape.count(i, TRADE) > after[i] + 3 for i in insts))
    assert all(one.tape.count(i, TRADE) > after[i] for i in insts)  # the stream went on
    one.settle()

    conn = one.feed.connection.stats()
    sim = one.sim.stats()
    assert conn.reconnects == conn.connects - 1 == sim["connections"]["total"] - 1
    assert conn.reconnects == sim["disconnects"]["fault_disconnect"] >= 1
    assert conn.errors["disconnect"] == conn.reconnects
    # every connection subscribed again to every stream, and each request was answered
    assert sim["subscribe_requests"] == conn.subscribe_requests == conn.acks >= conn.connects
    assert sim["subscriptions"] == dict.fromkeys(one.feed.config.streams(), 1)
    # every book was dropped on reconnect and loaded again from a new snapshot
    books = one.feed.books.stats()
    assert all(b.snapshots >= 2 for b in books.values()), books
    assert_books_equal_the_simulator(one)
    assert_book_events_match(one)
    assert_strictly_increasing(one)
    for inst in insts:
        trades = one.tape.seq_list(inst, TRADE)
        assert len(trades) == len(set(trades))
        assert trade_gaps(trades) <= conn.reconnects
    assert sim["faults"]["dup"] > 0
    streams = one.engine.stats()["streams"].values()
    assert sum(s["duplicates"] for s in streams) > 0  # dup frames arrived and were dropped

    one.stop()
    assert_stats_consistent(one)


def test_malformed_and_oversized_frames_are_dead_letters_and_the_stream_goes_on(live):
    one = live("spot", faults="malformed=0.01,oversized=0.005:80kb", seed=11,
               channels=("depth@100ms", "trade"), max_frame_bytes=64 * 1024)
    insts = one.instruments()
    one.run_for(1.0, until=lambda: one.feed.stats().malformed >= 4)
    assert one.feed.stats().malformed > 0, one.describe()
    after = {i: one.tape.count(i, TRADE) for i in insts}
    one.run_for(0.2, until=lambda: all(one.tape.count(i, TRADE) > after[i] for i in insts))
    assert all(one.tape.count(i, TRADE) > after[i] for i in insts)  # the stream went on
    one.settle()

    sim = one.sim.stats()
    sent = sim["frames_sent"]
    stats = one.feed.stats()
    assert sent.get("!malformed", 0) > 0 and sent.get("!oversized", 0) > 0
    assert stats.malformed == sent["!malformed"] + sent["!oversized"]
    assert stats.connection.errors.get("oversized") == sent["!oversized"]
    assert stats.connection.reconnects == 0
    texts = one.engine.dlq.texts()
    assert len(texts) == min(stats.malformed, one.engine.dlq.stats().text_capacity)
    assert all(t.reason == DeadLetterReason.MALFORMED for t in texts)
    assert all("MALFORMED frame" in t.detail or "oversized" in t.detail for t in texts)
    assert any(t.raw.startswith(b'{"stream":') for t in texts)
    # nothing was lost around them: books equal, trades contiguous up to the last one
    assert_books_equal_the_simulator(one)
    assert_book_events_match(one)
    trade_ids = sim["feed"]["trade_ids"]
    for inst, symbol in insts.items():
        assert wait_until(lambda i=inst, s=symbol: one.tape.seq_list(i, TRADE)[-1:]
                          == [trade_ids[s]], 5.0)
        assert trade_gaps(one.tape.seq_list(inst, TRADE)) == 0
    assert_strictly_increasing(one)

    one.stop()
    assert_stats_consistent(one)


def test_rest_429_backs_off_and_the_snapshot_loads(live):
    # seed 22 draws a 429 for exchangeInfo and for the second depth snapshot
    one = live("spot", faults="rest429=0.5", seed=22, channels=("depth@100ms",))
    insts = one.instruments()
    assert wait_until(lambda: all(one.feed.books.state_of(i) == "live" for i in insts), 8.0), \
        one.describe()
    to_live = time.monotonic() - one.started
    one.run_for(0.3)
    one.settle()

    rest = one.feed.rest.stats()
    sim_rest = one.sim.stats()["rest"]
    injected = one.sim.stats()["faults"]["rest429"]
    assert injected >= 1 and sim_rest["status"]["429"] == injected
    assert rest.rate_limited == rest.retries == injected
    assert rest.requests == rest.responses == sim_rest["requests"]
    # one REST connection, used in turn by start-up and the snapshot thread: every 429 (with
    # Retry-After: 1) held it back one second before the books could go live
    assert to_live >= 0.95 * injected
    stats = one.feed.stats()
    assert stats.snapshot_errors == 0 and stats.snapshots >= len(insts)
    assert_books_equal_the_simulator(one)
    assert_book_events_match(one)
    assert_strictly_increasing(one)

    one.stop()
    assert_stats_consistent(one)


def test_connection_level_bad_input_is_a_dead_letter_and_counted():
    """Frames the connection itself refuses (not JSON, binary, oversized) reach the DLQ."""
    engine = Engine()
    feed = BinanceFeed(engine, BinanceConfig(symbols=("BTC-USDT",), ws_url="ws://127.0.0.1:9",
                                             rest_url="http://127.0.0.1:9"))
    feed._on_error("protocol", "text frame of 7 bytes is not JSON", b"garbage")
    feed._on_error("ack_timeout", "no reply", b"")  # not input: logged only
    (letter,) = engine.dlq.texts()
    assert letter.reason == DeadLetterReason.MALFORMED and letter.raw == b"garbage"
    assert feed.stats().malformed == 1


def test_bad_value_and_unknown_symbol_frames_are_dead_letters():
    """A trade without a quantity and one for a symbol nobody subscribed reach the DLQ, like
    malformed frames, while the good trade beside them is published."""
    engine = Engine()
    feed = BinanceFeed(engine, BinanceConfig(symbols=("BTC-USDT",), ws_url="ws://127.0.0.1:9",
                                             rest_url="http://127.0.0.1:9"))
    feed.prepare_from(b"{}")
    trade = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT",'
             b'"t":1,"p":"60000.10","q":"0.5","T":1723161255342,"m":true,"M":true}}')
    no_qty = trade.replace(b'"q":"0.5",', b"")
    unknown = trade.replace(b'"BTCUSDT"', b'"NOPEUSDT"')
    feed.on_frames([trade, no_qty, unknown], [1, 2, 3])
    by_reason = engine.dlq.stats().by_reason
    assert by_reason[DeadLetterReason.MALFORMED] == 1
    assert by_reason[DeadLetterReason.UNKNOWN_MESSAGE] == 1
    assert feed.stats().events == 1
