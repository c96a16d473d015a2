"""Compiled backprop, the fused SGD step and train() against the book."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, TrainingDiverged, kernels, train
from mnist_fast.compiled_engine import CompressedRows
from mnist_fast.screen import screen_for
from conftest import (ATOL as TOLERANCES, KEYS, assert_compiled_like_book,
                      compiled_net, one_hot, reference_net, requires_compiled,
                      trained_params)

# every test here runs once per SIMD variant of the kernels
pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]

ATOL = TOLERANCES["gradient"]  # gradients, parameters after a step, losses


def check_gradient(params, x, t):
    assert_compiled_like_book(params, x, t, ("gradient",))


@pytest.mark.parametrize("batch", [1, 3, 100, 257])
@pytest.mark.parametrize("trained", [False, True])
def test_gradient_mnist_batches(mnist_batch, batch, trained):
    x, t, _ = mnist_batch(batch)
    params = (trained_params((784, 50, 10), seed=batch, scale=3.0) if trained
              else TwoLayerNet(784, 50, 10, seed=batch).params)
    check_gradient(params, x, t)
    check_gradient(params, x.astype(np.float64), t)


# (60, 131, 21): see test_forward.test_random_shapes
@pytest.mark.parametrize("shape", [(37, 9, 4), (5, 3, 2), (100, 20, 7), (70, 33, 3),
                                   (60, 131, 21)])
@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_random_shapes(shape, batch, dtype):
    rng = np.random.default_rng(batch + shape[1])
    x = (rng.standard_normal((batch, shape[0])) * 3).astype(dtype)
    x[rng.random(x.shape) < 0.3] = 0.0
    check_gradient(trained_params(shape, seed=3), x, rng.integers(0, shape[2], batch))


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")
def test_gradient_saturating_weights():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 30)) * 50.0
    check_gradient(trained_params((30, 12, 6), seed=1, std=1.0, scale=5.0), x,
                   rng.integers(0, 6, 40))


@pytest.mark.parametrize("num_threads", [2, 3])
def test_gradient_does_not_depend_on_threads(mnist_batch, num_threads):
    x, t, _ = mnist_batch(600)
    params = trained_params((784, 50, 10), seed=4)
    one = compiled_net(params, 1).gradient(x, t)
    many = compiled_net(params, num_threads).gradient(x, t)
    for key in KEYS:
        np.testing.assert_array_equal(one[key], many[key])


def stored_values(codes, values):
    """Each nonzero's value of to_csr's (codes, values)."""
    return values if codes is None else values[codes]


@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_csr_keeps_every_nonzero_in_order(mnist, dtype, num_threads):
    (x_train, _), _ = mnist
    rng = np.random.default_rng(num_threads)
    rand = rng.standard_normal((300, 37))
    rand[rng.random(rand.shape) < 0.6] = 0.0
    rand[3] = 0.0  # an all-zero row
    rand[4, :5] = [-0.0, np.nan, np.inf, -np.inf, 1e-320]  # -0.0 is zero
    rand = rand.astype(dtype)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    rand.view(bits)[5, 2] = bits(0x7F800001 if dtype == np.float32
                                 else 0x7FF0000000000001)  # signalling NaN
    # 256 distinct values (the most that are coded: 255 levels and a
    # signalling NaN), then 257
    levels = np.linspace(0.5, 1.0, 255).astype(dtype)
    grey = np.zeros((40, 30), dtype)
    places = rng.choice(grey.size, 601, replace=False)
    grey.flat[places[:600]] = np.r_[levels, rng.choice(levels, 345)]
    grey.view(bits).flat[places[600]] = rand.view(bits)[5, 2]
    grey_257 = grey.copy()
    grey_257[grey_257 == 0.0] = 2.0
    wide = np.zeros((3, 70000), dtype)  # columns past uint16
    wide[:, [0, 65535, 65536, 69999]] = [[1, 2, 3, 4], [0, 5, 0, 6], [7, 0, 0, 0]]
    cases = ((x_train[:1000].astype(dtype), True, False),
             (rand, False, False), (grey, True, False),
             (grey_257, False, False), (wide, True, True),
             (np.zeros((0, 9), dtype), True, False),
             (np.zeros((5, 0), dtype), True, False))
    for x, coded, is_wide in cases:
        indptr, indices, codes, values = kernels.backprop.to_csr(
            x, num_threads)
        with np.errstate(invalid="ignore"):  # NumPy's tests of the sNaN
            rows, cols = np.nonzero(x)
            per_row = np.count_nonzero(x, axis=1)
        assert indptr.dtype == np.int64
        assert indices.dtype == (np.intc if is_wide else np.uint16)
        assert values.dtype == dtype
        assert (codes is not None) == coded
        if coded:
            assert codes.dtype == np.uint8 and values.shape == (256,)
        np.testing.assert_array_equal(indptr, np.r_[0, np.cumsum(per_row)])
        np.testing.assert_array_equal(indices, cols)
        # bit for bit: a NaN keeps its payload
        np.testing.assert_array_equal(
            stored_values(codes, values).view(bits), x[rows, cols].view(bits))


def test_train_holds_mnist_in_three_bytes_a_nonzero(mnist):
    """The training set as train keeps it: a uint16 column and a uint8
    code per nonzero pixel (MNIST has 256 grey levels), 8 bytes a row."""
    (x, t), _ = mnist
    data = CompressedRows(x, t.astype(np.intp), 2)
    nnz = np.count_nonzero(x)
    assert data.indices.nbytes + data.codes.nbytes == 3 * nnz
    assert data.indptr.nbytes == 8 * (len(x) + 1)
    assert data.values.nbytes == 256 * 4


def fused_trainer(params, x, t, batch_size, lr, num_threads=1):
    """The compiled engine's trainer on (x, t), and the arrays it updates."""
    net = compiled_net(params, num_threads)
    p = net.params
    data = net.engine.data_set(np.ascontiguousarray(x), t.astype(np.intp))
    return net.engine.trainer(p, data, batch_size, lr, "backprop"), p


def step(trainer, batch):
    """One step, a block of one: (its loss, the count of bad values)."""
    losses = np.empty(1)
    done, loss, n_bad = trainer.run(np.asarray(batch, np.intp)[None], losses)
    return (losses[0] if done else loss), n_bad


@pytest.mark.parametrize("batch_size", [1, 3, 100, 257])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_step_is_one_book_step(mnist, batch_size, dtype):
    (x_train, t_train), _ = mnist
    x, t = x_train[:3000].astype(dtype), t_train[:3000]
    params = trained_params((784, 50, 10), seed=batch_size, scale=2.0)
    trainer, p = fused_trainer(params, x, t, batch_size, 0.1)
    batch = np.random.default_rng(batch_size).choice(3000, batch_size)
    loss, n_bad = step(trainer, batch)
    # the book: grad = network.gradient(...); params -= lr * grad; loss
    ref = reference_net(params)
    grad = ref.gradient(x[batch], one_hot(t[batch], 10))
    for key in KEYS:
        ref.params[key] -= 0.1 * grad[key]
        assert np.abs(p[key] - ref.params[key]).max() <= ATOL, key
    assert n_bad == 0
    assert abs(loss - ref.loss(x[batch], t[batch])) <= ATOL


def test_fused_step_random_shape_and_repeated_rows():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 37)) * 2
    x[rng.random(x.shape) < 0.4] = 0.0
    x[7] = 0.0  # an all-zero row
    t = rng.integers(0, 4, 50)
    params = trained_params((37, 9, 4), seed=1)
    trainer, p = fused_trainer(params, x, t, 8, 0.5, num_threads=2)
    batch = np.array([7, 7, 3, 49, 0, 3, 7, 12], dtype=np.intp)
    step(trainer, batch)
    ref = reference_net(params)
    grad = ref.gradient(x[batch], t[batch])
    for key in KEYS:
        ref.params[key] -= 0.5 * grad[key]
        assert np.abs(p[key] - ref.params[key]).max() <= ATOL, key


@pytest.mark.parametrize("coded", [True, False])
@pytest.mark.parametrize("D", [37, 65536, 65537])
def test_fused_step_and_count_on_every_stored_form(coded, D):
    """Rows stored with uint16 or int columns (up to and past 65536), their
    values coded or not: the step is the book's, the count the book's."""
    rng = np.random.default_rng(D)
    x = np.zeros((30, D), np.float32)
    cols = rng.choice(D, size=(30, 12))
    cols[:, 0] = D - 1  # the last column
    levels = (np.arange(1, 256) / 255).astype(np.float32)
    x[np.arange(30)[:, None], cols] = (
        rng.choice(levels, cols.shape) if coded
        else rng.standard_normal(cols.shape).astype(np.float32))
    t = rng.integers(0, 3, 30)
    data = CompressedRows(x, t.astype(np.intp), 2)
    assert (data.codes is not None) == coded
    assert data.indices.dtype == (np.intc if D > 65536 else np.uint16)
    params = trained_params((D, 4, 3), seed=2, scale=3.0)
    ref = reference_net(params)
    book = int(np.sum(ref.predict(x).argmax(axis=1) == t))
    for screen in (None, screen_for(params)):
        assert kernels.forward.count_correct(
            data.values, data.t, data, params, 0, False, screen, 2) == book
    trainer, p = fused_trainer(params, x, t, 8, 0.5, num_threads=2)
    batch = np.array([3, 29, 0, 3, 17, 8, 8, 1], dtype=np.intp)
    loss, n_bad = step(trainer, batch)
    grad = ref.gradient(x[batch], t[batch])
    for key in KEYS:
        ref.params[key] -= 0.5 * grad[key]
        assert np.abs(p[key] - ref.params[key]).max() <= ATOL, key
    assert n_bad == 0
    assert abs(loss - ref.loss(x[batch], t[batch])) <= ATOL


def test_fused_step_rounds_the_update_as_numpy(mnist):
    """``p - lr * g`` with the product and the difference rounded apart (no
    fused multiply-add), on every SIMD variant: bit for bit NumPy's update
    with the compiled gradient of the same batch."""
    (x_train, t_train), _ = mnist
    x, t = x_train[:3000], t_train[:3000]
    params = trained_params((784, 50, 10), seed=11, scale=2.0)
    batch = np.random.default_rng(11).choice(3000, 100)
    grad = compiled_net(params).gradient(x[batch], t[batch])
    trainer, p = fused_trainer(params, x, t, 100, 0.1)
    step(trainer, batch)
    for key in KEYS:
        np.testing.assert_array_equal(p[key], params[key] - 0.1 * grad[key],
                                      err_msg=key)


def test_fused_step_refuses_a_non_finite_update(mnist):
    (x_train, t_train), _ = mnist
    # inputs of ~1e4 make |grad W1| ~ 2.5, so 1e308 * grad overflows
    params = trained_params((784, 50, 10), seed=0)
    x, t = x_train[:500] * 1e4, t_train[:500]
    grad = reference_net(params).gradient(x[:100], t[:100])
    assert np.abs(grad["W1"]).max() > 2.0
    trainer, p = fused_trainer(params, x, t, 100, 1e308)
    loss, n_bad = step(trainer, np.arange(100))
    assert n_bad > 0 and np.isnan(loss)
    for key in KEYS:  # nothing was changed
        np.testing.assert_array_equal(p[key], params[key])


@pytest.mark.parametrize("num_threads", [1, 2])
def test_run_is_the_steps_one_by_one(mnist, num_threads):
    (x_train, t_train), _ = mnist
    x, t = x_train[:3000], t_train[:3000]
    params = trained_params((784, 50, 10), seed=5)
    batches = np.random.default_rng(5).choice(3000, (7, 100)).astype(np.intp)
    one, p_one = fused_trainer(params, x, t, 100, 0.1, num_threads)
    expected = [step(one, b)[0] for b in batches]
    block, p_block = fused_trainer(params, x, t, 100, 0.1, num_threads)
    losses = np.full(7, -1.0)
    done, _, n_bad = block.run(batches, losses)
    assert (done, n_bad) == (7, 0)
    np.testing.assert_array_equal(losses, expected)
    for key in KEYS:
        np.testing.assert_array_equal(p_block[key], p_one[key])


def test_run_stops_at_the_failing_step(mnist):
    (x_train, t_train), _ = mnist
    params = trained_params((784, 50, 10), seed=0)
    bad = x_train[:100].copy()
    bad[:, 350] = np.inf  # (the public API refuses it) a NaN gradient
    x = np.concatenate([x_train[:500], bad])
    t = np.concatenate([t_train[:500], t_train[:100]])
    batches = np.array([np.arange(100), np.arange(100, 200),
                        np.arange(500, 600), np.arange(100)], dtype=np.intp)
    trainer, p = fused_trainer(params, x, t, 100, 0.1)
    losses = np.zeros(4)
    done, _, n_bad = trainer.run(batches[:2], losses)
    assert (done, n_bad) == (2, 0)
    after_two = {k: v.copy() for k, v in p.items()}
    done, loss, n_bad = trainer.run(batches[2:], losses)
    assert done == 0 and n_bad > 0 and np.isnan(loss)
    for key in KEYS:  # the failed step was undone, the next one not run
        np.testing.assert_array_equal(p[key], after_two[key])


def test_train_is_reproducible_and_updates_params_in_place(mnist):
    (x_train, t_train), (x_test, t_test) = mnist
    runs = []
    for _ in range(2):
        net = TwoLayerNet(784, 50, 10, seed=0)
        W1 = net.params["W1"]
        h = train(net, x_train, t_train, x_test, t_test, iters_num=700,
                  seed=5)
        assert net.params["W1"] is W1  # the book's arrays, updated in place
        runs.append((h, net.params))
    (h1, p1), (h2, p2) = runs
    assert h1.train_loss_list == h2.train_loss_list
    assert h1.train_acc_list == h2.train_acc_list
    assert h1.test_acc_list == h2.test_acc_list
    assert len(h1.train_loss_list) == 700 and len(h1.test_acc_list) == 2
    for key in KEYS:
        np.testing.assert_array_equal(p1[key], p2[key])


def test_train_learns_like_the_book(mnist):
    # same seed, same batches: the compiled run and the book's NumPy loop
    (x_train, t_train), (x_test, t_test) = mnist
    final = {}
    for backend in ("cython", "numpy"):
        net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
        h = train(net, x_train, t_train, x_test, t_test, iters_num=1200,
                  seed=1, eval_every_epoch=False)
        final[backend] = (net.accuracy(x_test, t_test), h.train_loss_list, net.params)
    assert final["cython"][0] > 0.85
    assert abs(final["cython"][0] - final["numpy"][0]) <= 0.003
    np.testing.assert_allclose(final["cython"][1], final["numpy"][1], rtol=0, atol=1e-9)
    for key in KEYS:
        np.testing.assert_allclose(final["cython"][2][key], final["numpy"][2][key],
                                   rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_train_diverges_cleanly(mnist, backend):
    # an update that overflows: |grad W1| ~ 2.5 with inputs of ~1e4
    (x_train, t_train), (x_test, t_test) = mnist
    x, t = x_train[:300] * 1e4, t_train[:300]
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    with pytest.raises(TrainingDiverged, match=r"diverged at iteration \d+ .*"
                       r"net.params keeps the parameters from before") as info:
        train(net, x, t, x_test[:50], t_test[:50], learning_rate=1e308,
              batch_size=100, seed=0, iters_num=5)
    done = info.value.iteration
    assert info.value.history.iterations == done
    assert f"iteration {done} " in str(info.value)
    # the last finite parameters: those of a run stopped just before
    again = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    train(again, x, t, x_test[:50], t_test[:50], learning_rate=1e308,
          batch_size=100, seed=0, iters_num=done)
    for key in KEYS:
        assert np.isfinite(net.params[key]).all()
        np.testing.assert_array_equal(net.params[key], again.params[key])
