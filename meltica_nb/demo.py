"""``meltica demo``: the live engine against the bundled exchange simulator.

The simulator (:mod:`meltica_nb.sim`) serves a generated Binance market on loopback; a
:class:`~meltica_nb.venues.binance.feed.BinanceFeed` connects to it over a real websocket and
real HTTP exactly as it would to Binance: combined streams, REST snapshots, the diff-depth book
procedure. Three example consumers run on their own threads: a top-of-book view (batch mode,
BBO), a trade tape (python mode) and spread statistics (njit mode); their results close the
summary. ``--faults`` passes a fault spec to the simulator (e.g. ``drop=0.01`` makes depth
gaps, which the books repair by resyncing).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .engine import Engine
from .fixedpoint import from_mantissa
from .session import run_session
from .sim.market import MarketConfig
from .sim.server import ExchangeSimulator
from .venues.binance.config import BinanceConfig
from .venues.binance.feed import BinanceFeed

__all__ = ["run_demo"]

SYMBOLS = ("BTC-USDT", "ETH-USDT")
CHANNELS = ("depth@100ms", "bookTicker", "trade")


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
             quiet: bool = False) -> dict:
    """Run simulator + engine until ``duration`` seconds pass or Ctrl-C; return the summary."""
    with ExchangeSimulator("spot", config=MarketConfig.fast(), faults=faults, seed=seed) as sim:
        engine = Engine()
        state = _add_consumers(engine)
        config = BinanceConfig(symbols=SYMBOLS, channels=CHANNELS, ws_url=sim.ws_url,
                               rest_url=sim.rest_url, refresh_interval_s=30.0)
        engine.add_feed(BinanceFeed(engine, config))
        result = run_session(engine, duration, quiet)
    result["consumers"] = _results(engine, state)
    return result
