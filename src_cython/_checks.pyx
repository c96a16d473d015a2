"""Compiled input checks of ``mnist_fast.validation``: finiteness and
one-hot rows, each one pass over the array without the GIL, and the
``ready_*`` fast paths of its three boundary checks.

Private module: ``mnist_fast.validation`` calls these and words the errors
itself.  ``all_finite`` and ``onehot_classes`` take arrays it has made
C-contiguous and of the dtype named here.  Each ``ready_*`` function takes
the user's own object and vouches for it only when the full check of
``mnist_fast.validation`` would pass it unchanged (or, for labels, turn it
into the same class indices); for anything else it answers "not ready"
(None or False) and the full check decides, wording any error.  They read
each array's layout afresh through the buffer protocol on every call
(nothing is remembered between calls), so an array modified in place,
reshaped, given another dtype or replaced is seen as it is now.
"""

import numpy as np

from cpython.buffer cimport (PyBUF_RECORDS_RO, PyBUF_WRITABLE,
                             PyBuffer_Release, PyObject_GetBuffer)
from cython cimport floating
from cython.parallel cimport prange

from _common cimport mf_all_finite_f32, mf_all_finite_f64

include "_simd.pxi"  # simd(), simd_variants(), use_simd()

cdef enum:
    # Values per chunk of a parallel scan, and the chunks from which a scan
    # is parallel: a thread team pays for itself only on large arrays.
    CHUNK = 1 << 16
    MIN_PARALLEL_CHUNKS = 16
    # The most arrays ready_params checks in one call (the network has 4).
    MAX_ARRAYS = 8

cdef object ndarray = np.ndarray
cdef object intp = np.intp
# the format character of np.intp's buffers ('l' on Linux, 'q' on Windows):
# labels of that type are class indices as they are
cdef char INTP_FORMAT = ord(memoryview(np.empty(1, intp)).format)


cdef inline bint finite_in(const floating* x, Py_ssize_t n) noexcept nogil:
    """Whether all of ``x[:n]`` are finite: the exponent bits of each value
    plus one unit of the exponent carry into the sign bit only for NaN and
    infinities (simd_rows.c, in this module's SIMD variant)."""
    if floating is float:
        return mf_all_finite_f32(x, n)
    else:
        return mf_all_finite_f64(x, n)


cdef bint finite_values(const floating* x, Py_ssize_t n,
                        int n_threads) noexcept nogil:
    """Whether all of ``x[:n]`` are finite; ``n_threads`` share the chunks
    of a large ``x``, each taking the next when done (a thread that another
    program slows takes fewer)."""
    cdef Py_ssize_t c, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t bad = 0
    if n == 0:
        return True
    if n_chunks < MIN_PARALLEL_CHUNKS or n_threads <= 1:
        return finite_in(x, n)
    for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
        bad += not finite_in(&x[c * CHUNK], min(CHUNK, n - c * CHUNK))
    return not bad


def all_finite(
    const floating[::1] x,        # IN  the values, flattened
    int n_threads,
):
    """Whether no value of ``x`` is NaN or infinite (see finite_values)."""
    cdef bint ok
    with nogil:
        ok = finite_values(&x[0] if x.shape[0] else NULL, x.shape[0],
                           n_threads)
    return ok


cdef inline Py_ssize_t onehot_row(const floating* row,
                                  Py_ssize_t K) noexcept nogil:
    """The column of the 1 of ``row[:K]``, or -1 unless it holds only 0s
    and exactly one 1 (NaN is neither)."""
    cdef Py_ssize_t k, cls = 0, ones = 0
    cdef double v
    for k in range(K):  # branches: the 0s are predicted, which is faster
        v = row[k]
        if v == 1.0:
            ones += 1
            cls = k
        elif v != 0.0:
            return -1
    return cls if ones == 1 else -1


cdef Py_ssize_t onehot_rows(const floating* t, Py_ssize_t N, Py_ssize_t K,
                            Py_ssize_t* out) noexcept nogil:
    """Each row's class into ``out``; the first row that is not one-hot,
    or -1 when all are."""
    cdef Py_ssize_t b, cls
    for b in range(N):
        cls = onehot_row(t + b * K, K)
        if cls < 0:
            return b
        out[b] = cls
    return -1


def onehot_classes(
    const double[:, ::1] t,       # IN  (N, K) rows of 0s and one 1
    Py_ssize_t[::1] out,          # OUT (N,) the column of each row's 1
):
    """Fill ``out`` with each row's class; return the first row that is not
    one-hot (only 0s and exactly one 1), or -1 when all are."""
    cdef Py_ssize_t bad
    if out.shape[0] != t.shape[0]:
        raise ValueError("out needs one entry per row of t")
    if t.shape[0] == 0:
        return -1
    with nogil:
        bad = onehot_rows(&t[0, 0], t.shape[0], t.shape[1], &out[0])
    return bad


# -- the fast paths: the user's objects, read through the buffer protocol --

cdef enum Layout:
    # what a buffer holds, as far as the fast paths care: native float32 or
    # float64, a native integer type, or anything else
    OTHER, F32, F64, INTEGER


cdef bint acquire(object obj, Py_buffer* view):
    """Whether ``view`` now describes the exact ndarray ``obj`` (release
    it then); False for anything else, which the full check handles."""
    if type(obj) is not ndarray:
        return False
    try:
        PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO)
    except Exception:  # dtypes without a buffer format (datetime, ...)
        return False
    return True


cdef Layout layout_of(const Py_buffer* view) noexcept:
    """The values of ``view``: a native type is one format character (a
    byte order or a structure makes more)."""
    cdef const char* f = view.format
    if f == NULL or f[0] == 0 or f[1] != 0:
        return OTHER
    if f[0] == b'f' and view.itemsize == sizeof(float):
        return F32
    if f[0] == b'd' and view.itemsize == sizeof(double):
        return F64
    if view.itemsize == integer_size(f[0]):
        return INTEGER
    return OTHER


cdef Py_ssize_t integer_size(char f) noexcept:
    """The size of the native integer type of format character ``f``, 0
    when it names none."""
    if f == b'b' or f == b'B':
        return sizeof(char)
    if f == b'h' or f == b'H':
        return sizeof(short)
    if f == b'i' or f == b'I':
        return sizeof(int)
    if f == b'l' or f == b'L':
        return sizeof(long)
    if f == b'q' or f == b'Q':
        return sizeof(long long)
    return 0


cdef bint c_order(const Py_buffer* view) noexcept:
    """Whether ``view`` is C-contiguous, as NumPy's flag says (the stride
    of a dimension of length 1 does not count)."""
    cdef Py_ssize_t i, step = view.itemsize
    for i in range(view.ndim - 1, -1, -1):
        if view.shape[i] != 1 and view.strides[i] != step:
            return False
        step *= view.shape[i]
    return True


cdef bint finite_view(const Py_buffer* view, Layout layout,
                      int n_threads) noexcept nogil:
    """Whether the float32/float64 values of ``view`` are all finite."""
    if layout == F32:
        return finite_values(<const float*> view.buf,
                             view.len // sizeof(float), n_threads)
    return finite_values(<const double*> view.buf,
                         view.len // sizeof(double), n_threads)


def ready_inputs(x, Py_ssize_t n_features, Py_ssize_t max_rows,
                 int n_threads, bint scan=True):
    """Whether ``x`` is what ``validation.as_inputs`` returns unchanged: an
    exact ndarray of native float32 or float64, 2-D, 1 to ``max_rows``
    rows of ``n_features``, C-contiguous and all finite (scanned by
    ``n_threads`` when large).  With ``scan`` false, all but the last:
    the values are left to a kernel that reads them anyway."""
    cdef Py_buffer view
    cdef Layout layout
    cdef bint ok
    if not acquire(x, &view):
        return False
    try:
        layout = layout_of(&view)
        if not ((layout == F32 or layout == F64) and view.ndim == 2
                and 0 < view.shape[0] <= max_rows
                and view.shape[1] == n_features and c_order(&view)):
            return False
        if not scan:
            return True
        with nogil:
            ok = finite_view(&view, layout, n_threads)
        return ok
    finally:
        PyBuffer_Release(&view)


cdef bint shape_is(const Py_buffer* view, tuple expected) except -1:
    """Whether ``view`` has the shape ``expected``."""
    cdef Py_ssize_t i
    if len(expected) != view.ndim:
        return False
    for i in range(view.ndim):
        if expected[i] != view.shape[i]:
            return False
    return True


def ready_params(params, tuple names, dict shapes, unscanned=None):
    """``{name: params[name]}`` for ``names`` when ``params`` is a dict
    whose arrays are what ``validation.as_params`` returns unchanged: exact
    ndarrays of native float64, of the shapes ``shapes[name]``,
    C-contiguous and all finite; None otherwise.  The values of the array
    named ``unscanned`` (if not None) are not scanned: they are left to a
    kernel that reads them anyway."""
    cdef Py_buffer views[MAX_ARRAYS]
    cdef bint scan[MAX_ARRAYS]
    cdef Py_ssize_t n = 0, i
    cdef bint ok = True
    if type(params) is not dict or len(names) > MAX_ARRAYS:
        return None
    out = {}
    try:
        for name in names:
            array = (<dict> params).get(name)
            if not acquire(array, &views[n]):
                return None
            scan[n] = name != unscanned
            n += 1
            if not (layout_of(&views[n - 1]) == F64
                    and shape_is(&views[n - 1], shapes[name])
                    and c_order(&views[n - 1])):
                return None
            out[name] = array
        with nogil:
            for i in range(n):
                if scan[i] and not finite_view(&views[i], F64, 1):
                    ok = False
                    break
        return out if ok else None
    finally:
        for i in range(n):
            PyBuffer_Release(&views[i])


ctypedef fused label_t:
    signed char
    unsigned char
    short
    unsigned short
    int
    unsigned int
    long
    unsigned long
    long long
    unsigned long long


cdef bint labels_into(const label_t* t, Py_ssize_t N, Py_ssize_t K,
                      Py_ssize_t* out) noexcept nogil:
    """``t[:N]`` into ``out`` (when not NULL); whether all are in [0, K)."""
    cdef Py_ssize_t b
    cdef bint inside = True
    for b in range(N):
        # a negative label becomes a huge unsigned one: one comparison
        inside &= <unsigned long long> t[b] < <unsigned long long> K
    if inside and out != NULL:
        for b in range(N):
            out[b] = <Py_ssize_t> t[b]
    return inside


cdef bint labels_as_classes(const Py_buffer* view, Py_ssize_t K,
                            Py_ssize_t* out) noexcept nogil:
    """The integer labels of ``view`` into ``out`` (NULL: only checked);
    whether all are classes in [0, K)."""
    cdef char f = view.format[0]
    cdef Py_ssize_t N = view.shape[0]
    if f == b'b':
        return labels_into(<const signed char*> view.buf, N, K, out)
    if f == b'B':
        return labels_into(<const unsigned char*> view.buf, N, K, out)
    if f == b'h':
        return labels_into(<const short*> view.buf, N, K, out)
    if f == b'H':
        return labels_into(<const unsigned short*> view.buf, N, K, out)
    if f == b'i':
        return labels_into(<const int*> view.buf, N, K, out)
    if f == b'I':
        return labels_into(<const unsigned int*> view.buf, N, K, out)
    if f == b'l':
        return labels_into(<const long*> view.buf, N, K, out)
    if f == b'L':
        return labels_into(<const unsigned long*> view.buf, N, K, out)
    if f == b'q':
        return labels_into(<const long long*> view.buf, N, K, out)
    return labels_into(<const unsigned long long*> view.buf, N, K, out)


def ready_labels(t, Py_ssize_t n_samples, Py_ssize_t n_classes):
    """The class indices ``validation.as_labels`` returns for ``t`` when
    ``t`` is an exact C-contiguous ndarray of either integer labels in
    ``[0, n_classes)`` (of any native integer type; ``t`` itself when it
    is ``np.intp`` already) or one-hot rows of native float32
    or float64 (``(n_samples, n_classes)``, only 0s and one 1 per row);
    None otherwise."""
    cdef Py_buffer view, out_view
    cdef Layout layout
    cdef bint ok
    if not acquire(t, &view):
        return None
    try:
        layout = layout_of(&view)
        if not c_order(&view):
            return None
        if layout == INTEGER and view.ndim == 1 and view.shape[0] == n_samples:
            out = (None if view.format[0] == INTP_FORMAT
                   else np.empty(n_samples, dtype=intp))
        elif ((layout == F32 or layout == F64) and view.ndim == 2
              and view.shape[0] == n_samples and view.shape[1] == n_classes):
            out = np.empty(n_samples, dtype=intp)
        else:
            return None
        if out is None:  # the labels are class indices already
            with nogil:
                ok = labels_as_classes(&view, n_classes, NULL)
            return t if ok else None
        PyObject_GetBuffer(out, &out_view, PyBUF_RECORDS_RO | PyBUF_WRITABLE)
        try:
            with nogil:
                if layout == INTEGER:
                    ok = labels_as_classes(&view, n_classes,
                                           <Py_ssize_t*> out_view.buf)
                elif layout == F32:
                    ok = onehot_rows(<const float*> view.buf, n_samples,
                                     n_classes, <Py_ssize_t*> out_view.buf) < 0
                else:
                    ok = onehot_rows(<const double*> view.buf, n_samples,
                                     n_classes, <Py_ssize_t*> out_view.buf) < 0
        finally:
            PyBuffer_Release(&out_view)
        return out if ok else None
    finally:
        PyBuffer_Release(&view)
