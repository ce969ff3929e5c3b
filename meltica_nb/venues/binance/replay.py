"""Binance in replay: recognize a recording, build its feed offline, read its final books.

The entry of :data:`meltica_nb.replay_venue.VENUES` for Binance spot (``"binance"``; Binance.US
recordings have the same format and replay as spot) and USD-M futures (``"binance-futures"``).

Symbols and exponents come from the recording itself, never from the network: the symbols
are those of the stream labels (``btcusdt@depth@100ms`` -> ``BTCUSDT``) and REST depth URLs
(``...?symbol=BTCUSDT``) in the first lines of each file; a recorded ``exchangeInfo``
response, when there is one, names base and quote assets and gives the exponents (from its
filters); otherwise a symbol is split by its quote suffix (``BTC-USDT``) with exponent 8,
which holds every value Binance sends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson

from meltica_nb.errors import ConfigError
from meltica_nb.recording_source import FRAME, REST, LineChunk
from meltica_nb.replay_result import FinalBook
from meltica_nb.venues.binance.config import BinanceConfig
from meltica_nb.venues.binance.feed import BinanceFeed
from meltica_nb.venues.binance.parsing import FrameStatus
from meltica_nb.venues.binance.symbols import split_by_quote
from meltica_nb.venues.ws_book_replay import NOWHERE_REST, NOWHERE_WS

__all__ = ["BinanceReplay"]

_STREAM = re.compile(r"^([a-z0-9]+)@(depth|trade|aggTrade|bookTicker|kline_|ticker|miniTicker)")
_NAMES = {"spot": "binance", "usdm": "binance-futures"}
_COMBINED = b'{"stream":"'

def _rest_urls(preview: LineChunk):
    return (urlsplit(label[5:]) for label, kind in zip(preview.label, preview.kind.tolist(),
                                                        strict=True) if kind == REST)


def _stream_symbols(preview: LineChunk) -> set[str]:
    found = set()
    for label in set(preview.label):
        match = _STREAM.match(label)
        if match:
            found.add(match.group(1).upper())
    return found


def _is_binance(preview: LineChunk) -> bool:
    return bool(_stream_symbols(preview)) or any(
        "binance" in (url.hostname or "") for url in _rest_urls(preview))


def _is_usdm(preview: LineChunk) -> bool:
    if any(url.path.startswith("/fapi/") for url in _rest_urls(preview)):
        return True
    depth = {label for label in set(preview.label) if "@depth" in label}
    frames = np.flatnonzero(preview.kind == FRAME).tolist()
    first = next((i for i in frames if preview.label[i] in depth), None)
    return first is not None and b'"pu":' in preview.raw[first]  # every USD-M diff has one


class BinanceReplay:
    """Replay entry of one Binance market (``"spot"`` or ``"usdm"``)."""

    frame_errors = {FrameStatus.MALFORMED: "malformed message",
                    FrameStatus.UNKNOWN: "unknown message",
                    FrameStatus.UNKNOWN_SYMBOL: "unknown symbol",
                    FrameStatus.BAD_VALUE: "bad value"}

    def __init__(self, market: str):
        self.market = market
        self.name = _NAMES[market]

    def detects(self, preview: LineChunk) -> bool:
        """Binance stream labels or REST URLs; USD-M by ``/fapi/`` or ``pu`` in the first
        depth diff."""
        return _is_binance(preview) and _is_usdm(preview) == (self.market == "usdm")

    def snapshot_symbol(self, url: str) -> str | None:
        """``BTCUSDT`` of ``https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000``."""
        parts = urlsplit(url)
        if not parts.path.endswith("/depth"):
            return None
        symbol = parse_qs(parts.query).get("symbol", [""])[0].upper()
        return symbol or None

    def build(self, engine, previews: Sequence[LineChunk]) -> BinanceFeed:
        """A BinanceFeed over the recorded symbols, prepared offline, added to ``engine``."""
        symbols: set[str] = set()
        info = b"{}"
        for preview in previews:
            symbols |= _stream_symbols(preview)
            for label, kind, raw in zip(preview.label, preview.kind.tolist(), preview.raw,
                                        strict=True):
                if kind != REST:
                    continue
                url = label[5:]
                if urlsplit(url).path.endswith("/exchangeInfo"):
                    info = raw
                elif (symbol := self.snapshot_symbol(url)) is not None:
                    symbols.add(symbol)
        canonical = _canonical(symbols, info)
        if not canonical:
            raise ConfigError(f"no {self.name} symbol found in the recordings' first lines")
        config = BinanceConfig(market=self.market, symbols=canonical, ws_url=NOWHERE_WS,
                               rest_url=NOWHERE_REST,
                               max_streams_per_connection=len(canonical))
        feed = BinanceFeed(engine, config)
        feed.prepare_from(info)
        engine.add_feed(feed)
        return feed

    # -- recording (meltica record) -----------------------------------------------------

    @staticmethod
    def stream_label(frame: bytes) -> str:
        """The label of a recorded frame: its combined-stream name, ``event:reply`` for a
        subscription reply, else ``""``."""
        if frame.startswith(_COMBINED):
            end = frame.find(b'"', len(_COMBINED))
            if end > 0:
                return frame[len(_COMBINED):end].decode("ascii", "replace")
        if frame.startswith(b'{"result"') or frame.startswith(b'{"id"'):
            return "event:reply"
        return ""

    @staticmethod
    def snapshot_url(feed: BinanceFeed, symbol: str) -> str:
        """The URL a depth snapshot of ``symbol`` was fetched from."""
        c = feed.config
        return (f"{c.rest_url}{c.defaults.rest_prefix}/depth?symbol={symbol}"
                f"&limit={c.snapshot_limit}")

    @staticmethod
    def exchange_info_url(feed: BinanceFeed) -> str:
        c = feed.config
        return f"{c.rest_url}{c.defaults.rest_prefix}/exchangeInfo"

    def live_feed(self, engine, symbols, channels, ws_url: str = "", rest_url: str = ""
                  ) -> BinanceFeed:
        """A live feed of this market (not yet added to ``engine``), for ``meltica record``."""
        config = BinanceConfig.from_env(market=self.market, symbols=tuple(symbols),
                                        channels=tuple(channels), ws_url=ws_url,
                                        rest_url=rest_url)
        return BinanceFeed(engine, config)

    # -- results -------------------------------------------------------------------------

    @staticmethod
    def final_books(feed: BinanceFeed, levels: int) -> dict[tuple[str, int], FinalBook]:
        """Every seen instrument's top ``levels`` and book counters, by (venue, instrument)."""
        out = {}
        for inst, stats in feed.books.stats().items():
            bids, asks = feed.books.books.levels(inst)
            out[feed.name, inst] = FinalBook(bids[:levels], asks[:levels], stats.book_id,
                                             stats.applied, stats.resyncs, 0, 0)
        return out


def _canonical(symbols: set[str], info: bytes) -> tuple[str, ...]:
    """``BASE-QUOTE`` names: from exchangeInfo assets when listed, else by quote suffix."""
    assets = {}
    try:
        entries = orjson.loads(info).get("symbols") or []
    except (orjson.JSONDecodeError, AttributeError):
        entries = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("symbol"), str):
            assets[entry["symbol"]] = (entry.get("baseAsset"), entry.get("quoteAsset"))
    names = set()
    for symbol in symbols:
        base, quote = assets.get(symbol, (None, None))
        if not (isinstance(base, str) and isinstance(quote, str)):
            try:
                base, quote = split_by_quote(symbol)
            except ConfigError:
                continue  # its frames are reported as unknown symbols
        names.add(f"{base}-{quote}")
    return tuple(sorted(names))
