"""Compiled backpropagation and the fused SGD step used by ``train``.

Private module: the public, validating API is ``TwoLayerNet.gradient`` and
``mnist_fast.train``.

The arithmetic is the book's ``TwoLayerNet.gradient``::

    dy = (softmax(a2) - onehot(t)) / N
    gW2 = z1.T @ dy,  gb2 = sum(dy),  da1 = dy @ W2.T
    dz1 = (1 - sigmoid(a1)) * sigmoid(a1) * da1     (ch. 4)
       or 0 where a1 <= 0, else da1                 (ch. 5's Relu)
    gW1 = x.T @ dz1,  gb1 = sum(dz1)

with x @ W1 and x.T @ dz1 computed over the nonzero pixels only: by blocks
of rows with a mask per pixel (``gradient``, see _common.Block), or over
the batch gathered row by row and stored column by column (the fused
step).  The fused step then applies the
book's update ``p -= lr * g`` in place -- only to the W1 rows whose pixel
is nonzero in the batch, the others having a zero gradient -- keeping the
old values, and evaluates the book's post-update batch loss; it undoes the
update when a new value or that loss is NaN or infinite.  Every output
element is summed by one thread in a fixed order.
"""

import numpy as np

cimport cython
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport NAN, isfinite
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy, memset

from _common cimport (RELU, ROW_BLOCK, Block, Grads, Net, activate_rows,
                      block_hidden,
                      block_input_gradient,
                      block_masks, check_rows, combine_rows, count_nonzeros,
                      cross_entropy_row, gather_nonzeros, grads_of,
                      logits_sparse_row, mf_barrier,
                      mf_all_finite_f64, mf_prefetch, mf_team_size,
                      free_scratch, hidden_ld, mf_update_in_place,
                      mf_vector_matrix, n_blocks, net_of,
                      output_rows, scratch_rows, softmax_row,
                      softmax_rows)

from _rows cimport N_CODES, Rows, decode_row, prefetch_stored_row, rows_of

include "_simd.pxi"  # simd(), simd_variants(), use_simd()


cdef inline void output_delta_row(
    double* a2,             # IN/OUT (K,) logits in, dy = (y - t) / N out
    Py_ssize_t K,
    Py_ssize_t t,
    double n,
) noexcept nogil:
    softmax_row(a2, K)
    probability_delta_row(a2, K, t, n)


cdef inline void probability_delta_row(
    double* y,              # IN/OUT (K,) probabilities in, (y - t) / N out
    Py_ssize_t K,
    Py_ssize_t t,
    double n,
) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(K):
        y[k] = (y[k] - (1.0 if k == t else 0.0)) / n


cdef inline void hidden_delta_row(
    const double* z,        # IN  (H,)   the hidden layer of one row
    const double* dy,       # IN  (K,)   its dy
    const double* W2T,      # IN  (K, H) W2 transposed
    const Net* net,         # IN  H, K and the activation
    double* dz1,            # OUT (H,)   activation'(a1) * (dy @ W2.T)
) noexcept nogil:
    """One row of dz1 from da1 = dy @ W2.T: (1 - z) z da1 for the
    sigmoid; for the ReLU the book's mask, 0 where a1 <= 0 and da1 where
    not -- where z = relu(a1) <= 0, as z is 0 exactly where a1 <= 0 (and
    NaN where a1 is: the book's mask passes da1 there)."""
    cdef Py_ssize_t j, H = net.H
    mf_vector_matrix(dy, net.K, W2T, H, H, dz1)
    if net.activation == RELU:
        for j in range(H):
            dz1[j] = 0.0 if z[j] <= 0.0 else dz1[j]
    else:
        for j in range(H):
            dz1[j] = ((1.0 - z[j]) * z[j]) * dz1[j]


cdef inline void batch_sums(
    Work* w,                # IN  z, dy, dz1, ones; scratch dyT, gW2T
    Py_ssize_t B,
    const Net* net,
    double* gW2,            # OUT (H, K) z.T @ dy
    double* gb2,            # OUT (K,)   sum(dy)
    double* gb1,            # OUT (H,)   sum(dz1)
) noexcept nogil:
    """The sums over the batch rows, each in row order."""
    cdef Py_ssize_t b, k, H = net.H, K = net.K
    transpose(w.dy, B, K, w.dyT)
    for k in range(K):
        mf_vector_matrix(w.dyT + k * B, B, w.z, w.ld, H, w.gW2T + k * H)
        gb2[k] = 0.0
        for b in range(B):
            gb2[k] += w.dyT[k * B + b]
    transpose(w.gW2T, K, H, gW2)
    mf_vector_matrix(w.ones, B, w.dz1, w.ld, H, gb1)


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


cdef struct Csr:
    # A batch of rows compressed (CSR) with their classes, as decode_row
    # gives them; the values travel apart, as a float or double pointer.
    int64_t* indptr         # (B + 1,) where each row starts
    int* indices            # (nnz,)   the column of each nonzero
    Py_ssize_t* labels      # (B,)     the class of each row


cdef struct Work:
    # The forward and backward pass of a batch of B rows.
    double* W2T             # (K, H) W2 transposed
    double* z               # (B, H) activation(a1), rows ld apart
    double* dy              # (B, K) (softmax(a2) - onehot(t)) / B
    double* dz1             # (B, H) activation'(a1) * (dy @ W2.T), rows ld
                            #        apart
    Py_ssize_t ld           # H, or more to start each row on a cache line
    double* dyT             # (K, B) scratch
    double* gW2T            # (K, H) scratch
    double* ones            # (B,)   1.0
    Columns cols            # the batch column by column
    Csr rows                # the batch row by row
    void* values            # (nnz,) the values of its nonzeros (x's type)


@cython.final
cdef class Workspace:
    """The arrays behind a ``Work`` for batches of up to ``B`` rows with at
    most ``max_nnz`` nonzeros in all."""

    cdef double[:, ::1] W2T, z, dy, dz1, dyT, gW2T
    cdef double[::1] ones, col_vals, row_vals
    cdef Py_ssize_t[::1] col_start, col_fill, touched, row_labels
    cdef int[::1] col_rows, row_cols
    cdef int64_t[::1] row_start
    cdef Work work

    def __init__(self, Py_ssize_t B, Py_ssize_t D, Py_ssize_t H, Py_ssize_t K,
                 Py_ssize_t max_nnz):
        self.W2T, self.gW2T = np.empty((K, H)), np.empty((K, H))
        self.z, self.dz1 = np.empty((B, H)), np.empty((B, H))
        self.dy, self.dyT = np.empty((B, K)), np.empty((K, B))
        self.ones = np.ones(B)
        self.col_start = np.empty(D + 1, dtype=np.intp)
        self.col_fill = np.empty(D, dtype=np.intp)
        self.touched = np.empty(D, dtype=np.intp)
        self.col_rows = np.empty(max_nnz + 1, dtype=np.intc)
        self.col_vals = np.empty(max_nnz + 1)
        self.row_start = np.empty(B + 1, dtype=np.int64)
        self.row_cols = np.empty(max_nnz + 1, dtype=np.intc)
        self.row_vals = np.empty(max_nnz + 1)  # room for doubles or floats
        self.row_labels = np.empty(B, dtype=np.intp)
        cdef Work* w = &self.work
        w.W2T, w.gW2T = &self.W2T[0, 0], &self.gW2T[0, 0]
        w.z, w.dz1 = &self.z[0, 0], &self.dz1[0, 0]
        w.dy, w.dyT = &self.dy[0, 0], &self.dyT[0, 0]
        w.ones = &self.ones[0]
        w.cols.start, w.cols.fill = &self.col_start[0], &self.col_fill[0]
        w.cols.rows, w.cols.vals = &self.col_rows[0], &self.col_vals[0]
        w.cols.touched = &self.touched[0]
        w.cols.n_touched = 0
        w.rows.indptr, w.rows.indices = &self.row_start[0], &self.row_cols[0]
        w.rows.labels = &self.row_labels[0]
        w.values = &self.row_vals[0]
        w.ld = H


cdef inline void columns_from_rows(
    const floating* values,   # IN  the nonzeros of the batch's CSR form
    const Csr* csr,           # IN  its B rows
    Py_ssize_t B,
    Py_ssize_t D,
    Columns* cols,            # OUT the batch column by column
) noexcept nogil:
    """Transpose the rows of a CSR matrix into ``cols``, each column in
    batch order."""
    cdef const int64_t* indptr = csr.indptr
    cdef const int* indices = csr.indices
    cdef Py_ssize_t b, n, i, n_touched = 0
    for i in range(D + 1):
        cols.start[i] = 0
    for n in range(indptr[B]):
        cols.start[indices[n] + 1] += 1
    for i in range(D):
        if cols.start[i + 1]:
            cols.touched[n_touched] = i
            n_touched += 1
        cols.start[i + 1] += cols.start[i]
        cols.fill[i] = cols.start[i]
    for b in range(B):
        for n in range(indptr[b], indptr[b + 1]):
            i = indices[n]
            cols.rows[cols.fill[i]] = <int> b
            cols.vals[cols.fill[i]] = values[n]
            cols.fill[i] += 1
    cols.n_touched = n_touched


cdef void forward_and_columns(
    const floating* values,   # IN  (nnz,) w.rows' values
    Py_ssize_t B,
    const Net* net,           # IN  the parameters
    Work* w,                  # IN  the batch (w.rows)
                              # OUT z, dy, dz1 and the batch's columns
    int n_threads,
) noexcept nogil:
    """The forward pass and per-row deltas of the backward pass, and the
    batch in column form for x.T @ dz1.

    One parallel loop: its first iteration transposes the batch while the
    other threads run the rows (dynamic schedule).
    """
    cdef Py_ssize_t it, b, H = net.H, K = net.K
    cdef const Csr* csr = &w.rows
    cdef const int64_t* indptr = csr.indptr
    transpose(net.W2, H, K, w.W2T)
    for it in prange(B + 1, schedule="dynamic", chunksize=4,
                     num_threads=n_threads):
        if it == 0:
            columns_from_rows(values, csr, B, net.D, &w.cols)
        else:
            b = it - 1
            logits_sparse_row(values + indptr[b], csr.indices + indptr[b],
                              indptr[b + 1] - indptr[b], net,
                              w.z + b * H, w.dy + b * K)
            output_delta_row(w.dy + b * K, K, csr.labels[b], <double> B)
            hidden_delta_row(w.z + b * H, w.dy + b * K, w.W2T, net,
                             w.dz1 + b * H)


cdef struct Arena:
    # Scratch carved from one allocation, every piece on a cache line of
    # its own; with base NULL, only the size is counted.
    char* base
    size_t used


cdef inline void* take(Arena* a, size_t size) noexcept nogil:
    cdef void* p = NULL if a.base == NULL else a.base + a.used
    a.used += (size + 63) & ~(<size_t> 63)
    return p


cdef struct Batch:
    # A batch of N rows in blocks, for the pixel-by-pixel passes.
    Py_ssize_t nb
    Block* blocks           # (nb,)
    Work work               # z, dy, dz1 (rows ld apart) and the sums' scratch


cdef inline void batch_layout(
    Arena* a, Batch* s, Py_ssize_t N, const Net* net,
) noexcept nogil:
    """Place the arrays of ``s`` for N rows (with ``s.nb`` and ``s.work.ld``
    set) in ``a``."""
    cdef Py_ssize_t k, D = net.D, H = net.H, K = net.K, ld = s.work.ld
    cdef unsigned long long* masks
    s.blocks = <Block*> take(a, s.nb * sizeof(Block))
    masks = <unsigned long long*> take(a, s.nb * D * sizeof(unsigned long long))
    s.work.z = <double*> take(a, N * ld * sizeof(double))
    s.work.dz1 = <double*> take(a, N * ld * sizeof(double))
    s.work.dy = <double*> take(a, N * K * sizeof(double))
    s.work.W2T = <double*> take(a, K * H * sizeof(double))
    s.work.dyT = <double*> take(a, K * N * sizeof(double))
    s.work.gW2T = <double*> take(a, K * H * sizeof(double))
    s.work.ones = <double*> take(a, N * sizeof(double))
    if a.base == NULL:
        return
    for k in range(s.nb):
        s.blocks[k].mask = masks + k * D
    for k in range(N):
        s.work.ones[k] = 1.0


cdef enum:
    # Values of W1 per chunk of the gradient's scan of them (check_w1):
    # small enough that the threads share a wide layer's W1 evenly, large
    # enough that taking a chunk costs nothing beside its scan.
    W1_CHUNK = 8192


cdef inline void block_deltas(
    Work* w, const Block* blk, const Net* net, const Py_ssize_t* t, double n,
) noexcept nogil:
    """A block's rows of z = activation(a1 + b1) (a1 in z), dy and dz1."""
    cdef Py_ssize_t b, f = blk.first
    activate_rows(w.z + f * w.ld, w.ld, blk.n, net)
    output_rows(w.z + f * w.ld, w.ld, blk.n, net, w.dy + f * net.K, net.K)
    softmax_rows(w.dy + f * net.K, blk.n, net.K)
    for b in range(f, f + blk.n):
        probability_delta_row(w.dy + b * net.K, net.K, t[b], n)
        hidden_delta_row(w.z + b * w.ld, w.dy + b * net.K, w.W2T, net,
                         w.dz1 + b * w.ld)


def gradient(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) labels in [0, K)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    int activation,               # IN  the hidden layer's (an Activation)
    dict grads,                   # OUT W1, b1, W2, b2 arrays of their shapes
    int n_threads,
    bint check_w1=False,          # IN  whether to scan W1's values too
):
    """The book's backprop gradient of the mean loss, into ``grads``.

    One parallel region: each thread takes its blocks of rows (see
    _common.Block): their pixel masks, x @ W1 pixel by pixel, and the rows'
    deltas, then (``check_w1``) the next chunk of W1's values to scan, as
    long as there are chunks left; after a barrier, each thread sums
    x.T @ dz1 for its pixels over the blocks in order, and the last one the
    sums of z.T @ dy, dy and dz1.

    Returns whether every value of ``x`` is finite (read in the pass that
    builds the blocks' masks: the caller may leave that check to this),
    and with ``check_w1`` also every value of ``W1``: the scan of a wide
    layer's W1 (megabytes, beyond L2) then runs on the call's threads, the
    chunks taken by whichever thread is free (at a batch of one row, the
    threads without a block start on them at once), instead of on one
    thread before the call.
    """
    cdef Net net = net_of(params, activation)
    cdef Grads g = grads_of(grads, &net)
    check_rows(x.shape[1], &net)
    if t.shape[0] != x.shape[0]:
        raise ValueError("t needs one label per row of x")
    if n_threads < 1:
        raise ValueError("n_threads must be at least 1")
    cdef Py_ssize_t N = x.shape[0], D = net.D, H = net.H, K = net.K
    # the variables of the parallel region start initialised: OpenMP
    # copies them in (firstprivate), which compilers warn of otherwise
    cdef Py_ssize_t b, c, k = 0, ld, i0 = 0, i1 = 0
    cdef Py_ssize_t n_w1 = D * H
    cdef Py_ssize_t n_chunks = ((n_w1 + W1_CHUNK - 1) // W1_CHUNK
                                if check_w1 else 0)
    cdef int tid = 0, team = 1
    cdef Batch s
    cdef Block* blk = NULL
    cdef Arena a
    cdef unsigned char* w1_finite = NULL  # (n_chunks,) each chunk's answer
    cdef const floating* xp = &x[0, 0] if N else NULL
    s.nb = n_blocks(N, ROW_BLOCK, n_threads)
    s.work.ld = ld = hidden_ld(H)  # rows of z and dz1 on cache lines
    a.base, a.used = NULL, 0
    batch_layout(&a, &s, N, &net)
    take(&a, n_chunks)
    cdef char* raw = <char*> scratch_rows(1, a.used, 1)
    try:
        with nogil:
            a.base, a.used = raw, 0
            batch_layout(&a, &s, N, &net)
            w1_finite = <unsigned char*> take(&a, n_chunks)
            transpose(net.W2, H, K, s.work.W2T)
            with parallel(num_threads=n_threads):
                tid, team = threadid(), mf_team_size()
                for k in range(tid * s.nb // team, (tid + 1) * s.nb // team):
                    blk = &s.blocks[k]
                    blk.finite = block_masks(xp, D, blk, k, s.nb, N, D)
                    block_hidden(xp, D, blk, &net, s.work.z + blk.first * ld,
                                 ld)
                    block_deltas(&s.work, blk, &net, &t[0], <double> N)
                for c in prange(n_chunks, schedule="dynamic"):
                    w1_finite[c] = mf_all_finite_f64(
                        net.W1 + c * W1_CHUNK, min(<Py_ssize_t> W1_CHUNK,
                                                   n_w1 - c * W1_CHUNK))
                mf_barrier()
                i0, i1 = tid * D // team, (tid + 1) * D // team
                for k in range(s.nb):
                    blk = &s.blocks[k]
                    block_input_gradient(xp, D, blk, i0, i1,
                                         s.work.dz1 + blk.first * ld, ld, H,
                                         k > 0, g.W1)
                if s.nb == 0:  # no rows: x.T @ dz1 = 0
                    memset(g.W1 + i0 * H, 0, (i1 - i0) * H * sizeof(double))
                if tid == team - 1:
                    batch_sums(&s.work, N, &net, g.W2, g.b2, g.b1)
        for k in range(s.nb):
            if not s.blocks[k].finite:
                return False
        for c in range(n_chunks):
            if not w1_finite[c]:
                return False
        return True
    finally:
        free_scratch(raw)



@cython.final  # direct calls to its cdef methods, no vtable
cdef class SGDTrainer:
    """The book's SGD step on a training set kept in CSR form, fused.

    ``run(batches, losses)`` does, for the rows of each batch of the
    training set, in one GIL-free call: gather the rows, forward,
    backward, the book's update ``p -= lr * g`` of the arrays given (in
    place; undone if a value is not finite) and the batch loss after the
    update.

    Parameters
    ----------
    rows : object
        The training set: ``indptr``, ``indices``, ``codes`` and ``values``
        (float32/float64) of its CSR form (``to_csr``), ``t`` (intp) the
        class of each row.
    params : dict
        ``W1, b1, W2, b2``: float64 C-contiguous arrays, updated in place.
    activation : int
        The hidden layer's (an ``Activation`` of _common.pxd).
    batch_size : int
    learning_rate : float
    guard : float
        The book's guard inside the log of the loss.

    The thread count is an argument of each ``run`` (the thread policy
    may change it from one block of steps to the next).

    The steps work on a copy of ``W1`` whose rows start on cache lines
    (``ld1`` doubles apart, H rounded up to a line): the two passes of a
    step that add a row of ``W1`` per nonzero of the batch then load whole
    aligned vectors, none split across two lines.  ``run`` copies
    ``params["W1"]`` in when it starts and back when it returns.
    """

    cdef object rows  # holds the arrays of ``stored``
    cdef Rows stored
    cdef bint is32
    cdef const Py_ssize_t[::1] labels
    cdef double[:, ::1] W1
    cdef double[::1] b1
    cdef double[:, ::1] W2
    cdef double[::1] b2
    cdef double* own_W1     # (D, H) rows net.ld1 apart, what net.W1 points to
    cdef Net net
    cdef Py_ssize_t B
    cdef double lr, guard
    cdef int n_threads
    # the forward and backward pass, the post-update loss, and the old
    # parameters of the last update
    cdef Workspace space
    cdef double[:, ::1] logits, oldW1, oldW2
    cdef double[::1] oldb1, oldb2, row_loss

    def __init__(self, rows, dict params, int activation,
                 Py_ssize_t batch_size, double learning_rate, double guard):
        self.net = net_of(params, activation)
        self.net.ld1 = hidden_ld(self.net.H)  # rows on cache lines
        free_scratch(self.own_W1)  # (NULL unless __init__ runs again)
        self.own_W1 = NULL
        self.own_W1 = <double*> scratch_rows(1, self.net.D * self.net.ld1,
                                             sizeof(double))
        memset(self.own_W1, 0, self.net.D * self.net.ld1 * sizeof(double))
        self.net.W1 = self.own_W1
        self.W1, self.b1 = params["W1"], params["b1"]
        self.W2, self.b2 = params["W2"], params["b2"]
        self.rows, self.labels = rows, rows.t
        self.is32 = rows.values.dtype == np.float32
        if self.is32:
            self.stored = rows_of[float](rows, rows.values)
        else:
            self.stored = rows_of[double](rows, rows.values)
        if rows.indptr.shape[0] != self.labels.shape[0] + 1 or batch_size < 1:
            raise ValueError("rows or batch_size do not fit")
        self.B, self.lr, self.guard = batch_size, learning_rate, guard
        self.n_threads = 1
        cdef Py_ssize_t B = self.B, D = self.net.D, H = self.net.H
        cdef Py_ssize_t K = self.net.K
        row_nnz = np.diff(rows.indptr)
        self.space = Workspace(B, D, H, K, B * int(row_nnz.max(initial=0)))
        self.logits = np.empty((B, H + K))
        self.oldW1 = np.empty((D, H))
        self.oldW2 = np.empty((H, K))
        self.oldb1, self.oldb2 = np.empty(H), np.empty(K)
        self.row_loss = np.empty(B)

    def run(self, const Py_ssize_t[:, ::1] batches, double[::1] losses,
            int n_threads):
        """SGD steps on the rows ``batches[0]``, ``batches[1]`` ... in one
        call with ``n_threads`` threads, until one fails.

        Returns
        -------
        (done, loss, n_bad) : (int, float, int)
            ``losses[:done]`` are the losses after the updates of the steps
            done.  When ``done < len(batches)``, step ``done`` failed and
            was undone: it made ``n_bad`` parameters non-finite (``loss``
            is then NaN), or (``n_bad == 0``) its loss ``loss`` was not
            finite.
        """
        if batches.shape[1] != self.B or losses.shape[0] < batches.shape[0]:
            raise ValueError("batches must be (n, batch_size), losses (n,)")
        if n_threads < 1:
            raise ValueError("n_threads must be at least 1")
        self.n_threads = n_threads
        cdef Py_ssize_t s, n_bad = 0
        cdef double loss = 0.0
        with nogil:
            self._copy_W1(True)
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
            self._copy_W1(False)
        return s, loss, n_bad

    def __dealloc__(self):
        free_scratch(self.own_W1)

    cdef void _copy_W1(self, bint inward) noexcept nogil:
        """``params["W1"]`` into the steps' copy (``inward``), or back."""
        cdef Py_ssize_t i, H = self.net.H, ld1 = self.net.ld1
        for i in range(self.net.D):
            if inward:
                memcpy(self.own_W1 + i * ld1, &self.W1[i, 0], H * sizeof(double))
            else:
                memcpy(&self.W1[i, 0], self.own_W1 + i * ld1, H * sizeof(double))

    cdef Py_ssize_t _step(self, const Py_ssize_t* batch,
                          const Py_ssize_t* next_batch,
                          double* loss) noexcept nogil:
        """One step: the loss after the update goes to ``loss``; returns
        the number of non-finite updated values.  The rows of
        ``next_batch`` (if not NULL) are requested meanwhile."""
        if self.is32:
            return self._step_of(<float*> self.space.work.values, batch,
                                 next_batch, loss)
        return self._step_of(<double*> self.space.work.values, batch,
                             next_batch, loss)

    cdef Py_ssize_t _step_of(self, floating* values, const Py_ssize_t* batch,
                             const Py_ssize_t* next_batch,
                             double* loss) noexcept nogil:
        """``_step`` with the batch decoded into ``values`` (x's type)."""
        cdef Py_ssize_t n_bad
        self._decode(values, batch)
        n_bad = self._update(values, next_batch)
        if n_bad:
            self._rollback()
            loss[0] = NAN
            return n_bad
        loss[0] = self._loss(values, next_batch)
        if not isfinite(loss[0]):
            self._rollback()
        return 0

    cdef void _decode(self, floating* values,
                      const Py_ssize_t* batch) noexcept nogil:
        """The rows ``batch`` of the training set into the work's ``rows``
        and ``values`` (x's type)."""
        cdef Csr* rows = &self.space.work.rows
        cdef const Rows* stored = &self.stored
        cdef Py_ssize_t b, row, B = self.B
        cdef int n_threads = self.n_threads
        rows.indptr[0] = 0
        for b in range(B):
            row = batch[b]
            rows.indptr[b + 1] = (rows.indptr[b] + stored.indptr[row + 1]
                                  - stored.indptr[row])
            rows.labels[b] = self.labels[row]
        for b in prange(B, schedule="static", num_threads=n_threads):
            decode_row(stored, batch[b], values + rows.indptr[b],
                       rows.indices + rows.indptr[b])

    cdef Py_ssize_t _update(self, const floating* values,
                            const Py_ssize_t* next_batch) noexcept nogil:
        """Forward, backward and the update of the decoded batch (its
        ``values``), in place; the number of updated values that are not
        finite.  Where the rows of ``next_batch`` (if not NULL) start is
        requested meanwhile."""
        cdef Py_ssize_t B = self.B, H = self.net.H, K = self.net.K
        cdef Py_ssize_t it, i, b, n_bad, bad = 0
        cdef double lr = self.lr
        cdef int n_threads = self.n_threads  # no attribute lookup in prange
        cdef Work* w = &self.space.work
        cdef Columns* cols = &w.cols
        forward_and_columns(values, B, &self.net, w, n_threads)
        # The update; the first iteration does W2, b1 and b2, the others
        # a W1 row each: W1[i] -= lr * (x.T @ dz1)[i], pixels in the batch
        # only (the other rows of the gradient are 0).
        for it in prange(cols.n_touched + 1, schedule="dynamic", chunksize=8,
                         num_threads=n_threads):
            if it == 0:
                batch_sums(w, B, &self.net, &self.oldW2[0, 0], &self.oldb2[0],
                           &self.oldb1[0])
                n_bad = (mf_update_in_place(&self.W2[0, 0], &self.oldW2[0, 0],
                                            lr, H * K)
                         + mf_update_in_place(&self.b1[0], &self.oldb1[0], lr, H)
                         + mf_update_in_place(&self.b2[0], &self.oldb2[0], lr, K))
                if next_batch != NULL:
                    for b in range(B):
                        mf_prefetch(&self.stored.indptr[next_batch[b]], 2,
                                    sizeof(int64_t))
                        mf_prefetch(&self.labels[next_batch[b]], 1,
                                    sizeof(Py_ssize_t))
            else:
                i = cols.touched[it - 1]
                combine_rows(cols.vals + cols.start[i], cols.rows + cols.start[i],
                             cols.start[i + 1] - cols.start[i], w.dz1, H, H,
                             &self.oldW1[it - 1, 0])
                n_bad = mf_update_in_place(self.own_W1 + i * self.net.ld1,
                                           &self.oldW1[it - 1, 0], lr, H)
            # one reduction statement: Cython 3.0-3.1 rejects a reduction
            # variable updated in both branches of an if in a prange
            bad += n_bad
        return bad

    cdef void _rollback(self) noexcept nogil:
        """Back to the parameters before the last update."""
        cdef Py_ssize_t n, H = self.net.H
        cdef Columns* cols = &self.space.work.cols
        for n in range(cols.n_touched):
            memcpy(self.own_W1 + cols.touched[n] * self.net.ld1,
                   &self.oldW1[n, 0], H * sizeof(double))
        memcpy(&self.W2[0, 0], &self.oldW2[0, 0],
               H * self.net.K * sizeof(double))
        memcpy(&self.b1[0], &self.oldb1[0], H * sizeof(double))
        memcpy(&self.b2[0], &self.oldb2[0], self.net.K * sizeof(double))

    cdef double _loss(self, const floating* values,
                      const Py_ssize_t* next_batch) noexcept nogil:
        """The book's mean loss over the decoded batch (its ``values``),
        summed in order; the rows of ``next_batch`` (if not NULL) are
        requested meanwhile."""
        cdef Py_ssize_t B = self.B, H = self.net.H, K = self.net.K, b
        cdef const Csr* rows = &self.space.work.rows
        cdef const int64_t* indptr = rows.indptr
        cdef int n_threads = self.n_threads
        cdef double total = 0.0, guard = self.guard
        for b in prange(B, schedule="static", num_threads=n_threads):
            if next_batch != NULL:
                prefetch_stored_row(&self.stored, next_batch[b],
                                    sizeof(floating))
            logits_sparse_row(
                values + indptr[b], rows.indices + indptr[b],
                indptr[b + 1] - indptr[b], &self.net, &self.logits[b, 0],
                &self.logits[b, H])
            self.row_loss[b] = cross_entropy_row(&self.logits[b, H], K,
                                                 rows.labels[b], guard)
        for b in range(B):
            total += self.row_loss[b]
        return total / B


cdef enum:
    # slots of a ValueSet: few collisions while it can still give codes
    SET_BITS = 12
    SET_SLOTS = 1 << SET_BITS


cdef struct ValueSet:
    # The distinct nonzero values of a part of the rows, by bit pattern, in
    # an open-addressing table, each with its code (in order of arrival);
    # 0 marks an empty slot (the pattern of +0.0, never a nonzero).  Past
    # N_CODES values it stops taking new ones.
    uint64_t keys[SET_SLOTS]
    uint8_t codes[SET_SLOTS]
    uint64_t by_code[N_CODES]   # the value of each code
    Py_ssize_t n                # N_CODES + 1 once there were too many


cdef inline uint64_t bits_of(floating v) noexcept nogil:
    cdef uint64_t key = 0
    memcpy(&key, &v, sizeof(floating))
    return key


cdef inline Py_ssize_t slot_of(const ValueSet* s, uint64_t key) noexcept nogil:
    """Where ``key`` is in ``s``, or the empty slot where it would go."""
    cdef Py_ssize_t i = <Py_ssize_t> ((key * 0x9E3779B97F4A7C15ULL)
                                      >> (64 - SET_BITS))
    while s.keys[i] != 0 and s.keys[i] != key:
        i = (i + 1) & (SET_SLOTS - 1)
    return i


cdef inline uint8_t code_of(ValueSet* s, uint64_t key) noexcept nogil:
    """The code of ``key`` in ``s``, a new one if it is new (0 when ``s``
    has no codes left)."""
    cdef Py_ssize_t i = slot_of(s, key)
    if s.keys[i] == key:
        return s.codes[i]
    if s.n >= N_CODES:
        s.n = N_CODES + 1
        return 0
    s.keys[i], s.codes[i], s.by_code[s.n] = key, <uint8_t> s.n, key
    s.n += 1
    return s.codes[i]


cdef inline bint merge_codes(
    ValueSet* sets,         # IN  (n_sets,) the codes of parts of the rows
                            # OUT the first: the codes of all of them
    Py_ssize_t n_sets,
    uint8_t* renumber,      # OUT (n_sets, N_CODES) each part's codes in
                            #     the first's
    floating* table,        # OUT (N_CODES,) the value of each code, 0 after
) noexcept nogil:
    """One code space for the parts (the first part's codes kept); False
    when their values are more than N_CODES."""
    cdef Py_ssize_t k, c
    for k in range(n_sets):
        if sets[k].n > N_CODES:
            return False
        for c in range(sets[k].n):
            renumber[k * N_CODES + c] = code_of(&sets[0], sets[k].by_code[c])
            if sets[0].n > N_CODES:
                return False
    memset(table, 0, N_CODES * sizeof(floating))
    for c in range(sets[0].n):
        memcpy(&table[c], &sets[0].by_code[c], sizeof(floating))
    return True


def to_csr(const floating[:, ::1] x, int n_threads):
    """``x`` in the compact CSR form of _rows.pxd: (indptr, indices, codes,
    values).

    ``indptr`` int64; ``indices`` uint16 when ``x`` has at most 65536
    columns, else C int; when its nonzeros take at most 256 distinct values
    (bit patterns), ``codes`` uint8 and ``values`` (256,) of x's type the
    value of each code (then 0s); else ``codes`` None and ``values`` each
    nonzero's value.  Every value is copied bit for bit.

    Two passes over the rows (count; gather and code), each parallel over
    parts of the rows that code their values apart, then the parts' codes
    renumbered into one code space; when they have too many values, a
    third pass instead reads each nonzero's value at its stored column.  No
    temporary larger than the result.
    """
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1], b, n, nnz, pos, k
    cdef bint wide = D > 65536
    dtype = np.asarray(x).dtype
    if D == 0:  # no columns: no nonzeros (and no x[b, 0] to point at)
        return (np.zeros(N + 1, dtype=np.int64), np.empty(0, dtype=np.uint16),
                np.empty(0, dtype=np.uint8), np.zeros(N_CODES, dtype=dtype))
    indptr_arr = np.empty(N + 1, dtype=np.int64)
    cdef int64_t[::1] indptr = indptr_arr
    with nogil:
        indptr[0] = 0
        for b in prange(N, schedule="static", num_threads=n_threads):
            indptr[b + 1] = count_nonzeros(&x[b, 0], D)
        for b in range(N):
            indptr[b + 1] += indptr[b]
    indices_arr = np.empty(indptr[N], dtype=np.intc if wide else np.uint16)
    codes_arr = np.empty(indptr[N], dtype=np.uint8)
    values_arr = np.empty(N_CODES, dtype=dtype)  # the codes' table, or raw
    cdef uint16_t[::1] narrow
    cdef int[::1] wide_idx
    if wide:
        wide_idx = indices_arr
    else:
        narrow = indices_arr
    cdef uint8_t[::1] codes = codes_arr
    cdef floating[::1] table = values_arr
    cdef floating[::1] raw
    # parts of the rows, one per thread; per part: where a row's nonzeros
    # are (gather_nonzeros writes places beyond them, which would race with
    # the next part if written in place), the codes of its values, and
    # those in the first part's
    cdef Py_ssize_t n_parts = max(1, min(n_threads, N))
    cdef double* val = <double*> scratch_rows(n_threads, D, sizeof(double))
    cdef int* idx = NULL
    cdef int* row_idx
    cdef ValueSet* sets = NULL
    cdef uint8_t* renumber = NULL
    cdef uint8_t* to_first
    cdef bint coded
    try:
        idx = <int*> scratch_rows(n_threads, D, sizeof(int))
        sets = <ValueSet*> scratch_rows(n_parts, 1, sizeof(ValueSet))
        renumber = <uint8_t*> scratch_rows(n_parts, N_CODES, 1)
        memset(sets, 0, n_parts * sizeof(ValueSet))
        with nogil:
            for k in prange(n_parts, schedule="static", num_threads=n_threads):
                row_idx = idx + k * D
                for b in range(k * N // n_parts, (k + 1) * N // n_parts):
                    nnz = gather_nonzeros(&x[b, 0], D, val + k * D, row_idx)
                    for n in range(nnz):
                        pos = indptr[b] + n
                        if wide:
                            wide_idx[pos] = row_idx[n]
                        else:
                            narrow[pos] = <uint16_t> row_idx[n]
                        codes[pos] = code_of(&sets[k], bits_of(x[b, row_idx[n]]))
            coded = merge_codes(sets, n_parts, renumber, &table[0])
            if coded:
                for k in prange(1, n_parts, schedule="static",
                                num_threads=n_threads):
                    to_first = renumber + k * N_CODES
                    for pos in range(indptr[k * N // n_parts],
                                     indptr[(k + 1) * N // n_parts]):
                        codes[pos] = to_first[codes[pos]]
        if not coded:
            codes_arr = None
            values_arr = np.empty(indptr[N], dtype=dtype)
            raw = values_arr
            # each nonzero's value from its column, stored above
            for b in prange(N, nogil=True, schedule="static",
                            num_threads=n_threads):
                for pos in range(indptr[b], indptr[b + 1]):
                    raw[pos] = x[b, wide_idx[pos] if wide else narrow[pos]]
    finally:
        free_scratch(val)
        free_scratch(idx)
        free_scratch(sets)
        free_scratch(renumber)
    return indptr_arr, indices_arr, codes_arr, values_arr
