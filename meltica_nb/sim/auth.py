"""Binance's request authentication, server side: API key header, HMAC-SHA256, recvWindow.

As Binance documents it (spot ``rest-api.md``, "SIGNED endpoint security"):

* the key travels in the ``X-MBX-APIKEY`` header (missing or malformed: ``-2014``, unknown:
  ``-2015``, both HTTP 401);
* the ``signature`` is ``HMAC-SHA256(secret, totalParams)`` in hex (case does not matter), where
  ``totalParams`` is the query string concatenated with the form body, exactly as sent, minus the
  ``signature`` parameter itself (``-1022`` when it does not match);
* ``timestamp`` (ms) must satisfy ``timestamp < serverTime + 1000`` and
  ``serverTime - timestamp <= recvWindow`` (``-1021``); ``recvWindow`` defaults to 5000 and may
  not exceed 60000.

The secret is never part of an error message or a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import string
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from meltica_nb.sim.filters import reject

__all__ = ["Credentials", "SignedParams", "authenticate", "integer", "mandatory", "sign"]

_ALPHABET = string.ascii_letters + string.digits
_KEY_LEN = 64
_DEFAULT_RECV_WINDOW = 5000
_MAX_RECV_WINDOW = 60000
_AHEAD_MS = 1000
_DIGITS = "'^[0-9]{1,20}$'"


def sign(secret: str, payload: str) -> str:
    """Binance's HMAC-SHA256 signature of ``payload`` (hex, lower case)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """The one API key and secret the simulator accepts (64 letters and digits each)."""

    api_key: str
    api_secret: str = field(repr=False)

    @classmethod
    def generate(cls, seed: int | None = None) -> Credentials:
        """Random credentials, or the same ones for the same ``seed``."""
        if seed is None:
            pick = secrets.choice
        else:
            pick = random.Random(f"{seed}/credentials").choice
        key, secret = ("".join(pick(_ALPHABET) for _ in range(_KEY_LEN)) for _ in range(2))
        return cls(key, secret)


@dataclass(frozen=True, slots=True)
class SignedParams:
    """The parameters of an authenticated request (query and form body merged)."""

    values: dict[str, str]

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None


def _unique(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in values:
            raise reject(-1101, "Duplicate values for a parameter detected.")
        values[name] = value
    return values


def _params(query: str, body: str) -> dict[str, str]:
    """Body and query parameters, the query's winning when both send one (as Binance does);
    a name sent twice in one of them is refused (-1101)."""
    return {**_unique(body), **_unique(query)}


def _without_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def _check_key(api_key: str | None, credentials: Credentials) -> None:
    if not api_key or len(api_key) != _KEY_LEN or not api_key.isalnum():
        raise reject(-2014, "API-key format invalid.", status=401)
    if not hmac.compare_digest(api_key, credentials.api_key):
        raise reject(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def mandatory(values: dict[str, str], name: str) -> str:
    """The value of parameter ``name``; -1102 when it was not sent or is empty."""
    value = values.get(name)
    if not value:
        raise reject(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                            "malformed.")
    return value


def integer(name: str, text: str) -> int:
    """Parameter ``name`` as a non-negative integer; -1100 for anything else."""
    if not text.isdigit() or len(text) > 20:
        raise reject(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                            f"{_DIGITS}.")
    return int(text)


def _check_time(values: dict[str, str], now_ms: int) -> None:
    timestamp = integer("timestamp", mandatory(values, "timestamp"))
    window = _DEFAULT_RECV_WINDOW
    if values.get("recvWindow"):
        window = integer("recvWindow", values["recvWindow"])
        if window > _MAX_RECV_WINDOW:
            raise reject(-1102, f"'recvWindow' contains unexpected value. Cannot be greater "
                                f"than '{_MAX_RECV_WINDOW}'.")
    if timestamp >= now_ms + _AHEAD_MS:
        raise reject(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - timestamp > window:
        raise reject(-1021, "Timestamp for this request is outside of the recvWindow.")


def authenticate(credentials: Credentials, api_key: str | None, query: str, body: str,
                 now_ms: int, signed: bool = True) -> SignedParams:
    """Check one request like Binance; returns its parameters or raises RequestRejected.

    ``signed`` False (USER_STREAM endpoints): the API key alone is checked.
    """
    _check_key(api_key, credentials)
    values = _params(query, body)
    if not signed:
        return SignedParams(values)
    given = mandatory(values, "signature")
    _check_time(values, now_ms)
    payload = _without_signature(query) + _without_signature(body)
    expected = sign(credentials.api_secret, payload)
    if not given.isascii() or not hmac.compare_digest(given.lower(), expected):
        raise reject(-1022, "Signature for this request is not valid.")
    del values["signature"]
    return SignedParams(values)
