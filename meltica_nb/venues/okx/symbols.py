"""OKX instrument ids (``BTC-USDT``, ``BTC-USDT-SWAP``, ``BTC-USD-220527``) to canonical ids.

OKX names an instrument ``BASE-QUOTE`` (spot), ``BASE-QUOTE-SWAP`` (perpetual) or
``BASE-QUOTE-YYMMDD`` (dated futures); the canonical registry name is the ``BASE-QUOTE`` part.
A feed serves one instrument type (one venue name: ``okx``, ``okx-swap``, ``okx-futures``), so
a spot and a swap instrument with the same canonical name never share a book row.

Exponents come from ``GET /api/v5/public/instruments`` when available: the decimals of
``tickSz`` (prices) and ``lotSz`` (sizes), raised to 8 like the other venues (OKX's texts never
carry more), so a value is never rounded. An instrument registered earlier keeps its exponents
when they hold that many decimals; fewer is a :class:`ConfigError`.

:meth:`OkxSymbols.table` gives the byte scanner its lookup arrays (the same FNV-1a table the
Binance scanner uses).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import orjson

from meltica_nb.errors import ConfigError
from meltica_nb.registry import DEFAULT_PRICE_EXP, DEFAULT_QTY_EXP, Registry
from meltica_nb.venues.binance.symbols import MAX_SYMBOL_LEN, SymbolTable, _build_table

__all__ = ["INST_TYPES", "OkxInstrument", "OkxSymbols", "canonical_of", "decimals_of"]

#: OKX instrument types a feed can serve, by the config's market name.
INST_TYPES = {"spot": "SPOT", "swap": "SWAP", "futures": "FUTURES"}

_INST_RE = re.compile(r"[A-Z0-9]+-[A-Z0-9]+(-[A-Z0-9]+)?")
_STEP_RE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


class OkxInstrument(NamedTuple):
    """One OKX instrument as registered."""

    symbol: str        # "BTC-USDT-SWAP", as OKX sends it in instId
    canonical: str     # "BTC-USDT"
    instrument: int    # registry id
    price_exp: int
    qty_exp: int


def canonical_of(inst_id: str) -> str:
    """``"BTC-USDT-SWAP" -> "BTC-USDT"``; ConfigError for a name OKX would not send."""
    if not isinstance(inst_id, str) or len(inst_id) > MAX_SYMBOL_LEN or not _INST_RE.fullmatch(
            inst_id):
        raise ConfigError(f"not an OKX instId: {inst_id!r} (BASE-QUOTE[-SWAP|-YYMMDD])")
    base, quote, *_ = inst_id.split("-")
    return f"{base}-{quote}"


def decimals_of(step: object, what: str = "tickSz") -> int:
    """Decimals of a tick or lot size text: ``"0.1" -> 1``, ``"1" -> 0``."""
    if not isinstance(step, str) or not _STEP_RE.fullmatch(step):
        raise ConfigError(f"OKX {what} must be plain decimal text, got {step!r}")
    return len(step.partition(".")[2])


class OkxSymbols:
    """The OKX instruments of one feed, registered as canonical instruments."""

    def __init__(self, registry: Registry, inst_ids: Iterable[str] = ()) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._by_symbol: dict[str, OkxInstrument] = {}
        self._table: SymbolTable | None = None
        self.version = 0
        for inst_id in inst_ids:
            self.add(inst_id)

    def add_instruments(self, body: bytes | Mapping, wanted: Iterable[str] | None = None
                        ) -> list[OkxInstrument]:
        """Register the instruments of a ``/api/v5/public/instruments`` answer (only
        ``wanted`` instIds when given); returns those added."""
        msg = orjson.loads(body) if not isinstance(body, Mapping) else body
        data = msg.get("data") if isinstance(msg, Mapping) else None
        if not isinstance(data, list) or str(msg.get("code", "0")) != "0":
            raise ConfigError(f"OKX instruments answer without data: {str(msg)[:200]}")
        keep = None if wanted is None else set(wanted)
        added = []
        for entry in data:
            inst_id = entry.get("instId") if isinstance(entry, Mapping) else None
            if keep is not None and inst_id not in keep:
                continue
            added.append(self.add(inst_id, entry.get("tickSz"), entry.get("lotSz")))
        return added

    def add(self, inst_id: str, tick_size: str | None = None, lot_size: str | None = None
            ) -> OkxInstrument:
        """Register ``inst_id`` with the exponents its tick and lot sizes need (8 if none)."""
        canonical = canonical_of(inst_id)
        price_exp = max(DEFAULT_PRICE_EXP, decimals_of(tick_size, "tickSz")) if (
            tick_size is not None) else None
        qty_exp = max(DEFAULT_QTY_EXP, decimals_of(lot_size, "lotSz")) if (
            lot_size is not None) else None
        with self._lock:
            known = self._by_symbol.get(inst_id)
            if known is not None and price_exp is None and qty_exp is None:
                return known
            clash = [e.symbol for e in self._by_symbol.values()
                     if e.canonical == canonical and e.symbol != inst_id]
            if clash:
                raise ConfigError(f"OKX {inst_id} and {clash[0]} are both {canonical}: one feed "
                                  f"serves one instrument per canonical name (e.g. one expiry)")
            entry = self._register(inst_id, canonical, price_exp, qty_exp)
            self._by_symbol[inst_id] = entry
            self._table = None
            self.version += 1
            return entry

    def _register(self, inst_id: str, canonical: str, price_exp: int | None,
                  qty_exp: int | None) -> OkxInstrument:
        inst = self.registry.instrument_id(canonical, create=False)
        if inst == 0:
            inst = self.registry.instrument_id(
                canonical, price_exp=price_exp or DEFAULT_PRICE_EXP,
                qty_exp=qty_exp or DEFAULT_QTY_EXP)
        info = self.registry.instrument(inst)
        for what, need, have in (("price", price_exp, info.price_exp),
                                 ("quantity", qty_exp, info.qty_exp)):
            if need is not None and need > have:
                raise ConfigError(f"{canonical} is registered with {what} exponent {have}, but "
                                  f"OKX {inst_id} needs {need} decimals")
        return OkxInstrument(inst_id, canonical, inst, info.price_exp, info.qty_exp)

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __iter__(self):
        return iter(list(self._by_symbol.values()))

    def get(self, inst_id: str) -> OkxInstrument | None:
        return self._by_symbol.get(inst_id)

    def __getitem__(self, inst_id: str) -> OkxInstrument:
        found = self._by_symbol.get(inst_id)
        if found is None:
            raise ConfigError(f"unknown OKX instrument {inst_id!r} (registered: {len(self)})")
        return found

    def table(self) -> SymbolTable:
        """The scanner's lookup arrays (cached per version)."""
        with self._lock:
            if self._table is None:
                self._table = _build_table(list(self._by_symbol.values()), self.registry)
            return self._table
