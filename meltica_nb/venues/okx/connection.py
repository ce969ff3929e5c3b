"""One OKX v5 public websocket: the Binance connection's session machinery, OKX's messages.

:class:`OkxConnection` runs the same batching reader, paced control messages, liveness timer,
capped-backoff reconnects with full resubscription and error reporting as
:class:`~meltica_nb.venues.binance.connection.BinanceConnection` (read its docstring), and
differs where OKX differs:

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

from collections.abc import Iterable

import orjson
from websocket import ABNF

from meltica_nb.errors import ConfigError
from meltica_nb.venues.binance.connection import BinanceConnection
from meltica_nb.venues.okx.config import subscription

__all__ = ["WS_PATH", "OkxConnection"]

WS_PATH = "/ws/v5/public"


def _subscription_names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise ConfigError("pass an iterable of subscriptions, not one string")
    out = tuple(dict.fromkeys(names))
    for name in out:
        subscription(name)
    return out


class OkxConnection(BinanceConnection):
    """One OKX public websocket, run by :meth:`run` on a TaskGroup thread.

    Same parameters as :class:`~meltica_nb.venues.binance.connection.BinanceConnection`, with
    an :class:`~meltica_nb.venues.okx.config.OkxConfig`.
    """

    LABEL = "okx"
    DATA_PREFIX = b'{"arg":'
    _stream_names = staticmethod(_subscription_names)

    def __init__(self, config, on_frames, clock=None, *, on_reconnect=None, on_error=None):
        super().__init__(config, on_frames, clock, on_reconnect=on_reconnect,
                         on_error=on_error)
        self._url = f"{config.ws_url}{WS_PATH}"
        self._delayed: list[tuple[float, str]] = []  # (due, name) resubscriptions

    def resubscribe(self, names: Iterable[str], delay_s: float = 0.0) -> None:
        """Unsubscribe then subscribe again (a fresh snapshot), after ``delay_s`` seconds;
        wanted names only. Thread-safe; the connection thread sends it when due."""
        names = self._stream_names(names)
        due = self._now() + delay_s
        with self._lock:
            self._delayed.extend((due, n) for n in names)

    def _tick(self, s, now: float) -> str | None:
        """Queue the resubscriptions now due, then the usual timers and control messages."""
        with self._lock:
            due = tuple(dict.fromkeys(n for t, n in self._delayed
                                      if t <= now and n in self._desired))
            self._delayed = [(t, n) for t, n in self._delayed if t > now]
            if due:
                self._queue_locked("UNSUBSCRIBE", due)
                self._queue_locked("SUBSCRIBE", due)
        return super()._tick(s, now)

    def _send_ping(self, s) -> None:
        """OKX's keep-alive: the text "ping" (answered "pong"), not a websocket ping frame."""
        s.ws.send("ping")

    def _send_request(self, s, method: str, names: tuple[str, ...], msg_id: int) -> None:
        """``{"op": "subscribe", "args": [{"channel": .., "instId": ..}, ..]}``."""
        s.ws.send(orjson.dumps({"op": method.lower(), "args": [subscription(n) for n in names]}),
                  ABNF.OPCODE_TEXT)

    def _on_text(self, s, data: bytes, frames: list[bytes], recv_ns: list[int]) -> None:
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
        frames.append(data)
        recv_ns.append(self._clock.now_ns())

    def _on_event(self, s, msg: dict, data: bytes) -> None:
        event = msg.get("event")
        if event in ("subscribe", "unsubscribe"):
            if not self._answer(s, event.upper()):
                self._report("unexpected_reply", f"{event} ack matches no request", data)
                return
            self._acks += 1
            s.healthy = True
        elif event == "error":
            self._answer(s, None)
            self._report("subscribe_error", f"OKX error {msg.get('code')}: {msg.get('msg')}",
                         data)
        else:
            self._report("unexpected_reply", f"OKX event {event!r}", data)

    @staticmethod
    def _answer(s, method: str | None) -> bool:
        """One arg of the oldest pending request (of ``method``, any if None) answered."""
        for msg_id in sorted(s.pending):
            name, count, sent = s.pending[msg_id]
            if method is None or name == method:
                if count > 1:
                    s.pending[msg_id] = (name, count - 1, sent)
                else:
                    del s.pending[msg_id]
                return True
        return False
