"""The public two-layer network: the book's API over compiled kernels."""

import numpy as np

from . import build, reference
from .build import _backprop, _forward, _numerical
from .threads import resolve_num_threads
from .validation import (MAX_INDEX, PARAM_NAMES, as_inputs, as_labels,
                         as_params, as_rng, one_of, positive_int, real_number)
from .model_file import load_model, save_model
from .screen import OFF, screen_weights

BACKENDS = ("auto", "cython", "numpy")
#: Rows each thread of a forward kernel gets at least.
MIN_ROWS_PER_THREAD = 50
#: Rows from which ``accuracy`` screens them in float32 first (the screen's
#: weights cost ~0.1 ms, about what it saves on SCREEN_MIN_ROWS rows).
SCREEN_MIN_ROWS = 1000
#: Largest logit move a perturbation may cause for the compiled numerical
#: gradient: its exact-change algebra takes expm1 of the moves, which
#: overflows or cancels for large ones.  Beyond, the book's loop runs.
MAX_LOGIT_MOVE = 1.0
#: The book's step of the numerical gradient.
H_STEP = 1e-4


def compiled_numerical_gradient_fits(p, x):
    """Whether every perturbation moves every logit by <= MAX_LOGIT_MOVE.

    A step of ``W1`` or ``b1`` moves a pre-activation by at most
    ``max|x| * step`` (``x = 1`` for ``b1``), a hidden unit by a quarter
    of that (sigmoid' <= 1/4, and never more than 1), a logit by that
    times ``max|W2|``; a step of ``W2`` or ``b2`` moves a logit by at most
    the step.  The applied step ``fl(theta + h) - theta`` is at most
    ``h`` plus the spacing of the largest parameter.
    """
    def step(*arrays):
        return H_STEP + np.spacing(max(np.abs(a).max() for a in arrays))

    w2 = np.abs(p["W2"]).max()
    dz = min(1.0, max(np.abs(x).max(), 1.0) * step(p["W1"], p["b1"]) / 4)
    return max(dz * w2, step(p["W2"], p["b2"])) <= MAX_LOGIT_MOVE


def resolve_backend(backend):
    """``"cython"`` or ``"numpy"`` for a requested backend name."""
    one_of(backend, "backend", BACKENDS)
    if backend == "auto":
        return "cython" if build.COMPILED else "numpy"
    if backend == "cython":
        build.require_compiled()
    return backend


class TwoLayerNet:
    """The book's two-layer network: 784-50-10, sigmoid, softmax.

    ``a1 = x @ W1 + b1, z1 = sigmoid(a1), y = softmax(z1 @ W2 + b2)``, with
    the loss ``mean(-log(y[t] + 1e-7))`` of the book.

    Parameters
    ----------
    input_size, hidden_size : int
        Layer sizes, >= 1 (784 and 50 in the book; ``input_size`` at most
        2**31 - 1).  Whole floats such as ``784.0`` are accepted.
    output_size : int
        Number of classes, >= 2 (10 in the book).
    weight_init_std : float, default 0.01
        Standard deviation of the Gaussian initial weights, finite and >= 0;
        the biases start at zero.
    backend : {"auto", "cython", "numpy"}, default "auto"
        ``"cython"`` runs the compiled kernels (``RuntimeError`` if they were
        not built), ``"numpy"`` the book's NumPy code
        (:mod:`mnist_fast.reference`), ``"auto"`` the compiled kernels when
        they are built.  ``build_info()["compiled_methods"]`` lists the
        methods that are compiled.
    seed : int or numpy.random.Generator, optional
        Makes the initial weights reproducible: the same seed gives the same
        weights on every backend.  Anything ``numpy.random.default_rng``
        accepts (non-negative integers, sequences of them, a Generator).
    num_threads : int, optional
        OpenMP threads for the compiled kernels, >= 1; default
        ``$MNIST_FAST_NUM_THREADS``, else all cores.

    Attributes
    ----------
    params : dict
        The book's plain dict of float64 arrays ``W1`` (input, hidden),
        ``b1`` (hidden,), ``W2`` (hidden, output), ``b2`` (output,).  Update
        it in place (``net.params[k] -= lr * grad[k]``) or assign new arrays
        of the same shapes; every method reads it afresh.
    backend : str
        ``"cython"`` or ``"numpy"``: the backend that runs.

    Raises
    ------
    TypeError
        A size, ``weight_init_std``, ``seed`` or ``num_threads`` of the
        wrong type (a string, a bool, an array, None), or a ``backend`` that
        is not a string.
    ValueError
        A size < 1 (``output_size`` < 2), ``input_size`` >= 2**31, or not
        a whole number; a negative or non-finite ``weight_init_std``, or one
        so large that the initial weights overflow; an unknown ``backend``
        name; a negative ``seed``; ``num_threads`` outside 1 ... 1024.
    RuntimeError
        ``backend="cython"`` but the compiled kernels are not built.
    MemoryError
        The weights do not fit in memory.

    Notes
    -----
    Every method checks ``x``, ``t`` and :attr:`params` before any kernel
    runs, and raises ``TypeError`` or ``ValueError`` naming the argument;
    :meth:`loss` lists the cases.  See "Inputs and errors" in the README.
    """

    def __init__(self, input_size, hidden_size, output_size,
                 weight_init_std=0.01, *, backend="auto", seed=None,
                 num_threads=None):
        self.input_size = positive_int(input_size, "input_size",
                                       maximum=MAX_INDEX)
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.output_size = positive_int(output_size, "output_size", minimum=2)
        weight_init_std = real_number(weight_init_std, "weight_init_std",
                                      minimum=0.0)
        self.backend = resolve_backend(backend)
        resolve_num_threads(num_threads)  # fail now, not at the first call
        self.num_threads = num_threads
        rng = as_rng(seed)
        self._check_addressable()
        with np.errstate(over="raise"):
            try:
                ref = reference.TwoLayerNet(self.input_size, self.hidden_size,
                                            self.output_size, weight_init_std,
                                            rng=rng)
            except FloatingPointError:
                raise ValueError(
                    f"weight_init_std must be small enough for the initial "
                    f"weights to be finite, got {weight_init_std:g}"
                ) from None
        self.params = ref.params

    def _check_addressable(self):
        """MemoryError for sizes numpy cannot even describe."""
        n = sum(np.prod(shape, dtype=object)
                for shape in self.param_shapes.values())
        if n > np.iinfo(np.intp).max // 8:
            raise MemoryError(
                f"a {self.input_size}-{self.hidden_size}-{self.output_size} "
                f"network has {n} parameters: more than can be addressed"
            )

    def __repr__(self):
        return (f"TwoLayerNet({self.input_size}, {self.hidden_size}, "
                f"{self.output_size}, backend={self.backend!r})")

    @property
    def param_shapes(self):
        """Expected shape of each parameter array."""
        D, H, K = self.input_size, self.hidden_size, self.output_size
        return {"W1": (D, H), "b1": (H,), "W2": (H, K), "b2": (K,)}

    def save(self, path):
        """Save the layer sizes and parameters to a model file (``.npz``).

        Written atomically: an interrupted save leaves the previous file.
        The format is described in :mod:`mnist_fast.model_file`.

        Parameters
        ----------
        path : str or path
            The file to write, name used as given; its folder must exist.
        """
        save_model(self, path)

    @classmethod
    def load(cls, path, **kwargs):
        """A network read from a model file written by :meth:`save`.

        Read without pickle, so safe on files from anyone.

        Parameters
        ----------
        path : str or path
        **kwargs
            ``backend``, ``num_threads``: as for the constructor.

        Returns
        -------
        TwoLayerNet

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        ValueError
            Not a model file, damaged, another format version, or missing
            or wrong arrays; the message names the file and what is wrong.
        """
        return load_model(cls, path, **kwargs)

    # -- boundary: everything a kernel receives is checked here -------------

    def _checked_params(self):
        return as_params(self.params, self.param_shapes)

    def _checked_inputs(self, x):
        return as_inputs(x, self.input_size, "x")

    def _checked_batch(self, x, t):
        x = self._checked_inputs(x)
        return x, as_labels(t, x.shape[0], self.output_size, "t")

    def _threads(self, n_rows):
        # A thread team pays from about 50 rows per thread (measured at
        # batch 100 on 2 threads: the loss kernel 1.3x, the gradient 1.5x,
        # which transposes the batch on one thread while the others run the
        # rows); below, its start costs more than it saves.
        by_size = max(1, n_rows // MIN_ROWS_PER_THREAD)
        return min(resolve_num_threads(self.num_threads), by_size)

    def _reference(self, params):
        return reference.TwoLayerNet.from_params(params)

    # -- the book's methods ----------------------------------------------------

    def predict(self, x):
        """Class probabilities ``softmax(sigmoid(x @ W1 + b1) @ W2 + b2)``.

        Parameters
        ----------
        x : array_like of shape (n_samples, input_size)
            Finite real numbers, n_samples >= 1: a numpy array of any
            layout (Fortran order, strided views and read-only arrays are
            fine) or a nested list.  float32 and float64 are used as they
            are; bool, integer and float16 values are converted exactly.

        Returns
        -------
        numpy.ndarray of shape (n_samples, output_size), float64

        Raises
        ------
        TypeError
            ``x`` is not an array or nested list (None, a scalar, a
            string, a masked array), or its dtype is not real: complex,
            object, string, datetime or structured.  A :attr:`params` entry
            that is not a float array, or :attr:`params` not a dict.
        ValueError
            ``x`` is not 2-D (a single sample needs ``x.reshape(1, -1)``),
            is empty or has 2**31 rows or more, has not ``input_size``
            columns, or holds NaN or inf.
            A :attr:`params` entry of the wrong shape or holding NaN or
            inf, or a missing key.
        """
        x = self._checked_inputs(x)
        return self._predict(self._checked_params(), x)

    def loss(self, x, t):
        """The book's cross-entropy loss ``mean(-log(y[t] + 1e-7))``.

        Parameters
        ----------
        x : array_like of shape (n_samples, input_size)
            As in :meth:`predict`.
        t : array_like of shape (n_samples,) or (n_samples, output_size)
            Class labels in ``[0, output_size)`` (integers, or floats that
            are whole numbers), or one-hot rows of 0s and exactly one 1.

        Returns
        -------
        float

        Raises
        ------
        TypeError
            As in :meth:`predict`, or ``t`` is not an array or nested list
            or has a bool, complex, object, string or structured dtype.
        ValueError
            As in :meth:`predict`, or ``t`` does not have one row per row
            of ``x``; a one-hot ``t`` has not ``output_size`` columns or a
            row that is not 0s and exactly one 1; a class label is outside
            ``[0, output_size)``, negative, NaN or not a whole number.
        """
        x, t = self._checked_batch(x, t)
        return self._loss(self._checked_params(), x, t)

    def accuracy(self, x, t):
        """Fraction of rows whose most probable class is the label.

        Parameters
        ----------
        x, t : array_like
            As in :meth:`loss`.

        Returns
        -------
        float

        Raises
        ------
        TypeError, ValueError
            As in :meth:`loss`.

        Notes
        -----
        From ``SCREEN_MIN_ROWS`` (1,000) rows the compiled backend first runs
        each row in float32 and keeps its class when the margin exceeds a
        rigorous error bound (``mnist_fast.screen``); the other rows get the
        float64 pass.  The count is the float64 one, row for row.
        """
        x, t = self._checked_batch(x, t)
        return self._accuracy(self._checked_params(), x, t)

    def numerical_gradient(self, x, t):
        """Central-difference gradient of :meth:`loss` (h = 1e-4), as the book.

        Every entry is ``(L(theta + h) - L(theta - h)) / 2h`` of the mean
        loss, with ``theta + h`` rounded as the book rounds it.  The numpy
        backend runs the book's loop (two full loss evaluations per
        parameter: ~25 s at 784-50-10, batch 100).  The cython backend
        evaluates, per parameter, only the rows and units the perturbation
        changes and sums the exact change of their losses (no derivative
        formula, no expansion in h), in parallel over the input pixels; it
        agrees with the book's loop to ~1e-12 and is bit-identical for any
        thread count.  When a step could move a logit by more than
        ``MAX_LOGIT_MOVE`` (inputs and weights both large, e.g. ``|x|`` and
        ``|W2|`` of ~1000), where that evaluation overflows, the cython
        backend runs the book's loop instead: same answer, book's speed.

        Parameters
        ----------
        x, t : array_like
            As in :meth:`loss`.

        Returns
        -------
        dict
            ``W1, b1, W2, b2`` float64 arrays shaped like :attr:`params`.

        Raises
        ------
        TypeError, ValueError
            As in :meth:`loss`.
        """
        x, t = self._checked_batch(x, t)
        return self._numerical_gradient(self._checked_params(), x, t)

    def gradient(self, x, t):
        """Backpropagation gradient of :meth:`loss`, as in the book.

        ``dy = (softmax - onehot(t)) / N``, then the chain rule through the
        sigmoid layer.  Note that, as in the book, it ignores the loss's
        1e-7 guard, so it differs from :meth:`numerical_gradient` by about
        ``1e-7 / y_t`` relative besides the O(h^2) of central differences.

        Parameters
        ----------
        x, t : array_like
            As in :meth:`loss`.

        Returns
        -------
        dict
            ``W1, b1, W2, b2`` float64 arrays shaped like :attr:`params`.

        Raises
        ------
        TypeError, ValueError
            As in :meth:`loss`.
        """
        x, t = self._checked_batch(x, t)
        return self._gradient(self._checked_params(), x, t)

    # -- unchecked implementations: inputs already passed the checks above ----

    def _predict(self, p, x):
        if self.backend == "numpy":
            return self._reference(p).predict(x)
        y = np.empty((x.shape[0], self.output_size))
        _forward.predict(x, p["W1"], p["b1"], p["W2"], p["b2"], y,
                         self._threads(x.shape[0]))
        return y

    def _loss(self, p, x, t):
        if self.backend == "numpy":
            return float(self._reference(p).loss(x, t))
        scratch = np.empty(x.shape[0])
        return _forward.loss(x, t, p["W1"], p["b1"], p["W2"], p["b2"],
                             scratch, self._threads(x.shape[0]))

    def _accuracy(self, p, x, t):
        if self.backend == "numpy":
            return float(self._reference(p).accuracy(x, t))
        screen = screen_weights(p) if x.shape[0] >= SCREEN_MIN_ROWS else OFF
        correct = _forward.count_correct(x, t, p["W1"], p["b1"], p["W2"],
                                         p["b2"], *screen,
                                         self._threads(x.shape[0]))
        return correct / x.shape[0]

    def _numerical_gradient(self, p, x, t):
        if (self.backend == "numpy"
                or not compiled_numerical_gradient_fits(p, x)):
            # the reference perturbs the arrays it is given: never the user's
            p = {k: v.copy() for k, v in p.items()}
            return self._reference(p).numerical_gradient(x, t)
        grads = {k: np.empty(shape) for k, shape in self.param_shapes.items()}
        _numerical.numerical_gradient(
            x, t, p["W1"], p["b1"], p["W2"], p["b2"], grads["W1"],
            grads["b1"], grads["W2"], grads["b2"],
            resolve_num_threads(self.num_threads))
        return grads

    def _gradient(self, p, x, t):
        if self.backend == "numpy":
            return self._reference(p).gradient(x, t)
        grads = {k: np.empty(shape) for k, shape in self.param_shapes.items()}
        _backprop.gradient(
            x, t, p["W1"], p["b1"], p["W2"], p["b2"], grads["W1"],
            grads["b1"], grads["W2"], grads["b2"], self._threads(x.shape[0]))
        return grads


__all__ = ["TwoLayerNet", "BACKENDS", "PARAM_NAMES", "resolve_backend"]
