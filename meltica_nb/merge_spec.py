"""MergeSpec: what one merged subscription asks for, validated from a MergedSubscribe payload.

The payload names things as users do::

    {"instrument": "BTC-USDT", "event": "bbo", "venues": ["binance", "binance-futures"],
     "window_ms": 10000, "max_events": 1000, "partial_policy": "suppress"}

``window_ms`` (default 10 s), ``max_events`` (default 1000) and ``partial_policy``
(``suppress`` | ``emit`` | ``drop``, default ``suppress``) are optional. Every mistake is a
:class:`~meltica_nb.errors.ConfigError` whose message says what was wrong and what is allowed;
the Control Bus turns it into a failed ControlAck.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError
from .kernels import merge_kernels as mk
from .registry import Registry
from .schema import EVENT_NAMES, MAX_MERGE_FRAGMENTS, EventType, Kind, kind_of

__all__ = ["DEFAULT_MAX_EVENTS", "DEFAULT_WINDOW_MS", "PARTIAL_POLICIES", "MergeSpec"]

#: Window length when the payload names none (the spec's 10 s).
DEFAULT_WINDOW_MS = 10_000
#: Fragments that close a window when the payload names no count (the spec's 1000).
DEFAULT_MAX_EVENTS = 1000
#: Partial-window policies by name.
PARTIAL_POLICIES = {"suppress": mk.SUPPRESS, "emit": mk.EMIT, "drop": mk.DROP}
#: Longest window accepted: one day (a longer one is surely a unit mistake).
MAX_WINDOW_MS = 86_400_000

_FIELDS = ("instrument", "event", "venues", "window_ms", "max_events", "partial_policy")
_MERGEABLE = sorted(name for name, t in EVENT_NAMES.items()
                    if kind_of(t) == Kind.MARKET_DATA and t != EventType.MERGED)


@dataclass(frozen=True, slots=True)
class MergeSpec:
    """One merged subscription, as ids: equal specs share one set of windows."""

    instrument: int
    event_type: int
    venues: tuple[int, ...]
    window_ns: int
    max_events: int
    policy: int

    @classmethod
    def from_payload(cls, payload: dict, registry: Registry) -> MergeSpec:
        """Validate a MergedSubscribe / MergedUnsubscribe payload (ConfigError if bad)."""
        unknown = set(payload) - set(_FIELDS)
        if unknown:
            raise ConfigError(f"unknown MergedSubscribe field(s) {sorted(map(str, unknown))}; "
                              f"known: {list(_FIELDS)}")
        instrument = payload.get("instrument")
        if not isinstance(instrument, str):
            raise ConfigError(f"instrument must be one canonical symbol such as 'BTC-USDT', "
                              f"got {instrument!r}")
        # check everything before registering names: a refused payload registers nothing
        event = _event(payload.get("event"))
        window_ns = _window_ns(payload.get("window_ms", DEFAULT_WINDOW_MS))
        max_events = _max_events(payload.get("max_events", DEFAULT_MAX_EVENTS))
        policy = _policy(payload.get("partial_policy", "suppress"))
        names = _venue_names(payload.get("venues"))
        if max_events < len(names):
            raise ConfigError(f"max_events={max_events} closes every window before all "
                              f"{len(names)} venues can contribute")
        return cls(registry.instrument_id(instrument), event,
                   tuple(registry.venue_id(v) for v in names), window_ns, max_events, policy)

    def describe(self, registry: Registry) -> str:
        """``BTC-USDT bbo [binance, binance-futures]``: for stats and logs."""
        venues = ", ".join(registry.venue_name(v) for v in self.venues)
        event = EventType(self.event_type).name.lower()
        return f"{registry.instrument(self.instrument).symbol} {event} [{venues}]"


def _event(name) -> int:
    if name not in _MERGEABLE:
        raise ConfigError(f"event must be one market-data event type of {_MERGEABLE}, "
                          f"got {name!r}")
    return int(EVENT_NAMES[name])


def _venue_names(names) -> list[str]:
    if not isinstance(names, list | tuple) or not all(isinstance(v, str) for v in names):
        raise ConfigError(f"venues must be a list of venue names, got {names!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"venues must be distinct, got {list(names)}")
    if not 2 <= len(names) <= MAX_MERGE_FRAGMENTS:
        raise ConfigError(f"a merge needs 2..{MAX_MERGE_FRAGMENTS} venues, got {len(names)}: "
                          f"{list(names)}")
    return list(names)


def _window_ns(value) -> int:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if not ok or not 0 < value <= MAX_WINDOW_MS:
        raise ConfigError(f"window_ms must be a number of milliseconds in (0, {MAX_WINDOW_MS}],"
                          f" got {value!r}")
    return int(round(value * 1_000_000))


def _max_events(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigError(f"max_events must be an integer >= 2, got {value!r}")
    return value


def _policy(name) -> int:
    if not isinstance(name, str) or name not in PARTIAL_POLICIES:
        raise ConfigError(f"partial_policy must be one of {sorted(PARTIAL_POLICIES)}, "
                          f"got {name!r}")
    return PARTIAL_POLICIES[name]
