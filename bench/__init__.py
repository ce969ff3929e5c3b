"""Benchmarks: each engine measure runs beside its baselines in the same process run.

A benchmark module exposes ``measures(quick: bool) -> list[bench.measure.Measure]`` and joins
``meltica bench`` by one line in :data:`bench.suite.BENCHMARKS`, e.g.
``Benchmark("okx", "bench.bench_okx", "OKX parse and book upkeep")``. Engine sides are named
``engine...``, baselines anything else; the report compares each engine side with each
baseline of the same figure, and :mod:`bench.gates` turns some of those ratios into CI gates.
Wrap engine-side callables in :func:`bench.handicap.engine_path` so the gate tests can slow
them down.
"""
