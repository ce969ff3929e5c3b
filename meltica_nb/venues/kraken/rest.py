"""Kraken public REST: ``/0/public/AssetPairs`` (pair decimals), with bounded retries.

The feed needs one REST answer, at start: every pair's ``pair_decimals`` and ``lot_decimals``,
which fix the fixed-point exponents and the checksum text. :func:`fetch_asset_pairs` GETs it
over real HTTP(S), retrying transport errors, 429 and 5xx with the config's capped
exponential backoff (``rest_max_retries`` times), and raises the engine's typed venue errors:
:class:`~meltica_nb.errors.RequestRejected` for another 4xx,
:class:`~meltica_nb.errors.VenueUnavailable` once the retries are spent.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from meltica_nb.backoff import Backoff
from meltica_nb.concurrency import CancelToken
from meltica_nb.errors import RequestRejected, VenueUnavailable
from meltica_nb.venues.kraken.config import KrakenConfig

__all__ = ["ASSET_PAIRS_PATH", "fetch_asset_pairs"]

ASSET_PAIRS_PATH = "/0/public/AssetPairs"


def _get_once(config: KrakenConfig, path: str) -> tuple[int, bytes]:
    url = urlsplit(config.rest_url)
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = cls(url.hostname or "", url.port, timeout=config.rest_timeout_s)
    try:
        conn.request("GET", url.path.rstrip("/") + path,
                     headers={"Accept": "application/json", "User-Agent": "meltica_nb"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def fetch_asset_pairs(config: KrakenConfig, cancel: CancelToken | None = None) -> bytes:
    """The body of ``GET <rest_url>/0/public/AssetPairs`` (every pair)."""
    backoff = Backoff(config.backoff_policy, seed=config.backoff_seed)
    token = cancel if cancel is not None else CancelToken()
    problem = ""
    for _ in range(config.rest_max_retries + 1):
        try:
            status, body = _get_once(config, ASSET_PAIRS_PATH)
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return body
            problem = f"HTTP {status}: {body[:120]!r}"
            if 400 <= status < 500 and status != 429:
                raise RequestRejected(f"kraken {ASSET_PAIRS_PATH}: {problem}", status=status)
        if token.wait(backoff.next_delay()):
            break
    raise VenueUnavailable(f"kraken {ASSET_PAIRS_PATH}: {problem}")
