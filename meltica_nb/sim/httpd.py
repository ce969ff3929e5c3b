"""A small HTTP/1.1 server (keep-alive) on the simulator's event loop for the REST endpoints.

Just enough HTTP for REST clients: request line, headers, a body (the form parameters of signed
requests), keep-alive unless the client asks to close (HTTP/1.0 closes unless it asks to keep
alive). Every answer is JSON from :class:`~meltica_nb.sim.binance.RestApi`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from http import HTTPStatus

from meltica_nb.sim.binance import RestApi, RestResponse

__all__ = ["HttpServer"]

_MAX_HEADERS = 100


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def render(response: RestResponse, keep_alive: bool, head: bool = False) -> bytes:
    """The bytes of one HTTP/1.1 response."""
    lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}",
             "Content-Type: application/json;charset=UTF-8",
             f"Content-Length: {len(response.body)}",
             f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + response.body


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return None


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


class HttpServer:
    """Serves a :class:`RestApi` on a listening socket; tracks connections for a clean stop."""

    def __init__(self, api: RestApi) -> None:
        self.api = api
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._client, sock=sock)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # close() ends idle keep-alive connections; finishing normally keeps Python 3.11's
            # start_server callback from logging the cancellation as an error.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; True to keep the connection open."""
        line = await reader.readline()
        if not line:
            return False
        parts = line.decode("latin-1").split()
        headers = await _read_headers(reader)
        if len(parts) != 3 or headers is None:
            writer.write(render(RestResponse(400, b'{"code":-1,"msg":"Bad request"}'), False))
            await writer.drain()
            return False
        method, target, version = parts
        length = headers.get("content-length", "0")
        body = b""
        if length.isdigit() and int(length):
            body = await reader.readexactly(int(length))
        keep = _keep_alive(version, headers)
        response = self.api.handle(method.upper(), target, body, headers)
        writer.write(render(response, keep, head=method.upper() == "HEAD"))
        await writer.drain()
        return keep

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
