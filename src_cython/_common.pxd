# Inline per-row helpers shared by the kernels of mnist_fast.
#
# Every helper works on raw pointers to one row (C order), takes no Python
# object and never fails, so it can run inside ``prange`` without the GIL.
# The formulas are the book's (seed) formulas, written out per element:
#
#   a1 = x @ W1 + b1,  z1 = sigmoid(a1) = 1 / (1 + exp(-a1)),
#   a2 = z1 @ W2 + b2, y = softmax(a2) (max-shifted),
#   loss = -log(y[t] + 1e-7).

from cython cimport floating
from libc.math cimport INFINITY, exp, fabs, log
from libc.stdlib cimport malloc

cdef extern from "simd_rows.h" nogil:
    # out = sum_n val[n] * M[idx[n], :], in vector registers (see the header)
    void mf_combine_rows_f64(const double* val, const int* idx, Py_ssize_t nnz,
                             const double* M, Py_ssize_t H, double* out)
    void mf_combine_rows_f32(const float* val, const int* idx, Py_ssize_t nnz,
                             const double* M, Py_ssize_t H, double* out)
    # out = val @ M for M of shape (n, width), in vector registers
    void mf_vector_matrix(const double* val, Py_ssize_t n, const double* M,
                          Py_ssize_t width, double* out)
    # the nonzeros of a dense row; val and idx need nnz + 1 places
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
    # the numerical gradient's logit sums, n <= 16 (see simd_rows.c)
    void mf_logit_sums_deg3(const double* e, const double* W2T, Py_ssize_t H,
                            Py_ssize_t K, const double* dzp, const double* dzm,
                            Py_ssize_t n, double* Dp, double* Dm)
    void mf_logit_sums_deg5(const double* e, const double* W2T, Py_ssize_t H,
                            Py_ssize_t K, const double* dzp, const double* dzm,
                            Py_ssize_t n, double* Dp, double* Dm)


cdef inline void* scratch_rows(int n_threads, Py_ssize_t width,
                               size_t size) except NULL:
    """``n_threads`` rows of ``width`` items of ``size`` bytes (``free`` them)."""
    cdef size_t n = <size_t> (n_threads if n_threads > 1 else 1) * width * size
    cdef void* rows = malloc(n if n else 1)
    if rows == NULL:
        raise MemoryError(
            f"mnist_fast: cannot allocate {n} bytes of scratch for "
            f"{n_threads} thread(s)")
    return rows


cdef inline void combine_rows(
    const floating* val,    # IN  (nnz,) coefficients
    const int* idx,         # IN  (nnz,) rows of M they multiply
    Py_ssize_t nnz,
    const double* M,        # IN  (rows, H) C order
    Py_ssize_t H,
    double* out,            # OUT (H,) sum_n val[n] * M[idx[n], :]
) noexcept nogil:
    """A sparse combination of rows of M: x @ W1 for a sparse x, and
    x.T @ dz1 for a column of x."""
    if floating is float:
        mf_combine_rows_f32(val, idx, nnz, M, H, out)
    else:
        mf_combine_rows_f64(val, idx, nnz, M, H, out)


cdef inline Py_ssize_t gather_nonzeros(
    const floating* x,      # IN  (D,) a dense row
    Py_ssize_t D,
    double* val,            # OUT (nnz + 1,) its nonzero values, in order
    int* idx,               # OUT (nnz + 1,) their columns
) noexcept nogil:
    """The nonzero pixels of a row (81% of MNIST pixels are 0); ``val`` and
    ``idx`` need one place beyond the nonzeros (see simd_rows.h)."""
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


cdef inline void hidden_preactivation_row(
    const floating* x,      # IN  (D,) one input row
    const double* W1,       # IN  (D, H)
    const double* b1,       # IN  (H,)
    Py_ssize_t D,
    Py_ssize_t H,
    double* a1,             # OUT (H,) x @ W1 + b1
    double* val,            # scratch (D,)
    int* idx,               # scratch (D,)
) noexcept nogil:
    """a1 = x @ W1 + b1 over the nonzero pixels of x."""
    cdef Py_ssize_t j
    combine_rows(val, idx, gather_nonzeros(x, D, val, idx), W1, H, a1)
    for j in range(H):
        a1[j] += b1[j]


cdef inline double sigmoid(double a) noexcept nogil:
    return 1.0 / (1.0 + exp(-a))


cdef inline void output_row(
    const double* z1,       # IN  (H,)
    const double* W2,       # IN  (H, K)
    const double* b2,       # IN  (K,)
    Py_ssize_t H,
    Py_ssize_t K,
    double* a2,             # OUT (K,)   z1 @ W2 + b2
) noexcept nogil:
    cdef Py_ssize_t k
    mf_vector_matrix(z1, H, W2, K, a2)
    for k in range(K):
        a2[k] += b2[k]


cdef inline void logits_sparse_row(
    const floating* val,    # IN  (nnz,) nonzero inputs of one row
    const int* idx,         # IN  (nnz,) their columns
    Py_ssize_t nnz,
    const double* W1,       # IN  (D, H)
    const double* b1,       # IN  (H,)
    const double* W2,       # IN  (H, K)
    const double* b2,       # IN  (K,)
    Py_ssize_t H,
    Py_ssize_t K,
    double* z1,             # OUT (H,) sigmoid(x @ W1 + b1)
    double* a2,             # OUT (K,) z1 @ W2 + b2
) noexcept nogil:
    """The forward pass of one row given as (value, column) pairs."""
    combine_rows(val, idx, nnz, W1, H, z1)
    mf_sigmoid_bias(z1, b1, H)
    output_row(z1, W2, b2, H, K, a2)


cdef inline void logits_dense_row(
    const floating* x,      # IN  (D,) one input row
    const double* W1,       # IN  (D, H)
    const double* b1,       # IN  (H,)
    const double* W2,       # IN  (H, K)
    const double* b2,       # IN  (K,)
    Py_ssize_t D,
    Py_ssize_t H,
    Py_ssize_t K,
    double* z1,             # OUT (H,)
    double* a2,             # OUT (K,)
    double* val,            # scratch (D,)
    int* idx,               # scratch (D,)
) noexcept nogil:
    """The forward pass of one dense row, over its nonzero pixels."""
    logits_sparse_row(val, idx, gather_nonzeros(x, D, val, idx), W1, b1, W2,
                      b2, H, K, z1, a2)


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
    """Index of the first maximum, as numpy.argmax (for NaN-free rows)."""
    cdef Py_ssize_t k, best = 0
    for k in range(1, K):
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


cdef inline double cross_entropy_row(
    double* a,              # IN/OUT (K,) logits in, probabilities out
    Py_ssize_t K,
    Py_ssize_t t,           # IN  the true class
) noexcept nogil:
    """The book's per-row loss -log(softmax(a)[t] + 1e-7)."""
    softmax_row(a, K)
    return -log(a[t] + 1e-7)  # the book's guard inside the log
