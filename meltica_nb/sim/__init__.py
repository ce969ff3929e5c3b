"""The exchange simulator: Binance's protocol on loopback, for tests, demos and offline runs.

- :mod:`meltica_nb.sim.market`: a generated market (seeded random-walk books, trades, tickers)
- :mod:`meltica_nb.sim.recording`: a recorded feed played at 1x or faster
- :mod:`meltica_nb.sim.binance`: the protocol (stream paths, control messages, REST, weights)
- :mod:`meltica_nb.sim.faults`: seeded fault injection (drops, duplicates, stalls, 429, ...)
- :mod:`meltica_nb.sim.ws` / :mod:`meltica_nb.sim.httpd`: the websocket and HTTP servers
- :mod:`meltica_nb.sim.server`: :class:`ExchangeSimulator` and the ``meltica sim`` command
"""

from meltica_nb.sim.binance import BinanceLimits
from meltica_nb.sim.faults import FaultInjector, FaultSpec
from meltica_nb.sim.market import GeneratedMarket, Instrument, MarketConfig
from meltica_nb.sim.recording import RecordingFeed
from meltica_nb.sim.server import ExchangeSimulator, main

__all__ = [
    "BinanceLimits",
    "ExchangeSimulator",
    "FaultInjector",
    "FaultSpec",
    "GeneratedMarket",
    "Instrument",
    "MarketConfig",
    "RecordingFeed",
    "main",
]
