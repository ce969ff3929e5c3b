"""The growth of a parser's reusable scratch arrays: only ever up, at least doubling.

A parser keeps per-frame and per-level arrays between batches, so a batch allocates nothing;
when a batch needs more room than they have, :func:`grow` says how large to make them and
hands back fresh zeroed arrays, one per layout, which the parser keeps until the next growth.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["grow"]


def grow(capacity: int, needed: int, *layouts: DTypeLike | tuple[DTypeLike, int]
         ) -> tuple[int, list[np.ndarray]] | None:
    """None when ``capacity`` holds ``needed`` rows; else the new capacity (``needed``, at
    least twice the old one) and a zeroed array of it per layout: a dtype, or ``(dtype,
    width)`` for a 2-D array of ``width`` columns."""
    if needed <= capacity:
        return None
    capacity = max(needed, 2 * capacity)
    return capacity, [np.zeros((capacity, layout[1]), layout[0]) if isinstance(layout, tuple)
                      else np.zeros(capacity, layout) for layout in layouts]
