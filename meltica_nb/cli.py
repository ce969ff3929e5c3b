"""The ``meltica`` command line.

Every command takes ``--json`` and then prints exactly one JSON object on stdout as its summary;
progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys

import orjson

__all__ = ["main"]


def _emit(summary: dict, as_json: bool, text: str) -> None:
    """Print the summary: one JSON object with --json, readable text otherwise."""
    if as_json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        sys.stdout.write(text + "\n")


def _cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite or a soak (engine beside baselines in the same process run)."""
    from bench.command import run_bench

    return run_bench(args, args.argv)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Run the live engine with example consumers until Ctrl-C or --duration."""
    from .demo import run_demo

    venues = tuple(v.strip() for v in args.venues.split(",") if v.strip())
    summary = run_demo(args.duration, faults=args.faults, seed=args.seed, quiet=args.json,
                       venues=venues)
    text = "\n".join(f"{key}: {value}" for key, value in summary.items())
    _emit(summary, args.json, text)
    return 0 if summary["unreturned_slots"] == 0 else 1


def _cmd_run(args: argparse.Namespace) -> int:
    """Run the engine against the venues of a TOML configuration."""
    from .run_config import engine_from_toml
    from .session import run_session

    engine = engine_from_toml(args.config)
    if args.control_port is None:
        summary = run_session(engine, args.duration, quiet=args.json)
    else:
        from .control_http import ControlHttp

        with ControlHttp(engine.control, lambda: engine.running, args.control_port):
            summary = run_session(engine, args.duration, quiet=args.json)
    text = "\n".join(f"{key}: {value}" for key, value in summary.items())
    _emit(summary, args.json, text)
    return 0 if summary["unreturned_slots"] == 0 else 1


def _cmd_backtest(args: argparse.Namespace) -> int:
    """Replay recordings through the engine and summarize (see meltica_nb.backtest)."""
    from .backtest import run_backtest

    summary, text, status = run_backtest(args)
    _emit(summary, args.json, text)
    return status


def _cmd_record(args: argparse.Namespace) -> int:
    """Record a live session to JSON Lines or canonical files (see meltica_nb.recorder)."""
    from .recorder import run_record

    summary, text = run_record(args)
    _emit(summary, args.json, text)
    return 0 if summary["unreturned_slots"] == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per verb."""
    parser = argparse.ArgumentParser(prog="meltica", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run the benchmarks (report, gates, soak)")
    from bench.command import add_arguments

    add_arguments(bench)
    bench.set_defaults(func=_cmd_bench)
    demo = sub.add_parser("demo", help="the live engine with example consumers")
    demo.add_argument("--duration", type=float, default=None, help="seconds (default: Ctrl-C)")
    demo.add_argument("--faults", default=None,
                      help="simulator fault spec, e.g. drop=0.01,malformed=0.005")
    demo.add_argument("--seed", type=int, default=7, help="simulator seed")
    demo.add_argument("--venues", default="binance",
                      help="comma-separated simulated venues: binance, okx, kraken "
                           "(two or more add a consolidated best bid/offer consumer)")
    demo.add_argument("--json", action="store_true", help="print one JSON summary object")
    demo.set_defaults(func=_cmd_demo)
    run = sub.add_parser("run", help="the engine against real venues (a TOML config)")
    run.add_argument("--config", required=True, help="meltica.toml")
    run.add_argument("--duration", type=float, default=None, help="seconds (default: Ctrl-C)")
    run.add_argument("--json", action="store_true", help="print one JSON summary object")
    run.add_argument("--control-port", type=int, default=None,
                     help="serve the control API on 127.0.0.1:PORT (0 = any free port)")
    run.set_defaults(func=_cmd_run)
    backtest = sub.add_parser("backtest", help="replay recordings through the engine")
    from .backtest import add_arguments as backtest_arguments

    backtest_arguments(backtest)
    backtest.set_defaults(func=_cmd_backtest)
    record = sub.add_parser("record", help="record a live session (JSON Lines or canonical)")
    from .recorder import add_arguments as record_arguments

    record_arguments(record)
    record.set_defaults(func=_cmd_record)
    sub.add_parser("sim", add_help=False,
                   help="a local Binance-compatible exchange (options: meltica sim --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meltica`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:  # the simulator parses its own options
        from .sim.server import main as sim_main

        return sim_main(argv[1:])
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
