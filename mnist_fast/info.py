"""What was built and what runs, for people and bug reports: ``build_info()``."""

import os
import platform
import sys

import numpy as np

from . import __version__, blas, book, kernels
from .threads import resolve_num_threads, thread_policy

#: What ``TwoLayerNet(backend="cython")`` runs compiled, for either
#: activation (and ``mnist_fast.ch05``'s network): its methods, and
#: ``train``'s fused SGD step.
COMPILED_METHODS = ("predict", "loss", "accuracy", "numerical_gradient",
                    "gradient", "train")


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
        "compiled_methods": list(COMPILED_METHODS) if compiled else [],
        "compiled_methods_by_activation": {
            a: list(COMPILED_METHODS) if compiled else []
            for a in book.ACTIVATIONS},
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
