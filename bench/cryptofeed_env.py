"""The benchmark environment's cryptofeed: where it is, how to make one, how to run its side.

cryptofeed is a baseline of ``meltica bench`` where it does the same job (OKX and Kraken books
with checksums, Binance replay), but never a dependency of meltica_nb: it lives in a separate
interpreter, the *benchmark environment*, and its side runs there in a subprocess
(:mod:`bench.cryptofeed_worker`, fed the same recordings as the engine).

The interpreter is, in order: the one passed (``meltica bench --cryptofeed-python PATH``, or a
bench module's own ``--cryptofeed-python``), then ``$MELTICA_CRYPTOFEED_PYTHON``. Without
either, cryptofeed is "not installed": its rows are left out and the report says so. A path
that is not an interpreter with cryptofeed is a :class:`CryptofeedEnvError`, never a silent
skip. ``meltica bench --cryptofeed-env DIR`` makes one explicitly (a venv in DIR with the
pinned :data:`PIN`, reused when it is already there); nothing installs it on its own, in CI
or elsewhere.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from meltica_nb.errors import ConfigError

__all__ = ["ENV_VAR", "NOT_INSTALLED", "PIN", "CryptofeedEnv", "CryptofeedEnvError", "create",
           "find"]

#: The cryptofeed the benchmark environment installs.
PIN = "cryptofeed==2.4.1"
#: The environment variable naming the benchmark environment's interpreter.
ENV_VAR = "MELTICA_CRYPTOFEED_PYTHON"
NOT_INSTALLED = (f"cryptofeed: not installed in the benchmark environment, its rows are not "
                 f"measured (pass --cryptofeed-python PATH, set {ENV_VAR}, or make one with "
                 f"--cryptofeed-env DIR)")
WORKER = Path(__file__).with_name("cryptofeed_worker.py")
_PROBE = "from importlib.metadata import version; import cryptofeed; print(version('cryptofeed'))"


class CryptofeedEnvError(ConfigError):
    """The named benchmark environment cannot run cryptofeed (or its worker failed)."""


@dataclass(frozen=True)
class CryptofeedEnv:
    """An interpreter with cryptofeed (``python``, ``version``), or none (not installed)."""

    python: str | None = None
    version: str | None = None

    @property
    def available(self) -> bool:
        return self.python is not None

    def describe(self) -> str:
        """One line for the report's notes."""
        if not self.available:
            return NOT_INSTALLED
        return (f"cryptofeed {self.version} measured in the benchmark environment "
                f"({self.python}), a separate interpreter fed the same recordings")

    def run(self, job: dict, timeout_s: float = 900.0) -> dict:
        """Run the worker on ``job`` (see :mod:`bench.cryptofeed_worker`); its JSON result."""
        if not self.available:
            raise CryptofeedEnvError(NOT_INSTALLED)
        done = subprocess.run([self.python, str(WORKER), orjson.dumps(job).decode()],
                              capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise CryptofeedEnvError(f"the cryptofeed worker failed on {job['venue']} (exit "
                                     f"{done.returncode}): {_last_line(done.stderr)}")
        return orjson.loads(done.stdout.strip().splitlines()[-1])


def add_argument(parser) -> None:
    """The benchmarks' ``--cryptofeed-python`` option (one definition for every entry)."""
    parser.add_argument("--cryptofeed-python", default=None,
                        help="an interpreter with cryptofeed installed (timed in a subprocess; "
                        f"default ${ENV_VAR})")


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "(no output)"


@functools.lru_cache(maxsize=8)
def _probe(python: str) -> str:
    """cryptofeed's version in ``python``, or a CryptofeedEnvError saying why not."""
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise CryptofeedEnvError(f"cryptofeed interpreter {python!r} is not an executable file")
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True,
                              timeout=120)
    except OSError as exc:
        raise CryptofeedEnvError(f"cryptofeed interpreter {python!r} cannot run: {exc}") from exc
    if done.returncode != 0:
        raise CryptofeedEnvError(f"cryptofeed interpreter {python!r} cannot import cryptofeed: "
                                 f"{_last_line(done.stderr)}")
    return done.stdout.strip()


def find(python: str | None = None) -> CryptofeedEnv:
    """The benchmark environment: ``python``, else ``$MELTICA_CRYPTOFEED_PYTHON``, else none."""
    python = python or os.environ.get(ENV_VAR) or None
    if python is None:
        return CryptofeedEnv()
    return CryptofeedEnv(python, _probe(python))


def _check_venv(directory: Path, python: Path) -> None:
    """Install only into the venv of ``directory``, never into an interpreter it points at."""
    done = subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"],
                          capture_output=True, text=True, timeout=120)
    prefix = done.stdout.strip()
    if done.returncode != 0 or Path(prefix).resolve() != directory.resolve():
        raise CryptofeedEnvError(f"{directory} is not a virtual environment (its python's "
                                 f"prefix is {prefix!r}): cryptofeed is not installed there")


def create(directory: Path, pin: str = PIN) -> CryptofeedEnv:
    """A venv in ``directory`` with ``pin`` installed (reused when it already has cryptofeed)."""
    directory = Path(directory)
    python = directory / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    _check_venv(directory, python)
    try:
        return find(str(python))
    except CryptofeedEnvError:
        pass  # a venv without cryptofeed yet: install it
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", pin], check=True)
    return find(str(python))
