"""Clock, WallClock and ManualClock: the injected time sources."""

import time

import numpy as np
import pytest

from meltica_nb.clock import Clock, ManualClock, WallClock
from meltica_nb.errors import ConfigError


def test_both_clocks_satisfy_the_protocol():
    assert isinstance(WallClock(), Clock)
    assert isinstance(ManualClock(), Clock)


def test_wall_clock_reads_the_system_clock():
    clock = WallClock()
    before = time.time_ns()
    now = clock.now_ns()
    after = time.time_ns()
    assert before <= now <= after
    assert isinstance(now, int)


def test_wall_clock_monotonic_never_decreases():
    clock = WallClock()
    readings = [clock.monotonic_ns() for _ in range(1000)]
    assert readings == sorted(readings)
    assert repr(clock) == "WallClock()"


def test_manual_clock_starts_where_told_and_both_readings_agree():
    clock = ManualClock(1_700_000_000_000_000_000)
    assert clock.now_ns() == clock.monotonic_ns() == 1_700_000_000_000_000_000
    assert ManualClock().now_ns() == 0


def test_manual_clock_advance_and_set():
    clock = ManualClock(100)
    assert clock.advance(50) == 150
    assert clock.advance(0) == 150
    assert clock.set(1_000) == 1_000
    assert clock.set(1_000) == 1_000  # setting the same time is not going backwards
    assert clock.now_ns() == clock.monotonic_ns() == 1_000
    assert repr(clock) == "ManualClock(1000)"


def test_manual_clock_accepts_numpy_integers():
    clock = ManualClock(np.int64(5))
    clock.advance(np.int32(5))
    clock.set(np.int64(20))
    assert clock.now_ns() == 20
    assert type(clock.now_ns()) is int


@pytest.mark.parametrize("action", [lambda c: c.set(99), lambda c: c.advance(-1)])
def test_manual_clock_never_goes_backwards(action):
    clock = ManualClock(100)
    with pytest.raises(ConfigError, match="backwards"):
        action(clock)
    assert clock.now_ns() == 100


@pytest.mark.parametrize("bad", [1.5, "10", None, True])
def test_manual_clock_rejects_non_integers(bad):
    clock = ManualClock()
    with pytest.raises(ConfigError):
        clock.advance(bad)
    with pytest.raises(ConfigError):
        clock.set(bad)
    with pytest.raises(ConfigError):
        ManualClock(bad)


def test_manual_clock_rejects_negative_start():
    with pytest.raises(ConfigError):
        ManualClock(-1)


def test_replay_follows_receive_times():
    """A replay sets the clock to each record's receive time; durations use that timeline."""
    clock = ManualClock()
    received = [10, 10, 25, 40]
    started = clock.monotonic_ns()
    for t in received:
        clock.set(t)
    assert clock.monotonic_ns() - started == 40
