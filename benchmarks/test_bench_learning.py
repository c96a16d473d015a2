"""Learning: the book's ch. 5 run, ``mnist-fast train --activation relu
--seed 0`` (10,000 iterations, batch 100), beside the book's own ch. 5
script and classes after ``np.random.seed(0)`` -- the same batches.

The command must reach a test accuracy of at least 0.965 and print the
book's per-epoch accuracies, digit for digit.  The book's run takes
minutes (NumPy, 10,000 iterations and 17 passes over 70,000 images), so
this runs only with ``MNIST_FAST_BENCH_SLOW=1``; the test suite has the
short version (tests/test_cli_relu.py, tests/test_book_scripts.py).
"""

import subprocess
import sys

import pytest

import mnist_fast
from mnist_fast import book_scripts
from conftest import slow

#: The test accuracy the book's ch. 5 run reaches (it prints ~0.970).
TEST_ACCURACY = 0.965
BACKENDS = ["numpy"] + (["cython"] if mnist_fast.build_info()["compiled"] else [])


def command_run(backend, seed=0):
    """``mnist-fast train --activation relu --seed SEED``: its per-epoch
    (train, test) accuracies."""
    out = subprocess.run(
        [sys.executable, "-m", "mnist_fast", "train", "--activation", "relu",
         "--seed", str(seed), "--backend", backend, "--no-progress"],
        capture_output=True, text=True, check=True).stdout
    prefix = "train acc, test acc | "
    return [tuple(map(float, line[len(prefix):].split(", ")))
            for line in out.splitlines() if line.startswith(prefix)]


@pytest.fixture(scope="module")
def book_run(tmp_path_factory):
    """The book's ch. 5 script on the book's classes after np.random.seed(0):
    its per-epoch (train, test) accuracies."""
    path = tmp_path_factory.mktemp("book") / "train_neuralnet.py"
    _, names = book_scripts.run(book_scripts.variant(
        "ch05_train_neuralnet", classes="book", seed=0), path)
    return list(zip(names["train_acc_list"], names["test_acc_list"]))


@slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_relu_run_learns_as_the_books(benchmark, backend, book_run):
    benchmark.group = "the book's ch. 5 run (ReLU, 10,000 iterations, batch 100)"
    epochs = benchmark.pedantic(command_run, args=(backend,), rounds=1,
                                warmup_rounds=0)
    benchmark.extra_info["final_train_acc"] = epochs[-1][0]
    benchmark.extra_info["final_test_acc"] = epochs[-1][1]
    benchmark.extra_info["book_final_test_acc"] = book_run[-1][1]
    assert len(epochs) == 17  # after iterations 0, 600, ... 9600
    assert epochs == book_run
    assert epochs[-1][1] >= TEST_ACCURACY
