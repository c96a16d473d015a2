import faulthandler

import numpy as np
import pytest

import mnist_fast
from mnist_fast import reference

faulthandler.enable()

requires_compiled = pytest.mark.skipif(
    not mnist_fast.build_info()["compiled"],
    reason="the compiled kernels are not built",
)


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST, normalised, integer labels."""
    return mnist_fast.load_mnist()


@pytest.fixture(scope="session")
def mnist_batch(mnist):
    """Batches of real MNIST rows: (x, integer labels, one-hot labels)."""
    (x_train, t_train), _ = mnist
    rng = np.random.default_rng(1234)

    def take(n):
        idx = rng.choice(x_train.shape[0], n)
        t = t_train[idx]
        return x_train[idx], t, np.eye(10)[t]

    return take


def one_hot(t, k):
    return np.eye(k)[t]


def trained_params(shape, seed, std=0.01, scale=1.0):
    """Parameters shaped like a network's, random and not near zero."""
    D, H, K = shape
    rng = np.random.default_rng(seed)
    return {
        "W1": std * rng.standard_normal((D, H)) * scale,
        "b1": 0.1 * rng.standard_normal(H) * scale,
        "W2": std * rng.standard_normal((H, K)) * scale * 10,
        "b2": 0.1 * rng.standard_normal(K) * scale,
    }


def reference_net(params):
    """The book's network on a deep copy of ``params``."""
    return reference.TwoLayerNet.from_params(
        {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    )
