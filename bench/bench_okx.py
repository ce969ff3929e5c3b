"""OKX book update + checksum cost per message on the real recording, engine vs pure Python.

The input is the recorded OKX v5 ``books`` channel of 2022-05-13 (``tests/data/okx``): 290
messages (3 snapshots of 400 levels a side, 287 updates) for BTC-USDT, UNI-USD-SWAP and
BTC-USD-220527, each with the CRC32 checksum OKX computed over its top 25 levels. The sequence
is replayed ``--repeat`` times (each pass starts with the snapshots, so every pass is valid).

Cost per message of parsing it, updating the book and validating its checksum:

* engine batched: ``OkxParser.parse_batch`` (the Numba byte scanner) and ``OkxBooks.apply``
  (levels with their text forms, the checksum CRC'd in Numba from each level's cached piece,
  a changed level's text reprinted, top 20 published into the BookTable and a BBO event when
  the top moved) on batches of 64 frames;
* engine 1 msg/call: the same, one frame per call (a quiet feed);
* pure Python, as cryptofeed does it: ``orjson.loads``, one dict per side (price -> the
  received price and size strings), the top 25 by ``heapq``, the ``px:sz:...`` string joined
  and ``zlib.crc32`` compared with the message's checksum. No publishing.

* cryptofeed itself, when the benchmark environment has it (:mod:`bench.cryptofeed_env`:
  ``--cryptofeed-python`` or ``$MELTICA_CRYPTOFEED_PYTHON``; never a dependency of
  meltica_nb): its ``OKX.message_handler`` with checksum validation on, timed in a subprocess
  by :mod:`bench.cryptofeed_worker` during the same run, on the same frames.

Every side must validate every checksum ("ok"). Each figure is the median of ``--runs`` runs
with min-max; "x" is the pure-Python baseline's cost over each side's, and "vs cryptofeed" the
same against cryptofeed. Nothing is asserted.

Run: ``python -m bench.bench_okx [--runs 5] [--repeat 20] [--cryptofeed-python PY] [--json]``
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import statistics
import sys
import time
import zlib
from pathlib import Path

import orjson

from bench import cryptofeed_env
from bench.handicap import engine_path
from bench.measure import Measure
from meltica_nb.book_table import BookTable
from meltica_nb.registry import Registry
from meltica_nb.venues.okx.books import OkxBooks
from meltica_nb.venues.okx.parsing import OkxParser
from meltica_nb.venues.okx.symbols import OkxSymbols

RECORDING = (Path(__file__).resolve().parents[1] / "tests" / "data" / "okx"
             / "okx_cryptofeed_20220513.jsonl.gz")
INST_IDS = ("BTC-USDT", "UNI-USD-SWAP", "BTC-USD-220527")
BATCH = 64


def book_frames() -> list[bytes]:
    """The recording's ``books`` messages, in order."""
    with gzip.open(RECORDING) as fh:
        raws = [orjson.loads(line)["raw"].encode() for line in fh]
    return [r for r in raws if r.startswith(b'{"arg":{"channel":"books"')]


# -- engine -----------------------------------------------------------------------------------

class Engine:
    """Parser and books over a fresh registry."""

    def __init__(self) -> None:
        registry = Registry()
        self.parser = OkxParser(OkxSymbols(registry, INST_IDS), registry.venue_id("okx"))
        price_exp, qty_exp = registry.exponents_array()
        self.books = OkxBooks(registry.n_instruments + 1, BookTable(4096, 20), price_exp,
                              qty_exp)

    def run(self, frames: list[bytes], batch: int) -> int:
        """Process ``frames`` in batches; return the checksums that failed."""
        for start in range(0, len(frames), batch):
            chunk = frames[start:start + batch]
            result = self.parser.parse_batch(chunk, [0] * len(chunk))
            self.books.apply(result.depth, result.levels, result.texts, result.checksums)
        return sum(s.checksum_fail for s in self.books.stats().values())


# -- the pure-Python baseline -------------------------------------------------------------------

class DictBooks:
    """cryptofeed's way: dict books of the received strings, zlib.crc32 over the top 25."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict, dict]] = {}
        self.failed = 0

    def on_message(self, frame: bytes) -> None:
        msg = orjson.loads(frame)
        data = msg["data"][0]
        inst = msg["arg"]["instId"]
        if msg["action"] == "snapshot":
            self.books[inst] = ({}, {})
        bids, asks = self.books[inst]
        for side, levels in ((bids, data["bids"]), (asks, data["asks"])):
            for px, sz, *_ in levels:
                if sz == "0":
                    side.pop(float(px), None)
                else:
                    side[float(px)] = (px, sz)
        if self._checksum(bids, asks) != data["checksum"]:
            self.failed += 1

    @staticmethod
    def _checksum(bids: dict, asks: dict) -> int:
        top_b = [bids[p] for p in heapq.nlargest(25, bids)]
        top_a = [asks[p] for p in heapq.nsmallest(25, asks)]
        parts = []
        for j in range(max(len(top_b), len(top_a))):
            for side in (top_b, top_a):
                if j < len(side):
                    parts.extend(side[j])
        crc = zlib.crc32(":".join(parts).encode())
        return crc - (1 << 32) if crc >= 1 << 31 else crc


def run_baseline(frames: list[bytes]) -> int:
    books = DictBooks()
    for frame in frames:
        books.on_message(frame)
    return books.failed


# -- timing -----------------------------------------------------------------------------------

def _timed(fn, frames) -> tuple[float, int]:
    start = time.perf_counter()
    failed = fn(frames)
    return (time.perf_counter() - start) / len(frames) * 1e6, failed


#: The side cryptofeed's own handler is reported under.
CRYPTOFEED = "cryptofeed (checksums on)"


def cryptofeed_once(env: cryptofeed_env.CryptofeedEnv, repeat: int) -> tuple[float, int]:
    """One run of cryptofeed's OKX handler on the same frames: (us per message, failures)."""
    out = env.run({"venue": "okx", "path": str(RECORDING), "runs": 1, "repeat": repeat})
    return out["seconds"][0] / out["messages"] * 1e6, out["checksum_failures"]


def measure(runs: int, repeat: int, cryptofeed_python: str | None = None) -> dict:
    """Each run times every side in turn (a loaded machine hits all sides alike)."""
    frames = book_frames() * repeat
    warm = Engine()
    warm.run(frames[:BATCH], BATCH)  # compile before timing
    sides = {
        "engine batched": engine_path(lambda f: Engine().run(f, BATCH)),
        "engine 1 msg/call": engine_path(lambda f: Engine().run(f, 1)),
        "pure Python (cryptofeed way)": run_baseline,
    }
    timed = {name: (lambda fn=fn: _timed(fn, frames)) for name, fn in sides.items()}
    env = cryptofeed_env.find(cryptofeed_python)
    if env.available:
        timed[CRYPTOFEED] = lambda: cryptofeed_once(env, repeat)
    times: dict[str, list[float]] = {name: [] for name in timed}
    failed: dict[str, int] = {}
    for _ in range(runs):
        for name, once in timed.items():
            us, failed[name] = once()
            times[name].append(us)
    out = {name: {"median_us": statistics.median(t), "min_us": min(t), "max_us": max(t),
                  "runs_us": t, "checksum_failures": failed[name]} for name, t in times.items()}
    base = out["pure Python (cryptofeed way)"]["median_us"]
    cf = out.get(CRYPTOFEED, {}).get("median_us")
    for row in out.values():
        row["x"] = base / row["median_us"]
        if cf:
            row["x_vs_cryptofeed"] = cf / row["median_us"]
    return {"messages": len(frames), "runs": runs, "results": out,
            "cryptofeed": env.describe()}


#: Passes over the recording in quick mode (the tests lower it).
QUICK_REPEAT = 4


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: us per book message (parse, update, checksum) per side."""
    report = measure(3 if quick else 5, QUICK_REPEAT if quick else 20)
    out = []
    for side, row in report["results"].items():
        if row["checksum_failures"]:
            raise AssertionError(f"okx: {side} failed {row['checksum_failures']} checksums")
        out.append(Measure("okx", "book update + checksum", side, "us/msg",
                           tuple(row["runs_us"]), params={"messages": report["messages"],
                                                          "batch": BATCH}))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20)
    cryptofeed_env.add_argument(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.runs, args.repeat, args.cryptofeed_python)
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
        return 0
    print(f"OKX books: {report['messages']} messages per run, {report['runs']} runs "
          f"(median, min-max, us per message); {report['cryptofeed']}")
    for name, row in report["results"].items():
        ok = "ok" if row["checksum_failures"] == 0 else f"{row['checksum_failures']} FAILED"
        vs = f"  vs cryptofeed x{row['x_vs_cryptofeed']:.1f}" if "x_vs_cryptofeed" in row else ""
        print(f"  {name:30s} {row['median_us']:8.2f} ({row['min_us']:.2f}-{row['max_us']:.2f})"
              f"  x{row['x']:.1f}{vs}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
