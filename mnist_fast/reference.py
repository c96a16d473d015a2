"""The book's NumPy code, kept as the yardstick for every compiled kernel.

These are the book's functions (``common/functions.py``,
``common/gradient.py`` and ``two_layer_net.py`` of *Deep Learning from
Scratch*, ch. 4-5) with the book's numerics: computed in float64, slow and
readable.  Two changes, both from the book's own later chapters, let every
method take one-hot or integer labels: ``accuracy`` and ``gradient``
convert the label form they were not written for.

Nothing here validates its inputs; the public ``mnist_fast.TwoLayerNet``
does that before calling in.
"""

import numpy as np

from .book import H, LOG_GUARD

__all__ = [
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "cross_entropy_error",
    "numerical_gradient",
    "TwoLayerNet",
]


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``."""
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    """Derivative of :func:`sigmoid` at ``x``."""
    return (1.0 - sigmoid(x)) * sigmoid(x)


def softmax(x):
    """Max-shifted softmax of a vector, or of each row of a matrix."""
    if x.ndim == 2:
        x = x.T
        x = x - np.max(x, axis=0)
        y = np.exp(x) / np.sum(np.exp(x), axis=0)
        return y.T
    x = x - np.max(x)  # guard against overflow
    return np.exp(x) / np.sum(np.exp(x))


def cross_entropy_error(y, t):
    """Mean of ``-log(y[t] + 1e-7)`` (``LOG_GUARD``); ``t`` one-hot or
    integer labels."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    # one-hot labels are turned into class indices
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + LOG_GUARD)) / batch_size


def numerical_gradient(f, x):
    """Central-difference gradient of ``f`` at ``x`` with h = 1e-4 (``H``).

    ``x`` (a float array) is perturbed in place, one entry at a time, and
    restored; ``f`` is called twice per entry.
    """
    h = H  # 0.0001
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        x[idx] = float(tmp_val) + h
        fxh1 = f(x)  # f(x+h)
        x[idx] = tmp_val - h
        fxh2 = f(x)  # f(x-h)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = tmp_val  # restore
        it.iternext()
    return grad


def _one_hot(t, n_classes):
    one_hot = np.zeros((t.size, n_classes))
    one_hot[np.arange(t.size), t] = 1.0
    return one_hot


class TwoLayerNet:
    """The book's two-layer network (sigmoid hidden layer, softmax output).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer sizes (784, 50, 10 in the book).
    weight_init_std : float, default 0.01
        Standard deviation of the Gaussian initial weights.
    rng : numpy.random.Generator, optional
        Source of the initial weights (the book uses ``np.random.randn``).
    """

    def __init__(self, input_size, hidden_size, output_size,
                 weight_init_std=0.01, rng=None):
        if rng is None:
            randn = np.random.randn
        else:
            randn = lambda *shape: rng.standard_normal(shape)  # noqa: E731
        self.params = {}
        self.params["W1"] = weight_init_std * randn(input_size, hidden_size)
        self.params["b1"] = np.zeros(hidden_size)
        self.params["W2"] = weight_init_std * randn(hidden_size, output_size)
        self.params["b2"] = np.zeros(output_size)

    @classmethod
    def from_params(cls, params):
        """A network that uses (does not copy) the dict ``params``."""
        net = cls.__new__(cls)
        net.params = params
        return net

    def predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)
        return y

    def loss(self, x, t):
        y = self.predict(x)
        return cross_entropy_error(y, t)

    def accuracy(self, x, t):
        y = self.predict(x)
        y = np.argmax(y, axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        accuracy = np.sum(y == t) / float(x.shape[0])
        return accuracy

    def numerical_gradient(self, x, t):
        loss_W = lambda W: self.loss(x, t)  # noqa: E731 (the book's idiom)
        grads = {}
        grads["W1"] = numerical_gradient(loss_W, self.params["W1"])
        grads["b1"] = numerical_gradient(loss_W, self.params["b1"])
        grads["W2"] = numerical_gradient(loss_W, self.params["W2"])
        grads["b2"] = numerical_gradient(loss_W, self.params["b2"])
        return grads

    def gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        if t.ndim == 1:
            t = _one_hot(t, W2.shape[1])
        grads = {}
        batch_num = x.shape[0]
        # forward
        a1 = np.dot(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = np.dot(z1, W2) + b2
        y = softmax(a2)
        # backward
        dy = (y - t) / batch_num
        grads["W2"] = np.dot(z1.T, dy)
        grads["b2"] = np.sum(dy, axis=0)
        da1 = np.dot(dy, W2.T)
        dz1 = sigmoid_grad(a1) * da1
        grads["W1"] = np.dot(x.T, dz1)
        grads["b1"] = np.sum(dz1, axis=0)
        return grads


# -- not the book's: the NumPy twins of the compiled input checks -----------
# (src_cython/_checks.pyx; mnist_fast.validation runs one or the other)

def all_finite(x, n_threads=1):
    """Whether no value of the 1-D array ``x`` is NaN or infinite."""
    return bool(np.isfinite(x).all())


def onehot_classes(t, out):
    """Fill ``out`` with the column of each row's 1; return the first row
    of the 2-D ``t`` that is not 0s and exactly one 1, or -1."""
    ones = t == 1
    valid = (ones | (t == 0)).all(axis=1) & (ones.sum(axis=1) == 1)
    out[...] = ones.argmax(axis=1)
    bad = np.flatnonzero(~valid)
    return int(bad[0]) if bad.size else -1
