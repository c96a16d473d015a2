"""``gradient`` at wide hidden layers (``W1`` of compiled_engine.WIDE_W1
values or more): the finiteness check of ``W1`` made by the kernel's
threads (``check_w1``, src_cython/_backprop.pyx: chunks of ``W1_CHUNK``
values taken by whichever thread is free) instead of by the boundary check
(validation.as_unscanned_params), and every thread of the network even
for one row.

A NaN or an infinity anywhere in ``W1`` -- first and last value, on each
side of a chunk's edge -- still raises the full check's ValueError, in
the checks' order (x, t, params); the gradients equal the book's within
1e-12 and are bit-identical for 1, 2 and 3 threads, on every SIMD
variant."""

import numpy as np
import pytest

from conftest import (assert_compiled_like_book, compiled_net,
                      requires_compiled, trained_params)
from mnist_fast import compiled_engine, kernels
from mnist_fast.compiled_engine import _like
from mnist_fast.validation import as_params, as_unscanned_params, param_shapes

pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]

SIGMOID, RELU = 0, 1
#: the kernel's chunk of W1 values (src_cython/_backprop.pyx, W1_CHUNK)
CHUNK = 8192
#: 3 chunks and a part: D * H = 3 * CHUNK + 1000
D, H, K = 100, 255, 10


def sparse_rows(rng, n, d, dtype=np.float32):
    return (rng.random((n, d)) * (rng.random((n, d)) < 0.2)).astype(dtype)


def positions(n):
    """Flat indices of W1 to spoil: its ends and both sides of each
    chunk's edge."""
    edges = [c * CHUNK + e for c in range(1, n // CHUNK + 1) for e in (-1, 0)]
    return sorted({0, 1, n - 1, *[i for i in edges if 0 <= i < n]})


def kernel(x, t, p, n_threads, activation=SIGMOID, check_w1=True):
    g = _like(p)
    with np.errstate(all="ignore"):
        ok = kernels.backprop.gradient(x, t, p, activation, g, n_threads,
                                       check_w1)
    return ok, g


def test_the_layer_spans_several_chunks():
    assert D * H > 3 * CHUNK and D * H % CHUNK
    assert compiled_engine.WIDE_W1 <= 784 * 200  # 784-200-10 on all threads


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_kernel_finds_a_value_of_w1_that_is_not_finite(n_threads, bad):
    rng = np.random.default_rng(1)
    p = trained_params((D, H, K), seed=1)
    x, t = sparse_rows(rng, 3, D), rng.integers(0, K, 3).astype(np.intp)
    assert kernel(x, t, p, n_threads)[0]
    for i in positions(D * H):
        q = dict(p, W1=p["W1"].copy())
        q["W1"].reshape(-1)[i] = bad
        assert not kernel(x, t, q, n_threads)[0], i
        # without check_w1 the kernel vouches for x alone
        assert kernel(x, t, q, n_threads, check_w1=False)[0], i


@pytest.mark.parametrize("activation", [SIGMOID, RELU])
@pytest.mark.parametrize("batch", [1, 2, 10, 65, 130])
def test_check_w1_changes_no_result_whatever_the_threads(activation, batch):
    rng = np.random.default_rng(batch)
    p = trained_params((D, H, K), seed=batch)
    x, t = sparse_rows(rng, batch, D), rng.integers(0, K, batch).astype(np.intp)
    ok, want = kernel(x, t, p, 1, activation, check_w1=False)
    assert ok
    for n_threads in (1, 2, 3):
        ok, got = kernel(x, t, p, n_threads, activation)
        assert ok
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.parametrize("hidden", [200, 500])
@pytest.mark.parametrize("batch", [1, 10, 100])
def test_wide_layers_like_the_book(hidden, batch):
    rng = np.random.default_rng(hidden + batch)
    shape = (784, hidden, 10)
    assert_compiled_like_book(trained_params(shape, seed=hidden),
                              sparse_rows(rng, batch, 784),
                              rng.integers(0, 10, batch), ("gradient",))


@pytest.mark.parametrize("batch", [1, 10, 100])
def test_wide_layers_do_not_depend_on_threads(batch):
    rng = np.random.default_rng(batch)
    p = trained_params((784, 200, 10), seed=batch)
    x, t = sparse_rows(rng, batch, 784), rng.integers(0, 10, batch)
    want = compiled_net(p, 1).gradient(x, t)
    for n_threads in (2, 3):
        got = compiled_net(p, n_threads).gradient(x, t)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.parametrize("hidden, most", [(200, 2), (50, 1)])
def test_a_wide_layer_gets_every_thread_for_one_row(monkeypatch, hidden, most):
    """The count the engine offers the thread policy for a batch of one
    row: all the network's for a wide W1 (compiled_engine.WIDE_W1), one
    for a narrow one (threads.threads_for_rows)."""
    rng = np.random.default_rng(5)
    net = compiled_net(trained_params((784, hidden, 10), seed=5), 2)
    if net.engine.num_threads < most:
        pytest.skip("a build without OpenMP: every network has one thread")
    policy, offered = net.engine.threads, []

    def run(kind, n, kernel, *args):
        offered.append((kind, n))
        return type(policy).run(policy, kind, n, kernel, *args)

    monkeypatch.setattr(policy, "run", run)
    net.gradient(sparse_rows(rng, 1, 784), [3])
    assert offered == [(("gradient", 1), most)]


def full_check_error(params, shapes):
    """The message of the boundary's full check of ``params``."""
    with pytest.raises(ValueError) as exc:
        as_params(params, shapes)
    return str(exc.value)


@pytest.mark.parametrize("shape", [(D, H, K), (784, 200, 10), (30, 7, 4)])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_gradient_raises_the_full_checks_error_for_w1(shape, bad):
    rng = np.random.default_rng(2)
    x, t = sparse_rows(rng, 4, shape[0]), rng.integers(0, shape[2], 4)
    for n_threads in (1, 2):
        net = compiled_net(trained_params(shape, seed=2), n_threads)
        for i in positions(shape[0] * shape[1]):
            net.params["W1"].reshape(-1)[i] = bad
            message = full_check_error(net.params, net.param_shapes)
            with pytest.raises(ValueError) as exc:
                net.gradient(x, t)
            assert str(exc.value) == message, i
            net.params["W1"].reshape(-1)[i] = 0.01
        assert all(np.isfinite(g).all() for g in net.gradient(x, t).values())


def test_only_a_wide_w1_is_left_to_the_kernel():
    net = compiled_net(trained_params((D, H, K), seed=3))
    assert not net.engine.scans_w1(D * H)
    assert net.engine.scans_w1(compiled_engine.WIDE_W1)
    assert not compiled_net(trained_params((D, H, K), seed=3)).engine \
        .scans_w1(compiled_engine.WIDE_W1 - 1)


def test_the_checks_order_holds_with_w1_left_to_the_kernel():
    """x's error before t's before W1's, as the full checks have it."""
    rng = np.random.default_rng(3)
    d, h, k = 784, 200, K
    net = compiled_net(trained_params((d, h, k), seed=3), 2)
    assert net.engine.scans_w1(d * h)
    x, t = sparse_rows(rng, 4, d), rng.integers(0, k, 4)
    net.params["W1"][d - 1, h - 1] = np.nan
    bad_x = x.copy()
    bad_x[2, 7] = np.inf
    with pytest.raises(ValueError, match=r"^x must be finite"):
        net.gradient(bad_x, t)
    with pytest.raises(ValueError, match=r"labels must be in"):
        net.gradient(x, np.array([0, 1, k, 2]))
    with pytest.raises(ValueError, match=r"^params\['W1'\] must be finite"):
        net.gradient(x, t)
    with pytest.raises(ValueError, match=r"^params\['W1'\] must be finite"):
        net.gradient(x.tolist(), t)  # x through the full check


def test_as_unscanned_params_leaves_only_w1_unscanned():
    shapes = param_shapes(D, H, K)
    p = trained_params((D, H, K), seed=4)
    checked, scanned = as_unscanned_params(p, shapes)
    assert not scanned and all(checked[k] is p[k] for k in p)
    p["W1"][5, 5] = np.nan
    checked, scanned = as_unscanned_params(p, shapes)
    assert not scanned and checked["W1"] is p["W1"]
    p["W1"][5, 5] = 0.0
    for key in ("b1", "W2", "b2"):
        q = dict(p, **{key: p[key].copy()})
        q[key].reshape(-1)[0] = np.nan
        with pytest.raises(ValueError, match=rf"params\['{key}'\] must be "):
            as_unscanned_params(q, shapes)
    # what the fast path does not take is checked whole
    q = dict(p, W1=p["W1"].astype(np.float32))
    q["W1"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\['W1'\] must be finite"):
        as_unscanned_params(q, shapes)
    checked, scanned = as_unscanned_params(
        dict(p, W1=p["W1"].astype(np.float32)), shapes)
    assert scanned and checked["W1"].dtype == np.float64
