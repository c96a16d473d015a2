"""Compiled backpropagation and the fused SGD step used by ``train``.

Private module: the public, validating API is ``TwoLayerNet.gradient`` and
``mnist_fast.train``.

The arithmetic is the book's ``TwoLayerNet.gradient``::

    dy = (softmax(a2) - onehot(t)) / N
    gW2 = z1.T @ dy,  gb2 = sum(dy),  da1 = dy @ W2.T
    dz1 = (1 - sigmoid(a1)) * sigmoid(a1) * da1
    gW1 = x.T @ dz1,  gb1 = sum(dz1)

with x @ W1 and x.T @ dz1 computed over the nonzero pixels only (x is
stored column by column for the latter).  The fused step then applies the
book's update ``p -= lr * g`` -- only to the W1 rows whose pixel is nonzero
in the batch, the others having a zero gradient -- after checking that no
updated value is NaN or infinite, and evaluates the book's post-update
batch loss (undoing the update if that loss is not finite).  Every output element is summed by one thread in a fixed
order.
"""

import numpy as np

cimport cython
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport isfinite
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from _common cimport (combine_rows, cross_entropy_row, gather_nonzeros,
                      logits_sparse_row, softmax_row)


cdef inline void output_delta_row(
    double* a2,             # IN/OUT (K,) logits in, dy = (y - t) / N out
    Py_ssize_t K,
    Py_ssize_t t,
    double n,
) noexcept nogil:
    cdef Py_ssize_t k
    softmax_row(a2, K)
    for k in range(K):
        a2[k] = (a2[k] - (1.0 if k == t else 0.0)) / n


cdef inline void hidden_delta_row(
    const double* z,        # IN  (H,)   sigmoid(a1) of one row
    const double* dy,       # IN  (K,)   its dy
    const double* W2T,      # IN  (K, H) W2 transposed
    Py_ssize_t H,
    Py_ssize_t K,
    double* dz1,            # OUT (H,)   sigmoid'(a1) * (dy @ W2.T)
) noexcept nogil:
    """One row of dz1 = (1 - z) z (dy @ W2.T), vectorised over the units."""
    cdef Py_ssize_t j, k
    cdef double c
    cdef const double* w
    for j in range(H):
        dz1[j] = 0.0
    for k in range(K):
        c = dy[k]
        w = W2T + k * H
        for j in range(H):
            dz1[j] += c * w[j]
    for j in range(H):
        dz1[j] = ((1.0 - z[j]) * z[j]) * dz1[j]


cdef inline void output_gradients(
    const double* z,        # IN  (B, H) sigmoid(a1)
    const double* dy,       # IN  (B, K)
    const double* dz1,      # IN  (B, H)
    Py_ssize_t B,
    Py_ssize_t H,
    Py_ssize_t K,
    double* gW2T,           # OUT (K, H) (z.T @ dy).T
    double* gb2,            # OUT (K,)   sum(dy)
    double* gb1,            # OUT (H,)   sum(dz1)
) noexcept nogil:
    """The sums over the batch rows, in row order, vectorised over units."""
    cdef Py_ssize_t b, j, k
    cdef double c
    for j in range(H * K):
        gW2T[j] = 0.0
    for k in range(K):
        gb2[k] = 0.0
    for j in range(H):
        gb1[j] = 0.0
    for b in range(B):
        for k in range(K):
            c = dy[b * K + k]
            gb2[k] += c
            for j in range(H):
                gW2T[k * H + j] += c * z[b * H + j]
        for j in range(H):
            gb1[j] += dz1[b * H + j]


cdef inline void transpose(
    const double* a, Py_ssize_t rows, Py_ssize_t cols, double* out,
) noexcept nogil:
    cdef Py_ssize_t r, c
    for r in range(rows):
        for c in range(cols):
            out[c * rows + r] = a[r * cols + c]


cdef struct Columns:
    # A batch of rows stored column by column (CSC) for x.T @ dz1.
    Py_ssize_t* start       # (D + 1,) where each column's entries start
    Py_ssize_t* fill        # (D,)     scratch while filling
    int* rows               # (nnz,)   the batch row of each entry
    double* vals            # (nnz,)   its value


cdef inline void columns_from_rows(
    const floating* values, const int* indices, const int64_t* indptr,
    const Py_ssize_t* batch, Py_ssize_t B, Py_ssize_t D, Columns* cols,
) noexcept nogil:
    """Transpose the batch rows ``batch`` of a CSR matrix into ``cols``."""
    cdef Py_ssize_t b, n, i
    for i in range(D + 1):
        cols.start[i] = 0
    for b in range(B):
        for n in range(indptr[batch[b]], indptr[batch[b] + 1]):
            cols.start[indices[n] + 1] += 1
    for i in range(D):
        cols.start[i + 1] += cols.start[i]
        cols.fill[i] = cols.start[i]
    for b in range(B):
        for n in range(indptr[batch[b]], indptr[batch[b] + 1]):
            i = indices[n]
            cols.rows[cols.fill[i]] = <int> b
            cols.vals[cols.fill[i]] = values[n]
            cols.fill[i] += 1


def gradient(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) labels in [0, K)
    const double[:, ::1] W1,      # IN  (D, H)
    const double[::1] b1,         # IN  (H,)
    const double[:, ::1] W2,      # IN  (H, K)
    const double[::1] b2,         # IN  (K,)
    double[:, ::1] gW1,           # OUT (D, H)
    double[::1] gb1,              # OUT (H,)
    double[:, ::1] gW2,           # OUT (H, K)
    double[::1] gb2,              # OUT (K,)
    int n_threads,
):
    """The book's backprop gradient of the mean loss, into gW1 ... gb2."""
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t H = W1.shape[1], K = W2.shape[1]
    cdef Py_ssize_t b, i, nnz = 0
    for b in range(N):
        for i in range(D):
            nnz += x[b, i] != 0.0
    # Scratch: O(N (H + K) + nnz(x)); x in CSR then CSC form.
    cdef double[:, ::1] z = np.empty((N, H))
    cdef double[:, ::1] dy = np.empty((N, K))
    cdef double[:, ::1] dz1 = np.empty((N, H))
    cdef double[:, ::1] W2T = np.empty((K, H))
    cdef double[:, ::1] gW2T = np.empty((K, H))
    cdef double[::1] row_vals = np.empty(nnz + 1)
    cdef int[::1] row_cols = np.empty(nnz + 1, dtype=np.intc)
    cdef int64_t[::1] indptr = np.empty(N + 1, dtype=np.int64)
    cdef Py_ssize_t[::1] batch = np.arange(N, dtype=np.intp)
    cdef Py_ssize_t[::1] col_start = np.empty(D + 1, dtype=np.intp)
    cdef Py_ssize_t[::1] col_fill = np.empty(D, dtype=np.intp)
    cdef int[::1] col_rows = np.empty(nnz + 1, dtype=np.intc)
    cdef double[::1] col_vals = np.empty(nnz + 1)
    cdef Columns cols
    cols.start = &col_start[0]
    cols.fill = &col_fill[0]
    cols.rows = &col_rows[0]
    cols.vals = &col_vals[0]
    with nogil:
        indptr[0] = 0
        nnz = 0
        for b in range(N):
            nnz += gather_nonzeros(&x[b, 0], D, &row_vals[nnz], &row_cols[nnz])
            indptr[b + 1] = nnz
        transpose(&W2[0, 0], H, K, &W2T[0, 0])
        for b in prange(N, schedule="static", num_threads=n_threads):
            logits_sparse_row(&row_vals[indptr[b]], &row_cols[indptr[b]],
                              indptr[b + 1] - indptr[b], &W1[0, 0], &b1[0],
                              &W2[0, 0], &b2[0], H, K, &z[b, 0], &dy[b, 0])
            output_delta_row(&dy[b, 0], K, t[b], <double> N)
            hidden_delta_row(&z[b, 0], &dy[b, 0], &W2T[0, 0], H, K, &dz1[b, 0])
        output_gradients(&z[0, 0], &dy[0, 0], &dz1[0, 0], N, H, K,
                         &gW2T[0, 0], &gb2[0], &gb1[0])
        transpose(&gW2T[0, 0], K, H, &gW2[0, 0])
        columns_from_rows(&row_vals[0], &row_cols[0], &indptr[0], &batch[0],
                          N, D, &cols)
        for i in prange(D, schedule="static", num_threads=n_threads):
            combine_rows(&col_vals[col_start[i]], &col_rows[col_start[i]],
                         col_start[i + 1] - col_start[i], &dz1[0, 0], H,
                         &gW1[i, 0])


cdef inline Py_ssize_t update_into(
    const double* p, const double* g, double lr, Py_ssize_t n, double* out,
) noexcept nogil:
    """out = p - lr * g (the book's update); returns how many are not finite."""
    cdef Py_ssize_t j, bad = 0
    for j in range(n):
        out[j] = p[j] - lr * g[j]
        bad += not isfinite(out[j])
    return bad


cdef inline void swap(double* a, double* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double tmp
    for j in range(n):
        tmp = a[j]
        a[j] = b[j]
        b[j] = tmp


@cython.final  # direct calls to its cdef methods, no vtable
cdef class SGDTrainer:
    """The book's SGD step on a training set kept in CSR form, fused.

    ``step(batch)`` does, for the rows ``batch`` of the training set, in one
    GIL-free call: forward, backward, the book's update ``p -= lr * g`` of
    the arrays given (in place, but only if every updated value is finite)
    and the batch loss after the update.

    Parameters
    ----------
    indptr, indices, values : arrays
        The training inputs in CSR form (int64, C int, float32/float64).
    labels : intp array
        Class of each training row.
    W1, b1, W2, b2 : float64 C-contiguous arrays
        The network's parameters, updated in place.
    batch_size : int
    learning_rate : float
    n_threads : int
    """

    cdef const int64_t[::1] indptr
    cdef const int[::1] indices
    cdef const float[::1] values32
    cdef const double[::1] values64
    cdef bint is32
    cdef const Py_ssize_t[::1] labels
    cdef double[:, ::1] W1
    cdef double[::1] b1
    cdef double[:, ::1] W2
    cdef double[::1] b2
    cdef Py_ssize_t B, D, H, K, n_touched
    cdef double lr
    cdef int n_threads
    # workspace
    cdef double[:, ::1] z, dy, dz1, newW1, logits
    cdef double[:, ::1] W2T, gW2T, gW2, newW2
    cdef double[::1] gb1, gb2, newb1, newb2, row_loss
    cdef Py_ssize_t[::1] col_start, col_fill, touched
    cdef int[::1] col_rows
    cdef double[::1] col_vals

    def __init__(self, indptr, indices, values, labels, W1, b1, W2, b2,
                 Py_ssize_t batch_size, double learning_rate, int n_threads):
        self.indptr = indptr
        self.indices = indices
        self.is32 = values.dtype == np.float32
        if self.is32:
            self.values32 = values
        else:
            self.values64 = values
        self.labels = labels
        self.W1, self.b1, self.W2, self.b2 = W1, b1, W2, b2
        self.B, self.D = batch_size, W1.shape[0]
        self.H, self.K = W1.shape[1], W2.shape[1]
        self.lr = learning_rate
        self.n_threads = n_threads
        cdef Py_ssize_t B = self.B, D = self.D, H = self.H, K = self.K
        row_nnz = np.diff(np.asarray(indptr))
        max_nnz = B * int(row_nnz.max(initial=0)) + 1
        self.z, self.dz1 = np.empty((B, H)), np.empty((B, H))
        self.dy, self.logits = np.empty((B, K)), np.empty((B, H + K))
        self.newW1 = np.empty((D, H))
        self.gW2, self.newW2 = np.empty((H, K)), np.empty((H, K))
        self.W2T, self.gW2T = np.empty((K, H)), np.empty((K, H))
        self.gb1, self.newb1 = np.empty(H), np.empty(H)
        self.gb2, self.newb2 = np.empty(K), np.empty(K)
        self.row_loss = np.empty(B)
        self.col_start = np.empty(D + 1, dtype=np.intp)
        self.col_fill = np.empty(D, dtype=np.intp)
        self.touched = np.empty(D, dtype=np.intp)
        self.col_rows = np.empty(max_nnz, dtype=np.intc)
        self.col_vals = np.empty(max_nnz)

    def step(self, const Py_ssize_t[::1] batch):
        """One SGD step on the training rows ``batch``.

        Returns
        -------
        (loss, n_bad) : (float, int)
            The batch loss after the update, and the number of parameters
            the update would have made non-finite.  When ``n_bad`` is not 0
            nothing was changed and ``loss`` is NaN; when ``loss`` is not
            finite the update was undone.
        """
        cdef Py_ssize_t n_bad
        cdef double loss
        if self.is32:
            n_bad = self._step(&self.values32[0], batch)
        else:
            n_bad = self._step(&self.values64[0], batch)
        if n_bad:
            return float("nan"), n_bad
        with nogil:
            loss = self._batch_loss(batch)
            if not isfinite(loss):
                self._swap()  # back to the parameters before the update
        return loss, 0

    cdef Py_ssize_t _step(self, const floating* values,
                          const Py_ssize_t[::1] batch):
        cdef Py_ssize_t B = self.B, D = self.D, H = self.H, K = self.K
        cdef Py_ssize_t b, i, n, row, n_touched = 0, bad = 0
        cdef double lr = self.lr
        cdef int n_threads = self.n_threads  # no attribute lookup in prange
        cdef Columns cols
        cols.start = &self.col_start[0]
        cols.fill = &self.col_fill[0]
        cols.rows = &self.col_rows[0]
        cols.vals = &self.col_vals[0]
        with nogil:
            # forward, dy and dz1, parallel over the batch rows
            transpose(&self.W2[0, 0], H, K, &self.W2T[0, 0])
            for b in prange(B, schedule="static", num_threads=n_threads):
                row = batch[b]
                self._logits(values, row, &self.z[b, 0], &self.dy[b, 0])
                output_delta_row(&self.dy[b, 0], K, self.labels[row], <double> B)
                hidden_delta_row(&self.z[b, 0], &self.dy[b, 0], &self.W2T[0, 0],
                                 H, K, &self.dz1[b, 0])
            output_gradients(&self.z[0, 0], &self.dy[0, 0], &self.dz1[0, 0],
                             B, H, K, &self.gW2T[0, 0], &self.gb2[0],
                             &self.gb1[0])
            transpose(&self.gW2T[0, 0], K, H, &self.gW2[0, 0])
            columns_from_rows(values, &self.indices[0], &self.indptr[0],
                              &batch[0], B, D, &cols)
            for i in range(D):
                if cols.start[i + 1] > cols.start[i]:
                    self.touched[n_touched] = i
                    n_touched += 1
            # candidate W1 rows: W1[i] - lr * (x.T @ dz1)[i], touched rows only
            for n in prange(n_touched, schedule="static",
                            num_threads=n_threads):
                i = self.touched[n]
                combine_rows(&self.col_vals[cols.start[i]],
                             &self.col_rows[cols.start[i]],
                             cols.start[i + 1] - cols.start[i],
                             &self.dz1[0, 0], H, &self.newW1[i, 0])
                bad += update_into(&self.W1[i, 0], &self.newW1[i, 0], lr, H,
                                   &self.newW1[i, 0])
            bad += update_into(&self.W2[0, 0], &self.gW2[0, 0], lr, H * K,
                               &self.newW2[0, 0])
            bad += update_into(&self.b1[0], &self.gb1[0], lr, H, &self.newb1[0])
            bad += update_into(&self.b2[0], &self.gb2[0], lr, K, &self.newb2[0])
            self.n_touched = n_touched
            if bad == 0:  # commit; the old values stay in the scratch
                self._swap()
        return bad

    cdef void _swap(self) noexcept nogil:
        """Exchange the parameters with the updated values of the step."""
        cdef Py_ssize_t n
        for n in range(self.n_touched):
            swap(&self.W1[self.touched[n], 0], &self.newW1[self.touched[n], 0],
                 self.H)
        swap(&self.W2[0, 0], &self.newW2[0, 0], self.H * self.K)
        swap(&self.b1[0], &self.newb1[0], self.H)
        swap(&self.b2[0], &self.newb2[0], self.K)

    cdef inline void _logits(self, const floating* values, Py_ssize_t row,
                             double* z1, double* a2) noexcept nogil:
        """Forward pass of training row ``row`` with the current parameters."""
        logits_sparse_row(
            values + self.indptr[row], &self.indices[self.indptr[row]],
            self.indptr[row + 1] - self.indptr[row], &self.W1[0, 0],
            &self.b1[0], &self.W2[0, 0], &self.b2[0], self.H, self.K, z1, a2)

    cdef double _batch_loss(self, const Py_ssize_t[::1] batch) noexcept nogil:
        if self.is32:
            return self._loss(&self.values32[0], batch)
        return self._loss(&self.values64[0], batch)

    cdef double _loss(self, const floating* values,
                      const Py_ssize_t[::1] batch) noexcept nogil:
        cdef Py_ssize_t B = self.B, H = self.H, K = self.K, b, row
        cdef int n_threads = self.n_threads
        cdef double total = 0.0
        for b in prange(B, schedule="static", num_threads=n_threads):
            row = batch[b]
            self._logits(values, row, &self.logits[b, 0], &self.logits[b, H])
            self.row_loss[b] = cross_entropy_row(&self.logits[b, H], K,
                                                 self.labels[row])
        for b in range(B):
            total += self.row_loss[b]
        return total / B


def to_csr(const floating[:, ::1] x):
    """``x`` in CSR form: (indptr int64, indices C int, values x.dtype).

    Two passes, no temporary larger than the result.
    """
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1], b, i, nnz = 0
    indptr_arr = np.empty(N + 1, dtype=np.int64)
    cdef int64_t[::1] indptr = indptr_arr
    with nogil:
        indptr[0] = 0
        for b in range(N):
            for i in range(D):
                nnz += x[b, i] != 0.0
            indptr[b + 1] = nnz
    indices_arr = np.empty(nnz, dtype=np.intc)
    values_arr = np.empty(nnz, dtype=np.asarray(x).dtype)
    cdef int[::1] indices = indices_arr
    cdef floating[::1] values = values_arr
    nnz = 0
    with nogil:
        for b in range(N):
            for i in range(D):
                if x[b, i] != 0.0:
                    indices[nnz] = <int> i
                    values[nnz] = x[b, i]
                    nnz += 1
    return indptr_arr, indices_arr, values_arr
