"""One Kraken websocket (v1 or v2): the shared batching reader, Kraken's control messages.

:class:`KrakenConnection` is a :class:`~meltica_nb.venues.ws_connection.WsConnection` (batches,
chunked reads, paced control messages, liveness, reconnect with capped exponential backoff and
resubscription, bad frames reported) speaking Kraken's control protocol:

* subscriptions are streams ``<channel>@<pair>`` (see :mod:`meltica_nb.venues.kraken.config`);
  one request per channel carries its pairs: v1
  ``{"event":"subscribe","pair":[..],"subscription":{"name":"book","depth":10},"reqid":n}``,
  v2 ``{"method":"subscribe","params":{"channel":"book","symbol":[..],"depth":10},
  "req_id":n}``; Kraken acks each pair separately (v1 ``subscriptionStatus``, v2
  ``{"method":"subscribe","success":..}``), so a request is settled after one ack per pair;
* keep-alive is Kraken's own ``{"event":"ping"}`` / ``{"method":"ping"}`` (answered by
  ``pong``); heartbeats, pongs and status messages are consumed here and only prove liveness;
* :meth:`KrakenConnection.resubscribe` unsubscribes and subscribes again, in that order: the
  answer to a subscribe is a fresh book snapshot (the cure for a checksum mismatch).

Market data frames (v1 arrays, v2 ``{"channel": ...}`` objects) go to ``on_frames`` untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson
from websocket import ABNF

from meltica_nb.clock import Clock
from meltica_nb.errors import ConfigError
from meltica_nb.venues.frame_arena import FrameArena
from meltica_nb.venues.kraken.config import CHANNELS, KrakenConfig, split_stream
from meltica_nb.venues.ws_connection import OnError, OnFrames, WsConnection
from meltica_nb.venues.ws_session import Session

__all__ = ["KrakenConnection"]

_V2_DATA = b'{"channel":"'
_V2_QUIET = (b'{"channel":"heartbeat"', b'{"channel":"status"')
_V1_QUIET = frozenset({"heartbeat", "pong", "systemStatus"})
_METHODS = {"SUBSCRIBE": "subscribe", "UNSUBSCRIBE": "unsubscribe"}


class KrakenConnection(WsConnection):
    """One Kraken websocket, run by :meth:`run` on a TaskGroup thread (see the module doc).

    Parameters are those of :class:`~meltica_nb.venues.ws_connection.WsConnection`;
    ``config.ws_url`` is dialled as is and ``config.streams()`` subscribed at start.
    """

    LABEL = "kraken"
    DATA_PREFIX = b"["  # v1 market data; v2 data frames are told from heartbeats in _on_text

    def __init__(self, config: KrakenConfig, on_frames: OnFrames, clock: Clock | None = None,
                 *, on_reconnect: Callable[[], None] | None = None,
                 on_error: OnError | None = None) -> None:
        super().__init__(config, on_frames, clock, on_reconnect=on_reconnect,
                         on_error=on_error)
        self._version = config.version
        self._depth = config.book_depth

    def resubscribe(self, streams: Iterable[str]) -> None:
        """Unsubscribe then subscribe ``streams`` again (a fresh snapshot); thread-safe."""
        names = tuple(streams)
        self.unsubscribe(names)
        self.subscribe(names)

    def _check_name(self, name: object) -> None:
        channel, pair = split_stream(name) if isinstance(name, str) else ("", "")
        if channel not in CHANNELS or not pair.isprintable() or " " in pair or not pair:
            raise ConfigError(f"not a Kraken stream name (<channel>@<pair>): {name!r}")

    # -- requests -------------------------------------------------------------------------------

    def _send_request(self, s: Session, method: str, names: tuple[str, ...], msg_id: int) -> None:
        """One message per channel, every message under ``msg_id``."""
        by_channel: dict[str, list[str]] = {}
        for name in names:
            channel, pair = split_stream(name)
            by_channel.setdefault(channel, []).append(pair)
        for channel, pairs in by_channel.items():
            s.ws.send(orjson.dumps(self._request(_METHODS[method], channel, pairs, msg_id)),
                      ABNF.OPCODE_TEXT)

    def _request(self, verb: str, channel: str, pairs: list[str], msg_id: int) -> dict:
        options = {"depth": self._depth} if channel == "book" else {}
        if self._version == 1:
            return {"event": verb, "pair": pairs, "subscription": {"name": channel, **options},
                    "reqid": msg_id}
        return {"method": verb, "params": {"channel": channel, "symbol": pairs, **options},
                "req_id": msg_id}

    def _send_ping(self, s: Session) -> None:
        msg_id = self._next_id
        self._next_id += 1
        ping = ({"event": "ping", "reqid": msg_id} if self._version == 1
                else {"method": "ping", "req_id": msg_id})
        s.ws.send(orjson.dumps(ping), ABNF.OPCODE_TEXT)

    # -- replies --------------------------------------------------------------------------------

    def _on_text(self, s: Session, data: bytes, batch: FrameArena) -> None:
        """Market data to the batch; acks settle requests; heartbeats and pongs end here."""
        if data.startswith(_V2_DATA) and not data.startswith(_V2_QUIET):
            batch.add(data, self._clock.now_ns())
            return
        if data.startswith(_V2_QUIET):
            return
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._report("protocol", f"text frame of {len(data)} bytes is not JSON", data)
            return
        if not isinstance(msg, dict) or not self._on_control(s, msg, data):
            batch.add(data, self._clock.now_ns())  # not ours to judge: the parser counts it

    def _on_control(self, s: Session, msg: dict, data: bytes) -> bool:
        """Handle a control message; False when it is none."""
        event, method = msg.get("event"), msg.get("method")
        if event in _V1_QUIET or method == "pong":
            return True
        if event == "subscriptionStatus":
            error = msg.get("errorMessage") if msg.get("status") == "error" else None
            self._on_ack(s, msg.get("reqid"), error, data)
            return True
        if method in ("subscribe", "unsubscribe"):
            error = None if msg.get("success") else msg.get("error", "refused")
            self._on_ack(s, msg.get("req_id"), error, data)
            return True
        if event == "error" or (method is not None and msg.get("success") is False):
            self._report("unexpected_reply", f"error reply: {msg.get('errorMessage') or msg}",
                         data)
            return True
        return False

    def _on_ack(self, s: Session, req_id: object, error: object, data: bytes) -> None:
        if not isinstance(req_id, int) or req_id not in s.pending:
            self._report("unexpected_reply", f"ack req_id={req_id!r} matches no request", data)
            return
        self._count_ack(s)
        method, _, _ = self._settle_one(s, req_id)
        if error is not None:
            self._report("subscribe_error", f"{method} req_id={req_id} refused: {error}", data)
