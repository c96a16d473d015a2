"""The threads of NumPy's BLAS during the NumPy backend's calls.

The NumPy engine runs the book's code, whose matrix products go to the BLAS
NumPy links (OpenBLAS, MKL, Accelerate).  Its threads spin while they
wait, so on a machine where another program keeps a core busy a
multithreaded product can take several times longer than on one thread:
the same effect as OpenMP's in the compiled kernels
(:mod:`mnist_fast.threads`).  So each call of the NumPy engine runs with
BLAS limited to the count the network's thread policy gives it, through
threadpoolctl, and the limit is lifted when the call returns: the rest of
the user's program keeps its own BLAS settings.
"""

import threadpoolctl

_blas = None


def _controller():
    """threadpoolctl's controller of the BLAS libraries loaded now (NumPy's
    is: mnist_fast imports NumPy first), made at the first call."""
    global _blas
    if _blas is None:
        _blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return _blas


def run(function, *args):
    """``function(*args[:-1])`` with at most ``args[-1]`` BLAS threads: a
    kernel of a thread policy (called as ``kernel(*args, n_threads)``).

    Each library's count is read first and changed, then put back, only
    where it differs: most calls run on the count BLAS already has, and
    then cost two reads (threadpoolctl's ``limit`` context costs several
    times that on every call).

    Returns
    -------
    object
        What ``function`` returns.
    """
    *args, n_threads = args
    changed = []
    for lib in _controller().lib_controllers:
        before = lib.get_num_threads()
        if before != n_threads:
            lib.set_num_threads(n_threads)
            changed.append((lib, before))
    try:
        return function(*args)
    finally:
        for lib, before in changed:
            lib.set_num_threads(before)


def info():
    """The BLAS libraries NumPy runs and their default thread counts, as
    ``[{"library": "openblas", "num_threads": 2}, ...]`` (for
    ``build_info``)."""
    return [{"library": lib["internal_api"], "num_threads": lib["num_threads"]}
            for lib in _controller().info()]
