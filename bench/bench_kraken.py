"""Kraken book upkeep with checksum validation per message, on the real v1 recording.

The input is the recorded Kraken WebSocket v1 ``book-1000`` feed of 2021-04-17
(``tests/data/kraken``): 10 snapshots and 4,269 updates for ten pairs, each update with
Kraken's CRC32 checksum, in recorded order, as the exact text Kraken sent.

Cost per book message (snapshot or update), everything included: parse the frame, apply its
entries, truncate to the subscribed depth (1000), the CRC32 of the top-10 checksum text
(engine: each level's text CRC'd once and memoised, the pieces joined; a side whose top 10 the
message left alone is not hashed again), compare, and (engine) publish the BookSnapshot/BBO
records:

* engine batched: ``KrakenParser.parse_batch`` (the Numba byte scanner) and
  ``KrakenBooks.apply`` (one kernel call) per batch of 256 frames, as the connection delivers
  them; "1 msg/call" does the same one frame at a time (a quiet feed);
* engine books only: ``KrakenBooks.apply`` alone on the parsed rows, batched (the book +
  checksum kernel cost without parsing);
* Python baseline, what cryptofeed's Kraken handler does with checksum validation on (cryptofeed
  itself is not a dependency): ``orjson.loads``, ``Decimal`` prices and sizes into one
  ``sortedcontainers.SortedDict`` per side, deletes for size 0, truncation to the depth, the
  checksum string from the top 10 (``str(price).replace('.', '').lstrip('0')``) and
  ``zlib.crc32``.
* cryptofeed itself, when the benchmark environment has it (:mod:`bench.cryptofeed_env`:
  ``--cryptofeed-python`` or ``$MELTICA_CRYPTOFEED_PYTHON``; never a dependency of
  meltica_nb): its ``Kraken.message_handler`` with ``checksum_validation=True`` on the same
  frames, timed in a subprocess by :mod:`bench.cryptofeed_worker` during the same run.

The engine objects are built and run once before timing (compiled kernels, filled buffers: the
steady state of a running feed); each timed pass starts from empty books (snapshots first).
Both sides must validate every checksum ("ok"). Each figure is the median of ``--runs`` runs
with min-max; "x" is the baseline's cost over the engine's. Nothing is asserted. The machine
may be shared and loaded: compare ratios from the same run, not absolute figures.

Run: ``python -m bench.bench_kraken [--runs 5] [--cryptofeed-python PY] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import gzip
import statistics
import sys
import time
import zlib
from decimal import Decimal
from pathlib import Path

import orjson
from sortedcontainers import SortedDict

from bench import cryptofeed_env
from bench.handicap import engine_path
from bench.measure import Measure
from meltica_nb.book_table import BookTable
from meltica_nb.registry import Registry
from meltica_nb.venues.kraken.books import KrakenBooks
from meltica_nb.venues.kraken.parsing import KrakenParser
from meltica_nb.venues.kraken.symbols import KrakenSymbols

RECORDING = (Path(__file__).parents[1] / "tests" / "data" / "kraken"
             / "kraken_v1_cryptofeed_20210417.jsonl.gz")
BATCH = 256
DEPTH = 1000


def load_book_frames() -> tuple[list[bytes], list[int], dict[str, tuple[int, int]]]:
    """The book frames in recorded order, their receive times, each pair's decimals."""
    with gzip.open(RECORDING) as f:
        lines = [x for x in map(orjson.loads, f) if x["stream"].startswith("book-")]
    frames = [x["raw"].encode() for x in lines]
    decimals = {}
    for frame in frames:
        msg = orjson.loads(frame)
        if "as" in msg[1]:
            price, qty = msg[1]["as"][0][:2]
            decimals[msg[-1]] = (len(price.partition(".")[2]), len(qty.partition(".")[2]))
    return frames, [x["recv_ns"] for x in lines], decimals


class Engine:
    """Parser + books over a fresh registry, as a KrakenFeed builds them."""

    def __init__(self, decimals: dict[str, tuple[int, int]]) -> None:
        registry = Registry()
        symbols = KrakenSymbols(registry)
        pairs = [symbols.add(name, pd, ld) for name, (pd, ld) in decimals.items()]
        self.parser = KrakenParser(symbols, registry.venue_id("kraken"))
        self.books = KrakenBooks(registry.n_instruments + 1, DEPTH, BookTable(4096, 20))
        for pair in pairs:
            self.books.add_pair(pair)

    def run(self, frames: list[bytes], recv: list[int], batch: int) -> None:
        for start in range(0, len(frames), batch):
            r = self.parser.parse_batch(frames[start:start + batch], recv[start:start + batch])
            self.books.apply(r.depth, r.levels, r.checksums)

    def ok(self) -> int:
        return sum(s.checksum_ok for s in self.books.stats().values())


class PyBook:
    """One pair's book the way cryptofeed's Kraken handler keeps and checks it."""

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()

    def apply(self, side: SortedDict, entries: list) -> None:
        for price, size, *_ in entries:
            price, size = Decimal(price), Decimal(size)
            if size == 0:
                side.pop(price, None)
            else:
                side[price] = size

    def truncate(self) -> None:
        while len(self.bids) > DEPTH:
            self.bids.popitem(0)
        while len(self.asks) > DEPTH:
            self.asks.popitem(-1)

    def checksum(self) -> int:
        parts = []
        for price in self.asks.islice(0, 10):
            parts.append(_text(price) + _text(self.asks[price]))
        for price in self.bids.islice(len(self.bids) - 10 if len(self.bids) > 10 else 0,
                                      reverse=True):
            parts.append(_text(price) + _text(self.bids[price]))
        return zlib.crc32("".join(parts).encode())


def _text(value: Decimal) -> str:
    return str(value).replace(".", "").lstrip("0")


def python_run(frames: list[bytes]) -> int:
    """Every frame through the Python baseline; return the checksums that validated."""
    books: dict[str, PyBook] = {}
    ok = 0
    for frame in frames:
        msg = orjson.loads(frame)
        book = books.setdefault(msg[-1], PyBook())
        checksum = None
        for part in msg[1:-2]:
            book.apply(book.asks, part.get("as", part.get("a", ())))
            book.apply(book.bids, part.get("bs", part.get("b", ())))
            checksum = part.get("c", checksum)
        book.truncate()
        if checksum is not None:
            ok += book.checksum() == int(checksum)
    return ok


def _copies(result) -> tuple:
    """A parse result's rows, levels and checksums, copied (the parser reuses its buffers)."""
    return result.depth.copy(), result.levels.copy(), result.checksums.copy()


def _timed(fn, n: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / n


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


#: The side cryptofeed's own handler is reported under.
CRYPTOFEED = "cryptofeed (checksums on)"


def cryptofeed_once(env: cryptofeed_env.CryptofeedEnv, n_checksums: int) -> tuple[float, int]:
    """One run of cryptofeed's Kraken handler on the same frames: (ns/message, checksums ok)."""
    out = env.run({"venue": "kraken", "path": str(RECORDING), "runs": 1})
    return out["seconds"][0] / out["messages"] * 1e9, n_checksums - out["checksum_failures"]


def run(runs: int = 5, cryptofeed_python: str | None = None) -> dict:
    frames, recv, decimals = load_book_frames()
    n = len(frames)
    n_checksums = sum(b'"c":"' in f for f in frames)
    engines = {name: Engine(decimals) for name in ("engine batched", "engine 1 msg/call",
                                                   "engine books only")}
    parsed = [_copies(engines["engine books only"].parser.parse_batch(
        frames[s:s + BATCH], recv[s:s + BATCH])) for s in range(0, n, BATCH)]
    passes = {
        "engine batched": engine_path(lambda e: e.run(frames, recv, BATCH)),
        "engine 1 msg/call": engine_path(lambda e: e.run(frames, recv, 1)),
        "engine books only": engine_path(lambda e: [e.books.apply(*p) for p in parsed]),
    }
    for name, engine in engines.items():  # compile, fill the buffers: measure steady state
        passes[name](engine)
    env = cryptofeed_env.find(cryptofeed_python)
    rows: dict[str, list[float]] = {k: [] for k in (*engines, "python")}
    ok: dict[str, int] = {}
    for _ in range(runs):  # every side once per run: a loaded machine hits all sides alike
        if env.available:
            ns, ok[CRYPTOFEED] = cryptofeed_once(env, n_checksums)
            rows.setdefault(CRYPTOFEED, []).append(ns)
        for name, engine in engines.items():
            engine.books.reset()  # every book waits for its snapshot again
            before = engine.ok()
            rows[name].append(_timed(lambda e=engine, f=passes[name]: f(e), n))
            ok[name] = engine.ok() - before
        counted: list[int] = []
        rows["python"].append(_timed(lambda c=counted: c.append(python_run(frames)), n))
        ok["python"] = counted[0]
    python = statistics.median(rows["python"])
    return {"recording": RECORDING.name, "book_messages": n, "checksums": n_checksums,
            "runs": runs, "cryptofeed": env.describe(), "rows": [
                {"side": name, "ns_per_message": _summary(v), "runs": v,
                 "x_python_over_this": python / statistics.median(v),
                 "checksums_ok": ok[name], "ok": ok[name] == n_checksums}
                for name, v in rows.items()]}


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: ns per book message (parse, books, checksum) per side."""
    result = run(3 if quick else 5)
    out = []
    for row in result["rows"]:
        if not row["ok"]:
            raise AssertionError(f"kraken: {row['side']} validated {row['checksums_ok']} of "
                                 f"{result['checksums']} checksums")
        side = "python sorted dicts (cryptofeed way)" if row["side"] == "python" else row["side"]
        out.append(Measure("kraken", "book update + checksum", side, "ns/msg",
                           tuple(row["runs"]), params={"messages": result["book_messages"],
                                                       "batch": BATCH}))
    return out


def _print(result: dict) -> None:
    print(f"Kraken book + checksum: ns/book message, median (min-max) of {result['runs']} "
          f"runs; {result['recording']}, {result['book_messages']} messages, "
          f"{result['checksums']} checksums; x = python / this; {result['cryptofeed']}")
    for row in result["rows"]:
        s = row["ns_per_message"]
        cell = f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"
        print(f"{row['side']:<26} {cell:>26} {row['x_python_over_this']:>7.1f}x "
              f"ok={'yes' if row['ok'] else 'NO'}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    cryptofeed_env.add_argument(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.runs, args.cryptofeed_python)
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print(result)


if __name__ == "__main__":
    main()
