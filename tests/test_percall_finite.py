"""The finiteness check of ``x`` folded into the kernels' pass that builds
the blocks' masks (src_cython/simd_rows.c, mf_block_mask_*): each kernel
says whether every value of ``x`` is finite, for a NaN or an infinity in
any row of a block (the eight-row passes and the rows after them) and at
any pixel, and ``TwoLayerNet`` then raises the error the full check words,
in the checks' order (x, t, params), on every SIMD variant."""

import numpy as np
import pytest

from conftest import requires_compiled, trained_params
from mnist_fast import TwoLayerNet, book, kernels
from mnist_fast.compiled_engine import _like
from mnist_fast.validation import as_inputs

pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]

SIGMOID = 0
D, H, K = 37, 9, 4


def kernel_answers(x, p, t, n_threads):
    """What each kernel says of ``x``: predict's and gradient's flags,
    whether loss is NaN, count_correct's count with ``check``."""
    y = np.empty((len(x), K))
    row_loss = np.empty(len(x))
    with np.errstate(all="ignore"):
        return (
            kernels.forward.predict(x, p, SIGMOID, False, y, n_threads),
            kernels.backprop.gradient(x, t, p, SIGMOID, _like(p), n_threads),
            bool(np.isnan(kernels.forward.loss(
                x, t, p, SIGMOID, book.LOG_GUARD, row_loss, n_threads))),
            kernels.forward.count_correct(x.reshape(-1), t, None, p, SIGMOID,
                                          False, None, n_threads, check=True),
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 50, 64, 65, 130])
def test_every_kernel_finds_a_value_that_is_not_finite(dtype, n):
    rng = np.random.default_rng(n)
    p = trained_params((D, H, K), seed=n)
    x = (rng.random((n, D)) * (rng.random((n, D)) < 0.3)).astype(dtype)
    t = rng.integers(0, K, n).astype(np.intp)
    for n_threads in (1, 2):
        ok = kernel_answers(x, p, t, n_threads)
        assert ok[:3] == (True, True, False) and ok[3] >= 0
    rows = sorted({0, n // 2, n - 1, max(0, n - 2)})
    for bad in (np.nan, np.inf, -np.inf):
        for r in rows:
            for i in (0, D // 2, D - 1):
                y = x.copy()
                y[r, i] = bad
                for n_threads in (1, 2):
                    assert kernel_answers(y, p, t, n_threads) == (
                        False, False, True, -1), (bad, r, i, n_threads)


def test_count_without_check_counts_rows_that_are_not_finite():
    rng = np.random.default_rng(3)
    p = trained_params((D, H, K), seed=3)
    x = rng.random((70, D))
    t = rng.integers(0, K, 70).astype(np.intp)
    y = x.copy()
    y[5, 4] = np.nan
    with np.errstate(all="ignore"):
        plain = kernels.forward.count_correct(y.reshape(-1), t, None, p,
                                              SIGMOID, False, None, 1)
        checked = kernels.forward.count_correct(y.reshape(-1), t, None, p,
                                                SIGMOID, False, None, 1,
                                                check=True)
    assert checked == -1 and 0 <= plain <= 70


def x_error(x):
    """The error the full check of x raises."""
    with pytest.raises(ValueError) as info:
        as_inputs(x, x.shape[1])
    return str(info.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["predict", "loss", "accuracy",
                                    "gradient"])
def test_methods_raise_the_full_checks_error(dtype, bad, method):
    rng = np.random.default_rng(1)
    net = TwoLayerNet(D, H, K, seed=0, backend="cython")
    n = 1200 if method == "accuracy" else 100  # the screen's size too
    x = rng.random((n, D)).astype(dtype)
    x[n - 3, 7] = bad
    t = rng.integers(0, K, n)
    args = (x,) if method == "predict" else (x, t)
    with pytest.raises(ValueError) as info:
        getattr(net, method)(*args)
    assert str(info.value) == x_error(x)


@pytest.mark.parametrize("method", ["loss", "gradient"])
def test_x_s_error_comes_before_t_s_and_params(method):
    net = TwoLayerNet(D, H, K, seed=0, backend="cython")
    x = np.random.default_rng(2).random((10, D))
    x[3, 3] = np.nan
    with pytest.raises(ValueError) as info:
        getattr(net, method)(x, np.full(10, K))  # labels out of range too
    assert str(info.value) == x_error(x)
    net.params["W1"][0, 0] = np.inf
    with pytest.raises(ValueError) as info:
        getattr(net, method)(x, np.zeros(10, dtype=int))
    assert str(info.value) == x_error(x)
    with pytest.raises(TypeError, match="t must be a numpy array"):
        getattr(net, method)(x[:3], None)  # its rows are finite


def test_a_nan_loss_of_finite_rows_is_returned():
    """Weights so large that the logits overflow: the loss is NaN with
    finite rows, as the book's, and not an error."""
    rng = np.random.default_rng(4)
    nets = [TwoLayerNet(D, H, K, seed=0, backend=b)
            for b in ("cython", "numpy")]
    x = rng.random((20, D))
    t = rng.integers(0, K, 20)
    for net in nets:
        net.params["W2"][:] = 1e308
        net.params["W2"][:, 1] = -1e308
    with np.errstate(all="ignore"):
        got = [net.loss(x, t) for net in nets]
    assert np.isnan(got[1]) and np.isnan(got[0])
