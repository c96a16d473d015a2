"""Numerical vs backprop gradient: time per batch on each backend.

``benchmark()`` measures what ``mnist-fast bench`` prints: the time of
``TwoLayerNet.numerical_gradient`` and ``TwoLayerNet.gradient`` on one batch
of MNIST rows, for every backend this installation has.

The NumPy numerical gradient takes tens of seconds per batch at the book's
size (two loss evaluations per parameter, 39,760 parameters).  Unless
``full=True``, wherever that method runs the NumPy reference it is timed
on a subset of the parameters (the reference's own central differences,
perturbing the network's real weights) and scaled up to all of them: every
parameter costs the same two loss evaluations, so the estimate is the
per-parameter time times the count.  Compiled methods are always timed in
full.
"""

import math
import statistics
import sys
import time

import numpy as np

from . import kernels, reference
from .info import build_info
from .mnist import load_mnist
from .numpy_engine import REFERENCE_NETS
from .threads import resolve_num_threads, thread_policy
from .two_layer_net import TwoLayerNet
from .validation import positive_int

METHODS = ("numerical_gradient", "gradient")
#: Parameters whose central differences are timed for an estimate.
SUBSET = 400
#: A timed repeat lasts at least this long (fast calls are looped).
MIN_REPEAT_TIME = 0.05


def median_time(fn, repeats):
    """Median seconds per call of ``fn()`` over ``repeats`` timed repeats.

    Each repeat calls ``fn`` as many times as it takes to last
    ``MIN_REPEAT_TIME`` (judged from a first call), so that fast calls are
    timed accurately.
    """
    def run(number):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - start) / number

    first = run(1)
    if first >= MIN_REPEAT_TIME:
        return statistics.median([first] + [run(1) for _ in range(repeats - 1)])
    number = math.ceil(MIN_REPEAT_TIME / max(first, 1e-9))
    return statistics.median([run(number) for _ in range(repeats)])


def _subset_estimate(net, x, t, repeats):
    """Seconds for the reference numerical gradient, from ``SUBSET`` parameters."""
    params = {k: v.copy() for k, v in net.checked_params().items()}
    ref = REFERENCE_NETS[net.engine.architecture].from_params(params)
    n_params = sum(v.size for v in params.values())
    rows = max(1, SUBSET // net.hidden_size)
    subset = params["W1"][:rows]  # a view: the real weights are perturbed
    loss = lambda _: ref.loss(x, t)  # noqa: E731 (the book's idiom)
    seconds = median_time(lambda: reference.numerical_gradient(loss, subset),
                          repeats)
    return seconds * n_params / subset.size, subset.size


def peak_rss_mib():
    """Peak resident memory of this process in MiB, or None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def benchmark(*, repeats=5, full=False, num_threads=None, hidden_size=50,
              batch_size=100, activation="sigmoid"):
    """Time both gradients on one batch of MNIST rows, on every backend.

    Parameters
    ----------
    repeats : int, default 5
        Timed repeats of each measurement; the median is reported.
    full : bool, default False
        Time the NumPy-reference numerical gradient over all parameters
        (tens of seconds per call at the book's size) instead of estimating it
        from ``SUBSET`` of them.
    num_threads : int, optional
        Threads of the compiled kernels (``TwoLayerNet(num_threads=...)``).
    hidden_size, batch_size : int
        The book's 50 and 100 by default.
    activation : {"sigmoid", "relu"}, default "sigmoid"
        The network's hidden layer (``TwoLayerNet(activation=...)``).

    Returns
    -------
    dict
        ``results[backend][method]`` with ``seconds`` (median per call),
        ``estimated`` and ``params_timed``, and ``compiled``; ``speedups``
        (``backprop_vs_numerical`` per backend, ``cython_vs_numpy`` per
        method when both backends exist); ``layer_sizes``, ``n_params``,
        ``batch_size``, ``activation``, ``repeats``, ``full``,
        ``num_threads`` (the most
        threads) and ``thread_policy`` (how they are chosen),
        ``build_info`` and ``peak_rss_mib``.
    """
    repeats = positive_int(repeats, "repeats")
    (x_train, t_train), _ = load_mnist()
    idx = np.random.default_rng(0).choice(x_train.shape[0], batch_size)
    x, t = x_train[idx], t_train[idx]
    backends = ["numpy"] + (["cython"] if kernels.COMPILED else [])

    results = {}
    for backend in backends:
        net = TwoLayerNet(x.shape[1], hidden_size, 10, backend=backend, seed=0,
                          num_threads=num_threads, activation=activation)
        n_params = sum(v.size for v in net.params.values())
        results[backend] = {}
        compiled = net.engine.compiled
        for method in METHODS:
            if method == "numerical_gradient" and not (compiled or full):
                seconds, timed = _subset_estimate(net, x, t, repeats)
            else:
                seconds, timed = median_time(
                    lambda m=getattr(net, method): m(x, t), repeats), n_params
            results[backend][method] = {
                "seconds": seconds, "estimated": timed < n_params,
                "params_timed": timed, "compiled": compiled,
            }

    speedups = {"backprop_vs_numerical": {
        b: r["numerical_gradient"]["seconds"] / r["gradient"]["seconds"]
        for b, r in results.items()}}
    if "cython" in results:
        speedups["cython_vs_numpy"] = {
            m: results["numpy"][m]["seconds"] / results["cython"][m]["seconds"]
            for m in METHODS}
    info = build_info()
    return {
        "layer_sizes": [x.shape[1], hidden_size, 10], "n_params": n_params,
        "batch_size": batch_size, "activation": activation,
        "repeats": repeats, "full": full,
        "num_threads": resolve_num_threads(num_threads),
        "thread_policy": repr(thread_policy(num_threads)),
        "results": results, "speedups": speedups, "build_info": info,
        "peak_rss_mib": peak_rss_mib(),
    }
