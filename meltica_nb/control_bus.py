"""Control Bus: commands that change what the engine does, each answered with a ControlAck.

A command is an envelope ``{"type": "Subscribe", "consumer": "tape", "payload": {...}}``
(or a call such as :meth:`ControlBus.subscribe`). Subscribe and Unsubscribe change routing;
SetTradingMode, SubmitOrder, CancelOrder and QueryOrder go to the engine's
:class:`~meltica_nb.order_gateway.OrderGateway`, and their ack carries the order's state in
``result`` (and a venue's own error code in ``venue_code``). Each is validated, applied,
and answered twice: a :class:`ControlAck` returned to the caller (with a readable error on
failure) and a CONTROL_ACK record (plus a CONTROL_RESULT record for an order's state)
published to the issuing consumer through the lossless critical path, so a strategy sees its
own acks in order with its events. Unknown commands and bad payloads get a
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
from .order_gateway import OrderGateway
from .registry import Registry
from .routing import Router, Subscription
from .schema import (
    CANONICAL_EVENT,
    EVENT_NAMES,
    CommandType,
    ErrorCode,
    EventType,
    Flag,
    OrderStatus,
)

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
    venue_code: int | None = None
    result: object = None


_COMMANDS = {"Subscribe": CommandType.SUBSCRIBE, "Unsubscribe": CommandType.UNSUBSCRIBE,
             "MergedSubscribe": CommandType.MERGED_SUBSCRIBE,
             "MergedUnsubscribe": CommandType.MERGED_UNSUBSCRIBE,
             "SetTradingMode": CommandType.SET_TRADING_MODE,
             "SubmitOrder": CommandType.SUBMIT_ORDER, "CancelOrder": CommandType.CANCEL_ORDER,
             "QueryOrder": CommandType.QUERY_ORDER}


class ControlBus:
    """Validates and applies commands; acks the caller and the issuing consumer.

    Parameters
    ----------
    router : the routing table owner; Subscribe/Unsubscribe flip it.
    registry : names of venues and instruments to ids.
    consumers : consumer name -> routing column.
    publish_to : ``publish_to(column, records)`` delivers critical records to one consumer.
    orchestrator : owner of merged subscriptions (MergedSubscribe / MergedUnsubscribe).
    orders : the order gateway; without one, order commands fail with UNKNOWN_VENUE.
    """

    def __init__(self, router: Router, registry: Registry, consumers: dict[str, int],
                 publish_to: Callable[[int, np.ndarray], None], orchestrator=None,
                 orders: OrderGateway | None = None):
        self.orchestrator = orchestrator
        self.router = router
        self.registry = registry
        self.consumers = consumers
        self.publish_to = publish_to
        self.orders = orders
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._handlers = {CommandType.SUBSCRIBE: self._subscribe,
                          CommandType.UNSUBSCRIBE: self._unsubscribe,
                          CommandType.MERGED_SUBSCRIBE: self._merged_subscribe,
                          CommandType.MERGED_UNSUBSCRIBE: self._merged_unsubscribe,
                          CommandType.SET_TRADING_MODE: self._order_command,
                          CommandType.SUBMIT_ORDER: self._order_command,
                          CommandType.CANCEL_ORDER: self._order_command,
                          CommandType.QUERY_ORDER: self._order_command}

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

    def set_trading_mode(self, consumer: str, enabled: bool) -> ControlAck:
        """Switch ``consumer``'s trading on or off (off: its orders never leave the engine)."""
        return self.send({"type": "SetTradingMode", "consumer": consumer,
                          "payload": {"enabled": enabled}})

    def submit_order(self, consumer: str, client_order_id: str, instrument: str, side: str,
                     order_type: str, quantity: str, price: str | None = None, *,
                     venue: str = "binance", **extra) -> ControlAck:
        """Send an order: ``submit_order("strat", "a1", "BTC-USDT", "BUY", "LIMIT", "0.01",
        "60000")``. Amounts are decimal text; ``extra`` may hold ``time_in_force``,
        ``decision_id``, ``trace_id``. The ack's ``result`` is the order's OrderState."""
        payload = {"client_order_id": client_order_id, "venue": venue,
                   "instrument": instrument, "side": side, "type": order_type,
                   "quantity": quantity, **extra}
        if price is not None:
            payload["price"] = price
        return self.send({"type": "SubmitOrder", "consumer": consumer, "payload": payload})

    def cancel_order(self, consumer: str, client_order_id: str) -> ControlAck:
        """Cancel one of ``consumer``'s open orders; the CANCELLED report follows."""
        return self.send({"type": "CancelOrder", "consumer": consumer,
                          "payload": {"client_order_id": client_order_id}})

    def query_order(self, consumer: str, client_order_id: str) -> ControlAck:
        """The venue's current state of one of ``consumer``'s orders (in ``result``)."""
        return self.send({"type": "QueryOrder", "consumer": consumer,
                          "payload": {"client_order_id": client_order_id}})

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
                version, result = self._handlers[kind](column, payload, kind)
                ack = ControlAck(command_id, name, consumer, True, version, result=result)
            except CommandRefused as exc:
                ack = ControlAck(command_id, name, consumer, False, self.router.version,
                                 str(exc), ErrorCode(exc.code), exc.venue_code)
            except ConfigError as exc:
                ack = ControlAck(command_id, name, consumer, False, self.router.version,
                                 str(exc), ErrorCode.BAD_PAYLOAD)
            if ack.consumer in self.consumers:
                self.publish_to(self.consumers[ack.consumer], self._ack_records(ack))
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

    def _subscribe(self, column: int, payload: dict, _kind) -> tuple[int, None]:
        return self.router.subscribe(self.subscription(column, payload)), None

    def _unsubscribe(self, column: int, payload: dict, _kind) -> tuple[int, None]:
        sub = self.subscription(column, payload)
        found, version = self.router.unsubscribe(column, sub.venues, sub.instruments,
                                                 sub.event_types)
        if not found:
            raise CommandRefused(ErrorCode.NOT_SUBSCRIBED, "no active subscription matches")
        return version, None

    def _merge_spec(self, payload: dict) -> MergeSpec:
        if self.orchestrator is None:
            raise CommandRefused(ErrorCode.UNKNOWN_COMMAND, "this bus has no orchestrator")
        return MergeSpec.from_payload(payload, self.registry)

    def _merged_subscribe(self, column: int, payload: dict, _kind) -> tuple[int, None]:
        spec = self._merge_spec(payload)
        return self.orchestrator.subscribe(column, spec), None

    def _merged_unsubscribe(self, column: int, payload: dict, _kind) -> tuple[int, None]:
        spec = self._merge_spec(payload)
        found, version = self.orchestrator.unsubscribe(column, spec)
        if not found:
            raise CommandRefused(ErrorCode.NOT_SUBSCRIBED, "no merged subscription matches")
        return version, None

    def _order_command(self, column: int, payload: dict, kind: CommandType) -> tuple[int, object]:
        """Order commands go to the gateway; the routing version does not change."""
        if self.orders is None:
            raise CommandRefused(ErrorCode.UNKNOWN_VENUE, "this engine has no order gateway")
        handler = {CommandType.SET_TRADING_MODE: self.orders.set_trading,
                   CommandType.SUBMIT_ORDER: self.orders.submit,
                   CommandType.CANCEL_ORDER: self.orders.cancel,
                   CommandType.QUERY_ORDER: self.orders.query}[kind]
        return self.router.version, handler(column, payload)

    def _ack_records(self, ack: ControlAck) -> np.ndarray:
        """The CONTROL_ACK record, then a CONTROL_RESULT record when the ack has an order
        state (``status`` = OrderStatus, ``result_value`` = the venue's order id)."""
        recs = np.zeros(1 if ack.result is None else 2, CANONICAL_EVENT)
        recs["command_id"] = ack.command_id
        recs["consumer_id"] = self.consumers[ack.consumer]
        recs["command_type"] = _COMMANDS.get(ack.command, CommandType.NONE)
        recs["flags"] = Flag.SUCCESS if ack.success else 0
        rec = recs[:1]
        rec["event_type"] = EventType.CONTROL_ACK
        rec["error_code"] = ack.error_code
        rec["result_value"] = ack.routing_version
        rec["venue_code"] = ack.venue_code or 0
        if ack.result is not None:
            result = recs[1:]
            result["event_type"] = EventType.CONTROL_RESULT
            result["status"] = OrderStatus[ack.result.status]
            result["result_value"] = ack.result.exchange_order_id
        return recs


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
