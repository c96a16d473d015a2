# Inline per-row helpers shared by the kernels of mnist_fast.
#
# Every helper works on raw pointers to one row (C order), takes no Python
# object and never fails, so it can run inside ``prange`` without the GIL.
# The formulas are the book's, written out per element:
#
#   a1 = x @ W1 + b1,  z1 = sigmoid(a1) = 1 / (1 + exp(-a1))  (ch. 4)
#                      or z1 = relu(a1) = 0 where a1 <= 0, else a1  (ch. 5),
#   a2 = z1 @ W2 + b2, y = softmax(a2) (max-shifted),
#   loss = -log(y[t] + guard)   (the book's guard, 1e-7: mnist_fast/book.py).
#
# The parameters of a call travel as one ``Net`` (built once per call by
# ``net_of``), the output gradients as one ``Grads``.

from cython cimport floating
from libc.math cimport INFINITY, exp, fabs, log

cdef extern from "simd_rows.h" nogil:
    # out = sum_n val[n] * M[idx[n], :H] for M's rows ld apart, in vector
    # registers (see the header)
    void mf_combine_rows_f64(const double* val, const int* idx, Py_ssize_t nnz,
                             const double* M, Py_ssize_t ld, Py_ssize_t H,
                             double* out)
    void mf_combine_rows_f32(const float* val, const int* idx, Py_ssize_t nnz,
                             const double* M, Py_ssize_t ld, Py_ssize_t H,
                             double* out)
    # out = val @ M[:, :width] for M of n rows ld apart, in vector registers
    void mf_vector_matrix(const double* val, Py_ssize_t n, const double* M,
                          Py_ssize_t ld, Py_ssize_t width, double* out)
    # out[r, :] = z[r, :n] @ M for M of shape (n, width), the rows side by
    # side (z and out ldz and ldo apart), each as mf_vector_matrix would
    void mf_rows_times(const double* z, Py_ssize_t ldz, Py_ssize_t rows,
                       Py_ssize_t n, const double* M, Py_ssize_t width,
                       double* out, Py_ssize_t ldo)
    # a block of at most 64 rows (ldx values apart from x), pixel by
    # pixel: bit r of mask[i] is set when x[r ldx + i] != 0; and
    # ahead_lines cache lines from ahead that the screen's pass requests
    # into L2 as it goes (see simd_rows.h)
    struct mf_pixels_f32:
        const unsigned long long* mask
        const float* x
        Py_ssize_t ldx
        const char* ahead
        Py_ssize_t ahead_lines
    struct mf_pixels_f64:
        const unsigned long long* mask
        const double* x
        Py_ssize_t ldx
        const char* ahead
        Py_ssize_t ahead_lines
    # x @ W1 in float32 of the screen: A[r, j] += (float) x[r, i] W[i, j]
    # for j < width (a multiple of 8), the pixels i0 ... i1 - 1
    void mf_pixels_times32_f32(const mf_pixels_f32* c, Py_ssize_t i0,
                               Py_ssize_t i1, const float* W, Py_ssize_t ldw,
                               Py_ssize_t width, float* A, Py_ssize_t lda)
    void mf_pixels_times32_f64(const mf_pixels_f64* c, Py_ssize_t i0,
                               Py_ssize_t i1, const float* W, Py_ssize_t ldw,
                               Py_ssize_t width, float* A, Py_ssize_t lda)
    # sum |x| of a dense row in four partial sums, its nonzeros to nnz
    double mf_row_l1_f32(const float* x, Py_ssize_t D, Py_ssize_t* nnz)
    double mf_row_l1_f64(const double* x, Py_ssize_t D, Py_ssize_t* nnz)
    # the masks of the n <= 64 rows at x (ldx apart), i < D; returns
    # whether all their values are finite (the input check of x, read in
    # the same pass)
    bint mf_block_mask_f32(const float* x, Py_ssize_t ldx, int n,
                           Py_ssize_t D, unsigned long long* mask)
    bint mf_block_mask_f64(const double* x, Py_ssize_t ldx, int n,
                           Py_ssize_t D, unsigned long long* mask)
    # for the pixels i0 ... i1 - 1 and j < width (leading dimensions ld*):
    # A[r, j] += x[r, i] W[i, j] (x @ W1), in pixel order
    void mf_pixels_times_f32(const mf_pixels_f32* c, Py_ssize_t i0,
                             Py_ssize_t i1, const double* W, Py_ssize_t ldw,
                             Py_ssize_t width, double* A, Py_ssize_t lda)
    void mf_pixels_times_f64(const mf_pixels_f64* c, Py_ssize_t i0,
                             Py_ssize_t i1, const double* W, Py_ssize_t ldw,
                             Py_ssize_t width, double* A, Py_ssize_t lda)
    # ... and O[i, j] (+)= sum_r x[r, i] M[r, j] (x.T @ dz1), in row order,
    # summed on from O when add, else from 0
    void mf_pixels_t_times_f32(const mf_pixels_f32* c, Py_ssize_t i0,
                               Py_ssize_t i1, const double* M, Py_ssize_t ldm,
                               Py_ssize_t width, int add, double* O,
                               Py_ssize_t ldo)
    void mf_pixels_t_times_f64(const mf_pixels_f64* c, Py_ssize_t i0,
                               Py_ssize_t i1, const double* M, Py_ssize_t ldm,
                               Py_ssize_t width, int add, double* O,
                               Py_ssize_t ldo)
    # the nonzeros of a dense row; val and idx need D places (see the
    # header)
    Py_ssize_t mf_gather_nonzeros_f32(const float* x, Py_ssize_t D,
                                      double* val, int* idx)
    Py_ssize_t mf_gather_nonzeros_f64(const double* x, Py_ssize_t D,
                                      double* val, int* idx)
    # how many nonzeros a dense row has
    Py_ssize_t mf_count_nonzeros_f32(const float* x, Py_ssize_t D)
    Py_ssize_t mf_count_nonzeros_f64(const double* x, Py_ssize_t D)
    # out = sum_n val[n] * M[idx[n], :width] in float32; width % 8 == 0
    void mf_combine_rows32(const float* val, const int* idx, Py_ssize_t nnz,
                           const float* M, Py_ssize_t width, float* out)
    # the same for a row of compact rows (_rows.pxd): its n-th nonzero is
    # table[code[n]] in column col[n]
    struct mf_coded_row:
        const unsigned char* code
        const unsigned short* col
        const float* table
    void mf_combine_coded32(const mf_coded_row* r, Py_ssize_t nnz,
                            const float* M, Py_ssize_t width, float* out)
    # z = sigmoid(z + b) in float32, n % 8 == 0; returns max |z + b| (inf
    # when one is not finite)
    float mf_sigmoid32(float* z, const float* b, Py_ssize_t n)
    # out = z @ W + b in float32 for W of shape (n, width); n % 4 == 0,
    # width % 8 == 0
    void mf_output32(const float* z, Py_ssize_t n, const float* W,
                     Py_ssize_t width, const float* b, float* out)
    # a hint: load the cache lines of n items of size bytes at p
    void mf_prefetch(const void* p, Py_ssize_t n, Py_ssize_t size)
    # a = exp(a - m), 4 classes at a time; returns sum(a)
    double mf_exp_shifted(double* a, Py_ssize_t K, double m)
    # z = sigmoid(z + b), 4 units at a time
    void mf_sigmoid_bias(double* z, const double* b, Py_ssize_t n)
    # ... of rows ld apart, their vectors as one stream
    void mf_sigmoid_rows(double* z, Py_ssize_t ld, Py_ssize_t rows,
                         const double* b, Py_ssize_t n)
    # the book's update p -= lr * g in place, g becomes the old p; returns
    # how many updated values are not finite
    Py_ssize_t mf_update_in_place(double* p, double* g, double lr,
                                  Py_ssize_t n)
    # whether no value of x[:n] is NaN or infinite (see simd_rows.c)
    int mf_all_finite_f32(const float* x, Py_ssize_t n)
    int mf_all_finite_f64(const double* x, Py_ssize_t n)
    # the series of expm1 and log1p (their ranges: see the header)
    double MF_EXPM1_DEG5(double x)
    double MF_LOG1P_DEG8(double x)
    # a row of the numerical gradient's central differences for a column of
    # W1 or b1, when the series hold (see simd_rows.c)
    enum: MF_UNIT_BLOCK
    enum: MF_UNIT_PAD
    enum: MF_ROW_ALIGN
    enum: MF_ROW_SC
    enum: MF_ROW_C
    enum: MF_ROW_A
    enum: MF_ROW_G
    enum: MF_ROW_M
    enum: MF_ROW_TERMS
    enum: MF_ROW_DEGREE
    struct mf_hidden_row:
        double v
        const double* dp
        const double* dm
        const double* u
        double S, P
        Py_ssize_t H
    void mf_hidden_row_tiny(const mf_hidden_row* r, double* acc)
    void mf_hidden_row_series(const mf_hidden_row* r, double* acc)
    void mf_hidden_row_relu_tiny(const mf_hidden_row* r, double* acc)
    void mf_hidden_row_relu_series(const mf_hidden_row* r, double* acc)
    # the book's ReLU (a NaN stays NaN), and how a ReLU unit moves when its
    # pre-activation a moves by da (see the header)
    double mf_relu(double a)
    double mf_relu_move(double a, double da)


cdef extern from *:
    """
    /* not every module calls each of these: no unused-function warnings */
    #if defined(__GNUC__) || defined(__clang__)
    #define MF_MAYBE_UNUSED __attribute__((unused))
    #else
    #define MF_MAYBE_UNUSED
    #endif
    #ifdef _OPENMP
    #include <omp.h>
    MF_MAYBE_UNUSED static inline int mf_team_size(void) { return omp_get_num_threads(); }
    MF_MAYBE_UNUSED static inline void mf_barrier(void) {
    #pragma omp barrier
    }
    #else
    MF_MAYBE_UNUSED static inline int mf_team_size(void) { return 1; }
    MF_MAYBE_UNUSED static inline void mf_barrier(void) {}
    #endif
    #if defined(_WIN32)
    #include <malloc.h>
    MF_MAYBE_UNUSED static inline void *mf_aligned_alloc(size_t n) { return _aligned_malloc(n ? n : 1, 64); }
    MF_MAYBE_UNUSED static inline void mf_aligned_free(void *p) { _aligned_free(p); }
    #else
    #include <stdlib.h>
    MF_MAYBE_UNUSED static inline void *mf_aligned_alloc(size_t n) {
        void *p;
        return posix_memalign(&p, 64, n ? n : 1) ? NULL : p;
    }
    MF_MAYBE_UNUSED static inline void mf_aligned_free(void *p) { free(p); }
    #endif
    """
    # the threads of the parallel region that calls it, and its barrier
    # (every thread of the team must call it); 1 and nothing when serial
    int mf_team_size() noexcept nogil
    void mf_barrier() noexcept nogil
    # memory from a cache line on (NULL when there is none), and its release
    void* mf_aligned_alloc(size_t n) noexcept nogil
    void free_scratch "mf_aligned_free"(void* p) noexcept nogil


cdef enum Activation:
    # The hidden layer's activation; the codes are the positions of the
    # names in mnist_fast.book.ACTIVATIONS.
    SIGMOID = 0             # the book's ch. 4: 1 / (1 + exp(-a))
    RELU = 1                # the book's ch. 5 Relu: a where a > 0, else 0


cdef struct Net:
    # W1, b1, W2, b2 of one kernel call (float64, C order), the layer
    # sizes and the hidden layer's activation.  The pointers are into the
    # arrays of the caller's dict, which holds them for the call (W1's rows
    # ld1 = H apart), or into a trainer's own copy of W1 (rows ld1 >= H
    # apart, see SGDTrainer).
    const double* W1        # (D, H) rows ld1 apart
    const double* b1        # (H,)
    const double* W2        # (H, K)
    const double* b2        # (K,)
    Py_ssize_t D, H, K
    Py_ssize_t ld1
    int activation          # an Activation


cdef struct Grads:
    # The four gradient arrays of one call, shaped like the Net's.
    double* W1
    double* b1
    double* W2
    double* b2


cdef inline Net net_of(dict params, int activation) except *:
    """The ``W1, b1, W2, b2`` of ``params`` and the ``activation`` code as a
    Net; ValueError when their shapes do not fit together or the code is
    not an Activation."""
    cdef const double[:, ::1] W1 = params["W1"]
    cdef const double[::1] b1 = params["b1"]
    cdef const double[:, ::1] W2 = params["W2"]
    cdef const double[::1] b2 = params["b2"]
    cdef Net net
    net.D, net.H, net.K = W1.shape[0], W1.shape[1], W2.shape[1]
    if not (net.D > 0 and net.H > 0 and net.K > 0 and b1.shape[0] == net.H
            and W2.shape[0] == net.H and b2.shape[0] == net.K):
        raise ValueError(
            f"params do not fit together: W1 ({W1.shape[0]}, {W1.shape[1]}), "
            f"b1 ({b1.shape[0]},), W2 ({W2.shape[0]}, {W2.shape[1]}), "
            f"b2 ({b2.shape[0]},)")
    if activation != SIGMOID and activation != RELU:
        raise ValueError(f"activation code {activation} is not 0 or 1")
    net.activation = activation
    net.ld1 = net.H
    net.W1, net.b1, net.W2, net.b2 = &W1[0, 0], &b1[0], &W2[0, 0], &b2[0]
    return net


cdef inline void relu_bias(
    double* z,              # IN/OUT (n,) x @ W1 in, relu(x @ W1 + b) out
    const double* b,        # IN  (n,)
    Py_ssize_t n,
) noexcept nogil:
    """The book's Relu of a + b: 0 where it is <= 0 (-0.0 too), else
    itself (a NaN stays NaN, as the book's mask leaves it)."""
    cdef Py_ssize_t j
    for j in range(n):
        z[j] = mf_relu(z[j] + b[j])


cdef inline void activate_bias(
    double* z,              # IN/OUT (n,) x @ W1 in, the hidden layer out
    const Net* net,         # IN  b1 (n = H) and the activation
) noexcept nogil:
    """The hidden layer of one row: z = activation(z + b1)."""
    if net.activation == RELU:
        relu_bias(z, net.b1, net.H)
    else:
        mf_sigmoid_bias(z, net.b1, net.H)


cdef inline void activate_rows(
    double* z,              # IN/OUT (rows, H) x @ W1 in, the hidden layer
    Py_ssize_t ld,          #     out, rows ld >= H rounded up to 4 apart
    Py_ssize_t rows,
    const Net* net,         # IN  b1 and the activation
) noexcept nogil:
    """``activate_bias`` of several rows (the sigmoid's exps in one
    stream, see simd_rows.c)."""
    cdef Py_ssize_t r
    if net.activation == RELU:
        for r in range(rows):
            relu_bias(z + r * ld, net.b1, net.H)
    else:
        mf_sigmoid_rows(z, ld, rows, net.b1, net.H)


cdef inline Grads grads_of(dict grads, const Net* net) except *:
    """The output arrays ``W1, b1, W2, b2`` of ``grads`` as Grads;
    ValueError when they are not shaped like ``net``."""
    cdef double[:, ::1] W1 = grads["W1"]
    cdef double[::1] b1 = grads["b1"]
    cdef double[:, ::1] W2 = grads["W2"]
    cdef double[::1] b2 = grads["b2"]
    cdef Grads g
    if not (W1.shape[0] == net.D and W1.shape[1] == net.H
            and b1.shape[0] == net.H and W2.shape[0] == net.H
            and W2.shape[1] == net.K and b2.shape[0] == net.K):
        raise ValueError("the gradient arrays are not shaped like params")
    g.W1, g.b1, g.W2, g.b2 = &W1[0, 0], &b1[0], &W2[0, 0], &b2[0]
    return g


cdef inline int check_rows(Py_ssize_t D, const Net* net) except -1:
    """ValueError unless rows of ``D`` values fit the network's input."""
    if D != net.D:
        raise ValueError(f"rows of {D} values for a network of {net.D} inputs")
    return 0


cdef inline void* scratch_rows(int n_threads, Py_ssize_t width,
                               size_t size) except NULL:
    """``n_threads`` rows of ``width`` items of ``size`` bytes, from a cache
    line on (``free_scratch`` them)."""
    cdef size_t n = <size_t> (n_threads if n_threads > 1 else 1) * width * size
    cdef void* rows = mf_aligned_alloc(n)
    if rows == NULL:
        raise MemoryError(
            f"mnist_fast: cannot allocate {n} bytes of scratch for "
            f"{n_threads} thread(s)")
    return rows


cdef inline void combine_rows(
    const floating* val,    # IN  (nnz,) coefficients
    const int* idx,         # IN  (nnz,) rows of M they multiply
    Py_ssize_t nnz,
    const double* M,        # IN  (rows, H) rows ld apart
    Py_ssize_t ld,
    Py_ssize_t H,
    double* out,            # OUT (H,) sum_n val[n] * M[idx[n], :]
) noexcept nogil:
    """A sparse combination of rows of M: x @ W1 for a sparse x, and
    x.T @ dz1 for a column of x."""
    if floating is float:
        mf_combine_rows_f32(val, idx, nnz, M, ld, H, out)
    else:
        mf_combine_rows_f64(val, idx, nnz, M, ld, H, out)


cdef inline Py_ssize_t gather_nonzeros(
    const floating* x,      # IN  (D,) a dense row
    Py_ssize_t D,
    double* val,            # OUT (nnz,) its nonzero values, in order
    int* idx,               # OUT (nnz,) their columns
) noexcept nogil:
    """The nonzero pixels of a row (81% of MNIST pixels are 0); ``val`` and
    ``idx`` need D places (see simd_rows.c)."""
    if floating is float:
        return mf_gather_nonzeros_f32(x, D, val, idx)
    else:
        return mf_gather_nonzeros_f64(x, D, val, idx)


cdef inline Py_ssize_t count_nonzeros(
    const floating* x,      # IN  (D,) a dense row
    Py_ssize_t D,
) noexcept nogil:
    if floating is float:
        return mf_count_nonzeros_f32(x, D)
    else:
        return mf_count_nonzeros_f64(x, D)


cdef inline Py_ssize_t hidden_preactivation_row(
    const floating* x,      # IN  (D,) one input row
    const Net* net,         # IN  the parameters
    double* a1,             # OUT (H,) x @ W1 + b1
    double* val,            # OUT (nnz,) x's nonzero values (D places)
    int* idx,               # OUT (nnz,) their columns (D places)
) noexcept nogil:
    """a1 = x @ W1 + b1 over the nonzero pixels of x; returns their
    number."""
    cdef Py_ssize_t j, nnz = gather_nonzeros(x, net.D, val, idx)
    combine_rows(val, idx, nnz, net.W1, net.ld1, net.H, a1)
    for j in range(net.H):
        a1[j] += net.b1[j]
    return nnz


cdef inline void output_row(
    const double* z1,       # IN  (H,)
    const Net* net,         # IN  the parameters
    double* a2,             # OUT (K,)   z1 @ W2 + b2
) noexcept nogil:
    cdef Py_ssize_t k
    mf_vector_matrix(z1, net.H, net.W2, net.K, net.K, a2)
    for k in range(net.K):
        a2[k] += net.b2[k]


cdef inline void output_rows(
    const double* z1,       # IN  (rows, H) rows ld apart
    Py_ssize_t ld,
    Py_ssize_t rows,
    const Net* net,         # IN  the parameters
    double* a2,             # OUT (rows, K) z1 @ W2 + b2, rows ldo apart
    Py_ssize_t ldo,
) noexcept nogil:
    """``output_row`` of several rows, their sums side by side."""
    cdef Py_ssize_t r, k
    mf_rows_times(z1, ld, rows, net.H, net.W2, net.K, a2, ldo)
    for r in range(rows):
        for k in range(net.K):
            a2[r * ldo + k] += net.b2[k]


cdef inline void logits_sparse_row(
    const floating* val,    # IN  (nnz,) nonzero inputs of one row
    const int* idx,         # IN  (nnz,) their columns
    Py_ssize_t nnz,
    const Net* net,         # IN  the parameters
    double* z1,             # OUT (H,) activation(x @ W1 + b1)
    double* a2,             # OUT (K,) z1 @ W2 + b2
) noexcept nogil:
    """The forward pass of one row given as (value, column) pairs."""
    combine_rows(val, idx, nnz, net.W1, net.ld1, net.H, z1)
    activate_bias(z1, net)
    output_row(z1, net, a2)


cdef inline void logits_dense_row(
    const floating* x,      # IN  (D,) one input row
    const Net* net,         # IN  the parameters
    double* z1,             # OUT (H,)
    double* a2,             # OUT (K,)
    double* val,            # scratch (D,)
    int* idx,               # scratch (D,)
) noexcept nogil:
    """The forward pass of one dense row, over its nonzero pixels."""
    logits_sparse_row(val, idx, gather_nonzeros(x, net.D, val, idx), net, z1,
                      a2)


cdef inline double shifted_exp_row(
    double* a,              # IN/OUT (K,) logits in, exp(a - max a) out
    Py_ssize_t K,
) noexcept nogil:
    """In-place exp(a - max a) with libm's exp; returns their sum."""
    cdef Py_ssize_t k
    cdef double m = row_max(a, K), s = 0.0
    for k in range(K):
        a[k] = exp(a[k] - m)
        s += a[k]
    return s


cdef inline double row_max(const double* a, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k
    cdef double m = a[0]
    for k in range(1, K):
        if a[k] > m:
            m = a[k]
    return m


cdef inline void softmax_row(
    double* a,              # IN/OUT (K,) logits in, probabilities out
    Py_ssize_t K,
) noexcept nogil:
    """In-place max-shifted softmax, as the book's softmax (its exp
    vectorised, within about 1 ulp of libm's)."""
    cdef Py_ssize_t k
    cdef double s = mf_exp_shifted(a, K, row_max(a, K))
    for k in range(K):
        a[k] = a[k] / s


cdef inline void softmax_rows(
    double* a,              # IN/OUT (rows, K) logits in, probabilities out
    Py_ssize_t rows,
    Py_ssize_t K,
) noexcept nogil:
    """``softmax_row`` of each row, the exps of all the rows in one pass
    (a row of 10 classes alone leaves most of a batch of exps empty): the
    values shifted by their row's maximum first, then exp(a - 0) = exp(a)
    of them all; each row's sum in class order, as ``softmax_row``'s."""
    cdef Py_ssize_t r, k
    cdef double m, s
    for r in range(rows):
        m = row_max(a + r * K, K)
        for k in range(K):
            a[r * K + k] = a[r * K + k] - m
    mf_exp_shifted(a, rows * K, 0.0)
    for r in range(rows):
        s = 0.0
        for k in range(K):
            s += a[r * K + k]
        for k in range(K):
            a[r * K + k] = a[r * K + k] / s


cdef inline void softmax_row_libm(
    double* a,              # IN/OUT (K,) logits in, probabilities out
    Py_ssize_t K,
) noexcept nogil:
    """``softmax_row`` with libm's exp, as numpy's (for rounding ties)."""
    cdef Py_ssize_t k
    cdef double s = shifted_exp_row(a, K)
    for k in range(K):
        a[k] = a[k] / s


cdef inline Py_ssize_t first_max(const double* a, Py_ssize_t K) noexcept nogil:
    """numpy.argmax of a row: the first of the largest values, or the
    first NaN when there is one (numpy's argmax takes NaN as the largest)."""
    cdef Py_ssize_t k, best = 0
    for k in range(K):
        if a[k] != a[k]:
            return k
        if a[k] > a[best]:
            best = k
    return best


cdef inline Py_ssize_t predicted_class(
    double* a,              # IN/OUT (K,) logits; probabilities on a near tie
    Py_ssize_t K,
) noexcept nogil:
    """The book's ``argmax(softmax(a))``, without the softmax when it can.

    * A NaN or +inf logit (overflow) makes the book's softmax row all NaN,
      whose numpy.argmax is 0.
    * When the largest logit stands clear of the others, it is the most
      probable class.
    * When another logit is within 1e-12 (relative) of it, the softmax may
      (mnist_fast/screen.py's TIE leaves such rows to this function)
      round their probabilities to the same value, and numpy.argmax takes
      the first: the probabilities decide, as in the book.
    """
    cdef Py_ssize_t k, best = 0
    cdef double margin
    for k in range(K):
        if not a[k] < INFINITY:  # NaN or +inf
            return 0
        if a[k] > a[best]:
            best = k
    margin = 1e-12 * (1.0 + fabs(a[best]))
    for k in range(K):
        if k != best and a[k] >= a[best] - margin:
            softmax_row_libm(a, K)
            return first_max(a, K)
    return best


cdef inline Py_ssize_t row_class_of(
    double* a,              # IN/OUT (K,) logits (see predicted_class)
    Py_ssize_t K,
    bint scores,            # IN  the class of the largest score (the book's
                            #     ch. 5), not of the largest probability
) noexcept nogil:
    """The book's class of a row of logits: argmax of the scores, or of
    their softmax probabilities."""
    if scores:
        return first_max(a, K)
    return predicted_class(a, K)


cdef inline double cross_entropy_row(
    double* a,              # IN/OUT (K,) logits in, probabilities out
    Py_ssize_t K,
    Py_ssize_t t,           # IN  the true class
    double guard,           # IN  the book's guard inside the log
) noexcept nogil:
    """The book's per-row loss -log(softmax(a)[t] + guard)."""
    softmax_row(a, K)
    return -log(a[t] + guard)


# x @ W1 and x.T @ dz1 by blocks of rows, pixel by pixel.
#
# The rows of a batch are cut into blocks of at most ROW_BLOCK (64)
# consecutive rows, each with a mask per pixel of the rows where the pixel
# is nonzero (81% of MNIST pixels are 0).  x @ W1 runs pixel by pixel, in
# passes over slices of the units: the slice of the pixel's row of W1 sits
# in vector registers while it is added into the block's rows of a1, whose
# slices stay in L1 (row by row, each nonzero would stream a row of W1
# from L2 instead); x.T @ dz1 sums a slice of a pixel's row of the
# gradient in registers over the block's rows of dz1, in L1.  Each a1[b, j]
# is summed in pixel order, each gW1[i, j] in row order, whatever the
# blocks.

cdef enum:
    # rows of a block at most (the bits of a mask), whatever H: the passes
    # over a block go by slices of units (simd_rows.c, MF_NATIVE_PASSES), so
    # what stays in L1 is a slice of the block's a1 (or dz1), not all of
    # it; fewer rows would stream W1 (and gW1) from L2 or beyond once more
    # per extra block
    ROW_BLOCK = 64
    BLOCK_BYTES = 32768     # the screen's float32 a1 of a block at most
                            # (_forward.screen_rows; L1 holds 48 KB)


cdef struct Block:
    # Rows first ... first + n - 1 (n <= ROW_BLOCK) of a batch; bit r of
    # mask[i] is set when row first + r is nonzero at pixel i.
    Py_ssize_t first, n
    unsigned long long* mask    # (D,)
    bint finite                 # whether its values of x are all finite


cdef inline Py_ssize_t hidden_ld(Py_ssize_t H) noexcept nogil:
    """The row stride of a block's a1: H padded to a cache line of doubles."""
    return (H + 7) // 8 * 8


cdef inline Py_ssize_t most_block_rows(Py_ssize_t N,
                                       Py_ssize_t nb) noexcept nogil:
    """The rows of the largest of nb blocks over N rows (block k has rows
    k N / nb ... (k + 1) N / nb - 1): what a block's scratch is sized
    for, no more than the batch has."""
    return (N + nb - 1) // nb if nb > 0 else 0


cdef inline Py_ssize_t n_blocks(Py_ssize_t N, Py_ssize_t rows,
                                int n_threads) noexcept nogil:
    """Blocks for N rows: at most ``rows`` rows each, and at least one per
    thread (when there are enough rows)."""
    return max((N + rows - 1) // rows, min(N, <Py_ssize_t> n_threads))


cdef inline bint block_masks(
    const floating* x,      # IN  (N, ldx) the batch
    Py_ssize_t ldx,
    Block* blk,             # IN/OUT its rows in, their masks out
    Py_ssize_t k,           # IN  the block: k of nb, over N rows
    Py_ssize_t nb,
    Py_ssize_t N,
    Py_ssize_t D,
) noexcept nogil:
    """Block k of nb: rows k N / nb ... (k + 1) N / nb - 1 (at most
    ROW_BLOCK), and their masks; whether the block's values are all
    finite (read in the same pass: the kernels' callers may leave the
    finiteness check of x to this)."""
    blk.first = k * N // nb
    blk.n = (k + 1) * N // nb - blk.first
    if floating is float:
        return mf_block_mask_f32(x + blk.first * ldx, ldx, <int> blk.n, D,
                                 blk.mask)
    else:
        return mf_block_mask_f64(x + blk.first * ldx, ldx, <int> blk.n, D,
                                 blk.mask)


cdef inline void block_hidden(
    const floating* x,      # IN  (N, ldx) the batch
    Py_ssize_t ldx,
    const Block* blk,       # IN  a block of its rows
    const Net* net,         # IN  the parameters
    double* A,              # OUT (blk.n, H) x @ W1 of the block's rows
                            #     (without b1), rows ld apart
    Py_ssize_t ld,
) noexcept nogil:
    """x @ W1 of a block's rows, pixel by pixel."""
    cdef Py_ssize_t r, j
    cdef mf_pixels_f32 c32
    cdef mf_pixels_f64 c64
    for r in range(blk.n):
        for j in range(net.H):
            A[r * ld + j] = 0.0
    if floating is float:
        c32.mask, c32.x, c32.ldx = blk.mask, x + blk.first * ldx, ldx
        c32.ahead, c32.ahead_lines = NULL, 0
        mf_pixels_times_f32(&c32, 0, net.D, net.W1, net.ld1, net.H, A, ld)
    else:
        c64.mask, c64.x, c64.ldx = blk.mask, x + blk.first * ldx, ldx
        c64.ahead, c64.ahead_lines = NULL, 0
        mf_pixels_times_f64(&c64, 0, net.D, net.W1, net.ld1, net.H, A, ld)


cdef inline void block_input_gradient(
    const floating* x,      # IN  (N, ldx) the batch
    Py_ssize_t ldx,
    const Block* blk,       # IN  a block of its rows
    Py_ssize_t i0,          # IN  the pixels i0 ... i1 - 1
    Py_ssize_t i1,
    const double* M,        # IN  (blk.n, width) the block's rows of dz1,
    Py_ssize_t ldm,         #     ldm apart
    Py_ssize_t width,
    bint add,               # IN  whether O holds the earlier blocks' sums
    double* O,              # OUT (D, width) x.T @ dz1 over the blocks so far
) noexcept nogil:
    """Rows i0 ... i1 - 1 of x.T @ dz1, summed on over one more block."""
    cdef mf_pixels_f32 c32
    cdef mf_pixels_f64 c64
    if floating is float:
        c32.mask, c32.x, c32.ldx = blk.mask, x + blk.first * ldx, ldx
        c32.ahead, c32.ahead_lines = NULL, 0
        mf_pixels_t_times_f32(&c32, i0, i1, M, ldm, width, add, O, width)
    else:
        c64.mask, c64.x, c64.ldx = blk.mask, x + blk.first * ldx, ldx
        c64.ahead, c64.ahead_lines = NULL, 0
        mf_pixels_t_times_f64(&c64, i0, i1, M, ldm, width, add, O, width)


cdef inline Py_ssize_t block_scratch(const Net* net, Py_ssize_t rows,
                                     Py_ssize_t extra) noexcept nogil:
    """Doubles of scratch for block_logits of blocks of at most ``rows``
    rows (most_block_rows) and ``extra`` more, a multiple of a cache line
    (8): a block's a1, then its masks, then the extra."""
    return (rows * hidden_ld(net.H) + net.D + extra + 7) // 8 * 8


cdef inline bint block_logits(
    const floating* x,      # IN  (N, ldx) the rows
    Py_ssize_t ldx,
    Py_ssize_t k,           # IN  the block: k of nb, over N rows
    Py_ssize_t nb,
    Py_ssize_t N,
    const Net* net,         # IN  the parameters
    double* scratch,        # scratch (block_scratch(net,
                            # most_block_rows(N, nb), 0),) on a cache
                            # line
    double* out,            # OUT (n, K) the logits of the block's n rows,
    Py_ssize_t ldo,         #     ldo apart
) noexcept nogil:
    """The forward pass of block k of the rows, to the logits; whether
    the block's values of x are all finite (see block_masks)."""
    cdef Block blk
    cdef Py_ssize_t ld = hidden_ld(net.H)
    cdef double* a = scratch
    cdef bint finite
    blk.mask = <unsigned long long*> (scratch + most_block_rows(N, nb) * ld)
    finite = block_masks(x, ldx, &blk, k, nb, N, net.D)
    block_hidden(x, ldx, &blk, net, a, ld)
    activate_rows(a, ld, blk.n, net)
    output_rows(a, ld, blk.n, net, out, ldo)
    return finite
