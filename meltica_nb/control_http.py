"""ControlHttp: the Control Bus over loopback HTTP, for operators (``meltica run --control-port``).

Endpoints (JSON bodies; ``consumer`` names the consumer the command is for)::

    POST   /subscribe       {"consumer": "tape", "instruments": ["ETH-USDT"], "events": [...]}
    POST   /unsubscribe     same fields as /subscribe
    POST   /trading-mode    {"consumer": "strat", "enabled": true}
    POST   /orders          {"consumer": "strat", "client_order_id": "a1", "instrument":
                             "BTC-USDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
                             "price": "60000"}
    GET    /orders/<client_order_id>?consumer=strat     QueryOrder
    DELETE /orders/<client_order_id>?consumer=strat     CancelOrder

Answers: **202** with the ack when the command succeeded, **409** with the ack when it failed
(suppressed, duplicate, invalid, refused by the venue...), **400** for a body that is not a JSON
object, **401** without the right ``Authorization: Bearer <token>``, **404** for an unknown
path, **405** for a wrong method, **503** while the engine is not running. Every request needs
the token: from ``MELTICA_CONTROL_TOKEN``, a file named by ``MELTICA_CONTROL_TOKEN_FILE``, or
generated and printed once to stderr. The server binds 127.0.0.1 only and runs on a TaskGroup
thread; it handles one request at a time, as the bus applies one command at a time anyway.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from .concurrency import CancelToken, TaskGroup
from .control_bus import ControlAck, ControlBus
from .errors import ConfigError

__all__ = ["TOKEN_ENV", "ControlHttp", "ack_json", "control_token"]

TOKEN_ENV = "MELTICA_CONTROL_TOKEN"
_HOST = "127.0.0.1"
_MAX_BODY = 64 * 1024
_CLIENT_TIMEOUT_S = 5.0
_POST_COMMANDS = {"/subscribe": "Subscribe", "/unsubscribe": "Unsubscribe",
                  "/trading-mode": "SetTradingMode", "/orders": "SubmitOrder"}
_ORDER_COMMANDS = {"GET": "QueryOrder", "DELETE": "CancelOrder"}


def control_token(environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """(token, generated): from the environment or its file, else a new random one."""
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    path = env.get(f"{TOKEN_ENV}_FILE", "").strip()
    if not token and path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {TOKEN_ENV}_FILE {path!r}: {exc.strerror}") from None
    if token:
        return token, False
    return secrets.token_urlsafe(24), True


def ack_json(ack: ControlAck) -> bytes:
    """The JSON answer for an ack (error code by name, the order state as an object)."""
    body = {"status": "ok" if ack.success else "error", "command_id": ack.command_id,
            "command": ack.command, "consumer": ack.consumer, "success": ack.success,
            "routing_version": ack.routing_version, "error": ack.error,
            "error_code": ack.error_code.name, "venue_code": ack.venue_code,
            "result": None if ack.result is None else dataclasses.asdict(ack.result)}
    if ack.error_code.name == "TRADING_DISABLED":
        body["status"] = "suppressed"
    return orjson.dumps(body)


class ControlHttp:
    """The facade's server; ``start()`` binds and serves, ``stop()`` ends it.

    Parameters
    ----------
    bus : the engine's Control Bus.
    available : True while commands may be applied (the engine runs); else 503.
    port : TCP port on 127.0.0.1; 0 picks a free one (see :attr:`port` after start).
    token : the bearer token; from :func:`control_token` (printed if generated) when None.
    """

    def __init__(self, bus: ControlBus, available: Callable[[], bool], port: int = 0,
                 token: str | None = None):
        if token is None:
            token, generated = control_token()
            if generated:
                print(f"meltica: control token {token}", file=sys.stderr, flush=True)
        self.bus = bus
        self.available = available
        self._token = token.encode()
        self._requested_port = port
        self._server: HTTPServer | None = None
        self._group: TaskGroup | None = None
        self.requests = 0

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        return self._server.server_address[1] if self._server is not None else 0

    def start(self) -> ControlHttp:
        """Bind 127.0.0.1 and serve on a TaskGroup thread."""
        self._server = HTTPServer((_HOST, self._requested_port), _handler(self))
        self._server.timeout = 0.05
        self._group = TaskGroup("control-http")
        self._group.start(self._serve, name="control-http")
        print(f"meltica: control API on http://{_HOST}:{self.port}", file=sys.stderr, flush=True)
        return self

    def _serve(self, cancel: CancelToken) -> None:
        while not cancel.cancelled:
            self._server.handle_request()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port."""
        if self._group is not None:
            self._group.stop(timeout)
            self._group = None
        if self._server is not None:
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ControlHttp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def authorized(self, header: str | None) -> bool:
        """Whether ``Authorization`` carries the token (constant-time comparison)."""
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                                  self._token)

    def route(self, method: str, target: str, body: bytes) -> tuple[int, bytes]:
        """(status, JSON body) for one authorized request."""
        url = urlsplit(target)
        if url.path in _POST_COMMANDS:
            if method != "POST":
                return 405, _error("use POST")
            return self._command(_POST_COMMANDS[url.path], body)
        if url.path.startswith("/orders/") and len(url.path) > len("/orders/"):
            if method not in _ORDER_COMMANDS:
                return 405, _error("use GET (query) or DELETE (cancel)")
            consumer = parse_qs(url.query).get("consumer", [""])[0]
            client_id = unquote(url.path[len("/orders/"):])
            return self._apply({"type": _ORDER_COMMANDS[method], "consumer": consumer,
                                "payload": {"client_order_id": client_id}})
        return 404, _error(f"no endpoint {url.path}")

    def _command(self, name: str, body: bytes) -> tuple[int, bytes]:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, _error("invalid request payload: not JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("consumer"), str):
            return 400, _error("invalid request payload: a JSON object with a 'consumer' "
                               "name is required")
        consumer = payload.pop("consumer")
        return self._apply({"type": name, "consumer": consumer, "payload": payload})

    def _apply(self, command: dict) -> tuple[int, bytes]:
        if not self.available():
            return 503, _error("the control bus is unavailable: the engine is not running")
        ack = self.bus.send(command)
        return (202 if ack.success else 409), ack_json(ack)


def _error(message: str) -> bytes:
    return orjson.dumps({"status": "error", "error": message})


def _handler(server: ControlHttp) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``server``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = _CLIENT_TIMEOUT_S  # a client that stalls mid-request cannot hold the server

        def _handle(self) -> None:
            server.requests += 1
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit() or int(length) > _MAX_BODY:
                self.close_connection = True  # the unread body must not become a request
                self._reply(400, _error(f"Content-Length must be 0..{_MAX_BODY}"))
                return
            length = int(length)
            body = self.rfile.read(length) if length else b""
            if not server.authorized(self.headers.get("Authorization")):
                self._reply(401, _error("missing or wrong bearer token"))
                return
            self._reply(*server.route(self.command, self.path, body))

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            """Quiet: requests are counted, not logged (bodies may hold order details)."""

    return Handler
