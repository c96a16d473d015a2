"""The compiled kernel modules, imported here and nowhere else.

``mnist_fast._forward`` (predict, loss, accuracy), ``_numerical`` (the
numerical gradient), ``_backprop`` (backprop and the fused SGD step),
``_checks`` (the input checks of :mod:`mnist_fast.validation`) and
``_machine`` (facts about the build).  Each kernel module carries its SIMD
variants inside (src_cython/simd_rows.h) and takes the best this CPU runs
when it is imported; ``$MNIST_FAST_SIMD`` chooses another (a value that
is not a variant's name, or a variant this build or CPU has not got, makes
this import fail with an ``ImportError`` that says so).  When they do not
import, :data:`COMPILED` is False and :data:`IMPORT_ERROR` says why; the
NumPy engine then runs everything, unless ``$MNIST_FAST_SIMD`` asked for a
variant (an ``ImportError`` too).  :data:`NOT_BUILT` tells an install that
could not build them (no C compiler: nothing is wrong at run time) from
kernels that were built but fail to load (a missing shared library), which
``backend="auto"`` reports with a warning.

The OpenMP wait policy must be in the environment before libgomp loads:
``mnist_fast/__init__.py`` imports :mod:`mnist_fast.threads`, which sets
it, before anything imports this module.
"""

import os
import warnings
from importlib import import_module
from pathlib import Path

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
    # import_module: a missing module is "No module named mnist_fast._forward"
    # (``from . import`` would call it a circular import)
    backprop, checks, forward, machine, numerical = (
        import_module(f"{__package__}._{name}")
        for name in ("backprop", "checks", "forward", "machine", "numerical"))
except ImportError as exc:
    machine = forward = numerical = backprop = checks = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    IMPORT_ERROR = None

#: True when the compiled extension modules import.
COMPILED = IMPORT_ERROR is None
#: Why the install went on without building the kernels (no C compiler,
#: say), from the note setup.py leaves; None when they were built, or when
#: they were built but do not load (then IMPORT_ERROR says why).
NOT_BUILT = None
if not COMPILED:
    try:
        NOT_BUILT = (Path(__file__).with_name("NOT_COMPILED.txt")
                     .read_text(encoding="utf-8").strip())
    except OSError:
        pass

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


def not_compiled_reason():
    """Why the compiled kernels do not run, with what to do; None when
    they do."""
    if COMPILED:
        return None
    if NOT_BUILT is not None:
        return (f"{NOT_BUILT}; install a C compiler and reinstall mnist_fast "
                "to get them")
    return f"they were built but do not load: {IMPORT_ERROR}"


_warned = False


def warn_not_loaded():
    """Warn, once per process, when built kernels fail to load (not when
    the install could not build them): the NumPy code is then running
    where the user installed the compiled one."""
    global _warned
    if COMPILED or NOT_BUILT is not None or _warned:
        return
    _warned = True
    warnings.warn(f"mnist_fast: the compiled kernels do not load "
                  f"({IMPORT_ERROR}); backend 'auto' runs the NumPy code, "
                  "much slower", RuntimeWarning, stacklevel=3)


def require_compiled():
    """Raise ``RuntimeError`` explaining why the compiled kernels are missing."""
    if not COMPILED:
        raise RuntimeError(
            "backend='cython' needs the compiled kernels of mnist_fast: "
            f"{not_compiled_reason()}. backend='numpy' runs without them."
        )
