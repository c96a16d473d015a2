# Rows kept compressed: the training set as ``to_csr`` (_backprop.pyx)
# stores it, and how the kernels read one row of it back.
#
# A row's nonzeros are stored in a few bytes each, so that ``train`` holds
# little beside the caller's own arrays: the column as uint16 (C int when
# the rows are wider than 65536 values) and, when the nonzeros of the whole
# set take at most 256 distinct values (the 256 grey levels of images), the
# value as a uint8 code into a table of 256 values of x's type.  Decoding
# copies every value bit for bit, so the kernels see the rows as before.

from cython cimport floating
from libc.stdint cimport int64_t, uint8_t, uint16_t
from libc.string cimport memcpy

from _common cimport mf_prefetch

#: the length of the table of a coded set's values
cdef enum:
    N_CODES = 256


cdef struct Rows:
    # A CSR matrix in to_csr's form (see above).
    const int64_t* indptr   # (N + 1,) where each row starts
    const void* indices     # (nnz,) the column of each nonzero: uint16,
                            #        or int when wide
    bint wide
    const uint8_t* codes    # (nnz,) each nonzero's code, or NULL
    const void* values      # (N_CODES,) the value of each code; without
                            #        codes (nnz,) each nonzero's value


cdef inline Rows rows_of(csr, const floating[::1] values) except *:
    """The ``Rows`` of a ``CompressedRows`` (its ``indptr``, ``indices``,
    ``codes``); ``values`` is its ``values``, of the rows' type.  The
    arrays must outlive the ``Rows``.  ValueError when they do not fit
    together."""
    cdef const int64_t[::1] indptr = csr.indptr
    cdef const uint16_t[::1] narrow
    cdef const int[::1] wide
    cdef const uint8_t[::1] codes
    cdef Py_ssize_t N = indptr.shape[0] - 1, nnz, n_indices, n_values
    cdef Rows r
    if N < 0 or indptr[0] != 0:
        raise ValueError("indptr must start at 0")
    nnz = indptr[N]
    r.indptr = &indptr[0]
    r.wide = csr.indices.dtype.itemsize != 2
    if r.wide:
        wide = csr.indices
        r.indices = &wide[0] if wide.shape[0] else NULL
        n_indices = wide.shape[0]
    else:
        narrow = csr.indices
        r.indices = &narrow[0] if narrow.shape[0] else NULL
        n_indices = narrow.shape[0]
    if csr.codes is None:
        r.codes = NULL
        n_values = values.shape[0]
    else:
        codes = csr.codes
        r.codes = &codes[0] if codes.shape[0] else NULL
        n_values = codes.shape[0]
        if values.shape[0] != N_CODES:
            raise ValueError(f"coded rows need {N_CODES} values")
    if n_indices != nnz or n_values != nnz:
        raise ValueError("the CSR arrays do not fit together")
    r.values = &values[0] if values.shape[0] else NULL
    return r


cdef inline Py_ssize_t decode_row(
    const Rows* r,
    Py_ssize_t row,
    floating* val,          # OUT (nnz,) the row's nonzero values, in order
    int* idx,               # OUT (nnz,) their columns
) noexcept nogil:
    """Row ``row`` of ``r`` as (value, column) pairs; returns their number
    (``floating`` is the rows' type)."""
    cdef int64_t start = r.indptr[row]
    cdef Py_ssize_t n, nnz = r.indptr[row + 1] - start
    cdef const uint16_t* narrow
    cdef const uint8_t* codes
    cdef const floating* table = <const floating*> r.values
    if nnz == 0:  # the arrays may be empty (NULL)
        return 0
    if r.wide:
        memcpy(idx, <const int*> r.indices + start, nnz * sizeof(int))
    else:
        narrow = <const uint16_t*> r.indices + start
        for n in range(nnz):
            idx[n] = narrow[n]
    if r.codes == NULL:
        memcpy(val, table + start, nnz * sizeof(floating))
    else:
        codes = r.codes + start
        for n in range(nnz):
            val[n] = table[codes[n]]
    return nnz


cdef inline void prefetch_stored_row(
    const Rows* r, Py_ssize_t row, Py_ssize_t value_size,
) noexcept nogil:
    """Ask for the cache lines of row ``row`` of ``r`` (a hint)."""
    cdef int64_t start = r.indptr[row]
    cdef Py_ssize_t nnz = r.indptr[row + 1] - start
    if nnz == 0:
        return
    if r.wide:
        mf_prefetch(<const int*> r.indices + start, nnz, sizeof(int))
    else:
        mf_prefetch(<const uint16_t*> r.indices + start, nnz, sizeof(uint16_t))
    if r.codes == NULL:
        mf_prefetch(<const char*> r.values + start * value_size, nnz,
                    value_size)
    else:
        mf_prefetch(r.codes + start, nnz, sizeof(uint8_t))


cdef inline Py_ssize_t decoded_width(Py_ssize_t D) noexcept nogil:
    """Scratch for ``decode_row`` on rows of ``D`` values, in doubles: D
    values, then D columns from the D-th double on."""
    return D + (D + 1) // 2
