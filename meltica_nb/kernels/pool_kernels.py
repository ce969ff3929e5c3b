"""Pool kernels: acquire, release, zero-fill and poison slots of a record array, in batches.

A pool's free list is a stack of slot indices (``free_stack[:top[0]]``), a per-slot state byte
(FREE / IN_USE) and a per-slot generation counter bumped on every release. Records are handled
as rows of 64-bit words (``words = records.view(np.uint64).reshape(capacity, -1)``), so one loop
zero-fills or poisons any record type. One call serves a whole batch: a Numba call costs
100-450 ns, a slot operation under 10 ns.
"""

import numpy as np
from numba import njit

#: Slot state: on the free stack.
FREE = 0
#: Slot state: handed out by acquire, not yet released.
IN_USE = 1

#: Status: the batch was served.
OK = 0
#: Status: fewer free slots than requested; nothing was acquired.
EXHAUSTED = 1
#: Status (acquire, debug): a free slot's poison was overwritten; nothing was acquired.
POISONED = 2
#: Release problem: the slot was already free (or out of range).
DOUBLE_RELEASE = 3
#: Release problem: the handle's generation is not the slot's current generation.
STALE = 4

#: ``counts`` entries of a free list, kept by the kernels that move slots (so a batch's
#: bookkeeping is done where the slots move, not in Python after the call).
ACQUIRED = 0
RELEASED = 1
HIGH_WATER = 2
N_COUNTS = 3

#: Word written over every byte of a released record in debug mode.
POISON_WORD = np.uint64(0xDBDBDBDBDBDBDBDB)


@njit(cache=True, _nrt=False)
def find_poison_violation(words, free_stack, top, n):
    """Return the first of the next ``n`` free slots whose poison was overwritten, or -1."""
    count = top[0]
    for k in range(count - n, count):
        slot = free_stack[k]
        row = words[slot]
        for w in range(row.shape[0]):
            if row[w] != POISON_WORD:
                return slot
    return -1


@njit(cache=True, _nrt=False)
def acquire_slots(out, free_stack, top, state, words, counts):
    """Pop ``len(out)`` slots into ``out``, zero-filled and marked IN_USE; all or nothing."""
    n = out.shape[0]
    count = top[0]
    if count < n:
        return EXHAUSTED
    for i in range(n):
        count -= 1
        slot = free_stack[count]
        words[slot, :] = 0
        state[slot] = IN_USE
        out[i] = slot
    top[0] = count
    count_acquired(counts, n, free_stack.shape[0] - count)
    return OK


@njit(cache=True, _nrt=False)
def count_acquired(counts, n, in_use):
    """Count ``n`` slots acquired, ``in_use`` slots handed out right after."""
    counts[ACQUIRED] += n
    if in_use > counts[HIGH_WATER]:
        counts[HIGH_WATER] = in_use


@njit(cache=True, _nrt=False)
def release_slots(bad_index, bad_code, slots, generations, free_stack, top, state,
                  generation, words, poison, counts):
    """Push every valid slot of ``slots`` back; report the invalid ones instead of stopping.

    ``generations`` is empty (no check) or holds, per handle, the generation it was acquired
    at. Valid slots are released even when others in the batch are bad, so a bad handle
    never makes the pool lose a good one. Returns the number of bad handles.
    """
    check = generations.shape[0] > 0
    n_bad = 0
    capacity = state.shape[0]
    for i in range(slots.shape[0]):
        slot = slots[i]
        code = OK
        if slot < 0 or slot >= capacity or state[slot] != IN_USE:
            code = DOUBLE_RELEASE
        elif check and generations[i] != generation[slot]:
            code = STALE
        if code != OK:
            bad_index[n_bad] = i
            bad_code[n_bad] = code
            n_bad += 1
            continue
        state[slot] = FREE
        generation[slot] += 1
        if poison:
            words[slot, :] = POISON_WORD
        free_stack[top[0]] = slot
        top[0] += 1
    counts[RELEASED] += slots.shape[0] - n_bad
    return n_bad


@njit(cache=True, _nrt=False)
def poison_slots(words, slots):
    """Fill the given slots with the poison pattern (debug mode start-up)."""
    for i in range(slots.shape[0]):
        words[slots[i], :] = POISON_WORD
