"""Forward pass: compiled vs the book's NumPy code."""

import pytest

from mnist_fast import TwoLayerNet


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_loss_batch100(benchmark, batch, backend):
    benchmark.group = "loss, batch 100"
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    benchmark(net.loss, *batch)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_accuracy_test_set(benchmark, mnist, backend):
    benchmark.group = "accuracy, 10,000 test images"
    _, (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    benchmark(net.accuracy, x_test, t_test)
