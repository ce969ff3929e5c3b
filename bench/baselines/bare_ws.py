"""Bare websocket-client read loops: the ceiling, and what the library does by default.

``tuned``: ``skip_utf8_validation=True``, no multithread lock (what the engine's connection
uses), with ``recv()`` (decodes to str) or ``recv_data()`` (bytes). ``default``:
``websocket.create_connection(url)`` as the documentation shows it, UTF-8 validation on.
"""

from __future__ import annotations

import time

import websocket

__all__ = ["READERS", "read_frames"]

#: name -> (create_connection keyword arguments, use recv_data)
READERS = {
    "bare ws.recv()": ({"skip_utf8_validation": True, "enable_multithread": False}, False),
    "bare ws.recv_data()": ({"skip_utf8_validation": True, "enable_multithread": False}, True),
    "websocket-client defaults": ({}, False),
}


def read_frames(url: str, n: int, reader: str) -> dict:
    """Read ``n`` frames from ``url`` with the named reader; frames/s from first to last."""
    options, raw = READERS[reader]
    ws = websocket.create_connection(url, timeout=10, **options)
    recv = ws.recv_data if raw else ws.recv
    try:
        recv()
        first = time.time_ns()
        for _ in range(n - 1):
            recv()
        last = time.time_ns()
    finally:
        ws.close()
    return {"frames": n, "seconds": (last - first) / 1e9, "rate": (n - 1) / (last - first) * 1e9}
