"""Start-up: from a fresh interpreter to the first events delivered, cold and warm Numba cache.

A child interpreter imports the engine, builds it with a batch and an njit consumer, starts
it, parses one batch of real Binance frames, publishes 256 trades, waits until both consumers
have them, and stops. Its wall time, measured from outside, is taken:

* with a cold cache: ``NUMBA_CACHE_DIR`` pointing at a fresh empty directory, so every kernel
  it touches is compiled (what a first run after install or upgrade pays);
* with a warm cache: the same directory again, every kernel loaded from disk (quick mode
  measures only this side, in the usual cache directory: a cold start takes a minute);
* beside them, a pure-Python pipeline's start-up: an interpreter importing what the tuned
  pipeline uses (orjson, websocket-client, queue, threading) and nothing else.

Run: ``python -m bench.bench_startup [--runs 3]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Measure

ROOT = Path(__file__).resolve().parents[1]
#: The pure-Python pipeline's start-up: its imports.
PYTHON_IMPORTS = "import orjson, websocket, queue, threading, dataclasses"


def child() -> None:
    """The measured start-up (runs in the child interpreter)."""
    import numpy as np

    from bench.bench_fanout import engine_feed, njit_handler
    from bench.bench_parse import RECORDING, load_feed, make_parser
    from meltica_nb.engine import Engine

    engine = Engine()
    state = np.zeros(2, np.int64)
    seen = [0]
    engine.add_consumer("batch", lambda view: seen.__setitem__(0, seen[0] + view.shape[0]),
                        events=["trade"], mode="batch")
    engine.add_consumer("njit", njit_handler, events=["trade"], mode="njit", state=state)
    engine.start()
    feed = load_feed(RECORDING, limit=256)
    parser, _ = make_parser()
    parser.parse_batch(feed.frames, feed.recv_ns)
    engine.publish(engine_feed(256)[:256])
    deadline = time.monotonic() + 60
    while (seen[0] < 256 or state[0] < 256) and time.monotonic() < deadline:
        time.sleep(0.001)
    engine.stop()
    if seen[0] < 256 or state[0] < 256:
        raise SystemExit("start-up child: the consumers did not get their events")


def _timed(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(runs: int, cold: bool = True) -> dict[str, list[float]]:
    """side -> seconds per run; each run compiles into a fresh cache, then reuses it.

    ``cold=False`` (quick mode: a cold start compiles for a minute) measures the warm side
    only, in the process's own Numba cache directory, warmed by one untimed start first.
    """
    engine_cmd = [sys.executable, "-m", "bench.bench_startup", "--child"]
    results: dict[str, list[float]] = {"engine, warm Numba cache": [],
                                       "python tuned imports": []}
    if cold:
        results["engine, cold Numba cache"] = []
    else:
        _timed(engine_cmd, dict(os.environ))
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache) if cold else dict(os.environ)
            if cold:
                results["engine, cold Numba cache"].append(_timed(engine_cmd, env))
            results["engine, warm Numba cache"].append(_timed(engine_cmd, env))
        results["python tuned imports"].append(
            _timed([sys.executable, "-c", PYTHON_IMPORTS], dict(os.environ)))
    return results


def measures(quick: bool) -> list[Measure]:
    """The suite's entry: start-up seconds per side (quick: warm cache only)."""
    return [Measure("startup", "start-up to first delivery", side, "s", tuple(values),
                    params={"cold_measured": not quick})
            for side, values in run(1 if quick else 3, cold=not quick).items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child()
        return
    for side, values in run(args.runs).items():
        print(f"{side:<26} " + " ".join(f"{v:.2f}" for v in values) + " s")


if __name__ == "__main__":
    main()
