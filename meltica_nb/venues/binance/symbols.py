"""Binance symbols ("BTCUSDT", stream prefix "btcusdt") to canonical "BTC-USDT" and registry ids.

Binance spells an instrument as one word, ``BTCUSDT``, and its stream names in lower case
(``btcusdt@trade``). The registry only knows the canonical ``BASE-QUOTE`` spelling, so this
module splits the word, registers the instrument and remembers its decimal exponents:

* from ``exchangeInfo`` when available (``symbols[].symbol / baseAsset / quoteAsset``; the price
  exponent is the number of decimals of ``PRICE_FILTER.tickSize``, the quantity exponent that of
  ``LOT_SIZE.stepSize``: ``"0.01000000"`` -> 2);
* otherwise by a quote-asset suffix (longest first: ``USDT``, ``FDUSD``, ... ``BTC``, ``EUR``)
  with exponent 8 for both, because Binance sends at most 8 decimals.

An instrument registered earlier (another venue, or the other Binance market) keeps its
exponents as long as they hold every value this venue can send; fewer decimals than the tick
needs is a :class:`ConfigError`, since a mantissa is never rounded.

For the byte scanner (:mod:`meltica_nb.kernels.binance_scan_kernels`) :meth:`BinanceSymbols.table`
builds a :class:`SymbolTable`: an open-addressing table of 64-bit FNV-1a hashes of the
upper-case symbol bytes (stored as two 32-bit limbs, so the kernel needs no wrapping 64-bit
multiply) with the symbol bytes to confirm a hit, and the per-instrument exponent arrays.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import orjson

from meltica_nb.errors import ConfigError
from meltica_nb.fixedpoint import normalize
from meltica_nb.registry import DEFAULT_PRICE_EXP, DEFAULT_QTY_EXP, Registry

__all__ = [
    "BINANCE_MAX_DECIMALS",
    "MAX_SYMBOL_LEN",
    "QUOTE_ASSETS",
    "BinanceSymbol",
    "BinanceSymbols",
    "SymbolTable",
    "fnv1a64",
    "split_by_quote",
]

#: Binance prices and quantities never carry more decimals than this.
BINANCE_MAX_DECIMALS = 8

#: Longest Binance symbol the scanner table holds (the registry caps names at 32 as well).
MAX_SYMBOL_LEN = 32

#: Quote assets recognised by the suffix fallback, longest first so "BTCTUSD" is BTC-TUSD.
QUOTE_ASSETS: tuple[str, ...] = tuple(sorted(
    ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "USDP", "USDS", "DAI", "UST", "PAX", "VAI",
     "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL",
     "EUR", "AEUR", "EURI", "TRY", "BRL", "GBP", "AUD", "RUB", "UAH", "BIDR", "IDRT", "NGN",
     "ZAR", "PLN", "RON", "ARS", "JPY", "MXN", "COP", "CZK", "BVND", "USD"),
    key=lambda q: (-len(q), q)))

_INT64_MAX = 2**63 - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
_WORD_RE = re.compile(r"[A-Z0-9]{2,32}")
_ASSET_RE = re.compile(r"[A-Z0-9]+")


def fnv1a64(data: bytes) -> int:
    """64-bit FNV-1a hash of ``data`` (``fnv1a64(b"a") == 0xAF63DC4C8601EC8C``)."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


class BinanceSymbol(NamedTuple):
    """One Binance symbol as registered: its spellings, instrument id and exponents."""

    symbol: str        # "BTCUSDT", as Binance sends it in "s"
    canonical: str     # "BTC-USDT", the registry name
    instrument: int    # registry instrument id
    price_exp: int
    qty_exp: int

    @property
    def stream_prefix(self) -> str:
        """Lower-case symbol that starts stream names: ``"btcusdt"`` of ``btcusdt@trade``."""
        return self.symbol.lower()


class SymbolTable(NamedTuple):
    """The arrays the byte scanner looks symbols up in (see :func:`BinanceSymbols.table`).

    ``slots[cap, 3]`` holds (hash high 32 bits, hash low 32 bits, row) with row -1 for an empty
    slot, probed linearly from ``low & (cap - 1)``; row ``r`` spells its symbol in
    ``sym_bytes[r, :sym_len[r]]`` and names instrument ``sym_inst[r]``. ``price_exp`` /
    ``qty_exp`` / ``quote_exp`` are indexed by instrument id (entry 0 holds the defaults);
    ``quote_exp = min(price_exp + qty_exp, 8)`` is the exponent of quote-asset amounts (a
    24 h quote volume is a sum of price x quantity). ``instruments`` maps the same symbols to
    their ids for Python code, so both paths read one snapshot.
    """

    slots: np.ndarray
    sym_bytes: np.ndarray
    sym_len: np.ndarray
    sym_inst: np.ndarray
    price_exp: np.ndarray
    qty_exp: np.ndarray
    quote_exp: np.ndarray
    instruments: Mapping[str, int]


def _decimals(step: object, what: str) -> int:
    """Decimals of a tick or step size: ``"0.01000000" -> 2``, ``"1.00000000" -> 0``."""
    if not isinstance(step, str):
        raise ConfigError(f"exchangeInfo {what} must be decimal text, got {step!r}")
    text = normalize(step)
    if "e" in text.lower():
        raise ConfigError(f"exchangeInfo {what} {step!r} uses exponent notation")
    return len(text.partition(".")[2])


def _filter_exps(entry: Mapping) -> tuple[int, int]:
    """(price_exp, qty_exp) for an exchangeInfo symbol: finer than its filters when possible.

    Binance changes tick and step sizes over time, and its depth stream has carried values
    finer than the current step (a 6-decimal quantity under a 5-decimal LOT_SIZE in the real
    BTCUSDT recording); an exponent at exactly the filter's decimals would refuse those values
    and break the book. So each exponent is the filter's decimals, raised to 8 (Binance sends
    at most 8) as far as the filter's maximum value still fits an int64 mantissa.
    """
    price_exp, qty_exp = DEFAULT_PRICE_EXP, DEFAULT_QTY_EXP
    for flt in entry.get("filters") or ():
        kind = flt.get("filterType") if isinstance(flt, Mapping) else None
        if kind == "PRICE_FILTER":
            price_exp = _exponent(flt, "tickSize", "maxPrice", "PRICE_FILTER")
        elif kind == "LOT_SIZE":
            qty_exp = _exponent(flt, "stepSize", "maxQty", "LOT_SIZE")
    return price_exp, qty_exp


def _exponent(flt: Mapping, step_key: str, max_key: str, what: str) -> int:
    """The step's decimals, raised toward 8 while ``max_key`` still fits an int64 mantissa."""
    decimals = _decimals(flt.get(step_key), f"{what}.{step_key}")
    exponent = DEFAULT_QTY_EXP
    maximum = flt.get(max_key)
    if isinstance(maximum, str):
        try:
            largest = Decimal(maximum)
        except InvalidOperation:
            raise ConfigError(f"exchangeInfo {what}.{max_key} {maximum!r} is not decimal") from None
        while exponent > decimals and largest.scaleb(exponent) > _INT64_MAX:
            exponent -= 1
    return max(decimals, exponent)


def split_by_quote(symbol: str) -> tuple[str, str]:
    """``"BTCUSDT" -> ("BTC", "USDT")`` by the longest known quote suffix, else ConfigError."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ConfigError(
        f"cannot split Binance symbol {symbol!r} into base and quote: no known quote suffix "
        f"({', '.join(QUOTE_ASSETS[:6])}, ...); load exchangeInfo to register it")


class BinanceSymbols:
    """Binance symbols of one market, registered as canonical instruments.

    ``add("BTCUSDT")`` registers by quote suffix with exponent 8; ``from_exchange_info`` and
    ``add_exchange_info`` take the exponents from the venue's filters. Lookups accept the Binance
    spelling, the stream prefix (``"btcusdt"``) or the canonical name. Thread-safe for adds;
    :meth:`table` returns an immutable snapshot and :attr:`version` tells when it is stale.
    """

    def __init__(self, registry: Registry, symbols: Iterable[str] = ()) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._by_symbol: dict[str, BinanceSymbol] = {}
        self._by_canonical: dict[str, BinanceSymbol] = {}
        self._table: SymbolTable | None = None
        self.version = 0
        for symbol in symbols:
            self.add(symbol)

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_exchange_info(cls, registry: Registry, info: bytes | str | Mapping) -> BinanceSymbols:
        """Symbols of an ``exchangeInfo`` response (bytes, text or the decoded mapping)."""
        symbols = cls(registry)
        symbols.add_exchange_info(info)
        return symbols

    def add_exchange_info(self, info: bytes | str | Mapping) -> int:
        """Register every symbol of ``exchangeInfo``; returns how many were added.

        Symbols whose name or assets are not plain upper-case words (delivery contracts such as
        ``BTCUSDT_240927``) have no canonical BASE-QUOTE spelling and are skipped.
        """
        if not isinstance(info, Mapping):
            info = orjson.loads(info)
        entries = info.get("symbols") if isinstance(info, Mapping) else None
        if not isinstance(entries, list):
            raise ConfigError("exchangeInfo has no 'symbols' list")
        added = 0
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise ConfigError(f"exchangeInfo symbol entry is not an object: {entry!r}")
            names = (entry.get("symbol"), entry.get("baseAsset"), entry.get("quoteAsset"))
            if not all(isinstance(n, str) and _ASSET_RE.fullmatch(n) for n in names):
                continue
            price_exp, qty_exp = _filter_exps(entry)
            self.add(names[0], names[1], names[2], price_exp, qty_exp)
            added += 1
        return added

    def add(self, symbol: str, base: str | None = None, quote: str | None = None,
            price_exp: int | None = None, qty_exp: int | None = None) -> BinanceSymbol:
        """Register Binance ``symbol`` (upper-case, e.g. ``"BTCUSDT"``) and return it.

        Without ``base``/``quote`` the quote suffix decides; without exponents an instrument
        already in the registry keeps its own and a new one gets 8 and 8.
        """
        if not isinstance(symbol, str) or _WORD_RE.fullmatch(symbol) is None:
            raise ConfigError(
                f"Binance symbol must be 2..{MAX_SYMBOL_LEN} upper-case letters or digits, "
                f"got {symbol!r}")
        if base is None or quote is None:
            base, quote = split_by_quote(symbol)
        if base + quote != symbol:
            raise ConfigError(f"Binance symbol {symbol!r} is not {base!r} + {quote!r}")
        with self._lock:
            known = self._by_symbol.get(symbol)
            if known is not None and price_exp is None and qty_exp is None:
                return known
            entry = self._register(symbol, f"{base}-{quote}", price_exp, qty_exp)
            self._by_symbol[symbol] = entry
            self._by_canonical[entry.canonical] = entry
            self._table = None
            self.version += 1
            return entry

    def _register(self, symbol: str, canonical: str, price_exp: int | None,
                  qty_exp: int | None) -> BinanceSymbol:
        """Registry id and exponents; existing exponents must cover the venue's decimals."""
        inst = self.registry.instrument_id(canonical, create=False)
        if inst == 0:
            inst = self.registry.instrument_id(
                canonical,
                price_exp=DEFAULT_PRICE_EXP if price_exp is None else price_exp,
                qty_exp=DEFAULT_QTY_EXP if qty_exp is None else qty_exp)
        info = self.registry.instrument(inst)
        for what, need, have in (("price", price_exp, info.price_exp),
                                 ("quantity", qty_exp, info.qty_exp)):
            if need is not None and need > have:
                raise ConfigError(
                    f"{canonical} is registered with {what} exponent {have}, but Binance "
                    f"{symbol} needs {need} decimals: mantissas are never rounded")
        return BinanceSymbol(symbol, canonical, inst, info.price_exp, info.qty_exp)

    # -- lookups --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __iter__(self):
        return iter(list(self._by_symbol.values()))

    def instrument_of(self, symbol: str) -> int:
        """Instrument id of the exact Binance spelling ``symbol`` (as sent in ``"s"``), else 0."""
        entry = self._by_symbol.get(symbol)
        return 0 if entry is None else entry.instrument

    def get(self, name: str) -> BinanceSymbol | None:
        """Entry for ``"BTCUSDT"``, ``"btcusdt"``, ``"btcusdt@trade"`` or ``"BTC-USDT"``."""
        if not isinstance(name, str):
            return None
        found = self._by_canonical.get(name)
        if found is None:
            found = self._by_symbol.get(name.partition("@")[0].upper())
        return found

    def __getitem__(self, name: str) -> BinanceSymbol:
        found = self.get(name)
        if found is None:
            raise ConfigError(f"unknown Binance symbol {name!r} (registered: {len(self)})")
        return found

    def canonical(self, name: str) -> str:
        """``"BTCUSDT"`` / ``"btcusdt"`` -> ``"BTC-USDT"`` (ConfigError if unknown)."""
        return self[name].canonical

    # -- kernel table ---------------------------------------------------------------------

    def table(self) -> SymbolTable:
        """The scanner's lookup arrays for the symbols registered so far (cached per version)."""
        with self._lock:
            if self._table is None:
                self._table = _build_table(list(self._by_symbol.values()), self.registry)
            return self._table


def _build_table(entries: list[BinanceSymbol], registry: Registry) -> SymbolTable:
    """Open-addressing FNV-1a table over ``entries`` plus per-instrument exponent arrays."""
    cap = 8
    while cap < 2 * len(entries) + 1:
        cap *= 2
    slots = np.full((cap, 3), -1, np.int64)
    sym_bytes = np.zeros((max(len(entries), 1), MAX_SYMBOL_LEN), np.uint8)
    sym_len = np.zeros(max(len(entries), 1), np.int64)
    sym_inst = np.zeros(max(len(entries), 1), np.int64)
    for row, entry in enumerate(entries):
        raw = entry.symbol.encode("ascii")
        sym_bytes[row, : len(raw)] = np.frombuffer(raw, np.uint8)
        sym_len[row], sym_inst[row] = len(raw), entry.instrument
        h = fnv1a64(raw)
        j = (h & 0xFFFFFFFF) & (cap - 1)
        while slots[j, 2] >= 0:
            j = (j + 1) & (cap - 1)
        slots[j] = (h >> 32, h & 0xFFFFFFFF, row)
    price, qty = (a.astype(np.int64) for a in registry.exponents_array())
    quote = np.minimum(price + qty, BINANCE_MAX_DECIMALS)
    instruments = MappingProxyType({e.symbol: e.instrument for e in entries})
    return SymbolTable(slots, sym_bytes, sym_len, sym_inst, price, qty, quote, instruments)
