"""The book's NumPy code, kept as the yardstick for every compiled kernel.

These are the book's functions (``common/functions.py``,
``common/gradient.py`` and ``two_layer_net.py`` of *Deep Learning from
Scratch*, ch. 4) and its ch. 5 layers (``common/layers.py``: ``Affine``,
``Relu``, ``SoftmaxWithLoss``, and the network built from them,
:class:`LayerNet`) with the book's numerics: computed in float64, slow and
readable.  Two changes, both from the book's own later chapters, let every
method take one-hot or integer labels: ``accuracy`` and ``gradient``
convert the label form they were not written for.

Nothing here validates its inputs; the public ``mnist_fast.TwoLayerNet``
does that before calling in.
"""

from collections import OrderedDict

import numpy as np

from .book import H, LOG_GUARD

__all__ = [
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "cross_entropy_error",
    "numerical_gradient",
    "TwoLayerNet",
    "Affine",
    "Relu",
    "SoftmaxWithLoss",
    "LayerNet",
    "SoftmaxLayerNet",
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


def _initial_params(input_size, hidden_size, output_size, weight_init_std,
                    rng):
    """The book's initial parameters, drawn as its ``__init__`` draws them."""
    if rng is None:
        randn = np.random.randn
    else:
        randn = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    params = {}
    params["W1"] = weight_init_std * randn(input_size, hidden_size)
    params["b1"] = np.zeros(hidden_size)
    params["W2"] = weight_init_std * randn(hidden_size, output_size)
    params["b2"] = np.zeros(output_size)
    return params


class TwoLayerNet:
    """The book's ch. 4 two-layer network (sigmoid hidden layer, softmax
    output).

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
        self.params = _initial_params(input_size, hidden_size, output_size,
                                      weight_init_std, rng)

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


# -- the book's ch. 5: the network built from layers ------------------------

class Relu:
    """``max(x, 0)``; backward passes ``dout`` where the input was > 0 and
    0 where it was <= 0."""

    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = (x <= 0)
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        dx = dout
        return dx


class Affine:
    """``x @ W + b``; backward ``dx = dout @ W.T``, ``dW = x.T @ dout``,
    ``db = dout.sum(axis=0)``.  ``W`` and ``b`` are used, not copied."""

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x
        out = np.dot(self.x, self.W) + self.b
        return out

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        dx = dx.reshape(*self.original_x_shape)
        return dx


class SoftmaxWithLoss:
    """:func:`softmax`, then :func:`cross_entropy_error` (with its 1e-7
    guard); backward ``(y - onehot(t)) / batch_size`` (``dout`` unused, as
    in the book)."""

    def __init__(self):
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:  # one-hot labels
            dx = (self.y - self.t) / batch_size
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
            dx = dx / batch_size
        return dx


class LayerNet(TwoLayerNet):
    """The book's ch. 5 ``TwoLayerNet``: ``Affine`` -> ``Relu`` -> ``Affine``
    -> ``SoftmaxWithLoss``.

    ``predict`` returns the scores of the last ``Affine`` (no softmax);
    ``accuracy`` takes their ``argmax``; ``numerical_gradient`` is ch. 4's
    central difference of ``loss``; ``gradient`` runs forward, then the
    layers backward from ``dout = 1``.  The layers hold the arrays of
    :attr:`params` themselves, so updating those in place (the book's
    training loop) updates the network.

    Parameters
    ----------
    input_size, hidden_size, output_size, weight_init_std, rng
        As for :class:`TwoLayerNet` (the same draws).
    """

    def __init__(self, input_size, hidden_size, output_size,
                 weight_init_std=0.01, rng=None):
        self.params = _initial_params(input_size, hidden_size, output_size,
                                      weight_init_std, rng)
        self._build_layers()

    @classmethod
    def from_params(cls, params):
        """A network whose layers use (do not copy) the dict ``params``."""
        net = cls.__new__(cls)
        net.params = params
        net._build_layers()
        return net

    def _build_layers(self):
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        y = self.predict(x)
        return self.lastLayer.forward(y, t)

    # accuracy and numerical_gradient: the book's ch. 5 code is ch. 4's,
    # word for word (TwoLayerNet's, on this class's predict and loss)

    def gradient(self, x, t):
        # forward
        self.loss(x, t)
        # backward
        dout = 1
        dout = self.lastLayer.backward(dout)
        layers = list(self.layers.values())
        layers.reverse()
        for layer in layers:
            dout = layer.backward(dout)
        grads = {}
        grads["W1"] = self.layers["Affine1"].dW
        grads["b1"] = self.layers["Affine1"].db
        grads["W2"] = self.layers["Affine2"].dW
        grads["b2"] = self.layers["Affine2"].db
        return grads


class SoftmaxLayerNet(LayerNet):
    """Not the book's class: ch. 4's network with ch. 5's ``Relu``.

    :class:`LayerNet` (the same layers, ``loss`` and ``gradient``) whose
    ``predict`` returns the softmax probabilities of the scores, as ch. 4's
    :class:`TwoLayerNet` does; ``accuracy`` (ch. 4's) takes their argmax.
    The twin of ``mnist_fast.TwoLayerNet(..., activation="relu")``.
    """

    def predict(self, x):
        return softmax(LayerNet.predict(self, x))

    def loss(self, x, t):
        y = LayerNet.predict(self, x)  # the scores, as SoftmaxWithLoss takes
        return self.lastLayer.forward(y, t)


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
