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
book's update ``p -= lr * g`` in place -- only to the W1 rows whose pixel
is nonzero in the batch, the others having a zero gradient -- keeping the
old values, and evaluates the book's post-update batch loss; it undoes the
update when a new value or that loss is NaN or infinite.  Every output
element is summed by one thread in a fixed order.
"""

import numpy as np

cimport cython
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport NAN, isfinite
from libc.stdint cimport int64_t
from libc.stdlib cimport free
from libc.string cimport memcpy

from _common cimport (combine_rows, count_nonzeros, cross_entropy_row,
                      gather_nonzeros, logits_sparse_row, mf_prefetch,
                      mf_vector_matrix, scratch_rows, softmax_row)

include "_simd.pxi"  # simd(), simd_variants(), use_simd()


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
    """One row of dz1 = (1 - z) z (dy @ W2.T)."""
    cdef Py_ssize_t j
    mf_vector_matrix(dy, K, W2T, H, dz1)
    for j in range(H):
        dz1[j] = ((1.0 - z[j]) * z[j]) * dz1[j]


cdef inline void batch_sums(
    const double* z,        # IN  (B, H) sigmoid(a1)
    const double* dy,       # IN  (B, K)
    const double* dz1,      # IN  (B, H)
    const double* ones,     # IN  (B,)   1.0
    Py_ssize_t B,
    Py_ssize_t H,
    Py_ssize_t K,
    double* dyT,            # scratch (K, B)
    double* gW2T,           # scratch (K, H)
    double* gW2,            # OUT (H, K) z.T @ dy
    double* gb2,            # OUT (K,)   sum(dy)
    double* gb1,            # OUT (H,)   sum(dz1)
) noexcept nogil:
    """The sums over the batch rows, each in row order."""
    cdef Py_ssize_t b, k
    transpose(dy, B, K, dyT)
    for k in range(K):
        mf_vector_matrix(dyT + k * B, B, z, H, gW2T + k * H)
        gb2[k] = 0.0
        for b in range(B):
            gb2[k] += dyT[k * B + b]
    transpose(gW2T, K, H, gW2)
    mf_vector_matrix(ones, B, dz1, H, gb1)


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
    Py_ssize_t* touched     # (D,)     the columns that have entries
    Py_ssize_t n_touched    #          how many


cdef inline void prefetch_row(
    const floating* values, const int* indices, const int64_t* indptr,
    Py_ssize_t row,
) noexcept nogil:
    """Ask for the cache lines of row ``row`` of a CSR matrix (a hint)."""
    cdef Py_ssize_t start = indptr[row], nnz = indptr[row + 1] - indptr[row]
    mf_prefetch(values + start, nnz, sizeof(floating))
    mf_prefetch(indices + start, nnz, sizeof(int))


cdef inline void columns_from_rows(
    const floating* values, const int* indices, const int64_t* indptr,
    const Py_ssize_t* rows, Py_ssize_t B, Py_ssize_t D, Columns* cols,
) noexcept nogil:
    """Transpose the rows ``rows`` of a CSR matrix into ``cols``, each
    column in batch order.

    The rows are scattered over the matrix: their cache lines are
    requested a few rows ahead of the first pass.
    """
    cdef Py_ssize_t b, n, i, n_touched = 0, ahead = 4
    for b in range(min(B, ahead)):
        prefetch_row(values, indices, indptr, rows[b])
    for i in range(D + 1):
        cols.start[i] = 0
    for b in range(B):
        if b + ahead < B:
            prefetch_row(values, indices, indptr, rows[b + ahead])
        for n in range(indptr[rows[b]], indptr[rows[b] + 1]):
            cols.start[indices[n] + 1] += 1
    for i in range(D):
        if cols.start[i + 1]:
            cols.touched[n_touched] = i
            n_touched += 1
        cols.start[i + 1] += cols.start[i]
        cols.fill[i] = cols.start[i]
    for b in range(B):
        for n in range(indptr[rows[b]], indptr[rows[b] + 1]):
            i = indices[n]
            cols.rows[cols.fill[i]] = <int> b
            cols.vals[cols.fill[i]] = values[n]
            cols.fill[i] += 1
    cols.n_touched = n_touched


cdef void forward_and_columns(
    const floating* values,   # IN  a CSR matrix: the nonzeros,
    const int* indices,       # IN  their columns
    const int64_t* indptr,    # IN  and where each row starts
    const Py_ssize_t* labels, # IN  the class of each row
    const Py_ssize_t* rows,   # IN  (B,) the batch: rows of the matrix
    const double* W1, const double* b1, const double* W2, const double* b2,
    Py_ssize_t B, Py_ssize_t D, Py_ssize_t H, Py_ssize_t K,
    double* W2T,              # scratch (K, H)
    double* z,                # OUT (B, H) sigmoid(a1)
    double* dy,               # OUT (B, K) (softmax(a2) - onehot(t)) / B
    double* dz1,              # OUT (B, H) sigmoid'(a1) * (dy @ W2.T)
    Columns* cols,            # OUT the batch column by column
    int n_threads,
) noexcept nogil:
    """The forward pass and per-row deltas of the backward pass, and the
    batch in column form for x.T @ dz1.

    One parallel loop: its first iteration transposes the batch while the
    other threads run the rows (dynamic schedule).
    """
    cdef Py_ssize_t it, b, row
    for b in range(B):
        mf_prefetch(indptr + rows[b], 2, sizeof(int64_t))
        mf_prefetch(labels + rows[b], 1, sizeof(Py_ssize_t))
    transpose(W2, H, K, W2T)
    for it in prange(B + 1, schedule="dynamic", chunksize=4,
                     num_threads=n_threads):
        if it == 0:
            columns_from_rows(values, indices, indptr, rows, B, D, cols)
        else:
            b = it - 1
            row = rows[b]
            logits_sparse_row(values + indptr[row], indices + indptr[row],
                              indptr[row + 1] - indptr[row], W1, b1, W2, b2,
                              H, K, z + b * H, dy + b * K)
            output_delta_row(dy + b * K, K, labels[row], <double> B)
            hidden_delta_row(z + b * H, dy + b * K, W2T, H, K, dz1 + b * H)


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
    with nogil:
        for b in range(N):
            nnz += count_nonzeros(&x[b, 0], D)
    # Scratch: O(N (H + K) + nnz(x)); x in CSR then CSC form.
    cdef double[:, ::1] z = np.empty((N, H))
    cdef double[:, ::1] dy = np.empty((N, K))
    cdef double[:, ::1] dz1 = np.empty((N, H))
    cdef double[:, ::1] W2T = np.empty((K, H))
    cdef double[:, ::1] gW2T = np.empty((K, H))
    cdef double[:, ::1] dyT = np.empty((K, N))
    cdef double[::1] ones = np.ones(N)
    cdef double[::1] row_vals = np.empty(nnz + 1)
    cdef int[::1] row_cols = np.empty(nnz + 1, dtype=np.intc)
    cdef int64_t[::1] indptr = np.empty(N + 1, dtype=np.int64)
    cdef Py_ssize_t[::1] rows = np.arange(N, dtype=np.intp)
    cdef Py_ssize_t[::1] col_start = np.empty(D + 1, dtype=np.intp)
    cdef Py_ssize_t[::1] col_fill = np.empty(D, dtype=np.intp)
    cdef Py_ssize_t[::1] touched = np.empty(D, dtype=np.intp)
    cdef int[::1] col_rows = np.empty(nnz + 1, dtype=np.intc)
    cdef double[::1] col_vals = np.empty(nnz + 1)
    cdef Columns cols
    cols.start = &col_start[0]
    cols.fill = &col_fill[0]
    cols.rows = &col_rows[0]
    cols.vals = &col_vals[0]
    cols.touched = &touched[0]
    with nogil:
        indptr[0] = 0
        nnz = 0
        for b in range(N):
            nnz += gather_nonzeros(&x[b, 0], D, &row_vals[nnz], &row_cols[nnz])
            indptr[b + 1] = nnz
        forward_and_columns(&row_vals[0], &row_cols[0], &indptr[0], &t[0],
                            &rows[0], &W1[0, 0], &b1[0], &W2[0, 0], &b2[0],
                            N, D, H, K, &W2T[0, 0], &z[0, 0], &dy[0, 0],
                            &dz1[0, 0], &cols, n_threads)
        batch_sums(&z[0, 0], &dy[0, 0], &dz1[0, 0], &ones[0], N, H, K,
                   &dyT[0, 0], &gW2T[0, 0], &gW2[0, 0], &gb2[0], &gb1[0])
        for i in prange(D, schedule="static", num_threads=n_threads):
            combine_rows(&col_vals[col_start[i]], &col_rows[col_start[i]],
                         col_start[i + 1] - col_start[i], &dz1[0, 0], H,
                         &gW1[i, 0])


cdef inline Py_ssize_t update_in_place(
    double* p, double* g, double lr, Py_ssize_t n,
) noexcept nogil:
    """The book's update p -= lr * g; g becomes the old p (for a rollback).

    Returns how many updated values are not finite.
    """
    cdef Py_ssize_t j, bad = 0
    cdef double old
    for j in range(n):
        old = p[j]
        p[j] = old - lr * g[j]
        g[j] = old
        bad += not isfinite(p[j])
    return bad


@cython.final  # direct calls to its cdef methods, no vtable
cdef class SGDTrainer:
    """The book's SGD step on a training set kept in CSR form, fused.

    ``step(batch)`` does, for the rows ``batch`` of the training set, in one
    GIL-free call: gather the rows, forward, backward, the book's update
    ``p -= lr * g`` of the arrays given (in place; undone if a value is not
    finite) and the batch loss after the update.

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
    cdef Py_ssize_t B, D, H, K
    cdef double lr
    cdef int n_threads
    # workspace: the batch column by column, ...
    cdef Columns cols
    cdef Py_ssize_t[::1] col_start, col_fill, touched
    cdef int[::1] col_rows
    cdef double[::1] col_vals
    # ... the backward pass, and the old parameters of the last update
    cdef double[:, ::1] z, dy, dyT, dz1, logits, oldW1, W2T, gW2T, oldW2
    cdef double[::1] ones, oldb1, oldb2, row_loss

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
        self.col_start = np.empty(D + 1, dtype=np.intp)
        self.col_fill = np.empty(D, dtype=np.intp)
        self.touched = np.empty(D, dtype=np.intp)
        self.col_rows = np.empty(max_nnz, dtype=np.intc)
        self.col_vals = np.empty(max_nnz)
        self.cols.start = &self.col_start[0]
        self.cols.fill = &self.col_fill[0]
        self.cols.rows = &self.col_rows[0]
        self.cols.vals = &self.col_vals[0]
        self.cols.touched = &self.touched[0]
        self.cols.n_touched = 0
        self.z, self.dz1 = np.empty((B, H)), np.empty((B, H))
        self.dy, self.dyT = np.empty((B, K)), np.empty((K, B))
        self.logits = np.empty((B, H + K))
        self.ones = np.ones(B)
        self.oldW1 = np.empty((D, H))
        self.W2T, self.gW2T = np.empty((K, H)), np.empty((K, H))
        self.oldW2 = np.empty((H, K))
        self.oldb1, self.oldb2 = np.empty(H), np.empty(K)
        self.row_loss = np.empty(B)

    def step(self, const Py_ssize_t[::1] batch):
        """One SGD step on the training rows ``batch``.

        Returns
        -------
        (loss, n_bad) : (float, int)
            The batch loss after the update, and the number of parameters
            the update made non-finite.  When ``n_bad`` is not 0, or the
            loss is not finite, the update was undone (``loss`` is NaN in
            the first case).
        """
        cdef Py_ssize_t n_bad
        cdef double loss
        with nogil:
            n_bad = self._step(&batch[0], NULL, &loss)
        return loss, n_bad

    def run(self, const Py_ssize_t[:, ::1] batches, double[::1] losses):
        """SGD steps on the rows ``batches[0]``, ``batches[1]`` ... in one
        call, until one fails.

        Returns
        -------
        (done, loss, n_bad) : (int, float, int)
            ``losses[:done]`` are the losses of the steps done.  When
            ``done < len(batches)``, step ``done`` failed and was undone:
            ``loss`` and ``n_bad`` say why, as for :meth:`step`.
        """
        cdef Py_ssize_t s, n_bad = 0
        cdef double loss = 0.0
        with nogil:
            for s in range(batches.shape[0]):
                n_bad = self._step(
                    &batches[s, 0],
                    &batches[s + 1, 0] if s + 1 < batches.shape[0] else NULL,
                    &loss)
                if n_bad or not isfinite(loss):
                    break
                losses[s] = loss
            else:
                s = batches.shape[0]
        return s, loss, n_bad

    cdef Py_ssize_t _step(self, const Py_ssize_t* batch,
                          const Py_ssize_t* next_batch,
                          double* loss) noexcept nogil:
        """One step (see ``step``): the loss after the update goes to
        ``loss``; returns the number of non-finite updated values.  The
        rows of ``next_batch`` (if not NULL) are requested meanwhile."""
        cdef Py_ssize_t n_bad
        if self.is32:
            n_bad = self._update(&self.values32[0], batch, next_batch)
        else:
            n_bad = self._update(&self.values64[0], batch, next_batch)
        if n_bad:
            self._rollback()
            loss[0] = NAN
            return n_bad
        if self.is32:
            loss[0] = self._loss(&self.values32[0], batch, next_batch)
        else:
            loss[0] = self._loss(&self.values64[0], batch, next_batch)
        if not isfinite(loss[0]):
            self._rollback()
        return 0

    cdef Py_ssize_t _update(self, const floating* values,
                            const Py_ssize_t* batch,
                            const Py_ssize_t* next_batch) noexcept nogil:
        """Forward, backward and the update, in place; the number of
        updated values that are not finite.  Where the rows of
        ``next_batch`` (if not NULL) start is requested meanwhile."""
        cdef Py_ssize_t B = self.B, D = self.D, H = self.H, K = self.K
        cdef Py_ssize_t it, i, b, bad = 0
        cdef double lr = self.lr
        cdef int n_threads = self.n_threads  # no attribute lookup in prange
        cdef Columns* cols = &self.cols
        forward_and_columns(
            values, &self.indices[0], &self.indptr[0], &self.labels[0], batch,
            &self.W1[0, 0], &self.b1[0], &self.W2[0, 0], &self.b2[0], B, D,
            H, K, &self.W2T[0, 0], &self.z[0, 0], &self.dy[0, 0],
            &self.dz1[0, 0], cols, n_threads)
        # The update; the first iteration does W2, b1 and b2, the others
        # a W1 row each: W1[i] -= lr * (x.T @ dz1)[i], pixels in the batch
        # only (the other rows of the gradient are 0).
        for it in prange(cols.n_touched + 1, schedule="dynamic", chunksize=8,
                         num_threads=n_threads):
            if it == 0:
                batch_sums(&self.z[0, 0], &self.dy[0, 0], &self.dz1[0, 0],
                           &self.ones[0], B, H, K, &self.dyT[0, 0],
                           &self.gW2T[0, 0], &self.oldW2[0, 0],
                           &self.oldb2[0], &self.oldb1[0])
                bad += update_in_place(&self.W2[0, 0], &self.oldW2[0, 0], lr,
                                       H * K)
                bad += update_in_place(&self.b1[0], &self.oldb1[0], lr, H)
                bad += update_in_place(&self.b2[0], &self.oldb2[0], lr, K)
                if next_batch != NULL:
                    for b in range(B):
                        mf_prefetch(&self.indptr[next_batch[b]], 2,
                                    sizeof(int64_t))
                        mf_prefetch(&self.labels[next_batch[b]], 1,
                                    sizeof(Py_ssize_t))
            else:
                i = cols.touched[it - 1]
                combine_rows(cols.vals + cols.start[i], cols.rows + cols.start[i],
                             cols.start[i + 1] - cols.start[i],
                             &self.dz1[0, 0], H, &self.oldW1[it - 1, 0])
                bad += update_in_place(&self.W1[i, 0], &self.oldW1[it - 1, 0],
                                       lr, H)
        return bad

    cdef void _rollback(self) noexcept nogil:
        """Back to the parameters before the last update."""
        cdef Py_ssize_t n
        for n in range(self.cols.n_touched):
            memcpy(&self.W1[self.cols.touched[n], 0], &self.oldW1[n, 0],
                   self.H * sizeof(double))
        memcpy(&self.W2[0, 0], &self.oldW2[0, 0],
               self.H * self.K * sizeof(double))
        memcpy(&self.b1[0], &self.oldb1[0], self.H * sizeof(double))
        memcpy(&self.b2[0], &self.oldb2[0], self.K * sizeof(double))

    cdef double _loss(self, const floating* values, const Py_ssize_t* batch,
                      const Py_ssize_t* next_batch) noexcept nogil:
        """The book's mean loss over the batch rows (summed in order); the
        rows of ``next_batch`` (if not NULL) are requested meanwhile."""
        cdef Py_ssize_t B = self.B, H = self.H, K = self.K, b, row
        cdef const int64_t* indptr = &self.indptr[0]
        cdef const int* indices = &self.indices[0]
        cdef int n_threads = self.n_threads
        cdef double total = 0.0
        for b in prange(B, schedule="static", num_threads=n_threads):
            if next_batch != NULL:
                prefetch_row(values, indices, indptr, next_batch[b])
            row = batch[b]
            logits_sparse_row(
                values + indptr[row], indices + indptr[row],
                indptr[row + 1] - indptr[row], &self.W1[0, 0], &self.b1[0],
                &self.W2[0, 0], &self.b2[0], H, K, &self.logits[b, 0],
                &self.logits[b, H])
            self.row_loss[b] = cross_entropy_row(&self.logits[b, H], K,
                                                 self.labels[row])
        for b in range(B):
            total += self.row_loss[b]
        return total / B


def to_csr(const floating[:, ::1] x, int n_threads):
    """``x`` in CSR form: (indptr int64, indices C int, values x.dtype).

    Two passes over the rows (count, then gather), each parallel over rows;
    no temporary larger than the result.
    """
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1], b, n, nnz
    if D == 0:  # no columns: no nonzeros (and no x[b, 0] to point at)
        return (np.zeros(N + 1, dtype=np.int64), np.empty(0, dtype=np.intc),
                np.empty(0, dtype=np.asarray(x).dtype))
    indptr_arr = np.empty(N + 1, dtype=np.int64)
    cdef int64_t[::1] indptr = indptr_arr
    with nogil:
        indptr[0] = 0
        for b in prange(N, schedule="static", num_threads=n_threads):
            indptr[b + 1] = count_nonzeros(&x[b, 0], D)
        for b in range(N):
            indptr[b + 1] += indptr[b]
    indices_arr = np.empty(indptr[N], dtype=np.intc)
    values_arr = np.empty(indptr[N], dtype=np.asarray(x).dtype)
    cdef int[::1] indices = indices_arr
    cdef floating[::1] values = values_arr
    # per thread: where a row's nonzeros are (gather_nonzeros writes one
    # place beyond them, which would race with the next row's thread if
    # written in place); their values are copied from x, bit for bit
    cdef double* val = <double*> scratch_rows(n_threads, D, sizeof(double))
    cdef int* idx
    cdef int* row_idx
    try:
        idx = <int*> scratch_rows(n_threads, D, sizeof(int))
        try:
            for b in prange(N, nogil=True, schedule="static",
                            num_threads=n_threads):
                row_idx = idx + threadid() * D
                nnz = gather_nonzeros(&x[b, 0], D, val + threadid() * D,
                                      row_idx)
                for n in range(nnz):
                    indices[indptr[b] + n] = row_idx[n]
                    values[indptr[b] + n] = x[b, row_idx[n]]
        finally:
            free(idx)
    finally:
        free(val)
    return indptr_arr, indices_arr, values_arr
