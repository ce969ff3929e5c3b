"""The generated market seen through Kraken's channels: book views, trades and tickers.

:class:`KrakenMarket` is the simulator's feed in Kraken mode. It wraps the generated market
(:mod:`meltica_nb.sim.market`, Binance-shaped events) and publishes Kraken payloads per stream
key (``v2|book|10|BTC/USD``): a ``book`` subscription of one (version, pair, depth) has one
view of the book shared by all its subscribers; each poll sends what changed in the top
``depth`` (0 deletes levels gone from the book, ``"r"`` republishes levels that entered the
range, levels pushed out are left to the client's truncation) and the checksum of the new top
10, computed from the text with ``zlib.crc32``. A later subscriber's snapshot is the shared
view, so the common updates continue from it. The ``checksum`` fault corrupts one level of an
update while its checksum stays that of the true book. Trades and tickers are the generated
market's, reshaped into Kraken v1 arrays and v2 objects.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

import orjson

from meltica_nb.sim.faults import FaultInjector
from meltica_nb.sim.market import GeneratedMarket, Instrument, MarketConfig

__all__ = ["BOOK_DEPTHS", "CHANNELS", "KRAKEN_INSTRUMENTS", "KrakenMarket", "KrakenPair",
           "checksum_of", "iso", "split_key", "stream_key"]

#: The generated Kraken pairs: v1 names use XBT, v2 names BTC.
KRAKEN_INSTRUMENTS = (
    Instrument("BTC-USD", "XBTUSD", "XBT", "USD", "0.1", "0.00000001", "60000"),
    Instrument("ETH-USD", "ETHUSD", "ETH", "USD", "0.01", "0.00000001", "2000"),
)
#: Depths Kraken's ``book`` channel accepts.
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
#: Channels served.
CHANNELS = ("book", "trade", "ticker")


def _decimals(step: str) -> int:
    return max(0, -Decimal(step).as_tuple().exponent)


def checksum_of(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken's book checksum of text levels (best first): top 10 asks then top 10 bids."""
    text = "".join(p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")
                   for p, q in [*asks[:10], *bids[:10]])
    return zlib.crc32(text.encode())


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{ns % 1_000_000_000 // 1000:06d}Z")


class KrakenPair:
    """One generated pair's spellings and decimals."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.v1 = f"{inst.base}/{inst.quote}"
        self.v2 = f"{'BTC' if inst.base == 'XBT' else inst.base}/{inst.quote}"
        self.pd, self.ld = _decimals(inst.tick_size), _decimals(inst.step_size)

    def px(self, text: str) -> str:
        return str(Decimal(text).quantize(Decimal(1).scaleb(-self.pd)))

    def qty(self, text: str) -> str:
        return str(Decimal(text).quantize(Decimal(1).scaleb(-self.ld)))


def stream_key(version: int, channel: str, pair: str, depth: int = 0) -> str:
    """Stream key of a subscription: ``v2|book|10|BTC/USD``."""
    return f"v{version}|{channel}|{depth}|{pair}"


def split_key(key: str) -> tuple[int, str, int, str]:
    version, channel, depth, pair = key.split("|", 3)
    return int(version[1:]), channel, int(depth), pair


class _View:
    """What the subscribers of one book key were last told: top ``depth`` per side, as text."""

    __slots__ = ("alive", "asks", "bids", "depth")

    def __init__(self, depth: int, bids: dict[str, str], asks: dict[str, str],
                 alive: tuple[set, set]) -> None:
        self.depth, self.bids, self.asks = depth, bids, asks
        self.alive = alive  # every price of each side (bids, asks) when the view was made

    def ordered(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        return asks, bids


def _side_diff(old: dict[str, str], new: dict[str, str], was: set[str], alive: set[str]
               ) -> list[list[str]]:
    """Entries turning the ``old`` side into ``new``: changes, deletes of levels gone from the
    book, republishes (``"r"``) of levels that existed before and entered the range."""
    out: list[list[str]] = []
    for price, qty in new.items():
        if old.get(price) != qty:
            out.append([price, qty, "r"] if price not in old and price in was else [price, qty])
    zero = None
    for price, qty in old.items():
        if price not in new and price not in alive:
            zero = zero or "0." + "0" * max(len(qty.partition(".")[2]), 1)
            out.append([price, zero])
    return out


class KrakenMarket:
    """The generated market seen through Kraken's channels (the simulator's feed)."""

    needs_subscriber = False

    def __init__(self, config: MarketConfig | None = None, *, seed: int = 0,
                 faults: FaultInjector | None = None) -> None:
        base = config or MarketConfig()
        if base.instruments is None:
            base = replace(base, instruments=KRAKEN_INSTRUMENTS)
        self.inner = GeneratedMarket(base, market="spot", seed=seed)
        self.market = "spot"
        self.instruments = self.inner.instruments
        self.stream_kinds: frozenset[str] = frozenset(CHANNELS)
        self.extra_streams: frozenset[str] = frozenset()
        self.faults = faults or FaultInjector()
        self.pairs = {p.inst.venue_symbol.lower(): p for p in map(KrakenPair, self.instruments)}
        self.by_name = {n: p for p in self.pairs.values() for n in (p.v1, p.v2)}
        self._views: dict[str, _View] = {}
        self._channel_ids: dict[str, int] = {}
        self._ids = count(100)
        self._trade_ids = {name: count(1) for name in self.by_name}  # per pair, as Kraken

    # -- the simulator's feed interface ---------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.inner.started

    def start(self, now_ns: int) -> None:
        self.inner.start(now_ns)

    def pause(self) -> None:
        self.inner.pause()

    def resume(self) -> None:
        self.inner.resume()

    def stats(self) -> dict:
        return {**self.inner.stats(), "kind": "kraken", "book_views": len(self._views)}

    def poll(self, now_ns: int, wanted: Callable[[str], bool]) -> tuple[list, float]:
        """Advance the market; Kraken payloads (bytes) for every wanted stream key."""
        events, delay = self.inner.poll(now_ns)
        out: list[tuple[str, bytes]] = []
        for stream, payload in events:
            symbol, _, kind = stream.partition("@")
            pair = self.pairs.get(symbol)
            if pair is not None and kind in ("trade", "ticker"):
                out.extend(self._market_event(kind, pair, payload, now_ns, wanted))
        for key in [k for k in self._views if not wanted(k)]:
            del self._views[key]
        for key in list(self._views):
            update = self._book_update(key, now_ns)
            if update is not None:
                out.append((key, update))
        return out, delay

    def book(self, symbol: str, depth: int = 20) -> dict | None:
        """The live top ``depth`` levels per side as Kraken text (``[price, qty]``, best first)."""
        pair = self.by_name.get(symbol) or self.pairs.get(
            symbol.replace("-", "").replace("/", "").lower().replace("btc", "xbt"))
        raw = None if pair is None else self.inner.book(pair.inst.venue_symbol, depth)
        if raw is None:
            return None
        return {"symbol": pair.v2, "bids": [[pair.px(p), pair.qty(q)] for p, q in raw["bids"]],
                "asks": [[pair.px(p), pair.qty(q)] for p, q in raw["asks"]]}

    # -- books ----------------------------------------------------------------------------------

    def _top(self, pair: KrakenPair, depth: int) -> tuple[dict[str, str], dict[str, str], set, set]:
        """Top ``depth`` per side as text, and every price of each side (to tell gone levels)."""
        live = self.book(pair.v2, depth + 64)
        bids = dict(live["bids"])
        asks = dict(live["asks"])
        return (dict(list(bids.items())[:depth]), dict(list(asks.items())[:depth]), set(bids),
                set(asks))

    def snapshot(self, key: str, now_ns: int) -> bytes:
        """The snapshot a new subscriber of ``key`` gets: the shared view (made if new)."""
        version, _, depth, name = split_key(key)
        pair = self.by_name[name]
        if key not in self._views:
            bids, asks, all_bids, all_asks = self._top(pair, depth)
            self._views[key] = _View(depth, bids, asks, (all_bids, all_asks))
        asks, bids = self._views[key].ordered()
        if version == 1:
            ts = f"{now_ns / 1e9:.6f}"
            body = {"as": [[p, q, ts] for p, q in asks], "bs": [[p, q, ts] for p, q in bids]}
            return orjson.dumps([self._channel_id(key), body, f"book-{depth}", name])
        data = {"symbol": name, "bids": [_v2_level(p, q) for p, q in bids],
                "asks": [_v2_level(p, q) for p, q in asks],
                "checksum": checksum_of(asks, bids), "timestamp": iso(now_ns)}
        return orjson.dumps({"channel": "book", "type": "snapshot", "data": [data]})

    def _book_update(self, key: str, now_ns: int) -> bytes | None:
        version, _, depth, name = split_key(key)
        pair, view = self.by_name[name], self._views[key]
        bids, asks, all_bids, all_asks = self._top(pair, depth)
        bid_diff = _side_diff(view.bids, bids, view.alive[0], all_bids)
        ask_diff = _side_diff(view.asks, asks, view.alive[1], all_asks)
        view.alive = (all_bids, all_asks)
        if not bid_diff and not ask_diff:
            return None
        view.bids, view.asks = bids, asks
        checksum = checksum_of(*view.ordered())
        if self.faults.corrupt_checksum():
            entry = (bid_diff or ask_diff)[0]
            entry[1] = pair.qty(str(Decimal(entry[1]) + Decimal(1).scaleb(-pair.ld)))
        if version == 1:
            return self._v1_update(key, name, depth, bid_diff, ask_diff, checksum, now_ns)
        data = {"symbol": name, "bids": [_v2_level(e[0], e[1]) for e in bid_diff],
                "asks": [_v2_level(e[0], e[1]) for e in ask_diff], "checksum": checksum,
                "timestamp": iso(now_ns)}
        return orjson.dumps({"channel": "book", "type": "update", "data": [data]})

    def _v1_update(self, key: str, name: str, depth: int, bid_diff: list, ask_diff: list,
                   checksum: int, now_ns: int) -> bytes:
        ts = f"{now_ns / 1e9:.6f}"

        def entries(diff: list) -> list:
            return [[e[0], e[1], ts, *e[2:]] for e in diff]

        parts: list[Any] = [self._channel_id(key)]
        if ask_diff:
            parts.append({"a": entries(ask_diff)})
        if bid_diff:
            parts.append({"b": entries(bid_diff)})
        parts[-1]["c"] = str(checksum)
        return orjson.dumps([*parts, f"book-{depth}", name])

    def _channel_id(self, key: str) -> int:
        if key not in self._channel_ids:
            self._channel_ids[key] = next(self._ids)
        return self._channel_ids[key]

    # -- trades and tickers ---------------------------------------------------------------------

    def _market_event(self, kind: str, pair: KrakenPair, payload: dict, now_ns: int,
                      wanted: Callable[[str], bool]) -> Iterable[tuple[str, bytes]]:
        for version, name in ((1, pair.v1), (2, pair.v2)):
            key = stream_key(version, kind, name)
            if wanted(key):
                maker = _v1_trade if kind == "trade" else _v1_ticker
                if version == 2:
                    maker = self._v2_trade if kind == "trade" else _v2_ticker
                yield key, maker(self._channel_id(key), pair, payload, now_ns)

    def _v2_trade(self, _cid: int, pair: KrakenPair, t: dict, now_ns: int) -> bytes:
        data = {"symbol": pair.v2, "side": "sell" if t["m"] else "buy",
                "price": float(pair.px(t["p"])), "qty": float(pair.qty(t["q"])),
                "ord_type": "market", "trade_id": next(self._trade_ids[pair.v2]),
                "timestamp": iso(now_ns)}
        return orjson.dumps({"channel": "trade", "type": "update", "data": [data]})


def _v2_level(price: str, qty: str) -> dict:
    return {"price": float(price), "qty": float(qty)}


def _v1_trade(cid: int, pair: KrakenPair, t: dict, now_ns: int) -> bytes:
    trade = [pair.px(t["p"]), pair.qty(t["q"]), f"{now_ns / 1e9:.6f}", "s" if t["m"] else "b",
             "m", ""]
    return orjson.dumps([cid, [trade], "trade", pair.v1])


def _v1_ticker(cid: int, pair: KrakenPair, t: dict, _now_ns: int) -> bytes:
    px, qty = pair.px, pair.qty
    body = {"a": [px(t["a"]), 1, qty(t["A"])], "b": [px(t["b"]), 1, qty(t["B"])],
            "c": [px(t["c"]), qty(t["Q"])], "v": [qty(t["v"]), qty(t["v"])],
            "p": [px(t["w"]), px(t["w"])], "t": [t["n"], t["n"]], "l": [px(t["l"]), px(t["l"])],
            "h": [px(t["h"]), px(t["h"])], "o": [px(t["o"]), px(t["o"])]}
    return orjson.dumps([cid, body, "ticker", pair.v1])


def _v2_ticker(_cid: int, pair: KrakenPair, t: dict, _now_ns: int) -> bytes:
    last, open_ = Decimal(pair.px(t["c"])), Decimal(pair.px(t["o"]))
    data = {"symbol": pair.v2, "bid": float(pair.px(t["b"])), "bid_qty": float(pair.qty(t["B"])),
            "ask": float(pair.px(t["a"])), "ask_qty": float(pair.qty(t["A"])),
            "last": float(last), "volume": float(pair.qty(t["v"])),
            "vwap": float(pair.px(t["w"])), "low": float(pair.px(t["l"])),
            "high": float(pair.px(t["h"])), "change": float(last - open_),
            "change_pct": float(round((last - open_) * 100 / open_, 2)) if open_ else 0.0}
    return orjson.dumps({"channel": "ticker", "type": "update", "data": [data]})
