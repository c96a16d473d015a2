"""Training: the fused SGD step (alone and 64 per call), the book's full runs."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, load_mnist, train
from conftest import slow


#: The hidden layers: the book's ch. 4 network and its ch. 5 one.
ACTIVATIONS = ["sigmoid", "relu"]


def fused_trainer(mnist, activation="sigmoid"):
    (x_train, t_train), _ = mnist
    net = TwoLayerNet(784, 50, 10, activation=activation, seed=0)
    data = net.engine.data_set(x_train, t_train.astype(np.intp))
    return net.engine.trainer(net.params, data, 100, 0.1, "backprop")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sgd_step_batch100(benchmark, mnist, activation):
    """One fused step: forward, backward, update, post-update loss."""
    benchmark.group = "one SGD step, batch 100"
    trainer = fused_trainer(mnist, activation)
    batches = np.random.default_rng(0).choice(60000, (1000, 1, 100))
    losses = np.empty(1)
    it = iter(range(10**9))
    benchmark(lambda: trainer.run(batches[next(it) % 1000], losses))


def test_sgd_64_steps_batch100(benchmark, mnist):
    """64 steps in one call, as ``train`` runs them (divide by 64)."""
    benchmark.group = "64 SGD steps in one call, batch 100"
    trainer = fused_trainer(mnist)
    batches = np.random.default_rng(0).choice(60000, (64 * 50, 100))
    losses = np.empty(64)
    it = iter(range(10**9))

    def run():
        k = next(it) % 50
        trainer.run(batches[64 * k:64 * (k + 1)], losses)

    benchmark(run)


def run_seed(gradient, activation="sigmoid"):
    """The book's script: data loaded, 10,000 iterations, 17 evaluations."""
    (x_train, t_train), (x_test, t_test) = load_mnist()
    net = TwoLayerNet(784, 50, 10, activation=activation, seed=0)
    return train(net, x_train, t_train, x_test, t_test, iters_num=10000,
                 batch_size=100, learning_rate=0.1, gradient=gradient, seed=0)


def full_run(benchmark, gradient, rounds, activation="sigmoid"):
    benchmark.group = "the book's full run (10,000 iterations, batch 100)"
    history = benchmark.pedantic(run_seed, args=(gradient, activation),
                                 rounds=rounds, warmup_rounds=0)
    benchmark.extra_info["final_train_acc"] = history.train_acc_list[-1]
    benchmark.extra_info["final_test_acc"] = history.test_acc_list[-1]
    benchmark.extra_info["train_wall_s"] = round(history.wall_time, 3)
    assert history.test_acc_list[-1] > 0.93


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_full_run_backprop(benchmark, activation):
    full_run(benchmark, "backprop", rounds=3, activation=activation)


@slow
def test_full_run_numerical(benchmark):
    """The book's commented-out line: training by numerical gradient."""
    full_run(benchmark, "numerical", rounds=1)


# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of
# this (large) pytest process would report the parent's size.
RUN = """
import mnist_fast as mf
(x, t), (xt, tt) = mf.load_mnist()
h = mf.train(mf.TwoLayerNet(784, 50, 10, seed=0), x, t, xt, tt, seed=0)
with open("/proc/self/status") as f:
    print([line.split()[1] for line in f if line.startswith("VmHWM")][0])
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux")
def test_full_run_peak_rss(benchmark):
    """Peak memory (VmHWM, Linux) of a fresh process doing the book's full
    run: data loaded, training, evaluation."""
    benchmark.group = "peak RSS of the book's full run (fresh process)"
    peaks = []

    def run():
        out = subprocess.run([sys.executable, "-c", RUN], check=True,
                             capture_output=True, text=True).stdout
        peaks.append(int(out.split()[-1]) / 1024)

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    benchmark.extra_info["peak_rss_mb"] = round(peaks[0], 1)
    assert peaks[0] < 1000
