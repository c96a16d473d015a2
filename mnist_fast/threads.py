"""How many OpenMP threads the compiled kernels get, and how they wait.

The policy in three rules:

* A network's thread count is resolved once, when it is created (or when
  ``net.num_threads`` is set): the argument, else
  ``$MNIST_FAST_NUM_THREADS``, else OpenMP's default (all cores, or
  ``$OMP_NUM_THREADS``), at most :data:`MAX_THREADS`; 1 without OpenMP.
* ``predict``, ``loss``, ``accuracy`` and ``gradient`` on ``n`` rows use
  at most ``n // MIN_ROWS_PER_THREAD`` threads: below that a thread team
  costs more to start than it saves.  The numerical gradient, the training
  steps and ``train``'s evaluations use them all.
* Idle OpenMP threads spin only briefly before they sleep.  GNU OpenMP's
  default (300,000 spins) lets a waiting worker hold a core that the
  Python thread starting the next parallel region needs; on a 2-core
  machine with one other busy process that multiplies the time of a run
  several times over.  Importing mnist_fast therefore sets
  ``GOMP_SPINCOUNT`` to :data:`GOMP_SPINCOUNT` unless ``OMP_WAIT_POLICY``
  or ``GOMP_SPINCOUNT`` is already set.  libgomp reads it when it loads,
  which is why this module is imported before :mod:`mnist_fast.kernels`.
"""

import os

#: Spins of an idle GNU OpenMP thread before it sleeps (see above).
GOMP_SPINCOUNT = "10000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT

from . import kernels  # noqa: E402 (after the wait policy, see above)
from .validation import positive_int  # noqa: E402

#: Environment variable that sets the default thread count of the kernels.
ENV_NUM_THREADS = "MNIST_FAST_NUM_THREADS"
#: The most threads a kernel gets: more than any machine these kernels run
#: on has cores, few enough that OpenMP can always create them (a request
#: for 200,000 threads crashed the interpreter).
MAX_THREADS = 1024
#: Rows each thread of a kernel call gets at least.
MIN_ROWS_PER_THREAD = 50


def resolve_num_threads(num_threads=None):
    """The thread count of a network.

    Parameters
    ----------
    num_threads : int or None
        Explicit count, 1 to ``MAX_THREADS``.  None means
        ``$MNIST_FAST_NUM_THREADS`` if set, else OpenMP's default capped at
        ``MAX_THREADS``.

    Returns
    -------
    int
        The count, 1 when the kernels were built without OpenMP.

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
            # $OMP_NUM_THREADS may ask for more than OpenMP can create
            n = min(kernels.max_threads(), MAX_THREADS)
    else:
        n = positive_int(num_threads, "num_threads", maximum=MAX_THREADS)
    return n if kernels.openmp_enabled() else 1


def threads_for_rows(num_threads, n_rows):
    """Threads for a call on ``n_rows`` rows by a network with ``num_threads``."""
    return max(1, min(num_threads, n_rows // MIN_ROWS_PER_THREAD))
