"""What the replay entries of OKX and Kraken share: their books start from the websocket.

Both venues send a book snapshot on the websocket when a book is subscribed, so their
recordings hold no REST depth snapshots (``snapshot_symbol`` is always None), their feeds are
prepared from the recorded frames alone, and their frame statuses carry the same names.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum

from meltica_nb.recording_source import FRAME, LineChunk

__all__ = ["NOWHERE_REST", "NOWHERE_WS", "WebsocketBookReplay", "frame_error_names",
           "recorded_frames"]

#: Nothing listens here: a feed that tried the network in replay would fail at once, locally.
NOWHERE_WS, NOWHERE_REST = "ws://127.0.0.1:9", "http://127.0.0.1:9"

_ERROR_NAMES = {"MALFORMED": "malformed message", "UNKNOWN": "unknown message",
                "UNKNOWN_SYMBOL": "unknown symbol", "BAD_VALUE": "bad value"}


def frame_error_names(status: type[IntEnum]) -> dict[int, str]:
    """The bad-input members of a venue's ``FrameStatus`` and their error names."""
    return {status[name]: text for name, text in _ERROR_NAMES.items()}


def recorded_frames(preview: LineChunk) -> Iterator[bytes]:
    """The websocket frames among the first lines (not REST, control or bad lines)."""
    return (raw for kind, raw in zip(preview.kind.tolist(), preview.raw, strict=True)
            if kind == FRAME)


class WebsocketBookReplay:
    """Base of a replay entry whose books start from the websocket snapshot."""

    @staticmethod
    def snapshot_symbol(url: str) -> str | None:
        """None: the books start from the websocket snapshot, never from REST."""
        return None
