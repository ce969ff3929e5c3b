"""The suite entries of the venue, replay, merge and orders benchmarks, run on small inputs.

Each test calls the module's ``measures(quick=True)`` (with a smaller size where the module
has one) and checks the shape the suite and the report rely on: every measure of that bench,
every value positive, the engine sides named ``engine...`` beside a baseline where the figure
has one, and every engine-side callable wrapped by ``engine_path`` (so the handicap reaches
it) and called. Nothing here is a timing assertion. The Kraken and replay benchmarks have no
size parameter (they replay a whole recording): with NUMBA_DISABLE_JIT=1 their kernels run as
Python and take minutes, so they run jitted only.
"""

import importlib
import os

import pytest

from bench.cryptofeed_env import ENV_VAR
from bench.measure import is_engine
from bench.suite import BENCHMARKS

needs_jit = pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1",
                               reason="a whole recording through Python kernels takes minutes")


@pytest.fixture
def wrapped(monkeypatch):
    """``run(bench)``: its measures, and how often each engine_path-wrapped callable ran
    (without cryptofeed: its side is tested in test_cryptofeed.py)."""
    monkeypatch.delenv(ENV_VAR, raising=False)

    def run(bench: str, **sizes):
        module = importlib.import_module(f"bench.bench_{bench}")
        for name, value in sizes.items():
            monkeypatch.setattr(module, name, value)
        calls: list[int] = []

        def spy(fn):
            calls.append(0)
            slot = len(calls) - 1

            def counted(*args, **kwargs):
                calls[slot] += 1
                return fn(*args, **kwargs)
            return counted

        monkeypatch.setattr(module, "engine_path", spy)
        return module.measures(True), calls
    return run


def check_shape(bench: str, measures, compared: set[str]) -> None:
    """Every measure is ``bench``'s and positive; each figure in ``compared`` has both an
    engine side and a baseline side, the others engine sides only."""
    assert measures and {m.bench for m in measures} == {bench}
    assert all(v > 0 for m in measures for v in m.values)
    figures = {m.name for m in measures}
    assert compared <= figures
    for figure in figures:
        sides = [m.side for m in measures if m.name == figure]
        assert len(sides) == len(set(sides)), figure
        assert any(map(is_engine, sides)), figure
        assert any(not is_engine(s) for s in sides) == (figure in compared), figure


def test_every_new_benchmark_is_registered():
    registered = {b.name: b.module for b in BENCHMARKS}
    for name in ("okx", "kraken", "replay", "merge", "orders"):
        assert registered[name] == f"bench.bench_{name}"


def test_okx_entry(wrapped):
    measures, calls = wrapped("okx", QUICK_REPEAT=1)
    check_shape("okx", measures, {"book update + checksum"})
    assert {m.side for m in measures} == {"engine batched", "engine 1 msg/call",
                                          "pure Python (cryptofeed way)"}
    assert all(len(m.values) == 3 and m.unit == "us/msg" for m in measures)
    assert all(m.params["messages"] == 290 for m in measures)
    assert len(calls) == 2 and all(calls)


@needs_jit
def test_kraken_entry(wrapped):
    measures, calls = wrapped("kraken")
    check_shape("kraken", measures, {"book update + checksum"})
    assert sum(map(is_engine, (m.side for m in measures))) == 3
    assert len(calls) == 3 and all(calls)


@needs_jit
def test_replay_entry(wrapped):
    measures, calls = wrapped("replay", QUICK_RUNS=1)
    check_shape("replay", measures, {"raw frames/s, 10 njit consumers"})
    assert {m.unit for m in measures} == {"frames/s", "events/s"}
    assert all(m.params["frames"] == 41_248 and len(m.values) == 1 for m in measures)
    assert calls and all(calls)


def test_merge_entry(wrapped):
    measures, calls = wrapped("merge", QUICK_EVENTS=1024)
    stage = {"merge stage defaults events/s", "merge stage every-pair events/s"}
    check_shape("merge", measures, stage)
    assert {m.name for m in measures} - stage == {"publish path defaults events/s",
                                                   "publish path every-pair events/s"}
    assert all(m.params["events"] == 1024 for m in measures)
    assert calls and all(calls)


def test_orders_entry(wrapped):
    measures, calls = wrapped("orders", QUICK_ORDERS=3)
    check_shape("orders", measures, {"submit until the venue answered"})
    assert {(m.name, m.side) for m in measures} == {
        ("submit until the venue answered", "engine"),
        ("submit until the venue answered", "bare signed POST"),
        ("submit until the ACK report reached the consumer", "engine")}
    assert all(m.params["orders_per_run"] == 3 and len(m.values) == 3 for m in measures)
    assert calls == [3, 3, 3]
