"""One OKX v5 public websocket: the shared connection, OKX's messages.

:class:`OkxConnection` is a :class:`~meltica_nb.venues.ws_connection.WsConnection` (read its
docstring for the batching reader, paced control messages, liveness timer, capped-backoff
reconnects with full resubscription and error reporting), and says what OKX says:

* it dials ``<ws_url>/ws/v5/public``; a subscription is ``"<channel>:<instId>"``, sent as
  ``{"op":"subscribe","args":[{"channel":..,"instId":..}, ...]}``;
* OKX answers each arg with ``{"event":"subscribe","arg":{..}}`` (no request id): acks are
  matched to the oldest request of the same op, one arg at a time; ``{"event":"error",..}``
  is reported as ``subscribe_error``; market data frames start with ``{"arg":``;
* liveness is login-free text: after ``ping_interval_s`` of silence it sends ``ping`` and
  expects ``pong`` (any frame counts as alive);
* :meth:`OkxConnection.resubscribe` queues an unsubscribe then a subscribe of the same
  channels, at once or after a delay: the book layer asks for it after a checksum mismatch or
  a seqId gap (backing off when the fresh book fails again), and the new ``snapshot``
  restarts the book.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson
from websocket import ABNF

from meltica_nb.clock import Clock
from meltica_nb.venues.frame_arena import FrameArena
from meltica_nb.venues.okx.config import OkxConfig, subscription
from meltica_nb.venues.ws_connection import OnError, OnFrames, WsConnection
from meltica_nb.venues.ws_session import Session

__all__ = ["WS_PATH", "OkxConnection"]

WS_PATH = "/ws/v5/public"


class OkxConnection(WsConnection):
    """One OKX public websocket, run by :meth:`run` on a TaskGroup thread.

    Parameters are those of :class:`~meltica_nb.venues.ws_connection.WsConnection`, with an
    :class:`~meltica_nb.venues.okx.config.OkxConfig`.
    """

    LABEL = "okx"
    DATA_PREFIX = b'{"arg":'
    WS_PATH = WS_PATH

    def __init__(self, config: OkxConfig, on_frames: OnFrames, clock: Clock | None = None, *,
                 on_reconnect: Callable[[], None] | None = None,
                 on_error: OnError | None = None) -> None:
        super().__init__(config, on_frames, clock, on_reconnect=on_reconnect,
                         on_error=on_error)
        self._delayed: list[tuple[float, str]] = []  # (due, name) resubscriptions

    def resubscribe(self, names: Iterable[str], delay_s: float = 0.0) -> None:
        """Unsubscribe then subscribe again (a fresh snapshot), after ``delay_s`` seconds;
        wanted names only. Thread-safe; the connection thread sends it when due."""
        names = self._names(names)
        due = self._now() + delay_s
        with self._lock:
            self._delayed.extend((due, n) for n in names)

    def _check_name(self, name: object) -> None:
        subscription(name)

    def _tick(self, s: Session, now: float) -> str | None:
        """Queue the resubscriptions now due, then the usual timers and control messages."""
        with self._lock:
            due = tuple(dict.fromkeys(n for t, n in self._delayed
                                      if t <= now and n in self._desired))
            self._delayed = [(t, n) for t, n in self._delayed if t > now]
            if due:
                self._queue_locked("UNSUBSCRIBE", due)
                self._queue_locked("SUBSCRIBE", due)
        return super()._tick(s, now)

    def _send_ping(self, s: Session) -> None:
        """OKX's keep-alive: the text "ping" (answered "pong"), not a websocket ping frame."""
        s.ws.send("ping")

    def _send_request(self, s: Session, method: str, names: tuple[str, ...], msg_id: int) -> None:
        """``{"op": "subscribe", "args": [{"channel": .., "instId": ..}, ..]}``."""
        s.ws.send(orjson.dumps({"op": method.lower(), "args": [subscription(n) for n in names]}),
                  ABNF.OPCODE_TEXT)

    def _on_text(self, s: Session, data: bytes, batch: FrameArena) -> None:
        """``pong``, an event (ack, error, notice), or data the parser will judge."""
        if data == b"pong":
            return
        if data.startswith(b'{"event"'):
            try:
                msg = orjson.loads(data)
            except orjson.JSONDecodeError:
                self._report("protocol", f"event frame of {len(data)} bytes is not JSON", data)
                return
            self._on_event(s, msg, data)
            return
        batch.add(data, self._clock.now_ns())

    def _on_event(self, s: Session, msg: dict, data: bytes) -> None:
        event = msg.get("event")
        if event in ("subscribe", "unsubscribe"):
            msg_id = self._oldest(s, event.upper())
            if msg_id is None:
                self._report("unexpected_reply", f"{event} ack matches no request", data)
                return
            self._count_ack(s)
            self._settle_one(s, msg_id)
        elif event == "error":
            msg_id = self._oldest(s, None)
            if msg_id is not None:
                self._settle_one(s, msg_id)
            self._report("subscribe_error", f"OKX error {msg.get('code')}: {msg.get('msg')}",
                         data)
        else:
            self._report("unexpected_reply", f"OKX event {event!r}", data)

    @staticmethod
    def _oldest(s: Session, method: str | None) -> int | None:
        """The oldest pending request (of ``method``, any if None): OKX acks carry no id."""
        return next((i for i in sorted(s.pending) if method is None or s.pending[i][0] == method),
                    None)
