"""Compiled numerical gradient against the book's central differences."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet
from mnist_fast.compiled_engine import compiled_numerical_gradient_fits
from conftest import (KEYS, assert_compiled_like_book,
                      assert_entries_like_book, compiled_net, one_hot,
                      reference_net, requires_compiled, sampled_entries,
                      trained_params)

# every test here runs once per SIMD variant of the kernels
pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]


def compiled_grad(params, x, t, num_threads=None):
    net = compiled_net(params, num_threads)
    grads = net.numerical_gradient(x, t)
    for key in KEYS:  # the parameters are left exactly as they were
        np.testing.assert_array_equal(net.params[key], params[key])
    return grads


def check_full(params, x, t):
    """Every entry against the book's loop (small networks)."""
    assert_compiled_like_book(params, x, t, ("numerical_gradient",))


def check_sampled(params, x, t, n_w1=60, seed=0):
    """At 784-50-10, entries sampled from each parameter array
    (:func:`conftest.sampled_entries`) against the book's loop."""
    rng = np.random.default_rng(seed)
    got = compiled_grad(params, x, one_hot(t, 10))
    assert_entries_like_book(got, reference_net(params), x, t,
                             sampled_entries(x, rng, n_w1))
    # untouched pixels: exactly 0
    assert (got["W1"][(x == 0).all(axis=0)] == 0).all()


@pytest.mark.parametrize("batch", [1, 3, 100])
@pytest.mark.parametrize("trained", [False, True])
def test_mnist_batches(mnist_batch, batch, trained):
    x, t, _ = mnist_batch(batch)
    params = (trained_params((784, 50, 10), seed=batch, scale=3.0) if trained
              else TwoLayerNet(784, 50, 10, seed=batch).params)
    check_sampled(params, x, t, seed=batch)


def test_mnist_batch_256_float64_inputs(mnist_batch):
    x, t, _ = mnist_batch(256)
    check_sampled(trained_params((784, 50, 10), seed=9), x.astype(np.float64),
                  t, n_w1=30)


@pytest.mark.parametrize("batch", [1, 2, 7, 64, 256])
def test_random_shape_37_9_4(batch):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 37)) * 2.0  # negative inputs too
    x[rng.random(x.shape) < 0.5] = 0.0
    check_full(trained_params((37, 9, 4), seed=batch), x, rng.integers(0, 4, batch))


@pytest.mark.parametrize("shape", [(5, 3, 2), (12, 20, 7), (3, 1, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_shapes_and_dtypes(shape, dtype):
    rng = np.random.default_rng(shape[0] * shape[1])
    x = (rng.standard_normal((9, shape[0])) * 3).astype(dtype)
    check_full(trained_params(shape, seed=2), x, rng.integers(0, shape[2], 9))


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_saturating_weights_and_large_inputs(scale):
    # std 1.0 weights saturate the sigmoid; large inputs leave the range
    # where the compiled code may use its series (it then uses libm)
    rng = np.random.default_rng(int(scale))
    params = trained_params((20, 8, 5), seed=4, std=1.0, scale=1.0)
    x = rng.standard_normal((16, 20)) * scale
    check_full(params, x, rng.integers(0, 5, 16))


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
@pytest.mark.parametrize("scale", [4e5, 1e6, 1e8])
def test_steps_that_move_units_out_of_saturation(scale):
    # With x ~ 1e6 a step of h moves a pre-activation by ~100: saturated
    # units leave saturation, 1 + c q of the exact algebra underflows to 0
    # and the compiled gradient was NaN (found by tests/test_fuzz.py).
    rng = np.random.default_rng(int(scale))
    params = trained_params((4, 3, 3), seed=4, std=0.01)
    x = rng.standard_normal((6, 4)) * scale
    assert compiled_numerical_gradient_fits(params, x)  # the kernel runs
    check_full(params, x, rng.integers(0, 3, 6))


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
def test_steps_that_move_logits_far_run_the_books_loop():
    # Weights of ~1000 and inputs of ~1000: a step moves logits by ~100,
    # where the kernel's expm1 of the moves overflows (it returned NaN).
    rng = np.random.default_rng(9)
    params = trained_params((4, 3, 3), seed=4, std=1.0, scale=100.0)
    x = rng.standard_normal((6, 4)) * 1e3
    assert not compiled_numerical_gradient_fits(params, x)
    check_full(params, x, rng.integers(0, 3, 6))


def test_very_confident_network():
    # p_t close to 1 and close to 0 in different rows
    rng = np.random.default_rng(8)
    params = trained_params((10, 6, 3), seed=5, std=1.0, scale=8.0)
    x = rng.random((12, 10))
    check_full(params, x, rng.integers(0, 3, 12))


@pytest.mark.parametrize("num_threads", [2, 3])
def test_bit_identical_whatever_the_threads(mnist_batch, num_threads):
    x, t, _ = mnist_batch(100)
    params = trained_params((784, 50, 10), seed=1, scale=2.0)
    one = compiled_grad(params, x, t, num_threads=1)
    many = compiled_grad(params, x, t, num_threads=num_threads)
    for key in KEYS:
        np.testing.assert_array_equal(one[key], many[key])


def test_agrees_with_backprop(mnist_batch):
    # The book's gradient check on the compiled engine.  Two effects keep
    # them apart: central differences are off by O(h^2) ~ 1e-9 here, and
    # backprop's dy = (y - t) / N ignores the loss's 1e-7 guard, which
    # scales the true derivative by y_t / (y_t + 1e-7): ~1e-6 relative
    # while y_t ~ 0.1 (fresh weights), i.e. up to ~3e-7 on b2.
    x, t, t_hot = mnist_batch(3)
    net = TwoLayerNet(784, 50, 10, backend="cython", seed=0)
    num, back = net.numerical_gradient(x, t_hot), net.gradient(x, t_hot)
    for key in KEYS:
        scale = np.abs(back[key]).max()
        assert np.abs(num[key] - back[key]).max() <= 2e-6 * scale + 1e-9, key
