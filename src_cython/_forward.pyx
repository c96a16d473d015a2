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
from libc.float cimport DBL_EPSILON
from libc.math cimport INFINITY, fabs, isfinite
from libc.stdint cimport int64_t

from _common cimport (Net, block_logits, block_rows, block_scratch,
                      check_rows, free_scratch, hidden_ld, cross_entropy_row,
                      gather_nonzeros, logits_sparse_row, mf_combine_rows32,
                      mf_output32, mf_sigmoid32, n_blocks, net_of,
                      predicted_class, scratch_rows, softmax_row)

include "_simd.pxi"  # simd(), simd_variants(), use_simd()



def predict(
    const floating[:, ::1] x,     # IN  (N, D)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    double[:, ::1] y,             # OUT (N, K) softmax probabilities
    int n_threads,
):
    """The book's predict, by blocks of rows (see _common.Block)."""
    cdef Net net = net_of(params)
    check_rows(x.shape[1], &net)
    if y.shape[0] != x.shape[0] or y.shape[1] != net.K:
        raise ValueError("y must be (len(x), K)")
    cdef Py_ssize_t N = x.shape[0], K = net.K, b, k
    cdef Py_ssize_t nb = n_blocks(N, net.H, n_threads)
    cdef Py_ssize_t width = block_scratch(&net, 0)
    cdef double* buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    try:
        for k in prange(nb, nogil=True, schedule="static",
                        num_threads=n_threads):
            block_logits(&x[0, 0], net.D, k, nb, N, &net,
                         buf + threadid() * width, &y[k * N // nb, 0], K)
            for b in range(k * N // nb, (k + 1) * N // nb):
                softmax_row(&y[b, 0], K)
    finally:
        free_scratch(buf)


def loss(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) class labels in [0, K)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    double guard,                 # IN  the book's guard inside the log
    double[::1] row_loss,         # OUT (N,) per-row loss (scratch)
    int n_threads,
):
    """Mean cross-entropy; rows are summed in order, whatever the threads."""
    cdef Net net = net_of(params)
    check_rows(x.shape[1], &net)
    if t.shape[0] != x.shape[0] or row_loss.shape[0] != x.shape[0]:
        raise ValueError("t and row_loss need one entry per row of x")
    cdef Py_ssize_t N = x.shape[0], K = net.K, b, k
    cdef Py_ssize_t nb = n_blocks(N, net.H, n_threads)
    # per thread: the block's a1 and masks, then its logits
    cdef Py_ssize_t rows = block_rows(net.H)
    cdef Py_ssize_t width = block_scratch(&net, rows * K)
    cdef Py_ssize_t logits = rows * hidden_ld(net.H) + net.D
    cdef double* buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    cdef double* w
    cdef double total = 0.0
    try:
        for k in prange(nb, nogil=True, schedule="static",
                        num_threads=n_threads):
            w = buf + threadid() * width
            block_logits(&x[0, 0], net.D, k, nb, N, &net, w, w + logits, K)
            for b in range(k * N // nb, (k + 1) * N // nb):
                row_loss[b] = cross_entropy_row(
                    w + logits + (b - k * N // nb) * K, K, t[b], guard)
    finally:
        free_scratch(buf)
    with nogil:
        for b in range(N):
            total += row_loss[b]
    return total / N


cdef struct Screen:
    # The float32 screen (mnist_fast/screen.py, which holds its bound):
    # W1, b1, W2, b2 in float32, padded to Hp hidden units and Kp classes,
    # and the coefficients of the per-row bound.
    const float* W1f          # (D, Hp)
    const float* b1f          # (Hp,)
    const float* W2f          # (Hp, Kp)
    const float* b2f          # (Kp,)
    Py_ssize_t Hp, Kp, max_nnz
    double n4s, per_n, per_s, per_big, const, tie


cdef class ScreenArrays:
    """A ``mnist_fast.screen.Screen`` as a Screen struct, its arrays held."""

    cdef const float[:, ::1] W1f, W2f
    cdef const float[::1] b1f, b2f
    cdef Screen sc

    def __init__(self, screen, Py_ssize_t D, Py_ssize_t H, Py_ssize_t K):
        self.W1f, self.b1f = screen.W1, screen.b1
        self.W2f, self.b2f = screen.W2, screen.b2
        cdef Py_ssize_t Hp = self.W1f.shape[1], Kp = self.W2f.shape[1]
        if not (self.W1f.shape[0] == D and Hp >= H and Hp % 8 == 0
                and self.b1f.shape[0] == Hp and self.W2f.shape[0] == Hp
                and Kp >= K and Kp % 8 == 0 and self.b2f.shape[0] == Kp):
            raise ValueError("the screen does not fit the network")
        cdef Screen* sc = &self.sc
        sc.W1f, sc.b1f = &self.W1f[0, 0], &self.b1f[0]
        sc.W2f, sc.b2f = &self.W2f[0, 0], &self.b2f[0]
        sc.Hp, sc.Kp, sc.max_nnz = Hp, Kp, screen.max_nnz
        sc.n4s, sc.per_n, sc.per_s = screen.n4s, screen.per_n, screen.per_s
        sc.per_big, sc.const, sc.tie = screen.per_big, screen.const, screen.tie


cdef inline Py_ssize_t screen_floats(const Screen* sc, Py_ssize_t D) noexcept nogil:
    """Scratch for the screen, in doubles: floats for a row's values (at
    most D), its hidden units and its logits."""
    return 0 if sc == NULL else (D + sc.Hp + sc.Kp + 1) // 2


cdef inline double l1_bound(const floating* values, Py_ssize_t nnz) noexcept nogil:
    """sum |x| over a row's nonzeros, rounded up (for the screen).

    Four partial sums (not one chain of dependent adds).  In any order the
    float sum is within gamma = nnz u / (1 - nnz u) <= 2 nnz u (u = 2**-53,
    nnz u <= 1/2 as nnz < 2**31) of the exact one, relatively; the factor
    1 + (nnz + 2) 2**-52 (DBL_EPSILON) covers that and its own rounding.
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
    return ((s0 + s1) + (s2 + s3)) * (1.0 + (nnz + 2) * DBL_EPSILON)


cdef inline Py_ssize_t row_class(
    const floating* values,   # IN  (nnz,) the nonzeros of one row
    const int* indices,       # IN  (nnz,) their columns
    Py_ssize_t nnz,
    double s,                 # IN  l1_bound of the row (when screened)
    const Screen* sc,         # IN  the float32 screen to try first, or NULL
    const Net* net,           # IN  the parameters
    double* z,                # scratch (H + K,)
    float* f,                 # scratch (nnz + Hp + Kp,) floats (screened)
) noexcept nogil:
    """The book's ``argmax`` class of one row: the screen's when it decides
    for sure, else the float64 forward pass's."""
    cdef Py_ssize_t cls = -1
    if sc != NULL:
        cls = screened_class(values, indices, nnz, s, sc, net.K, f)
    if cls < 0:
        logits_sparse_row(values, indices, nnz, net, z, z + net.H)
        cls = predicted_class(z + net.H, net.K)
    return cls


cdef inline Py_ssize_t screened_class(
    const floating* values,   # IN  (nnz,) the nonzeros of one row
    const int* indices,       # IN  (nnz,) their columns
    Py_ssize_t nnz,
    double s,                 # IN  sum |x| over the row (at least)
    const Screen* sc,         # IN  the screen's weights and bound
    Py_ssize_t K,
    float* f,                 # scratch: Hp, Kp, then nnz floats
) noexcept nogil:
    """The row's class when a float32 forward pass decides it for sure, or
    -1.  See ``mnist_fast/screen.py`` for the error bound."""
    cdef Py_ssize_t n, k, best = 0
    cdef double big, delta, first = -INFINITY, second = -INFINITY
    cdef float* zf = f
    cdef float* a2f = f + sc.Hp
    cdef const float* xv
    if nnz > sc.max_nnz:
        return -1
    if floating is float:
        xv = values
    else:
        for n in range(nnz):
            a2f[sc.Kp + n] = <float> values[n]
        xv = a2f + sc.Kp
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
    delta = (sc.n4s * (nnz + 4) * s + sc.per_n * nnz + sc.per_s * s
             + sc.per_big * big + sc.const)
    if first - second > 2.0 * delta + sc.tie * (1.0 + fabs(first) + delta):
        return best
    return -1


def count_correct(
    const floating[::1] values,   # IN  the rows: N dense rows of D values,
                                  #     or the nonzeros of their CSR form
    const Py_ssize_t[::1] t,      # IN  (N,) class labels
    csr,                          # IN  None (dense rows), or the CSR form's
                                  #     indptr, indices and row_l1 (sum |x|)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    screen,                       # IN  a mnist_fast.screen.Screen, or None
    int n_threads,
):
    """Number of rows whose most probable class is the label.

    A dense row's nonzeros are gathered first.  With the screen each row
    first goes through a float32 forward pass, whose class is taken when
    its margin exceeds the pass's error bound; the other rows, and all rows
    without the screen, get the float64 pass.  The count is the same
    either way.
    """
    cdef Net net = net_of(params)
    cdef Py_ssize_t N = t.shape[0], D = net.D, H = net.H, K = net.K
    cdef bint dense = csr is None
    cdef const int64_t[::1] indptr
    cdef const int[::1] indices
    cdef const double[::1] l1
    if dense:
        if values.shape[0] != N * D:
            raise ValueError("dense rows need N * D values")
    else:
        indptr, indices, l1 = csr.indptr, csr.indices, csr.row_l1
        if (indptr.shape[0] != N + 1 or l1.shape[0] != N
                or indptr[N] != values.shape[0]
                or indices.shape[0] != values.shape[0]):
            raise ValueError("the CSR arrays do not fit together")
    cdef ScreenArrays held = (None if screen is None
                              else ScreenArrays(screen, D, H, K))
    cdef const Screen* sc = NULL if held is None else &held.sc
    # rows by pointer: an empty last row starts past the end of the arrays
    cdef floating no_value = 0
    cdef int no_column = 0
    cdef const floating* vals = &values[0] if values.shape[0] else &no_value
    cdef const int* cols = (&indices[0] if not dense and indices.shape[0]
                            else &no_column)
    # per thread: a dense row's values, z and logits, floats for the screen
    cdef Py_ssize_t off = D if dense else 0
    cdef Py_ssize_t width = off + H + K + 1 + screen_floats(sc, D)
    cdef Py_ssize_t b, nnz, correct = 0
    cdef double* buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    cdef double* w
    cdef int* idx = NULL
    try:
        idx = <int*> scratch_rows(n_threads, D if dense else 1, sizeof(int))
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            w = buf + threadid() * width
            if dense:
                nnz = gather_nonzeros(vals + b * D, D, w, idx + threadid() * D)
                correct += row_class(
                    w, idx + threadid() * D, nnz,
                    l1_bound(w, nnz) if sc != NULL else 0, sc, &net, w + off,
                    <float*> (w + off + H + K + 1)) == t[b]
            else:
                correct += row_class(
                    vals + indptr[b], cols + indptr[b],
                    indptr[b + 1] - indptr[b], l1[b] if sc != NULL else 0, sc,
                    &net, w, <float*> (w + H + K + 1)) == t[b]
    finally:
        free_scratch(buf)
        free_scratch(idx)
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
    const floating[::1] values,   # IN  (nnz,) the nonzeros of a CSR matrix
    csr,                          # IN  its indptr, indices and row_l1
    dict params,                  # IN  W1, b1, W2, b2 (their shapes)
    screen,                       # IN  a mnist_fast.screen.Screen
):
    """The screen's class of each row, -1 where it leaves the row to the
    float64 pass (for its tests)."""
    cdef Net net = net_of(params)
    cdef const int64_t[::1] indptr = csr.indptr
    cdef const int[::1] indices = csr.indices
    cdef const double[::1] l1 = csr.row_l1
    cdef Py_ssize_t N = indptr.shape[0] - 1, b
    cdef ScreenArrays held = ScreenArrays(screen, net.D, net.H, net.K)
    cdef const Screen* sc = &held.sc
    if l1.shape[0] != N or values.shape[0] != indptr[N]:
        raise ValueError("row_l1 or values do not fit indptr")
    # rows by pointer, as in count_correct
    cdef floating no_value = 0
    cdef int no_column = 0
    cdef const floating* vals = &values[0] if values.shape[0] else &no_value
    cdef const int* cols = &indices[0] if indices.shape[0] else &no_column
    out_arr = np.empty(N, dtype=np.intp)
    cdef Py_ssize_t[::1] out = out_arr
    cdef float[::1] f = np.empty(net.D + sc.Hp + sc.Kp, dtype=np.float32)
    with nogil:
        for b in range(N):
            out[b] = screened_class(
                vals + indptr[b], cols + indptr[b], indptr[b + 1] - indptr[b],
                l1[b], sc, net.K, &f[0])
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
