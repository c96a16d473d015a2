"""Benchmarks (pytest-benchmark): ``pytest benchmarks/``.

Not part of the test suite: speed is shown here, correctness in tests/.
Each benchmark records what it measured in ``extra_info`` (shown with
``--benchmark-columns`` or in ``--benchmark-json``).  The full numerical-
gradient training run (~2-3 minutes) runs only with
``MNIST_FAST_BENCH_SLOW=1``.
"""

import os

import numpy as np
import pytest

import mnist_fast

SLOW = os.environ.get("MNIST_FAST_BENCH_SLOW") == "1"
slow = pytest.mark.skipif(not SLOW, reason="set MNIST_FAST_BENCH_SLOW=1")


@pytest.fixture(scope="session")
def mnist():
    return mnist_fast.load_mnist()


@pytest.fixture(scope="session")
def batch(mnist):
    """The book's mini-batch: 100 random training rows, integer labels."""
    (x_train, t_train), _ = mnist
    idx = np.random.default_rng(0).choice(x_train.shape[0], 100)
    return x_train[idx], t_train[idx]


def pytest_report_header(config):
    info = mnist_fast.build_info()
    return (f"mnist_fast {info['version']}: compiled={info['compiled']} "
            f"simd={info['simd']} openmp={info['openmp']} "
            f"threads={info['num_threads']} cpus={info['cpu_count']} "
            f"numpy {info['numpy_version']} cython {info['cython_version']} "
            "blas " + ", ".join(f"{b['library']} ({b['num_threads']} threads)"
                                for b in info["blas"]))
