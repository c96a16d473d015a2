"""Compiled forward pass of the two-layer network: predict, loss, accuracy.

Private module: the public, validating API is ``mnist_fast.TwoLayerNet``.
Every function takes whole batches of C-contiguous arrays whose shapes were
checked by the caller, and runs without the GIL, parallel over rows with
``n_threads`` OpenMP threads (serially when built without OpenMP).
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc

from _common cimport (argmax_row, cross_entropy_row, hidden_row, output_row,
                      softmax_row)


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
    cdef double* z1 = NULL
    with nogil, parallel(num_threads=n_threads):
        z1 = <double*> malloc(H * sizeof(double))
        try:
            for b in prange(N, schedule="static"):
                hidden_row(&x[b, 0], &W1[0, 0], &b1[0], D, H, z1)
                output_row(z1, &W2[0, 0], &b2[0], H, K, &y[b, 0])
                softmax_row(&y[b, 0], K)
        finally:
            free(z1)


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
    cdef double* scratch = NULL
    cdef double total = 0.0
    with nogil:
        with parallel(num_threads=n_threads):
            scratch = <double*> malloc((H + K) * sizeof(double))
            try:
                for b in prange(N, schedule="static"):
                    hidden_row(&x[b, 0], &W1[0, 0], &b1[0], D, H, scratch)
                    output_row(scratch, &W2[0, 0], &b2[0], H, K, scratch + H)
                    row_loss[b] = cross_entropy_row(scratch + H, K, t[b])
            finally:
                free(scratch)
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
    cdef double* scratch = NULL
    with nogil, parallel(num_threads=n_threads):
        scratch = <double*> malloc((H + K) * sizeof(double))
        try:
            for b in prange(N, schedule="static"):
                hidden_row(&x[b, 0], &W1[0, 0], &b1[0], D, H, scratch)
                output_row(scratch, &W2[0, 0], &b2[0], H, K, scratch + H)
                # softmax is monotonic: the argmax of the logits is the
                # argmax of the probabilities (first maximum on ties).
                correct += argmax_row(scratch + H, K) == t[b]
        finally:
            free(scratch)
    return correct
