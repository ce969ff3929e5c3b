"""The report: JSON that reads back, Markdown tables, plots when matplotlib is there."""

import pytest

from bench import plots
from bench.report import comparisons, fmt, load

from .helpers import sample_report, sample_results


def test_comparisons_pair_each_engine_side_with_each_baseline():
    rows = comparisons(m for r in sample_results() for m in r.measures)
    pool = [r for r in rows if r["bench"] == "pool"]
    assert len(pool) == 1 and pool[0]["advantage"] == pytest.approx(9e6 / 2e6)
    p99 = next(r for r in rows if r["name"] == "latency p99 @1000 msgs/s")
    assert (p99["engine"], p99["baseline"]) == ("engine", "python tuned")
    assert p99["advantage"] == pytest.approx(3.0)


def test_write_then_load_round_trips(tmp_path):
    report = sample_report()
    paths = report.write(tmp_path)
    assert {p.name for p in paths} >= {"report.json", "report.md"}
    again = load(tmp_path / "report.json")
    assert again.measures == report.measures
    assert (again.command, again.quick, again.machine) == (report.command, True, report.machine)


def test_markdown_names_machine_command_and_advantages():
    text = sample_report([{"gate": "pool: x", "advantage": 4.5, "threshold": 2.0,
                           "passed": True}]).to_markdown()
    assert "Test CPU, 2 cores" in text and "`meltica bench --quick`" in text
    assert "| pool batch 64 events/s | engine | python dataclass per event | 4.5x |" in text
    assert "| pool: x | 4.5x | 2x | pass |" in text
    assert "other jobs loaded its CPUs" in text


def test_plots_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    paths = plots.plot_report(sample_results(), tmp_path)
    assert {p.name for p in paths} == {"pool.png", "live.png", "latency.png"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_no_plots_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    assert plots.plot_report(sample_results(), tmp_path) == []
    assert plots.plot_series([{"t_s": 0, "x": 1}], ("x",), tmp_path / "s.png", "t") == []
    assert sample_report().write(tmp_path)[-1].name == "report.md"


@pytest.mark.parametrize(("value", "text"), [(1234567.8, "1,234,568"), (3.14159, "3.14"),
                                             (float("inf"), "inf"), (float("nan"), "-")])
def test_fmt(value, text):
    assert fmt(value) == text
