"""The seed's full run beside its peers, in one group (pytest-benchmark
shows the ratios): 10,000 iterations of batch 100 at learning rate 0.1, the
post-update loss recorded, 17 evaluations of the training and test
accuracy, the data loaded inside the timed run.

- ``mnist_fast.train`` (float64, the compiled engine),
- a float32 NumPy loop with preallocated arrays (``peers.NumpyNet32``),
- PyTorch eager float32 (``peers.TorchNet``), where installed.

Each records its final accuracies in ``extra_info``; each must learn (test
accuracy above 0.9).  A few seconds per run, three runs each: only with
``MNIST_FAST_BENCH_SLOW=1``.
"""

import numpy as np

from conftest import slow
from peers import (NumpyNet32, TorchNet, numpy32_book_loop, one_hot,
                   torch_book_loop, torch_or_skip)
from test_bench_training import run_seed
from mnist_fast import TwoLayerNet, load_mnist

GROUP = "the seed's full run beside peers (10,000 iterations, batch 100, data loaded)"
ROUNDS = 3


def timed(benchmark, run, dtype):
    """``run()`` (returning the final train and test accuracies) timed
    ROUNDS times, its accuracies and dtype in ``extra_info``."""
    benchmark.group = GROUP
    train_acc, test_acc = benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=0)
    benchmark.extra_info.update(final_train_acc=train_acc,
                                final_test_acc=test_acc, dtype=dtype)
    assert test_acc > 0.9


@slow
def test_full_run_mnist_fast_train(benchmark):
    def run():
        history = run_seed("backprop")
        return history.train_acc_list[-1], history.test_acc_list[-1]

    timed(benchmark, run, "float64")


@slow
def test_full_run_numpy_float32_loop(benchmark):
    def run():
        (x_train, t_train), (x_test, t_test) = load_mnist()
        net = NumpyNet32(TwoLayerNet(784, 50, 10, seed=0).params, batch=100)
        return numpy32_book_loop(net, x_train, t_train, x_test, t_test)[1]

    timed(benchmark, run, "float32")


@slow
def test_full_run_torch_eager_float32(benchmark):
    torch = torch_or_skip()

    def run():
        (x_train, t_train), (x_test, t_test) = load_mnist()
        xs = [torch.from_numpy(x) for x in (x_train, x_test)]
        labels = [torch.from_numpy(t.astype(np.int64)) for t in (t_train, t_test)]
        t_hot = torch.from_numpy(one_hot(t_train))
        np.random.seed(0)
        net = TorchNet(torch, TwoLayerNet(784, 50, 10, seed=0).params)
        return torch_book_loop(net, xs, labels, t_hot)[1]

    timed(benchmark, run, "float32")
    benchmark.extra_info["torch"] = torch.__version__
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
