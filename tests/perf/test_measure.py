"""The Measure record, its summary and the engine's advantage over a baseline."""

import math

import pytest

from bench.measure import HIGHER, Measure, advantage, is_engine, summary


def cost(side, *values):
    return Measure("b", "parse", side, "ns/msg", tuple(values))


def rate(side, *values):
    return Measure("b", "events", side, "events/s", tuple(values), HIGHER)


def test_summary_and_median_min_max():
    m = cost("engine", 3.0, 1.0, 2.0)
    assert (m.median, m.low, m.high) == (2.0, 1.0, 3.0)
    assert summary([3, 1, 2]) == {"median": 2, "min": 1, "max": 3}


def test_advantage_of_a_cost_is_baseline_over_engine():
    assert advantage(cost("engine", 100.0), cost("python", 300.0)) == 3.0


def test_advantage_of_a_rate_is_engine_over_baseline():
    assert advantage(rate("engine", 50.0), rate("python", 200.0)) == 0.25


def test_a_zero_cost_engine_is_infinitely_better():
    assert math.isinf(advantage(cost("engine", 0.0), cost("python", 4.0)))
    assert advantage(cost("engine", 0.0), cost("python", 0.0)) == 1.0


def test_mismatched_units_are_refused():
    with pytest.raises(ValueError, match="cannot compare"):
        advantage(cost("engine", 1.0), rate("python", 1.0))


def test_a_measure_needs_values_and_a_direction():
    with pytest.raises(ValueError, match="no values"):
        cost("engine")
    with pytest.raises(ValueError, match="better"):
        Measure("b", "n", "engine", "s", (1.0,), "sideways")


def test_round_trip_through_a_dict():
    m = rate("engine batched", 1.0, 2.0)
    assert Measure.from_dict(m.to_dict()) == m
    assert is_engine(m.side) and not is_engine("python tuned")
