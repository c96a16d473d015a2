"""``train(..., seed=N)``: bit-identical runs; epochs of a whole number of iterations."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, train
from conftest import BACKENDS


@pytest.fixture(scope="module")
def small(mnist):
    """1000 training and 500 test images: quick epochs."""
    (x_train, t_train), (x_test, t_test) = mnist
    return x_train[:1000], t_train[:1000], x_test[:500], t_test[:500]


def _run(data, seed, backend, **kwargs):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=seed)
    history = train(net, *data, seed=seed, **kwargs)
    return net, history


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_gives_bit_identical_histories_and_weights(small, backend):
    (net1, h1), (net2, h2) = (_run(small, 11, backend, iters_num=30, batch_size=50)
                              for _ in range(2))
    assert h1.train_loss_list == h2.train_loss_list
    assert h1.train_acc_list == h2.train_acc_list
    assert h1.test_acc_list == h2.test_acc_list
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(net1.params[key], net2.params[key])
    net3, h3 = _run(small, 12, backend, iters_num=30, batch_size=50)
    assert h3.train_loss_list != h1.train_loss_list
    assert not np.array_equal(net3.params["W1"], net1.params["W1"])


def test_epochs_with_batch_128(small):
    # 1000 // 128 = 7 iterations per epoch; the book's float 1000 / 128 =
    # 7.8125 makes `i % iter_per_epoch == 0` true at i = 0 only, until 125
    _, history = _run(small, 0, "auto", iters_num=40, batch_size=128)
    assert history.iter_per_epoch == 7
    assert history.epochs == 6  # after iterations 0, 7, 14, 21, 28, 35
    book = [i for i in range(40) if i % max(1000 / 128, 1) == 0]
    assert book == [0]
    # the whole of MNIST (468 iterations an epoch): test_cli_train.py
