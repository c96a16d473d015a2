"""The NumPy engine: the book's code (:mod:`mnist_fast.reference`) behind
the engine surface of :mod:`mnist_fast.engine`, each call with NumPy's BLAS
on the thread count the network's policy chooses (:mod:`mnist_fast.blas`)."""

from . import reference
from .blas import blas_threads
from .engine import Architecture, Engine


def _predict(p, x):
    return reference.TwoLayerNet.from_params(p).predict(x)


def _loss(p, x, t):
    return float(reference.TwoLayerNet.from_params(p).loss(x, t))


def _accuracy(p, x, t):
    return float(reference.TwoLayerNet.from_params(p).accuracy(x, t))


def _gradient(p, x, t):
    return reference.TwoLayerNet.from_params(p).gradient(x, t)


def _numerical_gradient(p, x, t):
    # the book's loop perturbs the arrays it is given: never the user's
    p = {k: v.copy() for k, v in p.items()}
    return reference.TwoLayerNet.from_params(p).numerical_gradient(x, t)


class NumpyEngine(Engine):
    """Every method runs the book's ``TwoLayerNet`` on the checked arrays."""

    name = "numpy"

    def __init__(self, threads, architecture=Architecture()):
        if architecture != Architecture():
            raise NotImplementedError(f"{architecture} is not built")
        super().__init__(threads, architecture)

    def predict(self, p, x):
        return self._run("predict", x.shape[0], blas_threads(_predict), p, x)

    def loss(self, p, x, t):
        return self._run("loss", x.shape[0], blas_threads(_loss), p, x, t)

    def accuracy(self, p, x, t):
        return self._run("accuracy", x.shape[0], blas_threads(_accuracy), p,
                         x, t)

    def gradient(self, p, x, t):
        return self._run("gradient", x.shape[0], blas_threads(_gradient), p,
                         x, t)

    def numerical_gradient(self, p, x, t):
        return self.threads.run(("numerical_gradient", x.shape[0]),
                                self.num_threads,
                                blas_threads(_numerical_gradient), p, x, t)
