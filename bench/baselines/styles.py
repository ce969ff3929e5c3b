"""The two ways a Python pipeline is written: naive and tuned (a small strategy object).

Naive: stdlib ``json``, plain ``@dataclass`` objects, ``queue.Queue`` (a lock and two
conditions per put/get). Tuned: ``orjson``, ``@dataclass(slots=True)`` objects shared by every
consumer, ``queue.SimpleQueue`` (a C deque). Both share each object among the consumers.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = ["NAIVE", "STYLES", "TUNED", "Style"]


@dataclass
class NaiveEvent:
    """One event as the naive pipeline keeps it."""

    event_type: int
    venue: int
    instrument: int
    seq: int
    price: int
    quantity: int
    recv_ns: int = 0


@dataclass(slots=True)
class TunedEvent:
    """One event as the tuned pipeline keeps it (slotted, shared by every consumer)."""

    event_type: int
    venue: int
    instrument: int
    seq: int
    price: int
    quantity: int
    recv_ns: int = 0


@dataclass(frozen=True)
class Style:
    """How a pipeline decodes, what objects it builds, which queue it hands them through."""

    name: str
    loads: Callable[[bytes], object]
    event: type
    make_queue: Callable[[], object]


NAIVE = Style("python naive", json.loads, NaiveEvent, queue.Queue)
TUNED = Style("python tuned", orjson.loads, TunedEvent, queue.SimpleQueue)
STYLES = (NAIVE, TUNED)
