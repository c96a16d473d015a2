"""The compiled input checks (src_cython/_checks.pyx) against their NumPy
twins in mnist_fast.reference: the same verdict on every kind of value."""

import numpy as np
import pytest

from mnist_fast import reference
from mnist_fast.kernels import checks
from conftest import requires_compiled

pytestmark = requires_compiled

CHUNK = 1 << 16
SIZES = [1, 2, 7, 100 * 784, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5,
         16 * CHUNK, 17 * CHUNK + 3]
SPECIAL = [np.inf, -np.inf, np.nan, -np.nan]
EDGES = [0.0, -0.0, 1e-300, 5e-324, 1.0, -1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_all_finite_matches_numpy(dtype, n, n_threads):
    rng = np.random.default_rng(n)
    info = np.finfo(dtype)
    x = rng.standard_normal(n).astype(dtype)
    x[rng.integers(0, n, 3)] = [info.max, -info.max, info.tiny]  # finite edges
    assert checks.all_finite(x, n_threads) is reference.all_finite(x) is True
    for value in SPECIAL:
        for where in {0, n // 2, n - 1, min(CHUNK, n - 1)}:
            y = x.copy()
            y[where] = value
            assert checks.all_finite(y, n_threads) is False, (value, where)
            assert reference.all_finite(y) is False


def every_exponent(dtype):
    """(sign, mantissa, values): one value per exponent, for both signs and
    a few mantissas; only the all-ones exponent is not finite."""
    bits = {np.float32: (np.uint32, 23, 8), np.float64: (np.uint64, 52, 11)}
    utype, mant, exp_bits = bits[dtype]
    exps = np.arange(2**exp_bits, dtype=utype)
    for sign in (0, 1):
        for m in (0, 1, (1 << mant) - 1):
            u = (utype(sign) << utype(mant + exp_bits)) | (exps << utype(mant)) | utype(m)
            yield sign, m, u.view(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_on_every_exponent(dtype):
    for sign, m, x in every_exponent(dtype):
        per_value = [checks.all_finite(x[i:i + 1], 1) for i in range(len(x))]
        assert per_value == list(np.isfinite(x)), (sign, m)
    assert checks.all_finite(np.empty(0, dtype), 2) is True


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_on_every_exponent_within_the_vectors(dtype):
    # the same values amid finite ones, at places that the vector loop of
    # the scan (not its scalar tail) reads: first, middle and last lanes
    for sign, m, values in every_exponent(dtype):
        for where in (0, 5, 31, 63, 64, 100):
            rows = np.ones((len(values), 131), dtype)
            rows[:, where] = values
            got = [checks.all_finite(row, 1) for row in rows]
            assert got == list(np.isfinite(values)), (sign, m, where)


def onehot_cases():
    rng = np.random.default_rng(1)
    good = np.eye(10)[rng.integers(0, 10, 50)]
    yield good
    for bad in (np.nan, 2.0, 0.5, -1.0, 1.0 + 2**-52, np.inf):
        t = good.copy()
        t[17, 3] = bad if t[17, 3] == 0 else t[17, 3]
        t[17, 4] = bad
        yield t
    two = good.copy()
    two[5] = 0
    two[5, [1, 2]] = 1
    yield two
    none = good.copy()
    none[40] = 0
    yield none
    negzero = good.copy()
    negzero[negzero == 0] = -0.0
    yield negzero


@pytest.mark.parametrize("t", list(onehot_cases()))
def test_onehot_classes_matches_numpy(t):
    out, ref_out = np.empty(len(t), dtype=np.intp), np.empty(len(t), dtype=np.intp)
    row, ref_row = checks.onehot_classes(t, out), reference.onehot_classes(t, ref_out)
    assert row == ref_row
    if row < 0:
        np.testing.assert_array_equal(out, ref_out)


@pytest.mark.parametrize("dtype", [">f8", "<f2", np.longdouble, ">f4"])
def test_validation_scans_any_float_layout(dtype):
    # the compiled scan takes native float32/float64 C arrays; the others
    # (big-endian, half, long double, strided) are scanned by NumPy
    from mnist_fast.validation import as_inputs, as_labels

    t = np.array([1, 2, np.nan, 0], dtype=dtype)
    with pytest.raises(ValueError, match=r"^t must be finite, but 1 value\(s\)"):
        as_labels(t, 4, 3)
    x = np.ones((4, 6), dtype=dtype)[:, ::2]
    x[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"^x must be finite.*index \(3, 1\)"):
        as_inputs(x, 3)
