"""The record every benchmark returns: one figure of one side, repeated, with its summary.

A benchmark measures the engine beside its baselines in the same process run; each figure is
a :class:`Measure` holding every run's value, so the report shows the median with min-max and
the gates compare medians. Sides whose name starts with ``engine`` are the engine's; every
other side is a baseline (a pure-Python pipeline, a bare loop, a ceiling).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

__all__ = ["Measure", "advantage", "is_engine", "summary"]

#: Which way is better, per unit family: a cost (time, memory, allocations) or a rate.
LOWER, HIGHER = "lower", "higher"


def summary(values) -> dict:
    """``{"median", "min", "max"}`` of a non-empty sequence of numbers."""
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def is_engine(side: str) -> bool:
    """Whether ``side`` names an engine side (``engine``, ``engine batched``, ...)."""
    return side.startswith("engine")


@dataclass(frozen=True)
class Measure:
    """One figure of one side: every run's value, its unit and which way is better.

    ``bench`` is the benchmark that produced it, ``name`` the figure (``parse mixed``,
    ``fan-out e2e 10 consumers``), ``side`` who was measured. ``params`` says under what
    conditions (batch size, rate, consumers), for the report.
    """

    bench: str
    name: str
    side: str
    unit: str
    values: tuple[float, ...]
    better: str = LOWER
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"measure {self.bench}/{self.name}/{self.side} has no values")
        if self.better not in (LOWER, HIGHER):
            raise ValueError(f"better must be {LOWER!r} or {HIGHER!r}, got {self.better!r}")

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def to_dict(self) -> dict:
        return {"bench": self.bench, "name": self.name, "side": self.side, "unit": self.unit,
                "better": self.better, "values": list(self.values), **summary(self.values),
                "params": self.params}

    @classmethod
    def from_dict(cls, raw: dict) -> Measure:
        return cls(raw["bench"], raw["name"], raw["side"], raw["unit"], tuple(raw["values"]),
                   raw["better"], raw.get("params", {}))


def advantage(engine: Measure, baseline: Measure) -> float:
    """How many times better the engine's median is than the baseline's (> 1: engine wins).

    A cost compares baseline / engine, a rate engine / baseline; a zero cost on the engine
    side (no allocation at all) is infinitely better.
    """
    if engine.better != baseline.better or engine.unit != baseline.unit:
        raise ValueError(f"cannot compare {engine.unit} ({engine.better}) with "
                         f"{baseline.unit} ({baseline.better})")
    num, den = ((baseline.median, engine.median) if engine.better == LOWER
                else (engine.median, baseline.median))
    if den == 0:
        return float("inf") if num > 0 else 1.0
    return num / den
