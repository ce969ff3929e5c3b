"""Consumer kernels: take a consumer's next batch out of a ring in one call.

One call drains up to a batch of records from both of a consumer's rings, critical first
(the copy frees the ring slots: auto-release), drops market data older than the consumer's
minimum routing version, and records the handler-entry latency of what is kept. Separate calls
and their Python glue cost more than the copy of a small batch, and every microsecond here is
added to the latency of the consumers served after this one.
"""

from numba import njit

from .dispatch_kernels import keep_accepted
from .histogram_kernels import record_value
from .ring_kernels import drain_into


@njit(cache=True, _nrt=False)
def take_batch(out, crit_cursors, crit_counters, crit_records, cursors, counters, records,
               min_version, critical_kind, latency_counts, now_ns):
    """Drain the critical ring, then the market-data ring, into ``out``; return (drained, kept).

    Critical events come first and always pass; of the market data, what is older than
    ``min_version`` is dropped (``drained - kept`` were filtered). The kept events are
    ``out[:kept]``, in order, their handler-entry latency recorded. One call for both rings:
    a consumer wakes up for every published batch and each kernel call costs microseconds.
    Not ``nogil``: the drain must be atomic with the producer's publish.
    """
    n_crit = drain_into(out, crit_cursors, crit_counters, crit_records, out.shape[0])
    rest = out[n_crit:]
    n_md = drain_into(rest, cursors, counters, records, rest.shape[0])
    kept = n_crit + keep_accepted(rest, n_md, min_version, critical_kind)
    for i in range(kept):
        record_value(latency_counts, now_ns - out[i]["ingest_ns"])
    return n_crit + n_md, kept
