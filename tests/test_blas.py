"""The NumPy backend's BLAS threads (mnist_fast/blas.py): each call runs with
BLAS on the count of the network's thread policy, and the user's own BLAS
settings are back when it returns."""

import numpy as np
import pytest
import threadpoolctl

from mnist_fast import kernels
from mnist_fast.blas import info, run
from mnist_fast.numpy_engine import NumpyEngine
from mnist_fast.threads import FixedThreads

BLAS = threadpoolctl.ThreadpoolController().select(user_api="blas")
needs_blas = pytest.mark.skipif(not BLAS.lib_controllers,
                                reason="threadpoolctl finds no BLAS here")


def blas_counts():
    return [lib["num_threads"] for lib in BLAS.info()]


class Watched(np.ndarray):
    """Inputs that note the BLAS thread counts whenever the book's code
    runs a NumPy function on them (``np.dot(x, W1)``, inside the call)."""

    seen = set()

    def __array_function__(self, func, types, args, kwargs):
        Watched.seen.add(tuple(blas_counts()))
        return super().__array_function__(func, types, args, kwargs)


@needs_blas
def test_a_kernel_runs_on_the_count_and_the_settings_come_back():
    before = blas_counts()
    assert run(blas_counts, 1) == [1] * len(before)
    assert blas_counts() == before

    def fails():
        raise ZeroDivisionError
    with pytest.raises(ZeroDivisionError):
        run(fails, 1)
    assert blas_counts() == before


@needs_blas
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("method", ["predict", "loss", "accuracy", "gradient",
                                    "numerical_gradient"])
def test_every_numpy_engine_call_runs_on_the_policy_count(method, n):
    if n > 1 and not kernels.openmp_enabled():
        pytest.skip("a team of 2 needs the compiled kernels with OpenMP")
    rng = np.random.default_rng(0)
    p = {"W1": rng.normal(size=(6, 5)), "b1": np.zeros(5),
         "W2": rng.normal(size=(5, 3)), "b2": np.zeros(3)}
    # enough rows for the policy to give the call n threads
    rows = 64 * n
    x = rng.random((rows, 6)).view(Watched)
    t = rng.integers(0, 3, rows).astype(np.intp)
    before = blas_counts()
    engine = NumpyEngine(FixedThreads(n))
    args = (p, x) if method == "predict" else (p, x, t)
    Watched.seen = set()
    getattr(engine, method)(*args)
    assert Watched.seen == {(n,) * len(before)}
    assert blas_counts() == before


def test_info_names_the_libraries():
    assert info() == [{"library": lib["internal_api"],
                       "num_threads": lib["num_threads"]} for lib in BLAS.info()]
