"""The compiled kernel modules, imported here and nowhere else.

``mnist_fast._forward`` (predict, loss, accuracy), ``_numerical`` (the
numerical gradient), ``_backprop`` (backprop and the fused SGD step),
``_checks`` (the input checks of :mod:`mnist_fast.validation`) and
``_machine`` (facts about the build).  Each kernel module carries its SIMD
variants inside (src_cython/simd_rows.h) and takes the best this CPU runs
when it is imported; ``$MNIST_FAST_SIMD`` chooses another (a value that
is not a variant's name, or a variant this build or CPU has not got, makes
this import fail with an ``ImportError`` that says so).  When they do not
import (an sdist unpacked without building, say) :data:`COMPILED` is False
and :data:`IMPORT_ERROR` says why; the NumPy engine then runs everything,
unless ``$MNIST_FAST_SIMD`` asked for a variant (an ``ImportError`` too).

The OpenMP wait policy must be in the environment before libgomp loads:
``mnist_fast/__init__.py`` imports :mod:`mnist_fast.threads`, which sets
it, before anything imports this module.
"""

import os

#: Run-time switch of the SIMD variant: ``auto`` (the best this CPU runs),
#: ``avx2`` or ``baseline`` (the portable kernels).
ENV_SIMD = "MNIST_FAST_SIMD"
SIMD_CHOICES = ("auto", "avx2", "baseline")

_wanted = os.environ.get(ENV_SIMD, "auto").strip().lower() or "auto"
if _wanted not in SIMD_CHOICES:
    # a typo must not quietly turn the compiled kernels off
    raise ImportError(
        f"${ENV_SIMD} must be one of {', '.join(SIMD_CHOICES)}, got "
        f"{os.environ[ENV_SIMD]!r}")

try:
    from . import _backprop as backprop
    from . import _checks as checks
    from . import _forward as forward
    from . import _machine as machine
    from . import _numerical as numerical
except ImportError as exc:  # an sdist unpacked without building, say
    machine = forward = numerical = backprop = checks = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    IMPORT_ERROR = None

#: True when the compiled extension modules import.
COMPILED = IMPORT_ERROR is None
#: The modules whose row helpers come in SIMD variants.
KERNEL_MODULES = (forward, numerical, backprop, checks)


def use_simd(name):
    """Run the kernels' row helpers of SIMD variant ``name`` ("avx2" or
    "baseline"); ValueError when this build or CPU has not got it.  Not
    while a kernel runs."""
    for module in KERNEL_MODULES:
        module.use_simd(name)


def simd():
    """The SIMD variant that runs, None when not compiled."""
    return forward.simd() if COMPILED else None


def simd_variants():
    """The variants this build has and this CPU runs, worst first."""
    if not COMPILED:
        return []
    return [name for name, runs in forward.simd_variants().items() if runs]


if _wanted != "auto":
    # a variant asked for by name runs, or importing fails saying why:
    # never the other variant, nor the NumPy code, without a word
    if not COMPILED:
        raise ImportError(
            f"${ENV_SIMD}={_wanted} asks for the compiled kernels, which did "
            f"not import ({IMPORT_ERROR}); unset it to run the NumPy code")
    try:
        use_simd(_wanted)
    except ValueError as exc:
        raise ImportError(
            f"${ENV_SIMD}={_wanted}: {exc}; this machine runs "
            f"{', '.join(('auto', *simd_variants()))}") from None


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return COMPILED and machine.openmp_enabled()


def max_threads():
    """OpenMP's default team size (1 without OpenMP)."""
    return machine.max_threads() if openmp_enabled() else 1


def require_compiled():
    """Raise ``RuntimeError`` explaining why the compiled kernels are missing."""
    if not COMPILED:
        raise RuntimeError(
            "backend='cython' needs the compiled kernels of mnist_fast, which "
            f"did not import ({IMPORT_ERROR}). Reinstall from source with a C "
            "compiler ('pip install --force-reinstall --no-binary mnist_fast "
            "mnist_fast'), or use backend='numpy'."
        )
