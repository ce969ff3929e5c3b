"""Kraken pair names (v1 ``XBT/USD``, v2 ``BTC/USD``) to canonical ``BTC-USD`` and registry ids.

Kraken spells one pair three ways: the REST key (``XXBTZUSD``), the v1 websocket name
``wsname`` (``XBT/USD``, legacy asset codes) and the v2 websocket name (``BTC/USD``, common
codes). The registry knows only the canonical ``BASE-QUOTE`` spelling, so this module maps
Kraken's legacy asset codes (``XBT`` -> ``BTC``, ``XDG`` -> ``DOGE``) both ways and registers
each pair with the decimals Kraken prints it with: ``pair_decimals`` for prices and
``lot_decimals`` for volumes, from ``/0/public/AssetPairs``. The book checksum is built from the
text of those decimals, so each pair also remembers how many decimals its instrument's
exponents have beyond them (another venue may have registered the instrument with more).

:meth:`KrakenSymbols.table` builds the scanner's lookup table (the Binance one, shared) over
both websocket spellings of every pair.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import orjson

from meltica_nb.errors import ConfigError, ProtocolError
from meltica_nb.registry import Registry
from meltica_nb.venues.binance.symbols import SymbolTable, _build_table

__all__ = ["KrakenPair", "KrakenSymbols", "canonical_asset", "v1_name", "v2_name"]

#: Kraken's legacy asset codes (v1 names) and the common ones (v2 names, canonical).
_LEGACY = {"XBT": "BTC", "XDG": "DOGE"}
_COMMON = {v: k for k, v in _LEGACY.items()}


def canonical_asset(code: str) -> str:
    """``XBT`` -> ``BTC``, ``XDG`` -> ``DOGE``; other codes unchanged (upper case)."""
    code = code.upper()
    return _LEGACY.get(code, code)


def _split(name: str) -> tuple[str, str]:
    for sep in ("/", "-"):
        base, found, quote = name.partition(sep)
        if found and base and quote and sep not in quote:
            return base.upper(), quote.upper()
    raise ConfigError(f"not a Kraken pair or canonical symbol: {name!r} (expected BASE/QUOTE)")


def v1_name(symbol: str) -> str:
    """The v1 websocket name of a canonical or Kraken pair: ``BTC-USD`` -> ``XBT/USD``."""
    base, quote = _split(symbol)
    base, quote = canonical_asset(base), canonical_asset(quote)
    return f"{_COMMON.get(base, base)}/{_COMMON.get(quote, quote)}"


def v2_name(symbol: str) -> str:
    """The v2 websocket name: ``BTC-USD`` or ``XBT/USD`` -> ``BTC/USD``."""
    base, quote = _split(symbol)
    return f"{canonical_asset(base)}/{canonical_asset(quote)}"


def canonical(symbol: str) -> str:
    """``XBT/USD`` / ``BTC/USD`` / ``BTC-USD`` -> ``BTC-USD``."""
    return v2_name(symbol).replace("/", "-")


class KrakenPair(NamedTuple):
    """One websocket spelling of a registered pair (the scanner table has a row per spelling)."""

    symbol: str          # as sent on the wire: "XBT/USD" (v1) or "BTC/USD" (v2)
    canonical: str       # "BTC-USD"
    instrument: int
    price_decimals: int  # Kraken pair_decimals: decimals of every price text
    qty_decimals: int    # Kraken lot_decimals: decimals of every volume text
    price_shift: int     # instrument price exponent - price_decimals (>= 0)
    qty_shift: int


class KrakenSymbols:
    """The pairs of one Kraken feed: spellings, instrument ids, decimals (thread-safe)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._by_name: dict[str, KrakenPair] = {}
        self._table: SymbolTable | None = None

    def add(self, symbol: str, price_decimals: int, qty_decimals: int) -> KrakenPair:
        """Register ``symbol`` (any spelling) with Kraken's decimals; return its pair record.

        A new instrument gets exactly those exponents; a known one keeps its own, which must
        hold at least as many decimals (a mantissa is never rounded): ConfigError otherwise.
        """
        name = canonical(symbol)
        base, quote = name.split("-")
        if not (0 <= price_decimals <= 18 and 0 <= qty_decimals <= 18):
            raise ConfigError(f"{symbol}: decimals out of range: {price_decimals}, "
                              f"{qty_decimals}")
        inst = self.registry.instrument_id(name, create=False)
        if not inst:
            inst = self.registry.instrument_id(name, price_exp=price_decimals,
                                               qty_exp=qty_decimals)
        info = self.registry.instrument(inst)
        if info.price_exp < price_decimals or info.qty_exp < qty_decimals:
            raise ConfigError(f"{name} is registered with exponents ({info.price_exp}, "
                              f"{info.qty_exp}), fewer decimals than Kraken sends "
                              f"({price_decimals}, {qty_decimals})")
        pairs = [KrakenPair(wire, name, inst, price_decimals, qty_decimals,
                            info.price_exp - price_decimals, info.qty_exp - qty_decimals)
                 for wire in dict.fromkeys((v1_name(name), v2_name(name)))]
        with self._lock:
            for pair in pairs:
                self._by_name[pair.symbol] = pair
            self._by_name.setdefault(name, pairs[-1])
            self._table = None
        return pairs[-1]

    def add_asset_pairs(self, body: bytes | Mapping, wanted: Iterable[str]) -> list[KrakenPair]:
        """Register the ``wanted`` symbols from an ``/0/public/AssetPairs`` response.

        Pairs are matched by their ``wsname`` (v1 spelling). Raises ProtocolError for a body
        that is not Kraken's ``{"error": [], "result": {...}}`` or names an error, ConfigError
        for a wanted symbol the venue does not list.
        """
        result = _asset_pairs_result(body)
        by_ws = {e.get("wsname"): e for e in result.values() if isinstance(e, dict)}
        added = []
        for symbol in wanted:
            entry = by_ws.get(v1_name(symbol))
            if entry is None:
                raise ConfigError(f"Kraken lists no pair {v1_name(symbol)} (for {symbol})")
            pd, ld = entry.get("pair_decimals"), entry.get("lot_decimals")
            if not isinstance(pd, int) or not isinstance(ld, int):
                raise ProtocolError(f"AssetPairs {v1_name(symbol)}: no integer decimals")
            added.append(self.add(symbol, pd, ld))
        return added

    def get(self, name: str) -> KrakenPair | None:
        """The pair of a wire or canonical spelling, None if not registered."""
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> KrakenPair:
        pair = self.get(name)
        if pair is None:
            raise ConfigError(f"Kraken pair {name!r} is not registered")
        return pair

    def pairs(self) -> list[KrakenPair]:
        """One record per instrument (its v2 spelling)."""
        return list({p.instrument: p for p in self._by_name.values()}.values())

    def table(self) -> SymbolTable:
        """The scanner's lookup arrays over every wire spelling (cached until the next add)."""
        with self._lock:
            if self._table is None:
                wires = [p for n, p in self._by_name.items() if n == p.symbol]
                self._table = _build_table(wires, self.registry)
            return self._table


def _asset_pairs_result(body: bytes | Mapping) -> Mapping:
    try:
        doc = orjson.loads(body) if isinstance(body, bytes | str) else body
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"AssetPairs: not JSON: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("result"), Mapping):
        raise ProtocolError("AssetPairs: no result object")
    if doc.get("error"):
        raise ProtocolError(f"AssetPairs: error {doc['error']!r}")
    return doc["result"]
