"""Forward pass: compiled vs the book's NumPy code."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, train


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


def test_accuracy_70000_images_in_train(benchmark, mnist):
    """The same evaluation as ``train`` runs it: on the compressed rows it
    keeps, float32 screen included (net trained 1 epoch: realistic margins)."""
    benchmark.group = "accuracy, 60,000 train + 10,000 test images"
    (x_train, t_train), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, seed=0)
    train(net, x_train, t_train, x_test, t_test, iters_num=600, seed=0,
          eval_every_epoch=False)
    data_sets = [net.engine.data_set(x, t.astype(np.intp))
                 for x, t in ((x_train, t_train), (x_test, t_test))]

    def both():
        return net.engine.accuracies(net.params, data_sets)

    accuracies = benchmark.pedantic(both, rounds=10, warmup_rounds=1)
    assert accuracies == [net.accuracy(x_train, t_train),
                          net.accuracy(x_test, t_test)]


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_predict_batch100(benchmark, batch, backend):
    benchmark.group = "predict, batch 100"
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    benchmark(net.predict, batch[0])
