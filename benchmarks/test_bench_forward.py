"""Forward pass: compiled vs the book's NumPy code."""

import pytest

from mnist_fast import TwoLayerNet


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_loss_batch100(benchmark, batch, backend):
    benchmark.group = "loss, batch 100"
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    benchmark(net.loss, *batch)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_accuracy_70000_images(benchmark, mnist, backend):
    """The per-epoch evaluation: accuracy over all 70,000 images."""
    benchmark.group = "accuracy, 60,000 train + 10,000 test images"
    (x_train, t_train), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)

    def both():
        return net.accuracy(x_train, t_train), net.accuracy(x_test, t_test)

    benchmark.pedantic(both, rounds=5 if backend == "cython" else 2,
                       warmup_rounds=1)
