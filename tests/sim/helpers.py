"""Client-side helpers for the simulator tests: real sockets, websocket-client and urllib."""

from __future__ import annotations

import contextlib
import http.client
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import orjson
import websocket

from meltica_nb.sim.auth import sign


def connect(sim, path: str, timeout: float = 5.0) -> websocket.WebSocket:
    """A websocket-client connection to ``sim.ws_url + path`` (as the engine opens them)."""
    return websocket.create_connection(sim.ws_url + path, timeout=timeout,
                                       skip_utf8_validation=True)


@contextlib.contextmanager
def ws_client(sim, path: str, timeout: float = 5.0):
    ws = connect(sim, path, timeout)
    try:
        yield ws
    finally:
        close(ws)


def close(ws: websocket.WebSocket) -> None:
    """Close and release the socket (websocket-client's close() alone keeps the socket open
    when the server closed first)."""
    with contextlib.suppress(Exception):
        ws.close(timeout=0.5)
    ws.shutdown()


def assert_closed(ws: websocket.WebSocket, pending: int = 10) -> None:
    """The server ends the connection within ``pending`` more frames: a close frame (recv
    gives '') or a dropped socket."""
    with contextlib.suppress(websocket.WebSocketConnectionClosedException, ConnectionError):
        for _ in range(pending):
            if ws.recv() == "":
                return
        raise AssertionError(f"still open after {pending} frames")


def recv_json(ws: websocket.WebSocket):
    return orjson.loads(ws.recv())


def send_json(ws: websocket.WebSocket, obj) -> None:
    ws.send(orjson.dumps(obj).decode())


def recv_reply(ws: websocket.WebSocket, req_id, limit: int = 10_000):
    """Skip market data until the control reply with ``id == req_id``."""
    for _ in range(limit):
        msg = recv_json(ws)
        if isinstance(msg, dict) and "id" in msg and msg.get("id") == req_id and (
                "result" in msg or "error" in msg):
            return msg
    raise AssertionError(f"no reply with id {req_id}")


def get(url: str, conn: http.client.HTTPConnection | None = None):
    """GET ``url``: (status, headers dict lower-cased, parsed JSON body)."""
    parts = urlsplit(url)
    own = conn is None
    conn = conn or http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, orjson.loads(body)
    finally:
        if own:
            conn.close()


class ClientBook:
    """A book kept by Binance's documented procedure (snapshot + diffs), prices as strings."""

    def __init__(self, snapshot: dict) -> None:
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.update_id = snapshot["lastUpdateId"]

    def apply(self, event: dict) -> bool:
        """Apply one diff; False if stale. A gap raises (the test wants none)."""
        if event["u"] <= self.update_id:
            return False
        assert event["U"] <= self.update_id + 1, f"gap: book {self.update_id}, U {event['U']}"
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for price, qty in event[key]:
                if Decimal(qty):
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.update_id = event["u"]
        return True

    def top(self, depth: int) -> dict:
        bids = sorted(self.bids, key=Decimal, reverse=True)[:depth]
        asks = sorted(self.asks, key=Decimal)[:depth]
        return {"bids": [[p, self.bids[p]] for p in bids],
                "asks": [[p, self.asks[p]] for p in asks]}


class SignedClient:
    """Signs requests as Binance's client libraries do (HMAC-SHA256 over the sent parameters),
    on one keep-alive HTTP connection to the simulator."""

    def __init__(self, sim, api_key: str | None = None, api_secret: str | None = None) -> None:
        self.api_key = api_key if api_key is not None else sim.credentials.api_key
        self.api_secret = api_secret if api_secret is not None else sim.credentials.api_secret
        self.clock = sim.clock
        self.conn = http.client.HTTPConnection("127.0.0.1", sim.rest_port, timeout=5)

    def raw(self, method: str, target: str, body: str = "", api_key: str | None = ""):
        """Send exactly ``target`` and ``body``: (status, parsed JSON)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        key = self.api_key if api_key == "" else api_key
        if key is not None:
            headers["X-MBX-APIKEY"] = key
        self.conn.request(method, target, body=body.encode() or None, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, orjson.loads(resp.read())

    def signed(self, method: str, path: str, params: dict | None = None, *,
               in_body: bool = False, timestamp: int | None = None, secret: str | None = None,
               api_key: str | None = ""):
        """A SIGNED request: ``timestamp`` added (the simulator's time by default), signed."""
        values = dict(params or {})
        values.setdefault("timestamp", timestamp if timestamp is not None
                          else self.clock.now_ns() // 1_000_000)
        text = urlencode(values)
        text += "&signature=" + sign(secret or self.api_secret, text)
        if in_body:
            return self.raw(method, path, text, api_key)
        return self.raw(method, f"{path}?{text}", "", api_key)

    def close(self) -> None:
        self.conn.close()


def next_report(ws: websocket.WebSocket, limit: int = 100) -> dict:
    """The next ``executionReport`` of a user data stream (balance events skipped)."""
    for _ in range(limit):
        event = recv_json(ws)
        if event.get("e") == "executionReport":
            return event
    raise AssertionError(f"no executionReport in {limit} events")


def user_events(ws: websocket.WebSocket, until, limit: int = 1000) -> list[dict]:
    """The ``executionReport`` events of a user data stream until ``until(event)`` is true
    (that one included); balance events are skipped."""
    events: list[dict] = []
    for _ in range(limit):
        events.append(next_report(ws))
        if until(events[-1]):
            return events
    raise AssertionError(f"no final event in {limit}: {events[-3:]}")
