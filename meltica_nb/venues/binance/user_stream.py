"""Binance user data stream: listenKey life cycle, execution reports, reconcile after a gap.

:meth:`BinanceUserStream.run` is a TaskGroup thread body. Each session:

1. ``POST /api/v3/userDataStream`` creates a listenKey; the websocket ``<ws_url>/ws/<key>``
   is opened (websocket-client, ``skip_utf8_validation=True``);
2. **reconcile**: every order the engine still considers open is queried by REST, and a state
   newer than the last delivered one is reported. Whatever happened while no stream was
   connected (before the first session, or during a disconnect) is recovered this way; the
   tracker drops every report it already delivered, so nothing is duplicated either;
3. frames are read: ``executionReport`` events become reports, ``listenKeyExpired`` ends the
   session, other account events (balances, positions) are counted and ignored, malformed
   frames are counted and passed to ``on_malformed``;
4. the key is kept alive by ``PUT`` every ``keepalive_s`` (Binance: 30 min; a key lives 60).

A disconnect, an expired key or a failed REST call ends the session; the next one starts
after a capped exponential backoff. On cancellation the socket is closed and the key deleted.
The listenKey is a credential too: it is never logged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import websocket

from meltica_nb.backoff import Backoff
from meltica_nb.concurrency import CancelToken
from meltica_nb.errors import MelticaError
from meltica_nb.exec_reports import VenueReport
from meltica_nb.venues.binance.config import BinanceConfig, redact
from meltica_nb.venues.binance.orders import BinanceOrders, report_from_execution

__all__ = ["BinanceUserStream", "UserStreamStats"]

_log = logging.getLogger("meltica_nb.venues.binance.user_stream")

_EXCERPT = 120


@dataclass(frozen=True)
class UserStreamStats:
    """Counters of the user data stream."""

    sessions: int
    disconnects: int
    reports: int
    other_events: int
    malformed: int
    keepalives: int
    reconciled: int
    errors: int
    connected: bool


class BinanceUserStream:
    """Follows one account's user data stream and reports its executions.

    Parameters
    ----------
    config : ws_url, timeouts and backoff; credentials for redaction.
    api : signed REST and listenKey requests.
    on_report : called with each VenueReport (returns whether it was new).
    reconcile : called after each connect; queries open orders, returns reports made.
    on_malformed : called with (detail, raw prefix) for a frame that is not a valid event.
    keepalive_s : interval of the listenKey keep-alive PUT.
    """

    def __init__(self, config: BinanceConfig, api: BinanceOrders,
                 on_report: Callable[[VenueReport], bool], reconcile: Callable[[], int],
                 on_malformed: Callable[[str, bytes], None], keepalive_s: float = 1800.0):
        self.config = config
        self.api = api
        self.on_report = on_report
        self.reconcile = reconcile
        self.on_malformed = on_malformed
        self.keepalive_s = keepalive_s
        self._ws: websocket.WebSocket | None = None
        self._n = dict.fromkeys(("sessions", "disconnects", "reports", "other_events",
                                 "malformed", "keepalives", "reconciled", "errors"), 0)

    def run(self, cancel: CancelToken) -> None:
        """Sessions until cancelled, with backoff between failed ones."""
        backoff = Backoff(self.config.backoff_policy, seed=self.config.backoff_seed)
        while not cancel.cancelled:
            if self._session(cancel):
                backoff.reset()
            if not cancel.cancelled:
                cancel.wait(backoff.next_delay())

    def _session(self, cancel: CancelToken) -> bool:
        """One listenKey + websocket; True if it got as far as reading."""
        key = None
        try:
            key = self.api.create_listen_key()
            self._ws = self._connect(key)
            self._n["sessions"] += 1
            self._n["reconciled"] += self.reconcile()
            self._read(key, cancel)
            return True
        except (MelticaError, websocket.WebSocketException, OSError) as exc:
            self._n["errors"] += 1
            _log.warning("binance user stream: %s", self._redact(f"{type(exc).__name__}: "
                                                                  f"{exc}", key))
            return False
        finally:
            self._close(key, cancel.cancelled)

    def _connect(self, key: str) -> websocket.WebSocket:
        ws = websocket.create_connection(f"{self.config.ws_url}/ws/{key}",
                                         timeout=self.config.connect_timeout_s,
                                         skip_utf8_validation=True)
        ws.settimeout(self.config.read_timeout_s)
        return ws

    def _read(self, key: str, cancel: CancelToken) -> None:
        """Read until cancelled, disconnected or the key expired."""
        next_keepalive = time.monotonic() + self.keepalive_s
        while not cancel.cancelled:
            if time.monotonic() >= next_keepalive:
                self.api.keepalive_listen_key(key)
                self._n["keepalives"] += 1
                next_keepalive = time.monotonic() + self.keepalive_s
            try:
                opcode, data = self._ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                self._n["disconnects"] += 1
                _log.info("binance user stream disconnected; reconnecting")
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._n["disconnects"] += 1
                return
            if opcode == websocket.ABNF.OPCODE_TEXT and self._on_frame(data) == "expired":
                _log.info("binance user stream: listenKey expired; starting a new one")
                return

    def _on_frame(self, data: bytes) -> str:
        try:
            event = orjson.loads(data)
            kind = event.get("e") if isinstance(event, dict) else None
            if kind == "executionReport":
                report = report_from_execution(event)
                self._n["reports"] += 1
                self.on_report(report)
                return "report"
        except (orjson.JSONDecodeError, MelticaError) as exc:
            self._n["malformed"] += 1
            self.on_malformed(f"{type(exc).__name__}: {exc}", data[:_EXCERPT])
            return "malformed"
        self._n["other_events"] += 1
        return "expired" if kind == "listenKeyExpired" else "other"

    def _close(self, key: str | None, delete_key: bool) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.close(timeout=0.5)
            ws.shutdown()
        if key is not None and delete_key:
            try:
                self.api.close_listen_key(key)
            except MelticaError as exc:
                _log.info("binance user stream: closing the listenKey failed: %s",
                          self._redact(str(exc), key))

    def _redact(self, text: str, key: str | None) -> str:
        text = redact(text, self.config.secrets())
        return text.replace(key, "***") if key else text

    @property
    def connected(self) -> bool:
        """True while a user-stream websocket is open."""
        return self._ws is not None

    def stats(self) -> UserStreamStats:
        """A snapshot of the counters."""
        return UserStreamStats(**self._n, connected=self.connected)
