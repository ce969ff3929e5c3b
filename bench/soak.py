"""Soak: the engine on simulated venues for a long time, sampled, with a report of drift.

The seeds' promise is about long runs: memory flat after warm-up, the event pool far from
full, garbage-collector pauses short, latency steady. A soak runs, in the seeds' shape, 50
instruments across 3 simulated venues, one simulator child process each speaking its venue's
protocol: Binance (combined streams, REST snapshots, diff-depth books), OKX (v5 ``books`` with
checksums, ``trades``, ``bbo-tbt``) and Kraken (v2 ``book`` with checksums, ``trade``,
``ticker``), each venue read by its own engine feed, at about 1000 events/s into one engine
with 10 consumers (``--profile heavy``: 5000 events/s, 25 consumers). A venue is one of
:data:`VENUES` (``binance-usdm`` is Binance's USD-M futures protocol). Every ``sample_s``
it records the resident memory (``/proc/self/statm``), the pool's slots in use and its high
water, the garbage collector's pauses (``gc.callbacks``), frames and deliveries per second
and the consumers' latency percentiles over the window (frame read -> handler entry); at the
end, per venue, the frames and events read, book repairs and checksum failures.

The drift report compares the first and the last window after warm-up and fits a line
through every sample after warm-up (slope per hour) for memory, latency and pool use.

Run: ``meltica bench --soak 30m [--profile heavy] [--venues binance,okx,kraken] [--out DIR]``;
the suite's ``sustained`` benchmark is a short soak (15 s quick, 60 s full).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson

from bench.bench_live import SimProcess
from bench.gc_monitor import GcMonitor
from bench.measure import HIGHER, Measure
from meltica_nb.demo import sim_feed
from meltica_nb.engine import Engine
from meltica_nb.errors import ConfigError
from meltica_nb.session import merged_latency

__all__ = ["PROFILES", "VENUES", "Profile", "parse_duration", "run_soak", "write_soak"]

#: Soak venues: the simulator's protocol and market for each name.
VENUES = {"binance": ("binance", "spot"), "binance-usdm": ("binance", "usdm"),
          "okx": ("okx", "spot"), "kraken": ("kraken", "spot")}
#: Frames a generated symbol sends per unit of ``updates_per_s`` with the soak's channels
#: (measured per protocol: Binance CHANNELS, OKX books+trades+bbo-tbt, Kraken book+trade+ticker).
FRAMES_PER_UPDATE = {"binance": 0.436, "okx": 0.357, "kraken": 0.503}
#: The shortest diff-depth window gives each symbol this many frames/s at least.
DEPTH_FLOOR_PER_S = 10.0
_PAGE = os.sysconf("SC_PAGE_SIZE")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


@dataclass(frozen=True)
class Profile:
    """The shape of a soak: events/s in all, consumers, instruments, venues (markets)."""

    rate: int = 1000
    consumers: int = 10
    instruments: int = 50
    venues: tuple[str, ...] = ("binance", "okx", "kraken")

    def __post_init__(self) -> None:
        unknown = [v for v in self.venues if v not in VENUES]
        if unknown or not self.venues:
            raise ConfigError(f"soak venues must be some of {sorted(VENUES)}, got "
                              f"{list(self.venues)}")


PROFILES = {"standard": Profile(), "heavy": Profile(rate=5000, consumers=25)}


def parse_duration(text: str) -> float:
    """``"90s"``, ``"30m"``, ``"2h"`` or plain seconds -> seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"a duration looks like 90s, 30m or 2h, got {text!r}")
    value, unit = float(match[1]), match[2] or "s"
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def rss_mb() -> float:
    """This process's resident memory in MiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE / 2**20


def _symbols(profile: Profile) -> list[list[list]]:
    """Per venue, the Instrument field lists of its share of the instruments."""
    venues = len(profile.venues)
    out: list[list[list]] = [[] for _ in range(venues)]
    for i in range(profile.instruments):
        base = "S" + "".join(chr(65 + (i // 26 ** k) % 26) for k in (1, 0))
        out[i % venues].append([f"{base}-USDT", f"{base}USDT", base, "USDT", "0.01", "0.001",
                                str(100 + i)])
    return out


def _sim_spec(venue: str, instruments: list[list], profile: Profile, seed: int) -> dict:
    protocol, market = VENUES[venue]
    per_symbol = profile.rate / profile.instruments
    updates = max(1.0, (per_symbol - DEPTH_FLOOR_PER_S) / FRAMES_PER_UPDATE[protocol])
    return {"kind": "generated", "venue": protocol, "market": market, "levels": 50,
            "updates_per_s": updates, "time_scale": 1.0, "seed": seed,
            "instruments": instruments}


class _Counter:
    """A batch consumer that counts what it gets."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, view) -> None:
        self.count += view.shape[0]


class Sampler:
    """Takes one sample per window: memory, pool, GC, rates and latency since the last."""

    def __init__(self, engine: Engine, counters: list[_Counter], gcm: GcMonitor) -> None:
        self.engine, self.counters, self.gcm = engine, counters, gcm
        self.start = time.monotonic()
        self.last = (self.start, 0, 0, 0, merged_latency(engine).counts.copy())

    def _frames(self) -> int:
        return sum(feed.stats().frames for feed in self.engine.feeds)

    def sample(self) -> dict:
        now, frames = time.monotonic(), self._frames()
        delivered, pauses = sum(c.count for c in self.counters), len(self.gcm.pauses_ns)
        counts = merged_latency(self.engine).counts.copy()
        t0, f0, d0, p0, c0 = self.last
        self.last = (now, frames, delivered, pauses, counts)
        window = np.asarray(self.gcm.pauses_ns[p0:pauses], dtype=np.int64) / 1e6
        lat = type(merged_latency(self.engine))(counts - c0).snapshot()
        pool = self.engine.dispatcher.pool
        span = max(now - t0, 1e-9)
        return {"t_s": now - self.start, "rss_mb": rss_mb(),
                "pool_in_use_pct": 100 * pool.in_use / pool.capacity,
                "pool_high_water_pct": 100 * pool.high_water / pool.capacity,
                "gc_pauses": int(window.size),
                "gc_longest_ms": float(window.max()) if window.size else 0.0,
                "frames_per_s": (frames - f0) / span, "deliveries_per_s": (delivered - d0) / span,
                "latency_p50_us": lat["p50"], "latency_p99_us": lat["p99"],
                "latency_max_us": lat["max"]}


def _engine(profile: Profile, sims: list[SimProcess], symbols: list[list[list]]
            ) -> tuple[Engine, list[_Counter]]:
    engine = Engine()
    counters = [_Counter() for _ in range(profile.consumers)]
    for c, counter in enumerate(counters):
        engine.add_consumer(f"c{c}", counter, mode="batch")
    for venue, sim, syms in zip(profile.venues, sims, symbols, strict=True):
        protocol, market = VENUES[venue]
        engine.add_feed(sim_feed(engine, protocol, sim.ws_url, sim.rest_url,
                                 tuple(s[0] for s in syms), market=market))
    return engine, counters


def _venue_totals(profile: Profile, engine: Engine) -> dict[str, dict[str, int]]:
    """Per venue: frames and events read, book repairs (resyncs or resubscribes), checksum
    failures (OKX and Kraken books); a venue named twice is summed."""
    out: dict[str, dict[str, int]] = {}
    for venue, feed in zip(profile.venues, engine.feeds, strict=True):
        st = feed.stats()
        row = {"frames": st.frames, "events": st.events,
               "book_repairs": getattr(st, "resyncs", 0) + getattr(st, "resubscribes", 0),
               "checksum_fail": getattr(st, "checksum_fail", 0)}
        total = out.setdefault(venue, dict.fromkeys(row, 0))
        for key, value in row.items():
            total[key] += value
    return out


def run_soak(duration_s: float, profile: Profile = PROFILES["standard"],
             sample_s: float | None = None) -> dict:
    """Run a soak of ``duration_s`` seconds; the samples, the drift and the totals."""
    sample_s = sample_s or min(10.0, max(0.5, duration_s / 60))
    symbols = _symbols(profile)
    sims = [SimProcess(_sim_spec(v, s, profile, seed)) for seed, (v, s) in enumerate(
        zip(profile.venues, symbols, strict=True))]
    try:
        engine, counters = _engine(profile, sims, symbols)
        samples = []
        with GcMonitor() as gcm:
            engine.start()
            try:
                sampler = Sampler(engine, counters, gcm)
                while (elapsed := time.monotonic() - sampler.start) < duration_s:
                    time.sleep(min(sample_s, max(0.05, duration_s - elapsed)))
                    samples.append(sampler.sample())
            finally:
                report = engine.stop(10.0)
        stats, venues = engine.stats(), _venue_totals(profile, engine)
    finally:
        for sim in sims:
            sim.stop()
    return {"profile": asdict(profile), "duration_s": duration_s, "sample_s": sample_s,
            "samples": samples, "drift": drift(samples), "gc": asdict(gcm.stats()),
            "unreturned_slots": report.count, "venues": venues,
            "dropped": sum(c.dropped for c in stats["consumers"].values()),
            "coalesced": sum(c.coalesced for c in stats["consumers"].values())}


def _slope_per_hour(t: np.ndarray, y: np.ndarray) -> float:
    if t.size < 2 or np.ptp(t) == 0:
        return 0.0
    return float(np.polyfit(t, y, 1)[0] * 3600)


def drift(samples: list[dict], keys=("rss_mb", "latency_p99_us", "pool_in_use_pct",
                                     "frames_per_s")) -> dict:
    """First vs last window after warm-up (the first fifth), and the slope per hour."""
    steady = samples[max(1, len(samples) // 5):] if len(samples) > 2 else samples
    if not steady:
        return {}
    w = max(1, len(steady) // 10)
    t = np.asarray([s["t_s"] for s in steady])
    out = {"warm_up_samples": len(samples) - len(steady), "window_samples": w}
    for key in keys:
        y = np.asarray([s[key] for s in steady], dtype=float)
        out[key] = {"first": float(y[:w].mean()), "last": float(y[-w:].mean()),
                    "change": float(y[-w:].mean() - y[:w].mean()),
                    "slope_per_hour": _slope_per_hour(t, y)}
    rss = out["rss_mb"]
    out["rss_flat"] = bool(rss["change"] <= max(8.0, 0.05 * rss["first"]))
    out["gc_pauses"] = sum(s["gc_pauses"] for s in steady)
    out["gc_longest_ms"] = max(s["gc_longest_ms"] for s in steady)
    return out


def write_soak(result: dict, out: Path, command: str) -> list[Path]:
    """soak.json, soak.md and soak.png (with matplotlib) in ``out``."""
    from bench.machine import describe
    from bench.plots import plot_series

    out.mkdir(parents=True, exist_ok=True)
    result = {**result, "command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                  time.gmtime()),
              "machine": describe()}
    paths = [out / "soak.json", out / "soak.md"]
    paths[0].write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    paths[1].write_text(soak_markdown(result))
    return paths + plot_series(result["samples"], ("rss_mb", "pool_in_use_pct",
                                                   "gc_longest_ms", "latency_p99_us",
                                                   "frames_per_s"),
                               out / "soak.png", f"soak {result['duration_s']:.0f} s")


def soak_markdown(result: dict) -> str:
    p, d, g = result["profile"], result["drift"], result["gc"]
    lines = [f"# Soak: {result['duration_s']:.0f} s", "",
             f"- command: `{result['command']}`; date {result['date']}",
             f"- machine: {result['machine']['cpu']}, {result['machine']['nproc']} cores "
             f"(shared with other jobs: figures are noisy)",
             f"- shape: {p['instruments']} instruments across {len(p['venues'])} simulated "
             f"venues ({', '.join(p['venues'])}), about {p['rate']} events/s, "
             f"{p['consumers']} consumers; a sample every {result['sample_s']:g} s",
             f"- GC, whole run (start-up included): {g['pauses']} collections, longest pause "
             f"{g['longest_ms']:.2f} ms, p99 {g['p99_ms']:.2f} ms (seed: p99 < 10 ms); after "
             f"warm-up: {d.get('gc_pauses', 0)} collections, longest "
             f"{d.get('gc_longest_ms', 0.0):.2f} ms",
             "- per venue: " + "; ".join(
                 f"{v} {row['frames']} frames, {row['events']} events, {row['book_repairs']} "
                 f"book repairs, {row['checksum_fail']} checksum failures"
                 for v, row in result.get("venues", {}).items()),
             f"- unreturned slots at stop {result['unreturned_slots']}, dropped "
             f"{result['dropped']}, coalesced {result['coalesced']}",
             f"- memory flat after warm-up: {'yes' if d.get('rss_flat') else 'NO'} "
             f"(last window within max(8 MiB, 5 %) of the first)", "",
             "| figure | first window | last window | change | slope per hour |",
             "|---|---:|---:|---:|---:|"]
    for key in ("rss_mb", "latency_p99_us", "pool_in_use_pct", "frames_per_s"):
        if key in d:
            v = d[key]
            lines.append(f"| {key} | {v['first']:.2f} | {v['last']:.2f} | {v['change']:+.2f} "
                         f"| {v['slope_per_hour']:+.2f} |")
    return "\n".join(lines) + "\n"


def measures(quick: bool) -> list[Measure]:
    """The suite's entry (``sustained``): a short soak's figures, engine only."""
    result = run_soak(15.0 if quick else 60.0, sample_s=1.0)
    s, d, g = result["samples"], result["drift"], result["gc"]
    if result["unreturned_slots"]:
        raise AssertionError(f"sustained: {result['unreturned_slots']} slots unreturned")
    params = {**result["profile"], "duration_s": result["duration_s"]}
    one = lambda name, unit, value, better="lower": Measure(  # noqa: E731
        "sustained", name, "engine", unit, (value,), better, params)
    return [one("events/s reached", "frames/s", float(np.median([x["frames_per_s"] for x in s])),
                HIGHER),
            one("pool peak use", "% of slots", max(x["pool_high_water_pct"] for x in s)),
            one("gc longest pause after warm-up", "ms", d["gc_longest_ms"]),
            one("gc collections after warm-up", "collections", float(d["gc_pauses"])),
            one("gc p99 pause, whole run", "ms", g["p99_ms"]),
            one("rss change after warm-up", "MiB", d["rss_mb"]["change"]),
            one("latency p99, last window", "us", d["latency_p99_us"]["last"])]
