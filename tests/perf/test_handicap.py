"""The handicap hook that slows the engine's side of a benchmark on purpose."""

import time

import pytest

from bench.handicap import ENV, Handicap, current, engine_path

CPU_SPENT: list[int] = []


def work(x):
    """Burn about 2 ms of CPU; remember how much this thread really got."""
    start, until = time.thread_time_ns(), time.perf_counter() + 0.002
    while time.perf_counter() < until:
        pass
    CPU_SPENT.append(time.thread_time_ns() - start)
    return x + 1


def test_no_handicap_returns_the_callable_itself(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert not current().active
    assert engine_path(work) is work


def test_slowdown_makes_each_call_take_that_many_times_as_long(monkeypatch):
    monkeypatch.setenv(ENV, "slowdown=4")
    slowed = engine_path(work)
    start = time.perf_counter_ns()
    assert slowed(1) == 2
    # the call's wall time >= its CPU time, plus 3x the CPU time in the busy wait after it
    assert time.perf_counter_ns() - start >= 4 * CPU_SPENT[-1] > 0


def test_allocs_keep_objects_alive_per_call(monkeypatch):
    monkeypatch.setenv(ENV, "allocs=10")
    bloated = engine_path(lambda: None)
    bloated()
    bloated()
    assert len(bloated.kept) == 20


def test_parse_and_env_round_trip():
    h = Handicap.parse("slowdown=2.5, allocs=3")
    assert (h.slowdown, h.allocs) == (2.5, 3)
    assert Handicap.parse(h.env()) == h
    assert Handicap.parse("") == Handicap()


@pytest.mark.parametrize("text", ["speed=2", "slowdown", "slowdown=0.5", "allocs=-1"])
def test_bad_handicaps_are_refused(text):
    with pytest.raises(ValueError):
        Handicap.parse(text)
