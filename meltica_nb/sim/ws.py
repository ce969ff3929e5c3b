"""The websocket side of the simulator: connections, subscriptions, fan-out, faults.

Runs on the simulator's event loop only. Each connection has a queue of outgoing frames and one
writer task; the market publishes a payload once per stream and the hub appends it to the queue
of every subscribed connection (a connection whose queue overflows is a slow client and is
disconnected, as Binance does). Frame faults are applied by the writer, per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from http import HTTPStatus

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from meltica_nb.sim.binance import BinanceLimits, Subscriptions, handle_control, parse_ws_path
from meltica_nb.sim.faults import (
    NO_FAULTS,
    ConnectionFaults,
    FaultInjector,
    FramePlan,
    malformed_frame,
    oversized_payload,
)

__all__ = ["Session", "StreamHub"]

_REORDER_HOLD_S = 0.5  # a held (reordered) frame is sent at the latest after this idle time
_CLOSE = "\x00close"  # queue marker: close the connection once the frames before it are sent


class Session:
    """One websocket connection: its subscriptions, outgoing queue and writer."""

    def __init__(self, hub: StreamHub, ws: ServerConnection, conn_id: int, subs: Subscriptions,
                 faults: ConnectionFaults) -> None:
        self.hub, self.ws, self.conn_id, self.subs, self.faults = hub, ws, conn_id, subs, faults
        self.queue: deque[tuple[str | None, bytes]] = deque()
        self.ready = asyncio.Event()
        self.closed = False
        self.held: tuple[str, bytes] | None = None
        self.received: deque[float] = deque()

    # -- producer side ---------------------------------------------------------------------

    def enqueue(self, stream: str | None, data: bytes) -> None:
        """Queue a frame (``stream`` None: a control response, never faulted)."""
        if self.closed:
            return
        if len(self.queue) >= self.hub.limits.max_queue:
            self.kill("slow_client")
            return
        self.queue.append((stream, data))
        self.ready.set()

    def close_after_flush(self, code: int, reason: str) -> None:
        """Send what is queued (e.g. the replies so far), then close with ``code``."""
        self.queue.append((_CLOSE, f"{code:04d}{reason}".encode()))
        self.ready.set()

    def has_space(self) -> bool:
        return self.closed or len(self.queue) < self.hub.limits.max_queue // 2

    def kill(self, reason: str) -> None:
        """Drop the TCP connection at once (no closing handshake), counting why."""
        if self.closed:
            return
        self.closed = True
        self.hub.disconnects[reason] += 1
        self.ready.set()
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()

    # -- writer ----------------------------------------------------------------------------

    async def writer(self) -> None:
        """Send queued frames until the connection closes."""
        with contextlib.suppress(ConnectionClosed):
            while not self.closed:
                if not self.queue:
                    await self._idle()
                    continue
                stream, data = self.queue.popleft()
                if stream is None:
                    await self.ws.send(data.decode())
                elif stream == _CLOSE:
                    await self.ws.close(int(data[:4]), data[4:].decode())
                    return
                else:
                    await self._send_data(stream, data)

    async def _idle(self) -> None:
        self.ready.clear()
        if self.held is None:
            await self.ready.wait()
            return
        try:
            await asyncio.wait_for(self.ready.wait(), _REORDER_HOLD_S)
        except TimeoutError:
            held, self.held = self.held, None
            await self._emit(*held)

    def _frame(self, stream: str, data: bytes) -> bytes:
        if self.subs.combined:
            return b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"
        return data

    async def _emit(self, stream: str, frame: bytes) -> None:
        await self.ws.send(frame.decode())
        self.hub.frames_sent[stream] += 1

    async def _send_data(self, stream: str, data: bytes) -> None:
        plan = NO_FAULTS if self.hub.is_private(stream) else self.faults.plan()
        if plan is NO_FAULTS:
            await self._emit(stream, self._frame(stream, data))
        elif not await self._send_faulty(stream, data, plan):
            return
        if self.held is not None:
            held, self.held = self.held, None
            await self._emit(*held)

    async def _send_faulty(self, stream: str, data: bytes, plan: FramePlan) -> bool:
        """Apply ``plan`` to one frame; True when the frame itself was sent."""
        if plan.disconnect:
            self.kill("fault_disconnect")
            return False
        if plan.stall_s:
            await asyncio.sleep(plan.stall_s)
        frame = self._frame(stream, data)
        if plan.corrupt:
            frame = self.hub.corrupt(stream, frame)
        if plan.malformed:
            await self._emit("!malformed", malformed_frame(frame))
        if plan.oversized:
            size = self.hub.faults.spec.oversized_bytes
            await self._emit("!oversized", self._frame(stream, oversized_payload(size)))
        if plan.drop:
            return False
        if plan.reorder and self.held is None:
            self.held = (stream, frame)
            return False
        await self._emit(stream, frame)
        if plan.dup:
            await self._emit(stream, frame)
        return True

    # -- keepalive -------------------------------------------------------------------------

    async def pinger(self, interval: float, timeout: float) -> None:
        """Ping every ``interval`` seconds; no pong within ``timeout`` drops the connection."""
        with contextlib.suppress(ConnectionClosed):
            while not self.closed:
                await asyncio.sleep(interval)
                waiter = await self.ws.ping(str(int(time.time() * 1000)))
                self.hub.counters["pings_sent"] += 1
                try:
                    await asyncio.wait_for(waiter, timeout)
                except TimeoutError:
                    self.kill("pong_timeout")
                    return
                self.hub.counters["pongs_received"] += 1

    def over_rate(self, now: float) -> bool:
        """Count one incoming message; True when the last second saw more than allowed."""
        self.received.append(now)
        while self.received and self.received[0] <= now - 1.0:
            self.received.popleft()
        return len(self.received) > self.hub.limits.max_messages_per_s


class StreamHub:
    """Every websocket connection of one simulator and who subscribed to what."""

    def __init__(self, limits: BinanceLimits, faults: FaultInjector,
                 is_valid: Callable[[str], bool],
                 is_private: Callable[[str], bool] = lambda _stream: False) -> None:
        """``is_private(stream)``: a user data stream, which never gets frame faults."""
        self.limits, self.faults, self.is_valid = limits, faults, is_valid
        self.is_private = is_private
        self.subscribers: dict[str, set[Session]] = {}
        self.sessions: set[Session] = set()
        self.frames_sent: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self._next_id = 0

    # -- publishing ------------------------------------------------------------------------

    def wanted(self, stream: str) -> bool:
        """True when some connection subscribed to ``stream``."""
        return stream in self.subscribers

    @property
    def has_subscribers(self) -> bool:
        return bool(self.subscribers)

    def publish(self, stream: str, payload: dict | bytes) -> None:
        """Queue ``payload`` for every subscriber of ``stream`` (serialized once)."""
        sessions = self.subscribers.get(stream)
        if not sessions:
            return
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        for session in tuple(sessions):
            session.enqueue(stream, data)

    def drop(self, stream: str, reason: str) -> int:
        """Drop every connection subscribed to ``stream`` (no closing handshake)."""
        sessions = tuple(self.subscribers.get(stream, ()))
        for session in sessions:
            session.kill(reason)
        return len(sessions)

    def close_stream(self, stream: str, reason: str) -> None:
        """Close every connection subscribed to ``stream`` once its queued frames are sent."""
        for session in tuple(self.subscribers.get(stream, ())):
            self.disconnects[reason] += 1
            session.close_after_flush(1000, reason)

    async def publish_wait(self, stream: str, payload: dict | bytes) -> None:
        """Like :meth:`publish`, but wait for room instead of dropping slow clients."""
        for session in tuple(self.subscribers.get(stream, ())):
            while not session.has_space():
                await asyncio.sleep(0.001)
        self.publish(stream, payload)

    # -- connections -----------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse paths that are not stream paths (404) or name bad/too many streams (400)."""
        parsed = parse_ws_path(request.path)
        if parsed is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        streams, _ = parsed
        if len(streams) > self.limits.max_streams:
            return connection.respond(HTTPStatus.BAD_REQUEST, "Too many streams\n")
        bad = [s for s in streams if not self.is_valid(s)]
        if bad:
            return connection.respond(HTTPStatus.BAD_REQUEST, f"Invalid stream {bad[0]}\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        """Serve one connection: control messages in, market data out."""
        streams, combined = self.initial_streams(ws.request.path)
        self._next_id += 1
        subs = Subscriptions(combined=combined, streams=dict.fromkeys(streams))
        session = Session(self, ws, self._next_id, subs, self.faults.connection(self._next_id))
        self.sessions.add(session)
        self.counters["connections"] += 1
        self._subscribe(session, streams)
        tasks = [asyncio.create_task(session.writer())]
        if self.limits.ping_interval:
            tasks.append(asyncio.create_task(
                session.pinger(self.limits.ping_interval, self.limits.ping_timeout)))
        try:
            await self._read(session)
        finally:
            session.closed = True
            self._unsubscribe(session, list(session.subs.streams))
            self.sessions.discard(session)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def initial_streams(self, path: str) -> tuple[list[str], bool]:
        """``(streams, combined)`` a connection subscribes by its path (Binance's URLs)."""
        return parse_ws_path(path) or ([], False)

    def corrupt(self, stream: str, frame: bytes) -> bytes:
        """The ``corrupt`` fault: Binance frames carry no checksum, so nothing to corrupt."""
        return frame

    async def _read(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for message in session.ws:
                self.counters["messages_received"] += 1
                if session.over_rate(loop.time()):
                    self.disconnects["rate_limit"] += 1
                    session.close_after_flush(1008, "Too many requests")
                    try:
                        await asyncio.wait_for(session.ws.wait_closed(), 5.0)
                    except TimeoutError:
                        session.kill("rate_limit_close_timeout")
                    return
                self._control(session, message)

    def _control(self, session: Session, message: str | bytes) -> None:
        result = handle_control(message, session.subs, self.is_valid, self.limits.max_streams)
        if result.is_subscribe:
            self.counters["subscribe_requests"] += 1
        self._subscribe(session, result.subscribe)
        self._unsubscribe(session, result.unsubscribe)
        session.enqueue(None, orjson.dumps(result.response))

    def _subscribe(self, session: Session, streams: list[str] | tuple[str, ...]) -> None:
        self.counters["subscribed_streams"] += len(streams)
        for stream in streams:
            self.subscribers.setdefault(stream, set()).add(session)

    def _unsubscribe(self, session: Session, streams: list[str] | tuple[str, ...]) -> None:
        for stream in streams:
            sessions = self.subscribers.get(stream)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self.subscribers[stream]

    def stats(self) -> dict:
        """Counters; ``frames_sent`` counts injected frames as ``!malformed`` / ``!oversized``."""
        return {
            "connections": {"total": self.counters["connections"], "open": len(self.sessions)},
            "subscribe_requests": self.counters["subscribe_requests"],
            "subscribed_streams": self.counters["subscribed_streams"],
            "messages_received": self.counters["messages_received"],
            "pings_sent": self.counters["pings_sent"],
            "pongs_received": self.counters["pongs_received"],
            "disconnects": dict(self.disconnects),
            "frames_sent": dict(self.frames_sent),
            "subscriptions": {s: len(v) for s, v in self.subscribers.items()},
        }
