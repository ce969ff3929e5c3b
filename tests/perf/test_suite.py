"""The registry: every entry names a module with the suite's entry point."""

import importlib

import pytest

from bench.suite import BENCHMARKS, names, select


def test_every_registered_module_exposes_measures():
    for bench in BENCHMARKS:
        module = importlib.import_module(bench.module)
        assert callable(module.measures), bench.module
        assert bench.runner() is module.measures


def test_select_keeps_registry_order_and_refuses_unknown_names():
    assert [b.name for b in select(["live", "pool"])] == ["pool", "live"]
    assert [b.name for b in select(None)] == names()
    with pytest.raises(ValueError, match="unknown benchmark"):
        select(["nope"])


def test_a_failing_benchmark_is_reported_and_the_others_still_run(monkeypatch):
    from bench import suite

    broken = suite.Benchmark("broken", "bench.measure", "a module without measures()")
    monkeypatch.setattr(suite, "BENCHMARKS", (broken, *suite.BENCHMARKS))
    monkeypatch.setattr(suite.Benchmark, "runner", lambda self: (
        importlib.import_module(self.module).measures if self.name == "broken"
        else (lambda quick: [])))
    results = suite.run_suite(True, ["broken", "pool"])
    assert [r.name for r in results] == ["broken", "pool"]
    assert results[0].error.startswith("AttributeError") and results[0].measures == ()
    assert results[1].error is None
