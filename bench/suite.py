"""The benchmark registry and the runner behind ``meltica bench``.

A benchmark is a module with one function, ``measures(quick: bool) -> list[Measure]``, that
runs the engine beside its baselines in the same process and returns every figure (see
:mod:`bench.measure`). It joins the suite by one line in :data:`BENCHMARKS`; the module is
imported only when it runs, so a slow or optional import costs nothing to the others.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bench.measure import Measure

__all__ = ["BENCHMARKS", "Benchmark", "BenchResult", "names", "run_suite"]

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Benchmark:
    """A registry entry: its name, the module that measures it, and what it shows."""

    name: str
    module: str
    about: str

    def runner(self) -> Callable[[bool], list[Measure]]:
        return importlib.import_module(self.module).measures


#: Every benchmark, cheapest first. Add a venue or a stage with one line here.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("pool", "bench.bench_pool", "pool slot operations vs one object per event"),
    Benchmark("okx", "bench.bench_okx",
              "OKX book update + checksum per message vs the cryptofeed way in Python and "
              "cryptofeed itself (checksums on; where installed)"),
    Benchmark("orders", "bench.bench_orders",
              "order submit latency on the simulator vs a bare signed POST"),
    Benchmark("kraken", "bench.bench_kraken",
              "Kraken book update + checksum per message vs the cryptofeed way in Python "
              "and cryptofeed itself (checksums on; where installed)"),
    Benchmark("parse", "bench.bench_parse",
              "parse per message type and book upkeep on real Binance frames"),
    Benchmark("alloc", "bench.bench_alloc", "Python allocations per event"),
    Benchmark("replay", "bench.bench_replay",
              "recorded frames/s through parse, book and 10 njit consumers vs a naive replay "
              "and cryptofeed's Binance handler (where installed); canonical replay events/s"),
    Benchmark("merge", "bench.bench_merge",
              "windowed merge throughput vs a dict of windows; publish with and without"),
    Benchmark("fanout", "bench.bench_fanout",
              "dispatcher + fan-out to 1, 10 and 50 consumers per mode"),
    Benchmark("startup", "bench.bench_startup", "start-up with a cold and a warm Numba cache"),
    Benchmark("live", "bench.bench_live",
              "live latency at 1k/5k/20k msgs/s, GC, pool use; throughput vs websocket-client"),
    Benchmark("sustained", "bench.soak",
              "a short soak: RSS, pool use, GC pauses and latency over time"),
)


@dataclass(frozen=True)
class BenchResult:
    """One benchmark's measures and how long it took (wall clock); ``error`` if it failed."""

    name: str
    about: str
    seconds: float
    measures: tuple[Measure, ...]
    error: str | None = None


def names() -> list[str]:
    return [b.name for b in BENCHMARKS]


def select(only: Iterable[str] | None) -> list[Benchmark]:
    """The registry entries named in ``only`` (all when None), in registry order."""
    if not only:
        return list(BENCHMARKS)
    wanted = set(only)
    unknown = wanted - set(names())
    if unknown:
        raise ValueError(f"unknown benchmark(s) {sorted(unknown)}; known: {names()}")
    return [b for b in BENCHMARKS if b.name in wanted]


def run_suite(quick: bool, only: Iterable[str] | None = None) -> list[BenchResult]:
    """Run the selected benchmarks one after the other; each returns its measures.

    A benchmark that raises is reported with its error and no measures (its gates fail);
    the others still run.
    """
    results = []
    for bench in select(only):
        log.info("bench %s (%s)%s", bench.name, bench.about, " quick" if quick else "")
        start = time.perf_counter()
        try:
            measures, error = tuple(bench.runner()(quick)), None
        except Exception as exc:  # noqa: BLE001 - reported in the report, the run goes on
            log.exception("bench %s failed", bench.name)
            measures, error = (), f"{type(exc).__name__}: {exc}"
        results.append(BenchResult(bench.name, bench.about, time.perf_counter() - start,
                                   measures, error))
    return results
