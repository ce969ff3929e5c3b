"""One venue websocket: batching reader, paced control messages, liveness, reconnects.

:class:`WsConnection` owns one websocket-client connection and is run by
:meth:`WsConnection.run` on a :class:`~meltica_nb.concurrency.TaskGroup` thread. The venue
connections (:mod:`meltica_nb.venues.binance.connection`, :mod:`meltica_nb.venues.okx.connection`,
:mod:`meltica_nb.venues.kraken.connection`) are its siblings: each says only how its venue names
streams (:meth:`~WsConnection._check_name`), words a subscribe (``_send_request``) and a ping
(``_send_ping``), and reads a reply (``_on_text``)::

    conn = BinanceConnection(config, on_frames, on_reconnect=books.resync_all)
    group.start(conn.run, name="binance-ws")
    conn.subscribe(["ethusdt@trade"])          # from any thread: queued, paced, acked

What it does, and what the original Go provider got wrong (reference §4.1, §9.2 item 4):

* **reads never close the socket on a timeout.** The socket has a read timeout
  (``read_timeout_s``) only so that the thread wakes to run its timers; websocket-client keeps a
  partly received frame buffered across ``WebSocketTimeoutException`` and the next read
  resumes it. A quiet stream is not an error.
* **reads in chunks, splits text frames in a kernel.** Socket reads go through a 64 KiB
  buffer, so a burst of frames costs one system call instead of three per frame; the plain
  text frames in it (final, unmasked: market data) are split out by a Numba kernel, ~1 us a
  frame instead of websocket-client's ~10 us, and every other frame (pings, closes,
  fragments, binary) is read by websocket-client from exactly where the kernel stopped.
* **batches.** Raw frame bytes and their receive times (``clock.now_ns()``) are collected in a
  :class:`~meltica_nb.venues.frame_arena.FrameArena` (the WsFrame byte arena: the split
  frames land there in one block copy) and handed to ``on_frames(frames, recv_ns)`` when
  ``batch_size`` frames are in or the socket has nothing more ready, so a lone frame is
  delivered at once and a burst costs one call.
* **paced control.** Subscribe/unsubscribe requests carry at most ``max_streams_per_request``
  streams and, with our pings, never exceed ``control_rate_per_s`` messages in any second (a
  sliding window, with a margin for network jitter). Replies are matched to requests.
* **liveness.** websocket-client answers the server's pings itself; after ``ping_interval_s``
  of silence we ping, and ``pong_timeout_s`` more of silence marks the connection dead.
* **reconnects** with capped exponential backoff and jitter, resubscribe every stream, and call
  ``on_reconnect()`` so the book layer resyncs; a connection is also replaced before the
  venue's cut (``proactive_reconnect_s``).
* **bad frames are reported, not fatal.** Oversized and binary frames, refused subscriptions,
  missing acks and disconnects are counted and passed to ``on_error(kind, detail,
  raw_prefix)`` (default: a warning log line). Details never contain credentials. A frame
  announcing more than 16 x ``max_frame_bytes`` is not even read into memory: it is reported
  as a protocol error and the connection is replaced.

Exceptions raised by ``on_frames``/``on_reconnect``/``on_error`` are not caught: they end
``run`` and, through the TaskGroup, stop the engine loudly rather than lose data silently.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import websocket
from websocket import ABNF

from meltica_nb.backoff import Backoff
from meltica_nb.clock import Clock, WallClock
from meltica_nb.concurrency import CancelToken
from meltica_nb.errors import ConfigError, ConnectError
from meltica_nb.kernels.ws_frame_kernels import split_text_frames
from meltica_nb.venues.connection_config import ConnectionConfig
from meltica_nb.venues.frame_arena import FrameArena
from meltica_nb.venues.secret import redact
from meltica_nb.venues.ws_session import ChunkedWebSocket, ControlPacer, Session, close_text

__all__ = [
    "ERROR_KINDS",
    "RAW_PREFIX_BYTES",
    "ConnectionStats",
    "OnError",
    "OnFrames",
    "WsConnection",
]

OnFrames = Callable[[FrameArena, np.ndarray], None]
OnError = Callable[[str, str, bytes], None]

#: What ``on_error`` may be told, one counter each in :attr:`ConnectionStats.errors`.
ERROR_KINDS = (
    "connect",  # a connect or handshake attempt failed (retried with backoff)
    "disconnect",  # the server closed or reset the connection (reconnected)
    "dead",  # no data and no pong within pong_timeout_s after our ping (reconnected)
    "protocol",  # a websocket protocol violation or unparsable control reply
    "oversized",  # a frame above max_frame_bytes (dropped)
    "binary",  # a binary frame: the venues' streams are text (dropped)
    "subscribe_error",  # the server refused a subscribe/unsubscribe
    "ack_timeout",  # no reply to a subscribe/unsubscribe within ack_timeout_s
    "unexpected_reply",  # a reply that matches no request of this connection
)

#: How many bytes of an offending frame ``on_error`` receives.
RAW_PREFIX_BYTES = 128

_NS = 1_000_000_000
_HARD_LIMIT_FACTOR = 16  # a frame above 16 x max_frame_bytes is not read: the link is reset


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """A snapshot of a connection's counters (immutable; take a new one to refresh).

    Parameters
    ----------
    frames : data frames handed to ``on_frames``.
    bytes : total size of those frames.
    batches : ``on_frames`` calls.
    connects : successful websocket handshakes.
    reconnects : handshakes after the first (each one called ``on_reconnect``).
    subscribe_requests : SUBSCRIBE and UNSUBSCRIBE messages sent.
    acks : replies to them received.
    pings : pings we sent.
    errors : count per ``on_error`` kind (see :data:`ERROR_KINDS`).
    last_frame_ns : receive time (clock ``now_ns``) of the last data frame, 0 before any.
    streams : streams currently wanted (subscribed or queued).
    connected : True while a websocket is open.
    """

    frames: int
    bytes: int
    batches: int
    connects: int
    reconnects: int
    subscribe_requests: int
    acks: int
    pings: int
    errors: Mapping[str, int]
    last_frame_ns: int
    streams: int
    connected: bool


def _chunk_into(outbox: deque, method: str, streams: tuple[str, ...], limit: int) -> None:
    """Append ``streams`` to ``outbox`` as messages of at most ``limit`` streams, filling the
    last queued message of the same method first."""
    rest = list(streams)
    if outbox and outbox[-1][0] == method and len(outbox[-1][1]) < limit:
        last = outbox[-1][1]
        room = limit - len(last)
        outbox[-1] = (method, last + tuple(rest[:room]))
        rest = rest[room:]
    for i in range(0, len(rest), limit):
        outbox.append((method, tuple(rest[i : i + limit])))


class WsConnection(ABC):
    """One venue websocket, run by :meth:`run` on a TaskGroup thread (see the module doc).

    Parameters
    ----------
    config : endpoints, pacing, timeouts, backoff; ``config.streams()`` are subscribed at start.
    on_frames : ``on_frames(frames, recv_ns)``: the batch's frames (a FrameArena: a sequence
        of ``bytes`` whose arrays the parsers read in place) and their receive times
        (``clock.now_ns()``, an int64 array), in arrival order; called on the connection
        thread. Both are refilled for the next batch: copy what must outlive the call.
    clock : time source for receive stamps and timers; :class:`~meltica_nb.clock.WallClock`
        when None.
    on_reconnect : called on the connection thread after every successful reconnect (the
        stream had a gap: resync books).
    on_error : ``on_error(kind, detail, raw_prefix)`` for every counted problem (kinds in
        :data:`ERROR_KINDS`); a warning log line when None.
    """

    #: Venue name in logs and errors (each venue sets it).
    LABEL: str
    #: Frames starting with these bytes are market data, passed on without a look; every
    #: other text frame goes to ``_on_text`` (each venue sets it).
    DATA_PREFIX: bytes
    #: Appended to ``config.ws_url`` to make the endpoint dialled.
    WS_PATH = ""

    def __init__(
        self,
        config: ConnectionConfig,
        on_frames: OnFrames,
        clock: Clock | None = None,
        *,
        on_reconnect: Callable[[], None] | None = None,
        on_error: OnError | None = None,
    ) -> None:
        self._config = config
        self._url = f"{config.ws_url}{self.WS_PATH}"
        self._on_frames = on_frames
        self._clock = clock if clock is not None else WallClock()
        self._on_reconnect = on_reconnect
        self._log = logging.getLogger(f"meltica_nb.venues.{self.LABEL}.connection")
        self._on_error = on_error if on_error is not None else self._log_error
        self._lock = threading.Lock()
        self._desired: dict[str, None] = dict.fromkeys(config.streams())
        self._ops: deque[tuple[str, tuple[str, ...]]] = deque()
        self._wake_w: socket.socket | None = None
        self._next_id = 1
        # counters: written by the connection thread only, read by stats()
        self._frames = self._bytes = self._batches = 0
        self._connects = self._reconnects = self._requests = self._acks = self._pings = 0
        self._errors: dict[str, int] = {}
        self._last_frame_ns = 0
        self._connected = False
        self._batch = FrameArena(config.batch_size)  # refilled for every batch
        self._data_prefix = np.frombuffer(self.DATA_PREFIX, np.uint8)

    # -- public, any thread -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint this connection dials."""
        return self._url

    def subscribe(self, streams: Iterable[str]) -> None:
        """Add streams (venue names); thread-safe, sent paced by the connection thread.

        Streams already wanted are ignored. Raises :class:`ConfigError` for a malformed name
        or when the connection would exceed ``max_streams_per_connection``.
        """
        names = self._names(streams)
        with self._lock:
            new = tuple(n for n in names if n not in self._desired)
            limit = self._config.max_streams_per_connection
            if len(self._desired) + len(new) > limit:
                raise ConfigError(
                    f"subscribing {len(new)} more streams would exceed "
                    f"max_streams_per_connection {limit}"
                )
            if new:
                self._desired.update(dict.fromkeys(new))
                self._queue_locked("SUBSCRIBE", new)

    def unsubscribe(self, streams: Iterable[str]) -> None:
        """Drop streams; thread-safe, sent paced by the connection thread. Unknown ones are
        ignored."""
        names = self._names(streams)
        with self._lock:
            gone = tuple(n for n in names if n in self._desired)
            for name in gone:
                del self._desired[name]
            if gone:
                self._queue_locked("UNSUBSCRIBE", gone)

    def streams(self) -> tuple[str, ...]:
        """The streams wanted now, in subscription order (re-sent after every reconnect)."""
        with self._lock:
            return tuple(self._desired)

    def stats(self) -> ConnectionStats:
        """A snapshot of the counters."""
        with self._lock:
            streams = len(self._desired)
        return ConnectionStats(
            frames=self._frames,
            bytes=self._bytes,
            batches=self._batches,
            connects=self._connects,
            reconnects=self._reconnects,
            subscribe_requests=self._requests,
            acks=self._acks,
            pings=self._pings,
            errors=MappingProxyType(dict(self._errors)),
            last_frame_ns=self._last_frame_ns,
            streams=streams,
            connected=self._connected,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._url!r}, streams={len(self._desired)}, "
            f"connected={self._connected})"
        )

    def _names(self, streams: Iterable[str]) -> tuple[str, ...]:
        """``streams`` once each, in order, every one checked by :meth:`_check_name`."""
        if isinstance(streams, str):
            raise ConfigError("pass an iterable of stream names, not one string")
        names = tuple(dict.fromkeys(streams))
        for name in names:
            self._check_name(name)
        return names

    @abstractmethod
    def _check_name(self, name: object) -> None:
        """Raise ConfigError when ``name`` is not one of the venue's stream names."""

    def _queue_locked(self, method: str, names: tuple[str, ...]) -> None:
        self._ops.append((method, names))
        if self._wake_w is not None:
            # a full pipe means the thread is already due to wake
            with contextlib.suppress(BlockingIOError):
                self._wake_w.send(b"\0")

    # -- the connection thread ----------------------------------------------------------------

    def run(self, token: CancelToken) -> None:
        """Connect, read and reconnect until ``token`` is cancelled (the TaskGroup's worker).

        Returns within about ``read_timeout_s`` of cancellation (plus at most 1 s for the
        closing handshake). Raises :class:`ConnectError` after ``max_connect_attempts``
        consecutive failed connects (when that is not 0). One ``run`` at a time per object.
        """
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        with self._lock:
            self._wake_w = wake_w
        try:
            self._run(token, wake_r)
        finally:
            with self._lock:
                self._wake_w = None
            wake_r.close()
            wake_w.close()

    def _run(self, token: CancelToken, wake: socket.socket) -> None:
        backoff = Backoff(self._config.backoff_policy, seed=self._config.backoff_seed)
        failures = 0
        while not token.cancelled:
            ws = self._connect()
            if ws is None:
                failures += 1
                self._check_attempts(failures)
                token.wait(backoff.next_delay())
                continue
            failures = 0
            session = self._open(ws, wake)
            reason = "cancelled"
            try:
                if self._connects > 1 and self._on_reconnect is not None:
                    self._on_reconnect()
                reason = self._serve(session, token, wake)
            finally:
                self._connected = False
                session.close(graceful=reason in ("cancelled", "proactive"))
            if session.healthy:
                backoff.reset()
            if reason != "proactive":
                token.wait(backoff.next_delay())

    def _check_attempts(self, failures: int) -> None:
        limit = self._config.max_connect_attempts
        if limit and failures >= limit:
            raise ConnectError(
                f"{self.LABEL} websocket {self._url}: {failures} consecutive connect attempts "
                f"failed"
            )

    def _connect(self) -> ChunkedWebSocket | None:
        try:
            ws = websocket.create_connection(
                self._url,
                timeout=self._config.connect_timeout_s,
                class_=ChunkedWebSocket,
                skip_utf8_validation=True,
                enable_multithread=False,
            )
        except (websocket.WebSocketException, OSError) as e:
            self._report("connect", f"{self._url}: {type(e).__name__}: {e}")
            return None
        ws.settimeout(self._config.read_timeout_s)
        ws.frame_limit = self._config.max_frame_bytes * _HARD_LIMIT_FACTOR
        return ws

    def _open(self, ws: ChunkedWebSocket, wake: socket.socket) -> Session:
        """Start a session: resubscribe everything wanted, count the (re)connect."""
        session = Session(ws, self._now(), ControlPacer.per_second(
            self._config.control_rate_per_s), wake)
        with self._lock:
            wanted = tuple(self._desired)
            self._ops.clear()  # the full resubscription below covers every queued change
        _chunk_into(session.outbox, "SUBSCRIBE", wanted, self._config.max_streams_per_request)
        self._connects += 1
        self._connected = True
        self._log.info("%s websocket connected to %s (%d streams)", self.LABEL, self._url,
                  len(wanted))
        if self._connects > 1:
            self._reconnects += 1
        return session

    def _serve(self, s: Session, token: CancelToken, wake: socket.socket) -> str:
        """Run one session; return why it ended."""
        batch = self._batch
        while not token.cancelled:
            batch.clear()
            reason = self._step(s, wake, batch)
            if batch.n:  # outside the socket error handling: callback errors must propagate
                self._deliver(s, batch)
            if reason is not None:
                return reason
        return "cancelled"

    def _step(self, s: Session, wake: socket.socket, batch: FrameArena) -> str | None:
        """Timers, control messages, one wait and one batch; a reason if the session ended."""
        try:
            now = self._now()
            reason = self._tick(s, now)
            if reason is None and self._wait(s, self._next_wait(s, now), wake):
                reason = self._read_batch(s, batch)
            return reason
        except (websocket.WebSocketException, OSError) as e:
            kind = "protocol" if isinstance(e, websocket.WebSocketProtocolException) else (
                "disconnect")
            self._report(kind, f"{type(e).__name__}: {e}")
            return kind

    def _wait(self, s: Session, timeout: float, wake: socket.socket) -> bool:
        """Block until the websocket is readable (True), woken, or ``timeout`` passes."""
        if s.ws.buffered():
            return True
        readable = False
        for key, _ in s.waiter.select(timeout):
            if key.data is wake:
                with contextlib.suppress(BlockingIOError):
                    while wake.recv(4096):
                        pass
            else:
                readable = True
        return readable

    def _tick(self, s: Session, now: float) -> str | None:
        """Timers and queued control messages; return a reason to end the session, or None."""
        cfg = self._config
        if now - s.opened >= cfg.proactive_reconnect_s:
            self._log.info("%s websocket: proactive reconnect after %.0f s", self.LABEL,
                      now - s.opened)
            return "proactive"
        if s.ping_sent is not None and now - s.ping_sent >= cfg.pong_timeout_s:
            self._report("dead", f"no data and no pong {cfg.pong_timeout_s:g} s after our ping")
            return "dead"
        self._take_ops(s)
        self._expire_acks(s, now)
        self._send_control(s, now)
        return None

    def _next_wait(self, s: Session, now: float) -> float:
        cfg = self._config
        if s.ping_sent is None:
            ping_in = s.last_rx + cfg.ping_interval_s - now
            if ping_in <= 0:
                ping_in = s.pacer.wait_s(now)
        else:
            ping_in = s.ping_sent + cfg.pong_timeout_s - now
        waits = [cfg.read_timeout_s, s.opened + cfg.proactive_reconnect_s - now, ping_in]
        if s.outbox:
            waits.append(s.pacer.wait_s(now))
        return max(0.0, min(waits))

    def _take_ops(self, s: Session) -> None:
        with self._lock:
            ops = list(self._ops)
            self._ops.clear()
        for method, names in ops:
            _chunk_into(s.outbox, method, names, self._config.max_streams_per_request)

    def _expire_acks(self, s: Session, now: float) -> None:
        limit = self._config.ack_timeout_s
        for msg_id, (method, count, sent) in list(s.pending.items()):
            if now - sent >= limit:
                del s.pending[msg_id]
                self._report("ack_timeout", f"{method} id={msg_id} ({count} streams): no reply "
                             f"in {limit:g} s")

    def _send_control(self, s: Session, now: float) -> None:
        """Send our ping if due, then queued requests, as far as the pacer allows."""
        if s.ping_sent is None and now - s.last_rx >= self._config.ping_interval_s:
            if s.pacer.wait_s(now) > 0:
                return
            self._send_ping(s)
            s.pacer.record(now)
            s.ping_sent = now
            self._pings += 1
        while s.outbox and s.pacer.wait_s(now) == 0:
            method, names = s.outbox.popleft()
            msg_id = self._next_id
            self._next_id += 1
            self._send_request(s, method, names, msg_id)
            s.pacer.record(now)
            s.pending[msg_id] = (method, len(names), now)
            self._requests += 1

    def _send_ping(self, s: Session) -> None:
        """Our keep-alive probe: a websocket ping frame (a venue may want its own message)."""
        s.ws.ping(b"meltica")

    @abstractmethod
    def _send_request(self, s: Session, method: str, names: tuple[str, ...], msg_id: int
                      ) -> None:
        """Send one SUBSCRIBE/UNSUBSCRIBE of ``names`` in the venue's message format."""

    def warm_up(self) -> None:
        """Compile the frame splitter now, on the starting thread (not on the first frames)."""
        none = np.zeros(0, np.int64)
        split_text_frames(np.frombuffer(bytearray(), np.uint8), 1, self._data_prefix, none,
                          none)

    def _read_batch(self, s: Session, batch: FrameArena) -> str | None:
        """Read every ready frame, up to a batch, into ``batch``."""
        try:
            return self._fill_batch(s, batch)
        except websocket.WebSocketTimeoutException:
            # nothing more ready, or a frame arrived in part: websocket-client keeps it
            return None
        finally:
            s.ws.no_wait = False
            s.last_rx = self._now()
            s.ping_sent = None  # anything received proves the connection alive

    def _fill_batch(self, s: Session, batch: FrameArena) -> str | None:
        """Data frames through the kernel splitter (straight into the arena), any other frame
        through websocket-client, until the batch is full or the socket would block."""
        ws = s.ws
        limit, max_bytes = self._config.batch_size, self._config.max_frame_bytes
        while True:
            split = ws.take_text(batch, limit - batch.n, self._data_prefix, max_bytes,
                                 self._clock.now_ns)
            if not split and self._general_frame(s, batch) is not None:
                return "disconnect"
            if batch.n >= limit:
                return None
            ws.no_wait = True  # the batch ends where the socket would block

    def _on_text_frame(self, s: Session, data: bytes, batch: FrameArena, stamp: int) -> None:
        """One text frame: data to the batch, oversized reported, anything else to _on_text."""
        max_bytes = self._config.max_frame_bytes
        if len(data) > max_bytes:
            self._report("oversized", f"text frame of {len(data)} bytes > "
                         f"max_frame_bytes {max_bytes}", data)
        elif data.startswith(self.DATA_PREFIX):
            batch.add(data, stamp)
        else:
            self._on_text(s, data, batch)

    def _general_frame(self, s: Session, batch: FrameArena) -> str | None:
        """One frame read by websocket-client (control, fragmented, binary ...); "disconnect"
        when the server closed the connection."""
        opcode, frame = s.ws.recv_data_frame(True)
        if opcode == ABNF.OPCODE_TEXT:
            self._on_text_frame(s, frame.data, batch, self._clock.now_ns())
        elif opcode == ABNF.OPCODE_CLOSE:
            self._report("disconnect", f"server closed the connection: {close_text(frame)}")
            return "disconnect"
        else:
            self._on_control_frame(s, opcode, frame.data)
        return None

    @abstractmethod
    def _on_text(self, s: Session, data: bytes, batch: FrameArena) -> None:
        """A text frame without DATA_PREFIX: a reply, a pong, or data added to ``batch``
        (``batch.add(data, self._clock.now_ns())``) for the parser to judge."""

    @staticmethod
    def _settle_one(s: Session, msg_id: int) -> tuple[str, int, float]:
        """One stream of the pending request ``msg_id`` answered (venues that answer stream by
        stream); the request is settled once every stream has been. Returns the request."""
        method, count, sent = s.pending[msg_id]
        if count > 1:
            s.pending[msg_id] = (method, count - 1, sent)
        else:
            del s.pending[msg_id]
        return method, count, sent

    def _count_ack(self, s: Session) -> None:
        self._acks += 1
        s.healthy = True  # the venue answers: the backoff may reset

    def _on_control_frame(self, s: Session, opcode: int, data: bytes) -> None:
        if opcode == ABNF.OPCODE_PING:
            s.pacer.record(self._now())  # websocket-client sent the pong: it counts too
        elif opcode == ABNF.OPCODE_BINARY:
            self._report("binary", f"binary frame of {len(data)} bytes (streams are text)", data)

    def _deliver(self, s: Session, batch: FrameArena) -> None:
        s.healthy = True
        self._frames += batch.n
        self._bytes += batch.payload_bytes
        self._batches += 1
        recv_ns = batch.recv()
        self._last_frame_ns = int(recv_ns[-1])
        self._on_frames(batch, recv_ns)

    # -- helpers ------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.monotonic_ns() / _NS

    def _report(self, kind: str, detail: str, raw: bytes = b"") -> None:
        self._errors[kind] = self._errors.get(kind, 0) + 1
        secrets = self._config.secrets()
        prefix = bytes(raw[:RAW_PREFIX_BYTES])
        for secret in secrets:
            if secret is not None:
                prefix = prefix.replace(secret.reveal().encode(), b"***")
        self._on_error(kind, redact(detail, secrets), prefix)

    def _log_error(self, kind: str, detail: str, raw_prefix: bytes) -> None:
        self._log.warning("%s websocket %s: %s", self.LABEL, kind, detail)
