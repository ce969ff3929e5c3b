"""A merged subscription live: two venues' simulators and feeds, one engine.

Two pairs: Binance spot with Binance USD-M (two BinanceFeeds), and Binance spot with OKX (a
BinanceFeed and an OkxFeed, each simulator speaking its venue's protocol). Both simulators of a
pair serve BTC-USDT (each its own random-walk market) over real websockets and HTTP
on 127.0.0.1; each feed turns its best bid/offer stream (Binance ``bookTicker``, OKX
``bbo-tbt``) into BBO events of its venue. One consumer takes both venues' BBOs and, through a
MergedSubscribe, the consolidated BBO: MERGED events whose best bid and ask are the best of the
two venues' quotes, each with the venue it came from. The consumer reads each merged event's
fragments inside its handler (as a strategy would) and keeps everything in delivery order.

What must hold for every merged event: one fragment per venue, received in its window; the
consolidated sides are the best of the fragments with the right venue ids; and each fragment is
the newest BBO of its venue received before the window closed, so the sides are the best of
the two books at that moment. Delivery order is compared too: where the consumer received the
fragment itself (a slow consumer may have had it overwritten by a newer quote, latest wins), it
is exactly the last BBO of that venue delivered before the merged event. The only quotes
allowed to break that are late ones, and no more of them than the orchestrator counted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from waiting import wait_until

from meltica_nb.engine import Engine
from meltica_nb.schema import EventType, Flag
from meltica_nb.sim.binance import BinanceLimits
from meltica_nb.sim.market import MarketConfig
from meltica_nb.sim.server import ExchangeSimulator
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.feed import BinanceFeed
from meltica_nb.venues.okx.config import OkxConfig
from meltica_nb.venues.okx.feed import OkxFeed

BBO, MERGED = int(EventType.BBO), int(EventType.MERGED)
#: (venue name, simulator protocol, market, seed) of the two venues of each merged pair.
PAIRS = {
    "binance+binance-futures": (("binance", "binance", "spot", 7),
                                ("binance-futures", "binance", "usdm", 8)),
    "binance+okx": (("binance", "binance", "spot", 7), ("okx", "okx", "spot", 8)),
}
MARKET = MarketConfig.fast(updates_per_s=30.0)
QUOTE = ("seq_provider", "bid_price", "bid_qty", "ask_price", "ask_qty", "ingest_ns")


def quote(rec) -> dict:
    return {name: int(rec[name]) for name in ("venue", *QUOTE)}


@dataclass
class Merged:
    """One MERGED event as the consumer saw it: position, sides, window, fragments."""

    position: int
    best_bid: tuple[int, int, int]
    best_ask: tuple[int, int, int]
    partial: bool
    window: tuple[int, int]
    fragments: list[dict]


@dataclass
class Tape:
    """A batch consumer keeping BBOs and merged events in delivery order."""

    engine: Engine
    lock: threading.Lock = field(default_factory=threading.Lock)
    quotes: list[tuple[int, dict]] = field(default_factory=list)  # (position, quote)
    merged: list[Merged] = field(default_factory=list)
    position: int = 0

    def __call__(self, events) -> None:
        with self.lock:
            for rec in events:
                self.position += 1
                if rec["event_type"] == BBO:
                    self.quotes.append((self.position, quote(rec)))
                elif rec["event_type"] == MERGED:
                    self.merged.append(self._merged(rec))

    def _merged(self, rec) -> Merged:
        (record,) = self.engine.merged_event(rec)  # read while fresh, inside the handler
        frags = record["fragments"][:record["n_fragments"]]
        return Merged(self.position,
                      (int(rec["best_bid_price"]), int(rec["best_bid_qty"]),
                       int(rec["best_bid_venue"])),
                      (int(rec["best_ask_price"]), int(rec["best_ask_qty"]),
                       int(rec["best_ask_venue"])),
                      bool(rec["flags"] & Flag.PARTIAL),
                      (int(record["window_open_ns"]), int(record["window_close_ns"])),
                      [quote(f) for f in frags])

    def count(self) -> int:
        with self.lock:
            return len(self.merged)


def simulator(protocol: str, market: str, seed: int) -> ExchangeSimulator:
    limits = BinanceLimits(ping_interval=None)
    if protocol == "okx":
        return ExchangeSimulator(config=MARKET, seed=seed, limits=limits, venue="okx")
    return ExchangeSimulator(market, config=MARKET, seed=seed, limits=limits)


def best_quote_feed(engine: Engine, protocol: str, sim: ExchangeSimulator):
    """The venue's feed of BTC-USDT best bid/offer from ``sim``."""
    if protocol == "okx":
        return OkxFeed(engine, OkxConfig(symbols=("BTC-USDT",), channels=("bbo-tbt",),
                                         ws_url=sim.ws_url, rest_url=sim.rest_url,
                                         backoff_base_s=0.05))
    return BinanceFeed(engine, BinanceConfig(market=sim.market, symbols=("BTC-USDT",),
                                             channels=("bookTicker",), ws_url=sim.ws_url,
                                             rest_url=sim.rest_url, backoff_base_s=0.05))


@pytest.fixture(params=sorted(PAIRS))
def two_venues(request, no_thread_leak):
    """Two venues' simulators, an engine with a feed on each, a tape consumer; venue names."""
    pair = PAIRS[request.param]
    sims = [simulator(protocol, market, seed) for _, protocol, market, seed in pair]
    engine = Engine()
    tape = Tape(engine)
    engine.add_consumer("tape", tape, events=["bbo", "control_ack"], ring_capacity=1 << 14)
    try:
        for sim, (_, protocol, _, _) in zip(sims, pair, strict=True):
            sim.start()
            engine.add_feed(best_quote_feed(engine, protocol, sim))
        engine.start()
        yield engine, tape, [venue for venue, *_ in pair]
    finally:
        report = engine.stop(5.0)
        for sim in sims:
            sim.stop()
    assert report.clean, report


def best_of(fragments: list[dict]) -> tuple[tuple, tuple]:
    """The consolidated sides computed here, independently: (price, size, venue)."""
    bid = max(fragments, key=lambda f: (f["bid_price"], f["bid_qty"]))
    ask = min(fragments, key=lambda f: (f["ask_price"], -f["ask_qty"]))
    return ((bid["bid_price"], bid["bid_qty"], bid["venue"]),
            (ask["ask_price"], ask["ask_qty"], ask["venue"]))


def classify(m: Merged, frag: dict, quotes: list[tuple[int, dict]]) -> str:
    """Check a fragment against the quotes its venue delivered before the merged event.

    The fragment was received in its window and is the newest quote of its venue received
    before the window closed: "exact" when the consumer received the fragment itself (then it
    is the last in-time quote of that venue delivered before the merged event; quotes received
    after the close belong to the next window), "overwritten" when a newer quote replaced it in
    the ring first (latest wins). "late" names the one exception: a quote received before the
    close but handed to the orchestrator after the tick had closed the window, which the merge
    drops as late (counted) and a slow consumer's ring may show before the merged event.
    """
    opened, closed = m.window
    assert opened <= frag["ingest_ns"] < closed
    before = [q for pos, q in quotes if pos < m.position and q["venue"] == frag["venue"]]
    in_time = [q for q in before if q["ingest_ns"] < closed]
    if any(q["seq_provider"] > frag["seq_provider"] for q in in_time):
        return "late"
    received = [q for q in before if q["seq_provider"] == frag["seq_provider"]]
    if not received:
        return "overwritten"
    assert received[-1] == frag
    assert in_time[-1] == frag, "a newer quote of this venue came before the merged event"
    return "exact"


def test_consolidated_bbo_is_the_best_of_both_venues_books(two_venues):
    engine, tape, venues = two_venues
    ids = [engine.registry.venue_id(v) for v in venues]
    ack = engine.control.merged_subscribe("tape", "BTC-USDT", "bbo", venues, window_ms=100)
    assert ack.success, ack
    wait_until(lambda: tape.count() >= 8, 8.0, 0.05)  # the assertion below says what came
    with tape.lock:
        merged, quotes = list(tape.merged), list(tape.quotes)
    assert len(merged) >= 8, engine.stats()["orchestrator"]

    kinds = []
    for m in merged:
        assert not m.partial
        assert [f["venue"] for f in m.fragments] == ids
        assert (m.best_bid, m.best_ask) == best_of(m.fragments)
        kinds.append([classify(m, f, quotes) for f in m.fragments])
    stats = engine.stats()["orchestrator"]
    sub = stats.subscriptions["merged-0"]
    assert sum(k.count("late") for k in kinds) <= sub.counts["dropped_late"], kinds
    exact = sum(k == ["exact", "exact"] for k in kinds)
    assert exact >= len(merged) // 3, kinds
    venues_of_sides = {m.best_bid[2] for m in merged} | {m.best_ask[2] for m in merged}
    assert venues_of_sides <= set(ids)

    assert sub.subscription == f"BTC-USDT bbo [{', '.join(venues)}]"
    assert sub.counts["emitted"] >= len(merged)
    assert sub.counts["fragments"] >= 2 * sub.counts["emitted"]
    tape_stats = engine.stats()["consumers"]["tape"]
    assert tape_stats.errors == 0
