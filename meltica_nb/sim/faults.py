"""Fault injection for the exchange simulator: rate-based, seeded, deterministic.

A spec string names a rate per fault kind, e.g.
``drop=0.01,dup=0.01,reorder=0.01,disconnect=0.001,stall=0.001:2s,malformed=0.005,
oversized=0.001:2mb,rest429=0.1,rest5xx=0.05,corrupt=0.01``. Frame faults are drawn once per
market-data frame per connection, from a random generator seeded by ``(seed, connection
number)``, so the same seed and the same frame sequence give the same faults on every run. REST
faults are drawn once per request from their own seeded generator. Control responses (subscribe
acks) are never faulted: a client must be able to tell an exchange fault from its own protocol
bug. ``corrupt`` changes one book level while keeping the checksum of the true book (venues
that send checksums: OKX per ``books`` frame, Kraken per book update; a no-op for Binance).

User data streams (``/ws/<listenKey>``) never get frame faults: Binance does not drop or reorder
account events. ``userdisconnect`` instead drops the user stream's connections just before a
user-stream event (an execution report or a balance update) is sent, so that event is lost to
them and a client must reconcile by REST.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from meltica_nb.errors import ConfigError

__all__ = [
    "FRAME_KINDS",
    "KINDS",
    "REST_KINDS",
    "USER_KINDS",
    "ConnectionFaults",
    "FaultInjector",
    "FaultSpec",
    "FramePlan",
    "malformed_frame",
    "oversized_payload",
]

#: Frame faults in the order they are drawn (the order is part of the determinism contract).
FRAME_KINDS = ("disconnect", "stall", "drop", "dup", "reorder", "malformed", "oversized",
               "corrupt")
REST_KINDS = ("rest429", "rest5xx")
USER_KINDS = ("userdisconnect",)
KINDS = FRAME_KINDS + REST_KINDS + USER_KINDS

_UNITS_S = (("ms", 0.001), ("s", 1.0), ("m", 60.0))
_UNITS_B = (("kb", 1024), ("mb", 1024 * 1024), ("b", 1))


def _parse_duration(text: str) -> float:
    """``2s`` / ``50ms`` / ``0.5`` (seconds) to seconds."""
    low = text.strip().lower()
    for suffix, factor in _UNITS_S:
        if low.endswith(suffix) and low[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(low[: -len(suffix)]) * factor
    return float(low)


def _parse_size(text: str) -> int:
    """``2mb`` / ``512kb`` / ``1000`` to bytes."""
    low = text.strip().lower()
    for suffix, factor in _UNITS_B:
        if low.endswith(suffix):
            return int(float(low[: -len(suffix)]) * factor)
    return int(low)


@dataclass(frozen=True)
class FaultSpec:
    """Rates per fault kind (0..1), the stall duration and the size of oversized frames."""

    rates: dict[str, float] = field(default_factory=dict)
    stall_s: float = 2.0
    oversized_bytes: int = 2 * 1024 * 1024

    @classmethod
    def parse(cls, text: str | FaultSpec | None) -> FaultSpec:
        """Parse ``kind=rate[:param],...``; ``None`` or ``""`` means no faults."""
        if isinstance(text, FaultSpec):
            return text
        rates: dict[str, float] = {}
        params: dict[str, str] = {}
        for item in (text or "").split(","):
            if not item.strip():
                continue
            kind, rate, param = _split_item(item)
            rates[kind] = rate
            if param:
                params[kind] = param
        try:
            stall_s = _parse_duration(params["stall"]) if "stall" in params else 2.0
            size = _parse_size(params["oversized"]) if "oversized" in params else 2 * 1024 * 1024
        except ValueError as exc:
            raise ConfigError(f"bad fault parameter in {text!r}: {exc}") from None
        return cls(rates=rates, stall_s=stall_s, oversized_bytes=size)

    def rate(self, kind: str) -> float:
        """The rate of ``kind`` (0 when not named)."""
        return self.rates.get(kind, 0.0)

    @property
    def active(self) -> bool:
        """True when any fault has a non-zero rate."""
        return any(rate > 0 for rate in self.rates.values())

    def __str__(self) -> str:
        parts = []
        for kind in KINDS:
            if kind not in self.rates:
                continue
            text = f"{kind}={self.rates[kind]:g}"
            if kind == "stall":
                text += f":{self.stall_s:g}s"
            elif kind == "oversized":
                text += f":{self.oversized_bytes}b"
            parts.append(text)
        return ",".join(parts)


def _split_item(item: str) -> tuple[str, float, str]:
    """``stall=0.001:2s`` -> ("stall", 0.001, "2s"), validated."""
    kind, sep, value = item.strip().partition("=")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise ConfigError(f"unknown fault {item.strip()!r}: expected kind=rate, kind in {KINDS}")
    rate_text, _, param = value.partition(":")
    try:
        rate = float(rate_text)
    except ValueError:
        raise ConfigError(f"fault rate of {kind!r} is not a number: {rate_text!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"fault rate of {kind!r} must be within 0..1, got {rate}")
    return kind, rate, param.strip()


@dataclass(frozen=True, slots=True)
class FramePlan:
    """What to do with one market-data frame (all false: send it as is)."""

    disconnect: bool = False
    stall_s: float = 0.0
    drop: bool = False
    dup: bool = False
    reorder: bool = False
    malformed: bool = False
    oversized: bool = False
    corrupt: bool = False  # venues with book checksums: one level changed, checksum kept


NO_FAULTS = FramePlan()


class ConnectionFaults:
    """The fault draws of one connection: its own seeded generator, shared counters."""

    __slots__ = ("_counts", "_frame_kinds", "_rng", "_spec")

    def __init__(self, spec: FaultSpec, rng: random.Random, counts: Counter) -> None:
        self._spec = spec
        self._rng = rng
        self._counts = counts
        self._frame_kinds = tuple((k, spec.rate(k)) for k in FRAME_KINDS if spec.rate(k) > 0)

    def plan(self) -> FramePlan:
        """Draw the faults of the next frame (one draw per active kind, in a fixed order)."""
        if not self._frame_kinds:
            return NO_FAULTS
        rng = self._rng
        hits = {kind for kind, rate in self._frame_kinds if rng.random() < rate}
        if not hits:
            return NO_FAULTS
        if "disconnect" in hits:
            hits = {"disconnect"}
        elif "drop" in hits:
            hits -= {"dup", "reorder"}
        self._counts.update(hits)
        return FramePlan(
            disconnect="disconnect" in hits,
            stall_s=self._spec.stall_s if "stall" in hits else 0.0,
            drop="drop" in hits,
            dup="dup" in hits,
            reorder="reorder" in hits,
            malformed="malformed" in hits,
            oversized="oversized" in hits,
            corrupt="corrupt" in hits,
        )


class FaultInjector:
    """Deterministic fault source of one simulator: per-connection draws and REST draws."""

    def __init__(self, spec: FaultSpec | str | None = None, seed: int = 0) -> None:
        self.spec = FaultSpec.parse(spec)
        self.seed = int(seed)
        self.counts: Counter[str] = Counter()
        self._rest_rng = random.Random(f"{self.seed}/rest")
        self._book_rng = random.Random(f"{self.seed}/book")
        self._user_rng = random.Random(f"{self.seed}/user")

    def connection(self, conn_id: int) -> ConnectionFaults:
        """The fault draws of connection number ``conn_id`` (1, 2, ... in accept order)."""
        return ConnectionFaults(self.spec, random.Random(f"{self.seed}/ws/{conn_id}"), self.counts)

    def rest(self) -> int | None:
        """An HTTP status to inject for the next REST request (429 or 5xx), or None."""
        r429, r5xx = self.spec.rate("rest429"), self.spec.rate("rest5xx")
        if r429 <= 0 and r5xx <= 0:
            return None
        draw = self._rest_rng.random()
        if draw < r429:
            self.counts["rest429"] += 1
            return 429
        if draw < r429 + r5xx:
            self.counts["rest5xx"] += 1
            return self._rest_rng.choice((500, 502, 503))
        return None

    def user_disconnect(self) -> bool:
        """True when the user stream's connections should drop before the next report."""
        rate = self.spec.rate("userdisconnect")
        if rate <= 0 or self._user_rng.random() >= rate:
            return False
        self.counts["userdisconnect"] += 1
        return True


    def corrupt_checksum(self) -> bool:
        """True when the next book update should carry a corrupted level (counted).

        For venues whose market builds each book update once for every connection (Kraken):
        the ``corrupt`` rate is drawn per update from its own seeded generator.
        """
        rate = self.spec.rate("corrupt")
        if rate <= 0 or self._book_rng.random() >= rate:
            return False
        self.counts["corrupt"] += 1
        return True


def malformed_frame(frame: bytes) -> bytes:
    """A frame cut in the middle: never valid JSON (the closing brace is gone)."""
    return frame[: max(1, len(frame) // 2)]


def oversized_payload(size: int) -> bytes:
    """A valid JSON object of about ``size`` bytes (a padding string inside)."""
    head, tail = b'{"e":"simOversized","pad":"', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail
