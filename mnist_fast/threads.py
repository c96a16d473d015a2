"""How many OpenMP threads a compiled kernel gets."""

import operator
import os

from .build import max_threads, openmp_enabled

#: Environment variable that sets the default thread count of the kernels.
ENV_NUM_THREADS = "MNIST_FAST_NUM_THREADS"


def _positive_int(value, name):
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a positive integer or None, got {value!r} "
            f"({type(value).__name__})"
        ) from None
    if n < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {n}")
    return n


def resolve_num_threads(num_threads=None):
    """The thread count for a kernel call.

    Parameters
    ----------
    num_threads : int or None
        Explicit count (>= 1).  None means ``$MNIST_FAST_NUM_THREADS`` if
        set, else OpenMP's default (all cores, or ``$OMP_NUM_THREADS``).

    Returns
    -------
    int
        The count, capped at 1 when the kernels were built without OpenMP.
    """
    if num_threads is None:
        env = os.environ.get(ENV_NUM_THREADS, "").strip()
        if env:
            try:
                value = int(env)
            except ValueError:
                raise ValueError(
                    f"${ENV_NUM_THREADS} must be a positive integer, got {env!r}"
                ) from None
            n = _positive_int(value, f"${ENV_NUM_THREADS}")
        else:
            n = max_threads()
    else:
        n = _positive_int(num_threads, "num_threads")
    return n if openmp_enabled() else 1
