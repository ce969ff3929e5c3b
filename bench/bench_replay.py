"""Replay throughput on the real BTCUSDT recording: engine vs a naive pure-Python replay.

The recording (``tests/data/binance/binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz``,
41,249 lines: 3,451 depth diffs, 28,040 bookTickers, 9,757 trades, 1 REST snapshot) is
decompressed once; every measure below starts from uncompressed bytes (a file in the page
cache, or frames already in memory) and ends when 10 consumers have seen every event:

* ``replay_jsonl``: :func:`meltica_nb.replay` of the uncompressed JSON Lines file with 10 njit
  consumers (count + sum of prices): line kernel, parser, books, dispatcher, fan-out, drain.
* ``replay_jsonl_lossless``: the same with ``lossless=True``: consumers see every released
  event (about 41k of the 44k produced, the rest are BBO sequence repeats the ordering stage
  drops), where the default lets each batch of 256 frames coalesce BBO and book events per
  stream (about 10k delivered): the fair comparison with the naive replay's consumers.
* ``replay_frames``: the same chain from the frames already extracted into memory (the
  recorded ``raw`` bytes and receive times): ``feed.on_frames`` in batches of 256 and
  ``on_snapshot`` at the snapshot's place, 10 consumers polled after each batch; this is the
  "raw frames/s through parse, book and fan-out" figure.
* ``naive_python``: the same lines with ``json.loads`` (line and message), books as dicts of
  Decimal-free float prices, one dataclass per event, and 10 consumer callbacks per event.
* ``canonical``: the canonical record file a replay wrote, replayed with no consumer and with
  the 10 njit consumers (events/s).

* ``cryptofeed``: cryptofeed's own Binance handler, when the benchmark environment has it
  (:mod:`bench.cryptofeed_env`: ``--cryptofeed-python`` or ``$MELTICA_CRYPTOFEED_PYTHON``),
  fed the same frames from memory in a subprocess (:mod:`bench.cryptofeed_worker`): its
  ``message_handler`` per frame, its L2 book with the recorded REST snapshot, 10 counting
  callbacks per data type (cryptofeed has no ``trade`` handler: those frames are parsed and
  dropped). Not installed: not measured, and the result says so.
Each figure is the median of ``--runs`` runs with min-max; the machine is shared, so absolute
numbers are noisy, ratios measured in the same run less so. Nothing is asserted; each measure
checks its own result (event counts equal across the engine variants, trades equal to the
naive replay's).

Run: ``python -m bench.bench_replay [--runs 5] [--cryptofeed-python PY] [--json]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from numba import njit

from bench import cryptofeed_env
from bench.handicap import engine_path
from bench.measure import HIGHER, Measure
from meltica_nb.clock import ManualClock
from meltica_nb.recording_source import REST, RecordingSource
from meltica_nb.replay import ReplayConsumer, ReplayEngine, replay
from meltica_nb.replay_venue import venue_named

RECORDING = (Path(__file__).resolve().parents[1] / "tests" / "data" / "binance"
             / "binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz")
CONSUMERS = 10
BATCH = 256


@njit(cache=True)
def count_prices(rec, state):
    """The consumers' work: count events, sum the price field."""
    state[0] += 1
    state[1] += rec.price


def consumers() -> list[ReplayConsumer]:
    return [ReplayConsumer(count_prices, name=f"c{i}", state=np.zeros(2, np.int64))
            for i in range(CONSUMERS)]


# -- engine ------------------------------------------------------------------------------------

def run_jsonl(path: Path, lossless: bool = False) -> tuple[float, int, int]:
    """Timed by the replay itself: from its first line to the last delivery (the njit
    handlers' loops are compiled before, per consumer, by the engine)."""
    result = replay([path], consumers(), lossless=lossless)
    delivered = result.consumers["c0"].stats.delivered
    return result.elapsed_s, result.frames, delivered


def load_frames(path: Path):
    """(chunks of lines) decoded once, outside every timed part."""
    return list(RecordingSource([path], chunk_lines=1 << 20).chunks())


def run_frames(path: Path, chunks) -> tuple[float, int, int]:
    """on_frames / on_snapshot / poll, as the replay driver calls them, frames in memory."""
    clock = ManualClock()
    engine = ReplayEngine(clock=clock)
    states = []
    for spec in consumers():
        engine.add_consumer(spec.name, spec.fn, mode="njit", state=spec.state,
                            ring_capacity=8192, batch_size=1024)
        states.append(spec.state)
    venue = venue_named("binance")
    feed = venue.build(engine, chunks[:1])
    engine.dispatcher.warm_up()
    polled = list(engine.consumers.values())
    for c in polled:
        c.warm_up()
    frames = 0
    on_frames = engine_path(feed.on_frames)
    start = time.perf_counter()
    for chunk in chunks:
        kinds = chunk.kind
        bounds = [0, *(np.flatnonzero(np.diff(kinds)) + 1).tolist(), len(chunk)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if kinds[a] == REST:
                symbol = venue.snapshot_symbol(chunk.label[a][5:])
                clock.set(max(clock.now_ns(), int(chunk.recv_ns[a])))
                feed.on_snapshot(symbol, chunk.raw[a], int(chunk.recv_ns[a]))
                continue
            frames += feed_batches(on_frames, clock, chunk, a, b, polled)
    engine.dispatcher.flush_all()
    drain(polled)
    elapsed = time.perf_counter() - start
    engine.stop(1.0)
    return elapsed, frames, int(states[0][0])


def drain(polled) -> None:
    """As the replay driver drains: poll only a consumer with pending events."""
    for c in polled:
        while c.has_pending() and c.poll():
            pass


def feed_batches(on_frames, clock, chunk, a: int, b: int, polled) -> int:
    for s in range(a, b, BATCH):
        e = min(b, s + BATCH)
        recv = chunk.recv_ns[s:e]
        clock.set(max(clock.now_ns(), int(recv[-1])))
        on_frames(chunk.raw[s:e], recv)
        drain(polled)
    return b - a


def run_canonical(path: Path, with_consumers: bool) -> tuple[float, int]:
    result = replay([path], consumers() if with_consumers else [])
    return result.elapsed_s, sum(result.events.values())


# -- naive pure-Python replay -------------------------------------------------------------------

@dataclass
class Event:
    kind: str
    symbol: str
    seq: int
    ts: int
    price: float
    qty: float
    bid: float = 0.0
    ask: float = 0.0


class NaiveBook:
    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.update_id = 0
        self.buffer: list[dict] = []

    def snapshot(self, body: dict) -> None:
        self.bids = {float(p): float(q) for p, q in body["bids"]}
        self.asks = {float(p): float(q) for p, q in body["asks"]}
        self.update_id = body["lastUpdateId"]
        for diff in self.buffer:
            self.diff(diff)
        self.buffer = []

    def diff(self, d: dict) -> bool:
        if not self.update_id:
            self.buffer.append(d)
            return False
        if d["u"] <= self.update_id:
            return False
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for p, q in d[key]:
                price, qty = float(p), float(q)
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.update_id = d["u"]
        return True


def run_naive(lines: list[bytes]) -> tuple[float, int, int]:
    counts = [[0, 0.0] for _ in range(CONSUMERS)]

    def make(i):
        def handler(ev: Event) -> None:
            counts[i][0] += 1
            counts[i][1] += ev.price
        return handler

    handlers = [make(i) for i in range(CONSUMERS)]
    book = NaiveBook()
    start = time.perf_counter()
    for text in lines:
        obj = json.loads(text)
        if obj["stream"].startswith("rest:"):
            book.snapshot(json.loads(obj["raw"]))
            continue
        data = json.loads(obj["raw"])["data"]
        events = []
        if data.get("e") == "trade":
            events.append(Event("trade", data["s"], data["t"], data["T"], float(data["p"]),
                                float(data["q"])))
        elif data.get("e") == "depthUpdate":
            if book.diff(data):
                best_bid = max(book.bids) if book.bids else 0.0
                best_ask = min(book.asks) if book.asks else 0.0
                events.append(Event("book", data["s"], data["u"], data["E"], 0.0, 0.0,
                                    best_bid, best_ask))
        else:
            events.append(Event("bbo", data["s"], data["u"], 0, 0.0, 0.0, float(data["b"]),
                                float(data["a"])))
        for ev in events:
            for h in handlers:
                h(ev)
    return time.perf_counter() - start, len(lines), counts[0][0]


def run_cryptofeed(env: cryptofeed_env.CryptofeedEnv) -> tuple[float, dict]:
    """One run of cryptofeed's Binance handler on the recording's frames: frames/s, counts."""
    out = env.run({"venue": "binance", "path": str(RECORDING), "runs": 1,
                   "callbacks": CONSUMERS})
    if out["snapshots_served"] != 1 or not out["delivered"].get("l2_book"):
        raise AssertionError(f"replay: cryptofeed's Binance book did not follow the recording "
                             f"({out['snapshots_served']} snapshots, {out['delivered']})")
    return out["messages"] / out["seconds"][0], out["delivered"]


# -- driver -------------------------------------------------------------------------------------

def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(runs: int = 5, cryptofeed_python: str | None = None) -> dict:
    """Every measure ``runs`` times; per-run rates under "runs", their summaries, ratios."""
    data = gzip.decompress(RECORDING.read_bytes())
    lines = [line for line in data.split(b"\n") if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "btcusdt.jsonl"
        plain.write_bytes(data)
        canon = Path(tmp) / "btcusdt.canon"
        replay([plain], canonical_out=canon)  # also compiles every kernel once
        chunks = load_frames(plain)
        rates: dict[str, list[float]] = {k: [] for k in (
            "replay_jsonl_frames_per_s", "replay_jsonl_lossless_frames_per_s",
            "replay_frames_frames_per_s",
            "naive_python_frames_per_s", "canonical_events_per_s",
            "canonical_10_consumers_events_per_s")}
        checks = {}
        env = cryptofeed_env.find(cryptofeed_python)
        for _ in range(runs):
            if env.available:  # beside the others in every run: load hits all sides alike
                rate, delivered_cf = run_cryptofeed(env)
                rates.setdefault("cryptofeed_frames_per_s", []).append(rate)
            t, n, delivered_jsonl = run_jsonl(plain)
            rates["replay_jsonl_frames_per_s"].append(n / t)
            t, n, delivered_lossless = run_jsonl(plain, lossless=True)
            rates["replay_jsonl_lossless_frames_per_s"].append(n / t)
            t, n, delivered_frames = run_frames(plain, chunks)
            rates["replay_frames_frames_per_s"].append(n / t)
            t, n, naive_events = run_naive(lines)
            rates["naive_python_frames_per_s"].append(n / t)
            t, events = run_canonical(canon, False)
            rates["canonical_events_per_s"].append(events / t)
            t, events = run_canonical(canon, True)
            rates["canonical_10_consumers_events_per_s"].append(events / t)
            checks = {"delivered_per_consumer_jsonl": delivered_jsonl,
                      "delivered_per_consumer_lossless": delivered_lossless,
                      "delivered_per_consumer_frames": delivered_frames,
                      "naive_events_per_consumer": naive_events, "canonical_events": events}
    if env.available:
        checks["cryptofeed_delivered"] = delivered_cf
    out = {name: stats(v) for name, v in rates.items()}
    out["ratio_frames_vs_naive"] = (out["replay_frames_frames_per_s"]["median"]
                                    / out["naive_python_frames_per_s"]["median"])
    out["ratio_jsonl_vs_naive"] = (out["replay_jsonl_frames_per_s"]["median"]
                                   / out["naive_python_frames_per_s"]["median"])
    out["ratio_lossless_vs_naive"] = (out["replay_jsonl_lossless_frames_per_s"]["median"]
                                      / out["naive_python_frames_per_s"]["median"])
    out["checks"] = checks
    out["frames"] = len(lines) - 1
    if env.available:
        out["ratio_frames_vs_cryptofeed"] = (out["replay_frames_frames_per_s"]["median"]
                                             / out["cryptofeed_frames_per_s"]["median"])
    out["cryptofeed"] = env.describe()
    out["runs"] = rates
    return out


#: The side cryptofeed's own Binance handler is reported under.
CRYPTOFEED = "cryptofeed Binance handler, 10 callbacks"

#: The suite's figures: {(figure, unit): {side: key in ``run()["runs"]``}}; engine sides
#: start with "engine". The file and canonical sides are timed by ``replay()`` itself, from
#: its first line to its last delivery, so the handicap (which slows ``feed.on_frames`` on
#: the frames side) does not reach them.
FIGURES = {
    ("raw frames/s, 10 njit consumers", "frames/s"): {
        "engine frames in memory": "replay_frames_frames_per_s",
        "engine jsonl file": "replay_jsonl_frames_per_s",
        "engine jsonl file lossless": "replay_jsonl_lossless_frames_per_s",
        "naive python (json, dict book, dataclass events)": "naive_python_frames_per_s",
        CRYPTOFEED: "cryptofeed_frames_per_s"},
    ("canonical replay events/s", "events/s"): {
        "engine no consumer": "canonical_events_per_s",
        "engine 10 njit consumers": "canonical_10_consumers_events_per_s"},
}


#: Runs per figure in quick mode (the tests lower it).
QUICK_RUNS = 2


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: raw frames/s beside the naive replay, canonical events/s."""
    result = run(QUICK_RUNS if quick else 5)
    params = {"frames": result["frames"], "consumers": CONSUMERS, "batch": BATCH}
    return [Measure("replay", figure, side, unit, tuple(result["runs"][key]), HIGHER, params)
            for (figure, unit), sides in FIGURES.items() for side, key in sides.items()
            if key in result["runs"]]  # cryptofeed's only where it is installed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    cryptofeed_env.add_argument(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = run(args.runs, args.cryptofeed_python)
    if args.json:
        print(orjson.dumps(out).decode())
    else:
        for name, value in out.items():
            print(f"{name}: {value}")
    return out


if __name__ == "__main__":
    main()
