"""Capped exponential backoff: the sequence, its cap, its jitter and its seed."""

import random

import pytest

from meltica_nb.backoff import Backoff, BackoffPolicy
from meltica_nb.errors import ConfigError


def test_without_jitter_the_delays_double_up_to_the_cap():
    delays = Backoff(BackoffPolicy(base_s=0.5, cap_s=30.0, jitter=0.0))
    assert [delays.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert delays.attempts == 9


def test_jittered_delays_stay_between_the_jitter_floor_and_the_ceiling():
    policy = BackoffPolicy(base_s=0.5, cap_s=30.0, jitter=0.2)
    delays = Backoff(policy, seed=1)
    got = [delays.next_delay() for _ in range(200)]
    for attempt, delay in enumerate(got):
        ceiling = policy.ceiling(attempt)
        assert 0.8 * ceiling <= delay <= ceiling <= 30.0
    assert max(got) <= 30.0 and len(set(got)) > 150  # jittered, never above the cap


def test_the_same_seed_gives_the_same_sequence_and_reset_starts_over():
    a, b = Backoff(seed=42), Backoff(seed=42)
    first = [a.next_delay() for _ in range(10)]
    assert first == [b.next_delay() for _ in range(10)]
    assert first != [Backoff(seed=43).next_delay() for _ in range(10)]
    a.reset()
    assert a.attempts == 0
    assert 0.4 <= a.next_delay() <= 0.5  # back at base_s


def test_huge_attempt_numbers_do_not_overflow():
    policy = BackoffPolicy(base_s=0.1, cap_s=5.0, factor=10.0)
    assert policy.ceiling(10_000) == 5.0
    assert policy.delay(10_000, random.Random(0)) <= 5.0


def test_default_policy_matches_the_venue_reconnect_rule():
    policy = Backoff().policy
    assert (policy.base_s, policy.cap_s, policy.factor) == (0.5, 30.0, 2.0)
    assert "attempts=0" in repr(Backoff())


@pytest.mark.parametrize("kwargs", [
    {"base_s": 0.0},
    {"base_s": -1.0},
    {"base_s": 2.0, "cap_s": 1.0},
    {"factor": 0.5},
    {"factor": 11.0},
    {"jitter": 1.0},
    {"jitter": -0.1},
])
def test_invalid_policies_are_refused(kwargs):
    with pytest.raises(ConfigError):
        BackoffPolicy(**kwargs)


def test_negative_attempt_is_refused():
    with pytest.raises(ConfigError):
        BackoffPolicy().ceiling(-1)
