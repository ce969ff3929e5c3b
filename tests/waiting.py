"""One way for every test to wait for a condition that a thread makes true.

``tests/`` is on ``sys.path`` (pytest puts the root conftest's folder there), so every test
module imports it as ``from waiting import wait_until``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, step: float = 0.01, *,
               what: str | None = None) -> T | bool:
    """Poll ``predicate`` every ``step`` s until it returns something true, and return that.

    After ``timeout`` s return False, or, when ``what`` names the condition, fail the test
    with an AssertionError saying what did not happen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            if what is not None:
                raise AssertionError(f"timed out waiting for {what}")
            return False
        time.sleep(step)
