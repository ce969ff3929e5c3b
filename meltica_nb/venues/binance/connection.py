"""One Binance combined-stream websocket: the shared connection, Binance's messages.

:class:`BinanceConnection` is a :class:`~meltica_nb.venues.ws_connection.WsConnection` (read its
docstring for the batching reader, pacing, liveness and reconnects) that dials
``<ws_url>/stream``, names streams ``<symbol>@<channel>``, subscribes with
``{"method":"SUBSCRIBE","params":[..],"id":n}``, matches each reply to its request by ``id``
and keeps alive with websocket ping frames. Combined-stream events start with ``{"stream":``
and go to ``on_frames`` unread; any other text frame that is not a reply is passed on too, for
the parser to judge.
"""

from __future__ import annotations

import orjson
from websocket import ABNF

from meltica_nb.errors import ConfigError
from meltica_nb.venues.frame_arena import FrameArena
from meltica_nb.venues.ws_connection import WsConnection
from meltica_nb.venues.ws_session import Session

__all__ = ["BinanceConnection"]


class BinanceConnection(WsConnection):
    """One combined-stream websocket to Binance, run by :meth:`run` on a TaskGroup thread.

    Parameters are those of :class:`~meltica_nb.venues.ws_connection.WsConnection`, with a
    :class:`~meltica_nb.venues.binance.config.BinanceConfig`.
    """

    LABEL = "binance"
    DATA_PREFIX = b'{"stream":'
    WS_PATH = "/stream"

    def _check_name(self, name: object) -> None:
        if not isinstance(name, str) or "@" not in name or not name.isprintable() or " " in name:
            raise ConfigError(f"not a Binance stream name: {name!r}")

    def _send_request(self, s: Session, method: str, names: tuple[str, ...], msg_id: int
                      ) -> None:
        """``{"method": "SUBSCRIBE", "params": [..], "id": n}``."""
        payload = orjson.dumps({"method": method, "params": names, "id": msg_id})
        s.ws.send(payload, ABNF.OPCODE_TEXT)

    def _on_text(self, s: Session, data: bytes, batch: FrameArena) -> None:
        """A text frame that is not a combined-stream event: a reply, or passed on as data."""
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._report("protocol", f"text frame of {len(data)} bytes is not JSON", data)
            return
        if isinstance(msg, dict) and "id" in msg and ("result" in msg or "error" in msg):
            self._on_reply(s, msg, data)
        else:
            batch.add(data, self._clock.now_ns())

    def _on_reply(self, s: Session, msg: dict, data: bytes) -> None:
        request = s.pending.pop(msg["id"], None) if isinstance(msg["id"], int) else None
        if request is None:
            self._report("unexpected_reply", f"reply id={msg['id']!r} matches no request", data)
            return
        self._count_ack(s)
        if msg.get("error") is not None:
            method, count, _ = request
            self._report("subscribe_error",
                         f"{method} id={msg['id']} ({count} streams) refused: {msg['error']}", data)
