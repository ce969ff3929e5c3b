"""Venue-neutral pieces of a websocket-client session: paced control, chunked reads, close text.

Used by the venue-neutral connection (:mod:`meltica_nb.venues.ws_connection`): a sliding-window
pacer for control messages, a websocket-client ``WebSocket`` that reads its socket in 64 KiB
chunks, splits the plain text frames out of them in a kernel and can stop a batch where the
socket would block, the :class:`Session` state of one open websocket, and the text of a close
frame.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import websocket
from websocket import ABNF

from meltica_nb.errors import ConfigError
from meltica_nb.kernels.ws_frame_kernels import split_text_frames
from meltica_nb.venues.frame_arena import FrameArena

__all__ = ["ChunkedWebSocket", "ControlPacer", "Session", "close_text"]

_PACING_MARGIN_S = 0.1  # added to the pacing window: server receive times jitter
_READ_CHUNK = 1 << 16
_CLOSE_WAIT_S = 1.0  # how long a graceful close waits for the server's close frame


class ControlPacer:
    """Allows at most ``limit`` sends in any ``window_s`` seconds (a sliding-window bucket).

    Unlike a token bucket refilled at the same rate, a burst never lets a window of
    ``window_s`` hold more than ``limit`` messages, which is what the venue counts.
    """

    __slots__ = ("_sent", "_window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or not window_s > 0:
            raise ConfigError(f"pacer needs limit >= 1 and window > 0, was {limit}, {window_s}")
        self._sent: deque[float] = deque(maxlen=limit)
        self._window_s = window_s

    @classmethod
    def per_second(cls, rate: float) -> ControlPacer:
        """A pacer for ``rate`` messages per second, with the jitter margin added."""
        limit = max(1, int(rate))
        return cls(limit, limit / rate + _PACING_MARGIN_S)

    def wait_s(self, now: float) -> float:
        """Seconds until the next send is allowed (0 when it is allowed now)."""
        if len(self._sent) < (self._sent.maxlen or 0):
            return 0.0
        return max(0.0, self._sent[0] + self._window_s - now)

    def record(self, now: float) -> None:
        """Count one message sent at ``now`` (monotonic seconds)."""
        self._sent.append(now)


class ChunkedWebSocket(websocket.WebSocket):
    """websocket-client's WebSocket reading the socket in 64 KiB chunks.

    websocket-client asks its socket for each frame's header, length and payload separately:
    three ``recv`` system calls per frame. Reading large chunks into a buffer serves a burst
    of frames from memory. With ``no_wait`` set, a read that would need the socket while the
    socket has nothing ready times out at once (``WebSocketTimeoutException``) instead of
    blocking; like any timeout, that leaves a partly read frame in websocket-client's frame
    buffer, and the next read resumes it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rbuf = bytearray()
        self.frame_limit = 1 << 62  # set by the connection: larger frames are never read
        self.no_wait = False
        self.ready: selectors.BaseSelector | None = None
        self._offsets = np.empty(0, np.int64)  # take_text's frame positions
        self._lengths = np.empty(0, np.int64)

    def take_text(self, batch: FrameArena, room: int, prefix: np.ndarray, limit: int,
                  now: Callable[[], int]) -> int:
        """Split up to ``room`` whole data frames out of the read buffer into ``batch``;
        return how many (stamped ``now()`` once they are complete).

        The fast path for market data (:mod:`meltica_nb.kernels.ws_frame_kernels`): only
        while websocket-client is between frames and messages, and only the final, unmasked
        text frames at the front of the buffer that start with ``prefix`` and hold at most
        ``limit`` bytes. It reads more bytes while the next frame is incomplete (the socket
        permitting: ``no_wait`` applies); 0 means the next frame is websocket-client's to read
        (or nothing more is ready).
        """
        fb, cont = self.frame_buffer, self.cont_frame
        if fb.header is not None or fb.recv_buffer or cont.recving_frames or cont.cont_data:
            return 0
        if self._offsets.shape[0] < room:
            self._offsets = np.empty(room, np.int64)
            self._lengths = np.empty(room, np.int64)
        limit = min(limit, self.frame_limit)
        while True:
            found, consumed, short = split_text_frames(
                np.frombuffer(self.rbuf, np.uint8), limit, prefix, self._offsets[:room],
                self._lengths[:room])
            if found or not short:
                if found:
                    batch.add_split(self.rbuf, self._offsets, self._lengths, found, consumed,
                                    now())
                    del self.rbuf[:consumed]
                return found
            self.rbuf += self._recv_chunk()  # the next frame is incomplete: read on

    def buffered(self) -> bool:
        """True when bytes are ready without a wait: in our buffer or inside TLS."""
        sock = self.sock
        return bool(self.rbuf) or (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0)

    def _recv(self, bufsize: int) -> bytes:
        length = self.frame_buffer.length  # known once a header was parsed
        if length is not None and length > self.frame_limit:
            raise websocket.WebSocketProtocolException(
                f"a frame of {length} bytes exceeds the hard limit of {self.frame_limit}"
            )
        buf = self.rbuf
        if not buf:
            chunk = self._recv_chunk()
            if len(chunk) <= bufsize:
                return chunk
            buf += chunk
        out = bytes(buf[:bufsize])
        del buf[:bufsize]
        return out

    def _recv_chunk(self) -> bytes:
        sock = self.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        tls_ready = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        if self.no_wait and not tls_ready and self.ready is not None and not self.ready.select(0):
            raise websocket.WebSocketTimeoutException("no more bytes ready")  # batch complete
        try:
            chunk = sock.recv(_READ_CHUNK)
        except TimeoutError as e:  # socket.timeout, also from TLS reads
            raise websocket.WebSocketTimeoutException(str(e)) from None
        if not chunk:
            raise websocket.WebSocketConnectionClosedException("the server closed the socket")
        return chunk


class Session:
    """The state of one open websocket; a reconnect starts a new one."""

    __slots__ = ("healthy", "last_rx", "opened", "outbox", "pacer", "pending", "ping_sent",
                 "ready", "waiter", "ws")

    def __init__(self, ws: ChunkedWebSocket, now: float, pacer: ControlPacer,
                 wake: socket.socket) -> None:
        self.ws = ws
        self.opened = now
        self.last_rx = now
        self.ping_sent: float | None = None  # when our unanswered ping went out
        self.pending: dict[int, tuple[str, int, float]] = {}  # id -> method, streams, sent
        self.outbox: deque[tuple[str, tuple[str, ...]]] = deque()
        self.pacer = pacer
        self.healthy = False  # an ack or a data frame arrived: resets the backoff
        self.waiter = selectors.DefaultSelector()
        self.waiter.register(ws.sock, selectors.EVENT_READ, None)
        self.waiter.register(wake, selectors.EVENT_READ, wake)
        self.ready = selectors.DefaultSelector()
        self.ready.register(ws.sock, selectors.EVENT_READ)
        ws.ready = self.ready

    def close(self, graceful: bool) -> None:
        self.ws.no_wait = False
        self.ws.ready = None
        self.waiter.close()
        self.ready.close()
        if graceful:
            self.ws.close(timeout=_CLOSE_WAIT_S)  # sends close, waits for the reply, shuts down
        else:
            self.ws.shutdown()


def close_text(frame: ABNF) -> str:
    data = frame.data
    if len(data) < 2:
        return "no status"
    code = struct.unpack("!H", data[:2])[0]
    reason = data[2:].decode("utf-8", "replace")
    return f"status {code} {reason}".rstrip()
