"""The public TwoLayerNet API: backends, params dict, awkward legal inputs."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, reference
from conftest import BACKENDS, assert_matches_reference, requires_compiled


def test_seed_gives_the_same_weights_on_every_backend():
    nets = [TwoLayerNet(784, 50, 10, backend=b, seed=42) for b in BACKENDS]
    ref = reference.TwoLayerNet(784, 50, 10, rng=np.random.RandomState(42))
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


def read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def strided(a):
    """The same values, as a view with gaps between rows and columns."""
    wide = np.zeros(tuple(3 * n for n in a.shape), dtype=a.dtype)
    wide[tuple(slice(None, None, 3) for _ in a.shape)] = a
    return wide[tuple(slice(None, None, 3) for _ in a.shape)]


def reversed_view(a):
    return np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]


RNG = np.random.default_rng(2024)
X = RNG.standard_normal((5, 6))
PIXELS = RNG.integers(0, 256, (5, 6))
T = np.array([0, 2, 1, 2, 0])

# Legal but awkward: each must give the reference's answers.
AWKWARD_X = {
    "Fortran order": np.asfortranarray(X),
    "strided view": strided(X),
    "negative strides": reversed_view(X),
    "read-only": read_only(X),
    "broadcast (zero strides)": np.broadcast_to(X[1], X.shape),
    "float32": X.astype(np.float32),
    "float16": X.astype(np.float16),
    "big-endian float64": X.astype(">f8"),
    "uint8": PIXELS.astype(np.uint8),
    "int16": PIXELS.astype(np.int16) - 128,
    "int64": PIXELS - 128,
    "uint64": PIXELS.astype(np.uint64),
    "bool": PIXELS > 128,
    "nested list": X.tolist(),
    "tuple of tuples": tuple(map(tuple, X)),
}
AWKWARD_T = {
    "int8": T.astype(np.int8),
    "uint8": T.astype(np.uint8),
    "big-endian int32": T.astype(">i4"),
    "whole floats": T.astype(np.float32),
    "list": T.tolist(),
    "read-only": read_only(T),
    "strided view": strided(T),
    "one-hot float64": np.eye(3)[T],
    "one-hot int": np.eye(3, dtype=int)[T],
    "one-hot float32, Fortran": np.asfortranarray(np.eye(3, dtype=np.float32)[T]),
    "one-hot uint8, read-only": read_only(np.eye(3, dtype=np.uint8)[T]),
}
AWKWARD_PARAMS = {
    "float32": lambda p: p.astype(np.float32),
    "Fortran order": np.asfortranarray,
    "float32, Fortran order": lambda p: np.asfortranarray(p.astype(np.float32)),
    "read-only": read_only,
    "strided view": strided,
    "big-endian": lambda p: p.astype(">f8"),
    "float16": lambda p: p.astype(np.float16),
}


def tiny_net(backend):
    return TwoLayerNet(6, 4, 3, weight_init_std=0.5, backend=backend, seed=3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", AWKWARD_X)
def test_awkward_inputs_give_the_references_answers(backend, variant):
    assert_matches_reference(tiny_net(backend), AWKWARD_X[variant], T)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", AWKWARD_T)
def test_awkward_labels_give_the_references_answers(backend, variant):
    assert_matches_reference(tiny_net(backend), X, AWKWARD_T[variant])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", AWKWARD_PARAMS)
def test_awkward_params_give_the_references_answers(backend, variant):
    net = tiny_net(backend)
    net.params = {k: AWKWARD_PARAMS[variant](v) for k, v in net.params.items()}
    before = {k: v.copy() for k, v in net.params.items()}
    assert_matches_reference(net, X, T)
    for key, value in net.params.items():  # the user's arrays are untouched
        assert value.dtype == before[key].dtype
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize("backend", BACKENDS)
def test_mnist_rows_as_uint8_pixels(backend, mnist_batch):
    x, t, t_hot = mnist_batch(30)
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=1)
    pixels = (x * 255).round().astype(np.uint8)
    np.testing.assert_allclose(net.predict(pixels), net.predict(pixels.astype(np.float64)),
                               rtol=0, atol=1e-12)
    assert net.accuracy(x, list(t)) == net.accuracy(x, t_hot)


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
