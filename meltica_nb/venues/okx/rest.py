"""OKX REST: the one public call the feed needs, ``GET /api/v5/public/instruments``.

The instrument list gives each instId's ``tickSz`` and ``lotSz``, hence the fixed-point
exponents of its prices and sizes (:mod:`meltica_nb.venues.okx.symbols`). The feed calls it
once, from ``prepare()``. 429 and 5xx answers and transport failures are retried with the
config's capped exponential backoff, at most ``rest_max_retries`` times; other 4xx raise
:class:`~meltica_nb.errors.RequestRejected` at once.
"""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlencode, urlsplit

from meltica_nb.backoff import Backoff
from meltica_nb.errors import ConnectError, RateLimited, RequestRejected, VenueUnavailable
from meltica_nb.venues.okx.config import OkxConfig

__all__ = ["INSTRUMENTS_PATH", "fetch_instruments"]

INSTRUMENTS_PATH = "/api/v5/public/instruments"


def _get_once(config: OkxConfig, target: str) -> tuple[int, bytes]:
    parts = urlsplit(config.rest_url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=config.rest_timeout_s)
    try:
        conn.request("GET", target, headers={"Accept": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def fetch_instruments(config: OkxConfig, sleep=time.sleep) -> bytes:
    """The instruments answer (bytes) for ``config.inst_type``; raises a VenueError."""
    target = f"{INSTRUMENTS_PATH}?{urlencode({'instType': config.inst_type})}"
    backoff = Backoff(config.backoff_policy, seed=config.backoff_seed)
    failure: Exception | None = None
    for _ in range(config.rest_max_retries + 1):
        try:
            status, body = _get_once(config, target)
        except OSError as exc:
            failure = ConnectError(f"OKX {target}: {type(exc).__name__}: {exc}")
        else:
            if status == 200:
                return body
            excerpt = body[:200].decode("utf-8", "replace")
            if status != 429 and status < 500:
                raise RequestRejected(f"OKX {target}: HTTP {status}: {excerpt}", status=status)
            kind = RateLimited if status == 429 else VenueUnavailable
            failure = kind(f"OKX {target}: HTTP {status}: {excerpt}", status=status)
        sleep(backoff.next_delay())
    raise failure
