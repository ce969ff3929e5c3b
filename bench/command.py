"""``meltica bench``: run the suite (or a soak), write the report, check the gates.

``meltica bench [--quick] [--json] [--out DIR] [--only NAME...] [--gates]`` runs every
registered benchmark (:mod:`bench.suite`) and writes report.json, report.md and PNG plots to
DIR (default ``bench/results/<date>-<quick|full>/`` under the current directory);
``--gates`` checks the CI gates against the run and fails when one does not hold.
``meltica bench --soak 30m [--profile heavy] [--venues binance,okx,kraken]`` runs a soak instead
and writes soak.json, soak.md and soak.png.

cryptofeed is a baseline where it does the same job, measured in the benchmark environment
(:mod:`bench.cryptofeed_env`): ``--cryptofeed-python PATH`` (or ``$MELTICA_CRYPTOFEED_PYTHON``)
names its interpreter, ``--cryptofeed-env DIR`` makes one (a venv with the pinned cryptofeed);
without either its rows are reported as not installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import orjson

from bench import cryptofeed_env, machine
from bench.gates import check
from bench.report import LOADED_NOTE, Report
from bench.soak import PROFILES, parse_duration, run_soak, write_soak
from bench.suite import names, run_suite

__all__ = ["add_arguments", "run_bench"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``meltica bench``."""
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller inputs (CI)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", type=Path, default=None, help="report directory")
    parser.add_argument("--only", nargs="+", default=None, choices=names(), metavar="NAME",
                        help=f"run these benchmarks only ({', '.join(names())})")
    parser.add_argument("--gates", action="store_true", help="check the CI gates; exit 1 "
                        "when one fails")
    parser.add_argument("--soak", default=None, metavar="DURATION",
                        help="run a soak instead, e.g. 90s, 30m, 2h")
    parser.add_argument("--profile", default="standard", choices=sorted(PROFILES),
                        help="soak shape: standard (1000 ev/s, 10 consumers) or heavy")
    parser.add_argument("--cryptofeed-python", default=None, metavar="PATH",
                        help="the benchmark environment's interpreter with cryptofeed (default "
                        f"${cryptofeed_env.ENV_VAR}; none: cryptofeed rows not installed)")
    parser.add_argument("--cryptofeed-env", type=Path, default=None, metavar="DIR",
                        help=f"make (or reuse) a venv in DIR with {cryptofeed_env.PIN} and "
                        "measure cryptofeed with it")
    parser.add_argument("--venues", default=None,
                        help="soak venues: binance, binance-usdm, okx, kraken (default all three)")


def _command(argv: list[str]) -> str:
    """The command line as typed (``argv`` starts at the sub-command)."""
    return " ".join(["meltica", *argv])


def _default_out(kind: str) -> Path:
    return Path("bench") / "results" / f"{time.strftime('%Y-%m-%d', time.gmtime())}-{kind}"


def _soak(args: argparse.Namespace, command: str) -> int:
    profile = PROFILES[args.profile]
    if args.venues:
        from dataclasses import replace

        profile = replace(profile, venues=tuple(v.strip() for v in args.venues.split(",")))
    result = run_soak(parse_duration(args.soak), profile)
    paths = write_soak(result, args.out or _default_out("soak"), command)
    text = paths[1].read_text()
    sys.stdout.write(paths[0].read_text() + "\n" if args.json else text)
    return 0 if result["unreturned_slots"] == 0 else 1


def _cryptofeed(args: argparse.Namespace) -> cryptofeed_env.CryptofeedEnv:
    """The benchmark environment asked for, exported to the benchmarks through the env var."""
    if args.cryptofeed_env is not None:
        env = cryptofeed_env.create(args.cryptofeed_env)
    else:
        env = cryptofeed_env.find(args.cryptofeed_python)
    if env.available:
        os.environ[cryptofeed_env.ENV_VAR] = env.python
    return env


def run_bench(args: argparse.Namespace, argv: list[str]) -> int:
    """Run what ``args`` ask for; 1 when a checked gate failed (or a soak leaked slots)."""
    command = _command(argv)
    if args.soak is not None:
        return _soak(args, command)
    start = time.gmtime()
    info = machine.describe()
    cryptofeed = _cryptofeed(args)
    results = run_suite(args.quick, args.only)
    gates = check(results) if args.gates else []
    report = Report(command, time.strftime("%Y-%m-%d %H:%M UTC", start), args.quick, info,
                    tuple(results), tuple(g.to_dict() for g in gates),
                    (LOADED_NOTE, cryptofeed.describe()))
    paths = report.write(args.out or _default_out("quick" if args.quick else "full"))
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        sys.stdout.write(report.to_markdown())
        for gate in gates:
            print(gate.message)
        print("report: " + ", ".join(str(p) for p in paths))
    return 0 if all(g.passed for g in gates) else 1
