"""A small report built from hand-written measures (the writers' input, not a benchmark)."""

from bench.measure import HIGHER, Measure
from bench.report import Report
from bench.suite import BenchResult

MACHINE = {"cpu": "Test CPU", "nproc": 2, "loadavg": [1.0, 1.0, 1.0], "python": "3.11",
           "numpy": "2", "numba": "0.60", "platform": "linux"}


def sample_results() -> tuple[BenchResult, ...]:
    pool = (Measure("pool", "pool batch 64 events/s", "engine", "events/s", (9e6, 1e7, 8e6),
                    HIGHER, {"batch": 64}),
            Measure("pool", "pool batch 64 events/s", "python dataclass per event", "events/s",
                    (2e6, 2.1e6, 1.9e6), HIGHER, {"batch": 64}))
    live = tuple(Measure("live", f"latency p{p} @1000 msgs/s", side, "us", (v, v * 1.1),
                         params={"rate": 1000, "percentile": p})
                 for side, base in (("engine", 100.0), ("python tuned", 300.0))
                 for p, v in (("50", base), ("99", base * 5), ("99.9", base * 9)))
    return (BenchResult("pool", "pool slot operations", 1.5, pool),
            BenchResult("live", "live latency", 20.0, live))


def sample_report(gates=()) -> Report:
    return Report("meltica bench --quick", "2026-11-22 00:00 UTC", True, MACHINE,
                  sample_results(), tuple(gates))
