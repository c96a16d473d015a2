"""Compiled forward pass of the two-layer network: predict, loss, accuracy.

Private module: the public, validating API is ``mnist_fast.TwoLayerNet``.
Every function takes whole batches of C-contiguous arrays whose shapes were
checked by the caller, and runs without the GIL, parallel over rows with
``n_threads`` OpenMP threads (serially when built without OpenMP).  Rows
come dense (``x``) or compressed (CSR: ``indptr, indices, values``, as
the trainer keeps the training set).  The per-thread scratch rows are
allocated before the parallel loop: when that fails, the function raises
``MemoryError`` before any work.
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, fabs, isfinite
from libc.stdint cimport int64_t
from libc.stdlib cimport free

from _common cimport (cross_entropy_row, gather_nonzeros, logits_dense_row,
                      logits_sparse_row, mf_combine_rows32, mf_output32,
                      mf_sigmoid32, predicted_class, scratch_rows,
                      softmax_row)

include "_simd.pxi"  # simd(), simd_variants(), use_simd()

# the screen's error bound: float32's unit roundoff, its underflow slack
# (half the smallest subnormal, per term), float64's unit roundoff
cdef double U32 = 2.0 ** -24
cdef double TINY32 = 2.0 ** -150
cdef double U64 = 2.0 ** -53


cdef inline double* dense_logits(
    const floating* x,      # IN  (D,) one input row
    const double* W1, const double* b1, const double* W2, const double* b2,
    Py_ssize_t D, Py_ssize_t H, Py_ssize_t K,
    double* buf,            # scratch: a row of D + H + K doubles per thread
    int* idx,               # scratch: a row of D ints per thread
    Py_ssize_t thread,      # IN  which rows of the scratch are this thread's
) noexcept nogil:
    """The row's logits, in this thread's scratch (returned)."""
    cdef double* w = buf + thread * (D + H + K)
    logits_dense_row(x, W1, b1, W2, b2, D, H, K, w + D, w + D + H, w,
                     idx + thread * D)
    return w + D + H


def predict(
    const floating[:, ::1] x,     # IN  (N, D)
    const double[:, ::1] W1,      # IN  (D, H)
    const double[::1] b1,         # IN  (H,)
    const double[:, ::1] W2,      # IN  (H, K)
    const double[::1] b2,         # IN  (K,)
    double[:, ::1] y,             # OUT (N, K) softmax probabilities
    int n_threads,
):
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1]
    cdef Py_ssize_t b
    cdef double* buf = <double*> scratch_rows(n_threads, D + H, sizeof(double))
    cdef int* idx = NULL
    cdef double* w
    try:
        idx = <int*> scratch_rows(n_threads, D, sizeof(int))
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            w = buf + threadid() * (D + H)
            logits_dense_row(&x[b, 0], &W1[0, 0], &b1[0], &W2[0, 0], &b2[0],
                             D, H, K, w + D, &y[b, 0], w,
                             idx + threadid() * D)
            softmax_row(&y[b, 0], K)
    finally:
        free(buf)
        free(idx)


def loss(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) class labels in [0, K)
    const double[:, ::1] W1,      # IN  (D, H)
    const double[::1] b1,         # IN  (H,)
    const double[:, ::1] W2,      # IN  (H, K)
    const double[::1] b2,         # IN  (K,)
    double[::1] row_loss,         # OUT (N,) per-row loss (scratch)
    int n_threads,
):
    """Mean cross-entropy; rows are summed in order, whatever the threads."""
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1]
    cdef Py_ssize_t b
    cdef double* buf = <double*> scratch_rows(n_threads, D + H + K,
                                              sizeof(double))
    cdef int* idx = NULL
    cdef double total = 0.0
    try:
        idx = <int*> scratch_rows(n_threads, D, sizeof(int))
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            row_loss[b] = cross_entropy_row(dense_logits(
                &x[b, 0], &W1[0, 0], &b1[0], &W2[0, 0], &b2[0], D, H, K, buf,
                idx, threadid()), K, t[b])
    finally:
        free(buf)
        free(idx)
    with nogil:
        for b in range(N):
            total += row_loss[b]
    return total / N


cdef struct Screen:
    # The float32 screen's weights (mnist_fast/screen.py): W1, b1, W2, b2 in
    # float32, padded to Hp hidden units and Kp classes, and its error factors.
    const float* W1f          # (D, Hp)
    const float* b1f          # (Hp,)
    const float* W2f          # (Hp, Kp)
    const float* b2f          # (Kp,)
    Py_ssize_t Hp, Kp
    double mmax, vmax, amax, tail


cdef Screen* screen_from(
    const float[:, ::1] W1f, const float[::1] b1f, const float[:, ::1] W2f,
    const float[::1] b2f, const double[::1] factors, Py_ssize_t D,
    Py_ssize_t H, Py_ssize_t K, Screen* sc,
):
    """``sc`` filled from the screen's arrays, or NULL when they are the
    screen's ``OFF`` (empty) or do not fit a (D, H, K) network."""
    cdef Py_ssize_t Hp = W1f.shape[1], Kp = W2f.shape[1]
    if not (W1f.shape[0] == D and D > 0 and Hp >= H and Hp % 8 == 0
            and Hp > 0 and b1f.shape[0] == Hp and W2f.shape[0] == Hp
            and Kp >= K and Kp % 8 == 0 and Kp > 0 and b2f.shape[0] == Kp
            and factors.shape[0] == 4):
        return NULL
    sc.W1f, sc.b1f, sc.W2f, sc.b2f = &W1f[0, 0], &b1f[0], &W2f[0, 0], &b2f[0]
    sc.Hp, sc.Kp = Hp, Kp
    sc.mmax, sc.vmax, sc.amax, sc.tail = (factors[0], factors[1], factors[2],
                                          factors[3])
    return sc


def count_correct(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) class labels
    const double[:, ::1] W1,      # IN  (D, H)
    const double[::1] b1,         # IN  (H,)
    const double[:, ::1] W2,      # IN  (H, K)
    const double[::1] b2,         # IN  (K,)
    const float[:, ::1] W1f,      # IN  the screen (screen_weights), or OFF:
    const float[::1] b1f,         #     W1, b1, W2, b2 in float32, padded,
    const float[:, ::1] W2f,
    const float[::1] b2f,
    const double[::1] factors,    #     and its error factors
    int n_threads,
):
    """Number of rows whose most probable class is the label.

    Each row's nonzero pixels are gathered, then classified as in
    ``count_correct_csr`` (the float32 screen first when it is given).
    """
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1]
    cdef Py_ssize_t b, nnz, correct = 0
    cdef Screen screen
    cdef Screen* sc = screen_from(W1f, b1f, W2f, b2f, factors, D, H, K,
                                  &screen)
    # per thread: the row's values, z and logits, then floats for the screen
    cdef Py_ssize_t width = D + H + K + screen_floats(sc, D)
    cdef double* buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    cdef double* w
    cdef int* idx = NULL
    try:
        idx = <int*> scratch_rows(n_threads, D, sizeof(int))
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            w = buf + threadid() * width
            nnz = gather_nonzeros(&x[b, 0], D, w, idx + threadid() * D)
            correct += row_class(
                w, idx + threadid() * D, nnz,
                l1_bound(w, nnz) if sc != NULL else 0, sc, &W1[0, 0], &b1[0],
                &W2[0, 0], &b2[0], H, K, w + D, <float*> (w + D + H + K)
            ) == t[b]
    finally:
        free(buf)
        free(idx)
    return correct


cdef inline Py_ssize_t screen_floats(const Screen* sc, Py_ssize_t D) noexcept nogil:
    """Scratch for the screen, in doubles: floats for a row's values (at
    most D), its hidden units and its logits."""
    return 0 if sc == NULL else (D + sc.Hp + sc.Kp + 1) // 2


cdef inline double l1_bound(const floating* values, Py_ssize_t nnz) noexcept nogil:
    """sum |x| over a row's nonzeros, rounded up (for the screen).

    Four partial sums (not one chain of dependent adds).  In any order the
    float sum is within gamma = nnz u / (1 - nnz u) <= 2 nnz u (u = 2**-53,
    nnz u <= 1/2 as nnz < 2**31) of the exact one, relatively; the factor
    1 + (nnz + 2) 2**-52 covers that and its own rounding.
    """
    cdef Py_ssize_t n = 0
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    while n + 4 <= nnz:
        s0 += fabs(values[n])
        s1 += fabs(values[n + 1])
        s2 += fabs(values[n + 2])
        s3 += fabs(values[n + 3])
        n += 4
    while n < nnz:
        s0 += fabs(values[n])
        n += 1
    return ((s0 + s1) + (s2 + s3)) * (1.0 + (nnz + 2) * (2.0 * U64))


cdef inline Py_ssize_t row_class(
    const floating* values,   # IN  (nnz,) the nonzeros of one row
    const int* indices,       # IN  (nnz,) their columns
    Py_ssize_t nnz,
    double s,                 # IN  l1_bound of the row (when screened)
    const Screen* sc,         # IN  the float32 screen to try first, or NULL
    const double* W1, const double* b1, const double* W2, const double* b2,
    Py_ssize_t H, Py_ssize_t K,
    double* z,                # scratch (H + K,)
    float* f,                 # scratch (nnz + Hp + Kp,) floats (screened)
) noexcept nogil:
    """The book's ``argmax`` class of one row: the screen's when it decides
    for sure, else the float64 forward pass's."""
    cdef Py_ssize_t cls = -1
    if sc != NULL:
        cls = screened_class(values, indices, nnz, s, sc, H, K, f, f + sc.Hp,
                             f + sc.Hp + sc.Kp)
    if cls < 0:
        logits_sparse_row(values, indices, nnz, W1, b1, W2, b2, H, K, z,
                          z + H)
        cls = predicted_class(z + H, K)
    return cls


cdef inline Py_ssize_t screened_class(
    const floating* values,   # IN  (nnz,) the nonzeros of one row
    const int* indices,       # IN  (nnz,) their columns
    Py_ssize_t nnz,
    double s,                 # IN  sum |x| over the row (at least)
    const Screen* sc,         # IN  the screen's weights and factors
    Py_ssize_t H, Py_ssize_t K,
    float* zf,                # scratch (Hp,)
    float* a2f,               # scratch (Kp,)
    float* xf,                # scratch (nnz,) when floating is double
) noexcept nogil:
    """The row's class when a float32 forward pass decides it for sure, or
    -1.  See ``mnist_fast/screen.py`` for the error bound."""
    cdef Py_ssize_t n, k, best = 0
    cdef double big, c, delta, first = -INFINITY, second = -INFINITY
    cdef const float* xv
    if (nnz + 4) * U32 >= 0.5:  # beyond the bound's reach (~8 million pixels)
        return -1
    if floating is float:
        xv = values
    else:
        for n in range(nnz):
            xf[n] = <float> values[n]
        xv = xf
    mf_combine_rows32(xv, indices, nnz, sc.W1f, sc.Hp, zf)
    big = mf_sigmoid32(zf, sc.b1f, sc.Hp)
    if not big < INFINITY:
        return -1
    mf_output32(zf, sc.Hp, sc.W2f, sc.Kp, sc.b2f, a2f)
    for k in range(K):  # the first largest logit and the next one
        if not isfinite(a2f[k]):
            return -1
        if a2f[k] > first:
            second, first, best = first, a2f[k], k
        elif a2f[k] > second:
            second = a2f[k]
    c = (nnz + 4) * U32 / (1.0 - (nnz + 4) * U32) * 1.001
    delta = (c * s / 4.0) * (1.0 + U64) * sc.vmax + (
        (nnz * (1.0 + sc.mmax) + s) * TINY32 + U64 * big
        + 5e-16 + 2.0 * (H + 2) * U64) * sc.amax + sc.tail
    if first - second > 2.0 * delta + 2e-12 * (1.0 + fabs(first) + delta):
        return best
    return -1


def count_correct_csr(
    const int64_t[::1] indptr,    # IN  (N + 1,) row starts in indices/values
    const int[::1] indices,       # IN  (nnz,) columns of the nonzeros (C int)
    const floating[::1] values,   # IN  (nnz,) the nonzeros
    const Py_ssize_t[::1] t,      # IN  (N,) class labels
    const double[:, ::1] W1,      # IN  (D, H)
    const double[::1] b1,         # IN  (H,)
    const double[:, ::1] W2,      # IN  (H, K)
    const double[::1] b2,         # IN  (K,)
    const float[:, ::1] W1f,      # IN  the screen (screen_weights), or OFF:
    const float[::1] b1f,         #     W1, b1, W2, b2 in float32, padded,
    const float[:, ::1] W2f,
    const float[::1] b2f,
    const double[::1] factors,    #     and its error factors
    const double[::1] row_l1,     # IN  (N,) sum |x| of each row (row_l1)
    int n_threads,
):
    """``count_correct`` for rows stored compressed (CSR).

    With the screen (see ``mnist_fast.screen``) each row first goes through
    a float32 forward pass, whose class is taken when its margin exceeds
    the pass's error bound; the other rows, and all rows without the
    screen, get the float64 pass.  The count is the same either way.
    """
    cdef Py_ssize_t N = t.shape[0], D = W1.shape[0]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1]
    cdef Py_ssize_t b, correct = 0
    cdef Screen screen
    cdef Screen* sc = screen_from(W1f, b1f, W2f, b2f, factors, D, H, K,
                                  &screen)
    if row_l1.shape[0] != N:
        sc = NULL
    # rows by pointer: an empty last row starts past the end of the arrays
    cdef floating no_value = 0
    cdef int no_column = 0
    cdef const floating* vals = &values[0] if values.shape[0] else &no_value
    cdef const int* cols = &indices[0] if indices.shape[0] else &no_column
    # per thread: z and logits, then floats for the screen
    cdef Py_ssize_t width = H + K + screen_floats(sc, D) + 1
    cdef double* buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    cdef double* w
    try:
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            w = buf + threadid() * width
            correct += row_class(
                vals + indptr[b], cols + indptr[b], indptr[b + 1] - indptr[b],
                row_l1[b] if sc != NULL else 0, sc, &W1[0, 0], &b1[0],
                &W2[0, 0], &b2[0], H, K, w, <float*> (w + H + K + 1)) == t[b]
    finally:
        free(buf)
    return correct


def sigmoid32(float[::1] a, const float[::1] b):
    """``a = sigmoid(a + b)`` in place by the screen's float32 sigmoid (for
    its tests); ``len(a) == len(b)``, a multiple of 8.  Returns max |a + b|
    (in float32), or inf when one is not finite."""
    if a.shape[0] % 8 or b.shape[0] != a.shape[0]:
        raise ValueError(f"a and b need one length, a multiple of 8; got "
                         f"{a.shape[0]} and {b.shape[0]}")
    cdef float big = 0.0
    if a.shape[0]:
        with nogil:
            big = mf_sigmoid32(&a[0], &b[0], a.shape[0])
    return big


def screen_classes(
    const int64_t[::1] indptr,    # IN  (N + 1,) a CSR matrix
    const int[::1] indices,       # IN  (nnz,)
    const floating[::1] values,   # IN  (nnz,)
    const double[:, ::1] W1,      # IN  (D, H) (its shape)
    const double[:, ::1] W2,      # IN  (H, K) (its shape)
    const float[:, ::1] W1f,      # IN  the screen (screen_weights)
    const float[::1] b1f,
    const float[:, ::1] W2f,
    const float[::1] b2f,
    const double[::1] factors,
    const double[::1] row_l1,     # IN  (N,) row_l1 of the matrix
):
    """The screen's class of each row, -1 where it leaves the row to the
    float64 pass (for its tests)."""
    cdef Py_ssize_t N = indptr.shape[0] - 1, D = W1.shape[0]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1], b
    cdef Screen screen
    cdef Screen* sc = screen_from(W1f, b1f, W2f, b2f, factors, D, H, K,
                                  &screen)
    if sc == NULL or row_l1.shape[0] != N or values.shape[0] != indptr[N]:
        raise ValueError("the screen or row_l1 does not fit these arrays")
    # rows by pointer, as in count_correct_csr
    cdef floating no_value = 0
    cdef int no_column = 0
    cdef const floating* vals = &values[0] if values.shape[0] else &no_value
    cdef const int* cols = &indices[0] if indices.shape[0] else &no_column
    out_arr = np.empty(N, dtype=np.intp)
    cdef Py_ssize_t[::1] out = out_arr
    cdef float[::1] f = np.empty(D + sc.Hp + sc.Kp, dtype=np.float32)
    with nogil:
        for b in range(N):
            out[b] = screened_class(
                vals + indptr[b], cols + indptr[b], indptr[b + 1] - indptr[b],
                row_l1[b], sc, H, K, &f[0], &f[sc.Hp], &f[sc.Hp + sc.Kp])
    return out_arr


def row_l1(
    const int64_t[::1] indptr,    # IN  (N + 1,)
    const floating[::1] values,   # IN  (nnz,)
):
    """sum |x| of each row of a CSR matrix, rounded up (for the screen)."""
    cdef Py_ssize_t N = indptr.shape[0] - 1, b
    cdef floating no_value = 0
    cdef const floating* vals = &values[0] if values.shape[0] else &no_value
    out_arr = np.empty(N)
    cdef double[::1] out = out_arr
    with nogil:
        for b in range(N):
            out[b] = l1_bound(vals + indptr[b], indptr[b + 1] - indptr[b])
    return out_arr
