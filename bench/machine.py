"""The machine a report was measured on: CPU model, cores, load, versions."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict:
    """CPU, cores usable by this process, load average, Python/NumPy/Numba versions."""
    import numba
    import numpy

    return {"cpu": cpu_model(), "nproc": len(os.sched_getaffinity(0)),
            "loadavg": list(os.getloadavg()), "python": sys.version.split()[0],
            "numpy": numpy.__version__, "numba": numba.__version__,
            "platform": platform.platform()}
