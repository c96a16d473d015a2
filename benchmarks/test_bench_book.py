"""Where the book's readers work (mnist_fast/bench_book.py): the book's own
script whole, and calls and training beside one other CPU-bound process.

The loaded benchmarks start their competing process themselves and end it
by its PID; compare each default (``threads=default``) with the fixed counts
of the same group.
"""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, load_mnist, train
from mnist_fast.bench_book import book_script, competing_process
from conftest import slow

LINES = {}


@pytest.mark.parametrize("classes", ["mnist_fast", "book"])
def test_book_script_backprop(benchmark, classes):
    """The ch. 4 script, backprop line on, np.random.seed(0), whole."""
    benchmark.group = "the book's ch. 4 script (backprop), whole"
    seconds, lines = benchmark.pedantic(book_script, args=(classes,),
                                        rounds=3 if classes == "mnist_fast" else 1)
    LINES[classes] = lines
    benchmark.extra_info["last_line"] = lines[-1]
    if len(LINES) == 2:  # the drop-in prints the book's lines
        assert LINES["mnist_fast"] == LINES["book"]


@slow
def test_book_script_numerical(benchmark):
    """The ch. 4 script as printed: the numerical gradient (mnist_fast only;
    the book's classes take days)."""
    benchmark.group = "the book's ch. 4 script (numerical gradient), whole"
    _, lines = benchmark.pedantic(book_script, args=("mnist_fast",),
                                  kwargs=dict(gradient="numerical"), rounds=1)
    benchmark.extra_info["last_line"] = lines[-1]


THREADS = [None, 1, 2]
IDS = ["threads=default", "threads=1", "threads=2"]


@pytest.fixture
def competitor():
    with competing_process() as pid:
        yield pid


@pytest.mark.parametrize("num_threads", THREADS, ids=IDS)
def test_train_loaded(benchmark, competitor, num_threads):
    benchmark.group = "train, the book's run, one other CPU-bound process"
    (x_train, t_train), (x_test, t_test) = load_mnist()

    def run():
        net = TwoLayerNet(784, 50, 10, seed=0, num_threads=num_threads)
        return train(net, x_train, t_train, x_test, t_test, seed=0)

    history = benchmark.pedantic(run, rounds=3)
    assert history.test_acc_list[-1] > 0.93


@pytest.mark.parametrize("num_threads", THREADS, ids=IDS)
def test_book_loop_loaded(benchmark, competitor, num_threads):
    """The book's loop for 600 iterations (an epoch): gradient, update,
    loss, fresh batches, then the two accuracies."""
    benchmark.group = "the book's loop (an epoch), one other CPU-bound process"
    (x_train, t_train), (x_test, t_test) = load_mnist(one_hot_label=True)
    rng = np.random.default_rng(0)

    def epoch():
        net = TwoLayerNet(784, 50, 10, seed=0, num_threads=num_threads)
        for _ in range(600):
            mask = rng.choice(60000, 100)
            grad = net.gradient(x_train[mask], t_train[mask])
            for key in ("W1", "b1", "W2", "b2"):
                net.params[key] -= 0.1 * grad[key]
            net.loss(x_train[mask], t_train[mask])
        return net.accuracy(x_train, t_train), net.accuracy(x_test, t_test)

    accuracies = benchmark.pedantic(epoch, rounds=3)
    assert min(accuracies) > 0.7  # trained: the book reaches ~0.78 after an epoch
