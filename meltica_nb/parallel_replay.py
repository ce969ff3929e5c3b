"""Parallel replay: independent units of work in worker processes, results combined.

A :class:`ReplayJob` names everything a replay needs as plain data: recording paths, the
:class:`~meltica_nb.replay.ReplayConfig` options and consumers as ``"module:function"``
strings. :func:`run_job` is a pure function of the job (the replay is deterministic), so jobs
can run in any process, in any order, or on another machine; this module runs them in a
``ProcessPoolExecutor`` (spawned workers: no state leaks from the parent) and
:func:`combine` folds the per-job summaries into one: counters summed, the digest a BLAKE2b
over the job digests in job order, instruments from the last job that had them (jobs are
given in time order, so that is the final book). A unit is typically one day or one venue:
books do not carry over between jobs.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from .errors import ConfigError
from .replay import ReplayConsumer, replay
from .run_config import load_target

__all__ = ["ReplayJob", "combine", "replay_parallel", "run_job"]

_SUMMED = ("lines", "frames", "snapshots", "parse_errors", "unreturned_slots")


@dataclass(frozen=True)
class ReplayJob:
    """One unit of work, plain data only (picklable, reproducible anywhere).

    Parameters
    ----------
    sources : the recordings replayed in sequence.
    options : :class:`~meltica_nb.replay.ReplayConfig` fields.
    consumers : ``"module:function"`` import paths of the consumers.
    """

    sources: tuple[str, ...]
    options: dict = field(default_factory=dict)
    consumers: tuple[str, ...] = ()


def run_job(job: ReplayJob) -> dict:
    """Replay one job; its summary (``ReplayResult.to_dict``), picklable."""
    consumers = [ReplayConsumer(load_target(spec), name=spec) for spec in job.consumers]
    return replay(list(job.sources), consumers, **job.options).to_dict()


def _add(total: dict, part: dict) -> None:
    for name, value in part.items():
        total[name] = total.get(name, 0) + value


def combine(summaries: Sequence[dict]) -> dict:
    """One summary of several jobs (see the module docstring); ``jobs`` keeps each one."""
    if not summaries:
        raise ConfigError("nothing to combine: no job ran")
    out: dict = {name: sum(s[name] for s in summaries) for name in _SUMMED}
    events: dict = {}
    errors: dict = {}
    instruments: dict = {}
    for s in summaries:
        _add(events, s["events"])
        _add(errors, s["errors_by_kind"])
        instruments.update(s["instruments"])
    elapsed = max(s["elapsed_s"] for s in summaries)  # wall time of the slowest worker
    digest = hashlib.blake2b(digest_size=16)
    for s in summaries:
        digest.update(bytes.fromhex(s["digest"]))
    out.update(
        sources=[p for s in summaries for p in s["sources"]], events=events,
        errors_by_kind=errors, errors=[e for s in summaries for e in s["errors"]][:100],
        elapsed_s=elapsed, frames_per_s=round(out["frames"] / elapsed, 1) if elapsed else 0.0,
        events_per_s=round(sum(events.values()) / elapsed, 1) if elapsed else 0.0,
        digest=digest.hexdigest(), instruments=instruments, consumers={},
        jobs=list(summaries))
    return out


def replay_parallel(jobs: Sequence[ReplayJob], workers: int | None = None) -> dict:
    """Run ``jobs`` in up to ``workers`` processes; the combined summary (job order kept)."""
    if not jobs:
        raise ConfigError("replay_parallel needs at least one job")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        summaries = list(pool.map(run_job, jobs))
    return combine(summaries)
