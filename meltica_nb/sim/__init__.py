"""The exchange simulator: Binance's protocol on loopback, for tests, demos and offline runs.

- :mod:`meltica_nb.sim.market`: a generated market (seeded random-walk books, trades, tickers)
- :mod:`meltica_nb.sim.recording`: a recorded feed played at 1x or faster
- :mod:`meltica_nb.sim.binance`: the protocol (stream paths, control messages, REST, weights)
- :mod:`meltica_nb.sim.faults`: seeded fault injection (drops, duplicates, stalls, 429, ...)
- :mod:`meltica_nb.sim.ws` / :mod:`meltica_nb.sim.httpd`: the websocket and HTTP servers
- :mod:`meltica_nb.sim.server`: :class:`ExchangeSimulator` and the ``meltica sim`` command
- :mod:`meltica_nb.sim.matching` (with :mod:`~meltica_nb.sim.order_records`,
  :mod:`~meltica_nb.sim.filters`): a pure order matcher, for the simulator and for backtests
- :mod:`meltica_nb.sim.binance_orders` (with :mod:`~meltica_nb.sim.auth`,
  :mod:`~meltica_nb.sim.account`, :mod:`~meltica_nb.sim.listen_keys`,
  :mod:`~meltica_nb.sim.binance_payloads`): Binance's signed order REST and user data stream
"""

from meltica_nb.sim.auth import Credentials
from meltica_nb.sim.binance import BinanceLimits
from meltica_nb.sim.faults import FaultInjector, FaultSpec
from meltica_nb.sim.market import GeneratedMarket, Instrument, MarketConfig
from meltica_nb.sim.recording import RecordingFeed
from meltica_nb.sim.server import ExchangeSimulator, main

__all__ = [
    "BinanceLimits",
    "Credentials",
    "ExchangeSimulator",
    "FaultInjector",
    "FaultSpec",
    "GeneratedMarket",
    "Instrument",
    "MarketConfig",
    "RecordingFeed",
    "main",
]
