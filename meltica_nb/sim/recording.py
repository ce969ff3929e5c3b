"""Play a recorded feed through the simulator instead of a generated market.

The recording is normalized JSON Lines, one ``{"recv_ns", "stream", "raw"}`` object per line
(plain or ``.gz``). Stream lines are sent on their stream names with the original payload bytes
(a combined-stream ``raw`` is unwrapped to its ``data``), paced by ``recv_ns`` at ``speed`` times
real time (``speed=0``: as fast as the clients take them). ``rest:<url>`` lines holding a depth
snapshot answer ``/api/v3/depth`` (or ``/fapi/v1/depth``) with the latest snapshot recorded at or
before the playback position (the first one before that), and a recorded ``exchangeInfo`` answers
``exchangeInfo``. Playback starts when the first client subscribes, so no message is lost to a
client that connects after the simulator started.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from meltica_nb.errors import ConfigError
from meltica_nb.sim.market import Instrument, stream_kinds

__all__ = ["RecordingFeed", "read_recording"]

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")
_DIFF_RE = re.compile(r"^[a-z0-9]+@depth(@\d+ms)?$")
_COMBINED = b'{"stream":"'
_BATCH = 512

Entry = tuple[int, str, bytes]


def read_recording(path: str | Path) -> list[dict]:
    """Every line of a normalized recording as a dict (gzip detected by magic bytes)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return [orjson.loads(line) for line in raw.splitlines() if line.strip()]


def _unwrap(raw: bytes, label: str) -> tuple[str, bytes]:
    """(stream, payload bytes): a combined-stream message loses its wrapper, bytes kept exact."""
    if raw.startswith(_COMBINED):
        end = raw.find(b'"', len(_COMBINED))
        rest = raw[end + 1:]
        if end > 0 and rest.startswith(b',"data":') and raw.endswith(b"}"):
            return raw[len(_COMBINED):end].decode(), rest[8:-1]
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return label, raw
    if isinstance(obj, dict) and isinstance(obj.get("stream"), str) and "data" in obj:
        return obj["stream"], orjson.dumps(obj["data"])
    return label, raw


class _StringBook:
    """A book kept from recorded snapshots and diffs, with the prices as received."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.update_id = 0
        self.synced = False
        self.buffer: list[dict] = []

    def load(self, snapshot: dict) -> None:
        self.bids = {p: q for p, q in snapshot.get("bids", []) if Decimal(q)}
        self.asks = {p: q for p, q in snapshot.get("asks", []) if Decimal(q)}
        self.update_id = int(snapshot.get("lastUpdateId", 0))
        self.synced = True
        buffered, self.buffer = self.buffer, []
        for diff in buffered:
            self.diff(diff)

    def diff(self, msg: dict) -> None:
        if not self.synced:
            self.buffer.append(msg)
            del self.buffer[:-1000]
            return
        if int(msg.get("u", 0)) <= self.update_id:
            return
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for price, qty in msg.get(key, []):
                if Decimal(qty):
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.update_id = int(msg["u"])

    def view(self, symbol: str, depth: int) -> dict:
        bids = sorted(self.bids, key=Decimal, reverse=True)[:depth]
        asks = sorted(self.asks, key=Decimal)[:depth]
        return {"symbol": symbol, "lastUpdateId": self.update_id,
                "bids": [[p, self.bids[p]] for p in bids],
                "asks": [[p, self.asks[p]] for p in asks]}


def _places(values: list[str]) -> int:
    return max((len(v.rstrip("0").partition(".")[2]) for v in values if "." in v), default=0)


def _step_text(places: int) -> str:
    return "1" if places == 0 else "0." + "0" * (places - 1) + "1"


def _instrument(symbol: str, snapshot: dict | None) -> Instrument:
    base, quote = symbol, ""
    for q in _QUOTES:
        if symbol.endswith(q) and len(symbol) > len(q):
            base, quote = symbol[: -len(q)], q
            break
    levels = (snapshot or {}).get("bids", []) + (snapshot or {}).get("asks", [])
    tick = _step_text(_places([p for p, _ in levels]))
    step = _step_text(_places([q for _, q in levels]))
    return Instrument(f"{base}-{quote}" if quote else base, symbol, base, quote, tick, step)


class RecordingFeed:
    """A recorded feed, played on the simulator's clock (see the module docstring)."""

    needs_subscriber = True

    def __init__(self, path: str | Path, *, speed: float = 1.0, market: str | None = None) -> None:
        if speed < 0:
            raise ConfigError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
        self.path, self.speed = Path(path), float(speed)
        self.entries: list[Entry] = []
        self.snapshots: dict[str, list[tuple[int, dict]]] = {}
        self.exchange_info_raw: bytes | None = None
        self._usdm = False  # USD-M futures: REST under /fapi/ or depth events with "pu"
        self._load(read_recording(self.path))
        streams = {e[1] for e in self.entries if not e[1].startswith("rest:")}
        self.market = market or ("usdm" if self._usdm else "spot")
        self.stream_kinds = stream_kinds(self.market)
        self.extra_streams = frozenset(streams)
        symbols = sorted({s.partition("@")[0].upper() for s in streams} | set(self.snapshots))
        self.instruments = tuple(
            _instrument(s, (self.snapshots.get(s) or [(0, None)])[0][1]) for s in symbols)
        self._books = {s: _StringBook() for s in symbols}
        self.position = 0
        self.paused = False
        self._t0_wall = self._t0_rec = 0
        self._started = False

    def _load(self, lines: list[dict]) -> None:
        last_ns = 0
        for line in lines:
            ns = line.get("recv_ns") or last_ns
            last_ns = ns
            label, raw = line.get("stream") or "", line.get("raw")
            if not isinstance(raw, str) or label.startswith("event:"):
                continue
            if label.startswith("rest:"):
                self._load_rest(ns, label, raw)
                continue
            stream, data = _unwrap(raw.encode(), label)
            self._usdm = self._usdm or (_DIFF_RE.match(stream) is not None and b'"pu":' in data)
            if stream:
                self.entries.append((ns, stream, data))

    def _load_rest(self, ns: int, label: str, raw: str) -> None:
        url = urlsplit(label[5:])
        self._usdm = self._usdm or url.path.startswith("/fapi/")
        if url.path.endswith("/exchangeInfo"):
            self.exchange_info_raw = raw.encode()
        elif url.path.endswith("/depth"):
            symbol = parse_qs(url.query).get("symbol", [""])[0].upper()
            body = orjson.loads(raw)
            if symbol and isinstance(body, dict) and "lastUpdateId" in body:
                snaps = self.snapshots.setdefault(symbol, [])
                snaps.append((ns, body))
                self.entries.append((ns, f"rest:{symbol}", str(len(snaps) - 1).encode()))

    # -- playback --------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    @property
    def done(self) -> bool:
        return self.position >= len(self.entries)

    def start(self, now_ns: int) -> None:
        self._started = True
        self._t0_wall = now_ns
        self._t0_rec = self.entries[0][0] if self.entries else 0

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def poll(self, now_ns: int, wanted: Callable[[str], bool] | None = None,
             ) -> tuple[list[tuple[str, bytes]], float]:
        """The messages due at ``now_ns`` and the seconds until the next one."""
        events: list[tuple[str, bytes]] = []
        if self.paused or not self._started:
            return events, 0.01
        while self.position < len(self.entries) and len(events) < _BATCH:
            ns, stream, data = self.entries[self.position]
            wait = self._due_in(ns, now_ns)
            if wait > 0:
                return events, min(wait, 0.05)
            self.position += 1
            self._track(stream, data)
            if not stream.startswith("rest:"):
                events.append((stream, data))
        return events, 0.0 if self.position < len(self.entries) else 0.05

    def _due_in(self, rec_ns: int, now_ns: int) -> float:
        if self.speed == 0:
            return 0.0
        offset = (rec_ns - self._t0_rec) / self.speed
        return (offset - (now_ns - self._t0_wall)) / 1e9

    def _track(self, stream: str, data: bytes) -> None:
        """Keep :meth:`book` current: load snapshots as they pass, apply diffs after them."""
        if stream.startswith("rest:"):
            symbol = stream[5:]
            self._books[symbol].load(self.snapshots[symbol][int(data)][1])
        elif _DIFF_RE.match(stream):
            msg = orjson.loads(data)
            book = self._books.get(str(msg.get("s", "")).upper())
            if book is not None:
                book.diff(msg)

    # -- views -----------------------------------------------------------------------------

    def depth_snapshot(self, symbol: str, limit: int) -> dict | None:
        """The latest recorded snapshot at or before the playback position (else the first)."""
        snaps = self.snapshots.get(symbol.upper())
        if not snaps:
            return None
        now = self.entries[self.position - 1][0] if self.position else 0
        chosen = snaps[0][1]
        for ns, body in snaps:
            if ns <= now:
                chosen = body
        return {**chosen, "bids": chosen.get("bids", [])[:limit],
                "asks": chosen.get("asks", [])[:limit]}

    def book(self, symbol: str, depth: int = 20) -> dict | None:
        key = symbol.upper().replace("-", "").replace("/", "")
        book = self._books.get(key)
        return None if book is None else book.view(key, depth)

    def stats(self) -> dict:
        return {"kind": "recording", "path": str(self.path), "market": self.market,
                "speed": self.speed, "messages": len(self.entries), "played": self.position,
                "done": self.done}
