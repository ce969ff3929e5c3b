"""Control Bus: commands that change what the engine does, each answered with a ControlAck.

A command is an envelope ``{"type": "Subscribe", "consumer": "tape", "payload": {...}}``
(or a call such as :meth:`ControlBus.subscribe`). Each is validated, applied, and answered
twice: a :class:`ControlAck` returned to the caller (with a readable error on failure) and a
CONTROL_ACK record published to the issuing consumer through the lossless critical path, so a
strategy sees its own acks in order with its events. Unknown commands and bad payloads get a
failed ack, never an exception.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import CommandRefused, ConfigError
from .merge_spec import MergeSpec
from .registry import Registry
from .routing import Router, Subscription
from .schema import CANONICAL_EVENT, EVENT_NAMES, CommandType, ErrorCode, EventType, Flag

__all__ = ["ControlAck", "ControlBus"]


@dataclass(frozen=True)
class ControlAck:
    """The answer to one command: success, the routing version after it, or why it failed."""

    command_id: int
    command: str
    consumer: str
    success: bool
    routing_version: int
    error: str | None = None
    error_code: ErrorCode = ErrorCode.OK


_COMMANDS = {"Subscribe": CommandType.SUBSCRIBE, "Unsubscribe": CommandType.UNSUBSCRIBE,
             "MergedSubscribe": CommandType.MERGED_SUBSCRIBE,
             "MergedUnsubscribe": CommandType.MERGED_UNSUBSCRIBE}


class ControlBus:
    """Validates and applies commands; acks the caller and the issuing consumer.

    Parameters
    ----------
    router : the routing table owner; Subscribe/Unsubscribe flip it.
    registry : names of venues and instruments to ids.
    consumers : consumer name -> routing column.
    publish_to : ``publish_to(column, records)`` delivers critical records to one consumer.
    orchestrator : owner of merged subscriptions (MergedSubscribe / MergedUnsubscribe).
    """

    def __init__(self, router: Router, registry: Registry, consumers: dict[str, int],
                 publish_to: Callable[[int, np.ndarray], None], orchestrator=None):
        self.orchestrator = orchestrator
        self.router = router
        self.registry = registry
        self.consumers = consumers
        self.publish_to = publish_to
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._handlers = {CommandType.SUBSCRIBE: self._subscribe,
                          CommandType.UNSUBSCRIBE: self._unsubscribe,
                          CommandType.MERGED_SUBSCRIBE: self._merged_subscribe,
                          CommandType.MERGED_UNSUBSCRIBE: self._merged_unsubscribe}

    def subscribe(self, consumer: str, venues=None, instruments=None, events=None) -> ControlAck:
        """Route the named venues x instruments x event types (None = all) to ``consumer``."""
        return self.send({"type": "Subscribe", "consumer": consumer, "payload": {
            "venues": venues, "instruments": instruments, "events": events}})

    def unsubscribe(self, consumer: str, venues=None, instruments=None,
                    events=None) -> ControlAck:
        """Remove exactly what a matching :meth:`subscribe` added."""
        return self.send({"type": "Unsubscribe", "consumer": consumer, "payload": {
            "venues": venues, "instruments": instruments, "events": events}})

    def merged_subscribe(self, consumer: str, instrument: str, event: str, venues,
                         **options) -> ControlAck:
        """Merge ``event`` of ``instrument`` across ``venues`` for ``consumer``.

        ``options``: ``window_ms`` (10 000), ``max_events`` (1000), ``partial_policy``
        ("suppress", "emit" or "drop"); see :mod:`meltica_nb.merge_spec`.
        """
        return self.send({"type": "MergedSubscribe", "consumer": consumer, "payload": {
            "instrument": instrument, "event": event, "venues": venues, **options}})

    def merged_unsubscribe(self, consumer: str, instrument: str, event: str, venues,
                           **options) -> ControlAck:
        """Remove exactly what a matching :meth:`merged_subscribe` added."""
        return self.send({"type": "MergedUnsubscribe", "consumer": consumer, "payload": {
            "instrument": instrument, "event": event, "venues": venues, **options}})

    def send(self, command: dict) -> ControlAck:
        """Apply one command envelope; always returns an ack (failed acks say why).

        Commands are applied one at a time, and each ack is published before the next
        command is taken, so a consumer receives its acks in command-id order.
        """
        name = str(command.get("type")) if isinstance(command, dict) else repr(command)
        consumer = command.get("consumer") if isinstance(command, dict) else None
        consumer = consumer if isinstance(consumer, str) else repr(consumer)
        with self._lock:
            command_id = next(self._ids)
            try:
                kind, column, payload = self._validate(command)
                version = self._handlers[kind](column, payload)
                ack = ControlAck(command_id, name, consumer, True, version)
            except (CommandRefused, ConfigError) as exc:
                code = exc.code if isinstance(exc, CommandRefused) else ErrorCode.BAD_PAYLOAD
                ack = ControlAck(command_id, name, consumer, False, self.router.version,
                                 str(exc), code)
            if ack.consumer in self.consumers:
                self.publish_to(self.consumers[ack.consumer], self._ack_record(ack))
        return ack

    def _validate(self, command) -> tuple[CommandType, int, dict]:
        """Return (command type, consumer column, payload) or raise CommandRefused."""
        if not isinstance(command, dict):
            raise CommandRefused(ErrorCode.BAD_PAYLOAD, f"a command must be a dict: {command!r}")
        ctype = command.get("type")
        kind = _COMMANDS.get(ctype) if isinstance(ctype, str) else None
        if kind is None:
            raise CommandRefused(ErrorCode.UNKNOWN_COMMAND,
                                 f"unknown command {ctype!r}; known: {sorted(_COMMANDS)}")
        consumer = command.get("consumer")
        if not isinstance(consumer, str) or consumer not in self.consumers:
            raise CommandRefused(ErrorCode.UNKNOWN_CONSUMER, f"no consumer named {consumer!r}")
        payload = command.get("payload")
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise CommandRefused(ErrorCode.BAD_PAYLOAD,
                                 f"payload must be an object (dict), got {payload!r}")
        return kind, self.consumers[consumer], payload

    def subscription(self, column: int, payload: dict) -> Subscription:
        """Turn a payload of names into a Subscription of ids (ConfigError if malformed)."""
        unknown = set(payload) - {"venues", "instruments", "events"}
        if unknown:
            raise ConfigError(f"unknown payload field(s) {sorted(map(str, unknown))}; "
                              "known: ['events', 'instruments', 'venues']")
        venues = _names(payload.get("venues"), "venues")
        instruments = _names(payload.get("instruments"), "instruments")
        events = _names(payload.get("events"), "events")
        return Subscription(
            column,
            None if venues is None else {self.registry.venue_id(v) for v in venues},
            None if instruments is None else set(self.registry.instrument_ids(instruments)),
            None if events is None else {_event_type(e) for e in events})

    def _subscribe(self, column: int, payload: dict) -> int:
        return self.router.subscribe(self.subscription(column, payload))

    def _unsubscribe(self, column: int, payload: dict) -> int:
        sub = self.subscription(column, payload)
        found, version = self.router.unsubscribe(column, sub.venues, sub.instruments,
                                                 sub.event_types)
        if not found:
            raise CommandRefused(ErrorCode.NOT_SUBSCRIBED, "no active subscription matches")
        return version

    def _merge_spec(self, payload: dict) -> MergeSpec:
        if self.orchestrator is None:
            raise CommandRefused(ErrorCode.UNKNOWN_COMMAND, "this bus has no orchestrator")
        return MergeSpec.from_payload(payload, self.registry)

    def _merged_subscribe(self, column: int, payload: dict) -> int:
        spec = self._merge_spec(payload)
        return self.orchestrator.subscribe(column, spec)

    def _merged_unsubscribe(self, column: int, payload: dict) -> int:
        spec = self._merge_spec(payload)
        found, version = self.orchestrator.unsubscribe(column, spec)
        if not found:
            raise CommandRefused(ErrorCode.NOT_SUBSCRIBED, "no merged subscription matches")
        return version

    def _ack_record(self, ack: ControlAck) -> np.ndarray:
        rec = np.zeros(1, CANONICAL_EVENT)
        rec["event_type"] = EventType.CONTROL_ACK
        rec["command_id"] = ack.command_id
        rec["consumer_id"] = self.consumers[ack.consumer]
        rec["command_type"] = _COMMANDS.get(ack.command, CommandType.NONE)
        rec["flags"] = Flag.SUCCESS if ack.success else 0
        rec["error_code"] = ack.error_code
        rec["result_value"] = ack.routing_version
        return rec


def _names(values, what: str) -> list[str] | None:
    """None (all) or a non-empty list of names; a lone string is one name."""
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    if not isinstance(values, list | tuple | set | frozenset) or not values:
        raise ConfigError(f"{what} must be a non-empty list of names or null, got {values!r}")
    return [str(v) for v in values]


def _event_type(name: str) -> int:
    try:
        return int(EVENT_NAMES[name])
    except KeyError:
        raise ConfigError(f"unknown event type {name!r}; known: {sorted(EVENT_NAMES)}") from None
