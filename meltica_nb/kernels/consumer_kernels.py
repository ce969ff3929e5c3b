"""Consumer kernels: take a consumer's next batch out of a ring in one call.

One call drains up to a batch of records (the copy frees the ring slots: auto-release),
drops market data older than the consumer's minimum routing version, and records the
handler-entry latency of what is kept. Three calls and their Python glue cost more than the
copy of a small batch, and every microsecond here is added to the latency of the consumers
served after this one.
"""

from numba import njit

from .dispatch_kernels import keep_accepted
from .histogram_kernels import record_value
from .ring_kernels import drain_into


@njit(cache=True, _nrt=False)
def take_batch(out, cursors, counters, records, min_version, critical_kind, latency_counts,
               now_ns):
    """Drain up to ``len(out)`` records into ``out``; return (drained, kept).

    The kept events are ``out[:kept]``, in order; ``drained - kept`` were filtered (stale
    routing version). Not ``nogil``: the drain must be atomic with the producer's publish.
    """
    n = drain_into(out, cursors, counters, records, out.shape[0])
    if n == 0:
        return 0, 0
    kept = keep_accepted(out, n, min_version, critical_kind)
    for i in range(kept):
        record_value(latency_counts, now_ns - out[i]["ingest_ns"])
    return n, kept
