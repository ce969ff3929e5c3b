"""OkxFeed live against the simulator's OKX protocol: real websockets and HTTP on 127.0.0.1.

Each test starts a simulator speaking OKX (a fast generated spot market, a seeded fault spec)
and an Engine with one OkxFeed (instruments over REST, then ``books``, ``trades``, ``bbo-tbt``)
and a recording batch consumer, lets the market run, pauses it and waits until the feed's
books carry the simulator's last seqId. The books must then equal the simulator's (every level,
as mantissas), and ``engine.stop()`` must return every pool slot.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from waiting import wait_until

from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.engine import Engine
from meltica_nb.fixedpoint import to_mantissa
from meltica_nb.schema import EventType
from meltica_nb.sim.binance import BinanceLimits
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import ExchangeSimulator
from meltica_nb.venues.okx.config import OkxConfig
from meltica_nb.venues.okx.feed import OkxFeed

INST_IDS = ("BTC-USDT", "ETH-USDT")
MARKET = MarketConfig.fast(updates_per_s=30.0)
TRADE, BBO, BOOK = int(EventType.TRADE), int(EventType.BBO), int(EventType.BOOK_SNAPSHOT)


class Tape:
    """A batch consumer counting what it got, per event type, and the last book it saw."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.lock = engine, threading.Lock()
        self.types: Counter[int] = Counter()
        self.venues: set[int] = set()

    def __call__(self, events) -> None:
        with self.lock:
            self.types.update(events["event_type"].tolist())
            self.venues.update(events["venue"].tolist())
            books = events[events["event_type"] == BOOK]
            if books.shape[0]:
                self.last_book = self.engine.book_levels(books[-1])


class Live:
    def __init__(self, sim: ExchangeSimulator, engine: Engine, feed: OkxFeed, tape: Tape):
        self.sim, self.engine, self.feed, self.tape = sim, engine, feed, tape
        self.report = None

    def sim_book(self, inst_id: str):
        info = self.engine.registry.instrument(self.feed.symbols[inst_id].instrument)
        book = self.sim.book(inst_id, 100_000)

        def side(levels):
            return [(to_mantissa(p, info.price_exp), to_mantissa(q, info.qty_exp))
                    for p, q in levels]

        return book["seqId"], side(book["bids"]), side(book["asks"])

    def caught_up(self) -> bool:
        for inst_id in INST_IDS:
            stats = self.feed.books.stats(self.feed.symbols[inst_id].instrument)
            if stats.state != "live" or stats.seq_id != self.sim_book(inst_id)[0]:
                return False
        return True

    def settle(self, timeout: float = 10.0) -> None:
        """Pause the market until the feed caught up (resume briefly when a fault on the last
        frames leaves nothing to repair the book with)."""
        deadline = time.monotonic() + timeout
        while True:
            self.sim.pause()
            if wait_until(self.caught_up, min(1.5, max(0.0, deadline - time.monotonic()))):
                return
            assert time.monotonic() < deadline, f"never caught up: {self.feed.stats()}"
            self.sim.resume()
            time.sleep(0.15)

    def assert_books_equal_the_simulator(self) -> None:
        for inst_id in INST_IDS:
            seq, bids, asks = self.sim_book(inst_id)
            local_bids, local_asks = self.feed.books.levels(self.feed.symbols[inst_id].instrument)
            assert local_bids.tolist() == bids and local_asks.tolist() == asks

    def stop(self):
        if self.report is None:
            self.report = self.engine.stop(5.0)
            self.sim.stop()
        assert self.report.clean and self.report.count == 0, self.report


@pytest.fixture
def live(no_thread_leak):
    started: list[Live] = []

    def start(faults: str | None = None, seed: int = 7, **config) -> Live:
        sim = ExchangeSimulator(config=MARKET, faults=faults, seed=seed, venue="okx",
                                limits=BinanceLimits(ping_interval=None)).start()
        engine = Engine()
        tape = Tape(engine)
        engine.add_consumer("tape", tape, mode="batch")
        config.setdefault("channels", ("books", "trades", "bbo-tbt"))
        feed = OkxFeed(engine, OkxConfig(
            symbols=INST_IDS, ws_url=sim.ws_url, rest_url=sim.rest_url, backoff_base_s=0.05,
            backoff_cap_s=0.5, backoff_seed=seed, control_rate_per_s=20.0, **config))
        engine.add_feed(feed)
        one = Live(sim, engine, feed, tape)
        started.append(one)
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


def test_books_trades_and_bbo_reach_the_consumer(live):
    run = live()
    assert wait_until(lambda: run.tape.types[TRADE] >= 3 and run.tape.types[BOOK] >= 20, 15.0)
    run.settle()
    run.assert_books_equal_the_simulator()
    stats = run.feed.stats()
    assert stats.checksum_ok >= 20 and stats.checksum_fail == 0 and stats.gaps == 0
    assert stats.resubscribes == 0 and stats.malformed == 0
    assert run.tape.types[BBO] >= 2
    assert run.tape.venues == {run.feed.venue}
    info = run.engine.registry.instrument(run.feed.symbols["BTC-USDT"].instrument)
    assert (info.symbol, info.price_exp, info.qty_exp) == ("BTC-USDT", 8, 8)
    assert run.sim.stats()["rest"] == {"requests": 1, "status": {200: 1}}  # instruments
    run.stop()


def _corrupt_checked(run):
    stats = run.feed.stats()
    assert stats.checksum_fail >= 2 and stats.resyncs >= 2
    # the start's streams, then two books streams again; the simulator counts them a loopback
    # hop later (streams, not requests: resubscribes due at the same tick share one request)
    start = len(INST_IDS) * 3  # books, trades, bbo-tbt
    wait_until(lambda: run.sim.stats()["subscribed_streams"] >= start + 2, 5.0,
               what="the simulator saw the start and two resubscribes")


def _gaps_checked(run):
    assert run.feed.stats().resubscribes >= 2 and run.feed.stats().checksum_fail == 0
    assert run.sim.stats()["faults"]["dup"] >= 1  # repeats were sent, and did no harm


def _malformed_checked(run):
    texts = [t for t in run.engine.dlq.texts() if t.reason == DeadLetterReason.MALFORMED]
    assert len(texts) >= 3 and all(t.detail.startswith("okx: MALFORMED") for t in texts)


def _disconnects_checked(run):
    assert run.sim.stats()["connections"]["total"] >= 3
    assert run.feed.stats().checksum_fail == 0


FAULTS = {  # fault spec, seed, what the feed must have seen, the checks after settling
    "corrupt level -> checksum fails -> resubscribe": (
        "corrupt=0.05", 3, lambda run: run.feed.stats().resubscribes >= 2, _corrupt_checked),
    "seq gaps -> resubscribe; duplicates ignored": (
        "drop=0.03,dup=0.03,reorder=0.02", 5, lambda run: run.feed.stats().gaps >= 2,
        _gaps_checked),
    "malformed -> counted and dead-lettered": (
        "malformed=0.05", 9, lambda run: run.feed.stats().malformed >= 3, _malformed_checked),
    "disconnects -> reconnect and resubscribe": (
        "disconnect=0.02", 11, lambda run: run.feed.connection.stats().reconnects >= 2,
        _disconnects_checked),
}


@pytest.mark.parametrize("case", FAULTS)
def test_faults_are_repaired_and_the_books_equal_the_simulator(live, case):
    faults, seed, seen, checked = FAULTS[case]
    run = live(faults=faults, seed=seed)
    assert wait_until(lambda: seen(run), 15.0), run.feed.stats()
    run.settle()
    run.assert_books_equal_the_simulator()
    checked(run)
    run.stop()


def test_a_quiet_connection_pings_with_text_and_stays_up(live):
    run = live(channels=("books", "trades"), ping_interval_s=0.2, pong_timeout_s=0.5)
    run.settle()  # the market is paused: nothing arrives but pongs
    before = run.sim.stats()["messages_received"]
    pings = run.feed.connection.stats().pings
    assert wait_until(lambda: run.feed.connection.stats().pings >= pings + 3, 5.0)
    conn = run.feed.connection.stats()
    assert conn.reconnects == 0 and "dead" not in conn.errors and conn.connected
    # the "ping" texts reach the simulator (its count lags the client's by the loopback hop)
    assert wait_until(lambda: run.sim.stats()["messages_received"] >= before + 3, 2.0)
    run.stop()
