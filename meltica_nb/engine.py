"""Engine: wires pools, dispatcher, routing, consumers and the Control Bus, and runs them.

``Engine(config)`` builds the chain; ``@engine.consumer(...)`` registers user code;
``start()`` runs every consumer and the dispatcher's flush tick on threads of one TaskGroup;
``publish(records)`` brings your own feed in through exactly the path venue events take;
``stop()`` drains (held events flushed, rings emptied), joins every thread and returns the
pool shutdown report.
"""

from __future__ import annotations

import logging
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .book_table import BookTable
from .clock import Clock, WallClock
from .concurrency import CancelToken, TaskGroup
from .consumer import Consumer
from .control_bus import ControlBus
from .dead_letter_queue import DeadLetterQueue
from .dispatcher import Dispatcher, DispatcherConfig
from .errors import ConfigError
from .handlers import make_handler
from .orchestrator import Orchestrator
from .order_gateway import OrderGateway
from .pool_manager import PoolManager, ShutdownReport
from .registry import Registry
from .routing import Router
from .wait_strategy import BlockingWait, BusySpinWait, YieldingWait

__all__ = ["Engine", "EngineConfig"]

log = logging.getLogger("meltica_nb.engine")

_WAITS = {"blocking": BlockingWait, "yielding": YieldingWait, "busy-spin": BusySpinWait}


@dataclass(frozen=True)
class EngineConfig:
    """Engine configuration (TOML tables ``[pools]`` and ``[dispatcher]`` plus top-level keys).

    Parameters
    ----------
    pools : slots per pool name (see ``meltica_nb.pool_manager.DEFAULT_CAPACITIES``).
    dispatcher : ordering and batching (see :class:`DispatcherConfig`).
    max_consumers : routing table width.
    dlq_capacity : dead letters kept (drop-oldest).
    book_rows : rows of the BookTable that BookSnapshot events point into.
    book_levels : top-K levels per side kept in each BookSnapshot.
    debug : poison released slots and record release sites.
    """

    pools: dict = field(default_factory=dict)
    dispatcher: DispatcherConfig = field(default_factory=DispatcherConfig)
    max_consumers: int = 64
    dlq_capacity: int = 4096
    book_rows: int = 8192
    book_levels: int = 20
    debug: bool = False

    @classmethod
    def from_dict(cls, raw: dict | None) -> EngineConfig:
        """Validate a plain dict (as read from TOML); unknown keys are errors."""
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"engine config must be a table (dict), got {raw!r}")
        raw = dict(raw or {})
        known = {"pools", "dispatcher", "max_consumers", "dlq_capacity", "book_rows",
                 "book_levels", "debug"}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"unknown engine config key(s) {sorted(map(str, unknown))}; "
                              f"known: {sorted(known)}")
        dispatcher = raw.pop("dispatcher", {})
        if not isinstance(dispatcher, DispatcherConfig):
            if not isinstance(dispatcher, dict):
                raise ConfigError(f"[dispatcher] must be a table, got {dispatcher!r}")
            try:
                dispatcher = DispatcherConfig(**dispatcher)
            except TypeError as exc:
                raise ConfigError(f"[dispatcher]: {exc}") from None
        cfg = cls(dispatcher=dispatcher, **raw)
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise ConfigError for a value of the wrong type or range."""
        if not isinstance(self.pools, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0
                for v in self.pools.values()):
            raise ConfigError(f"[pools] must map pool names to positive slot counts, "
                              f"got {self.pools!r}")
        for name in ("max_consumers", "dlq_capacity", "book_rows", "book_levels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.debug, bool):
            raise ConfigError(f"debug must be true or false, got {self.debug!r}")


class Engine:
    """The running engine; see the module docstring for its life cycle."""

    def __init__(self, config: dict | EngineConfig | None = None, *, clock: Clock | None = None):
        if isinstance(config, EngineConfig):
            config.check()
            cfg = config
        else:
            cfg = EngineConfig.from_dict(config)
        self.config = cfg
        self.clock = clock or WallClock()
        self.registry = Registry()
        self.pools = PoolManager(cfg.pools, debug=cfg.debug)
        self.dlq = DeadLetterQueue(cfg.dlq_capacity)
        self.router = Router(n_consumers_max=cfg.max_consumers)
        self.orchestrator = Orchestrator(self.pools["MergedEvent"], self.registry, self.router,
                                         self.clock)
        self.dispatcher = Dispatcher(self.pools["CanonicalEvent"], self.router, self.clock,
                                     self.dlq, cfg.dispatcher, orchestrator=self.orchestrator)
        self.book_table = BookTable(cfg.book_rows, cfg.book_levels)
        self.consumers: dict[str, Consumer] = {}
        self.feeds: list = []
        self.traders: list = []
        self.orders = OrderGateway(self.pools, self.registry, self.clock, self.dispatcher.publish,
                                   consumer_name=self._consumer_name)
        self.control = ControlBus(self.router, self.registry,
                                  {}, self.dispatcher.publish_to, orchestrator=self.orchestrator,
                                  orders=self.orders)
        self._group: TaskGroup | None = None
        self._feed_group: TaskGroup | None = None
        self._running = False

    @classmethod
    def from_file(cls, path: str | Path, *, clock: Clock | None = None) -> Engine:
        """Build an engine from a TOML file (the ``[engine]`` table, or the whole file)."""
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        return cls(raw.get("engine", raw), clock=clock)

    # -- consumers ---------------------------------------------------------------------------

    def consumer(self, name: str, **options):
        """Register the decorated function as a consumer; ``options`` as :meth:`add_consumer`."""
        def register(fn):
            self.add_consumer(name, fn, **options)
            return fn
        return register

    def add_consumer(self, name: str, fn, *, venues=None, instruments=None, events=None,
                     mode: str = "batch", wait: str = "blocking", state=None,
                     ring_capacity: int = 4096, critical_capacity: int = 1024,
                     batch_size: int = 256, coalesce: bool = True) -> Consumer:
        """Add ``fn`` as a consumer of the named events; returns the Consumer.

        ``venues``/``instruments``/``events`` are names (None = all); ``mode`` is "batch",
        "njit" or "python"; ``wait`` is "blocking", "yielding" or "busy-spin";
        ``coalesce=False`` keeps every market-data event (no latest-wins per stream).
        """
        if name in self.consumers:
            raise ConfigError(f"a consumer named {name!r} already exists")
        if self._group is not None:
            raise ConfigError("consumers must be added before engine.start()")
        if wait not in _WAITS:
            raise ConfigError(f"unknown wait strategy {wait!r}; use one of {sorted(_WAITS)}")
        index = len(self.consumers)
        if index >= self.config.max_consumers:
            raise ConfigError(f"more than max_consumers={self.config.max_consumers} consumers")
        # build everything that can fail before registering anything
        subscription = self.control.subscription(
            index, {"venues": venues, "instruments": instruments, "events": events})
        handler = make_handler(mode, fn, state)
        with self.dispatcher.lock:
            consumer = Consumer(index, name, handler, self.clock, _WAITS[wait](),
                                ring_capacity=ring_capacity, critical_capacity=critical_capacity,
                                batch_size=batch_size, dlq=self.dlq, bank=self.dispatcher.bank,
                                coalesce=coalesce)
            self.consumers[name] = consumer
            self.dispatcher.add_consumer(consumer)
            self.control.consumers[name] = index
        self.router.subscribe(subscription)
        return consumer

    def add_feed(self, feed) -> None:
        """Add a venue feed (e.g. ``BinanceFeed``): started with the engine, stopped first.

        A feed has ``prepare()`` (set-up on the starting thread, may do REST calls),
        ``tasks()`` ((name, thread body) pairs) and ``stats()``.
        """
        if self._group is not None:
            raise ConfigError("feeds must be added before engine.start()")
        self.feeds.append(feed)

    def add_trader(self, trader) -> None:
        """Add a venue trader (e.g. ``BinanceTrader``): orders for its venue go to it.

        A trader has the feed life cycle (``prepare``, ``tasks``, ``stats``) plus ``venue``,
        ``place``, ``cancel`` and ``query`` (see :class:`meltica_nb.order_gateway.Trader`);
        it starts after the feeds and its stats are under ``stats()["orders"].traders``.
        """
        if self._group is not None:
            raise ConfigError("traders must be added before engine.start()")
        self.orders.add_trader(trader)
        self.traders.append(trader)

    def _consumer_name(self, column: int) -> str:
        return next((n for n, c in self.consumers.items() if c.index == column), str(column))

    def book_levels(self, event) -> tuple[np.ndarray, np.ndarray]:
        """The (bids, asks) top-K levels of a BOOK_SNAPSHOT event, copied.

        Raises StaleHandle if the BookTable row was reused since (keep up, or copy sooner).
        """
        return self.book_table.read_event(event)

    def merged_fragments(self, event) -> np.ndarray:
        """The fragments of a MERGED event (CanonicalEvents, one per venue), copied.

        Raises StaleHandle once the MergedEvent was released for newer ones (read sooner).
        """
        return self.orchestrator.fragments(event)

    def merged_event(self, event) -> np.ndarray:
        """The MergedEvent record behind a MERGED event (window times, fragments), copied."""
        return self.orchestrator.merged_event(event)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Engine:
        """Start consumers and the flush tick, then prepare and start every feed.

        Consumers run in the engine's TaskGroup, feeds in their own, so ``stop`` can stop
        the sources first and then drain what they delivered.
        """
        if self._group is not None:
            raise ConfigError("engine already started")
        self.dispatcher.warm_up()
        self.orchestrator.warm_up()
        for consumer in self.consumers.values():
            consumer.warm_up()
        self._group = TaskGroup("engine")
        for consumer in self.consumers.values():
            self._group.start(consumer.run, name=f"consumer:{consumer.name}")
        self._group.start(self._flush_tick, name="flush-tick")
        try:
            self._start_feeds()
        except BaseException:
            self.stop()
            raise
        self._running = True
        return self

    def _start_feeds(self) -> None:
        self._feed_group = TaskGroup("feeds")
        for feed in self.feeds + self.traders:
            feed.prepare()
            for name, body in feed.tasks():
                self._feed_group.start(body, name=name)

    def _flush_tick(self, cancel: CancelToken) -> None:
        """Release held events whose lateness expired, every ``flush_ms``."""
        period = self.config.dispatcher.flush_ms / 1000.0
        while not cancel.wait(period):
            self.dispatcher.flush()

    @property
    def running(self) -> bool:
        """True from the end of ``start()`` (feeds prepared) to the beginning of ``stop()``."""
        return self._running

    def publish(self, records: np.ndarray) -> int:
        """Bring-your-own feed: push CanonicalEvent records through the venue path."""
        return self.dispatcher.publish(records)

    def stop(self, timeout: float = 5.0) -> ShutdownReport:
        """Drain for up to ``timeout`` s, stop every thread, report unreturned slots."""
        deadline = time.monotonic() + timeout
        self._running = False
        try:
            if self._feed_group is not None:
                self._feed_group.stop(max(0.1, deadline - time.monotonic()))
            self.dispatcher.flush_all()
            if self._group is not None:
                self._wait_drained(deadline)
                self._group.stop(max(0.1, deadline - time.monotonic()))
        finally:  # a failed consumer thread is re-raised, after the pools are shut down
            self.orchestrator.reset()  # restart discards open windows, frees MergedEvents
            report = self.pools.shutdown(max(0.0, deadline - time.monotonic()))
        log.info("engine stopped: %d slot(s) unreturned", report.count)
        return report

    def _wait_drained(self, deadline: float) -> None:
        """Wait until every consumer has delivered what it was given (or the deadline)."""
        while time.monotonic() < deadline:
            if not any(c.has_pending() for c in self.consumers.values()):
                return
            time.sleep(0.005)

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- observability -----------------------------------------------------------------------

    def stats(self) -> dict:
        """A snapshot: dispatcher, ordering per stream, every consumer, pools, DLQ."""
        return {
            "dispatcher": self.dispatcher.stats(),
            "streams": self.dispatcher.order.stream_stats(),
            "consumers": {name: c.stats() for name, c in self.consumers.items()},
            "pools": self.pools.stats(),
            "router": self.router.stats(),
            "dlq": self.dlq.stats(),
            "books": self.book_table.stats(),
            "feeds": {feed.name: feed.stats() for feed in self.feeds},
            "orchestrator": self.orchestrator.stats(),
            "orders": self.orders.stats(),
        }
