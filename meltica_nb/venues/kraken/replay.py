"""Kraken in replay: recognize a recording, build its feed offline, read its final books.

The entry of :data:`meltica_nb.replay_venue.VENUES` for Kraken websocket recordings
(``"kraken"``), v1 (``[channelID, {...}, "book-10", "XBT/USD"]`` arrays, ``{"event": ...}``
control messages) and v2 (``{"channel": "book", "type": "snapshot", "data": [...]}``).

Everything the feed needs comes from the first lines of each file, never from the network:
the pairs are those the pushes name; the book depth is the subscribed one (v1 names it in the
channel, ``book-1000``; for v2 the longest side of a recorded snapshot, rounded up to a depth
Kraken offers); each pair's decimals, which Kraken's book checksum is built from, are those
its book snapshot prints (v1 prints every level of a pair with the pair's decimals; v2 prints
numbers, so the most decimals among the snapshot's levels are taken). A pair without a
snapshot in the first lines gets 8 decimals. Books start from the websocket snapshot: there
is no REST depth snapshot to replay.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from meltica_nb.errors import ConfigError
from meltica_nb.recording_source import LineChunk
from meltica_nb.replay_result import FinalBook
from meltica_nb.venues.kraken.config import BOOK_DEPTHS, KrakenConfig
from meltica_nb.venues.kraken.feed import KrakenFeed
from meltica_nb.venues.kraken.parsing import FrameStatus
from meltica_nb.venues.ws_book_replay import (
    NOWHERE_REST,
    NOWHERE_WS,
    WebsocketBookReplay,
    frame_error_names,
    recorded_frames,
)

__all__ = ["KrakenReplay"]

_V1_PUSH = re.compile(rb'^\[\d+,.*,"(book-\d+|trade|ticker|spread|ohlc-\d+)","[^"]+"\]$', re.S)
_V2_PUSH = re.compile(rb'^\{"channel":"(book|trade|ticker|heartbeat|status)"')
_V2_NUMBER = re.compile(rb'"(price|qty)":-?[0-9]+(?:\.([0-9]+))?')
_DEFAULT_DECIMALS = 8



def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


class _RecordedPairs:
    """What the first lines say: pairs, their decimals, the subscribed book depth, version."""

    def __init__(self) -> None:
        self.decimals: dict[str, tuple[int, int]] = {}
        self.pairs: set[str] = set()
        self.depth = 0
        self.version = 2

    def read(self, raw: bytes) -> None:
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return  # reported when it is replayed
        if isinstance(msg, list):
            self._v1(msg)
        elif isinstance(msg, dict) and msg.get("channel") == "book":
            self._v2(msg, raw)
        elif isinstance(msg, dict) and msg.get("channel") in ("trade", "ticker"):
            self.pairs.update(e["symbol"] for e in msg.get("data") or ()
                              if isinstance(e, dict) and isinstance(e.get("symbol"), str))

    def _v1(self, msg: list) -> None:
        if len(msg) < 4 or not (isinstance(msg[-1], str) and isinstance(msg[-2], str)):
            return
        self.version = 1
        pair, channel = msg[-1], msg[-2]
        self.pairs.add(pair)
        if channel.startswith("book-") and channel[5:].isdigit():
            self.depth = max(self.depth, int(channel[5:]))
        body = msg[1] if isinstance(msg[1], dict) else {}
        side = body.get("as") or body.get("bs")
        if pair not in self.decimals and side and isinstance(side[0], list):
            self.decimals[pair] = (_decimals(str(side[0][0])), _decimals(str(side[0][1])))

    def _v2(self, msg: dict, raw: bytes) -> None:
        for entry in msg.get("data") or ():
            if isinstance(entry, dict) and isinstance(entry.get("symbol"), str):
                self.pairs.add(entry["symbol"])
                if msg.get("type") == "snapshot":
                    longest = max(len(entry.get("bids") or ()), len(entry.get("asks") or ()))
                    self.depth = max(self.depth, longest)
        if msg.get("type") == "snapshot" and len(msg.get("data") or ()) == 1:
            symbol = msg["data"][0].get("symbol")
            if isinstance(symbol, str) and symbol not in self.decimals:
                found = {b"price": 0, b"qty": 0}
                for name, digits in _V2_NUMBER.findall(raw):
                    found[name] = max(found[name], len(digits))
                self.decimals[symbol] = (found[b"price"], found[b"qty"])

    def book_depth(self) -> int:
        """The smallest depth Kraken offers that holds what was recorded."""
        return next((d for d in BOOK_DEPTHS if d >= self.depth), BOOK_DEPTHS[-1])

    def pair_decimals(self) -> dict[str, tuple[int, int]]:
        return {pair: self.decimals.get(pair, (_DEFAULT_DECIMALS, _DEFAULT_DECIMALS))
                for pair in sorted(self.pairs)}


class KrakenReplay(WebsocketBookReplay):
    """Replay entry of Kraken websocket recordings (v1 and v2)."""

    name = "kraken"
    frame_errors = frame_error_names(FrameStatus)

    @staticmethod
    def detects(preview: LineChunk) -> bool:
        """A v1 array push (``[id, {...}, "book-10", "XBT/USD"]``) or a v2 channel message."""
        return any(_V1_PUSH.match(raw) or _V2_PUSH.match(raw) for raw in recorded_frames(preview))

    def build(self, engine, previews: Sequence[LineChunk]) -> KrakenFeed:
        """A KrakenFeed over the recorded pairs, prepared offline, added to ``engine``."""
        recorded = _RecordedPairs()
        for preview in previews:
            for raw in recorded_frames(preview):
                recorded.read(raw)
        pairs = recorded.pair_decimals()
        if not pairs:
            raise ConfigError(f"no {self.name} pair found in the recordings' first lines")
        config = KrakenConfig(version=recorded.version, symbols=(), channels=("book",),
                              book_depth=recorded.book_depth(), ws_url=NOWHERE_WS,
                              rest_url=NOWHERE_REST)
        feed = KrakenFeed(engine, config)
        feed.build(pairs)
        engine.add_feed(feed)
        return feed

    # -- recording (meltica record) -----------------------------------------------------

    @staticmethod
    def stream_label(frame: bytes) -> str:
        """``book-10:XBT/USD`` (v1), ``book:BTC/USD`` (v2), ``event:<name>`` for an event,
        ack or heartbeat, else ``""``."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return ""
        if isinstance(msg, list) and len(msg) >= 4:
            return f"{msg[-2]}:{msg[-1]}"
        if not isinstance(msg, dict):
            return ""
        if "event" in msg or "method" in msg:
            return f"event:{msg.get('event') or msg.get('method')}"
        channel = msg.get("channel")
        if channel in ("heartbeat", "status"):
            return f"event:{channel}"
        data = msg.get("data")
        symbol = data[0].get("symbol") if isinstance(data, list) and data and isinstance(
            data[0], dict) else None
        return f"{channel}:{symbol}" if channel and symbol else str(channel or "")

    @staticmethod
    def snapshot_url(feed: KrakenFeed, symbol: str) -> str:
        """Kraken books are never fetched over REST; the URL such a snapshot would have."""
        return f"{feed.config.rest_url}/0/public/Depth?pair={symbol}"

    @staticmethod
    def exchange_info_url(feed: KrakenFeed) -> str:
        return f"{feed.config.rest_url}/0/public/AssetPairs"

    @staticmethod
    def live_feed(engine, symbols, channels, ws_url: str = "", rest_url: str = ""
                  ) -> KrakenFeed:
        """A live feed (not yet added to ``engine``), for ``meltica record``: v2 unless
        ``ws_url`` names a v1 endpoint (Kraken's v2 endpoints end in ``/v2``)."""
        version = 1 if ws_url and not ws_url.rstrip("/").endswith("/v2") else 2
        return KrakenFeed(engine, KrakenConfig(version=version, symbols=tuple(symbols),
                                               channels=tuple(channels), ws_url=ws_url,
                                               rest_url=rest_url))

    # -- results -------------------------------------------------------------------------

    @staticmethod
    def final_books(feed: KrakenFeed, levels: int) -> dict[tuple[str, int], FinalBook]:
        """Every seen book's top ``levels`` and counters, by (venue, instrument) (Kraken has
        no sequence ids: update_id is 0)."""
        out = {}
        for inst, stats in feed.books.stats().items():
            bids, asks = feed.books.books.levels(inst)
            out[feed.name, inst] = FinalBook(bids[:levels], asks[:levels], 0, stats.applied,
                                  stats.resyncs, stats.checksum_ok, stats.checksum_fail)
        return out
