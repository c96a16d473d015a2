"""What was built and what runs, for people and bug reports: ``build_info()``."""

import functools
import os
import platform
import sys

import numpy as np

from . import __version__, blas, book, kernels
from .engine import Architecture
from .threads import resolve_num_threads, thread_policy

#: What ``TwoLayerNet(backend="cython")`` may run compiled: its methods,
#: and ``train``'s fused SGD step.
COMPILED_METHODS = ("predict", "loss", "accuracy", "numerical_gradient",
                    "gradient", "train")
#: The architectures of the public networks of each activation:
#: ``TwoLayerNet(activation=...)``, and for ReLU ``mnist_fast.ch05``'s too.
NETWORKS = {
    "sigmoid": (Architecture("sigmoid"),),
    "relu": (Architecture("relu"), Architecture("relu", scores=True)),
}


def _runs_compiled(engine, method):
    """Whether ``method`` of the compiled ``engine`` runs on a 1-1-2
    network and one row, rather than raise the NotImplementedError of a
    kernel not built for its architecture."""
    p = {"W1": np.ones((1, 1)), "b1": np.zeros(1), "W2": np.ones((1, 2)),
         "b2": np.zeros(2)}
    x, t = np.ones((1, 1)), np.zeros(1, dtype=np.intp)
    try:
        if method == "train":
            engine.trainer(p, engine.data_set(x, t), 1, book.LEARNING_RATE,
                           "backprop").run(np.zeros((1, 1), dtype=np.intp),
                                           np.empty(1))
        elif method == "predict":
            engine.predict(p, x)
        else:
            getattr(engine, method)(p, x, t)
    except NotImplementedError:
        return False
    return True


@functools.cache
def compiled_methods(activation):
    """What runs compiled for the networks of ``activation`` (one of
    :data:`NETWORKS`), found by calling each of :data:`COMPILED_METHODS`
    of the compiled engine once on a tiny network: a method counts when it
    runs compiled for every network of the activation.  Empty when the
    kernels are not compiled.  (Its values are small enough for the
    compiled numerical gradient, which is not then replaced by the book's
    loop.)

    Returns
    -------
    tuple of str
    """
    if not kernels.COMPILED:
        return ()
    from .compiled_engine import CompiledEngine

    engines = [CompiledEngine(thread_policy(1), a) for a in NETWORKS[activation]]
    return tuple(m for m in COMPILED_METHODS
                 if all(_runs_compiled(e, m) for e in engines))


def build_info():
    """Describe this installation, for bug reports and benchmarks.

    Returns
    -------
    dict
        ``version``; ``compiled`` (the extension modules import),
        ``import_error`` (their import error, else None) and
        ``not_compiled`` (why they do not run -- not built at install, or
        built but not loading -- and what to do; None when compiled);
        ``compiled_methods`` (the ``TwoLayerNet`` methods that run compiled
        code with ``backend="cython"``, and ``"train"`` when ``train``'s
        SGD step does, for the default sigmoid network; none when not
        compiled) and ``compiled_methods_by_activation`` (the same for
        each activation; for ``"relu"``, what runs compiled for both
        ``TwoLayerNet(activation="relu")`` and ``mnist_fast.ch05``'s
        class); ``simd`` (the kernel
        variant in use: ``"avx2"`` -- AVX2+FMA, chosen on CPUs that have
        them -- or ``"baseline"``; see ``$MNIST_FAST_SIMD``); ``openmp``
        (built with OpenMP); ``max_threads`` (OpenMP's default team size, 1
        without OpenMP); ``num_threads`` (the most threads a network
        created now uses, see ``$MNIST_FAST_NUM_THREADS``);
        ``thread_policy`` (how such a network chooses its threads per call:
        ``"adaptive, ..."`` or ``"fixed, ..."``, see
        :mod:`mnist_fast.threads`); ``debug_build`` (bounds checks
        on); ``cython_version`` (that generated the kernels);
        ``blas`` (the BLAS libraries NumPy runs and their default thread
        counts, ``[{"library": ..., "num_threads": ...}]``: the NumPy
        backend limits them per call to the thread policy's count,
        :mod:`mnist_fast.blas`);
        ``numpy_version``, ``python_version``, ``platform``, ``machine``,
        ``cpu_count``.
    """
    compiled = kernels.COMPILED
    return {
        "version": __version__,
        "compiled": compiled,
        "import_error": kernels.IMPORT_ERROR,
        "not_compiled": kernels.not_compiled_reason(),
        "compiled_methods": list(compiled_methods("sigmoid")),
        "compiled_methods_by_activation": {
            a: list(compiled_methods(a)) for a in NETWORKS},
        "simd": kernels.simd(),
        "openmp": kernels.openmp_enabled(),
        "max_threads": kernels.max_threads(),
        "num_threads": resolve_num_threads(None),
        "thread_policy": repr(thread_policy(None)),
        "debug_build": compiled and kernels.machine.debug_build(),
        "cython_version": kernels.machine.cython_version() if compiled else None,
        "blas": blas.info(),
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
