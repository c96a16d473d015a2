"""The backends' names and the one place that turns a name into an engine."""

from . import kernels
from .compiled_engine import CompiledEngine
from .engine import Architecture
from .numpy_engine import NumpyEngine
from .validation import one_of

BACKENDS = ("auto", "cython", "numpy")


def make_engine(backend, threads, architecture=Architecture()):
    """The engine of ``backend`` (``"auto"``: compiled when built) for
    networks of ``architecture``.

    Parameters
    ----------
    backend : {"auto", "cython", "numpy"}
    threads : mnist_fast.threads.FixedThreads or AdaptiveThreads
        The network's thread policy
        (:func:`~mnist_fast.threads.thread_policy`).
    architecture : mnist_fast.engine.Architecture, optional
        What the network computes (default: the book's ch. 4 network).

    Returns
    -------
    mnist_fast.engine.Engine

    Raises
    ------
    TypeError, ValueError
        ``backend`` is not one of the names.
    RuntimeError
        ``"cython"`` but the compiled kernels are not built.
    """
    one_of(backend, "backend", BACKENDS)
    if backend == "auto":
        kernels.warn_not_loaded()
        backend = "cython" if kernels.COMPILED else "numpy"
    if backend == "numpy":
        return NumpyEngine(threads, architecture)
    kernels.require_compiled()
    return CompiledEngine(threads, architecture)
