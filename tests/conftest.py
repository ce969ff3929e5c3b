"""Shared test fixtures: every test that starts threads proves they all stopped."""

import threading

import pytest


@pytest.fixture
def no_thread_leak():
    """Fail the test if it leaves any thread running that was not there before it."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads still running after the test: {leaked}"
