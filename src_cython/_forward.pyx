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

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from _common cimport (cross_entropy_row, logits_dense_row, logits_sparse_row,
                      predicted_class, softmax_row)


cdef void* scratch_rows(int n_threads, Py_ssize_t width, size_t size) except NULL:
    """``n_threads`` rows of ``width`` items of ``size`` bytes (``free`` them)."""
    cdef size_t n = <size_t> (n_threads if n_threads > 1 else 1) * width * size
    cdef void* rows = malloc(n if n else 1)
    if rows == NULL:
        raise MemoryError(
            f"mnist_fast: cannot allocate {n} bytes of scratch for "
            f"{n_threads} thread(s)")
    return rows


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


def count_correct(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) class labels
    const double[:, ::1] W1,      # IN  (D, H)
    const double[::1] b1,         # IN  (H,)
    const double[:, ::1] W2,      # IN  (H, K)
    const double[::1] b2,         # IN  (K,)
    int n_threads,
):
    """Number of rows whose most probable class is the label."""
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1]
    cdef Py_ssize_t b, correct = 0
    cdef double* buf = <double*> scratch_rows(n_threads, D + H + K,
                                              sizeof(double))
    cdef int* idx = NULL
    try:
        idx = <int*> scratch_rows(n_threads, D, sizeof(int))
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            # softmax is monotonic: the argmax of the logits is the argmax
            # of the probabilities (see predicted_class).
            correct += predicted_class(dense_logits(
                &x[b, 0], &W1[0, 0], &b1[0], &W2[0, 0], &b2[0], D, H, K, buf,
                idx, threadid()), K) == t[b]
    finally:
        free(buf)
        free(idx)
    return correct


def count_correct_csr(
    const int64_t[::1] indptr,    # IN  (N + 1,) row starts in indices/values
    const int[::1] indices,       # IN  (nnz,) columns of the nonzeros (C int)
    const floating[::1] values,   # IN  (nnz,) the nonzeros
    const Py_ssize_t[::1] t,      # IN  (N,) class labels
    const double[:, ::1] W1,      # IN  (D, H)
    const double[::1] b1,         # IN  (H,)
    const double[:, ::1] W2,      # IN  (H, K)
    const double[::1] b2,         # IN  (K,)
    int n_threads,
):
    """``count_correct`` for rows stored compressed (CSR)."""
    cdef Py_ssize_t N = t.shape[0]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1]
    cdef Py_ssize_t b, correct = 0
    cdef double* buf = <double*> scratch_rows(n_threads, H + K, sizeof(double))
    cdef double* w
    try:
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            w = buf + threadid() * (H + K)
            logits_sparse_row(&values[indptr[b]], &indices[indptr[b]],
                              indptr[b + 1] - indptr[b], &W1[0, 0], &b1[0],
                              &W2[0, 0], &b2[0], H, K, w, w + H)
            correct += predicted_class(w + H, K) == t[b]
    finally:
        free(buf)
    return correct
