"""How many OpenMP threads a compiled kernel gets."""

import os

from .build import max_threads, openmp_enabled
from .validation import positive_int

#: Environment variable that sets the default thread count of the kernels.
ENV_NUM_THREADS = "MNIST_FAST_NUM_THREADS"


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

    Raises
    ------
    TypeError
        ``num_threads`` is not an integer (a bool, a string...).
    ValueError
        ``num_threads`` or ``$MNIST_FAST_NUM_THREADS`` is < 1 or not a
        whole number.
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
            n = positive_int(value, f"${ENV_NUM_THREADS}")
        else:
            n = max_threads()
    else:
        n = positive_int(num_threads, "num_threads")
    return n if openmp_enabled() else 1
