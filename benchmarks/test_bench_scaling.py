"""Scaling: time per gradient call, numerical vs backprop, over hidden sizes
50, 100, 200, 500 and batch sizes 1, 10, 100, 1000 (784-H-10, real MNIST
rows), each cell one pytest-benchmark group:

- backprop: compiled (``backend="cython"``), the NumPy backend (the book's
  classes), PyTorch eager float32 (``peers.TorchNet``, where installed);
- numerical: compiled, whole (every parameter, as ``numerical_gradient``
  returns it); the NumPy backend's -- the book's loop, two full loss
  evaluations per parameter, hours per call at the large sizes -- on its
  first ``SUBSET`` parameters (entries of ``W1``, perturbed in place on the
  real weights), which ``extra_info["scale"]`` multiplies up to all of
  them: every parameter costs the book's loop the same two loss
  evaluations.  ``test_numerical_numpy_whole`` times the whole loop where
  it takes seconds (784-50-10, batches 1 and 10), alternating with the
  subset, to check that scaling (``extra_info["whole_over_subset_scaled"]``).

``extra_info`` of each: ``scaling`` (its cell and series: ``hidden``,
``batch``, ``method``, ``engine``, ``dtype``), ``parameters`` and
``timed_parameters`` (how many one round covers), ``scale`` (the
benchmark's time times ``scale`` is the time per whole gradient),
``measured`` (the same in words) and ``machine`` (lscpu's model name and
the CPU count).  ``benchmarks/plot_scaling.py`` draws the JSON of
``--benchmark-json``.  The numerical gradients of the cells of 100,000 or
more hidden units x rows (a second or more per round) run only with
``MNIST_FAST_BENCH_SLOW=1``, as does the whole book's loop.
"""

import os
import platform
import shutil
import subprocess
import time

import numpy as np
import pytest

import mnist_fast
from conftest import slow
from peers import TorchNet, one_hot, torch_or_skip
from mnist_fast import TwoLayerNet, blas, reference

HIDDEN = (50, 100, 200, 500)
BATCHES = (1, 10, 100, 1000)
#: Parameters of W1 the NumPy numerical gradient is timed on.
SUBSET = 32
#: Timings of the subset beside each round of the whole book's loop.
SUBSET_CHECKS = 5
#: Numerical cells of at least this many hidden units x rows are slow.
HEAVY = 100_000
COMPILED = mnist_fast.build_info()["compiled"]
requires_compiled = pytest.mark.skipif(not COMPILED,
                                       reason="the compiled kernels are not built")


def n_params(hidden):
    return 784 * hidden + hidden + hidden * 10 + 10


def cells(numerical=False):
    """The grid's (hidden, batch) cells; with ``numerical``, the heavy ones
    marked slow."""
    return [pytest.param(h, b, id=f"H{h}-B{b}",
                         marks=[slow] if numerical and h * b >= HEAVY else [])
            for h in HIDDEN for b in BATCHES]


def lscpu_machine():
    """lscpu's model name and the CPU count (platform's processor name where
    lscpu is missing)."""
    name = platform.processor() or platform.machine()
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True,
                             env={**os.environ, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                name = value.strip()
                break
    return f"{name}, {os.cpu_count()} CPUs"


@pytest.fixture(scope="session")
def machine():
    return lscpu_machine()


@pytest.fixture(scope="session")
def rows(mnist):
    """1000 random training rows and their labels; a cell of batch B takes
    the first B."""
    (x_train, t_train), _ = mnist
    idx = np.random.default_rng(0).choice(x_train.shape[0], max(BATCHES))
    return x_train[idx], t_train[idx]


def record(benchmark, machine, hidden, batch, method, engine, dtype="float64",
           timed=None):
    """The cell's group and ``extra_info``; ``timed`` is the number of
    parameters one round covers (default all)."""
    timed = timed or n_params(hidden)
    benchmark.group = f"gradient per call, 784-{hidden}-10, batch {batch}"
    benchmark.extra_info.update(
        scaling={"hidden": hidden, "batch": batch, "method": method,
                 "engine": engine, "dtype": dtype},
        parameters=n_params(hidden), timed_parameters=timed,
        scale=n_params(hidden) / timed, machine=machine,
        measured=("one whole gradient" if timed == n_params(hidden) else
                  f"{timed} of {n_params(hidden)} parameters, scaled"))


def net_and_batch(rows, hidden, batch, backend):
    net = TwoLayerNet(784, hidden, 10, seed=0, backend=backend)
    return net, rows[0][:batch], rows[1][:batch]


@pytest.mark.parametrize("hidden, batch", cells())
@pytest.mark.parametrize("backend", [
    pytest.param("cython", marks=requires_compiled), "numpy"])
def test_backprop(benchmark, machine, rows, hidden, batch, backend):
    net, x, t = net_and_batch(rows, hidden, batch, backend)
    record(benchmark, machine, hidden, batch, "backprop",
           "compiled" if backend == "cython" else "numpy")
    benchmark(net.gradient, x, t)


@pytest.mark.parametrize("hidden, batch", cells())
def test_backprop_torch(benchmark, machine, rows, hidden, batch):
    torch = torch_or_skip()
    net, x, t = net_and_batch(rows, hidden, batch, "numpy")
    torch_net = TorchNet(torch, net.params)
    record(benchmark, machine, hidden, batch, "backprop", "torch", "float32")
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark(torch_net.gradient, *torch_net.tensors(x, one_hot(t)))


@requires_compiled
@pytest.mark.parametrize("hidden, batch", cells(numerical=True))
def test_numerical_compiled(benchmark, machine, rows, hidden, batch):
    net, x, t = net_and_batch(rows, hidden, batch, "cython")
    record(benchmark, machine, hidden, batch, "numerical", "compiled")
    benchmark(net.numerical_gradient, x, t)


def numpy_numerical(rows, hidden, batch, subset=None):
    """The NumPy backend's numerical gradient as a function of no
    arguments: the book's loop on a copy of the weights, under the
    backend's BLAS thread policy -- over the first ``subset`` entries of
    ``W1`` only, when given."""
    net, x, t = net_and_batch(rows, hidden, batch, "numpy")
    if subset is None:
        return lambda: net.numerical_gradient(x, t)
    book = reference.TwoLayerNet.from_params(
        {k: v.copy() for k, v in net.params.items()})
    f = lambda W: book.loss(x, t)  # noqa: E731 (the book's idiom)
    head = book.params["W1"].reshape(-1)[:subset]  # a view: perturbed in place
    engine = net.engine
    return lambda: engine.threads.run(
        ("numerical_gradient", batch), engine.num_threads, blas.run,
        reference.numerical_gradient, f, head)


@pytest.mark.parametrize("hidden, batch", cells(numerical=True))
def test_numerical_numpy_subset(benchmark, machine, rows, hidden, batch):
    """The book's loop over SUBSET parameters, scaled to all of them."""
    record(benchmark, machine, hidden, batch, "numerical", "numpy",
           timed=SUBSET)
    benchmark(numpy_numerical(rows, hidden, batch, SUBSET))


@slow
@pytest.mark.parametrize("batch", [1, 10])
def test_numerical_numpy_whole(benchmark, machine, rows, batch):
    """The book's loop over every parameter, where it takes seconds: the
    check of the subset's scaling.  Before each round (untimed by the
    benchmark) the subset's loop runs SUBSET_CHECKS times, timed here, so
    that both see the same load; ``extra_info`` has the subset's scaled
    figure (median, and mean) and the ratio of the whole's median to it.
    On a busy machine the whole's seconds-long rounds take in the other
    processes' time slices, which the median of the subset's
    millisecond-long calls leaves out (its mean less so)."""
    record(benchmark, machine, 50, batch, "numerical whole", "numpy")
    subset, scaled = numpy_numerical(rows, 50, batch, SUBSET), []

    def time_the_subset():
        for _ in range(SUBSET_CHECKS):
            start = time.perf_counter()
            subset()
            scaled.append((time.perf_counter() - start) * n_params(50) / SUBSET)

    benchmark.pedantic(numpy_numerical(rows, 50, batch), setup=time_the_subset,
                       rounds=3, warmup_rounds=0)
    estimate = float(np.median(scaled))
    benchmark.extra_info["subset_scaled_s"] = estimate
    benchmark.extra_info["subset_scaled_mean_s"] = float(np.mean(scaled))
    benchmark.extra_info["whole_over_subset_scaled"] = (
        benchmark.stats.stats.median / estimate)
