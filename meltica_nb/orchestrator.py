"""Orchestrator: merged subscriptions, windowed merges across venues, MergedEvents.

The Orchestrator sits between stamping and fan-out. The dispatcher hands it every ready batch
of market data (:meth:`Orchestrator.on_batch`) and calls it on the flush tick
(:meth:`Orchestrator.on_tick`); events of a merged subscription's (instrument, event type,
venues) are fragments, routed into that subscription's window by one kernel call per batch
(:mod:`meltica_nb.kernels.merge_kernels`). A closed window becomes a MergedEvent record in the
``MergedEvent`` pool and a MERGED CanonicalEvent that points at it (``merged_slot``,
``merge_id``); the dispatcher publishes those through the normal path, so they are stamped,
routed and fanned out like any market data (latest-wins per stream in market-data rings).
Fragments keep flowing to their own subscribers unchanged.

Each merged subscription is one rule row; its MERGED events carry the venue ``merged-<row>``
(registered in the Registry), so each is a stream of its own (coalescing never mixes two
merges) and routing is a plain :class:`~meltica_nb.routing.Subscription` of that venue. Equal
MergedSubscribes from several consumers share one row and its windows. A MERGED event's
``seq_provider`` counts that row's merges (monotonic), ``exchange_ns`` is the window's close
time, ``merged_type`` the fragments' event type and ``flags`` has PARTIAL for a partial window
emitted under the "emit" policy.

For BBO and ticker merges, each MERGED event also carries the consolidated best bid/offer
across the window's fragments and the venue of each side (``best_bid_*``, ``best_ask_*``):
the headline product. Consumers read the fragments with :meth:`fragments` (``engine.
merged_fragments(event)``) while the record is retained: the newest MergedEvents are kept until
the pool needs their slots, then a stale handle raises StaleHandle (as book rows do).

``routing_version``: the orchestrator owns the stamp conceptually; the dispatcher's stamp
kernel writes :attr:`routing_version` (the live routing table's version) into every event as it
copies it into the pool, fused there so no event is touched twice. MergedEvent records get the
version at emit time.

Open windows are discarded on restart (:meth:`reset`, called by ``Engine.stop``), never
emitted late.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .clock import Clock
from .errors import ConfigError, StaleHandle
from .kernels import merge_kernels as mk
from .merge_spec import PARTIAL_POLICIES, MergeSpec
from .pool import Pool
from .registry import Registry
from .routing import Router, Subscription
from .schema import CANONICAL_EVENT, MAX_MERGE_FRAGMENTS, MERGED_EVENT, EventType

__all__ = ["COUNTER_COLUMNS", "MergeStats", "Orchestrator", "OrchestratorStats"]

#: Merged subscriptions one engine holds at once.
DEFAULT_MAX_RULES = 64
_NONE = np.zeros(0, CANONICAL_EVENT)
_POLICY_NAMES = {code: name for name, code in PARTIAL_POLICIES.items()}
#: Counter name -> column of ``Orchestrator.counters`` (also summed into the totals).
COUNTER_COLUMNS = {
    "fragments": mk.C_FRAGMENTS, "windows": mk.C_WINDOWS, "emitted": mk.C_EMITTED,
    "emitted_partial": mk.C_EMITTED_PARTIAL, "suppressed": mk.C_SUPPRESSED,
    "dropped_partial": mk.C_DROPPED_PARTIAL, "dropped_late": mk.C_DROPPED_LATE,
    "closed_by_count": mk.C_CLOSED_BY_COUNT, "closed_by_time": mk.C_CLOSED_BY_TIME,
    "discarded": mk.C_DISCARDED,
}


@dataclass(frozen=True)
class MergeStats:
    """One merged subscription: what it merges, its window now, and its counters.

    ``missing`` counts, per venue, the suppressed windows it did not contribute to; ``late``
    the fragments per venue dropped because their window had closed.
    """

    name: str
    subscription: str
    consumers: tuple[int, ...]
    window_ms: float
    max_events: int
    partial_policy: str
    open: bool
    counts: dict[str, int]
    max_lateness_ms: float
    missing: dict[str, int]
    late: dict[str, int]


@dataclass(frozen=True)
class OrchestratorStats:
    """Totals over every merged subscription (removed ones included) and each live one."""

    routing_version: int
    open_windows: int
    retained: int
    overflow: int
    totals: dict[str, int]
    subscriptions: dict[str, MergeStats]


class _SlotQueue:
    """A FIFO of pool slots in a fixed int64 ring (the retained MergedEvents, oldest first)."""

    def __init__(self, capacity: int):
        self._ring = np.zeros(capacity, np.int64)
        self._head = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def push(self, slots: np.ndarray) -> None:
        cap = self._ring.shape[0]
        self._ring[(self._head + self._n + np.arange(slots.shape[0])) % cap] = slots
        self._n += slots.shape[0]

    def pop(self, n: int) -> np.ndarray:
        """The ``n`` oldest slots, removed."""
        cap = self._ring.shape[0]
        out = self._ring[(self._head + np.arange(n)) % cap]
        self._head = (self._head + n) % cap
        self._n -= n
        return out


class Orchestrator:
    """Owns merged subscriptions and their windows; turns closed windows into MERGED events.

    Parameters
    ----------
    pool : the ``MergedEvent`` pool (every slot of it is the orchestrator's).
    registry : venue and instrument names; ``merged-<row>`` venues are registered here.
    router : routes each MERGED stream to its subscribers; its version is the stamp.
    clock : the injected clock; windows close on ``clock.now_ns()`` (ingest time scale).
    max_rules : merged subscriptions held at once.
    """

    def __init__(self, pool: Pool, registry: Registry, router: Router, clock: Clock,
                 max_rules: int = DEFAULT_MAX_RULES):
        if isinstance(max_rules, bool) or not isinstance(max_rules, int) or max_rules < 1:
            raise ConfigError(f"max_rules must be an integer >= 1, got {max_rules!r}")
        self.pool = pool
        self.registry = registry
        self.router = router
        self.clock = clock
        self.lock = threading.Lock()
        n, v = max_rules, MAX_MERGE_FRAGMENTS
        self.rules = np.zeros((n, mk.N_RULE_COLS), np.int64)
        self.venue_pos = np.full((n, 1), -1, np.int64)  # [row, venue id] -> position or -1
        self.windows = np.zeros((n, mk.N_WIN_COLS), np.int64)
        self.fragments_table = np.zeros((n, v), CANONICAL_EVENT)
        self.counters = np.zeros((n, mk.N_COUNTERS), np.int64)
        self.missing = np.zeros((n, v), np.int64)
        self.late = np.zeros((n, v), np.int64)
        self.next_id = np.ones(1, np.int64)
        self._retired = np.zeros(mk.N_COUNTERS, np.int64)
        self._blank = np.zeros(1, MERGED_EVENT)
        self._specs: list[MergeSpec | None] = [None] * n
        self._consumers: list[set[int]] = [set() for _ in range(n)]
        self._slot_merge_id = np.zeros(pool.capacity, np.int64)  # 0: not a live MergedEvent
        self._retained = _SlotQueue(pool.capacity)  # emitted MergedEvent slots, oldest first
        self._overflow = 0
        self._active = np.zeros(0, np.int64)  # rule rows in use, in row order
        self._scratch(256 + n)

    def _scratch(self, n: int) -> None:
        self._out_merged = np.zeros(n, MERGED_EVENT)
        self._out_events = np.zeros(n, CANONICAL_EVENT)

    @property
    def routing_version(self) -> int:
        """The version stamped on every event: the live routing table's."""
        return self.router.version

    # -- merged subscriptions (Control Bus) ------------------------------------------------------

    def subscribe(self, column: int, spec: MergeSpec) -> int:
        """Merge ``spec`` for consumer ``column``; return the routing version after it."""
        with self.lock:
            row = self._row_of(spec)
            if row is None:
                row = self._install(spec)
            self._consumers[row].add(column)
            return self.router.subscribe(self._route(row, column))

    def unsubscribe(self, column: int, spec: MergeSpec) -> tuple[bool, int]:
        """Stop merging ``spec`` for ``column``; ``(found, routing version)``.

        The last consumer leaving removes the subscription and discards its open window.
        """
        with self.lock:
            row = self._row_of(spec)
            if row is None or column not in self._consumers[row]:
                return False, self.router.version
            sub = self._route(row, column)
            _, version = self.router.unsubscribe(column, sub.venues, sub.instruments,
                                                 sub.event_types)
            self._consumers[row].discard(column)
            if not self._consumers[row]:
                self._retire(row)
            return True, version

    def _row_of(self, spec: MergeSpec) -> int | None:
        for row, known in enumerate(self._specs):
            if known == spec:
                return row
        return None

    def _install(self, spec: MergeSpec) -> int:
        free = np.flatnonzero(self.rules[:, mk.R_ACTIVE] == 0)
        if not free.shape[0]:
            raise ConfigError(f"all {self.rules.shape[0]} merged subscriptions are in use; "
                              "unsubscribe one first")
        row = int(free[0])
        rule = self.rules[row]
        rule[mk.R_INSTRUMENT], rule[mk.R_TYPE] = spec.instrument, spec.event_type
        rule[mk.R_N_VENUES], rule[mk.R_WINDOW_NS] = len(spec.venues), spec.window_ns
        rule[mk.R_MAX_EVENTS], rule[mk.R_POLICY] = spec.max_events, spec.policy
        rule[mk.R_MERGE_VENUE] = self.registry.venue_id(f"merged-{row}")
        self._place_venues(row, spec.venues)
        for table in (self.windows, self.counters, self.missing, self.late):
            table[row] = 0
        rule[mk.R_ACTIVE] = 1  # last: R_SEQ is kept, so the row's MERGED seqs only grow
        self._specs[row] = spec
        self._active = np.flatnonzero(self.rules[:, mk.R_ACTIVE]).astype(np.int64)
        return row

    def _place_venues(self, row: int, venues: tuple[int, ...]) -> None:
        """Row ``row`` of ``venue_pos``: each venue id's position in the list, else -1."""
        width = max(self.venue_pos.shape[1], max(venues) + 1)
        if width > self.venue_pos.shape[1]:
            wider = np.full((self.venue_pos.shape[0], width), -1, np.int64)
            wider[:, :self.venue_pos.shape[1]] = self.venue_pos
            self.venue_pos = wider
        self.venue_pos[row] = -1
        self.venue_pos[row, list(venues)] = np.arange(len(venues))

    def _retire(self, row: int) -> None:
        mk.discard_windows(self.windows, self.counters, np.array([row], np.int64))
        self._retired += self.counters[row]
        self.rules[row, mk.R_ACTIVE] = 0
        self._specs[row] = None
        self._active = np.flatnonzero(self.rules[:, mk.R_ACTIVE]).astype(np.int64)

    def _route(self, row: int, column: int) -> Subscription:
        """The routing subscription that delivers row ``row``'s MERGED events to ``column``."""
        return Subscription(column, {int(self.rules[row, mk.R_MERGE_VENUE])},
                            {int(self.rules[row, mk.R_INSTRUMENT])}, {int(EventType.MERGED)})

    # -- the dispatcher hook -------------------------------------------------------------------

    def on_batch(self, events: np.ndarray) -> np.ndarray:
        """Route a ready batch's fragments into windows; return the MERGED events to publish.

        The returned array is scratch, valid until the next call: publish it at once.
        """
        if not self._active.shape[0]:
            return _NONE
        with self.lock:
            need = events.shape[0] + self.rules.shape[0]
            if self._out_events.shape[0] < need:
                self._scratch(need)
            n = mk.merge_batch(events, self.clock.now_ns(), self._active, self.rules,
                               self.venue_pos, self.windows, self.fragments_table,
                               self.counters, self.missing, self.late, self.next_id,
                               self._blank, self._out_merged, self._out_events)
            return self._publish(n)

    def on_tick(self) -> np.ndarray:
        """Close windows whose time is up (the flush tick); return the MERGED events."""
        if not self._active.shape[0]:
            return _NONE
        with self.lock:
            n = mk.close_expired(self.clock.now_ns(), self._active, self.rules, self.windows,
                                 self.fragments_table, self.counters, self.missing,
                                 self._blank, self._out_merged, self._out_events, 0)
            return self._publish(n)

    def _publish(self, n: int) -> np.ndarray:
        """Move ``n`` emitted windows into MergedEvent pool slots; return their events."""
        if not n:
            return _NONE
        keep = min(n, self.pool.capacity)
        self._overflow += n - keep  # more windows closed at once than the pool holds
        merged = self._out_merged[n - keep:n]
        events = self._out_events[n - keep:n]
        self._make_room(keep)
        slots = self.pool.acquire_many(keep, 0.0)
        mk.store_merged(self.pool.records, slots, merged, events, self.router.version,
                        self._slot_merge_id)
        self._retained.push(slots)
        return events

    def _make_room(self, n: int) -> None:
        """Release the oldest retained MergedEvents until ``n`` slots are free."""
        short = n - (self.pool.capacity - self.pool.in_use)
        if short > 0:
            self._release(self._retained.pop(short))

    def _release(self, slots: np.ndarray) -> None:
        if slots.shape[0]:
            self._slot_merge_id[slots] = 0
            self.pool.release_many(slots)

    # -- reading merged events -----------------------------------------------------------------

    def merged_event(self, event) -> np.ndarray:
        """A copy of the MergedEvent record behind a MERGED event (one-element array).

        Raises StaleHandle once the record was released to make room for newer ones.
        """
        if int(event["event_type"]) != EventType.MERGED:
            raise ConfigError(f"not a MERGED event (event_type {int(event['event_type'])})")
        slot, merge_id = int(event["merged_slot"]), int(event["merge_id"])
        with self.lock:
            if not 0 <= slot < self.pool.capacity or self._slot_merge_id[slot] != merge_id:
                raise StaleHandle(
                    f"MergedEvent {merge_id} (slot {slot}) was released to make room for newer "
                    f"ones; read merged events sooner or give the MergedEvent pool more slots")
            return self.pool.records[slot:slot + 1].copy()

    def fragments(self, event) -> np.ndarray:
        """The fragments (CanonicalEvents, one per venue, in subscription order) of a MERGED
        event, copied."""
        record = self.merged_event(event)[0]
        return record["fragments"][:record["n_fragments"]].copy()

    # -- life cycle ----------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Compile the merge kernels on empty input (nothing changes)."""
        with self.lock:
            mk.merge_batch(_NONE, 0, self._active[:0], self.rules, self.venue_pos,
                           self.windows, self.fragments_table, self.counters, self.missing,
                           self.late, self.next_id, self._blank, self._out_merged,
                           self._out_events)
            none = np.zeros(0, np.int64)
            mk.close_expired(0, none, self.rules, self.windows, self.fragments_table,
                             self.counters, self.missing, self._blank, self._out_merged,
                             self._out_events, 0)
            mk.store_merged(self.pool.records, none, self._out_merged, self._out_events, 0,
                            self._slot_merge_id)
            mk.discard_windows(self.windows, self.counters, none)

    def reset(self) -> int:
        """Restart: discard every open window and release retained MergedEvents.

        Returns the number of windows discarded. Subscriptions stay.
        """
        with self.lock:
            discarded = int(mk.discard_windows(self.windows, self.counters, self._active))
            self._release(self._retained.pop(len(self._retained)))
            return discarded

    # -- observability -------------------------------------------------------------------------

    def stats(self) -> OrchestratorStats:
        """A snapshot: totals, and each live merged subscription by its ``merged-<row>`` name."""
        with self.lock:
            rows = [r for r, spec in enumerate(self._specs) if spec is not None]
            total = self._retired + self.counters[rows].sum(axis=0)
            subs = {self.registry.venue_name(int(self.rules[r, mk.R_MERGE_VENUE])):
                    self._row_stats(r) for r in rows}
            return OrchestratorStats(
                self.router.version, int(self.windows[rows, mk.W_OPEN].sum()),
                len(self._retained), self._overflow,
                {name: int(total[col]) for name, col in COUNTER_COLUMNS.items()}, subs)

    def _row_stats(self, row: int) -> MergeStats:
        spec = self._specs[row]
        assert spec is not None
        names = [self.registry.venue_name(v) for v in spec.venues]
        counts = self.counters[row]
        return MergeStats(
            self.registry.venue_name(int(self.rules[row, mk.R_MERGE_VENUE])),
            spec.describe(self.registry), tuple(sorted(self._consumers[row])),
            spec.window_ns / 1e6, spec.max_events, _POLICY_NAMES[spec.policy],
            bool(self.windows[row, mk.W_OPEN]),
            {name: int(counts[col]) for name, col in COUNTER_COLUMNS.items()},
            int(counts[mk.C_MAX_LATENESS_NS]) / 1e6,
            dict(zip(names, self.missing[row].tolist(), strict=False)),
            dict(zip(names, self.late[row].tolist(), strict=False)))
