"""Small scripted Binance-like servers on 127.0.0.1 for the connection and REST tests.

:class:`WsServer` speaks just enough RFC 6455 by hand (handshake, frames, ping/pong, close)
to let a test drop sockets, split frames, refuse handshakes, withhold pongs and time every
control message it receives. :class:`RestServer` is an ``http.server`` with keep-alive whose
responses are scripted per request. Both join every thread they started in ``stop()``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable

import orjson

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A server-to-client (unmasked) websocket frame."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes([first, n])
    elif n < 1 << 16:
        header = bytes([first, 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, 127]) + struct.pack("!Q", n)
    return header + payload


def stream_frame(stream: str, data: dict) -> bytes:
    """The text payload of one combined-stream event."""
    return orjson.dumps({"stream": stream, "data": data})


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    b1, b2 = _recv_exact(sock, 2)
    n = b2 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _recv_exact(sock, 8))[0]
    mask = _recv_exact(sock, 4) if b2 & 0x80 else b"\0\0\0\0"
    data = _recv_exact(sock, n)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big") if n else 0
    payload = (int.from_bytes(data, "big") ^ key).to_bytes(n, "big") if n else b""
    return b1 & 0x0F, payload


class WsConn:
    """The server side of one accepted websocket."""

    def __init__(self, server: WsServer, sock: socket.socket, index: int, path: str):
        self.server = server
        self.sock = sock
        self.index = index
        self.path = path
        self.opened = time.monotonic()
        self.pings: list[bytes] = []  # pings the client sent us
        self.pongs: list[bytes] = []  # pongs the client sent us
        self.subscribed: set[str] = set()
        self.client_closed = False  # the client sent a close frame
        self.closed = threading.Event()
        self._send_lock = threading.Lock()

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def send_text(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.send_raw(encode_frame(TEXT, data))

    def send_binary(self, payload: bytes) -> None:
        self.send_raw(encode_frame(BINARY, payload))

    def send_ping(self, payload: bytes) -> None:
        self.send_raw(encode_frame(PING, payload))

    def send_close(self, code: int = 1000, reason: bytes = b"") -> None:
        self.send_raw(encode_frame(CLOSE, struct.pack("!H", code) + reason))

    def drop(self) -> None:
        """Cut the TCP connection without a close frame."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _handle(self, opcode: int, payload: bytes) -> bool:
        """React to one client frame; False ends the connection."""
        if opcode == TEXT:
            self._on_control(orjson.loads(payload))
        elif opcode == PING:
            self.pings.append(payload)
            if self.server.answer_pings:
                self.send_raw(encode_frame(PONG, payload))
        elif opcode == PONG:
            self.pongs.append(payload)
        elif opcode == CLOSE:
            self.client_closed = True
            with contextlib.suppress(OSError):
                self.send_raw(encode_frame(CLOSE, payload[:2]))
            return False
        self.server.notify()
        return True

    def _on_control(self, msg: dict) -> None:
        self.server.record_control(self.index, msg)
        params = msg.get("params", [])
        if msg.get("method") == "SUBSCRIBE":
            self.subscribed.update(params)
        elif msg.get("method") == "UNSUBSCRIBE":
            self.subscribed.difference_update(params)
        if self.server.ack_error:
            self.send_text(orjson.dumps({"error": {"code": 2, "msg": "Invalid request"},
                                         "id": msg["id"]}))
        elif self.server.ack:
            self.send_text(orjson.dumps({"result": None, "id": msg["id"]}))

    def serve(self) -> None:
        try:
            while self._handle(*_read_frame(self.sock)):
                pass
        except (EOFError, OSError):
            pass
        finally:
            self.closed.set()
            self.sock.close()
            self.server.notify()


class WsServer:
    """A scripted websocket server on 127.0.0.1.

    Parameters
    ----------
    ack : reply ``{"result": null, "id": ...}`` to each control message.
    ack_error : reply with an error instead.
    answer_pings : answer the client's pings with pongs.
    reject_first : answer this many handshakes with HTTP 503 before accepting.
    """

    def __init__(self, *, ack: bool = True, ack_error: bool = False, answer_pings: bool = True,
                 reject_first: int = 0):
        self.ack = ack
        self.ack_error = ack_error
        self.answer_pings = answer_pings
        self.reject_first = reject_first
        self.attempts: list[float] = []  # monotonic time of every accepted TCP connection
        self.conns: list[WsConn] = []
        self._socks: list[socket.socket] = []
        self.control: list[tuple[float, int, dict]] = []  # (recv time, conn index, message)
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stopping = False
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> WsServer:
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopping = True
        for sock in list(self._socks):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for t in list(self._threads):
            t.join(5)
        self._listener.close()

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def record_control(self, index: int, msg: dict) -> None:
        with self._cond:
            self.control.append((time.monotonic(), index, msg))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> bool:
        with self._cond:
            return bool(self._cond.wait_for(predicate, timeout))

    def conn(self, index: int, timeout: float = 5.0) -> WsConn:
        assert self.wait_for(lambda: len(self.conns) > index, timeout), (
            f"no connection #{index} within {timeout} s ({len(self.conns)} so far)")
        return self.conns[index]

    def controls(self, index: int | None = None) -> list[dict]:
        with self._cond:
            return [m for _, i, m in self.control if index is None or i == index]

    def subscribed_streams(self, index: int) -> list[str]:
        return [s for m in self.controls(index) if m["method"] == "SUBSCRIBE"
                for s in m["params"]]

    def _spawn(self, fn: Callable, *args: object) -> None:
        t = threading.Thread(target=fn, args=args, name=f"ws-loopback:{fn.__name__}")
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.attempts.append(time.monotonic())
            self._socks.append(sock)
            self._spawn(self._handshake, sock)

    def _handshake(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        request = b""
        while b"\r\n\r\n" not in request:
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                sock.close()
                return
            request += chunk
        lines = request.split(b"\r\n")
        path = lines[0].split()[1].decode()
        headers = dict(line.split(b": ", 1) for line in lines[1:] if b": " in line)
        headers = {k.lower(): v for k, v in headers.items()}
        with self._cond:
            reject = self.reject_first > 0
            self.reject_first -= reject
        if reject:
            sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            sock.close()
            self.notify()
            return
        accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + _GUID).digest())
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        with self._cond:
            conn = WsConn(self, sock, len(self.conns), path)
            self.conns.append(conn)
            self._cond.notify_all()
        conn.serve()

    def __enter__(self) -> WsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.owner.connections.append(self.client_address[1])

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        owner.record(self.path, dict(self.headers.items()), self.client_address[1])
        status, headers, body, delay = owner.next_response(self.path)
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if owner.close_after_response:
            self.close_connection = True  # closes without telling the client (no header)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = False  # joined by server_close()
    block_on_close = True
    owner: RestServer

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out and left is part of the script


class RestServer:
    """A scripted keep-alive HTTP server on 127.0.0.1.

    ``script`` holds ``(status, headers, body, delay_s)`` answers consumed one per request;
    when it is empty, ``default`` answers. ``close_after_response`` closes each connection
    after its response without a ``Connection: close`` header (the idle keep-alive race).
    """

    def __init__(self) -> None:
        self.script: deque[tuple[int, dict[str, str], bytes, float]] = deque()
        self.default: tuple[int, dict[str, str], bytes, float] = (200, {}, b"{}", 0.0)
        self.routes: dict[str, tuple[int, dict[str, str], bytes, float]] = {}
        self.close_after_response = False
        self.requests: list[tuple[float, str, dict[str, str], int]] = []
        self.connections: list[int] = []  # client port of every accepted TCP connection
        self._lock = threading.Lock()
        self._httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="rest-loopback")

    def add(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None,
            delay: float = 0.0) -> None:
        self.script.append((status, headers or {}, body, delay))

    def record(self, path: str, headers: dict[str, str], port: int) -> None:
        with self._lock:
            self.requests.append((time.monotonic(), path, headers, port))

    def next_response(self, path: str) -> tuple[int, dict[str, str], bytes, float]:
        with self._lock:
            if self.script:
                return self.script.popleft()
            return self.routes.get(path.split("?")[0], self.default)

    @property
    def paths(self) -> list[str]:
        return [p for _, p, _, _ in self.requests]

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._thread.join(5)
        self._httpd.server_close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
