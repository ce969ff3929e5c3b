"""The two ways a Python pipeline is written: naive and tuned (a small strategy object).

Naive: stdlib ``json``, plain ``@dataclass`` objects, ``queue.Queue`` (a lock and two
conditions per put/get). Tuned: ``orjson``, ``@dataclass(slots=True)`` objects shared by every
consumer, ``queue.SimpleQueue`` (a C deque). Both share each object among the consumers.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable
from dataclasses import dataclass, make_dataclass

import orjson

__all__ = ["NAIVE", "STYLES", "TUNED", "Style"]


#: The fields of one event in either pipeline.
_EVENT_FIELDS = [("event_type", int), ("venue", int), ("instrument", int), ("seq", int),
                 ("price", int), ("quantity", int), ("recv_ns", int, 0)]
#: One event as the naive pipeline keeps it: a plain dataclass (an instance __dict__).
NaiveEvent = make_dataclass("NaiveEvent", _EVENT_FIELDS)
#: One event as the tuned pipeline keeps it: slotted, shared by every consumer.
TunedEvent = make_dataclass("TunedEvent", _EVENT_FIELDS, slots=True)


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
