"""Compiled input checks of ``mnist_fast.validation``: finiteness and
one-hot rows, each one pass over the array without the GIL.

Private module: ``mnist_fast.validation`` calls these on arrays it has made
C-contiguous and of the dtype named here, and words the errors itself.
"""

from cython cimport floating
from cython.parallel cimport prange

from _common cimport mf_all_finite_f32, mf_all_finite_f64

include "_simd.pxi"  # simd(), simd_variants(), use_simd()

cdef enum:
    # Values per chunk of a parallel scan, and the chunks from which a scan
    # is parallel: a thread team pays for itself only on large arrays.
    CHUNK = 1 << 16
    MIN_PARALLEL_CHUNKS = 16


cdef inline bint finite_in(const floating* x, Py_ssize_t n) noexcept nogil:
    """Whether all of ``x[:n]`` are finite: the exponent bits of each value
    plus one unit of the exponent carry into the sign bit only for NaN and
    infinities (simd_rows.c, in this module's SIMD variant)."""
    if floating is float:
        return mf_all_finite_f32(x, n)
    else:
        return mf_all_finite_f64(x, n)


def all_finite(
    const floating[::1] x,        # IN  the values, flattened
    int n_threads,
):
    """Whether no value of ``x`` is NaN or infinite; ``n_threads`` share
    the chunks of a large ``x``, each taking the next when done (a thread
    that another program slows takes fewer)."""
    cdef Py_ssize_t n = x.shape[0], c, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t bad = 0
    if n == 0:
        return True
    if n_chunks < MIN_PARALLEL_CHUNKS or n_threads == 1:
        with nogil:
            bad = not finite_in(&x[0], n)
        return not bad
    for c in prange(n_chunks, nogil=True, schedule="dynamic",
                    num_threads=n_threads):
        bad += not finite_in(&x[c * CHUNK], min(CHUNK, n - c * CHUNK))
    return not bad


def onehot_classes(
    const double[:, ::1] t,       # IN  (N, K) rows of 0s and one 1
    Py_ssize_t[::1] out,          # OUT (N,) the column of each row's 1
):
    """Fill ``out`` with each row's class; return the first row that is not
    one-hot (only 0s and exactly one 1), or -1 when all are."""
    cdef Py_ssize_t N = t.shape[0], K = t.shape[1], b, k, cls, ones
    cdef Py_ssize_t bad = -1
    cdef double v
    if out.shape[0] != N:
        raise ValueError("out needs one entry per row of t")
    with nogil:
        for b in range(N):
            ones, cls = 0, 0
            for k in range(K):
                v = t[b, k]
                if v == 1.0:
                    ones += 1
                    cls = k
                elif v != 0.0:  # NaN included
                    ones = 2
            if ones != 1:
                bad = b
                break
            out[b] = cls
    return bad
