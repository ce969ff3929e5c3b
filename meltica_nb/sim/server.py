"""The exchange simulator: a Binance-compatible websocket + REST exchange on loopback.

``ExchangeSimulator`` runs one asyncio event loop on one TaskGroup thread. The loop owns every
piece of state (market, hub, REST counters); other threads reach it through :meth:`_call`, which
runs a function on the loop and waits for its result. It binds 127.0.0.1 only::

    with ExchangeSimulator(config=MarketConfig.fast(), faults="drop=0.01", seed=7) as sim:
        ws = websocket.create_connection(sim.ws_url + "/ws/btcusdt@depth@100ms")
        snapshot = urlopen(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        ...
        sim.book("BTCUSDT")    # the authoritative top levels and lastUpdateId

A spot simulator also trades (:mod:`meltica_nb.sim.binance_orders`): signed ``/api/v3/order``
requests with ``sim.credentials`` match against its market and report on the user data stream.

``main(argv)`` is the ``meltica sim`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import orjson
from websockets.asyncio.server import Server, serve

from meltica_nb.clock import Clock, WallClock
from meltica_nb.concurrency import CancelToken, TaskGroup
from meltica_nb.errors import ConfigError
from meltica_nb.sim.auth import Credentials
from meltica_nb.sim.binance import BinanceLimits, RestApi, exchange_info, valid_stream
from meltica_nb.sim.binance_orders import SpotTrading
from meltica_nb.sim.faults import FaultInjector, FaultSpec
from meltica_nb.sim.httpd import HttpServer
from meltica_nb.sim.kraken import build_kraken
from meltica_nb.sim.listen_keys import ListenKeys
from meltica_nb.sim.market import GeneratedMarket, MarketConfig
from meltica_nb.sim.okx import OkxHub, OkxMarket, OkxRestApi
from meltica_nb.sim.recording import RecordingFeed
from meltica_nb.sim.ws import StreamHub

__all__ = ["ExchangeSimulator", "main"]

_log = logging.getLogger("meltica_nb.sim")
_HOST = "127.0.0.1"
T = TypeVar("T")


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_HOST, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ExchangeSimulator:
    """A local Binance (spot or USD-M) over real sockets, fed by a generated market or a file.

    ``market``: "spot" (default) or "usdm" (for a recording: detected unless given).
    ``config``: shape and pace of the generated market; ``recording`` + ``speed``: play a file
    instead; ``feed``: any prepared feed. ``faults``: a spec string (see
    :mod:`meltica_nb.sim.faults`) drawn deterministically from ``seed``, which also seeds the
    market. ``port`` / ``rest_port``: 0 picks free ports. ``limits``: protocol limits and
    timings (ping interval, stream and message limits, REST weight). ``venue``: "binance"
    (default), "okx" (the OKX v5 public protocol over the generated spot market, see
    :mod:`meltica_nb.sim.okx`) or "kraken" (v1 and v2, :mod:`meltica_nb.sim.kraken`).
    ``credentials``: the API key and secret the Binance spot order endpoints accept (default:
    drawn from ``seed``); ``balances``: the spot account's starting balances by asset (others
    start at 1,000,000).
    """

    def __init__(self, market: str | None = None, *, config: MarketConfig | None = None,
                 recording: str | Path | None = None, speed: float = 1.0,
                 feed: GeneratedMarket | RecordingFeed | None = None,
                 faults: str | FaultSpec | None = None, seed: int = 0, host: str = _HOST,
                 port: int = 0, rest_port: int = 0, limits: BinanceLimits | None = None,
                 clock: Clock | None = None, venue: str = "binance",
                 credentials: Credentials | None = None,
                 balances: dict[str, str] | None = None) -> None:
        if host not in (_HOST, "localhost"):
            raise ConfigError(f"the simulator binds {_HOST} only, not {host!r}")
        if venue == "okx" and (recording is not None or feed is not None):
            raise ConfigError("the OKX protocol plays the generated market only")
        if feed is None and recording is not None:
            feed = RecordingFeed(recording, speed=speed, market=market)
        self.feed = feed or GeneratedMarket(config, market=market or "spot", seed=seed)
        self.market = self.feed.market
        self.faults = FaultInjector(faults, seed)
        self.limits = limits or BinanceLimits()
        self.clock = clock or WallClock()
        self._ports = (int(port), int(rest_port))
        self.ws_port: int | None = None
        self.rest_port: int | None = None
        self._tg: TaskGroup | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._loop_thread = 0
        kinds, extra = self.feed.stream_kinds, self.feed.extra_streams
        self.credentials = credentials or Credentials.generate(seed)
        self.listen_keys = ListenKeys(seed)
        keys = self.listen_keys
        self.hub = StreamHub(self.limits, self.faults,
                             lambda s: valid_stream(s, kinds, extra) or keys.active(s),
                             keys.active)
        self.rest = RestApi(self.feed, self.limits, self.faults, self._now_s,
                            getattr(self.feed, "exchange_info_raw", None))
        if venue == "okx":
            self._speak_okx(config, seed)
        elif venue == "kraken":  # Kraken's protocol over the same loop, market and faults
            if recording is not None or feed is not None:
                raise ConfigError("the Kraken simulator runs a generated market only")
            self.feed, self.hub, self.rest = build_kraken(config, self.faults, seed, self._now_s)
        elif venue != "binance":
            raise ConfigError(f"the simulator speaks binance, okx or kraken, not {venue!r}")
        spot = venue == "binance" and self.market == "spot"
        self.trading = self._trading(seed, balances) if spot else None

    def _speak_okx(self, config: MarketConfig | None, seed: int) -> None:
        """OKX v5 public instead of Binance: ``/ws/v5/public`` and ``/api/v5/public/...``."""
        market = OkxMarket(config, seed)
        self.feed = market
        self.limits = replace(self.limits, ping_interval=None)  # OKX clients send "ping"
        self.hub = OkxHub(self.limits, self.faults, market)
        self.rest = OkxRestApi(market, self.faults)

    def _trading(self, seed: int, balances: dict[str, str] | None) -> SpotTrading:
        """The spot account, its order endpoints mounted on the REST API."""
        try:
            start = {k: Decimal(str(v)) for k, v in (balances or {}).items()}
        except ArithmeticError:
            raise ConfigError(f"balances must be decimal numbers, got {balances!r}") from None
        raw = getattr(self.feed, "exchange_info_raw", None)
        info = orjson.loads(raw) if raw else exchange_info(self.feed.instruments, "spot", 0, 0)
        trading = SpotTrading(
            info["symbols"], self.credentials, self.listen_keys, self.hub, self.feed.book,
            balances=start, seed=seed,
            trade_kind="trade" if "trade" in self.feed.stream_kinds else "aggTrade")
        trading.mount(self.rest)
        return trading

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> ExchangeSimulator:
        """Start serving; returns once both ports accept connections."""
        if self._tg is not None:
            raise ConfigError("the simulator is already running")
        self._ready.clear()
        self._tg = TaskGroup("sim")
        self._tg.start(self._run, name="loop")
        if not self._ready.wait(timeout) or self._loop is None:
            tg, self._tg = self._tg, None
            tg.stop(timeout)  # re-raises the start-up error of the loop thread
            raise TimeoutError(f"the simulator did not start within {timeout} s")
        _log.info("exchange simulator on %s and %s", self.ws_url, self.rest_url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection and join the loop thread; idempotent."""
        tg, self._tg = self._tg, None
        if tg is None:
            return
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        tg.stop(timeout)

    def __enter__(self) -> ExchangeSimulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``; append ``/ws/<stream>`` or ``/stream?streams=a/b``."""
        return f"ws://{_HOST}:{self.ws_port}"

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT``; append ``/api/v3/...`` or ``/fapi/v1/...``."""
        return f"http://{_HOST}:{self.rest_port}"

    # -- views (thread-safe) ---------------------------------------------------------------

    def book(self, symbol: str, depth: int = 20) -> dict | None:
        """The simulator's own book: top ``depth`` levels per side and ``lastUpdateId``."""
        return self._call(lambda: self.feed.book(symbol, depth))

    def pause(self) -> None:
        """Freeze the market (open depth windows still close, so diffs catch up with book())."""
        self._call(self.feed.pause)

    def resume(self) -> None:
        self._call(self.feed.resume)

    def drop_user_streams(self) -> int:
        """Fault hook: drop every user data stream connection (the listen key stays valid)."""
        return self._call(lambda: sum(self.hub.drop(key, "user_stream_fault")
                                      for key in self.listen_keys.active_keys()))

    def stats(self) -> dict:
        """Frames sent per stream, faults per kind, connections, subscribes, REST counters."""
        return self._call(self._stats)

    def _stats(self) -> dict:
        out: dict[str, Any] = {"market": self.market, "running": self.running}
        if self.running:
            out.update(ws_url=self.ws_url, rest_url=self.rest_url)
        out.update(self.hub.stats())
        out["faults"] = dict(self.faults.counts)
        out["rest"] = self.rest.stats()
        out["feed"] = self.feed.stats()
        if self.trading is not None:
            out["trading"] = self.trading.stats()
        return out

    def _call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the loop thread (or here when the loop is not running)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            return fn()
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: B036 - handed to the calling thread
                future.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop closed meanwhile
            return fn()
        return future.result(timeout)

    def _now_s(self) -> float:
        return self.clock.now_ns() / 1e9

    # -- the loop thread -------------------------------------------------------------------

    def _run(self, token: CancelToken) -> None:
        self._loop_thread = threading.get_ident()
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(token))
        finally:
            self._loop = None
            self._ready.set()
            _close_loop(loop)

    async def _main(self, token: CancelToken) -> None:
        ws_sock, rest_sock = _listen(self._ports[0]), None
        try:
            rest_sock = _listen(self._ports[1])
            ws_server = await serve(self.hub.handler, sock=ws_sock, compression=None,
                                    process_request=self.hub.process_request, ping_interval=None,
                                    close_timeout=0.5, max_size=2**20)
        except BaseException:
            ws_sock.close()
            if rest_sock is not None:
                rest_sock.close()
            raise
        http = HttpServer(self.rest)
        await http.start(rest_sock)
        self.ws_port, self.rest_port = ws_sock.getsockname()[1], rest_sock.getsockname()[1]
        self._stop_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        try:
            await self._serve(token)
        finally:
            self._loop = None
            await self._shutdown(ws_server, http)

    async def _serve(self, token: CancelToken) -> None:
        """Drive the feed until stop() or the group's token; a driver error propagates."""
        assert self._stop_event is not None
        driver = asyncio.create_task(self._drive())
        stopper = asyncio.create_task(self._stop_event.wait())
        try:
            while not token.cancelled and not stopper.done():
                done, _ = await asyncio.wait({driver, stopper}, timeout=0.05,
                                             return_when=asyncio.FIRST_COMPLETED)
                if driver in done:
                    driver.result()
        except Exception:
            _log.exception("the simulator's market driver failed")
            raise
        finally:
            for task in (driver, stopper):
                task.cancel()
            await asyncio.gather(driver, stopper, return_exceptions=True)

    async def _drive(self) -> None:
        feed, hub = self.feed, self.hub
        blocking = isinstance(feed, RecordingFeed) and feed.speed == 0
        while True:
            if not feed.started:
                if feed.needs_subscriber and not hub.has_subscribers:
                    await asyncio.sleep(0.005)
                    continue
                feed.start(self.clock.now_ns())
            events, delay = feed.poll(self.clock.now_ns(), hub.wanted)
            for stream, payload in events:
                if blocking:
                    await hub.publish_wait(stream, payload)
                else:
                    hub.publish(stream, payload)
            if self.trading is not None:
                self.trading.on_market(events, self.clock.now_ns() // 1_000_000)
            await asyncio.sleep(delay)

    async def _shutdown(self, ws_server: Server, http: HttpServer) -> None:
        ws_server.close()
        try:
            await asyncio.wait_for(ws_server.wait_closed(), 2.0)
        except TimeoutError:
            for session in list(self.hub.sessions):
                session.kill("shutdown")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws_server.wait_closed(), 1.0)
        await http.close()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left, close async generators and the default executor, close the loop."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


# -- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The arguments of ``meltica sim``."""
    parser = argparse.ArgumentParser(
        prog="meltica sim", description="A Binance-compatible exchange simulator on 127.0.0.1.")
    parser.add_argument("--venue", choices=["binance", "okx", "kraken"], default="binance",
                        help="protocol: binance (default), okx (v5 public, spot) or kraken "
                             "(v1 and v2)")
    parser.add_argument("--market", choices=["spot", "usdm"], default=None,
                        help="spot (default) or usdm; a recording's is detected")
    parser.add_argument("--port", type=int, default=0, help="websocket port (0: any free port)")
    parser.add_argument("--rest-port", type=int, default=None,
                        help="REST port (default: --port + 1, or any free port)")
    parser.add_argument("--faults", default=None, help="e.g. drop=0.01,dup=0.01,rest429=0.1")
    parser.add_argument("--recording", default=None, help="a normalized .jsonl[.gz] recording")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (0: max)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seeds the market, faults and API key (default: market seed 0, "
                             "random API key)")
    parser.add_argument("--fast", action="store_true", help="a market ten times faster")
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: Ctrl-C)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                        help="a starting balance of the spot account (default 1000000 each)")
    return parser


def _from_args(args: argparse.Namespace) -> ExchangeSimulator:
    rest_port = args.rest_port if args.rest_port is not None else (
        args.port + 1 if args.port else 0)
    return ExchangeSimulator(
        args.market, config=MarketConfig.fast() if args.fast else None,
        recording=args.recording, speed=args.speed, faults=args.faults, seed=args.seed or 0,
        port=args.port, rest_port=rest_port,
        limits=BinanceLimits(ping_interval=args.ping_interval or None), venue=args.venue,
        credentials=Credentials.generate(args.seed),
        balances=dict(item.partition("=")[::2] for item in args.balance))


def _install_stop(stop: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set ``stop``; returns a function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def main(argv: list[str] | None = None) -> int:
    """``meltica sim``: serve until Ctrl-C (or ``--duration``); exit 0."""
    args = build_parser().parse_args(argv)
    try:
        sim = _from_args(args)
    except (ConfigError, OSError) as exc:
        sys.stderr.write(f"meltica sim: {exc}\n")
        return 2
    stop = threading.Event()
    restore = _install_stop(stop)
    try:
        with sim:
            summary = {"ws_url": sim.ws_url, "rest_url": sim.rest_url, "market": sim.market,
                       "api_key": sim.credentials.api_key,
                       "api_secret": sim.credentials.api_secret}
            if args.json:
                sys.stdout.write(orjson.dumps(summary).decode() + "\n")
            else:
                sys.stdout.write(f"websocket {sim.ws_url}\nREST      {sim.rest_url}\n"
                                 f"API key   {sim.credentials.api_key}\n"
                                 f"secret    {sim.credentials.api_secret}\n"
                                 "Ctrl-C to stop\n")
            sys.stdout.flush()
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while not stop.wait(0.1):
                if deadline is not None and time.monotonic() >= deadline:
                    break
            final = sim.stats()
    finally:
        restore()
    sys.stderr.write(orjson.dumps({k: final[k] for k in ("connections", "faults", "rest")})
                     .decode() + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
