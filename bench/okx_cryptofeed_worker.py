"""cryptofeed's own OKX ``books`` handler on the recording (run by ``bench_okx`` under a Python
that has cryptofeed; this file imports only the standard library and cryptofeed).

cryptofeed is not a dependency of meltica_nb: install it into a separate environment
(``python -m venv /tmp/cfenv && /tmp/cfenv/bin/pip install cryptofeed``) and pass that
interpreter to ``python -m bench.bench_okx --cryptofeed-python /tmp/cfenv/bin/python``.
The feed is built offline (its instrument table is preloaded, nothing is dialled) with
``checksum_validation=True``; every message goes through ``OKX.message_handler`` exactly as
cryptofeed's connection hands it over (its ``json.loads(parse_float=Decimal)``, its
``OrderBook`` with the C ``order-book`` checksum). Prints one JSON object: the median, min
and max cost per message over the runs, and the checksums that failed.
"""

import asyncio
import gzip
import json
import statistics
import sys
import time

from cryptofeed.defines import L2_BOOK
from cryptofeed.exceptions import BadChecksum
from cryptofeed.exchanges import OKX
from cryptofeed.symbols import Symbols

_INSTRUMENTS = [
    {"instType": "SPOT", "instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT",
     "tickSz": "0.1"},
    {"instType": "SWAP", "instId": "UNI-USD-SWAP", "tickSz": "0.001"},
    {"instType": "FUTURES", "instId": "BTC-USD-220527", "tickSz": "0.1"},
]


async def _ignore(*_args, **_kwargs):
    return None


async def _run(feed, frames):
    failed = 0
    for frame in frames:
        try:
            await feed.message_handler(frame, None, 0.0)
        except BadChecksum:
            failed += 1
    return failed


def main(path: str, repeat: int, runs: int) -> None:
    symbols, info = OKX._parse_symbol_data([{"data": _INSTRUMENTS}])
    Symbols.set(OKX.id, symbols, info)
    with gzip.open(path) as fh:
        raws = [json.loads(line)["raw"] for line in fh]
    frames = [r for r in raws if r.startswith('{"arg":{"channel":"books"')] * repeat
    times, failed = [], 0
    for _ in range(runs):
        feed = OKX(symbols=list(symbols), channels=[L2_BOOK], checksum_validation=True,
                   callbacks={L2_BOOK: _ignore})
        start = time.perf_counter()
        failed = asyncio.run(_run(feed, frames))
        times.append((time.perf_counter() - start) / len(frames) * 1e6)
    print(json.dumps({"median_us": statistics.median(times), "min_us": min(times),
                      "max_us": max(times), "checksum_failures": failed}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
