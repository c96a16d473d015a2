"""The public TwoLayerNet API: backends, params dict, awkward legal inputs."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, reference
from conftest import BACKENDS, requires_compiled


def test_seed_gives_the_same_weights_on_every_backend():
    nets = [TwoLayerNet(784, 50, 10, backend=b, seed=42) for b in BACKENDS]
    ref = reference.TwoLayerNet(784, 50, 10, rng=np.random.default_rng(42))
    for net in nets:
        for key in ("W1", "b1", "W2", "b2"):
            np.testing.assert_array_equal(net.params[key], ref.params[key])
            assert net.params[key].dtype == np.float64
    assert np.std(nets[0].params["W1"]) == pytest.approx(0.01, rel=0.02)
    assert not (nets[0].params["W1"] == TwoLayerNet(784, 50, 10, seed=43).params["W1"]).all()


@requires_compiled
def test_backend_resolution():
    assert TwoLayerNet(4, 3, 2).backend == "cython"
    assert TwoLayerNet(4, 3, 2, backend="numpy").backend == "numpy"
    assert "backend='cython'" in repr(TwoLayerNet(4, 3, 2, backend="cython"))
    with pytest.raises(ValueError, match="backend must be one of"):
        TwoLayerNet(4, 3, 2, backend="torch")


@pytest.mark.parametrize("backend", BACKENDS)
def test_params_dict_is_honoured(backend, mnist_batch):
    x, t, t_hot = mnist_batch(20)
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    before = net.loss(x, t)
    grad = net.gradient(x, t_hot)
    for key in ("W1", "b1", "W2", "b2"):
        net.params[key] -= 0.5 * grad[key]  # the book's in-place update
    after = net.loss(x, t)
    assert after < before
    net.params["W2"] = np.zeros((50, 10))  # reassigning keys
    net.params["b2"] = np.zeros(10)
    assert net.loss(x, t) == pytest.approx(-np.log(0.1 + 1e-7), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_awkward_but_legal_inputs_work(backend, mnist_batch):
    x, t, t_hot = mnist_batch(30)
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=1)
    expected = net.predict(x)
    fortran = np.asfortranarray(x)
    strided = np.repeat(x, 2, axis=0)[::2]
    readonly = x.copy()
    readonly.flags.writeable = False
    for variant in (fortran, strided, readonly, x.astype(np.float64)):
        np.testing.assert_allclose(net.predict(variant), expected, rtol=0, atol=1e-12)
    uint8 = (x * 255).round().astype(np.uint8)
    np.testing.assert_allclose(
        net.predict(uint8), net.predict(uint8.astype(np.float64)), rtol=0, atol=1e-12)
    assert net.accuracy(x, list(t)) == net.accuracy(x, t_hot)
    assert net.loss(x, t.astype(np.float32)) == net.loss(x, t)
    net.params["W1"] = np.asfortranarray(net.params["W1"].astype(np.float32))
    ref = reference.TwoLayerNet.from_params(
        {k: np.array(v, dtype=np.float64) for k, v in net.params.items()})
    np.testing.assert_allclose(net.predict(x), ref.predict(x), rtol=0, atol=1e-12)
    assert isinstance(net.params["W1"], np.ndarray)
    assert net.params["W1"].dtype == np.float32  # the user's array is untouched


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_return_the_books_dict(backend):
    rng = np.random.default_rng(0)
    net = TwoLayerNet(6, 4, 3, backend=backend, seed=0, weight_init_std=0.3)
    x, t = rng.random((5, 6)), rng.integers(0, 3, 5)
    W1 = net.params["W1"].copy()
    num, back = net.numerical_gradient(x, t), net.gradient(x, t)
    np.testing.assert_array_equal(net.params["W1"], W1)  # left as it was
    for key, shape in net.param_shapes.items():
        assert num[key].shape == back[key].shape == shape
        # central differences differ from the derivative by O(h^2) = O(1e-8)
        np.testing.assert_allclose(num[key], back[key], atol=1e-6)
