"""PNG plots of a report: one bar chart per benchmark, latency percentiles, soak series.

matplotlib is optional (the ``bench`` extra): without it every function returns no paths and
the JSON and Markdown reports are written as usual.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

__all__ = ["available", "plot_report", "plot_series"]

SIDE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf")


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(sides) -> dict:
    return {s: SIDE_COLOURS[i % len(SIDE_COLOURS)] for i, s in enumerate(dict.fromkeys(sides))}


def _bars(plt, result, path: Path) -> Path:
    """Every measure of one benchmark, one panel per unit: median bar, min-max whisker."""
    by_unit: dict[str, list] = {}
    for m in result.measures:
        if m.median > 0:
            by_unit.setdefault(m.unit, []).append(m)
    colours = _colours(m.side for m in result.measures)
    heights = [0.3 * len(ms) + 0.8 for ms in by_unit.values()]
    fig, axes = plt.subplots(len(by_unit), 1, figsize=(11, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (unit, ms) in zip(axes[:, 0], by_unit.items(), strict=True):
        y = list(range(len(ms)))
        ax.barh(y, [m.median for m in ms], color=[colours[m.side] for m in ms],
                xerr=[[m.median - m.low for m in ms], [m.high - m.median for m in ms]])
        ax.set_yticks(y, [f"{m.name} [{m.side}]" for m in ms], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(unit, fontsize=8)
    axes[0][0].set_title(f"{result.name}: {result.about} (median, min-max)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _latency(plt, measures, path: Path) -> Path | None:
    """Latency percentiles (p50, p99, p99.9) per side, one panel per message rate."""
    lat = [m for m in measures if "percentile" in m.params]
    if not lat:
        return None
    rates = sorted({m.params["rate"] for m in lat})
    colours = _colours(m.side for m in lat)
    fig, axes = plt.subplots(1, len(rates), figsize=(4 * len(rates), 3.5), squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        for side, group in itertools.groupby(sorted((m for m in lat if m.params["rate"] == rate),
                                                    key=lambda m: (m.side, m.params["percentile"])),
                                             key=lambda m: m.side):
            group = list(group)
            err = [[m.median - m.low for m in group], [m.high - m.median for m in group]]
            ax.errorbar([str(m.params["percentile"]) for m in group], [m.median for m in group],
                        yerr=err, marker="o", label=side, color=colours[side])
        ax.set_yscale("log")
        ax.set_title(f"{rate:,} msgs/s", fontsize=9)
        ax.set_xlabel("percentile")
        ax.set_ylabel("us, frame read -> handler entry")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_report(results, out: Path) -> list[Path]:
    """One bar chart per benchmark and the latency percentiles; [] without matplotlib."""
    if not available():
        return []
    plt = _pyplot()
    paths = [_bars(plt, r, out / f"{r.name}.png") for r in results if r.measures]
    latency = _latency(plt, [m for r in results for m in r.measures], out / "latency.png")
    return paths + ([latency] if latency else [])


def plot_series(samples: list[dict], keys: tuple[str, ...], path: Path, title: str) -> list[Path]:
    """Soak samples over time: one panel per key (x: seconds since start)."""
    if not available() or not samples:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 2.2 * len(keys)), sharex=True,
                             squeeze=False)
    t = [s["t_s"] for s in samples]
    for ax, key in zip(axes[:, 0], keys, strict=True):
        ax.plot(t, [s[key] for s in samples], marker=".")
        ax.set_ylabel(key, fontsize=8)
    axes[-1][0].set_xlabel("seconds")
    axes[0][0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]
