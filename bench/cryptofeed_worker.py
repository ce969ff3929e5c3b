"""cryptofeed's own handlers fed a recording, offline (the benchmarks' cryptofeed side).

Run by :mod:`bench.cryptofeed_env` under the benchmark environment's interpreter (one that has
cryptofeed; never a dependency of meltica_nb), so this file imports only the standard library
and cryptofeed: ``python bench/cryptofeed_worker.py '<job as JSON>'``. The job names the
venue, the recording (JSON Lines with ``stream`` and ``raw``, plain or gzip), ``runs``,
``repeat`` (passes over the frames per run) and ``callbacks`` (per data type, like consumers).

Each venue's feed is built offline: its instrument table is preloaded (``Symbols.set``, as
cryptofeed does after its REST call) and nothing is dialled. Every frame goes through the
feed's ``message_handler`` exactly as cryptofeed's connection hands it over (its
``json.loads(parse_float=Decimal)``, its ``OrderBook``), awaited one after the other in one
event loop; the timer covers that loop only. Per venue:

* ``okx``: the ``books`` frames through ``OKX`` with ``checksum_validation=True``;
* ``kraken``: the v1 ``book-*`` frames through ``Kraken`` with ``checksum_validation=True``
  (its ``OrderBook`` with the C ``order-book`` checksum);
* ``binance``: every stream frame through ``Binance`` with L2_BOOK, TICKER and TRADES. Its
  book asks for the REST snapshot on the first diff; the recording's REST line answers it
  (:class:`RecordedRest`: the URL must be the recorded one, nothing else is served). cryptofeed
  subscribes ``aggTrade``, so it has no handler for the recorded ``trade`` frames: it parses
  them, logs a warning (the ``feedhandler`` logger is set to ERROR, so the log costs nothing)
  and drops them, which favours cryptofeed.

Prints one JSON object: cryptofeed's version, the messages per run, each run's seconds, the
checksums that failed, the events the first callback of each data type received per run, and
the snapshots served.
"""

import asyncio
import gzip
import json
import logging
import sys
import time
from importlib.metadata import version

from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.exceptions import BadChecksum
from cryptofeed.exchanges import OKX, Binance, Kraken
from cryptofeed.symbols import Symbols

_OKX_INSTRUMENTS = [
    {"instType": "SPOT", "instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT",
     "tickSz": "0.1"},
    {"instType": "SWAP", "instId": "UNI-USD-SWAP", "tickSz": "0.001"},
    {"instType": "FUTURES", "instId": "BTC-USD-220527", "tickSz": "0.1"},
]


def read_lines(path):
    """The recording's lines as dicts (``stream``, ``raw``, ...), gzip or plain."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class RecordedRest:
    """Stands in for a feed's HTTP connection: answers the recorded REST requests only."""

    def __init__(self, lines):
        self.bodies = {line["stream"][5:]: line["raw"] for line in lines
                       if line["stream"].startswith("rest:")}
        self.served = 0

    async def read(self, url, **_kwargs):
        if url not in self.bodies:
            raise LookupError(f"not in the recording (offline): {url}")
        self.served += 1
        return self.bodies[url]

    async def close(self):
        return None


class Counter:
    """A callback that counts what it gets (cryptofeed awaits each callback in turn)."""

    def __init__(self):
        self.count = 0

    async def __call__(self, _obj, _receipt_timestamp):
        self.count += 1


def _okx(lines, callbacks):
    symbols, info = OKX._parse_symbol_data([{"data": _OKX_INSTRUMENTS}])
    Symbols.set(OKX.id, symbols, info)
    frames = [x["raw"] for x in lines if x["raw"].startswith('{"arg":{"channel":"books"')]
    return frames, lambda: OKX(symbols=list(symbols), channels=[L2_BOOK],
                               checksum_validation=True, callbacks={L2_BOOK: callbacks()})


def _kraken(lines, callbacks):
    books = [x for x in lines if x["stream"].startswith("book-")]
    pairs = sorted({json.loads(x["raw"])[-1] for x in books})
    symbols, info = Kraken._parse_symbol_data({"result": {p: {"wsname": p} for p in pairs}})
    Symbols.set(Kraken.id, symbols, info)
    return [x["raw"] for x in books], lambda: Kraken(
        symbols=list(symbols), channels=[L2_BOOK], checksum_validation=True,
        callbacks={L2_BOOK: callbacks()})


def _binance(lines, callbacks):
    """The recordings' symbols quote in USDT (``BTCUSDT``): base = all but the last 4 letters."""
    names = sorted({x["stream"].split("@", 1)[0].upper() for x in lines
                    if not x["stream"].startswith("rest:")})
    data = {"symbols": [{"symbol": n, "baseAsset": n[:-4], "quoteAsset": n[-4:],
                         "filters": [{"tickSize": "0.01"}]} for n in names]}
    symbols, info = Binance._parse_symbol_data(data)
    Symbols.set(Binance.id, symbols, info)
    logging.getLogger("feedhandler").setLevel(logging.ERROR)
    frames = [x["raw"] for x in lines if not x["stream"].startswith("rest:")]

    def build():
        feed = Binance(symbols=list(symbols), channels=[L2_BOOK, TICKER, TRADES],
                       callbacks={k: callbacks() for k in (L2_BOOK, TICKER, TRADES)})
        feed.http_conn = RecordedRest(lines)
        return feed
    return frames, build


VENUES = {"okx": _okx, "kraken": _kraken, "binance": _binance}


async def _drive(feed, frames):
    """Every frame through the handler; (seconds, checksums failed)."""
    failed = 0
    start = time.perf_counter()
    for frame in frames:
        try:
            await feed.message_handler(frame, None, 0.0)
        except BadChecksum:
            failed += 1
    return time.perf_counter() - start, failed


def run(job):
    lines = read_lines(job["path"])
    n_callbacks = job.get("callbacks", 1)
    frames, build = VENUES[job["venue"]](
        lines, lambda: [Counter() for _ in range(n_callbacks)])
    frames = frames * job.get("repeat", 1)
    seconds, failed, delivered, served = [], 0, {}, 0
    for _ in range(job["runs"]):
        feed = build()
        took, failed = asyncio.run(_drive(feed, frames))
        seconds.append(took)
        delivered = {str(k): cbs[0].count for k, cbs in feed.callbacks.items()
                     if cbs and isinstance(cbs[0], Counter)}
        served = getattr(feed.http_conn, "served", 0)
    return {"cryptofeed": version("cryptofeed"), "messages": len(frames), "seconds": seconds,
            "checksum_failures": failed, "delivered": delivered, "snapshots_served": served}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
