"""mnist_fast: the two-layer MNIST network of *Deep Learning from Scratch*, compiled.

Public API
----------
TwoLayerNet
    The book's network; ``backend="cython"`` runs compiled kernels,
    ``backend="numpy"`` the book's NumPy code (``mnist_fast.reference``);
    ``activation="relu"`` gives ch. 5's hidden layer (``mnist_fast.ch05``
    holds ch. 5's own class, whose ``predict`` returns the scores).
load_mnist
    The bundled MNIST data set, offline, with the book's signature.
train, History, TrainingDiverged
    Mini-batch SGD as the book's training script, and what it records.
gradient_check
    The book's gradient check (numerical vs backprop) with a verdict.
build_info
    What was compiled (kernels, OpenMP, versions), for bug reports.
"""

__version__ = "0.2.0"

# threads first: it sets OpenMP's wait policy before the kernels load
from . import threads  # noqa: F401
from . import reference
from .info import build_info
from .gradcheck import gradient_check
from .mnist import load_mnist
from .train import History, TrainingDiverged, train
from .two_layer_net import TwoLayerNet


def __getattr__(name):
    # mnist_fast.plot without its own import statement (as a notebook
    # expects), without importing Matplotlib for everyone who imports us
    if name == "plot":
        import importlib
        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TwoLayerNet", "load_mnist", "train", "History", "TrainingDiverged",
    "gradient_check", "build_info", "reference", "__version__",
]
