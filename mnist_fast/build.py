"""What was built and what runs: kernels, SIMD variant, OpenMP -- ``build_info()``."""

import os
import platform
import sys

import numpy as np

from . import __version__

#: The compiled kernel modules (``mnist_fast._<name>``), each with its SIMD
#: variants inside (``simd()``, ``simd_variants()``, ``use_simd()``).
KERNEL_MODULES = ("_forward", "_numerical", "_backprop")
#: Run-time switch: ``baseline`` forces the portable (SSE2) kernels.
ENV_SIMD = "MNIST_FAST_SIMD"


#: GNU OpenMP's idle threads spin for up to this many iterations (~10 us)
#: waiting for the next parallel region, then sleep.  Its default (300,000)
#: lets a spinning worker hold a core while the Python thread that will
#: start the next region waits for it: with another busy process on a
#: 2-core machine, the default training run took 125 s instead of 9 s
#: (with 10,000: 13 s loaded, no slower when idle).  Set only when neither
#: OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, before libgomp is loaded.
DEFAULT_GOMP_SPINCOUNT = "10000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = DEFAULT_GOMP_SPINCOUNT


def _choose_simd(kernels):
    """Apply $MNIST_FAST_SIMD to the kernel modules (each took the best
    variant this CPU runs at import); returns the variant that runs."""
    wanted = os.environ.get(ENV_SIMD, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "avx2", "baseline"):
        raise ImportError(
            f"${ENV_SIMD} must be 'auto', 'avx2' or 'baseline', got {wanted!r}")
    for module in kernels:
        if wanted != "auto":
            try:
                module.use_simd(wanted)
            except ValueError as exc:
                raise ImportError(f"${ENV_SIMD}={wanted}: {exc}") from None
    return kernels[0].simd()


try:
    from . import _backprop, _forward, _machine, _numerical
    SIMD = _choose_simd((_forward, _numerical, _backprop))
except ImportError as exc:  # an sdist unpacked without building, say
    _machine = SIMD = _forward = _numerical = _backprop = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    IMPORT_ERROR = None

#: True when the compiled extension modules import.
COMPILED = IMPORT_ERROR is None

#: Which methods of ``TwoLayerNet(backend="cython")`` run compiled code.
COMPILED_METHODS = ("predict", "loss", "accuracy", "numerical_gradient",
                    "gradient")


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return COMPILED and _machine.openmp_enabled()


def max_threads():
    """Threads the kernels use by default (1 without OpenMP)."""
    return _machine.max_threads() if openmp_enabled() else 1


def require_compiled():
    """Raise ``RuntimeError`` explaining why the compiled kernels are missing."""
    if not COMPILED:
        raise RuntimeError(
            "backend='cython' needs the compiled kernels of mnist_fast, which "
            f"did not import ({IMPORT_ERROR}). Reinstall from source with a C "
            "compiler ('pip install --force-reinstall --no-binary mnist_fast "
            "mnist_fast'), or use backend='numpy'."
        )


def build_info():
    """Describe this installation, for bug reports and benchmarks.

    Returns
    -------
    dict
        ``version``; ``compiled`` (the extension modules import) and
        ``import_error`` (why not, else None); ``compiled_methods`` (the
        ``TwoLayerNet`` methods that run compiled code with
        ``backend="cython"``; none when not compiled); ``simd`` (the kernel
        variant in use: ``"avx2"`` -- AVX2+FMA, chosen on CPUs that have
        them -- or ``"baseline"``; see ``$MNIST_FAST_SIMD``); ``openmp``
        (built with OpenMP); ``max_threads`` (OpenMP's default team size, 1
        without OpenMP); ``num_threads`` (what the kernels use now, see
        ``$MNIST_FAST_NUM_THREADS``); ``debug_build`` (bounds checks on);
        ``cython_version`` (that generated the kernels); ``numpy_version``,
        ``python_version``, ``platform``, ``machine``, ``cpu_count``.
    """
    from .threads import resolve_num_threads

    return {
        "version": __version__,
        "compiled": COMPILED,
        "import_error": IMPORT_ERROR,
        "compiled_methods": list(COMPILED_METHODS) if COMPILED else [],
        "simd": SIMD,
        "openmp": openmp_enabled(),
        "max_threads": max_threads(),
        "num_threads": resolve_num_threads(None),
        "debug_build": COMPILED and _machine.debug_build(),
        "cython_version": _machine.cython_version() if COMPILED else None,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
