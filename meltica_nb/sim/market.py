"""A generated market: seeded random-walk order books, trades and tickers in Binance's shapes.

Each symbol keeps an authoritative book (hundreds of levels per side, prices and quantities as
integers in units of ``10**-decimals``, printed as exact fixed-decimal strings). Every book change
gets the next update id; diff-depth streams aggregate the changes of their window
(``U`` = first id, ``u`` = last id, absolute quantities, ``"0"`` deletes), so consecutive events
of one stream always satisfy ``U == previous u + 1``. ``@bookTicker`` is emitted on every change
of the top of book with ``u`` = the id of that change, trades take liquidity from the top level
(each fill is one book change), and ``@ticker`` / ``@kline_1m`` summarise the trades.

The sequence of book changes depends only on the seed: wall-clock time decides *how many* changes
happen before a window closes, never *which*. ``time_scale`` multiplies every interval (0.1 runs
the whole market ten times faster) so tests stay short.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from meltica_nb.errors import ConfigError

__all__ = [
    "SPOT_INSTRUMENTS",
    "USDM_INSTRUMENTS",
    "GeneratedMarket",
    "Instrument",
    "MarketConfig",
    "stream_kinds",
]

Event = tuple[str, dict]


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol: canonical name, venue name, assets, tick and step sizes."""

    symbol: str
    venue_symbol: str
    base: str
    quote: str
    tick_size: str
    step_size: str
    start_price: str = "100"
    min_notional: str = "5"  # in the quote asset (exchangeInfo NOTIONAL / MIN_NOTIONAL)

    @property
    def stream_symbol(self) -> str:
        """The lowercase symbol used in stream names (``btcusdt``)."""
        return self.venue_symbol.lower()


SPOT_INSTRUMENTS = (
    Instrument("BTC-USDT", "BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "60000"),
    Instrument("ETH-USDT", "ETHUSDT", "ETH", "USDT", "0.01", "0.0001", "2000"),
)
USDM_INSTRUMENTS = (
    Instrument("BTC-USDT", "BTCUSDT", "BTC", "USDT", "0.10", "0.001", "60000"),
    Instrument("ETH-USDT", "ETHUSDT", "ETH", "USDT", "0.01", "0.001", "2000"),
)

#: Diff-depth streams per market: stream suffix -> window in ms (before time_scale).
_DIFF_WINDOWS = {
    "spot": {"depth@100ms": 100, "depth": 1000},
    "usdm": {"depth@0ms": 0, "depth@100ms": 100, "depth": 250, "depth@500ms": 500},
}
#: Partial-depth speeds per market: suffix ("" = default speed) -> interval in ms.
_PARTIAL_SPEEDS = {
    "spot": {"": 1000, "@100ms": 100},
    "usdm": {"": 250, "@100ms": 100, "@500ms": 500},
}
_PARTIAL_LEVELS = (5, 10, 20)
_OTHER_KINDS = ("trade", "aggTrade", "bookTicker", "ticker", "kline_1m")


def stream_kinds(market: str) -> frozenset[str]:
    """The stream suffixes (after ``<symbol>@``) a generated ``market`` produces."""
    kinds = set(_DIFF_WINDOWS[market]) | set(_OTHER_KINDS)
    for levels in _PARTIAL_LEVELS:
        kinds.update(f"depth{levels}{speed}" for speed in _PARTIAL_SPEEDS[market])
    return frozenset(kinds)


@dataclass(frozen=True)
class MarketConfig:
    """Shape and pace of the generated market (defaults: Binance-like pace)."""

    instruments: tuple[Instrument, ...] | None = None  # None: the market's defaults
    levels: int = 500  # levels kept per side
    updates_per_s: float = 200.0  # book activity per symbol per (scaled) second
    taker_share: float = 0.05  # share of activity that is a taker order (trades)
    time_scale: float = 1.0  # multiplies every interval; 0.1 = ten times faster
    ticker_ms: int = 1000  # @ticker push interval
    kline_ms: int = 2000  # @kline_1m push interval
    notional: float = 2000.0  # typical quote value of one level
    initial_update_id: int = 1_000_000_000
    initial_trade_id: int = 100_000_000

    def __post_init__(self) -> None:
        if self.levels < 10:
            raise ConfigError(f"levels must be >= 10, got {self.levels}")
        if self.time_scale <= 0 or self.updates_per_s <= 0:
            raise ConfigError("time_scale and updates_per_s must be > 0")

    @classmethod
    def fast(cls, **overrides) -> MarketConfig:
        """A small market ten times faster than real time, for tests and demos."""
        values = {"levels": 200, "time_scale": 0.1, "updates_per_s": 100.0}
        values.update(overrides)
        return cls(**values)


def _decimals(text: str) -> int:
    exponent = Decimal(text).as_tuple().exponent
    return max(0, -int(exponent))


def _units(text: str, decimals: int) -> int:
    value = Decimal(text).scaleb(decimals)
    if value != value.to_integral_value():
        raise ConfigError(f"{text} has more than {decimals} decimals")
    return int(value)


class _Fmt:
    """Integer units of ``10**-decimals`` to exact fixed-decimal text (``"61837.63000000"``)."""

    __slots__ = ("decimals", "scale")

    def __init__(self, decimals: int) -> None:
        self.decimals = decimals
        self.scale = 10**decimals

    def __call__(self, value: int) -> str:
        sign = "-" if value < 0 else ""
        whole, frac = divmod(abs(value), self.scale)
        if not self.decimals:
            return f"{sign}{whole}"
        return f"{sign}{whole}.{frac:0{self.decimals}d}"


def _rescale(value: int, from_decimals: int, to_decimals: int) -> int:
    if to_decimals >= from_decimals:
        return value * 10 ** (to_decimals - from_decimals)
    return int(value / 10 ** (from_decimals - to_decimals))


class _Side:
    """One side of a book: price -> quantity, prices kept sorted ascending."""

    __slots__ = ("bid", "levels", "prices")

    def __init__(self, bid: bool) -> None:
        self.bid = bid
        self.levels: dict[int, int] = {}
        self.prices: list[int] = []

    def __len__(self) -> int:
        return len(self.prices)

    def best(self) -> int:
        return self.prices[-1] if self.bid else self.prices[0]

    def at(self, depth: int) -> int:
        """The price ``depth`` levels away from the top (0 = best)."""
        return self.prices[-1 - depth] if self.bid else self.prices[depth]

    def set(self, price: int, qty: int) -> None:
        if qty <= 0:
            if price in self.levels:
                del self.levels[price]
                del self.prices[bisect.bisect_left(self.prices, price)]
            return
        if price not in self.levels:
            bisect.insort(self.prices, price)
        self.levels[price] = qty

    def top(self, n: int) -> list[tuple[int, int]]:
        if n <= 0:
            return []
        prices = self.prices[-n:][::-1] if self.bid else self.prices[:n]
        return [(p, self.levels[p]) for p in prices]


class _Window:
    """The changes of one diff-depth stream since its last event."""

    __slots__ = ("asks", "bids", "due", "first", "interval", "last", "prev_u", "stream")

    def __init__(self, stream: str, interval: float, now_ms: int, update_id: int) -> None:
        self.stream = stream
        self.interval = interval
        self.due = now_ms + interval
        self.first = self.last = 0
        self.prev_u = update_id
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def add(self, bid: bool, price: int, qty: int, update_id: int) -> None:
        if not self.first:
            self.first = update_id
        self.last = update_id
        (self.bids if bid else self.asks)[price] = qty

    def take(self, now_ms: int) -> tuple[int, int, int, dict, dict] | None:
        """(U, u, pu, bids, asks) when the window is due and saw changes, else None."""
        if now_ms < self.due:
            return None
        self.due += self.interval
        if self.due <= now_ms and self.interval:
            self.due = now_ms + self.interval
        if not self.first:
            return None
        out = (self.first, self.last, self.prev_u, self.bids, self.asks)
        self.prev_u, self.first, self.last = self.last, 0, 0
        self.bids, self.asks = {}, {}
        return out


class _Timer:
    __slots__ = ("due", "interval")

    def __init__(self, interval: float, now_ms: int) -> None:
        self.interval = interval
        self.due = now_ms + interval

    def fire(self, now_ms: int) -> bool:
        if now_ms < self.due:
            return False
        self.due += self.interval
        if self.due <= now_ms:
            self.due = now_ms + self.interval
        return True


class _Candle:
    """Trade statistics of a period (24 h ticker session or one kline)."""

    __slots__ = ("close", "count", "first", "high", "last", "last_qty", "low", "open", "quote",
                 "start", "taker_quote", "taker_vol", "volume")

    def __init__(self, price: int, start_ms: int) -> None:
        self.start = start_ms
        self.open = self.high = self.low = self.close = price
        self.volume = self.quote = self.taker_vol = self.taker_quote = self.count = 0
        self.last_qty = 0
        self.first = self.last = -1

    def add(self, trade_id: int, price: int, qty: int, taker_buy: bool) -> None:
        if self.count == 0:
            self.open = self.high = self.low = price
            self.first = trade_id
        self.high, self.low, self.close, self.last = max(self.high, price), min(self.low, price), \
            price, trade_id
        self.count += 1
        self.last_qty = qty
        self.volume += qty
        self.quote += price * qty
        if taker_buy:
            self.taker_vol += qty
            self.taker_quote += price * qty


class _SymbolMarket:
    """The book, trades and statistics of one symbol."""

    def __init__(self, inst: Instrument, market: str, cfg: MarketConfig, seed: int,
                 now_ms: int) -> None:
        self.inst, self.market, self.cfg = inst, market, cfg
        self.sym = inst.venue_symbol
        self.rng = random.Random(f"{seed}/{inst.venue_symbol}")
        spot = market == "spot"
        self.pd = 8 if spot else _decimals(inst.tick_size)
        self.qd = 8 if spot else _decimals(inst.step_size)
        self.px, self.qty = _Fmt(self.pd), _Fmt(self.qd)
        self.tick = _units(inst.tick_size, self.pd)
        self.lot = _units(inst.step_size, self.qd)
        start = _units(inst.start_price, self.pd) // self.tick * self.tick
        steps = cfg.notional * 10**self.pd / max(start, 1) / (self.lot / 10**self.qd)
        self.qty_mu = math.log(max(steps, 1.0))
        self.bids, self.asks = _Side(True), _Side(False)
        self.update_id = cfg.initial_update_id
        self.trade_id = self.agg_id = cfg.initial_trade_id
        self.now_ms = now_ms
        self.events: list[Event] = []
        self._seed_book(start)
        self._start_streams(now_ms, start)

    # -- set-up ----------------------------------------------------------------------------

    def _seed_book(self, best_bid: int) -> None:
        for bid, price in ((True, best_bid), (False, best_bid + self.tick)):
            side = self.bids if bid else self.asks
            sign = -1 if bid else 1
            for _ in range(self.cfg.levels):
                side.set(price, self._rand_qty())
                price += sign * self.tick * self.rng.randint(1, 3)
                if price <= 0:
                    break

    def _start_streams(self, now_ms: int, start: int) -> None:
        scale, s = self.cfg.time_scale, self.inst.stream_symbol
        self.windows = [_Window(f"{s}@{kind}", ms * scale, now_ms, self.update_id)
                        for kind, ms in _DIFF_WINDOWS[self.market].items()]
        self.partials = [[f"{s}@depth{n}{speed}", n, _Timer(ms * scale, now_ms), self.update_id]
                         for n in _PARTIAL_LEVELS
                         for speed, ms in _PARTIAL_SPEEDS[self.market].items()]
        self.ticker_timer = _Timer(self.cfg.ticker_ms * scale, now_ms)
        self.kline_timer = _Timer(self.cfg.kline_ms * scale, now_ms)
        self.session = _Candle(start, now_ms)
        self.kline = _Candle(start, now_ms // 60_000 * 60_000)
        self.streams = {k: f"{s}@{k}" for k in _OTHER_KINDS}
        self.last_top = self._top()

    # -- book changes ----------------------------------------------------------------------

    def _rand_qty(self) -> int:
        return max(1, int(self.rng.lognormvariate(self.qty_mu, 1.0))) * self.lot

    def _set(self, bid: bool, price: int, qty: int) -> None:
        """Apply one book change: next update id, every window, bookTicker if the top moved."""
        self.update_id += 1
        (self.bids if bid else self.asks).set(price, qty)
        for window in self.windows:
            window.add(bid, price, qty, self.update_id)
        top = self._top()
        if top != self.last_top:
            self.last_top = top
            self.events.append((self.streams["bookTicker"], self._book_ticker(top)))

    def _top(self) -> tuple[int, int, int, int]:
        bb, ba = self.bids.best(), self.asks.best()
        return bb, self.bids.levels[bb], ba, self.asks.levels[ba]

    def step(self) -> None:
        """One unit of market activity (a taker order, an insert, a modify or a cancel)."""
        draw = self.rng.random()
        if draw < self.cfg.taker_share:
            self._taker()
        elif draw < 0.40:
            self._insert()
        elif draw < 0.75:
            self._modify()
        else:
            self._cancel()
        self._maintain()

    def _insert(self) -> None:
        bid = self.rng.random() < 0.5
        side = self.bids if bid else self.asks
        gap = (self.asks.best() - self.bids.best()) // self.tick
        if gap > 1 and self.rng.random() < 0.5:
            inside = self.rng.randint(1, gap - 1) * self.tick
            price = self.bids.best() + inside if bid else self.asks.best() - inside
        else:
            behind = int(self.rng.expovariate(1 / 8)) * self.tick
            price = side.best() - behind if bid else side.best() + behind
        if price > 0:
            self._set(bid, price, side.levels.get(price, 0) + self._rand_qty())

    def _pick(self) -> tuple[bool, _Side, int]:
        bid = self.rng.random() < 0.5
        side = self.bids if bid else self.asks
        depth = min(len(side) - 1, int(self.rng.expovariate(1 / 20)))
        return bid, side, side.at(depth)

    def _modify(self) -> None:
        bid, _, price = self._pick()
        self._set(bid, price, self._rand_qty())

    def _cancel(self) -> None:
        bid, side, price = self._pick()
        if len(side) > self.cfg.levels // 2:
            self._set(bid, price, 0)

    def _maintain(self) -> None:
        """Keep each side between ``levels`` and 1.2 x ``levels`` by acting at the far end."""
        for bid, side in ((True, self.bids), (False, self.asks)):
            while len(side) < self.cfg.levels:
                far = side.at(len(side) - 1)
                price = far + (-1 if bid else 1) * self.tick * self.rng.randint(1, 3)
                if price <= 0:
                    break
                self._set(bid, price, self._rand_qty())
            while len(side) > self.cfg.levels * 6 // 5:
                self._set(bid, side.at(len(side) - 1), 0)

    # -- trades ----------------------------------------------------------------------------

    def _taker(self) -> None:
        """A market order sweeping up to three levels; each level is one aggTrade."""
        buy = self.rng.random() < 0.5
        side = self.asks if buy else self.bids
        remaining = self._rand_qty() * self.rng.randint(1, 4)
        for _ in range(3):
            if remaining <= 0 or len(side) <= 1:
                break
            price = side.best()
            take = min(side.levels[price], remaining)
            self._fill(buy, price, take)
            remaining -= take

    def _fill(self, buy: bool, price: int, take: int) -> None:
        side = self.asks if buy else self.bids
        steps = take // self.lot
        parts = [take] if steps < 2 or self.rng.random() < 0.6 else \
            [steps // 2 * self.lot, take - steps // 2 * self.lot]
        first = self.trade_id + 1
        for qty in parts:
            self.trade_id += 1
            self._set(not buy, price, side.levels[price] - qty)
            self.session.add(self.trade_id, price, qty, buy)
            self.kline.add(self.trade_id, price, qty, buy)
            self.events.append((self.streams["trade"], self._trade(price, qty, buy)))
        self.agg_id += 1
        self.events.append((self.streams["aggTrade"], self._agg(price, take, buy, first)))

    # -- payloads --------------------------------------------------------------------------

    def _book_ticker(self, top: tuple[int, int, int, int]) -> dict:
        bb, bq, ba, aq = top
        body = {"u": self.update_id, "s": self.sym, "b": self.px(bb), "B": self.qty(bq),
                "a": self.px(ba), "A": self.qty(aq)}
        if self.market == "usdm":
            return {"e": "bookTicker", "E": self.now_ms, "T": self.now_ms, **body}
        return body

    def _trade(self, price: int, qty: int, buy: bool) -> dict:
        if self.market == "usdm":
            return {"e": "trade", "E": self.now_ms, "T": self.now_ms, "s": self.sym,
                    "t": self.trade_id, "p": self.px(price), "q": self.qty(qty), "X": "MARKET",
                    "m": not buy}
        return {"e": "trade", "E": self.now_ms, "s": self.sym, "t": self.trade_id,
                "p": self.px(price), "q": self.qty(qty), "T": self.now_ms, "m": not buy, "M": True}

    def _agg(self, price: int, qty: int, buy: bool, first: int) -> dict:
        body = {"e": "aggTrade", "E": self.now_ms, "s": self.sym, "a": self.agg_id,
                "p": self.px(price), "q": self.qty(qty), "f": first, "l": self.trade_id,
                "T": self.now_ms, "m": not buy}
        if self.market == "spot":
            body["M"] = True
        return body

    def _levels(self, levels: dict[int, int] | list[tuple[int, int]], bid: bool) -> list:
        items = sorted(levels.items(), reverse=bid) if isinstance(levels, dict) else levels
        return [[self.px(p), self.qty(q)] for p, q in items]

    def _diff(self, first: int, last: int, prev: int, bids: dict, asks: dict) -> dict:
        body: dict = {"e": "depthUpdate", "E": self.now_ms}
        if self.market == "usdm":
            body["T"] = self.now_ms
        body.update(s=self.sym, U=first, u=last)
        if self.market == "usdm":
            body["pu"] = prev
        body.update(b=self._levels(bids, True), a=self._levels(asks, False))
        return body

    def _partial(self, levels: int, prev: int) -> dict:
        bids = self._levels(self.bids.top(levels), True)
        asks = self._levels(self.asks.top(levels), False)
        if self.market == "spot":
            return {"lastUpdateId": self.update_id, "bids": bids, "asks": asks}
        body = {"e": "depthUpdate", "E": self.now_ms, "T": self.now_ms, "s": self.sym,
                "U": prev + 1, "u": self.update_id, "pu": prev,
                "b": bids, "a": asks}
        return body

    def _ticker(self) -> dict:
        c = self.session
        change = c.close - c.open
        body = {"e": "24hrTicker", "E": self.now_ms, "s": self.sym, "p": self.px(change),
                "P": _Fmt(3)(change * 100_000 // max(c.open, 1)), "w": self._wavg(c)}
        if self.market == "spot":
            body["x"] = self.px(c.open)
        body.update(c=self.px(c.close), Q=self.qty(c.last_qty))
        if self.market == "spot":
            bb, bq, ba, aq = self.last_top
            body.update(b=self.px(bb), B=self.qty(bq), a=self.px(ba), A=self.qty(aq))
        body.update(o=self.px(c.open), h=self.px(c.high), l=self.px(c.low),
                    v=self.qty(c.volume), q=self._quote(c.quote), O=c.start, C=self.now_ms,
                    F=c.first, L=c.last, n=c.count)
        return body

    def _wavg(self, c: _Candle) -> str:
        return self.px(c.quote // c.volume if c.volume else c.close)

    def _quote(self, value: int) -> str:
        return _Fmt(8)(_rescale(value, self.pd + self.qd, 8))

    def _kline(self, final: bool) -> dict:
        c = self.kline
        k = {"t": c.start, "T": c.start + 59_999, "s": self.sym, "i": "1m", "f": c.first,
             "L": c.last, "o": self.px(c.open), "c": self.px(c.close), "h": self.px(c.high),
             "l": self.px(c.low), "v": self.qty(c.volume), "n": c.count, "x": final,
             "q": self._quote(c.quote), "V": self.qty(c.taker_vol),
             "Q": self._quote(c.taker_quote), "B": "0"}
        return {"e": "kline", "E": self.now_ms, "s": self.sym, "k": k}

    # -- the clock -------------------------------------------------------------------------

    def flush(self, now_ms: int, wanted: Callable[[str], bool]) -> list[Event]:
        """Close due windows and timers; return every event produced since the last flush."""
        self.now_ms = now_ms
        for window in self.windows:
            taken = window.take(now_ms)
            if taken is not None:
                self.events.append((window.stream, self._diff(*taken)))
        self._flush_partials(now_ms, wanted)
        if self.ticker_timer.fire(now_ms):
            self.events.append((self.streams["ticker"], self._ticker()))
        if self.kline_timer.fire(now_ms):
            self._flush_kline(now_ms)
        events, self.events = self.events, []
        return events

    def _flush_partials(self, now_ms: int, wanted: Callable[[str], bool]) -> None:
        for partial in self.partials:
            stream, levels, timer, prev = partial
            if timer.fire(now_ms) and wanted(stream):
                self.events.append((stream, self._partial(levels, prev)))
                partial[3] = self.update_id

    def _flush_kline(self, now_ms: int) -> None:
        stream = self.streams["kline_1m"]
        minute = now_ms // 60_000 * 60_000
        if minute > self.kline.start:
            self.events.append((stream, self._kline(True)))
            self.kline = _Candle(self.kline.close, minute)
        self.events.append((stream, self._kline(False)))

    # -- views -----------------------------------------------------------------------------

    def book(self, depth: int) -> dict:
        return {"symbol": self.sym, "lastUpdateId": self.update_id,
                "bids": self._levels(self.bids.top(depth), True),
                "asks": self._levels(self.asks.top(depth), False)}


def _always(_stream: str) -> bool:
    return True


class GeneratedMarket:
    """Every symbol of a generated market, advanced by the simulator's clock.

    Not thread-safe: the simulator calls it from its event-loop thread only.
    """

    needs_subscriber = False

    def __init__(self, config: MarketConfig | None = None, *, market: str = "spot",
                 seed: int = 0) -> None:
        if market not in _DIFF_WINDOWS:
            raise ConfigError(f"market must be 'spot' or 'usdm', got {market!r}")
        self.config = config or MarketConfig()
        self.market = market
        self.seed = int(seed)
        default = SPOT_INSTRUMENTS if market == "spot" else USDM_INSTRUMENTS
        self.instruments: tuple[Instrument, ...] = self.config.instruments or default
        self.stream_kinds = stream_kinds(market)
        self.extra_streams: frozenset[str] = frozenset()
        self.paused = False
        self._symbols: dict[str, _SymbolMarket] = {}
        self._last_ms = 0
        self._credit = 0.0

    def start(self, now_ns: int) -> None:
        """Build the books at ``now_ns`` (epoch ns); called once by the simulator."""
        now_ms = now_ns // 1_000_000
        self._last_ms = now_ms
        self._symbols = {i.venue_symbol: _SymbolMarket(i, self.market, self.config, self.seed,
                                                       now_ms) for i in self.instruments}

    @property
    def started(self) -> bool:
        return bool(self._symbols)

    def pause(self) -> None:
        """Stop book activity; pending windows still close (so diffs catch up with the book)."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def poll(self, now_ns: int, wanted: Callable[[str], bool] = _always,
             ) -> tuple[list[Event], float]:
        """Advance to ``now_ns``: the events due, and seconds until the next poll."""
        now_ms = now_ns // 1_000_000
        elapsed = min(max(now_ms - self._last_ms, 0), 1000)
        self._last_ms = now_ms
        steps = 0
        if not self.paused:
            self._credit += elapsed * self.config.updates_per_s / 1000 / self.config.time_scale
            steps, self._credit = int(self._credit), self._credit % 1
        events: list[Event] = []
        for sym in self._symbols.values():
            for _ in range(steps):
                sym.step()
            events.extend(sym.flush(now_ms, wanted))
        return events, min(0.01, 0.1 * self.config.time_scale)

    def _get(self, symbol: str) -> _SymbolMarket | None:
        key = symbol.upper().replace("-", "").replace("/", "")
        return self._symbols.get(key)

    def book(self, symbol: str, depth: int = 20) -> dict | None:
        """Top ``depth`` levels per side as decimal strings, with ``lastUpdateId``."""
        sym = self._get(symbol)
        return None if sym is None else sym.book(depth)

    def depth_snapshot(self, symbol: str, limit: int) -> dict | None:
        """The REST depth body: ``{"lastUpdateId", "bids", "asks"}`` (None: unknown symbol)."""
        book = self.book(symbol, limit)
        if book is None:
            return None
        return {"lastUpdateId": book["lastUpdateId"], "bids": book["bids"], "asks": book["asks"]}

    def stats(self) -> dict:
        return {"kind": "generated", "market": self.market, "seed": self.seed,
                "paused": self.paused,
                "update_ids": {k: s.update_id for k, s in self._symbols.items()},
                "trade_ids": {k: s.trade_id for k, s in self._symbols.items()}}
