"""What was built: the compiled kernels, OpenMP, versions -- ``build_info()``."""

import os
import platform
import sys

import numpy as np

from . import __version__

try:
    from . import _forward, _numerical, _openmp_helpers
except ImportError as exc:  # an sdist unpacked without building, say
    _forward = _numerical = _openmp_helpers = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    IMPORT_ERROR = None

#: True when the compiled extension modules import.
COMPILED = IMPORT_ERROR is None

#: Which methods of ``TwoLayerNet(backend="cython")`` run compiled code.
#: Methods not listed here run the NumPy reference on every backend.
COMPILED_METHODS = ("predict", "loss", "accuracy", "numerical_gradient")


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return COMPILED and _openmp_helpers.openmp_enabled()


def max_threads():
    """Threads the kernels use by default (1 without OpenMP)."""
    return _openmp_helpers.max_threads() if openmp_enabled() else 1


def require_compiled():
    """Raise ``RuntimeError`` explaining why the compiled kernels are missing."""
    if not COMPILED:
        raise RuntimeError(
            "backend='cython' needs the compiled kernels of mnist_fast, which "
            f"did not import ({IMPORT_ERROR}). Reinstall with "
            "'pip install --force-reinstall --no-binary mnist_fast mnist_fast' "
            "(a C compiler is needed), or use backend='numpy'."
        )


def build_info():
    """Describe this installation, for bug reports and benchmarks.

    Returns
    -------
    dict
        ``version``; ``compiled`` (the extension modules import) and
        ``import_error`` (why not, else None); ``compiled_methods`` (the
        ``TwoLayerNet`` methods that run compiled code with
        ``backend="cython"``; the others run the NumPy reference);
        ``openmp`` (built with OpenMP); ``max_threads`` (OpenMP's default
        team size, 1 without OpenMP); ``num_threads`` (what the kernels use
        now, see ``MNIST_FAST_NUM_THREADS``); ``debug_build`` (bounds checks
        on); ``cython_version`` (that generated the kernels, None if not
        compiled); ``numpy_version``, ``python_version``, ``platform``,
        ``machine``, ``cpu_count``.
    """
    from .threads import resolve_num_threads

    return {
        "version": __version__,
        "compiled": COMPILED,
        "import_error": IMPORT_ERROR,
        "compiled_methods": list(COMPILED_METHODS) if COMPILED else [],
        "openmp": openmp_enabled(),
        "max_threads": max_threads(),
        "num_threads": resolve_num_threads(None),
        "debug_build": COMPILED and _openmp_helpers.debug_build(),
        "cython_version": _openmp_helpers.cython_version() if COMPILED else None,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
