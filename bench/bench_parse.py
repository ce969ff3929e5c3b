"""Parsing and book upkeep per message on real Binance frames, engine vs what users write.

The input is the recorded BTCUSDT spot feed of 2024-08-08 (``tests/data/binance``): 41,248
combined-stream frames (28,040 bookTicker, 9,757 trade, 3,451 depthUpdate at 100 ms) and one
REST depth snapshot (1,000 levels a side), each frame the exact text Binance sent.

Parse cost per message, per message type and for the whole feed in recorded order ("mixed"):

* engine: ``BinanceParser.parse_batch`` (the Numba byte scanner, orjson only for frames it
  hands back) on batches of 256 frames, the way the connection delivers them; records with
  exact int64 mantissas;
* orjson+Decimal: ``orjson.loads``, then one slotted dataclass per message with prices and
  quantities as ``decimal.Decimal`` (exact, like the engine), depth levels as lists of tuples;
* orjson+float: the same with ``float`` (the fastest thing a user would write; inexact);
* json+float: stdlib ``json.loads`` and ``float``.

Every side processes the same batches of 256 frames (bytes) with their receive times (a list
of ints, as the connection hands them over). Output arrays are reused by the engine, the
Python objects of a batch are dropped when the next batch is parsed; the collector is on.

Book upkeep per diff: the depthUpdate rows (the engine's parse output) and the REST snapshot,
in recorded order, through the Binance procedure (buffer until the snapshot, drop what it
holds, check continuity, apply, publish the top 20 levels and the BBO when it moved):

* engine: ``BinanceBookSync.apply`` over an ``OrderBooks`` (depth 5000) and a ``BookTable``
  (k = 20), once per diff ("1 diff/call", a quiet live feed) and once per 256-frame batch's
  depth rows ("batched", a busy feed, about 21 diffs per call);
* dict book: the same procedure in Python on the orjson+Decimal (exact) and orjson+float
  objects: levels into two dicts, ``sorted`` for the top 20 after every diff.

Both books are compared at the end (top 20 levels a side, as mantissas): "ok" says they agree.
Each figure is the median of ``--runs`` runs with min-max; "x" is the baseline's cost over the
engine's. Nothing is asserted.

Run: ``python -m bench.bench_parse [--runs 5] [--quick] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson

from bench.baselines.live import PyBbo, PyTrade
from bench.handicap import engine_path
from bench.measure import Measure, summary
from meltica_nb.book_table import BookTable
from meltica_nb.order_book import OrderBooks
from meltica_nb.registry import Registry
from meltica_nb.schema import EventType
from meltica_nb.venues.binance.books import BinanceBookSync
from meltica_nb.venues.binance.parsing import BinanceParser
from meltica_nb.venues.binance.symbols import BinanceSymbols

RECORDING = (Path(__file__).resolve().parents[1] / "tests" / "data" / "binance"
             / "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz")
SYMBOL = "BTCUSDT"
VENUE_ID = 1
BATCH = 256
TOP = 20
TYPES = ("depthUpdate", "bookTicker", "trade", "mixed")
#: Frames kept per type by ``--quick`` (the snapshot and the diffs after it stay in order).
QUICK_FRAMES = 8192


# -- the recording ------------------------------------------------------------------------------

@dataclass
class Feed:
    """The recording as the connection would hand it over."""

    frames: list[bytes]          # stream frames, recorded order
    recv_ns: list[int]
    kinds: list[str]             # "depthUpdate" / "bookTicker" / "trade" per frame
    snapshot: bytes              # the REST depth body
    snapshot_ns: int
    snapshot_at: int             # number of stream frames recorded before the snapshot


def _kind(stream: str) -> str:
    if "@depth" in stream:
        return "depthUpdate"
    if stream.endswith("@bookTicker"):
        return "bookTicker"
    if stream.endswith("@trade"):
        return "trade"
    raise ValueError(f"unexpected stream {stream!r} in the recording")


def load_feed(path: Path = RECORDING, limit: int | None = None) -> Feed:
    """Read the recording; ``limit`` keeps its first ``limit`` stream frames."""
    frames, recv, kinds = [], [], []
    snapshot, snapshot_ns, snapshot_at = b"", 0, 0
    for line in gzip.decompress(path.read_bytes()).splitlines():
        row = orjson.loads(line)
        stream = row["stream"]
        if stream.startswith("rest:"):
            if not snapshot and "/depth" in stream:
                snapshot, snapshot_ns, snapshot_at = row["raw"].encode(), row["recv_ns"], len(
                    frames)
            continue
        if limit is not None and len(frames) >= limit:
            continue
        frames.append(row["raw"].encode())
        recv.append(row["recv_ns"])
        kinds.append(_kind(stream))
    if not snapshot:
        raise ValueError(f"{path} holds no REST depth snapshot")
    return Feed(frames, recv, kinds, snapshot, snapshot_ns, snapshot_at)


def batches_of(feed: Feed, kind: str) -> list[tuple[list[bytes], list[int]]]:
    """The frames of ``kind`` ("mixed": all) in recorded order, cut into batches of BATCH."""
    idx = [i for i, k in enumerate(feed.kinds) if kind in ("mixed", k)]
    frames = [feed.frames[i] for i in idx]
    recv = [feed.recv_ns[i] for i in idx]
    return [(frames[i:i + BATCH], recv[i:i + BATCH]) for i in range(0, len(idx), BATCH)]


# -- engine side --------------------------------------------------------------------------------

def make_parser() -> tuple[BinanceParser, BinanceSymbols]:
    symbols = BinanceSymbols(Registry())
    symbols.add(SYMBOL)
    return BinanceParser(symbols, VENUE_ID, "spot"), symbols


def engine_parse(parser: BinanceParser, batches) -> None:
    parse = parser.parse_batch
    for frames, recv in batches:
        parse(frames, recv)


# -- Python side: what users write --------------------------------------------------------------

@dataclass(slots=True)
class PyDepth:
    symbol: str
    first_id: int
    final_id: int
    event_ms: int
    bids: list
    asks: list
    recv_ns: int


def make_py_parse(loads: Callable, num: Callable) -> Callable:
    """``parse(frame, recv_ns) -> PyTrade | PyBbo | PyDepth | None`` with ``loads``/``num``."""

    def parse(frame: bytes, recv_ns: int):
        d = loads(frame)["data"]
        e = d.get("e")
        if e == "trade":
            return PyTrade(d["s"], d["t"], num(d["p"]), num(d["q"]), d["T"], d["m"], recv_ns)
        if e == "depthUpdate":
            return PyDepth(d["s"], d["U"], d["u"], d["E"],
                           [(num(p), num(q)) for p, q in d["b"]],
                           [(num(p), num(q)) for p, q in d["a"]], recv_ns)
        if e is None and "u" in d:
            return PyBbo(d["s"], d["u"], num(d["b"]), num(d["B"]), num(d["a"]), num(d["A"]),
                         recv_ns)
        return None
    return parse


BASELINES: dict[str, Callable] = {
    "orjson+Decimal": make_py_parse(orjson.loads, Decimal),
    "orjson+float": make_py_parse(orjson.loads, float),
    "json+float": make_py_parse(json.loads, float),
}


def py_parse(parse: Callable, batches) -> list:
    out: list = []
    for frames, recv in batches:
        out = [parse(f, r) for f, r in zip(frames, recv, strict=True)]
    return out


# -- cross-checks (untimed) ---------------------------------------------------------------------

def trade_price_sums(feed: Feed) -> tuple[int, int]:
    """Sum of trade price mantissas (exponent 8): engine parse vs Decimal parse."""
    parser, _ = make_parser()
    engine_sum = 0
    for frames, recv in batches_of(feed, "trade"):
        events = parser.parse_batch(frames, recv).events
        engine_sum += int(events["price"][events["event_type"] == EventType.TRADE].sum())
    parse = BASELINES["orjson+Decimal"]
    py_sum = sum(int(parse(f, 0).price * 10**8) for f, k in zip(feed.frames, feed.kinds,
                                                                   strict=True) if k == "trade")
    return engine_sum, py_sum


# -- parse measurements -------------------------------------------------------------------------

def _ns_per(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / n


def measure_parse(feed: Feed, kind: str, runs: int) -> dict:
    """ns/message of the engine and every baseline on the frames of ``kind``."""
    batches = batches_of(feed, kind)
    n = sum(len(f) for f, _ in batches)
    parser, _ = make_parser()
    engine_parse(parser, batches[:2])  # compile / warm
    fallback_before = parser.stats().fallback
    slowed = engine_path(engine_parse)
    sides = {"engine": lambda: slowed(parser, batches)}
    for name, parse in BASELINES.items():
        py_parse(parse, batches[:2])
        sides[name] = lambda parse=parse: py_parse(parse, batches)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, fn in sides.items():  # interleaved: drift hits every side alike
            times[name].append(_ns_per(fn, n))
    stats = parser.stats()
    row = {"type": kind, "messages": n, "batch": BATCH,
           "engine_fallback_per_run": (stats.fallback - fallback_before) / runs,
           "engine_bad_frames": stats.bad_value + stats.malformed + stats.unknown
           + stats.unknown_symbol}
    engine_median = statistics.median(times["engine"])
    for name, values in times.items():
        row[f"{name}_ns"] = summary(values)
        row[f"{name}_runs"] = values
        if name != "engine":
            row[f"{name}_x"] = statistics.median(values) / engine_median
    return row


# -- books --------------------------------------------------------------------------------------

def engine_book_calls(feed: Feed, per_diff: bool) -> tuple[list, int]:
    """The apply() calls of the recording: (rows, levels, is_snapshot) in recorded order.

    ``per_diff``: one call per depthUpdate, else one per 256-frame mixed batch's depth rows
    (cut where the snapshot arrived). Returns (calls, number of diffs).
    """
    parser, _ = make_parser()
    calls, n_diffs = [], 0
    at = feed.snapshot_at
    cuts = sorted({*range(0, len(feed.frames), BATCH), at, len(feed.frames)})
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        if lo == at:
            snap = parser.parse_snapshot(feed.snapshot, SYMBOL, feed.snapshot_ns)
            calls.append((snap.depth.copy(), snap.levels.copy(), True))
        res = parser.parse_batch(feed.frames[lo:hi], feed.recv_ns[lo:hi])
        rows, levels = res.depth.copy(), res.levels.copy()
        n_diffs += rows.shape[0]
        if not rows.shape[0]:
            continue
        if not per_diff:
            calls.append((rows, levels, False))
            continue
        for r in range(rows.shape[0]):
            row = rows[r:r + 1].copy()
            off, size = int(row["level_off"][0]), int(row["n_bids"][0] + row["n_asks"][0])
            row["level_off"] = 0
            calls.append((row, levels[off:off + size].copy(), False))
    if at >= len(feed.frames):
        snap = parser.parse_snapshot(feed.snapshot, SYMBOL, feed.snapshot_ns)
        calls.append((snap.depth.copy(), snap.levels.copy(), True))
    return calls, n_diffs


def instrument_id() -> int:
    """BTC-USDT's id in a fresh registry (every parser here builds the same one)."""
    return make_parser()[1][SYMBOL].instrument


def new_book_sync() -> BinanceBookSync:
    books = OrderBooks(instrument_id() + 1, 5000)
    return BinanceBookSync(books, BookTable(4096, TOP), "spot", k=TOP)


def engine_books(calls: list) -> tuple[int, int, BinanceBookSync]:
    """Run every call on a fresh sync; (ns in diff calls, ns in the snapshot call, sync)."""
    sync = new_book_sync()
    apply = engine_path(sync.apply)
    clock = time.perf_counter_ns
    t_diffs = t_snap = 0
    gc.collect()
    for rows, levels, is_snapshot in calls:
        t0 = clock()
        apply(rows, levels, 0)
        t1 = clock()
        if is_snapshot:
            t_snap += t1 - t0
        else:
            t_diffs += t1 - t0
    return t_diffs, t_snap, sync


class DictBook:
    """The Binance spot book procedure in plain Python: two dicts, sorted top 20 per diff."""

    def __init__(self) -> None:
        self.bids: dict = {}
        self.asks: dict = {}
        self.book_id = -1           # -1: waiting for a snapshot
        self.buffer: list = []
        self.bbo = None
        self.top: tuple = ((), ())
        self.gaps = self.applied = 0

    def snapshot(self, last_id: int, bids: list, asks: list) -> None:
        self.bids = {p: q for p, q in bids if q}
        self.asks = {p: q for p, q in asks if q}
        self.book_id = last_id
        buffered, self.buffer = self.buffer, []
        for diff in buffered:
            if diff.final_id > last_id:
                self.diff(diff)
        self._publish()

    def diff(self, d: PyDepth) -> None:
        if self.book_id < 0:
            self.buffer.append(d)
            return
        if d.final_id <= self.book_id:
            return  # stale
        if d.first_id > self.book_id + 1:
            self.gaps += 1  # a real client would refetch the snapshot here
        for side, levels in ((self.bids, d.bids), (self.asks, d.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.book_id = d.final_id
        self.applied += 1
        self._publish()

    def _publish(self) -> None:
        bids, asks = self.bids, self.asks
        top_b = sorted(bids, reverse=True)[:TOP]
        top_a = sorted(asks)[:TOP]
        self.top = ([(p, bids[p]) for p in top_b], [(p, asks[p]) for p in top_a])
        bbo = (top_b[0], bids[top_b[0]], top_a[0], asks[top_a[0]]) if top_b and top_a else None
        if bbo != self.bbo:
            self.bbo = bbo


def dict_book_inputs(feed: Feed, parse: Callable, num: Callable) -> tuple[list, tuple]:
    """The parsed diffs (recorded order) and the snapshot (id, bids, asks) for a dict book."""
    diffs = [(i, parse(f, r)) for i, (f, r, k) in enumerate(
        zip(feed.frames, feed.recv_ns, feed.kinds, strict=True)) if k == "depthUpdate"]
    body = orjson.loads(feed.snapshot)
    snap = (body["lastUpdateId"], [(num(p), num(q)) for p, q in body["bids"]],
            [(num(p), num(q)) for p, q in body["asks"]])
    return diffs, snap


def dict_books(diffs: list, snap: tuple, at: int) -> tuple[int, int, DictBook]:
    """Every diff and the snapshot in recorded order; (ns in diffs, ns in the snapshot, book)."""
    book = DictBook()
    clock = time.perf_counter_ns
    t_diffs = t_snap = 0
    loaded = False
    gc.collect()
    for i, d in diffs:
        if not loaded and i >= at:
            t0 = clock()
            book.snapshot(*snap)
            t_snap += clock() - t0
            loaded = True
        t0 = clock()
        book.diff(d)
        t_diffs += clock() - t0
    if not loaded:
        t0 = clock()
        book.snapshot(*snap)
        t_snap += clock() - t0
    return t_diffs, t_snap, book


def _mantissa_top(levels, scale: int) -> list[tuple[int, int]]:
    return [(round(p * scale), round(q * scale)) for p, q in levels]


def books_agree(sync: BinanceBookSync, book: DictBook) -> bool:
    """Top 20 levels a side of the engine's book == the dict book's, as mantissas."""
    inst = instrument_id()
    b = sync.books
    nb, na = min(TOP, int(b.bid_n[inst])), min(TOP, int(b.ask_n[inst]))
    engine_bids = list(zip(b.bid_px[inst, :nb].tolist(), b.bid_qty[inst, :nb].tolist(),
                           strict=True))
    engine_asks = list(zip(b.ask_px[inst, :na].tolist(), b.ask_qty[inst, :na].tolist(),
                           strict=True))
    return (engine_bids == _mantissa_top(book.top[0], 10**8)
            and engine_asks == _mantissa_top(book.top[1], 10**8))


def measure_books(feed: Feed, runs: int) -> list[dict]:
    """ns/diff of the engine's book sync (1 diff/call, batched) and of the dict books."""
    n_diffs = sum(k == "depthUpdate" for k in feed.kinds)
    engine_sides = {}
    for per_diff in (True, False):
        calls, _ = engine_book_calls(feed, per_diff)
        engine_books(calls)  # compile / warm
        engine_sides["engine 1 diff/call" if per_diff else "engine batched"] = (
            lambda calls=calls: engine_books(calls), len(calls))
    dict_sides = {}
    for name in ("orjson+Decimal", "orjson+float"):
        num = Decimal if name.endswith("Decimal") else float
        diffs, snap = dict_book_inputs(feed, BASELINES[name], num)
        dict_sides[f"dict book ({name.split('+')[1]})"] = (
            lambda diffs=diffs, snap=snap: dict_books(diffs, snap, feed.snapshot_at), 1)
    results: dict[str, list] = {name: [] for name in (*engine_sides, *dict_sides)}
    final: dict[str, object] = {}
    for _ in range(runs):
        for name, (fn, _) in (*engine_sides.items(), *dict_sides.items()):
            t_diffs, t_snap, state = fn()
            results[name].append((t_diffs, t_snap))
            final[name] = state
    exact = final["dict book (Decimal)"]
    reference = final["engine 1 diff/call"]
    rows = []
    base = None
    for name, values in results.items():
        per_diff = [d / n_diffs for d, _ in values]
        with_snap = [(d + s) / n_diffs for d, s in values]
        state = final[name]
        if isinstance(state, BinanceBookSync):
            stats = state.stats(instrument_id())
            ok = books_agree(state, exact) and stats.state == "live" and stats.gaps == 0
            calls = engine_sides[name][1]
            levels = stats.bid_levels + stats.ask_levels
        else:
            ok = state.gaps == 0 and state.applied > 0 and books_agree(reference, state)
            calls = n_diffs + 1
            levels = len(state.bids) + len(state.asks)
        row = {"book": name, "diffs": n_diffs, "calls": calls, "final_levels": levels,
               "ns_per_diff": summary(per_diff),
               "ns_per_diff_with_snapshot": summary(with_snap),
               "snapshot_us": summary([s / 1e3 for _, s in values]), "ok": ok,
               "runs_ns_per_diff_with_snapshot": with_snap}
        if base is None:
            base = statistics.median(with_snap)
        row["x_vs_engine_1_diff"] = statistics.median(with_snap) / base
        rows.append(row)
    return rows


# -- runs and tables ----------------------------------------------------------------------------

def run(runs: int = 5, limit: int | None = None) -> dict:
    """Parse rows per type, book rows, and the trade price cross-check."""
    feed = load_feed(limit=limit)
    parse_rows = [measure_parse(feed, kind, runs) for kind in TYPES]
    book_rows = measure_books(feed, runs)
    engine_sum, py_sum = trade_price_sums(feed)
    return {"recording": RECORDING.name, "frames": len(feed.frames), "runs": runs,
            "parse": parse_rows, "books": book_rows,
            "trade_price_sum_matches": engine_sum == py_sum}


def _ns(figure: dict, width: int = 22) -> str:
    return (f"{figure['median']:,.0f} ({figure['min']:,.0f}-{figure['max']:,.0f})"
            ).rjust(width)


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: ns/message per type and side, ns/diff per book; engine first."""
    result = run(3 if quick else 5, QUICK_FRAMES if quick else None)
    if not result["trade_price_sum_matches"]:
        raise AssertionError("parse: engine and Decimal trade price sums differ")
    out = []
    for row in result["parse"]:
        for side in ("engine", *BASELINES):
            out.append(Measure("parse", f"parse {row['type']}", side, "ns/msg",
                               tuple(row[f"{side}_runs"]),
                               params={"messages": row["messages"], "batch": BATCH}))
    for row in result["books"]:
        if not row["ok"]:
            raise AssertionError(f"parse: book {row['book']} disagrees with the others")
        out.append(Measure("parse", "book update incl. snapshot", row["book"], "ns/diff",
                           tuple(row["runs_ns_per_diff_with_snapshot"]),
                           params={"diffs": row["diffs"], "calls": row["calls"]}))
    return out


def _print_tables(result: dict) -> None:
    names = ["engine", *BASELINES]
    print(f"parse: ns/message, median (min-max) of {result['runs']} runs; "
          f"{result['recording']}, batches of {BATCH}; x = baseline / engine")
    head = f"{'type':<12} {'msgs':>6} " + " ".join(
        f"{n:>22}" + ("" if n == "engine" else f" {'x':>5}") for n in names)
    print(head + f" {'fallback':>8}")
    for row in result["parse"]:
        cells = [_ns(row[f"{n}_ns"]) + ("" if n == "engine" else f" {row[f'{n}_x']:>5.1f}")
                 for n in names]
        print(f"{row['type']:<12} {row['messages']:>6} " + " ".join(cells)
              + f" {row['engine_fallback_per_run']:>8.0f}")
    print(f"trade price sums (engine mantissas vs Decimal): "
          f"{'match' if result['trade_price_sum_matches'] else 'DIFFER'}")
    print()
    print("book upkeep: ns/diff, median (min-max); the snapshot load (1,000 levels a side) "
          "alone and spread over the diffs; levels = both sides at the end; "
          "x = cost incl. snapshot / engine 1 diff/call's")
    print(f"{'book':<22} {'diffs':>5} {'calls':>5} {'levels':>6} {'ns/diff':>24} "
          f"{'snapshot us':>20} {'ns/diff incl. snap':>24} {'x':>6} {'ok':>3}")
    for row in result["books"]:
        print(f"{row['book']:<22} {row['diffs']:>5} {row['calls']:>5} {row['final_levels']:>6} "
              f"{_ns(row['ns_per_diff'], 24)} {_ns(row['snapshot_us'], 20)} "
              f"{_ns(row['ns_per_diff_with_snapshot'], 24)} "
              f"{row['x_vs_engine_1_diff']:>6.1f} {'yes' if row['ok'] else 'NO':>3}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (5; quick: 1)")
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_FRAMES} frames, 1 run (CI)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    result = run(runs, QUICK_FRAMES if args.quick else None)
    if args.json:
        sys.stdout.write(orjson.dumps({"parse": result}, option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        _print_tables(result)


if __name__ == "__main__":
    main()
