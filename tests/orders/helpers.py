"""Helpers for the trading tests: an engine trading on the simulator, recording consumers."""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal

import numpy as np
from waiting import wait_until

from meltica_nb.engine import Engine
from meltica_nb.schema import CANONICAL_EVENT, EventType
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.trader import BinanceTrader, TradingConfig

EXEC = int(EventType.EXEC_REPORT)
ACK = int(EventType.CONTROL_ACK)
RESULT = int(EventType.CONTROL_RESULT)


class Recorder:
    """A batch consumer that keeps a copy of every event; ``stall`` blocks it until set."""

    def __init__(self, stall: threading.Event | None = None) -> None:
        self.stall = stall
        self.lock = threading.Lock()
        self.batches: list[np.ndarray] = []

    def __call__(self, events: np.ndarray) -> None:
        if self.stall is not None:
            self.stall.wait(10.0)
        with self.lock:
            self.batches.append(events.copy())

    @property
    def events(self) -> np.ndarray:
        with self.lock:
            batches = list(self.batches)
        out = np.zeros(sum(len(b) for b in batches), CANONICAL_EVENT)
        if batches:  # into a CANONICAL_EVENT array: a plain concatenate rebuilds the union
            np.concatenate(batches, out=out)
        return out

    def of_type(self, event_type: int) -> np.ndarray:
        ev = self.events
        return ev[ev["event_type"] == event_type]

    def reports(self, client_order_id: str | None = None) -> list[tuple[int, int, int]]:
        """(status, filled, order_qty) of the exec reports, optionally of one order."""
        ev = self.of_type(EXEC)
        if client_order_id is not None:
            ev = ev[ev["client_order_id"] == client_order_id.encode()]
        return list(zip(ev["status"].tolist(), ev["filled_qty"].tolist(),
                        ev["order_qty"].tolist(), strict=True))


def binance_config(sim, **overrides) -> BinanceConfig:
    values = dict(symbols=("BTC-USDT",), ws_url=sim.ws_url, rest_url=sim.rest_url,
                  api_key=sim.credentials.api_key, api_secret=sim.credentials.api_secret,
                  read_timeout_s=0.05, backoff_base_s=0.02, backoff_cap_s=0.1,
                  backoff_seed=1)
    values.update(overrides)
    return BinanceConfig(**values)


def trading_engine(sim, consumers, trading: TradingConfig | None = None,
                   **config) -> tuple[Engine, BinanceTrader]:
    """An engine with ``consumers`` (name -> Recorder, or (Recorder, options)) and a trader."""
    engine = Engine()
    for name, spec in consumers.items():
        recorder, options = spec if isinstance(spec, tuple) else (spec, {})
        engine.add_consumer(name, recorder, **options)
    trader = BinanceTrader(engine, binance_config(sim, **config), trading)
    engine.add_trader(trader)
    return engine, trader


@contextlib.contextmanager
def trading_session(sim, consumers, trading: TradingConfig | None = None, enable=(),
                    **config):
    """A running engine trading on the paused simulator, its user stream connected and the
    trading switch of the consumers in ``enable`` on; stopped on exit."""
    engine, trader = trading_engine(sim, consumers, trading, **config)
    with engine:
        assert wait_until(lambda: trader.stream.connected)
        sim.pause()
        for name in enable:
            assert engine.control.set_trading_mode(name, True).success
        yield engine, trader


def crossing_buy(sim, levels: int = 3) -> tuple[str, str]:
    """(quantity, price) of a BUY that takes ``levels - 1`` ask levels whole and half of the
    last: one PARTIAL report per level, then FILLED (the market must be paused)."""
    asks = sim.book("BTCUSDT", levels)["asks"][:levels]
    qty = sum(Decimal(q) for _, q in asks[:-1]) + Decimal(asks[-1][1]) / 2
    return str(qty.quantize(Decimal("0.00001"))), asks[-1][0]


class AskLadder:
    """The paused market's asks minus what our earlier buys took (the simulator remembers its
    fills against a level until the market changes it), for a series of crossing buys."""

    def __init__(self, sim, depth: int = 40) -> None:
        self.asks = [[Decimal(p), Decimal(q)] for p, q in sim.book("BTCUSDT", depth)["asks"]]

    def crossing_buy(self, levels: int = 3) -> tuple[str, str]:
        """Like :func:`crossing_buy`, on the liquidity still left."""
        left = [level for level in self.asks if level[1] > 0][:levels]
        last = (left[-1][1] / 2).quantize(Decimal("0.00001"))
        qty = sum((q for _, q in left[:-1]), last)
        for level in left[:-1]:
            level[1] = Decimal(0)
        left[-1][1] -= last
        return f"{qty:.5f}", f"{left[-1][0]:.8f}"


def resting_buy(sim) -> tuple[str, str]:
    """(quantity, price) of a BUY far below the market: it rests until cancelled."""
    bid = Decimal(sim.book("BTCUSDT", 1)["bids"][0][0])
    return "0.00100", str((bid * Decimal("0.9")).quantize(Decimal("0.01")))


def venue_requests(sim) -> int:
    """REST requests the simulator has served."""
    return sim.stats()["rest"]["requests"]
