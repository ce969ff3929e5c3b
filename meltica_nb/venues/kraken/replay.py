"""Kraken in replay: recognize a recording, build its feed offline, read its final books.

The entry of :data:`meltica_nb.replay_venue.VENUES` for Kraken websocket v1 public data
(``book-<depth>:XBT/CHF``, ``trade:...``, ``ticker:...`` labels). Pairs come from the labels of
the first lines, the book depth from the ``book-<depth>`` channel, and each pair's price and
volume decimals from the text of its first recorded book snapshot (Kraken prints every value
with the pair's decimals, and its CRC32 checksum is built from that text), so the replay
needs no AssetPairs answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from meltica_nb.errors import ConfigError
from meltica_nb.recording_source import FRAME, LineChunk
from meltica_nb.replay_result import FinalBook
from meltica_nb.venues.kraken.config import KrakenConfig
from meltica_nb.venues.kraken.feed import KrakenFeed
from meltica_nb.venues.kraken.symbols import canonical

__all__ = ["KrakenReplay"]

_LABEL = re.compile(r"^(book-(\d+)|trade|ticker|spread|ohlc-\d+):([A-Z0-9]+/[A-Z0-9]+)$")
_NOWHERE_WS, _NOWHERE_REST = "ws://127.0.0.1:9", "http://127.0.0.1:9"


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def _snapshot_decimals(raw: bytes) -> tuple[int, int] | None:
    """(price, volume) decimals of a v1 book snapshot frame, else None."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(msg, list) and len(msg) >= 2 and isinstance(msg[1], dict)):
        return None
    levels = (msg[1].get("as") or []) + (msg[1].get("bs") or [])
    if not levels:
        return None
    return max(_decimals(lv[0]) for lv in levels), max(_decimals(lv[1]) for lv in levels)


class KrakenReplay:
    """Replay entry of Kraken (websocket v1 recordings)."""

    name = "kraken"
    frame_errors: dict = {}  # KrakenFeed.on_frames reports nothing per frame: counted by it

    def detects(self, preview: LineChunk) -> bool:
        """Kraken v1 channel labels (``book-1000:XBT/CHF``) on the recorded frames."""
        return any(kind == FRAME and _LABEL.match(label)
                   for label, kind in zip(preview.label, preview.kind.tolist(), strict=True))

    @staticmethod
    def snapshot_symbol(url: str) -> None:
        """Kraken books start from websocket snapshots: no REST line is replayed."""
        return None

    def build(self, engine, previews: Sequence[LineChunk]) -> KrakenFeed:
        """A KrakenFeed over the recorded pairs, decimals from their snapshots, no network."""
        pairs: dict[str, tuple[int, int]] = {}
        depth = 10
        for preview in previews:
            for label, kind, raw in zip(preview.label, preview.kind.tolist(), preview.raw,
                                        strict=True):
                match = _LABEL.match(label) if kind == FRAME else None
                if match is None:
                    continue
                if match.group(2):
                    depth = max(depth, int(match.group(2)))
                    found = _snapshot_decimals(raw)
                    if found is not None and match.group(3) not in pairs:
                        pairs[match.group(3)] = found
        if not pairs:
            raise ConfigError("no Kraken book snapshot found in the recordings' first lines")
        config = KrakenConfig(version=1, symbols=tuple(sorted(canonical(p) for p in pairs)),
                              book_depth=depth, ws_url=_NOWHERE_WS, rest_url=_NOWHERE_REST,
                              max_streams_per_connection=1024)
        feed = KrakenFeed(engine, config)
        feed.build(pairs)
        engine.add_feed(feed)
        return feed

    @staticmethod
    def final_books(feed: KrakenFeed, levels: int) -> dict[tuple[str, int], FinalBook]:
        """Every instrument's top ``levels`` with its checksum counters."""
        out = {}
        for inst, stats in feed.books.stats().items():
            bids, asks = feed.books.books.levels(inst)
            out[feed.name, inst] = FinalBook(bids[:levels], asks[:levels], stats.messages,
                                             stats.applied, stats.resyncs, stats.checksum_ok,
                                             stats.checksum_fail)
        return out
