"""The compiled numerical gradient where its blocks end: hidden layers that
are not a multiple of the series rows' padding (8 units), more logits than
the output units take side by side (16), and rows of W2 whose units are
too large for the series next to rows that are not."""

import numpy as np
import pytest

from mnist_fast.compiled_engine import compiled_numerical_gradient_fits
from conftest import (KEYS, assert_compiled_like_book, compiled_net,
                      requires_compiled, trained_params)
from test_relu_numerical import check_full as check_full_relu

# every test here runs once per SIMD variant of the kernels
pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]

#: (D, H, K): H below, at and past a multiple of 8; K below, at and past
#: a multiple of 16
SHAPES = [(6, 7, 17), (5, 8, 16), (4, 9, 33), (7, 17, 20), (3, 16, 2)]
#: weights whose rows' moves are mostly Tiny and Series (0.03), mostly
#: Series and libm (0.3)
STDS = [0.03, 0.3]


def batch(shape, rng, n=11):
    x = rng.standard_normal((n, shape[0])) * 1.5
    x[rng.random(x.shape) < 0.3] = 0.0  # some pixels 0, negative ones too
    return x, rng.integers(0, shape[2], n)


@pytest.mark.parametrize("std", STDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid_shapes(shape, std):
    rng = np.random.default_rng(sum(shape))
    x, t = batch(shape, rng)
    params = trained_params(shape, seed=shape[1], std=std)
    assert_compiled_like_book(params, x, t, ("numerical_gradient",))


@pytest.mark.parametrize("std", STDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid_shapes_bit_identical_whatever_the_threads(shape, std):
    rng = np.random.default_rng(sum(shape) + 1)
    x, t = batch(shape, rng, n=40)
    t_hot = np.eye(shape[2])[t]
    params = trained_params(shape, seed=shape[1], std=std)
    one = compiled_net(params, 1).numerical_gradient(x, t_hot)
    for num_threads in (2, 3):
        many = compiled_net(params, num_threads).numerical_gradient(x, t_hot)
        for key in KEYS:
            np.testing.assert_array_equal(one[key], many[key])


@pytest.mark.parametrize("std", STDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_shapes(shape, std):
    # (check_full_relu: every entry against the book's ch. 5 loop, and the
    # same bits on 1, 2 and 3 threads)
    rng = np.random.default_rng(sum(shape) + 2)
    x, t = batch(shape, rng)
    params = trained_params(shape, seed=shape[1], std=std)
    check_full_relu(params, x, t)


def test_relu_rows_of_w2_series_and_libm():
    # Unit 0's ReLU activations reach ~20: a step of W2[0, k] moves a
    # logit by more than the series' 2**-10, so row 0 of W2 takes libm;
    # the other units stay small and take the series (17 logits: one
    # full block and one of 1).
    rng = np.random.default_rng(5)
    shape = (6, 10, 17)
    x, t = batch(shape, rng)
    x = np.abs(x)
    params = trained_params(shape, seed=3, std=0.1)
    params["W1"][:, 0] = 4.0
    z = np.maximum(x @ params["W1"] + params["b1"], 0)
    assert z[:, 0].max() * 1e-4 > 2.0 ** -10 > z[:, 1:].max() * 1e-4
    assert compiled_numerical_gradient_fits(params, x, "relu")
    check_full_relu(params, x, t)
