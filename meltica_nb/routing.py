"""Routing: the dispatcher's subscription table, compiled to arrays and flipped atomically.

A consumer subscribes to (venues x instruments x event types); ``None`` venues or instruments
mean "all". Several subscriptions of one consumer are OR-ed, each as a whole: ``{BTC} x
{trade}`` plus ``{ETH} x {bbo}`` delivers BTC trades and ETH BBOs, never ETH trades.

Why compiled arrays: the dispatcher routes every event of every batch, so the hot path is one
Numba call (:func:`meltica_nb.kernels.routing_kernels.route_batch`) over uint8 rule arrays,
never a Python set lookup per event. A :class:`RoutingTable` is immutable once compiled (its
arrays are read-only), so any number of threads may route with it at once.

Why staged then flipped: a change (subscribe, unsubscribe, remove a consumer) builds the next
subscription list and compiles a whole new table off to the side; only then does
:class:`Router` publish it with one attribute assignment, with ``version`` one higher. A reader
takes ``router.table`` once per batch, so every batch is routed by exactly one table version,
never by a half-applied change; that version is what the orchestrator stamps as
``routing_version``. Writers serialize on a lock; readers never lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .kernels import routing_kernels as rk
from .schema import EventType

__all__ = [
    "ALL_EVENT_TYPES",
    "MAX_VERSION",
    "Router",
    "RouterStats",
    "RoutingTable",
    "Subscription",
]

#: Every event type a subscription may name (all of :class:`EventType` but NONE).
ALL_EVENT_TYPES: frozenset[int] = frozenset(int(t) for t in EventType if t != EventType.NONE)
#: Largest routing version: ``routing_version`` is a ``u4`` record field.
MAX_VERSION = 0xFFFF_FFFF
#: Largest venue / instrument id (``u2`` record fields).
_MAX_ID = 0xFFFF
_EVENT_FIELDS = ("venue", "instrument", "event_type")


def _check_int(what: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{what} must be an int in {lo}..{hi}, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ConfigError(f"{what} must be in {lo}..{hi}, got {int(value)}")
    return int(value)


def _id_set(what: str, values: Iterable[int] | None, lo: int, hi: int) -> frozenset[int] | None:
    """Normalize a dimension to a non-empty frozenset of ints in lo..hi (None = all)."""
    if values is None:
        return None
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigError(f"{what} must be a set of ints or None (all), got {values!r}")
    ids = frozenset(_check_int(what, v, lo, hi) for v in values)
    if not ids:
        raise ConfigError(f"{what} is empty: a subscription must match something (None = all)")
    return ids


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one consumer wants: ``venues x instruments x event_types``.

    ``venues`` / ``instruments`` are registry ids (1..65535) or None for all; ``event_types``
    are :class:`EventType` values other than NONE, None meaning all of them. Any iterable is
    accepted and normalized to a frozenset, so equal subscriptions compare equal.
    """

    consumer: int
    venues: frozenset[int] | None = None
    instruments: frozenset[int] | None = None
    event_types: frozenset[int] | None = None

    def __post_init__(self) -> None:
        _check_int("consumer", self.consumer, 0, 2**31 - 1)
        set_ = object.__setattr__
        set_(self, "consumer", int(self.consumer))
        set_(self, "venues", _id_set("venues", self.venues, 1, _MAX_ID))
        set_(self, "instruments", _id_set("instruments", self.instruments, 1, _MAX_ID))
        types = _id_set("event_types", self.event_types, 0, rk.N_TYPE_SLOTS - 1)
        if types is not None and not types <= ALL_EVENT_TYPES:
            bad = sorted(types - ALL_EVENT_TYPES)
            raise ConfigError(f"event_types {bad} are not routable EventType values (1..9)")
        set_(self, "event_types", ALL_EVENT_TYPES if types is None else types)

    def matches(self, venue: int, instrument: int, event_type: int) -> bool:
        """Pure-Python match of one event (reference semantics of the compiled kernel)."""
        assert self.event_types is not None
        return (
            event_type in self.event_types
            and (self.venues is None or venue in self.venues)
            and (self.instruments is None or instrument in self.instruments)
        )


def _merge_rules(subs: Iterable[Subscription]) -> list[tuple[int, frozenset | None,
                                                             frozenset | None, set[int]]]:
    """One rule per distinct (consumer, venues, instruments); their event types are OR-ed.

    Merging is exact: two products with the same venue and instrument sets OR into one
    product over the union of their types. Order of first appearance is kept.
    """
    merged: dict[tuple[int, frozenset | None, frozenset | None], set[int]] = {}
    for s in subs:
        assert s.event_types is not None
        merged.setdefault((s.consumer, s.venues, s.instruments), set()).update(s.event_types)
    return [(c, v, i, t) for (c, v, i), t in merged.items()]


def _flags(rows: list[frozenset[int] | None], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(any[R], ok[R, width]) uint8 arrays of one dimension."""
    any_ = np.zeros(len(rows), np.uint8)
    ok = np.zeros((len(rows), width), np.uint8)
    for r, ids in enumerate(rows):
        if ids is None:
            any_[r] = 1
        else:
            ok[r, sorted(ids)] = 1
    return any_, ok


def _type_index(types: list[set[int]]) -> tuple[np.ndarray, np.ndarray]:
    """CSR index: the rules accepting type t are ``rules[start[t]:start[t + 1]]``."""
    by_type: list[list[int]] = [[] for _ in range(rk.N_TYPE_SLOTS)]
    for r, ts in enumerate(types):
        for t in ts:
            by_type[t].append(r)
    start = np.zeros(rk.N_TYPE_SLOTS + 1, np.int64)
    start[1:] = np.cumsum([len(b) for b in by_type])
    rules = np.array([r for b in by_type for r in b], np.int64)
    return start, rules


def _check_table_args(
    subs: tuple[Subscription, ...], n_consumers: int, n_venues: int, n_instruments: int
) -> None:
    for s in subs:
        if not isinstance(s, Subscription):
            raise ConfigError(f"expected a Subscription, got {type(s).__name__}")
        if s.consumer >= n_consumers:
            raise ConfigError(f"consumer {s.consumer} out of range: n_consumers={n_consumers}")
        for what, ids, n in (("venue", s.venues, n_venues),
                             ("instrument", s.instruments, n_instruments)):
            if ids is not None and max(ids) > n:
                raise ConfigError(f"{what} id {max(ids)} exceeds the table's n_{what}s={n}")


@dataclass(frozen=True, slots=True, eq=False)
class RoutingTable:
    """One immutable, compiled routing table (build it with :meth:`compile`).

    The subscriptions it was compiled from are kept in :attr:`subscriptions`; the arrays are
    read-only and laid out as described in :mod:`meltica_nb.kernels.routing_kernels`.
    """

    version: int
    n_consumers: int
    n_venues: int
    n_instruments: int
    subscriptions: tuple[Subscription, ...]
    rule_consumer: np.ndarray
    type_start: np.ndarray
    type_rules: np.ndarray
    rule_venue_any: np.ndarray
    rule_venue_ok: np.ndarray
    rule_instr_any: np.ndarray
    rule_instr_ok: np.ndarray

    @classmethod
    def compile(
        cls,
        subscriptions: Iterable[Subscription],
        n_consumers: int,
        n_venues: int,
        n_instruments: int,
        version: int,
    ) -> RoutingTable:
        """Compile subscriptions into rule arrays (ConfigError on ids beyond the sizes)."""
        subs = tuple(subscriptions)
        n_consumers = _check_int("n_consumers", n_consumers, 1, 2**31 - 1)
        n_venues = _check_int("n_venues", n_venues, 0, _MAX_ID)
        n_instruments = _check_int("n_instruments", n_instruments, 0, _MAX_ID)
        version = _check_int("version", version, 0, MAX_VERSION)
        _check_table_args(subs, n_consumers, n_venues, n_instruments)
        rules = _merge_rules(subs)
        venue_any, venue_ok = _flags([r[1] for r in rules], n_venues + 1)
        instr_any, instr_ok = _flags([r[2] for r in rules], n_instruments + 1)
        type_start, type_rules = _type_index([r[3] for r in rules])
        arrays = (np.array([r[0] for r in rules], np.int64), type_start, type_rules,
                  venue_any, venue_ok, instr_any, instr_ok)
        for a in arrays:
            a.flags.writeable = False
        return cls(version, n_consumers, n_venues, n_instruments, subs, *arrays)

    @property
    def n_rules(self) -> int:
        """Compiled rules (distinct consumer x venue set x instrument set)."""
        return int(self.rule_consumer.shape[0])

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The table arguments of :func:`~meltica_nb.kernels.routing_kernels.route_batch`."""
        return (self.rule_consumer, self.type_start, self.type_rules, self.rule_venue_any,
                self.rule_venue_ok, self.rule_instr_any, self.rule_instr_ok)

    def subscriptions_of(self, consumer: int) -> list[Subscription]:
        """The subscriptions of one consumer, in the order they were made."""
        return [s for s in self.subscriptions if s.consumer == consumer]

    def route(self, events: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``mask[n_events, n_consumers]`` (uint8): 1 where consumer c subscribes event i.

        ``out`` (uint8, at least ``len(events)`` rows and ``n_consumers`` columns) is reused
        when given; the returned mask is its first ``len(events)`` rows.
        """
        _check_events(events)
        n = events.shape[0]
        if out is None:
            out = np.empty((n, self.n_consumers), np.uint8)
        elif out.dtype != np.uint8 or out.ndim != 2 or out.shape[1] != self.n_consumers:
            raise ConfigError(
                f"out must be uint8 [n, {self.n_consumers}], got {out.dtype} {out.shape}"
            )
        if rk.route_batch(out, events, rk.new_memo(), *self.arrays()) < 0:
            raise ConfigError(f"out has {out.shape[0]} rows for a batch of {n} events")
        return out[:n]


def _check_events(events: object) -> None:
    """Reject anything but a 1-D record array with the routing header fields."""
    ok = isinstance(events, np.ndarray) and events.ndim == 1
    if not ok or not set(_EVENT_FIELDS) <= set(events.dtype.names or ()):
        raise ConfigError("events must be a 1-D CANONICAL_EVENT array")


@dataclass(frozen=True, slots=True)
class RouterStats:
    """A snapshot of a router: live version, compiled rules, flips done, subscriptions."""

    version: int
    n_rules: int
    flips: int
    n_subscriptions: int


class Router:
    """Owns the live :class:`RoutingTable` and applies changes by compile-then-flip.

    Readers: ``table = router.table`` once per batch, then route with ``table`` (its version
    is the batch's ``routing_version``). Writers (:meth:`stage`, :meth:`subscribe`,
    :meth:`unsubscribe`, :meth:`remove_consumer`) are serialized by a lock; each successful
    change publishes a new table with ``version`` + 1 (starting at 0). A change that changes
    nothing (unsubscribing what is not subscribed, a duplicate subscribe) does not flip.
    A change that fails validation raises ConfigError and leaves the live table as it was.
    """

    def __init__(self, n_consumers_max: int = 64) -> None:
        self._n_consumers = _check_int("n_consumers_max", n_consumers_max, 1, 2**31 - 1)
        self._lock = threading.Lock()
        self._flips = 0
        self._mask = np.zeros((0, self._n_consumers), np.uint8)
        self._table = RoutingTable.compile([], self._n_consumers, 0, 0, 0)

    @property
    def table(self) -> RoutingTable:
        """The live table; take it once per batch so one batch sees one version."""
        return self._table

    @property
    def version(self) -> int:
        """Version of the live table (0 before any change, +1 per flip)."""
        return self._table.version

    @property
    def n_consumers_max(self) -> int:
        """Consumer indexes allowed: 0..n_consumers_max-1 (the mask's columns)."""
        return self._n_consumers

    # -- changes ---------------------------------------------------------------------------

    def stage(self, subscriptions_after_change: Iterable[Subscription]) -> int:
        """Replace every subscription by the given list, compile and flip; the new version."""
        with self._lock:
            return self._flip(tuple(subscriptions_after_change))

    def subscribe(self, sub: Subscription) -> int:
        """Add ``sub`` and flip; returns the live version (unchanged for a duplicate)."""
        if not isinstance(sub, Subscription):
            raise ConfigError(f"expected a Subscription, got {type(sub).__name__}")
        with self._lock:
            current = self._table.subscriptions
            if sub in current:
                return self._table.version
            return self._flip((*current, sub))

    def unsubscribe(
        self,
        consumer: int,
        venues: Iterable[int] | None = None,
        instruments: Iterable[int] | None = None,
        event_types: Iterable[int] | None = None,
    ) -> tuple[bool, int]:
        """Remove the subscription equal to the arguments; ``(found, live version)``.

        Matching is exact (same consumer, venue set, instrument set and type set, after
        normalization): it removes what one :meth:`subscribe` added. Not found: no flip.
        """
        target = Subscription(consumer, venues, instruments, event_types)
        with self._lock:
            current = self._table.subscriptions
            if target not in current:
                return False, self._table.version
            return True, self._flip(tuple(s for s in current if s != target))

    def remove_consumer(self, consumer: int) -> tuple[bool, int]:
        """Remove every subscription of ``consumer``; ``(found any, live version)``."""
        with self._lock:
            current = self._table.subscriptions
            kept = tuple(s for s in current if s.consumer != consumer)
            if len(kept) == len(current):
                return False, self._table.version
            return True, self._flip(kept)

    def _flip(self, subs: tuple[Subscription, ...]) -> int:
        """Compile ``subs`` as the next version and publish it (caller holds the lock)."""
        n_venues = max((max(s.venues) for s in subs if s.venues is not None), default=0)
        n_instr = max((max(s.instruments) for s in subs if s.instruments is not None), default=0)
        table = RoutingTable.compile(
            subs, self._n_consumers, n_venues, n_instr, self._table.version + 1
        )
        self._table = table  # the flip: one attribute assignment
        self._flips += 1
        return table.version

    # -- reading ---------------------------------------------------------------------------

    def subscriptions(self, consumer: int) -> list[Subscription]:
        """The live subscriptions of ``consumer``."""
        return self._table.subscriptions_of(consumer)

    def route(self, events: np.ndarray) -> np.ndarray:
        """Route one batch with the live table into a reused buffer; ``mask[n, n_consumers]``.

        The mask is a view of the router's buffer, valid until the next call: meant for the
        single dispatcher thread. Other threads use ``router.table.route(events, out)``.
        """
        n = len(events)
        if self._mask.shape[0] < n:
            self._mask = np.zeros((max(n, 2 * self._mask.shape[0]), self._n_consumers), np.uint8)
        return self._table.route(events, self._mask)

    def stats(self) -> RouterStats:
        """Live version, compiled rules, flips done and subscriptions, from one table."""
        with self._lock:
            table, flips = self._table, self._flips
        return RouterStats(table.version, table.n_rules, flips, len(table.subscriptions))

    def __repr__(self) -> str:
        s = self.stats()
        return f"Router(version={s.version}, n_rules={s.n_rules}, subs={s.n_subscriptions})"
