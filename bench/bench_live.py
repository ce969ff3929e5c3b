"""Live end to end over a real websocket: engine vs a tuned pure-Python pipeline.

The exchange is ``meltica_nb.sim.server.ExchangeSimulator`` on 127.0.0.1, run in a child
process (``--serve-sim``) so that its event loop does not share the measured process's GIL.

**Latency.** A generated spot market (BTCUSDT and ETHUSDT, ``trade`` + ``bookTicker`` +
``depth@100ms``) paced at about 1k, 5k and 20k frames/s (``LIVE_RATES``: ``updates_per_s`` at
``time_scale`` 0.1; the frames are sent in bursts every 10 ms by the simulator's loop, and the
rate reached is reported beside each figure). Both pipelines read it with 10 consumers that
subscribe to everything and count what they get:

* engine: ``Engine`` + ``BinanceFeed`` (websocket, batch parse, book procedure with REST
  snapshots, ordering, fan-out to 10 batch-mode consumers on their own threads);
* python: one reader thread with websocket-client (``skip_utf8_validation=True``,
  ``recv_data()``, no multithread lock), ``orjson.loads``, one shared object per message
  (floats for prices), a dict book per symbol (REST snapshot, continuity check, sorted top 20
  and BBO after each diff), a ``queue.SimpleQueue`` and a thread per consumer.

The simulator stamps nothing into its frames, so the latency measured is **frame read ->
handler entry**: the consumer's handler-entry time minus the time the frame was read off the
websocket (the engine's ``ingest_ns``, taken by its connection right after websocket-client
returns the frame; the Python reader's ``time.time_ns()`` right after ``recv_data()``
returns). It includes parsing, books, ordering, fan-out, queueing and thread wake-up; it
excludes the simulator and the kernel's socket buffers. Engine figures come from the
consumers' ``latency`` histograms (bucket upper bounds, up to 12.5 % high) and, as a check,
from exact per-event stamps taken by the handlers; Python figures are exact (numpy). Engine
and Python sessions alternate against the same simulator (not at the same time: one measured
process), each with a warm-up before its measuring window. During each window the garbage
collector's pauses are timed (``gc.callbacks``) and the engine's event pool is sampled every
5 ms for its peak use (the seeds ask for < 80 % with 10 consumers at 1000 events/s).

**Throughput.** The recorded BTCUSDT spot feed (41,248 frames, its REST snapshot served by the
simulator) is played at ``speed=0`` (as fast as the client reads, never dropping it), a fresh
simulator per client. Each client's rate is frames / (last handler entry - first frame read):
a bare websocket-client loop (``ws.recv()``, and ``ws.recv_data()`` which skips the str
decode) is the read ceiling; the engine's rate is reported as a fraction of the faster of the
two (target >= 80 %), the Python pipelines' (tuned and naive, :mod:`bench.baselines.styles`)
too, and beside them websocket-client with its default settings (UTF-8 validation on). Under
load the engine's consumers receive the latest BBO / book snapshot per stream (coalesced,
counted), the Python consumers every object.

Each figure is the median of ``--runs`` runs with min-max. Nothing is asserted.

Run: ``python -m bench.bench_live [--runs 3] [--quick] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import orjson

from bench.baselines.bare_ws import READERS, read_frames
from bench.baselines.live import Gate, PyPipeline
from bench.baselines.styles import STYLES, TUNED, Style
from bench.gc_monitor import GcMonitor
from bench.measure import HIGHER, Measure, summary
from meltica_nb.engine import Engine
from meltica_nb.latency import LatencyHistogram
from meltica_nb.venues.binance.config import BinanceConfig, stream_name, venue_symbol
from meltica_nb.venues.binance.feed import BinanceFeed

ROOT = Path(__file__).resolve().parents[1]
#: The real BTCUSDT spot recording the throughput test plays as fast as clients read.
RECORDING = ROOT / "tests/data/binance/binance_spot_btcusdt_20240808_hftbacktest.jsonl.gz"
#: Consumers on both sides, as the issue asks.
CONSUMERS = 10
#: Streams per symbol on both sides.
CHANNELS = ("depth@100ms", "bookTicker", "trade")
#: Symbols of the generated market of the latency test, and its pace (about 5k frames/s).
LIVE_SYMBOLS = ("BTC-USDT", "ETH-USDT")
LIVE_MARKET = {"levels": 200, "updates_per_s": 600.0, "time_scale": 0.1, "seed": 7}
log = logging.getLogger("bench.live")
#: Latency test paces: about that many frames/s -> the market's ``updates_per_s`` (with 2
#: symbols x 3 channels at time_scale 0.1 the simulator sends about 7.5 frames per unit).
LIVE_RATES = {1_000: 135.0, 5_000: 670.0, 20_000: 2_700.0}
#: Quick mode's paces: at 20k msgs/s a loaded 2-core machine falls a second behind and the
#: simulator drops the readers as slow clients, reconnecting for a minute.
QUICK_RATES = (1_000, 5_000)
#: Symbols of the recording.
REC_SYMBOLS = ("BTC-USDT",)
#: Frames of the recording kept by ``--quick`` for the throughput test.
QUICK_FRAMES = 16_000
#: Longest a throughput run may take once started.
RUN_TIMEOUT_S = 60.0
#: A throughput run ends when every frame was read and no handler ran for this long.
QUIET_S = 0.3


# -- the simulator, in a child process ----------------------------------------------------------

def serve_sim(spec: dict) -> int:
    """Child process: run a simulator, print its URLs, serve until stdin closes, print stats.

    ``spec``: ``kind`` "recording" (``path``) or "generated" (``levels``, ``updates_per_s``,
    ``time_scale``, ``seed``, optional ``instruments`` as Instrument field lists); optional
    ``market`` ("spot" or "usdm") and ``venue`` (the protocol: "binance", "okx", "kraken").
    """
    from meltica_nb.sim.market import Instrument, MarketConfig
    from meltica_nb.sim.server import ExchangeSimulator

    market = spec.get("market", "spot")
    if spec["kind"] == "recording":
        sim = ExchangeSimulator(market, recording=spec["path"], speed=0.0)
    else:
        instruments = spec.get("instruments")
        cfg = MarketConfig(levels=spec["levels"], updates_per_s=spec["updates_per_s"],
                           time_scale=spec["time_scale"],
                           instruments=tuple(Instrument(*i) for i in instruments)
                           if instruments else None)
        sim = ExchangeSimulator(market, config=cfg, seed=spec["seed"],
                                venue=spec.get("venue", "binance"))
    with sim:
        sys.stdout.write(orjson.dumps({"ws_url": sim.ws_url, "rest_url": sim.rest_url}).decode()
                         + "\n")
        sys.stdout.flush()
        sys.stdin.read()
        stats = sim.stats()
    sys.stdout.write(orjson.dumps({"frames_sent": sum(stats["frames_sent"].values()),
                                   "disconnects": stats["disconnects"],
                                   "rest": stats["rest"]}, default=str,
                                  option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    return 0


class SimProcess:
    """A simulator child process; ``with SimProcess(spec) as sim: sim.ws_url ...``."""

    def __init__(self, spec: dict) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_live", "--serve-sim", orjson.dumps(spec).decode()],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"the simulator did not start (exit {self.proc.returncode})")
        urls = orjson.loads(line)
        self.ws_url, self.rest_url = urls["ws_url"], urls["rest_url"]
        self.stats: dict = {}

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            with contextlib.suppress(ValueError):
                self.stats = orjson.loads(self.proc.stdout.readline() or b"{}")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.stats

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def quick_recording(directory: str, frames: int) -> Path:
    """The recording's first ``frames`` stream lines (and its REST lines) in a temp file."""
    out, kept = [], 0
    for line in gzip.decompress(RECORDING.read_bytes()).splitlines():
        is_rest = b'"stream":"rest:' in line[:80]
        if is_rest or kept < frames:
            out.append(line)
            kept += not is_rest
    path = Path(directory) / "quick.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def recording_frames(path: Path) -> int:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return sum(1 for line in raw.splitlines() if line and b'"stream":"rest:' not in line[:80])


# -- engine pipeline ----------------------------------------------------------------------------

class EngineTally:
    """One engine consumer's batch handler: count, stamp, keep exact latencies in the window."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.count = 0
        self.first_ingest = 0
        self.last_entry = 0
        self.samples: list[np.ndarray] = []

    def on_batch(self, view: np.ndarray) -> None:
        now = time.time_ns()
        self.count += view.shape[0]
        self.last_entry = now
        if not self.first_ingest:
            self.first_ingest = int(view["ingest_ns"].min())
        if self.gate.open:
            self.samples.append(now - view["ingest_ns"])




class EngineClient:
    """Engine + BinanceFeed on the simulator, CONSUMERS batch consumers of every event."""

    def __init__(self, ws_url: str, rest_url: str, symbols: tuple[str, ...],
                 wait: str = "blocking", batch_size: int = 256
                 ) -> None:
        self.gate = Gate()
        self.engine = Engine()
        self.tallies = [EngineTally(self.gate) for _ in range(CONSUMERS)]
        for c, tally in enumerate(self.tallies):
            self.engine.add_consumer(f"c{c}", tally.on_batch, mode="batch", wait=wait)
        config = BinanceConfig(symbols=symbols, channels=CHANNELS, ws_url=ws_url,
                               rest_url=rest_url, batch_size=batch_size)
        self.feed = BinanceFeed(self.engine, config)
        self.engine.add_feed(self.feed)
        self.symbols = symbols

    def start(self) -> None:
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop(5.0)

    def frames(self) -> int:
        return self.feed.stats().frames

    def books_live(self) -> bool:
        books, syms = self.feed.books, self.feed.symbols
        return books is not None and all(
            books.state_of(syms[venue_symbol(s)].instrument) == "live" for s in self.symbols)

    def losses(self) -> dict:
        stats = [c.stats() for c in self.engine.consumers.values()]
        feed = self.feed.stats()
        parser = self.feed.parser.stats() if self.feed.parser is not None else None
        return {"dropped": sum(s.dropped for s in stats),
                "coalesced": sum(s.coalesced for s in stats),
                "resyncs": feed.resyncs, "gaps": feed.gaps, "applied_diffs": feed.applied,
                "snapshots": feed.snapshots, "snapshot_errors": feed.snapshot_errors,
                "bad_value_frames": parser.bad_value if parser is not None else 0}


# -- latency runs -------------------------------------------------------------------------------

def _settle(client, warm_s: float) -> None:
    """Warm up for ``warm_s``, and until the books are live (at most 30 s)."""
    start = time.monotonic()
    while time.monotonic() - start < warm_s or (
            not client.books_live() and time.monotonic() - start < 30.0):
        time.sleep(0.05)


def _pct(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "count": 0}
    p50, p99, p999 = np.percentile(values, [50, 99, 99.9]) / 1e3
    return {"p50": float(p50), "p99": float(p99), "p999": float(p999),
            "max": float(values.max()) / 1e3, "count": int(values.size)}


def _watch_pool(pool, seconds: float) -> float:
    """Sleep ``seconds`` while sampling the pool's slots in use; the peak share of slots."""
    peak, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, pool.in_use)
        time.sleep(0.005)
    return peak / pool.capacity


def engine_latency(sim: SimProcess, warm_s: float, measure_s: float, knobs: dict) -> dict:
    client = EngineClient(sim.ws_url, sim.rest_url, LIVE_SYMBOLS, **knobs)
    client.start()
    try:
        _settle(client, warm_s)
        before = [c.latency.counts.copy() for c in client.engine.consumers.values()]
        f0, d0 = client.frames(), sum(t.count for t in client.tallies)
        client.gate.open = True
        with GcMonitor() as gcm:
            pool_peak = _watch_pool(client.engine.dispatcher.pool, measure_s)
        client.gate.open = False
        f1, d1 = client.frames(), sum(t.count for t in client.tallies)
        after = [c.latency.counts.copy() for c in client.engine.consumers.values()]
    finally:
        client.stop()
    hist = LatencyHistogram(sum(a - b for a, b in zip(after, before, strict=True)))
    exact = np.concatenate([np.concatenate(t.samples) if t.samples else np.zeros(0, np.int64)
                            for t in client.tallies])
    return {"frames_per_s": (f1 - f0) / measure_s, "deliveries_per_s": (d1 - d0) / measure_s,
            "histogram_us": hist.snapshot(), "exact_us": _pct(exact),
            "gc": asdict(gcm.stats()), "pool_peak_use": pool_peak, **client.losses()}


def python_latency(sim: SimProcess, warm_s: float, measure_s: float,
                   style: Style = TUNED) -> dict:
    pipe = PyPipeline(sim.ws_url, sim.rest_url, LIVE_SYMBOLS, CHANNELS, CONSUMERS, style)
    pipe.start()
    try:
        _settle(pipe, warm_s)
        f0, d0 = pipe.frames, sum(t.count for t in pipe.tallies)
        pipe.gate.open = True
        with GcMonitor() as gcm:
            time.sleep(measure_s)
        pipe.gate.open = False
        f1, d1 = pipe.frames, sum(t.count for t in pipe.tallies)
        backlog = max(q.qsize() for q in pipe.queues)
    finally:
        pipe.stop()
    exact = np.fromiter((v for t in pipe.tallies for v in t.samples), np.int64)
    return {"frames_per_s": (f1 - f0) / measure_s, "deliveries_per_s": (d1 - d0) / measure_s,
            "exact_us": _pct(exact), "queue_backlog_at_end": backlog,
            "gc": asdict(gcm.stats()),
            "gaps": sum(b.gaps for b in pipe.books.values()),
            "snapshots": sum(b.snapshots for b in pipe.books.values())}


def measure_latency(runs: int, warm_s: float, measure_s: float, knobs: dict,
                    rate: int = 5_000) -> dict:
    """Alternate engine and Python sessions against one generated-market simulator.

    ``rate`` picks the market's pace from :data:`LIVE_RATES`. An unreported engine session
    comes first: kernels load from Numba's cache (or compile, when a package file changed)
    while the simulator keeps sending, and the backlog that builds up would land in the first
    measured window.
    """
    eng, py = [], []
    load = [os.getloadavg()[0]]
    market = {**LIVE_MARKET, "updates_per_s": LIVE_RATES[rate]}
    with SimProcess({"kind": "generated", **market}) as sim:
        engine_latency(sim, warm_s, 1.0, knobs)
        for _ in range(runs):
            eng.append(engine_latency(sim, warm_s, measure_s, knobs))
            py.append(python_latency(sim, warm_s, measure_s))
        sim_stats = sim.stop()
    load.append(os.getloadavg()[0])
    rows = [_latency_row("engine (histogram)", eng, "histogram_us"),
            _latency_row("engine (exact)", eng, "exact_us"),
            _latency_row("python", py, "exact_us")]
    python_p99 = rows[2]["p99_us"]["median"] or float("nan")  # no samples: disconnected
    ratio = rows[0]["p99_us"]["median"] / python_p99
    exact_ratio = rows[1]["p99_us"]["median"] / python_p99
    return {"rows": rows, "p99_ratio_engine_hist_over_python": ratio,
            "p99_ratio_exact": exact_ratio, "target_p99_ratio": 0.5, "rate": rate,
            "market": market, "symbols": LIVE_SYMBOLS, "channels": CHANNELS,
            "warm_s": warm_s, "measure_s": measure_s, "runs": runs,
            "switch_interval_s": sys.getswitchinterval(), "engine_knobs": knobs,
            "loadavg_1m_before_after": load, "cpus": os.cpu_count(),
            "engine_runs": eng, "python_runs": py,
            "sim_disconnects": sim_stats.get("disconnects", {})}


def _latency_row(name: str, runs: list[dict], key: str) -> dict:
    row = {"pipeline": name,
           "frames_per_s": summary([r["frames_per_s"] for r in runs]),
           "deliveries_per_s": summary([r["deliveries_per_s"] for r in runs])}
    for p in ("p50", "p99", "p999", "max"):
        row[f"{p}_us"] = summary([r[key][p] for r in runs])
    row["samples"] = sum(r[key]["count"] for r in runs)
    return row


# -- throughput runs ----------------------------------------------------------------------------

def _wait_done(frames, tallies, n: int) -> bool:
    """Until ``n`` frames were read and no handler ran for QUIET_S (False on timeout)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        seen = max(t.last_entry for t in tallies)
        if seen != last:
            last, still_since = seen, time.monotonic()
        if frames() >= n and time.monotonic() - still_since >= QUIET_S:
            return True
    return False


def engine_read(sim: SimProcess, n: int, knobs: dict) -> dict:
    client = EngineClient(sim.ws_url, sim.rest_url, REC_SYMBOLS, **knobs)
    client.start()
    try:
        done = _wait_done(client.frames, client.tallies, n)
    finally:
        client.stop()
    first = min(t.first_ingest for t in client.tallies if t.first_ingest)
    last = max(t.last_entry for t in client.tallies)
    return {"frames": client.frames(), "complete": done, "seconds": (last - first) / 1e9,
            "rate": (n - 1) / (last - first) * 1e9, **client.losses()}


def python_read(sim: SimProcess, n: int, style: Style) -> dict:
    pipe = PyPipeline(sim.ws_url, sim.rest_url, REC_SYMBOLS, CHANNELS, CONSUMERS, style)
    pipe.start()
    try:
        done = _wait_done(lambda: pipe.frames, pipe.tallies, n)
        done = done and all(t.count == pipe.published for t in pipe.tallies)
    finally:
        pipe.stop()
    last = max(t.last_entry for t in pipe.tallies)
    return {"frames": pipe.frames, "complete": done, "seconds": (last - pipe.first_recv) / 1e9,
            "rate": (n - 1) / (last - pipe.first_recv) * 1e9,
            "gaps": sum(b.gaps for b in pipe.books.values()),
            "snapshots": sum(b.snapshots for b in pipe.books.values())}


def _bare(reader: str):
    streams = "/".join(stream_name(s, c) for s in REC_SYMBOLS for c in CHANNELS)
    return lambda sim, n, knobs: read_frames(f"{sim.ws_url}/stream?streams={streams}", n, reader)


CLIENTS = {
    **{reader: _bare(reader) for reader in READERS},
    "engine": engine_read,
    **{style.name: (lambda sim, n, knobs, style=style: python_read(sim, n, style))
       for style in STYLES},
}
#: The read ceiling: the faster of these two bare loops, run by run.
CEILING = ("bare ws.recv()", "bare ws.recv_data()")


def measure_throughput(runs: int, path: Path, knobs: dict) -> dict:
    """Every client against its own fresh recording simulator, ``runs`` times, interleaved."""
    n = recording_frames(path)
    load = [os.getloadavg()[0]]
    results: dict[str, list[dict]] = {name: [] for name in CLIENTS}
    for _ in range(runs):
        for name, client in CLIENTS.items():
            with SimProcess({"kind": "recording", "path": str(path)}) as sim:
                results[name].append(client(sim, n, knobs))
    load.append(os.getloadavg()[0])
    ceilings = [max(a["rate"], b["rate"]) for a, b in zip(
        results[CEILING[0]], results[CEILING[1]], strict=True)]
    ceiling = statistics.median(ceilings)
    rows = []
    for name, values in results.items():
        rate = summary([v["rate"] for v in values])
        rows.append({"client": name, "frames": n, "frames_per_s": rate,
                     "fraction_of_ceiling": rate["median"] / ceiling,
                     "complete": all(v.get("complete", True) for v in values),
                     "runs": values})
    return {"recording": path.name, "frames": n, "ceiling_frames_per_s": ceiling,
            "target_fraction": 0.8, "rows": rows, "loadavg_1m_before_after": load}


# -- tables and main ----------------------------------------------------------------------------

def _fmt(figure: dict, fmt: str = ",.0f", width: int = 22) -> str:
    return (f"{format(figure['median'], fmt)} ({format(figure['min'], fmt)}-"
            f"{format(figure['max'], fmt)})").rjust(width)


def _print_latency(lat: dict) -> None:
    m = lat["market"]
    print(f"live latency at ~{lat['rate']:,} msgs/s, frame read -> consumer handler entry "
          f"({CONSUMERS} consumers); generated spot market {'+'.join(lat['symbols'])} x "
          f"{'+'.join(lat['channels'])}, updates_per_s {m['updates_per_s']:g} at time_scale "
          f"{m['time_scale']:g}; {lat['runs']} runs of {lat['measure_s']:g} s after "
          f"{lat['warm_s']:g} s warm-up; us, median (min-max)")
    print(f"{'pipeline':<19} {'frames/s':>20} {'deliveries/s':>24} {'p50 us':>20} "
          f"{'p99 us':>22} {'p999 us':>24} {'max us':>26}")
    for row in lat["rows"]:
        print(f"{row['pipeline']:<19} {_fmt(row['frames_per_s'], width=20)} "
              f"{_fmt(row['deliveries_per_s'], width=24)} {_fmt(row['p50_us'], width=20)} "
              f"{_fmt(row['p99_us'], width=22)} {_fmt(row['p999_us'], width=24)} "
              f"{_fmt(row['max_us'], width=26)}")
    eng = lat["engine_runs"]
    print(f"p99 engine / python: {lat['p99_ratio_engine_hist_over_python']:.2f} (histogram), "
          f"{lat['p99_ratio_exact']:.2f} (exact); target < {lat['target_p99_ratio']}; "
          f"engine dropped {sum(r['dropped'] for r in eng)}, coalesced "
          f"{sum(r['coalesced'] for r in eng)}, resyncs {sum(r['resyncs'] for r in eng)}; "
          f"python gaps {sum(r['gaps'] for r in lat['python_runs'])}; simulator disconnects "
          f"{lat['sim_disconnects'] or 'none'}; GIL switch interval "
          f"{lat['switch_interval_s'] * 1e3:g} ms; engine {lat['engine_knobs']}; "
          f"load average (1 min) {lat['loadavg_1m_before_after'][0]:.1f} -> "
          f"{lat['loadavg_1m_before_after'][1]:.1f} on {lat['cpus']} CPUs")


def _print_throughput(tp: dict) -> None:
    print(f"max-rate throughput: {tp['recording']} ({tp['frames']:,} frames) played at speed 0, "
          f"a fresh simulator per client; frames/s from the first frame read to the last "
          f"handler entry, median (min-max)")
    print(f"{'client':<26} {'frames/s':>28} {'of ceiling':>10} {'ok':>3}")
    for row in tp["rows"]:
        print(f"{row['client']:<26} {_fmt(row['frames_per_s'], width=28)} "
              f"{100 * row['fraction_of_ceiling']:>9.0f}% "
              f"{'yes' if row['complete'] else 'NO':>3}")
    eng = next(r for r in tp["rows"] if r["client"] == "engine")["runs"]
    print(f"ceiling (faster bare loop) {tp['ceiling_frames_per_s']:,.0f} frames/s; target "
          f"engine >= {100 * tp['target_fraction']:.0f}%; engine dropped "
          f"{sum(r['dropped'] for r in eng)}, coalesced {sum(r['coalesced'] for r in eng)}, "
          f"resyncs {sum(r['resyncs'] for r in eng)}, diffs applied "
          f"{sum(r['applied_diffs'] for r in eng)}, snapshots {sum(r['snapshots'] for r in eng)}"
          f"; load average (1 min) {tp['loadavg_1m_before_after'][0]:.1f} -> "
          f"{tp['loadavg_1m_before_after'][1]:.1f}")


def run(runs: int = 3, quick: bool = False, wait: str = "blocking", batch_size: int = 256,
        rates: tuple[int, ...] = tuple(LIVE_RATES)) -> dict:
    """The latency test at every rate, then the throughput test."""
    warm_s, measure_s = (1.0, 2.0) if quick else (2.0, 10.0)
    knobs = {"wait": wait, "batch_size": batch_size}
    latency = [measure_latency(runs, warm_s, measure_s, knobs, rate) for rate in rates]
    with tempfile.TemporaryDirectory() as tmp:
        path = quick_recording(tmp, QUICK_FRAMES) if quick else RECORDING
        throughput = measure_throughput(runs, path, knobs)
    return {"latency": latency, "throughput": throughput}


def _latency_measures(lat: dict) -> list[Measure]:
    """p50/p99/p99.9 (exact stamps), GC and pool use of one rate, engine and Python."""
    rate, out = lat["rate"], []
    sides = (("engine", lat["engine_runs"]), ("python tuned", lat["python_runs"]))
    disconnects = sum(lat["sim_disconnects"].values()) if lat["sim_disconnects"] else 0
    out.append(Measure("live", f"simulator slow-client disconnects @{rate} msgs/s",
                       "simulator", "disconnects", (float(disconnects),),
                       params={"rate": rate, "reasons": lat["sim_disconnects"]}))
    for side, runs in sides:
        if not all(r["exact_us"]["count"] for r in runs):
            log.warning("live @%d msgs/s: %s measured nothing (disconnected as a slow "
                        "client?); its latency is left out", rate, side)
            continue
        params = {"rate": rate, "consumers": CONSUMERS,
                  "achieved_frames_per_s": statistics.median(r["frames_per_s"] for r in runs)}
        for key, pct in (("p50", "50"), ("p99", "99"), ("p999", "99.9")):
            out.append(Measure("live", f"latency p{pct} @{rate} msgs/s", side, "us",
                               tuple(r["exact_us"][key] for r in runs),
                               params={**params, "percentile": pct}))
        out.append(Measure("live", f"gc longest pause @{rate} msgs/s", side, "ms",
                           tuple(r["gc"]["longest_ms"] for r in runs), params=params))
        out.append(Measure("live", f"gc collections/s @{rate} msgs/s", side, "collections/s",
                           tuple(r["gc"]["pauses"] / r["gc"]["seconds"] for r in runs),
                           params=params))
    out.append(Measure("live", f"pool peak use @{rate} msgs/s", "engine", "% of slots",
                       tuple(100 * r["pool_peak_use"] for r in lat["engine_runs"]),
                       params={"rate": rate, "consumers": CONSUMERS, "seed_target": "< 80"}))
    return out


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: latency, GC, pool use per rate; throughput of every client."""
    result = run(1 if quick else 3, quick, rates=QUICK_RATES if quick else tuple(LIVE_RATES))
    out = [m for lat in result["latency"] for m in _latency_measures(lat)]
    tp = result["throughput"]
    for row in tp["rows"]:
        side = "engine" if row["client"] == "engine" else row["client"]
        out.append(Measure("live", "throughput, recorded feed", side, "frames/s",
                           tuple(r["rate"] for r in row["runs"]), HIGHER,
                           {"frames": tp["frames"], "complete": row["complete"]}))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (3; quick: 1)")
    parser.add_argument("--quick", action="store_true",
                        help=f"1 run, 3 s latency windows, {QUICK_FRAMES} recorded frames")
    parser.add_argument("--rates", type=int, nargs="+", default=list(LIVE_RATES),
                        choices=list(LIVE_RATES), help="latency test paces (msgs/s)")
    parser.add_argument("--wait", default="blocking", choices=("blocking", "yielding", "busy-spin"),
                        help="the engine consumers' wait strategy")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="the engine connection's batch_size (frames per on_frames call)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-sim", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sim is not None:
        sys.exit(serve_sim(orjson.loads(args.serve_sim)))
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    result = run(runs, args.quick, args.wait, args.batch_size, tuple(args.rates))
    if args.json:
        sys.stdout.write(orjson.dumps({"live": result}, option=orjson.OPT_INDENT_2).decode()
                         + "\n")
        return
    for lat in result["latency"]:
        _print_latency(lat)
        print()
    _print_throughput(result["throughput"])


if __name__ == "__main__":
    main()
