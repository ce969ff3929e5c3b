"""Event array kernels: copy batches of CANONICAL_EVENT records as whole 128-byte records.

NumPy copies the union dtype field by field (its fields overlap), about 1 us per record for a
slice assignment and several microseconds of set-up for ``np.concatenate``; a compiled loop
moves each record as one block.
"""

from numba import njit


@njit(cache=True, _nrt=False)
def join_events(out, first, second):
    """Write ``first`` then ``second`` into ``out`` (room for both); return how many."""
    n = first.shape[0]
    for i in range(n):
        out[i] = first[i]
    for i in range(second.shape[0]):
        out[n + i] = second[i]
    return n + second.shape[0]
