"""The user's headline: numerical vs backprop gradient, compiled vs NumPy.

All at the book's size: 784-50-10, a batch of 100 MNIST rows.  The book's
NumPy numerical gradient takes tens of seconds per batch, so it is measured on a
subset of the parameters (two loss evaluations each, exactly the book's
loop) and extrapolated to all 39,760; ``extra_info`` says so.
"""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, reference

N_PARAMS = 784 * 50 + 50 + 50 * 10 + 10
SUBSET = 200


#: The hidden layers: the book's ch. 4 network and its ch. 5 one.
ACTIVATIONS = ["sigmoid", "relu"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_gradient_backprop(benchmark, batch, backend, activation):
    benchmark.group = "gradient per batch of 100 (784-50-10)"
    net = TwoLayerNet(784, 50, 10, activation=activation, backend=backend,
                      seed=0)
    benchmark(net.gradient, *batch)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_numerical_gradient_cython(benchmark, batch, activation):
    benchmark.group = "gradient per batch of 100 (784-50-10)"
    net = TwoLayerNet(784, 50, 10, activation=activation, backend="cython",
                      seed=0)
    benchmark.pedantic(net.numerical_gradient, args=batch, rounds=15,
                       warmup_rounds=2)
    benchmark.extra_info["parameters"] = N_PARAMS


def test_numerical_gradient_numpy_subset(benchmark, batch):
    """The book's loop over the first SUBSET entries of W1, extrapolated."""
    benchmark.group = "gradient per batch of 100 (784-50-10)"
    x, t = batch
    net = reference.TwoLayerNet(784, 50, 10, rng=np.random.default_rng(0))
    W1 = net.params["W1"]
    f = lambda W: net.loss(x, t)  # noqa: E731 (the book's idiom)

    def subset():
        head = W1.reshape(-1)[:SUBSET]  # a view: perturbed in place
        return reference.numerical_gradient(f, head)

    benchmark.pedantic(subset, rounds=3, warmup_rounds=1)
    per_param = benchmark.stats.stats.median / SUBSET
    benchmark.extra_info["measured"] = f"{SUBSET} of {N_PARAMS} parameters"
    benchmark.extra_info["extrapolated_full_s"] = round(per_param * N_PARAMS, 2)
