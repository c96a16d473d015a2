"""TwoLayerNet(activation="relu") and mnist_fast.ch05.TwoLayerNet: the public
API of the book's ch. 5 network, on both backends, against the book's code
(reference.SoftmaxLayerNet and reference.LayerNet)."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, book, ch05, reference
from mnist_fast.engine import Architecture
from conftest import (BACKENDS, KEYS, METHODS, assert_matches_reference,
                      one_hot, pattern, reference_net, requires_compiled,
                      trained_params)

#: The two ReLU networks: (class, keyword arguments, architecture).
RELU_NETS = {
    "activation='relu'": (TwoLayerNet, {"activation": "relu"},
                          Architecture("relu", scores=False)),
    "ch05": (ch05.TwoLayerNet, {}, Architecture("relu", scores=True)),
}


def relu_net(kind, params, backend):
    cls, kwargs, _ = RELU_NETS[kind]
    D, H = params["W1"].shape
    net = cls(D, H, params["W2"].shape[1], backend=backend, **kwargs)
    net.params = {k: np.array(v) for k, v in params.items()}
    return net


def check_both_label_forms(net, x, t):
    for labels in (t, one_hot(t, net.output_size)):
        assert_matches_reference(net, x, labels)


@pytest.mark.parametrize("kind", RELU_NETS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [1, 3, 100])
def test_mnist_rows_match_the_book(kind, backend, n, mnist_batch):
    x, t, _ = mnist_batch(n)
    net = relu_net(kind, trained_params((784, 50, 10), seed=n), backend)
    for labels in (t, one_hot(t, 10)):
        assert_matches_reference(net, x, labels,
                                 [m for m in METHODS if m != "numerical_gradient"])


@pytest.mark.parametrize("kind", RELU_NETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_mnist_rows_numerical_gradient_matches_the_books(kind, backend,
                                                         mnist_batch):
    # a narrow hidden layer: the book's loop takes two passes per parameter
    x, t, _ = mnist_batch(3)
    net = relu_net(kind, trained_params((784, 5, 10), seed=4), backend)
    check_both_label_forms(net, x, t)


@pytest.mark.parametrize("kind", RELU_NETS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1, 2), (7, 5, 3), (20, 13, 4)])
@pytest.mark.parametrize("n", [1, 3, 100])
def test_random_shapes_match_the_book(kind, backend, shape, n):
    rng = np.random.default_rng(sum(shape) * n)
    params = trained_params(shape, seed=n, std=0.5)
    x = rng.standard_normal((n, shape[0]))
    t = rng.integers(0, shape[2], n)
    check_both_label_forms(relu_net(kind, params, backend), x, t)


def kink_params(x, rng, offsets):
    """Parameters whose hidden pre-activations ``x @ W1 + b1`` are exactly
    ``offsets`` (one per hidden unit) on the first row of ``x``: integer
    inputs and weights make ``x @ W1`` exact, and ``offsets - x @ W1``."""
    D, H = x.shape[1], len(offsets)
    W1 = rng.integers(-3, 4, (D, H)).astype(np.float64)
    b1 = -(x[0] @ W1) + np.asarray(offsets)
    return {"W1": W1, "b1": b1, "W2": rng.standard_normal((H, 3)),
            "b2": rng.standard_normal(3)}


#: Pre-activations at 0, inside +-h of it (h = 1e-4) and outside: powers of
#: 2, so that ``x @ W1 + b1`` gives them exactly.
KINKS = [0.0, 2.0**-15, -2.0**-15, 2.0**-14, -2.0**-14, 2.0**-12, -2.0**-12,
         1.0]


@pytest.mark.parametrize("kind", RELU_NETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_pre_activations_at_and_near_the_kink(kind, backend):
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, (3, 6)).astype(np.float64)
    params = kink_params(x, rng, KINKS)
    a1 = x[0] @ params["W1"] + params["b1"]
    np.testing.assert_array_equal(a1, KINKS)
    assert max(abs(k) for k in KINKS[1:5]) < book.H < min(KINKS[5:], key=abs)
    net = relu_net(kind, params, backend)
    t = np.array([0, 2, 1])
    check_both_label_forms(net, x, t)
    # the book's mask: a unit whose input is <= 0 on a row passes no
    # gradient from that row; on the one row only, a1 <= 0 gives 0
    grad = net.gradient(x[:1], t[:1])
    dead = np.asarray(KINKS) <= 0
    assert not grad["b1"][dead].any() and grad["b1"][~dead].all()
    # the numerical gradient is the book's loop: the difference of two
    # forward passes, whichever side of 0 the perturbation lands on
    want = reference_net(params, net.engine.architecture).numerical_gradient(
        x[:1], t[:1])
    got = net.numerical_gradient(x[:1], t[:1])
    for key in KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_is_probabilities_and_ch05_predict_the_scores(backend,
                                                              mnist_batch):
    x, t, _ = mnist_batch(10)
    params = trained_params((784, 50, 10), seed=2)
    probabilities = relu_net("activation='relu'", params, backend).predict(x)
    scores = relu_net("ch05", params, backend).predict(x)
    want = reference.LayerNet.from_params(
        {k: np.array(v) for k, v in params.items()}).predict(x)
    np.testing.assert_allclose(scores, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probabilities, reference.softmax(want),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert (scores < 0).any()  # scores, not probabilities


@pytest.mark.parametrize("backend", BACKENDS)
def test_activation_is_checked_stored_and_kept(backend):
    net = TwoLayerNet(4, 3, 2, activation="relu", backend=backend)
    assert net.activation == "relu"
    assert "activation='relu'" in repr(net)
    assert net.engine.architecture == Architecture("relu")
    assert TwoLayerNet(4, 3, 2, backend=backend).activation == "sigmoid"
    for switch in ("numpy", backend):  # a new engine keeps the activation
        net.backend = switch
        assert net.engine.architecture == Architecture("relu")
    net.num_threads = 1
    assert net.engine.architecture == Architecture("relu")
    with pytest.raises(AttributeError):
        net.activation = "sigmoid"
    with pytest.raises(ValueError, match=pattern(
            "activation must be one of 'sigmoid', 'relu', got 'ReLU'")):
        TwoLayerNet(4, 3, 2, activation="ReLU")
    with pytest.raises(TypeError, match="activation must be one of .*got NoneType"):
        TwoLayerNet(4, 3, 2, activation=None)


def test_ch05_class_is_the_books_constructor_and_relu_only():
    net = ch05.TwoLayerNet(4, 3, 2, 0.5, backend="numpy")
    assert net.activation == "relu" and net.engine.architecture.scores
    assert repr(net) == "mnist_fast.ch05.TwoLayerNet(4, 3, 2, backend='numpy')"
    assert np.std(ch05.TwoLayerNet(784, 50, 10, seed=0).params["W1"]) == \
        pytest.approx(0.01, rel=0.02)
    with pytest.raises(ValueError, match="activation must be one of 'relu', "
                                         "got 'sigmoid'"):
        ch05.TwoLayerNet(4, 3, 2, activation="sigmoid")


@pytest.mark.parametrize("backend", BACKENDS)
def test_ch05_draws_the_books_weights_from_the_global_generator(backend):
    np.random.seed(0)
    net = ch05.TwoLayerNet(784, 50, 10, backend=backend)
    np.random.seed(0)
    book_net = reference.LayerNet(784, 50, 10)
    after = np.random.random()  # the same draws: the stream is where the book's is
    np.random.seed(0)
    ch05.TwoLayerNet(784, 50, 10, backend=backend)
    assert np.random.random() == after
    for key in KEYS:
        np.testing.assert_array_equal(net.params[key], book_net.params[key])
    seeded = ch05.TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    for key in KEYS:
        np.testing.assert_array_equal(seeded.params[key], book_net.params[key])


@pytest.mark.parametrize("kind", RELU_NETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_books_update_trains_it(kind, backend, mnist_batch):
    x, t, t_hot = mnist_batch(100)
    cls, kwargs, _ = RELU_NETS[kind]
    net = cls(784, 50, 10, backend=backend, seed=0, **kwargs)
    before = net.loss(x, t)
    for _ in range(5):
        grad = net.gradient(x, t_hot)
        for key in KEYS:
            net.params[key] -= 0.5 * grad[key]
    assert net.loss(x, t) < before
    assert isinstance(net.accuracy(x, t), np.float64)


def test_architectures_no_public_network_has_are_refused():
    from mnist_fast.numpy_engine import NumpyEngine
    from mnist_fast.threads import thread_policy

    with pytest.raises(ValueError, match="architecture must be one of"):
        NumpyEngine(thread_policy(1), Architecture("sigmoid", scores=True))


@requires_compiled
def test_the_cython_backend_runs_relu_kernels_not_the_numpy_code():
    net = TwoLayerNet(4, 3, 2, activation="relu", backend="cython")
    assert net.engine.compiled
    net.predict(np.ones((1, 4)))
