"""The NumPy engine: the book's code (:mod:`mnist_fast.reference`) behind
the engine surface of :mod:`mnist_fast.engine`, each call with NumPy's BLAS
on the thread count the network's policy chooses (:mod:`mnist_fast.blas`)."""

from . import blas, reference
from .engine import Architecture, Engine

#: The book's class of each architecture the public networks have: ch. 4's
#: ``TwoLayerNet``, ch. 4's with ch. 5's ``Relu`` (probabilities), ch. 5's
#: layer-built ``TwoLayerNet`` (scores).
REFERENCE_NETS = {
    Architecture("sigmoid", scores=False): reference.TwoLayerNet,
    Architecture("relu", scores=False): reference.SoftmaxLayerNet,
    Architecture("relu", scores=True): reference.LayerNet,
}


class NumpyEngine(Engine):
    """Every method runs the book's network of the architecture
    (:data:`REFERENCE_NETS`) on the checked arrays.

    Raises
    ------
    ValueError
        ``architecture`` is none of :data:`REFERENCE_NETS` (no public
        network has it).
    """

    name = "numpy"

    def __init__(self, threads, architecture=Architecture()):
        if architecture not in REFERENCE_NETS:
            raise ValueError(
                f"architecture must be one of "
                f"{', '.join(map(str, REFERENCE_NETS))}, got {architecture}")
        super().__init__(threads, architecture)
        self._net = REFERENCE_NETS[architecture].from_params

    def predict(self, p, x):
        return self._run("predict", x.shape[0], blas.run,
                         self._net(p).predict, x)

    def loss(self, p, x, t):
        return float(self._run("loss", x.shape[0], blas.run,
                               self._net(p).loss, x, t))

    def accuracy(self, p, x, t):
        return float(self._run("accuracy", x.shape[0], blas.run,
                               self._net(p).accuracy, x, t))

    def gradient(self, p, x, t):
        return self._run("gradient", x.shape[0], blas.run,
                         self._net(p).gradient, x, t)

    def numerical_gradient(self, p, x, t):
        # the book's loop perturbs the arrays it is given: never the user's
        p = {k: v.copy() for k, v in p.items()}
        return self.threads.run(("numerical_gradient", x.shape[0]),
                                self.num_threads, blas.run,
                                self._net(p).numerical_gradient, x, t)
