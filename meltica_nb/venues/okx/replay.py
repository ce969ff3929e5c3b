"""OKX in replay: recognize a recording, build its feed offline, read its final books.

The entry of :data:`meltica_nb.replay_venue.VENUES` for OKX v5 public recordings (``"okx"``).
OKX pushes are ``{"arg":{"channel":...,"instId":...},"data":[...]}``; the instIds of the
recording are read from those ``arg`` objects in the first lines of each file. Its books start
from the websocket ``books`` snapshot (there is no REST depth snapshot to replay), and
exponents are the feed's defaults (8, which holds every value OKX sends) unless a recorded
``/api/v5/public/instruments`` answer is among the first lines.

One feed serves every recorded instId under the venue ``okx``, so an instrument is reported
by its canonical name (``okx:BTC-USDT`` for ``BTC-USDT``, ``okx:UNI-USD`` for
``UNI-USD-SWAP``); a recording holding two instIds of one canonical name (spot and swap of one
pair) is refused with a ConfigError rather than mixed into one book.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import orjson

from meltica_nb.errors import ConfigError
from meltica_nb.recording_source import REST, LineChunk
from meltica_nb.replay_result import FinalBook
from meltica_nb.venues.okx.config import OkxConfig
from meltica_nb.venues.okx.feed import OkxFeed
from meltica_nb.venues.okx.parsing import FrameStatus
from meltica_nb.venues.ws_book_replay import (
    NOWHERE_REST,
    NOWHERE_WS,
    WebsocketBookReplay,
    frame_error_names,
    recorded_frames,
)

__all__ = ["OkxReplay"]

_PUSH = b'{"arg":{"channel":"'
_INSTRUMENTS_PATH = "/api/v5/public/instruments"



def _inst_ids(preview: LineChunk) -> set[str]:
    """The instIds of the recorded pushes (``arg.instId``)."""
    found = set()
    for raw in recorded_frames(preview):
        if not raw.startswith(_PUSH):
            continue
        try:
            inst_id = orjson.loads(raw)["arg"].get("instId")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            continue  # bad frames are reported when they are replayed
        if isinstance(inst_id, str):
            found.add(inst_id)
    return found


def _instruments_answer(preview: LineChunk) -> bytes | None:
    for label, kind, raw in zip(preview.label, preview.kind.tolist(), preview.raw, strict=True):
        if kind == REST and urlsplit(label[5:]).path == _INSTRUMENTS_PATH:
            return raw
    return None


class OkxReplay(WebsocketBookReplay):
    """Replay entry of OKX v5 public recordings."""

    name = "okx"
    frame_errors = frame_error_names(FrameStatus)

    @staticmethod
    def detects(preview: LineChunk) -> bool:
        """Any frame shaped as an OKX push (``{"arg":{"channel":...``)."""
        return any(raw.startswith(_PUSH) for raw in recorded_frames(preview))

    def build(self, engine, previews: Sequence[LineChunk]) -> OkxFeed:
        """An OkxFeed over the recorded instIds, prepared offline, added to ``engine``."""
        inst_ids: set[str] = set()
        answer = None
        for preview in previews:
            inst_ids |= _inst_ids(preview)
            answer = answer or _instruments_answer(preview)
        if not inst_ids:
            raise ConfigError(f"no {self.name} instId found in the recordings' first lines")
        wanted = tuple(sorted(inst_ids))
        config = OkxConfig(symbols=wanted, channels=("books",), ws_url=NOWHERE_WS,
                           rest_url=NOWHERE_REST, max_streams_per_connection=len(wanted))
        feed = OkxFeed(engine, config)
        feed.load_instruments(answer)
        engine.add_feed(feed)
        return feed

    # -- recording (meltica record) -----------------------------------------------------

    @staticmethod
    def stream_label(frame: bytes) -> str:
        """``books:BTC-USDT`` for a push, ``event:<event>`` for an event message, else ``""``."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return ""
        if not isinstance(msg, dict):
            return ""
        arg = msg.get("arg") if isinstance(msg.get("arg"), dict) else {}
        where = f"{arg.get('channel', '')}:{arg.get('instId', '')}"
        if "event" in msg:
            return f"event:{msg['event']}:{where}" if arg else f"event:{msg['event']}"
        return where if arg else ""

    @staticmethod
    def snapshot_url(feed: OkxFeed, symbol: str) -> str:
        """OKX books are never fetched over REST; the URL such a snapshot would have."""
        return f"{feed.config.rest_url}/api/v5/market/books?instId={symbol}"

    @staticmethod
    def exchange_info_url(feed: OkxFeed) -> str:
        return f"{feed.config.rest_url}{_INSTRUMENTS_PATH}"

    @staticmethod
    def live_feed(engine, symbols, channels, ws_url: str = "", rest_url: str = "") -> OkxFeed:
        """A live spot feed (not yet added to ``engine``), for ``meltica record``."""
        urls = {k: v for k, v in (("ws_url", ws_url), ("rest_url", rest_url)) if v}
        return OkxFeed(engine, OkxConfig(symbols=tuple(symbols), channels=tuple(channels),
                                         **urls))

    # -- results -------------------------------------------------------------------------

    @staticmethod
    def final_books(feed: OkxFeed, levels: int) -> dict[tuple[str, int], FinalBook]:
        """Every seen ``books`` book's top ``levels`` and counters, by (venue, instrument)
        (update_id: the last seqId, 0 when the recording carries none)."""
        out = {}
        for inst, stats in feed.books.stats().items():
            bids, asks = feed.books.levels(inst)
            out[feed.name, inst] = FinalBook(bids[:levels], asks[:levels], max(stats.seq_id, 0),
                                  stats.applied, stats.resyncs, stats.checksum_ok,
                                  stats.checksum_fail)
        return out
