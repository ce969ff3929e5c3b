"""The benchmark report: JSON (everything), Markdown (tables) and PNG plots (with matplotlib).

The JSON holds every run's value of every measure, the machine and the command, so a
report can be read back (:func:`load`) to regenerate the Markdown or the README section. The
comparisons are the engine's advantage over each baseline of the same figure: how many times
better its median is (> 1: the engine wins).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.measure import HIGHER, Measure, advantage, is_engine
from bench.suite import BenchResult

__all__ = ["Report", "comparisons", "load"]

LOADED_NOTE = ("The machine is shared: other jobs loaded its CPUs during the run, so absolute "
               "figures are noisy; ratios come from sides measured in the same run.")


def comparisons(measures: Iterable[Measure]) -> list[dict]:
    """The engine's advantage over every baseline side of each figure."""
    rows = []
    key = lambda m: (m.bench, m.name)  # noqa: E731
    for (bench, name), group in itertools.groupby(sorted(measures, key=key), key=key):
        group = list(group)
        engines = [m for m in group if is_engine(m.side)]
        baselines = [m for m in group if not is_engine(m.side)]
        for eng, base in itertools.product(engines, baselines):
            rows.append({"bench": bench, "name": name, "engine": eng.side,
                         "baseline": base.side, "unit": eng.unit,
                         "advantage": advantage(eng, base)})
    return rows


def fmt(value: float) -> str:
    """A figure with three significant digits and thousands separators."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Report:
    """What a ``meltica bench`` run measured, on which machine, with which command."""

    command: str
    date: str
    quick: bool
    machine: dict
    results: tuple[BenchResult, ...]
    gates: tuple[dict, ...] = ()
    notes: tuple[str, ...] = field(default=(LOADED_NOTE,))

    @property
    def measures(self) -> list[Measure]:
        return [m for r in self.results for m in r.measures]

    def to_dict(self) -> dict:
        return {"command": self.command, "date": self.date, "quick": self.quick,
                "machine": self.machine, "notes": list(self.notes),
                "benchmarks": [{"name": r.name, "about": r.about, "seconds": r.seconds,
                                "error": r.error,
                                "measures": [m.to_dict() for m in r.measures]}
                               for r in self.results],
                "comparisons": comparisons(self.measures), "gates": list(self.gates)}

    def to_markdown(self) -> str:
        m = self.machine
        lines = [f"# meltica_nb benchmark report ({'quick' if self.quick else 'full'} run)", "",
                 f"- date: {self.date}", f"- command: `{self.command}`",
                 f"- machine: {m['cpu']}, {m['nproc']} cores, load average "
                 f"{', '.join(f'{x:.2f}' for x in m['loadavg'])} at the start; Python "
                 f"{m['python']}, NumPy {m['numpy']}, Numba {m['numba']}",
                 *(f"- {note}" for note in self.notes), "",
                 "Every figure: median (min-max) over the runs. Advantage: how many times "
                 "better the engine's median is than the baseline's (> 1: the engine wins).",
                 ""]
        if self.gates:
            lines += ["## Gates", "", "| gate | advantage | threshold | result |",
                      "|---|---:|---:|---|"]
            lines += [f"| {g['gate']} | {fmt(g['advantage'])}x | {fmt(g['threshold'])}x | "
                      f"{'pass' if g['passed'] else 'FAIL'} |" for g in self.gates]
            lines.append("")
        for result in self.results:
            lines += _bench_section(result)
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> list[Path]:
        """report.json, report.md and the PNG plots (when matplotlib is there) in ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "report.json", out / "report.md"]
        paths[0].write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2
                                          | orjson.OPT_SERIALIZE_NUMPY))
        paths[1].write_text(self.to_markdown())
        from bench.plots import plot_report

        return paths + plot_report(self.results, out)


def _bench_section(result: BenchResult) -> list[str]:
    lines = [f"## {result.name}: {result.about}", "",
             f"{len(result.measures)} measures in {result.seconds:.0f} s."
             + (f" **Failed:** {result.error}" if result.error else ""), "",
             "| figure | side | median | min-max | unit |", "|---|---|---:|---:|---|"]
    for m in result.measures:
        arrow = "higher is better" if m.better == HIGHER else "lower is better"
        lines.append(f"| {m.name} | {m.side} | {fmt(m.median)} | {fmt(m.low)}-{fmt(m.high)} "
                     f"| {m.unit} ({arrow}) |")
    rows = comparisons(result.measures)
    if rows:
        lines += ["", "| figure | engine | baseline | advantage |", "|---|---|---|---:|"]
        lines += [f"| {c['name']} | {c['engine']} | {c['baseline']} | {fmt(c['advantage'])}x |"
                  for c in rows]
    return [*lines, ""]


def load(path: Path) -> Report:
    """Read a report.json back."""
    raw = orjson.loads(Path(path).read_bytes())
    results = tuple(BenchResult(b["name"], b["about"], b["seconds"],
                                tuple(Measure.from_dict(m) for m in b["measures"]),
                                b.get("error"))
                    for b in raw["benchmarks"])
    return Report(raw["command"], raw["date"], raw["quick"], raw["machine"], results,
                  tuple(raw.get("gates", ())), tuple(raw.get("notes", ())))
