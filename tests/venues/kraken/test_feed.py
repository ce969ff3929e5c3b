"""KrakenFeed live against the simulator's Kraken protocol: real websockets and HTTP on loopback.

Each test starts the simulator in Kraken mode (a fast generated market, faults from a fixed
seed), an Engine with one KrakenFeed (v1 or v2) and a recording batch consumer, lets the market
run, then pauses it and waits until every book equals the simulator's top ``depth`` levels.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

import orjson
import pytest
from waiting import wait_until

from meltica_nb.dead_letter_queue import DeadLetterReason
from meltica_nb.engine import Engine
from meltica_nb.fixedpoint import to_mantissa
from meltica_nb.schema import EventType
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import ExchangeSimulator
from meltica_nb.venues.kraken.config import KrakenConfig
from meltica_nb.venues.kraken.feed import KrakenFeed

SYMBOLS = ("BTC-USD", "ETH-USD")
TRADE, BBO, BOOK, TICKER = (int(t) for t in (EventType.TRADE, EventType.BBO,
                                              EventType.BOOK_SNAPSHOT, EventType.TICKER))
MARKET = MarketConfig.fast(updates_per_s=30.0, ticker_ms=500)


class Tape:
    """A batch consumer counting events per (instrument, type), keeping the last BOOK levels."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.counts: dict[tuple[int, int], int] = defaultdict(int)
        self.last_book: dict[int, tuple[list, list, int]] = {}

    def __call__(self, events) -> None:
        with self.lock:
            for k, (etype, inst) in enumerate(zip(events["event_type"].tolist(),
                                                  events["instrument"].tolist(), strict=True)):
                self.counts[inst, etype] += 1
                if etype == BOOK:
                    bids, asks = self.engine.book_levels(events[k])
                    self.last_book[inst] = (bids.tolist(), asks.tolist(),
                                            int(events[k]["checksum"]))

    def count(self, inst: int, etype: int) -> int:
        with self.lock:
            return self.counts.get((inst, etype), 0)


@dataclass
class Live:
    sim: ExchangeSimulator
    engine: Engine
    feed: KrakenFeed
    tape: Tape
    report: object = None

    def instruments(self) -> list[int]:
        return [self.engine.registry.instrument_id(s) for s in SYMBOLS]

    def sim_book(self, inst: int) -> tuple[list, list]:
        info = self.engine.registry.instrument(inst)
        book = self.sim.book(info.symbol, self.feed.config.book_depth)

        def side(levels):
            return [(to_mantissa(p, info.price_exp), to_mantissa(q, info.qty_exp))
                    for p, q in levels]

        return side(book["bids"]), side(book["asks"])

    def in_sync(self) -> bool:
        for inst in self.instruments():
            bids, asks = self.feed.books.books.levels(inst)
            if self.feed.books.stats(inst).state != "live":
                return False
            if (bids.tolist(), asks.tolist()) != self.sim_book(inst):
                return False
        return True

    def settle(self, timeout: float = 10.0) -> None:
        """Pause the market until the feed's books equal the simulator's."""
        self.sim.pause()
        assert wait_until(self.in_sync, timeout), (self.feed.stats(), self.sim.stats())


@pytest.fixture
def live(no_thread_leak):
    started: list[Live] = []

    def start(version: int = 2, *, faults: str | None = None, seed: int = 7,
              **config) -> Live:
        sim = ExchangeSimulator(config=MARKET, faults=faults, seed=seed, venue="kraken").start()
        engine = Engine()
        tape = Tape(engine)
        engine.add_consumer("tape", tape, mode="batch")
        path = "/v2" if version == 2 else "/"
        cfg = KrakenConfig(version=version, symbols=SYMBOLS, ws_url=sim.ws_url + path,
                           rest_url=sim.rest_url, backoff_base_s=0.05, backoff_cap_s=0.5,
                           backoff_seed=seed, **config)
        feed = KrakenFeed(engine, cfg)
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
            report = one.engine.stop(5.0)
            assert report.clean and report.count == 0, report
        finally:
            one.sim.stop()


@pytest.mark.parametrize("version", [1, 2])
def test_books_trades_and_tickers_reach_a_consumer_live(live, version):
    one = live(version)
    insts = one.instruments()
    assert wait_until(lambda: all(one.tape.count(i, BOOK) >= 5 and one.tape.count(i, TRADE)
                                  and one.tape.count(i, TICKER) for i in insts), 15.0), \
        one.feed.stats()
    one.settle()
    stats = one.feed.stats()
    assert stats.checksum_ok >= 10 and stats.checksum_fail == 0 and stats.resubscribes == 0
    assert stats.malformed == 0 and stats.unknown == 0
    k = one.engine.book_table.k
    for inst in insts:
        assert one.tape.count(inst, BBO) >= 1
        bids, asks = one.sim_book(inst)
        assert wait_until(lambda i=inst, b=bids[:k], a=asks[:k]:
                          one.tape.last_book.get(i, ())[:2] == (b, a), 5.0)
        assert one.tape.last_book[inst][2] == one.feed.books.checksum(inst)


def test_corrupted_levels_fail_the_checksum_and_resubscribe(live):
    one = live(2, faults="corrupt=0.1", seed=3)
    assert wait_until(lambda: one.feed.stats().resubscribes >= 2, 20.0), one.feed.stats()
    one.settle()
    stats = one.feed.stats()
    assert stats.checksum_fail >= 2 and stats.resubscribes == stats.checksum_fail
    assert one.sim.stats()["faults"]["corrupt"] >= stats.checksum_fail
    assert sum(b.resyncs for b in stats.books.values()) == stats.checksum_fail
    assert sum(b.snapshots for b in stats.books.values()) >= 2 + stats.checksum_fail


def test_malformed_frames_are_dead_lettered_and_the_stream_goes_on(live):
    one = live(1, faults="malformed=0.05", seed=11)
    assert wait_until(lambda: one.feed.stats().malformed >= 2, 20.0), one.feed.stats()
    one.settle()
    assert one.engine.dlq.stats().texts_offered >= 2
    assert one.feed.stats().checksum_fail == 0
    letters = one.engine.dlq.texts()
    assert any(t.reason == DeadLetterReason.MALFORMED for t in letters)


def test_disconnects_reconnect_and_resubscribe(live):
    one = live(2, faults="disconnect=0.02", seed=5)
    assert wait_until(lambda: one.feed.connection.stats().reconnects >= 2, 20.0), \
        one.feed.stats()
    one.settle()
    stats = one.feed.stats()
    assert stats.checksum_fail == 0
    assert sum(b.snapshots for b in stats.books.values()) >= 2 * 3


def test_quiet_links_are_pinged_with_kraken_messages(live):
    one = live(1, ping_interval_s=0.2, channels=("book",))
    assert wait_until(lambda: one.feed.stats().snapshots >= 2, 10.0)
    one.sim.pause()  # no book changes: only the once-a-second heartbeat and our pongs arrive
    assert wait_until(lambda: one.feed.connection.stats().pings >= 2, 5.0)
    conn = one.feed.connection.stats()
    assert conn.errors.get("dead", 0) == 0 and conn.reconnects == 0
    assert conn.acks == len(SYMBOLS) and conn.errors.get("subscribe_error", 0) == 0


def test_refused_subscriptions_are_reported(live):
    one = live(2, channels=("book",))
    one.feed.connection.subscribe(["book@DOGE/EUR"])
    assert wait_until(lambda: one.feed.connection.stats().errors.get("subscribe_error"), 5.0)
    assert one.feed.stats().checksum_fail == 0


def test_replay_drives_the_feed_without_a_connection(no_thread_leak):
    """A replay driver calls build() and on_frames(): the same parse, books and publish."""
    engine = Engine()
    tape = Tape(engine)
    engine.add_consumer("tape", tape, mode="batch")
    engine.start()
    try:
        feed = KrakenFeed(engine, KrakenConfig(version=2, symbols=("BTC-USD",)))
        feed.build({"BTC-USD": (1, 8)})
        frames = [
            b'{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":'
            b'100.5,"qty":1.0}],"asks":[{"price":101.0,"qty":2.0}],"checksum":2998930800}]}',
            b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":'
            b'100.6,"qty":0.5}],"asks":[],"checksum":1}]}',
            b"not json",
            b'[7,[["100.6","0.5","1.000001","b","m",""],["100.7","0.1","1.000001","b","m",""],'
            b'["100.8","0.2","1.000001","b","m",""]],"trade","XBT/USD"]',
        ]
        feed.on_frames(frames, [1, 2, 3, 4])
        inst = engine.registry.instrument_id("BTC-USD")
        assert wait_until(lambda: tape.count(inst, BBO) == 1, 5.0)
        assert wait_until(lambda: tape.count(inst, TRADE) == 3, 5.0)  # one time, three trades
        stats = feed.stats()
        assert (stats.checksum_ok, stats.checksum_fail, stats.malformed) == (1, 1, 1)
        assert stats.resubscribes == 1 and stats.books[inst].state == "resync"
    finally:
        assert engine.stop(5.0).clean


def test_meltica_run_with_a_kraken_table(tmp_path, capsys, no_thread_leak):
    from meltica_nb import cli

    with ExchangeSimulator(config=MARKET, venue="kraken") as sim:
        config = tmp_path / "meltica.toml"
        config.write_text(f"""
[[kraken]]
version = 1
symbols = ["BTC-USD"]
ws_url = "{sim.ws_url}/v1"
rest_url = "{sim.rest_url}"
""")
        assert cli.main(["run", "--config", str(config), "--duration", "1", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["events"]["book_snapshot"] > 0 and summary["events"]["bbo"] > 0
    assert summary["resyncs"] == 0 and summary["unreturned_slots"] == 0


def test_asset_pairs_over_http_retry_5xx_and_raise_typed_errors(no_thread_leak):
    from meltica_nb.errors import ConfigError, RequestRejected, VenueUnavailable
    from meltica_nb.registry import Registry
    from meltica_nb.venues.kraken.rest import fetch_asset_pairs
    from meltica_nb.venues.kraken.symbols import KrakenSymbols

    with ExchangeSimulator(config=MARKET, venue="kraken", faults="rest5xx=0.5", seed=1) as sim:
        fast = {"backoff_base_s": 0.01, "backoff_cap_s": 0.02, "symbols": ("BTC-USD",)}
        body = fetch_asset_pairs(KrakenConfig(rest_url=sim.rest_url, **fast))
        assert b'"XXBTZUSD"' in body
        with pytest.raises(RequestRejected):
            fetch_asset_pairs(KrakenConfig(rest_url=sim.rest_url + "/nope", **fast))
        with pytest.raises(ConfigError, match="DOGE"):
            KrakenSymbols(Registry()).add_asset_pairs(body, ["DOGE-EUR"])
    with pytest.raises(VenueUnavailable):
        fetch_asset_pairs(KrakenConfig(rest_url="http://127.0.0.1:9", rest_max_retries=1, **fast))
