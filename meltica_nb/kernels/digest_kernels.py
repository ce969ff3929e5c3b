"""Digest kernels: fold CanonicalEvent records and book levels into a running 128-bit state.

The replay digest must cost little beside the replay itself (BLAKE2b runs at about 350 MB/s
here, 0.4 us per 128-byte record): :func:`mix` folds one 64-bit word into two independent
multiply-xorshift lanes; the tape's kernel (:func:`meltica_nb.kernels.tape_kernels.take_batch`)
folds record after record with it, so the result does not depend on how records were
batched. It is a fingerprint for "these two runs produced the same records", not a
cryptographic hash; :class:`meltica_nb.event_tape.EventTape` finalizes it with BLAKE2b.

While folding, a record is read as the tape defines its content (:func:`record_word`): the
REPLAYED flag bit is masked out, and a BOOK_SNAPSHOT's BookTable handle (``book_row``,
``book_slot``) counts as 0.
"""

import numpy as np
from numba import njit

from meltica_nb.schema import CANONICAL_EVENT, EventType, Flag

_P1 = np.uint64(0x9E3779B97F4A7C15)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_S1 = np.uint64(29)
_S2 = np.uint64(32)

#: Word positions of the record fields the tape masks (8-byte words of a 128-byte record).
WORDS_PER_RECORD = CANONICAL_EVENT.itemsize // 8
TYPE_WORD = CANONICAL_EVENT.fields["event_type"][1] // 8
TYPE_SHIFT = np.uint64(8 * (CANONICAL_EVENT.fields["event_type"][1] % 8))
FLAGS_WORD = CANONICAL_EVENT.fields["flags"][1] // 8
REPLAYED_BIT = np.uint64(int(Flag.REPLAYED) << (8 * (CANONICAL_EVENT.fields["flags"][1] % 8)))
_ROW_WORD = CANONICAL_EVENT.fields["book_row"][1] // 8
_SLOT_WORD = CANONICAL_EVENT.fields["book_slot"][1] // 8
_BOOK = np.uint64(int(EventType.BOOK_SNAPSHOT))
_BYTE = np.uint64(0xFF)
_ZERO = np.uint64(0)


@njit(cache=True, _nrt=False)
def mix(s0, s1, w):
    """The two lanes after folding ``w`` (kept in locals by the callers: no store per word)."""
    a = (s0 ^ w) * _P1
    b = (s1 + w) * _P2
    return a ^ (a >> _S1), b ^ (b >> _S2)


@njit(cache=True, _nrt=False)
def record_type(words, i):
    """The event type of record ``i`` (its ``event_type`` byte)."""
    return int((words[i, TYPE_WORD] >> TYPE_SHIFT) & _BYTE)


@njit(cache=True, _nrt=False)
def record_word(words, i, j, book):
    """Word ``j`` of record ``i`` as the tape reads it (REPLAYED masked, a book's handle 0)."""
    w = words[i, j]
    if j == FLAGS_WORD:
        return w & ~REPLAYED_BIT
    if book and j in (_ROW_WORD, _SLOT_WORD):
        return _ZERO
    return w
