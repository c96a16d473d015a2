"""The NumPy engine: the book's code (:mod:`mnist_fast.reference`) behind
the engine surface of :mod:`mnist_fast.engine`."""

from . import reference
from .engine import Architecture, Engine


class NumpyEngine(Engine):
    """Every method runs the book's ``TwoLayerNet`` on the checked arrays."""

    name = "numpy"

    def __init__(self, threads, architecture=Architecture()):
        if architecture != Architecture():
            raise NotImplementedError(f"{architecture} is not built")
        super().__init__(threads, architecture)

    def predict(self, p, x):
        return reference.TwoLayerNet.from_params(p).predict(x)

    def loss(self, p, x, t):
        return float(reference.TwoLayerNet.from_params(p).loss(x, t))

    def accuracy(self, p, x, t):
        return float(reference.TwoLayerNet.from_params(p).accuracy(x, t))

    def gradient(self, p, x, t):
        return reference.TwoLayerNet.from_params(p).gradient(x, t)

    def numerical_gradient(self, p, x, t):
        # the book's loop perturbs the arrays it is given: never the user's
        p = {k: v.copy() for k, v in p.items()}
        return reference.TwoLayerNet.from_params(p).numerical_gradient(x, t)
