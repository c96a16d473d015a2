"""The kernels' blocks of rows (src_cython/_common.pxd: at most 64 rows,
pixel by pixel, units in passes of vector blocks) against the book: hidden
sizes around the vector and pass widths, batch sizes around the block size,
rows without nonzeros, float32 and float64 rows, and results that do not
depend on the threads."""

import numpy as np
import pytest

from conftest import (KEYS, assert_compiled_like_book, compiled_net,
                      requires_compiled, trained_params)

pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]

METHODS = ("predict", "loss", "accuracy", "gradient")


def sparse_rows(rng, n, d, dtype, density=0.2):
    """n rows like MNIST's: mostly zeros, every other row of the first few
    without any nonzero, one row all nonzero."""
    x = rng.random((n, d)) * (rng.random((n, d)) < density)
    x[:min(n, 6):2] = 0.0
    if n > 7:
        x[7] = rng.random(d) + 0.5
        x[7, :3] = -0.0
    return x.astype(dtype)


@pytest.mark.parametrize("hidden", [1, 3, 7, 8, 9, 50, 64, 100, 500])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hidden_sizes(hidden, dtype):
    rng = np.random.default_rng(hidden)
    shape = (61, hidden, 7)
    x = sparse_rows(rng, 70, shape[0], dtype)
    assert_compiled_like_book(trained_params(shape, seed=hidden), x,
                              rng.integers(0, 7, 70), METHODS)


@pytest.mark.parametrize("batch", [1, 2, 63, 64, 65, 99, 100, 129, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_sizes(batch, dtype):
    rng = np.random.default_rng(batch)
    shape = (100, 50, 10)
    x = sparse_rows(rng, batch, shape[0], dtype)
    assert_compiled_like_book(trained_params(shape, seed=batch), x,
                              rng.integers(0, 10, batch), METHODS,
                              num_threads=2)


def test_rows_without_nonzeros():
    rng = np.random.default_rng(5)
    shape = (40, 9, 4)
    for x in (np.zeros((3, 40)), np.zeros((100, 40), np.float32)):
        assert_compiled_like_book(trained_params(shape, seed=5), x,
                                  rng.integers(0, 4, len(x)), METHODS)


@pytest.mark.parametrize("hidden", [3, 50, 100])
@pytest.mark.parametrize("batch", [1, 65, 300])
def test_blocks_do_not_depend_on_threads(hidden, batch):
    rng = np.random.default_rng(hidden + batch)
    params = trained_params((784, hidden, 10), seed=hidden)
    x = sparse_rows(rng, batch, 784, np.float32)
    t = rng.integers(0, 10, batch)
    one = compiled_net(params, 1)
    for n in (2, 3, 5):
        many = compiled_net(params, n)
        np.testing.assert_array_equal(one.predict(x), many.predict(x))
        assert one.loss(x, t) == many.loss(x, t)
        g1, gn = one.gradient(x, t), many.gradient(x, t)
        for key in KEYS:
            np.testing.assert_array_equal(g1[key], gn[key])


@pytest.mark.parametrize("hidden", [1, 9, 50, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_screened_accuracy_by_blocks(hidden, dtype):
    # from SCREEN_MIN_ROWS rows on, dense rows go through the float32
    # screen pixel by pixel
    rng = np.random.default_rng(hidden)
    shape = (97, hidden, 10)
    x = sparse_rows(rng, 1200, shape[0], dtype, density=0.3)
    assert_compiled_like_book(trained_params(shape, seed=hidden, scale=2.0),
                              x, rng.integers(0, 10, 1200), ("accuracy",),
                              num_threads=2)


@pytest.mark.parametrize("hidden", [200, 500])
@pytest.mark.parametrize("batch", [129, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_hidden_layers_in_blocks_of_64_rows(hidden, batch, dtype):
    # every block has 64 rows whatever the hidden size (its passes go by
    # slices of units): several blocks, a short last one, on 1 and 2
    # threads, like the book and equal across the threads
    rng = np.random.default_rng(hidden + batch)
    shape = (120, hidden, 10)
    params = trained_params(shape, seed=hidden)
    x = sparse_rows(rng, batch, shape[0], dtype)
    t = rng.integers(0, 10, batch)
    assert_compiled_like_book(params, x, t, METHODS, num_threads=2)
    one, two = compiled_net(params, 1), compiled_net(params, 2)
    g1, g2 = one.gradient(x, t), two.gradient(x, t)
    for key in KEYS:
        np.testing.assert_array_equal(g1[key], g2[key])
    np.testing.assert_array_equal(one.predict(x), two.predict(x))


@pytest.mark.parametrize("hidden", [127, 128, 130, 500])
@pytest.mark.parametrize("batch", [1, 3, 65])
def test_wide_gradient_rows_without_pixels(hidden, batch):
    # from 128 units on, the rows of x.T @ dz1 whose pixel is 0 in every
    # row of the first block are zeroed whole, in runs (a border of zero
    # pixels as MNIST's, and a run in the middle), before the passes
    rng = np.random.default_rng(hidden * batch)
    shape = (90, hidden, 10)
    x = sparse_rows(rng, batch, shape[0], np.float32, density=0.5)
    x[:, :17] = 0.0
    x[:, 40:52] = 0.0
    x[:, -9:] = 0.0
    params = trained_params(shape, seed=hidden)
    t = rng.integers(0, 10, batch)
    assert_compiled_like_book(params, x, t, ("gradient",), num_threads=2)
    one, two = compiled_net(params, 1), compiled_net(params, 2)
    g1, g2 = one.gradient(x, t), two.gradient(x, t)
    for key in KEYS:
        np.testing.assert_array_equal(g1[key], g2[key])
    assert not g1["W1"][:17].any() and not g1["W1"][40:52].any()
