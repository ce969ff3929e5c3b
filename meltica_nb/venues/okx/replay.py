"""OKX in replay: recognize a recording, build its feeds offline, read its final books.

The entry of :data:`meltica_nb.replay_venue.VENUES` for OKX v5 public data. One OKX feed keeps
one instrument type, and one recording may hold several (cryptofeed's holds BTC-USDT spot,
UNI-USD-SWAP and BTC-USD-220527 futures), so the replay builds one :class:`OkxFeed` per type
found and :class:`OkxReplayFeeds` hands each frame to the feed of its ``instId``.

InstIds come from the stream labels of the first lines (``books:BTC-USDT``); exponents are 8
(no instruments answer is recorded). Books arrive as websocket snapshots, so no REST line is
replayed; every ``books`` message's CRC32 checksum is checked by the feed's books.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from meltica_nb.errors import ConfigError
from meltica_nb.recording_source import FRAME, LineChunk
from meltica_nb.replay_result import FinalBook
from meltica_nb.venues.okx.config import CHANNELS, OkxConfig
from meltica_nb.venues.okx.feed import OkxFeed

__all__ = ["OkxReplay", "OkxReplayFeeds"]

_LABEL = re.compile(r"^(" + "|".join(sorted(CHANNELS)) + r"):([A-Z0-9]+(?:-[A-Z0-9]+)+)$")
_FUTURES = re.compile(r"-\d{6}$")
_INST_ID = b'"instId":"'
_NOWHERE_WS, _NOWHERE_REST = "ws://127.0.0.1:9", "http://127.0.0.1:9"


def market_of(inst_id: str) -> str:
    """``"spot"``, ``"swap"`` (``-SWAP``) or ``"futures"`` (a ``-YYMMDD`` expiry)."""
    if inst_id.endswith("-SWAP"):
        return "swap"
    return "futures" if _FUTURES.search(inst_id) else "spot"


def _inst_ids(preview: LineChunk) -> dict[str, set[str]]:
    """Channels and instIds of the recorded frames, by market."""
    found: dict[str, set[str]] = {}
    for label, kind in zip(preview.label, preview.kind.tolist(), strict=True):
        match = _LABEL.match(label) if kind == FRAME else None
        if match:
            found.setdefault(market_of(match.group(2)), set()).add(match.group(2))
    return found


class OkxReplayFeeds:
    """The OKX feeds of one replay, one per instrument type, fed frame by frame's instId."""

    def __init__(self, feeds: dict[str, OkxFeed]):
        self.feeds = feeds
        self.name = "okx"
        self._fallback = next(iter(feeds.values()))

    def _feed_of(self, frame: bytes) -> OkxFeed:
        at = frame.find(_INST_ID)
        if at < 0:
            return self._fallback
        end = frame.find(b'"', at + len(_INST_ID))
        inst_id = frame[at + len(_INST_ID):end].decode("ascii", "replace")
        return self.feeds.get(market_of(inst_id), self._fallback)

    def on_frames(self, frames: list[bytes], recv_ns) -> None:
        """Each feed gets its frames, in order (OKX feeds report bad frames themselves)."""
        groups: dict[int, tuple[OkxFeed, list, list]] = {}
        for frame, ns in zip(frames, np.asarray(recv_ns).tolist(), strict=True):
            feed = self._feed_of(frame)
            group = groups.setdefault(id(feed), (feed, [], []))
            group[1].append(frame)
            group[2].append(ns)
        for feed, batch, times in groups.values():
            feed.on_frames(batch, times)


class OkxReplay:
    """Replay entry of OKX (every instrument type of a recording)."""

    name = "okx"
    frame_errors: dict = {}  # OkxFeed.on_frames reports nothing per frame: counted by the feed

    def detects(self, preview: LineChunk) -> bool:
        """OKX channel labels (``books:BTC-USDT``) on the recorded frames."""
        return bool(_inst_ids(preview))

    @staticmethod
    def snapshot_symbol(url: str) -> None:
        """OKX books start from websocket snapshots: no REST line is replayed."""
        return None

    def build(self, engine, previews: Sequence[LineChunk]) -> OkxReplayFeeds:
        """One OkxFeed per instrument type recorded, prepared offline, added to ``engine``."""
        by_market: dict[str, set[str]] = {}
        for preview in previews:
            for market, ids in _inst_ids(preview).items():
                by_market.setdefault(market, set()).update(ids)
        if not by_market:
            raise ConfigError("no OKX instId found in the recordings' first lines")
        feeds = {}
        for market, ids in sorted(by_market.items()):
            config = OkxConfig(market=market, symbols=tuple(sorted(ids)), ws_url=_NOWHERE_WS,
                               rest_url=_NOWHERE_REST)
            feed = OkxFeed(engine, config)
            feed.load_instruments(None)
            engine.add_feed(feed)
            feeds[market] = feed
        return OkxReplayFeeds(feeds)

    @staticmethod
    def final_books(feeds: OkxReplayFeeds, levels: int) -> dict[tuple[str, int], FinalBook]:
        """Every instrument's top ``levels`` with its checksum counters, keyed by venue."""
        out = {}
        for feed in feeds.feeds.values():
            for inst, stats in feed.books.stats().items():
                bids, asks = feed.books.levels(inst)
                out[feed.name, inst] = FinalBook(bids[:levels], asks[:levels], stats.seq_id,
                                                 stats.applied, stats.resyncs,
                                                 stats.checksum_ok, stats.checksum_fail)
        return out
