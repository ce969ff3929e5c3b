"""The performance gates CI enforces: ratios against baselines measured in the same run.

Each gate names one figure of one benchmark, an engine side and a baseline side of it, and
the least advantage the engine must keep (how many times better its median is, see
:func:`bench.measure.advantage`). No gate is an absolute time: the machines CI runs on are
shared and noisy, so every threshold sits well under the ratio measured on them (the
"measured" note beside each) to leave room for noise.

``python -m bench.gates`` runs the gated benchmarks in quick mode and exits 1 when a gate
fails, printing which measure, its ratio and the threshold; ``meltica bench --gates`` checks
them after a suite run. ``MELTICA_BENCH_HANDICAP`` (see :mod:`bench.handicap`) slows the
engine's side on purpose: the tests use it to see every gate fire.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from bench.measure import Measure, advantage
from bench.suite import BenchResult, run_suite

__all__ = ["GATES", "Gate", "GateResult", "check"]


@dataclass(frozen=True)
class Gate:
    """The engine side of ``bench``/``measure`` must beat ``baseline`` by ``threshold`` x."""

    bench: str
    measure: str
    engine: str
    baseline: str
    threshold: float
    measured: str

    @property
    def name(self) -> str:
        return f"{self.bench}: {self.measure}, {self.engine} vs {self.baseline}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    advantage: float
    passed: bool
    message: str

    def to_dict(self) -> dict:
        return {"gate": self.gate.name, "advantage": self.advantage,
                "threshold": self.gate.threshold, "passed": self.passed,
                "message": self.message}


GATES: tuple[Gate, ...] = (
    Gate("pool", "pool batch 64 events/s", "engine", "python dataclass per event", 2.0,
         "about 5x on a loaded 2-core machine"),
    Gate("parse", "parse mixed", "engine", "orjson+Decimal", 1.5,
         "2.5x to 3.8x on a loaded 2-core machine"),
    Gate("parse", "book update incl. snapshot", "engine batched", "dict book (Decimal)", 5.0,
         "about 25x"),
    Gate("alloc", "blocks held per event in flight", "engine", "python tuned", 2.5,
         "engine about 0.01 blocks/event, tuned Python 4 (the gate: engine <= 0.4x)"),
    Gate("fanout", "e2e events/s, 10 consumers", "engine batch", "python naive", 3.0,
         "about 10x"),
    Gate("okx", "book update + checksum", "engine batched", "pure Python (cryptofeed way)", 4.0,
         "10x to 18x on a loaded 2-core machine"),
    Gate("kraken", "book update + checksum", "engine batched",
         "python sorted dicts (cryptofeed way)", 10.0,
         "about 44x on a loaded 2-core machine (10x also lets the 20x handicap fire it)"),
)


def _find(measures: list[Measure], bench: str, name: str, side: str) -> Measure | None:
    return next((m for m in measures if (m.bench, m.name, m.side) == (bench, name, side)),
                None)


def evaluate(gate: Gate, measures: list[Measure]) -> GateResult:
    """One gate against the measures of a run."""
    eng = _find(measures, gate.bench, gate.measure, gate.engine)
    base = _find(measures, gate.bench, gate.measure, gate.baseline)
    if eng is None or base is None:
        missing = gate.engine if eng is None else gate.baseline
        return GateResult(gate, float("nan"), False,
                          f"gate FAILED {gate.name}: the run has no {missing!r} measure")
    adv = advantage(eng, base)
    passed = adv >= gate.threshold
    verdict = "passed" if passed else "FAILED"
    return GateResult(gate, adv, passed,
                      f"gate {verdict} {gate.name}: ratio {adv:.2f}x, threshold "
                      f"{gate.threshold:.2f}x (engine {eng.median:.4g} vs baseline "
                      f"{base.median:.4g} {eng.unit}, medians)")


def check(results: Iterable[BenchResult]) -> list[GateResult]:
    """Every gate whose benchmark ran, against that run's measures."""
    results = list(results)
    ran = {r.name for r in results}
    measures = [m for r in results for m in r.measures]
    return [evaluate(g, measures) for g in GATES if g.bench in ran]


def gated_benches() -> list[str]:
    return list(dict.fromkeys(g.bench for g in GATES))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full-size runs (default: quick)")
    parser.add_argument("--only", nargs="+", default=None, choices=gated_benches(),
                        help="gate these benchmarks only")
    args = parser.parse_args(argv)
    results = check(run_suite(not args.full, args.only or gated_benches()))
    for result in results:
        print(result.message)
    failed = [r for r in results if not r.passed]
    print(f"gates: {len(results) - len(failed)} of {len(results)} held")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
