"""How many OpenMP threads a compiled kernel gets."""

import os

from .build import max_threads, openmp_enabled
from .validation import positive_int

#: Environment variable that sets the default thread count of the kernels.
ENV_NUM_THREADS = "MNIST_FAST_NUM_THREADS"
#: The most threads a kernel gets: more than any machine these kernels run
#: on has cores, few enough that OpenMP can always create them (a request
#: for 200,000 threads crashed the interpreter).
MAX_THREADS = 1024


def resolve_num_threads(num_threads=None):
    """The thread count for a kernel call.

    Parameters
    ----------
    num_threads : int or None
        Explicit count, 1 to ``MAX_THREADS``.  None means
        ``$MNIST_FAST_NUM_THREADS`` if set, else OpenMP's default (all
        cores, or ``$OMP_NUM_THREADS``) capped at ``MAX_THREADS``.

    Returns
    -------
    int
        The count, capped at 1 when the kernels were built without OpenMP.

    Raises
    ------
    TypeError
        ``num_threads`` is not an integer (a bool, a string...).
    ValueError
        ``num_threads`` or ``$MNIST_FAST_NUM_THREADS`` is < 1, above
        ``MAX_THREADS`` or not a whole number.
    """
    if num_threads is None:
        env = os.environ.get(ENV_NUM_THREADS, "").strip()
        if env:
            try:
                value = int(env)
            except ValueError:
                raise ValueError(
                    f"${ENV_NUM_THREADS} must be an integer between 1 and "
                    f"{MAX_THREADS}, got {env!r}"
                ) from None
            n = positive_int(value, f"${ENV_NUM_THREADS}",
                             maximum=MAX_THREADS)
        else:
            n = min(max_threads(), MAX_THREADS)  # $OMP_NUM_THREADS may be huge
    else:
        n = positive_int(num_threads, "num_threads", maximum=MAX_THREADS)
    return n if openmp_enabled() else 1
