"""The compiled numerical gradient of the ReLU net (the book's ch. 5)
against the book's central differences of its loss (``LayerNet``)."""

import numpy as np
import pytest

from mnist_fast import book, kernels, reference
from mnist_fast.compiled_engine import compiled_numerical_gradient_fits
from conftest import (ATOL as TOLERANCES, KEYS, assert_entries_like_book,
                      requires_compiled, sampled_entries, trained_params)

# every test here runs once per SIMD variant of the kernels
pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]

ATOL = TOLERANCES["numerical_gradient"]  # max |difference| from the book
RELU = book.ACTIVATIONS.index("relu")    # the kernels' activation code
H = book.H


def kernel_grad(params, x, t):
    """The kernel's numerical gradient of the ReLU net (integer labels),
    the same bit for bit on 1, 2 and 3 threads."""
    before = {k: v.copy() for k, v in params.items()}
    results = []
    for num_threads in (1, 2, 3):
        grads = {k: np.full_like(v, np.nan) for k, v in params.items()}
        kernels.numerical.numerical_gradient(
            np.ascontiguousarray(x), np.asarray(t, dtype=np.intp), params,
            RELU, H, book.LOG_GUARD, grads, num_threads)
        results.append(grads)
    for key in KEYS:
        # the parameters are left exactly as they were
        np.testing.assert_array_equal(params[key], before[key])
        for grads in results[1:]:
            np.testing.assert_array_equal(grads[key], results[0][key])
    return results[0]


def book_net(params):
    """The book's ch. 5 network on a copy of ``params``."""
    return reference.LayerNet.from_params(
        {k: np.array(v, dtype=np.float64) for k, v in params.items()})


def check_full(params, x, t):
    """Every entry against the book's loop; returns the gradient."""
    got = kernel_grad(params, x, t)
    want = book_net(params).numerical_gradient(x.astype(np.float64), t)
    for key in KEYS:
        assert got[key].shape == want[key].shape, key
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=ATOL,
                                   err_msg=key)
    return got


def random_params(shape, rng, std=0.5):
    D, Hn, K = shape
    return {"W1": rng.standard_normal((D, Hn)) * std,
            "b1": rng.standard_normal(Hn) * 0.1,
            "W2": rng.standard_normal((Hn, K)) * std,
            "b2": rng.standard_normal(K) * 0.1}


def check_sampled(params, x, t, seed):
    """At 784-50-10, entries sampled from each parameter array
    (:func:`conftest.sampled_entries`) against the book's loop."""
    got = kernel_grad(params, x, t)
    assert_entries_like_book(got, book_net(params), x.astype(np.float64), t,
                             sampled_entries(x, np.random.default_rng(seed),
                                             30))
    # untouched pixels: exactly 0
    assert (got["W1"][(x == 0).all(axis=0)] == 0).all()


@pytest.mark.parametrize("batch", [1, 3, 10])
@pytest.mark.parametrize("trained", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mnist_batches(mnist_batch, batch, trained, dtype):
    x, t, _ = mnist_batch(batch)
    params = (trained_params((784, 50, 10), seed=batch, scale=3.0) if trained
              else reference.LayerNet(784, 50, 10,
                                      rng=np.random.default_rng(batch)).params)
    check_sampled(params, x.astype(dtype), t, seed=batch)


def test_mnist_batch_100(mnist_batch):
    # the threads' share of the pixels differs from the small batches'
    x, t, _ = mnist_batch(100)
    check_sampled(trained_params((784, 50, 10), seed=1, scale=2.0), x, t,
                  seed=100)


@pytest.mark.parametrize("shape", [(5, 3, 2), (12, 20, 7), (37, 9, 4),
                                   (3, 1, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_shapes_and_dtypes(shape, dtype):
    rng = np.random.default_rng(shape[0] * shape[1])
    x = (rng.standard_normal((9, shape[0])) * 2).astype(dtype)
    x[rng.random(x.shape) < 0.3] = 0.0  # some pixels 0, negative ones too
    check_full(random_params(shape, rng), x, rng.integers(0, shape[2], 9))


@pytest.mark.parametrize("scale", [30.0, 300.0])
def test_large_inputs_take_libm(scale):
    # moves beyond the series' range (|x d| max|W2| > 2**-10): libm
    rng = np.random.default_rng(int(scale))
    params = random_params((8, 6, 4), rng, std=0.05)
    x = rng.standard_normal((7, 8)) * scale
    assert compiled_numerical_gradient_fits(params, x, "relu")
    check_full(params, x, rng.integers(0, 4, 7))


#: Where the test places pre-activations: at the kink and within a step
#: or two of it, on both sides.
KINK_OFFSETS = (0.0, H, -H, H / 2, -H / 2, 2 * H, -2 * H)


def kinked_batch(rng, w2_scale, x_scale, n=8, D0=10, Hn=7, K=4):
    """A batch whose pre-activations sit exactly at 0 and at the offsets
    above for many (row, unit), and the inputs that place them.

    The first D0 pixels and the weights are small dyadic numbers, so that
    x @ W1 + b1 is exact in any order of summation; pixel D0 + b is 1 in
    row b only, and its weights set row b's pre-activations.
    """
    x = np.zeros((n, D0 + n))
    x[:, :D0] = rng.integers(-48, 49, (n, D0)) / 16 * x_scale
    x[:, :D0][rng.random((n, D0)) < 0.3] = 0.0
    x[np.arange(n), D0 + np.arange(n)] = 1.0
    p = {"W1": rng.integers(-64, 65, (D0 + n, Hn)) / 256,
         "b1": rng.integers(-64, 65, Hn) / 256,
         "W2": rng.integers(-128, 129, (Hn, K)) / 64 * w2_scale,
         "b2": rng.integers(-64, 65, K) / 64}
    p["W1"][D0:] = 0.0
    rest = x @ p["W1"] + p["b1"]  # exact
    for b in range(n):
        for j in range(Hn):
            if (b + j) % 8 < len(KINK_OFFSETS):  # the others stay as drawn
                p["W1"][D0 + b, j] = KINK_OFFSETS[(b + j) % 8] - rest[b, j]
    return p, x, rng.integers(0, K, n)


@pytest.mark.parametrize("w2_scale, x_scale", [
    (1 / 64, 1.0),   # the Tiny series for the small pixels
    (1.0, 1.0),      # the Series
    (1.0, 16.0),     # libm for the large pixels
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kinks(w2_scale, x_scale, dtype):
    rng = np.random.default_rng(int(x_scale / w2_scale))
    p, x, t = kinked_batch(rng, w2_scale, x_scale)
    a1 = x @ p["W1"] + p["b1"]
    assert (a1 == 0).sum() >= 7  # exactly at the kink
    for offset in KINK_OFFSETS[1:]:  # and at each offset (within rounding)
        assert (np.abs(a1 - offset) <= 1e-12).sum() >= 7, offset
    # the book's steps cross it: a1 and a1 + x d of other signs
    moved = a1[:, None, :] + x[:, :, None] * H
    crossing = (np.sign(moved) != np.sign(a1[:, None, :])) & (x != 0)[:, :, None]
    assert crossing.sum() >= 20
    check_full(p, x.astype(dtype), t)


def test_units_dead_in_every_row_have_zero_w2_gradient():
    # a unit at or below 0 in every row, by more than any step moves it:
    # its W2 row and its W1 column, b1 entry are exactly 0, as the book's
    rng = np.random.default_rng(5)
    p = random_params((6, 4, 3), rng)
    x = rng.standard_normal((5, 6))
    p["b1"][2] = -1.0 - np.abs(x @ p["W1"][:, 2]).max()
    got = check_full(p, x, rng.integers(0, 3, 5))
    assert (got["W2"][2] == 0).all() and (got["W1"][:, 2] == 0).all()
    assert got["b1"][2] == 0


def test_fits_bounds_relu_units_by_their_input():
    # A ReLU unit moves by all of its pre-activation's move and is not
    # bounded by 1: large inputs that a sigmoid's saturation tames are too
    # large for the kernel with ReLU, and the book's loop runs.
    rng = np.random.default_rng(3)
    params = trained_params((4, 3, 3), seed=4, std=0.01)
    x = rng.standard_normal((6, 4)) * 1e5
    assert compiled_numerical_gradient_fits(params, x, "sigmoid")
    assert not compiled_numerical_gradient_fits(params, x, "relu")
    # a step of W2 moves a logit by z1 * step: large hidden units too
    params = {"W1": np.full((4, 3), 1e3), "b1": np.zeros(3),
              "W2": np.full((3, 3), 1e-6), "b2": np.zeros(3)}
    x = np.full((2, 4), 10.0)
    assert compiled_numerical_gradient_fits(params, x, "sigmoid")
    assert not compiled_numerical_gradient_fits(params, x, "relu")
    assert compiled_numerical_gradient_fits(params, x / 1e3, "relu")
    with pytest.raises(ValueError, match="activation"):
        compiled_numerical_gradient_fits(params, x, "tanh")
