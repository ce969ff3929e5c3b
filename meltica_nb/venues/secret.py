"""Credentials that never print: :class:`Secret`, and :func:`redact` for text built from replies.

A venue config holds its API key and secret as :class:`Secret` objects; the connection and REST
clients pass every message built from venue replies through :func:`redact` before it is logged
or raised, so a credential echoed back by a venue never reaches a log line.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from meltica_nb.errors import ConfigError

__all__ = ["Secret", "redact"]

_REDACTED = "***"


class Secret:
    """A credential whose text never reaches a repr, a str, a log line or an f-string.

    Call :meth:`reveal` at the one place the venue needs the text (a request header or a
    signature); everywhere else the object prints as ``'***'``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("a secret must be a non-empty string")
        self._value = value.strip()

    def reveal(self) -> str:
        """Return the secret text; use it only to build the request that needs it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_REDACTED!r})"

    def __str__(self) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def redact(text: str, secrets: Iterable[Secret | None]) -> str:
    """Return ``text`` with every secret's value replaced by ``'***'``."""
    for secret in secrets:
        if secret is not None and secret.reveal() in text:
            text = text.replace(secret.reveal(), _REDACTED)
    return text
