"""User data stream keys (``listenKey``) with Binance's lifetime rules.

A key is valid for 60 minutes after it was created or last kept alive (``PUT``). ``POST`` while
a key is active returns that same key and extends it, ``DELETE`` invalidates it. The simulator's
websocket accepts ``/ws/<listenKey>`` and ``/stream?streams=<listenKey>`` for active keys only.
Keys are 60 letters and digits, drawn from a generator seeded like the rest of the simulator.
"""

from __future__ import annotations

import random
import string

__all__ = ["ListenKeys"]

_ALPHABET = string.ascii_letters + string.digits
_KEY_LEN = 60


class ListenKeys:
    """The active listen keys of the simulator's one account and when each expires."""

    def __init__(self, seed: int = 0, ttl_s: float = 3600.0) -> None:
        self.ttl_s = ttl_s
        self._rng = random.Random(f"{seed}/listenKey")
        self._expires: dict[str, float] = {}

    def create(self, now_s: float) -> str:
        """The active key (extended), or a new one when there is none."""
        key = next(iter(self._expires), None)
        if key is None:
            key = "".join(self._rng.choice(_ALPHABET) for _ in range(_KEY_LEN))
        self._expires[key] = now_s + self.ttl_s
        return key

    def keep_alive(self, key: str, now_s: float) -> bool:
        """Extend ``key``; False when it is not active."""
        if key not in self._expires:
            return False
        self._expires[key] = now_s + self.ttl_s
        return True

    def close(self, key: str) -> bool:
        """Invalidate ``key``; False when it was not active."""
        return self._expires.pop(key, None) is not None

    def expire(self, now_s: float) -> list[str]:
        """Remove and return the keys whose time ran out."""
        gone = [k for k, until in self._expires.items() if until <= now_s]
        for key in gone:
            del self._expires[key]
        return gone

    def active(self, key: object) -> bool:
        return isinstance(key, str) and key in self._expires

    def active_keys(self) -> list[str]:
        return list(self._expires)
