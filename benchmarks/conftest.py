"""Benchmarks (pytest-benchmark): ``pytest benchmarks/``.

Not part of the test suite: speed is shown here, correctness in tests/.
"""

import numpy as np
import pytest

import mnist_fast


@pytest.fixture(scope="session")
def mnist():
    return mnist_fast.load_mnist()


@pytest.fixture(scope="session")
def batch(mnist):
    """The seed's mini-batch: 100 random training rows."""
    (x_train, t_train), _ = mnist
    idx = np.random.default_rng(0).choice(x_train.shape[0], 100)
    return x_train[idx], t_train[idx]


def pytest_report_header(config):
    info = mnist_fast.build_info()
    return (f"mnist_fast {info['version']}: compiled={info['compiled']} "
            f"openmp={info['openmp']} threads={info['num_threads']} "
            f"cpus={info['cpu_count']} numpy {info['numpy_version']} "
            f"cython {info['cython_version']}")
