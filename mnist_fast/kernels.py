"""The compiled kernel modules, imported here and nowhere else.

``mnist_fast._forward`` (predict, loss, accuracy), ``_numerical`` (the
numerical gradient), ``_backprop`` (backprop and the fused SGD step) and
``_machine`` (facts about the build).  When they do not import (an sdist
unpacked without building, say) :data:`COMPILED` is False and
:data:`IMPORT_ERROR` says why; the NumPy engine then runs everything.

The OpenMP wait policy must be in the environment before libgomp loads:
``mnist_fast/__init__.py`` imports :mod:`mnist_fast.threads`, which sets
it, before anything imports this module.
"""

import importlib
import os

#: Run-time switch: ``baseline`` forces the portable (SSE2) kernels.
ENV_SIMD = "MNIST_FAST_SIMD"
#: The compiled modules that hold kernels (each with a SIMD variant).
KERNEL_MODULES = ("_forward", "_numerical", "_backprop")


def _import_kernels():
    """The kernel modules for this CPU: the AVX2+FMA variant where it runs."""
    from . import _machine

    wanted = os.environ.get(ENV_SIMD, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "avx2", "baseline"):
        raise ImportError(
            f"${ENV_SIMD} must be 'auto', 'avx2' or 'baseline', got {wanted!r}")
    if wanted != "baseline" and _machine.cpu_has_avx2_fma():
        try:
            return _machine, "avx2", [
                importlib.import_module(f".{m}_avx2", __package__)
                for m in KERNEL_MODULES]
        except ImportError:
            if wanted == "avx2":
                raise
    elif wanted == "avx2":
        raise ImportError(f"${ENV_SIMD}=avx2 but this CPU lacks AVX2/FMA")
    return _machine, "baseline", [
        importlib.import_module(f".{m}", __package__) for m in KERNEL_MODULES]


try:
    machine, SIMD, (forward, numerical, backprop) = _import_kernels()
except ImportError as exc:
    machine = SIMD = forward = numerical = backprop = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    IMPORT_ERROR = None

#: True when the compiled extension modules import.
COMPILED = IMPORT_ERROR is None


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
