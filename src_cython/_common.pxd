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
from libc.math cimport exp, log

cdef inline void hidden_preactivation_row(
    const floating* x,      # IN  (D,)   one input row
    const double* W1,       # IN  (D, H)
    const double* b1,       # IN  (H,)
    Py_ssize_t D,
    Py_ssize_t H,
    double* a1,             # OUT (H,)   x @ W1 + b1
) noexcept nogil:
    """a1 = x @ W1 + b1, skipping the (many) zero pixels of x."""
    cdef Py_ssize_t i, j
    cdef double xi
    cdef const double* w
    for j in range(H):
        a1[j] = 0.0
    for i in range(D):
        xi = x[i]
        if xi != 0.0:
            w = W1 + i * H
            for j in range(H):
                a1[j] += xi * w[j]
    for j in range(H):
        a1[j] += b1[j]


cdef inline double sigmoid(double a) noexcept nogil:
    return 1.0 / (1.0 + exp(-a))


cdef inline void hidden_row(
    const floating* x,      # IN  (D,)   one input row
    const double* W1,       # IN  (D, H)
    const double* b1,       # IN  (H,)
    Py_ssize_t D,
    Py_ssize_t H,
    double* z1,             # OUT (H,)   sigmoid(x @ W1 + b1)
) noexcept nogil:
    cdef Py_ssize_t j
    hidden_preactivation_row(x, W1, b1, D, H, z1)
    for j in range(H):
        z1[j] = sigmoid(z1[j])


cdef inline void output_row(
    const double* z1,       # IN  (H,)
    const double* W2,       # IN  (H, K)
    const double* b2,       # IN  (K,)
    Py_ssize_t H,
    Py_ssize_t K,
    double* a2,             # OUT (K,)   z1 @ W2 + b2
) noexcept nogil:
    cdef Py_ssize_t j, k
    cdef double zj
    cdef const double* w
    for k in range(K):
        a2[k] = 0.0
    for j in range(H):
        zj = z1[j]
        w = W2 + j * K
        for k in range(K):
            a2[k] += zj * w[k]
    for k in range(K):
        a2[k] += b2[k]


cdef inline double shifted_exp_row(
    double* a,              # IN/OUT (K,) logits in, exp(a - max a) out
    Py_ssize_t K,
) noexcept nogil:
    """In-place exp(a - max a); returns their sum."""
    cdef Py_ssize_t k
    cdef double m = a[0], s = 0.0
    for k in range(1, K):
        if a[k] > m:
            m = a[k]
    for k in range(K):
        a[k] = exp(a[k] - m)
        s += a[k]
    return s


cdef inline void softmax_row(
    double* a,              # IN/OUT (K,) logits in, probabilities out
    Py_ssize_t K,
) noexcept nogil:
    """In-place max-shifted softmax, as the book's softmax."""
    cdef Py_ssize_t k
    cdef double s = shifted_exp_row(a, K)
    for k in range(K):
        a[k] = a[k] / s


cdef inline Py_ssize_t argmax_row(const double* a, Py_ssize_t K) noexcept nogil:
    """Index of the first maximum, as numpy.argmax."""
    cdef Py_ssize_t k, best = 0
    for k in range(1, K):
        if a[k] > a[best]:
            best = k
    return best


cdef inline double cross_entropy_row(
    double* a,              # IN/OUT (K,) logits in, probabilities out
    Py_ssize_t K,
    Py_ssize_t t,           # IN  the true class
) noexcept nogil:
    """The book's per-row loss -log(softmax(a)[t] + 1e-7)."""
    softmax_row(a, K)
    return -log(a[t] + 1e-7)  # the book's guard inside the log
