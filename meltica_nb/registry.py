"""Registry: venue and instrument names to small integer ids, so records stay numeric.

Why ids: every record is a fixed-size NumPy dtype that Numba kernels read without touching
Python objects (see :mod:`meltica_nb.schema`), so the ``venue`` and ``instrument`` header
fields are ``u2`` ids handed out here. Id 0 means "unknown / none" in every record, so real ids
start at 1 and a zero-filled record never names a real venue or instrument.

Instruments are registered in one canonical spelling, upper-case ``BASE-QUOTE`` with exactly
one dash (``"BTC-USDT"``). Venue spellings (``"btcusdt"``, ``"BTC/USDT"``, ``"BTC-USDT-SWAP"``)
are rejected here on purpose: each venue adapter maps its own symbols to the canonical form, so
one instrument never gets two ids. Each instrument carries the decimal exponents of its price
and quantity mantissas (see :mod:`meltica_nb.fixedpoint`); :meth:`Registry.exponents_array`
hands them to kernels as arrays indexed by instrument id.

Thread-safe: lookups of known names read a dict; creation takes a lock and re-checks, so two
threads registering the same name get the same id. Ids are never reused or removed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .fixedpoint import MAX_EXPONENT

__all__ = [
    "DEFAULT_PRICE_EXP",
    "DEFAULT_QTY_EXP",
    "MAX_ID",
    "InstrumentInfo",
    "Registry",
]

#: Largest venue or instrument id: both are ``u2`` fields of every record.
MAX_ID = 0xFFFF
#: Price exponent (decimals) of an instrument registered without one.
DEFAULT_PRICE_EXP = 8
#: Quantity exponent (decimals) of an instrument registered without one.
DEFAULT_QTY_EXP = 8

_MAX_NAME_LEN = 32
_VENUE_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_ASSET_RE = re.compile(r"[A-Z0-9]+")


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """One registered instrument: its id, canonical symbol, assets and decimal exponents."""

    id: int
    symbol: str
    base: str
    quote: str
    price_exp: int
    qty_exp: int


def _check_venue_name(name: object) -> str:
    """Return ``name`` if it is a valid venue name (``"binance-futures"``), else ConfigError."""
    if not isinstance(name, str):
        raise ConfigError(f"venue name must be a str, got {type(name).__name__}")
    if len(name) > _MAX_NAME_LEN or _VENUE_RE.fullmatch(name) is None:
        raise ConfigError(
            f"invalid venue name {name!r}: expected lower-case letters and digits separated by "
            f"single '-', '_' or '.', at most {_MAX_NAME_LEN} characters (e.g. 'binance-futures')"
        )
    return name


def _split_symbol(symbol: object) -> tuple[str, str]:
    """Split a canonical ``BASE-QUOTE`` symbol into (base, quote), or raise ConfigError."""
    if not isinstance(symbol, str):
        raise ConfigError(f"instrument symbol must be a str, got {type(symbol).__name__}")
    parts = symbol.split("-")
    if (
        len(symbol) <= _MAX_NAME_LEN
        and len(parts) == 2
        and all(_ASSET_RE.fullmatch(p) for p in parts)
    ):
        return parts[0], parts[1]
    raise ConfigError(
        f"instrument symbol {symbol!r} is not canonical: expected upper-case BASE-QUOTE with "
        f"exactly one dash, at most {_MAX_NAME_LEN} characters (e.g. 'BTC-USDT'); venue "
        "spellings such as 'btcusdt' or 'BTC/USDT' must be mapped by the venue adapter first"
    )


def _check_exp(what: str, value: object) -> int:
    """Return ``value`` as an exponent in 0..MAX_EXPONENT, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{what} must be an int in 0..{MAX_EXPONENT}, got {value!r}")
    if not 0 <= int(value) <= MAX_EXPONENT:
        raise ConfigError(f"{what} must be in 0..{MAX_EXPONENT}, got {int(value)}")
    return int(value)


class Registry:
    """Venue and instrument ids (1..65535; 0 = unknown) and per-instrument exponents.

    ``venue_id`` / ``instrument_id`` return the id of a name, registering it first when
    ``create`` is true; with ``create=False`` an unknown (but well-formed) name returns 0.
    Malformed names, exponents and id exhaustion raise :class:`ConfigError`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._venue_ids: dict[str, int] = {}
        self._venue_names: list[str] = [""]  # index = id; id 0 is "unknown"
        self._instrument_ids: dict[str, int] = {}
        self._instruments: list[InstrumentInfo | None] = [None]

    # -- venues ----------------------------------------------------------------------------

    @property
    def n_venues(self) -> int:
        """Venues registered; also the largest venue id."""
        return len(self._venue_names) - 1

    def venue_id(self, name: str, create: bool = True) -> int:
        """Id of venue ``name`` (registered now if ``create``; 0 if unknown and not created)."""
        found = self._venue_ids.get(name) if isinstance(name, str) else None
        if found is not None:
            return found
        _check_venue_name(name)
        if not create:
            return 0
        with self._lock:
            found = self._venue_ids.get(name)
            if found is not None:
                return found
            new_id = self._next_id("venue", name, len(self._venue_names))
            self._venue_names.append(name)
            self._venue_ids[name] = new_id
            return new_id

    def venue_name(self, venue_id: int) -> str:
        """Name of a registered venue id; ConfigError for 0 or an unknown id."""
        self._check_id("venue", venue_id, self.n_venues)
        return self._venue_names[int(venue_id)]

    # -- instruments -----------------------------------------------------------------------

    @property
    def n_instruments(self) -> int:
        """Instruments registered; also the largest instrument id."""
        return len(self._instruments) - 1

    def instrument_id(
        self,
        symbol: str,
        create: bool = True,
        price_exp: int | None = None,
        qty_exp: int | None = None,
    ) -> int:
        """Id of canonical ``symbol`` (``"BTC-USDT"``), registered now if ``create``.

        A new instrument gets ``price_exp`` / ``qty_exp`` (default 8 and 8). For a known
        instrument, exponents given explicitly must equal the registered ones (ConfigError
        otherwise): a mantissa read at the wrong exponent is off by powers of ten.
        Unknown and not created: 0.
        """
        found = self._instrument_ids.get(symbol) if isinstance(symbol, str) else None
        if found is None:
            base, quote = _split_symbol(symbol)
            pexp = _check_exp("price_exp", DEFAULT_PRICE_EXP if price_exp is None else price_exp)
            qexp = _check_exp("qty_exp", DEFAULT_QTY_EXP if qty_exp is None else qty_exp)
            if not create:
                return 0
            found = self._create_instrument(symbol, base, quote, pexp, qexp)
        self._check_same_exps(found, price_exp, qty_exp)
        return found

    def _create_instrument(self, symbol: str, base: str, quote: str, pexp: int, qexp: int) -> int:
        with self._lock:
            found = self._instrument_ids.get(symbol)
            if found is not None:
                return found
            new_id = self._next_id("instrument", symbol, len(self._instruments))
            self._instruments.append(InstrumentInfo(new_id, symbol, base, quote, pexp, qexp))
            self._instrument_ids[symbol] = new_id
            return new_id

    def _check_same_exps(self, inst_id: int, price_exp: int | None, qty_exp: int | None) -> None:
        info = self.instrument(inst_id)
        for what, given, have in (
            ("price_exp", price_exp, info.price_exp),
            ("qty_exp", qty_exp, info.qty_exp),
        ):
            if given is not None and _check_exp(what, given) != have:
                raise ConfigError(
                    f"instrument {info.symbol!r} is registered with {what}={have}, "
                    f"not {given}: exponents of an instrument never change"
                )

    def instrument(self, instrument_id: int) -> InstrumentInfo:
        """The :class:`InstrumentInfo` of a registered id; ConfigError for 0 or unknown."""
        self._check_id("instrument", instrument_id, self.n_instruments)
        info = self._instruments[int(instrument_id)]
        assert info is not None
        return info

    def instrument_ids(self, symbols: Iterable[str], create: bool = True) -> list[int]:
        """Ids of several canonical symbols, in order (see :meth:`instrument_id`)."""
        if isinstance(symbols, str):
            raise ConfigError(f"instrument_ids takes a list of symbols, got the str {symbols!r}")
        return [self.instrument_id(s, create=create) for s in symbols]

    def exponents_array(self) -> tuple[np.ndarray, np.ndarray]:
        """``(price_exp, qty_exp)`` int8 arrays indexed by instrument id, for kernels.

        Length ``n_instruments + 1``; entry 0 (unknown instrument) holds the defaults. The
        arrays are a snapshot: instruments registered later need a new call.
        """
        infos = list(self._instruments[1:])  # one atomic copy of the list
        price = np.empty(len(infos) + 1, np.int8)
        qty = np.empty(len(infos) + 1, np.int8)
        price[0], qty[0] = DEFAULT_PRICE_EXP, DEFAULT_QTY_EXP
        for info in infos:
            assert info is not None
            price[info.id], qty[info.id] = info.price_exp, info.qty_exp
        return price, qty

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _next_id(what: str, name: str, new_id: int) -> int:
        if new_id > MAX_ID:
            raise ConfigError(
                f"cannot register {what} {name!r}: all {MAX_ID} {what} ids are taken "
                f"(ids are u2 record fields)"
            )
        return new_id

    @staticmethod
    def _check_id(what: str, value: int, n: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigError(f"{what} id must be an int, got {value!r}")
        if not 1 <= int(value) <= n:
            raise ConfigError(f"unknown {what} id {int(value)} (registered: 1..{n}; 0 = none)")

    def __repr__(self) -> str:
        return f"Registry(n_venues={self.n_venues}, n_instruments={self.n_instruments})"
