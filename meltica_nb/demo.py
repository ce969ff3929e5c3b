"""``meltica demo``: the live engine against the bundled exchange simulator.

The simulator (:mod:`meltica_nb.sim`) serves a generated Binance market on loopback; a
:class:`~meltica_nb.venues.binance.feed.BinanceFeed` connects to it over a real websocket and
real HTTP exactly as it would to Binance: combined streams, REST snapshots, the diff-depth book
procedure. Three example consumers run on their own threads: a top-of-book view (batch mode,
BBO), a trade tape (python mode) and spread statistics (njit mode); their results close the
summary. ``--faults`` passes a fault spec to the simulator (e.g. ``drop=0.01`` makes depth
gaps, which the books repair by resyncing).

``--venues binance,okx,kraken`` runs one simulator per venue, each speaking its venue's
protocol, and one feed each; with two or more venues a fourth consumer takes the consolidated
best bid/offer of BTC-USDT across them (a MergedSubscribe: each side with its venue).
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
from numba import njit

from .engine import Engine
from .errors import ConfigError
from .fixedpoint import from_mantissa
from .schema import EventType
from .session import run_session
from .sim.market import Instrument, MarketConfig
from .sim.server import ExchangeSimulator
from .venues.binance.config import BinanceConfig
from .venues.binance.feed import BinanceFeed
from .venues.kraken.config import KrakenConfig
from .venues.kraken.feed import KrakenFeed
from .venues.okx.config import OkxConfig
from .venues.okx.feed import OkxFeed

__all__ = ["VENUES", "run_demo"]

SYMBOLS = ("BTC-USDT", "ETH-USDT")
CHANNELS = ("depth@100ms", "bookTicker", "trade")
#: Venues the demo can simulate, in the order they are started.
VENUES = ("binance", "okx", "kraken")
#: The instrument whose best bid/offer is consolidated across venues.
CONSOLIDATED = "BTC-USDT"
#: Kraken lists the demo symbols under its own names (XBT for BTC).
KRAKEN_SYMBOLS = (Instrument("BTC-USDT", "XBTUSDT", "XBT", "USDT", "0.1", "0.00000001", "60000"),
                  Instrument("ETH-USDT", "ETHUSDT", "ETH", "USDT", "0.01", "0.00000001", "2000"))


@njit(cache=True)
def spread_stats(rec, state):
    """njit consumer: count BBOs and sum spreads (state[0] count, state[1] spread sum)."""
    state[0] += 1
    state[1] += rec.ask_price - rec.bid_price


def _add_consumers(engine: Engine) -> dict:
    """The three example consumers; returns the state they keep."""
    top: dict[int, tuple[int, int]] = {}
    tape = {"trades": 0, "volume": 0}
    spread = np.zeros(2, dtype=np.int64)

    def top_of_book(events):
        for inst, bid, ask in zip(events["instrument"].tolist(), events["bid_price"].tolist(),
                                  events["ask_price"].tolist(), strict=True):
            top[inst] = (bid, ask)

    def trade_tape(rec):
        tape["trades"] += 1
        tape["volume"] += int(rec["quantity"])

    engine.add_consumer("top-of-book", top_of_book, events=["bbo"], mode="batch")
    engine.add_consumer("trade-tape", trade_tape, events=["trade"], mode="python")
    engine.add_consumer("spread-stats", spread_stats, events=["bbo"], mode="njit", state=spread)
    return {"top": top, "tape": tape, "spread": spread}


def _add_consolidated(engine: Engine, venues: tuple[str, ...]) -> dict:
    """A consumer of the cross-venue best bid/offer (MERGED events), counted per venue pair."""
    seen: dict = {"merged": 0, "last": None}

    def consolidated(events):
        for rec in events:
            if rec["event_type"] == EventType.MERGED:
                seen["merged"] += 1
                seen["last"] = (int(rec["best_bid_price"]), int(rec["best_bid_venue"]),
                                int(rec["best_ask_price"]), int(rec["best_ask_venue"]))

    engine.add_consumer("consolidated-bbo", consolidated, events=["control_ack"], mode="batch")
    ack = engine.control.merged_subscribe("consolidated-bbo", CONSOLIDATED, "bbo", list(venues),
                                          window_ms=500)
    if not ack.success:
        raise ConfigError(f"demo: consolidated BBO refused: {ack.error}")
    return seen


def sim_feed(engine: Engine, protocol: str, ws_url: str, rest_url: str,
             symbols: tuple[str, ...], *, market: str = "spot", **binance) -> object:
    """The engine feed of ``symbols`` from a simulator speaking ``protocol``.

    ``protocol`` is "binance", "okx" or "kraken" (Kraken reads the simulator's v2 path);
    ``market`` and ``binance`` (extra BinanceConfig fields) apply to Binance only.
    """
    if protocol == "okx":
        return OkxFeed(engine, OkxConfig(symbols=symbols, ws_url=ws_url, rest_url=rest_url))
    if protocol == "kraken":
        return KrakenFeed(engine, KrakenConfig(symbols=symbols, ws_url=ws_url + "/v2",
                                               rest_url=rest_url))
    return BinanceFeed(engine, BinanceConfig(market=market, symbols=symbols, channels=CHANNELS,
                                             ws_url=ws_url, rest_url=rest_url, **binance))


def _consolidated_result(engine: Engine, seen: dict) -> dict:
    if seen["last"] is None:
        return {"merged": seen["merged"]}
    bid, bid_venue, ask, ask_venue = seen["last"]
    exp = engine.registry.instrument(engine.registry.instrument_id(CONSOLIDATED)).price_exp
    return {"merged": seen["merged"],
            "best_bid": [from_mantissa(bid, exp), engine.registry.venue_name(bid_venue)],
            "best_ask": [from_mantissa(ask, exp), engine.registry.venue_name(ask_venue)]}


def _results(engine: Engine, state: dict) -> dict:
    """What the example consumers computed, as decimal strings."""
    top = {}
    for inst, (bid, ask) in sorted(state["top"].items()):
        info = engine.registry.instrument(inst)
        top[info.symbol] = [from_mantissa(bid, info.price_exp),
                            from_mantissa(ask, info.price_exp)]
    count, spread_sum = (int(v) for v in state["spread"])
    return {"top_of_book": top, "trades": state["tape"]["trades"],
            "bbo_count": count, "mean_spread_mantissa": spread_sum / count if count else 0.0}


def run_demo(duration: float | None, faults: str | None = None, seed: int = 7,
             quiet: bool = False, venues: tuple[str, ...] = ("binance",)) -> dict:
    """Run simulators + engine until ``duration`` seconds pass or Ctrl-C; return the summary."""
    unknown = set(venues) - set(VENUES)
    if unknown or not venues:
        raise ConfigError(f"demo venues must be some of {list(VENUES)}, got {list(venues)}")
    with ExitStack() as stack:
        engine = Engine()
        state = _add_consumers(engine)
        for k, venue in enumerate(venues):
            market = MarketConfig.fast(
                instruments=KRAKEN_SYMBOLS if venue == "kraken" else None)
            sim = stack.enter_context(ExchangeSimulator(
                "spot", config=market, faults=faults, seed=seed + k, venue=venue))
            engine.add_feed(sim_feed(engine, venue, sim.ws_url, sim.rest_url, SYMBOLS,
                                     refresh_interval_s=30.0))
        seen = _add_consolidated(engine, venues) if len(venues) > 1 else None
        result = run_session(engine, duration, quiet)
    result["consumers"] = _results(engine, state)
    if seen is not None:
        result["consumers"]["consolidated_bbo"] = _consolidated_result(engine, seen)
    return result
