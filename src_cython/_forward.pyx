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
from libc.math cimport INFINITY, NAN, fabs, isfinite, log
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.string cimport memcpy

from _common cimport (BLOCK_BYTES, ROW_BLOCK, Block, Net, block_logits,
                      block_masks, block_scratch, check_rows,
                      most_block_rows,
                      free_scratch, gather_nonzeros,
                      hidden_ld, logits_sparse_row, mf_combine_rows32,
                      mf_output32, mf_pixels_f32, mf_pixels_f64,
                      mf_pixels_times32_f32, mf_pixels_times32_f64,
                      mf_coded_row, mf_combine_coded32,
                      mf_row_l1_f32, mf_row_l1_f64, mf_sigmoid32, n_blocks,
                      RELU, net_of, row_class_of, scratch_rows,
                      softmax_rows)

from _rows cimport Rows, decode_row, decoded_width, rows_of

include "_simd.pxi"  # simd(), simd_variants(), use_simd()



def predict(
    const floating[:, ::1] x,     # IN  (N, D)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    int activation,               # IN  the hidden layer's (an Activation)
    bint scores,                  # IN  the last layer's scores, not softmax
    double[:, ::1] y,             # OUT (N, K) softmax probabilities, or the
                                  #     scores
    int n_threads,
):
    """The book's predict, by blocks of rows (see _common.Block).

    Returns whether every value of ``x`` is finite (read in the pass that
    builds the blocks' masks: the caller may leave that check to this).
    """
    cdef Net net = net_of(params, activation)
    check_rows(x.shape[1], &net)
    if y.shape[0] != x.shape[0] or y.shape[1] != net.K:
        raise ValueError("y must be (len(x), K)")
    cdef Py_ssize_t N = x.shape[0], K = net.K, k, bad = 0
    cdef Py_ssize_t nb = n_blocks(N, ROW_BLOCK, n_threads)
    cdef Py_ssize_t width = block_scratch(&net, most_block_rows(N, nb), 0)
    cdef double* buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    try:
        for k in prange(nb, nogil=True, schedule="static",
                        num_threads=n_threads):
            bad += not block_logits(&x[0, 0], net.D, k, nb, N, &net,
                                    buf + threadid() * width,
                                    &y[k * N // nb, 0], K)
            if not scores:
                softmax_rows(&y[k * N // nb, 0],
                             (k + 1) * N // nb - k * N // nb, K)
    finally:
        free_scratch(buf)
    return bad == 0


def loss(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) class labels in [0, K)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    int activation,               # IN  the hidden layer's (an Activation)
    double guard,                 # IN  the book's guard inside the log
    double[::1] row_loss,         # OUT (N,) per-row loss (scratch)
    int n_threads,
):
    """Mean cross-entropy; rows are summed in order, whatever the threads.

    NaN when a value of ``x`` is not finite (read in the pass that builds
    the blocks' masks): a caller that left that check to this tells a NaN
    loss of finite rows from such rows by its own check of ``x``.
    """
    cdef Net net = net_of(params, activation)
    check_rows(x.shape[1], &net)
    if t.shape[0] != x.shape[0] or row_loss.shape[0] != x.shape[0]:
        raise ValueError("t and row_loss need one entry per row of x")
    cdef Py_ssize_t N = x.shape[0], K = net.K, b, k, bad = 0
    cdef Py_ssize_t nb = n_blocks(N, ROW_BLOCK, n_threads)
    # per thread: the block's a1 and masks, then its logits
    cdef Py_ssize_t rows = most_block_rows(N, nb)
    cdef Py_ssize_t width = block_scratch(&net, rows, rows * K)
    cdef Py_ssize_t logits = rows * hidden_ld(net.H) + net.D
    cdef double* buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    cdef double* w
    cdef double total = 0.0
    try:
        for k in prange(nb, nogil=True, schedule="static",
                        num_threads=n_threads):
            w = buf + threadid() * width
            bad += not block_logits(&x[0, 0], net.D, k, nb, N, &net, w,
                                    w + logits, K)
            softmax_rows(w + logits, (k + 1) * N // nb - k * N // nb, K)
            for b in range(k * N // nb, (k + 1) * N // nb):
                row_loss[b] = -log(
                    w[logits + (b - k * N // nb) * K + t[b]] + guard)
    finally:
        free_scratch(buf)
    if bad:
        return NAN
    with nogil:
        for b in range(N):
            total += row_loss[b]
    return total / N


cdef struct Screen:
    # The float32 screen (mnist_fast/screen.py, which holds its bound):
    # W1, b1, W2, b2 in float32, padded to Hp hidden units and Kp classes,
    # the hidden layer's activation (its bound's) and the coefficients of
    # the per-row bound.
    const float* W1f          # (D, Hp)
    const float* b1f          # (Hp,)
    const float* W2f          # (Hp, Kp)
    const float* b2f          # (Kp,)
    Py_ssize_t Hp, Kp, max_nnz
    int activation            # an Activation
    double n4s, per_n, per_s, per_big, const, tie


cdef class ScreenArrays:
    """A ``mnist_fast.screen.Screen`` as a Screen struct, its arrays held
    (made by ``screen_arrays``)."""

    cdef const float[:, ::1] W1f, W2f
    cdef const float[::1] b1f, b2f
    cdef Screen sc


cdef ScreenArrays screen_arrays(screen, const Net* net, bint scores):
    """The Screen of ``screen`` for the network ``net`` and its class rule
    ``scores``; ValueError when it was made for other shapes or another
    activation.  The near-tie margin ``tie`` serves the probabilities'
    rule (see ``predicted_class``); the scores' argmax has none (0)."""
    cdef ScreenArrays held = ScreenArrays.__new__(ScreenArrays)
    held.W1f, held.b1f = screen.W1, screen.b1
    held.W2f, held.b2f = screen.W2, screen.b2
    cdef Py_ssize_t Hp = held.W1f.shape[1], Kp = held.W2f.shape[1]
    if not (held.W1f.shape[0] == net.D and Hp >= net.H and Hp % 8 == 0
            and held.b1f.shape[0] == Hp and held.W2f.shape[0] == Hp
            and Kp >= net.K and Kp % 8 == 0 and held.b2f.shape[0] == Kp):
        raise ValueError("the screen does not fit the network")
    if screen.activation != net.activation:
        raise ValueError(
            f"the screen's bound is for activation code {screen.activation}, "
            f"the network's is {net.activation}")
    cdef Screen* sc = &held.sc
    sc.W1f, sc.b1f = &held.W1f[0, 0], &held.b1f[0]
    sc.W2f, sc.b2f = &held.W2f[0, 0], &held.b2f[0]
    sc.Hp, sc.Kp, sc.max_nnz = Hp, Kp, screen.max_nnz
    sc.activation = net.activation
    sc.n4s, sc.per_n, sc.per_s = screen.n4s, screen.per_n, screen.per_s
    sc.per_big, sc.const = screen.per_big, screen.const
    sc.tie = 0.0 if scores else screen.tie
    return held


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
    bint scores,              # IN  argmax of the scores, not probabilities
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
        cls = row_class_of(z + net.H, net.K, scores)
    return cls


cdef inline Py_ssize_t stored_row_class(
    const Rows* r,            # IN  the rows
    Py_ssize_t b,             #     the row
    double s,                 # IN  l1_bound of the row (when screened)
    const Screen* sc,         # IN  the float32 screen to try first, or NULL
    const Net* net,           # IN  the parameters
    bint scores,              # IN  argmax of the scores, not probabilities
    floating* row,            # scratch (decoded_width(D) doubles)
    double* w,                # scratch (H + K + 1 + screen_floats) doubles
) noexcept nogil:
    """``row_class`` of row ``b`` of ``r`` (``floating`` its type).  A
    float32 row coded with uint16 columns goes through the screen as
    stored; the others, and the rows the screen leaves, are decoded."""
    cdef int64_t start = r.indptr[b]
    cdef Py_ssize_t cls, nnz = r.indptr[b + 1] - start
    cdef float* f = <float*> (w + net.H + net.K + 1)
    cdef int* idx = <int*> (<double*> row + net.D)
    cdef mf_coded_row coded
    if (floating is float and sc != NULL and r.codes != NULL and not r.wide
            and 0 < nnz <= sc.max_nnz):
        coded.code = r.codes + start
        coded.col = <const uint16_t*> r.indices + start
        coded.table = <const float*> r.values
        mf_combine_coded32(&coded, nnz, sc.W1f, sc.Hp, f)
        cls = screen_decision(f, nnz, s, sc, net.K, f + sc.Hp)
        if cls >= 0:
            return cls
        sc = NULL  # tried: the float64 pass decides
    nnz = decode_row(r, b, row, idx)
    return row_class(row, idx, nnz, s, sc, net, scores, w, f)


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
    cdef Py_ssize_t n
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
    return screen_decision(zf, nnz, s, sc, K, a2f)


cdef inline float relu32(
    float* a,                 # IN/OUT (n,) x @ W1 in, relu(x @ W1 + b) out
    const float* b,           # IN  (n,)
    Py_ssize_t n,
) noexcept nogil:
    """The screen's float32 ReLU (exact, as the book's of the rounded sum
    a + b); returns max |a + b|, or inf when one is not finite.

    The largest |a + b| is taken on its bits, whose order as integers is
    the order of floats >= 0, inf and NaN above every finite one: an
    integer max, which the compiler vectorises (a float one it may not, for
    NaN's sake)."""
    cdef Py_ssize_t j
    cdef float v, big
    cdef uint32_t bits, most = 0
    for j in range(n):
        v = a[j] + b[j]
        memcpy(&bits, &v, sizeof(float))
        bits = bits & 0x7fffffffu
        most = bits if bits > most else most
        a[j] = <float> 0.0 if v <= <float> 0.0 else v
    if most >= 0x7f800000u:  # inf or NaN
        return INFINITY
    memcpy(&big, &most, sizeof(float))
    return big


cdef inline Py_ssize_t screen_decision(
    float* zf,                # IN/OUT (Hp,) the row's float32 x @ W1 in,
                              #     its hidden layer out
    Py_ssize_t nnz,           # IN  the row's nonzeros
    double s,                 # IN  sum |x| over the row (at least)
    const Screen* sc,         # IN  the screen's weights and bound
    Py_ssize_t K,
    float* a2f,               # scratch (Kp,)
) noexcept nogil:
    """The row's class when the float32 forward pass from its x @ W1
    decides it for sure, or -1 (see ``mnist_fast/screen.py``)."""
    cdef Py_ssize_t k, best = 0
    cdef double big, delta, first = -INFINITY, second = -INFINITY
    if sc.activation == RELU:
        big = relu32(zf, sc.b1f, sc.Hp)
    else:
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


cdef inline Py_ssize_t screen_rows(const Screen* sc) noexcept nogil:
    """Rows of a block of the screen at most: its float32 a1 within
    BLOCK_BYTES (in L1)."""
    return max(1, min(<Py_ssize_t> ROW_BLOCK,
                      BLOCK_BYTES // (sc.Hp * <Py_ssize_t> sizeof(float))))


cdef inline Py_ssize_t block_width(const Screen* sc, const Net* net,
                                   Py_ssize_t rows) noexcept nogil:
    """Doubles of scratch for block_correct of blocks of at most ``rows``
    rows (without the screen), a multiple of 8."""
    cdef Py_ssize_t n
    if sc == NULL:
        return block_scratch(net, rows, rows * net.K)
    n = (screen_rows(sc) * sc.Hp + sc.Kp) // 2 + net.D + net.D + net.D // 2
    return (n + 1 + net.H + net.K + 7) // 8 * 8


cdef inline Py_ssize_t block_correct(
    const floating* x,        # IN  (N, D) dense rows
    Py_ssize_t k,             # IN  the block: k of nb, over N rows
    Py_ssize_t nb,
    Py_ssize_t N,
    const Py_ssize_t* t,      # IN  (N,) their labels
    const Screen* sc,         # IN  the float32 screen to try first, or NULL
    const Net* net,           # IN  the parameters
    bint scores,              # IN  argmax of the scores, not probabilities
    double* w,                # scratch (block_width(sc, net,
                              # most_block_rows(N, nb)),) on a cache line
) noexcept nogil:
    """How many rows of block k have the book's class ``t``, as ``-1 -
    count`` when a value of the block's rows is not finite (see
    _common.block_masks).

    Without the screen: the float64 forward pass of the block.  With it:
    the float32 x @ W1 of the block pixel by pixel, each row's class the
    screen's when it decides for sure, else the float64 pass's of the
    row's nonzeros.
    """
    cdef Py_ssize_t r, b, nnz, cls, correct = 0, D = net.D, K = net.K
    cdef Py_ssize_t rows, Hp, lines
    cdef const char* ahead
    cdef Block blk
    cdef mf_pixels_f32 c32
    cdef mf_pixels_f64 c64
    cdef float* a1f
    cdef float* a2f
    cdef double* val
    cdef int* idx
    cdef double* z
    cdef double s
    cdef bint finite
    if sc == NULL:
        # the logits after the block's a1 and masks
        z = w + most_block_rows(N, nb) * hidden_ld(net.H) + D
        finite = block_logits(x, D, k, nb, N, net, w, z, K)
        for b in range(k * N // nb, (k + 1) * N // nb):
            correct += row_class_of(z + (b - k * N // nb) * K, K,
                                    scores) == t[b]
        return correct if finite else -1 - correct
    rows, Hp = screen_rows(sc), sc.Hp
    a1f = <float*> w
    a2f = a1f + rows * Hp
    blk.mask = <unsigned long long*> (w + (rows * Hp + sc.Kp) // 2)
    val = <double*> (blk.mask + D)
    idx = <int*> (val + D)
    z = val + D + (D + 1) // 2
    finite = block_masks(x, D, &blk, k, nb, N, D)
    # the next block streams in while this one is screened
    ahead = <const char*> (x + (blk.first + blk.n) * D)
    lines = ((((k + 2) * N // nb - (k + 1) * N // nb) * D * sizeof(floating)
              + 63) // 64 if k + 1 < nb else 0)
    for r in range(blk.n * Hp):
        a1f[r] = 0.0
    if floating is float:
        c32.mask, c32.x, c32.ldx = blk.mask, x + blk.first * D, D
        c32.ahead, c32.ahead_lines = ahead, lines
        mf_pixels_times32_f32(&c32, 0, D, sc.W1f, Hp, Hp, a1f, Hp)
    else:
        c64.mask, c64.x, c64.ldx = blk.mask, x + blk.first * D, D
        c64.ahead, c64.ahead_lines = ahead, lines
        mf_pixels_times32_f64(&c64, 0, D, sc.W1f, Hp, Hp, a1f, Hp)
    for r in range(blk.n):
        b = blk.first + r
        if floating is float:
            s = mf_row_l1_f32(x + b * D, D, &nnz)
        else:
            s = mf_row_l1_f64(x + b * D, D, &nnz)
        # rounded up as l1_bound's (nnz + 2 terms of DBL_EPSILON)
        s = s * (1.0 + (nnz + 2) * DBL_EPSILON)
        cls = -1
        if nnz <= sc.max_nnz:
            cls = screen_decision(a1f + r * Hp, nnz, s, sc, K, a2f)
        if cls < 0:
            nnz = gather_nonzeros(x + b * D, D, val, idx)
            logits_sparse_row(val, idx, nnz, net, z, z + net.H)
            cls = row_class_of(z + net.H, K, scores)
        correct += cls == t[b]
    return correct if finite else -1 - correct


def count_correct(
    const floating[::1] values,   # IN  the rows: N dense rows of D values,
                                  #     or the values of their CSR form
    const Py_ssize_t[::1] t,      # IN  (N,) class labels
    csr,                          # IN  None (dense rows), or the CSR form
                                  #     (to_csr's indptr, indices, codes)
                                  #     and its row_l1 (sum |x|)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    int activation,               # IN  the hidden layer's (an Activation)
    bint scores,                  # IN  the class of the largest score (the
                                  #     book's ch. 5), not of the largest
                                  #     probability
    screen,                       # IN  a mnist_fast.screen.Screen, or None
    int n_threads,
    bint check=False,             # IN  -1 for dense rows not all finite
):
    """Number of rows whose class (the most probable, or the largest
    score's) is the label.

    A dense row's nonzeros are gathered first.  With the screen each row
    first goes through a float32 forward pass, whose class is taken when
    its margin exceeds the pass's error bound; the other rows, and all rows
    without the screen, get the float64 pass.  The count is the same
    either way.  With ``check``, -1 instead when a value of the dense rows
    is not finite (read in the pass that builds the blocks' masks: the
    caller may leave that check to this).
    """
    cdef Net net = net_of(params, activation)
    cdef Py_ssize_t N = t.shape[0], D = net.D, H = net.H, K = net.K
    cdef bint dense = csr is None
    cdef Rows stored
    cdef const double[::1] l1
    if dense:
        if values.shape[0] != N * D:
            raise ValueError("dense rows need N * D values")
    else:
        stored, l1 = rows_of(csr, values), csr.row_l1
        if csr.indptr.shape[0] != N + 1 or l1.shape[0] != N:
            raise ValueError("the CSR arrays do not fit together")
    cdef ScreenArrays held = (None if screen is None
                              else screen_arrays(screen, &net, scores))
    cdef const Screen* sc = NULL if held is None else &held.sc
    cdef floating no_value = 0
    cdef const floating* vals = &values[0] if values.shape[0] else &no_value
    cdef Py_ssize_t b, k, nb, width, c, correct = 0, bad = 0
    cdef double* buf
    cdef double* w
    cdef double* row
    if dense:
        # by blocks of rows, each thread's scratch on its cache lines
        nb = n_blocks(N, ROW_BLOCK if sc == NULL else screen_rows(sc),
                      n_threads)
        width = block_width(sc, &net, most_block_rows(N, nb))
        buf = <double*> scratch_rows(n_threads, width, sizeof(double))
        try:
            for k in prange(nb, nogil=True, schedule="static",
                            num_threads=n_threads):
                c = block_correct(vals, k, nb, N, &t[0], sc, &net, scores,
                                  buf + threadid() * width)
                bad += c < 0
                correct += c if c >= 0 else -1 - c
        finally:
            free_scratch(buf)
        return -1 if bad and check else correct
    # per thread: the row decoded, z and logits, floats for the screen
    width = decoded_width(D) + H + K + 1 + screen_floats(sc, D)
    buf = <double*> scratch_rows(n_threads, width, sizeof(double))
    try:
        for b in prange(N, nogil=True, schedule="static",
                        num_threads=n_threads):
            row = buf + threadid() * width
            correct += stored_row_class(
                &stored, b, l1[b] if sc != NULL else 0, sc, &net, scores,
                <floating*> row, row + decoded_width(D)) == t[b]
    finally:
        free_scratch(buf)
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
    bint scores=False,            # IN  for the scores' argmax (no near-tie
                                  #     margin), not the probabilities'
):
    """The screen's class of each row, -1 where it leaves the row to the
    float64 pass (for its tests); the network's activation is the
    screen's."""
    cdef Net net = net_of(params, screen.activation)
    cdef Rows stored = rows_of(csr, values)
    cdef const double[::1] l1 = csr.row_l1
    cdef Py_ssize_t N = csr.indptr.shape[0] - 1, b, nnz
    cdef ScreenArrays held = screen_arrays(screen, &net, scores)
    cdef const Screen* sc = &held.sc
    if l1.shape[0] != N:
        raise ValueError("row_l1 does not fit indptr")
    out_arr = np.empty(N, dtype=np.intp)
    cdef Py_ssize_t[::1] out = out_arr
    cdef float[::1] f = np.empty(net.D + sc.Hp + sc.Kp, dtype=np.float32)
    cdef double[::1] row = np.empty(decoded_width(net.D))
    cdef floating* val = <floating*> &row[0]
    cdef int* idx = <int*> (&row[0] + net.D)
    with nogil:
        for b in range(N):
            nnz = decode_row(&stored, b, val, idx)
            out[b] = screened_class(val, idx, nnz, l1[b], sc, net.K, &f[0])
    return out_arr


def row_l1(
    csr,                          # IN  to_csr's indptr, indices, codes
    const floating[::1] values,   # IN  and values
    Py_ssize_t D,                 # IN  the rows' length
):
    """sum |x| of each row of a CSR matrix, rounded up (for the screen)."""
    cdef Rows stored = rows_of(csr, values)
    cdef Py_ssize_t N = csr.indptr.shape[0] - 1, b, nnz
    out_arr = np.empty(N)
    cdef double[::1] out = out_arr
    cdef double[::1] row = np.empty(decoded_width(D))
    cdef floating* val = <floating*> &row[0]
    with nogil:
        for b in range(N):
            nnz = decode_row(&stored, b, val, <int*> (&row[0] + D))
            out[b] = l1_bound(val, nnz)
    return out_arr
