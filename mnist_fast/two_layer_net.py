"""The public two-layer network: the book's API over one engine per backend."""

import numpy as np

from . import book, reference
from .backends import BACKENDS, make_engine
from .engine import Architecture, InputsNotScanned
from .model_file import load_model, save_model
from .seeding import random_source
from .threads import thread_policy
from .validation import (as_inputs, as_labels, as_params, as_unscanned_inputs,
                         as_unscanned_params, layer_sizes, one_of,
                         param_shapes, real_number)


#: what ``TwoLayerNet._call`` gets for ``t`` from ``predict`` (None is a
#: ``t`` a user may pass, and must be refused as one)
_NO_LABELS = object()


class TwoLayerNet:
    """The book's two-layer network: 784-50-10, sigmoid (or ReLU), softmax.

    ``a1 = x @ W1 + b1, z1 = h(a1), y = softmax(z1 @ W2 + b2)``, with the
    loss ``mean(-log(y[t] + 1e-7))`` of the book; the hidden layer ``h`` is
    ch. 4's ``sigmoid`` or ch. 5's ``Relu`` (``activation``).

    Every method checks its arguments and :attr:`params` first and raises
    ``TypeError`` or ``ValueError`` naming the argument; what is accepted is
    written once, in docs/api.md ("Inputs and errors").

    Parameters
    ----------
    input_size, hidden_size : int
        Layer sizes, >= 1 (784 and 50 in the book).
    output_size : int
        Number of classes, >= 2 (10 in the book).
    weight_init_std : float, default 0.01
        Standard deviation of the Gaussian initial weights; the biases
        start at zero.
    activation : {"sigmoid", "relu"}, default "sigmoid"
        The hidden layer: ch. 4's sigmoid, or ch. 5's ``Relu`` (``max(a1,
        0)``; its gradient passes where ``a1 > 0`` and is 0 where ``a1 <=
        0``, the book's mask).  Either way ``predict`` returns the softmax
        probabilities (for ch. 5's class, whose ``predict`` returns the
        scores, see :mod:`mnist_fast.ch05`).
    backend : {"auto", "cython", "numpy"}, default "auto"
        ``"cython"`` runs the compiled kernels (``RuntimeError`` if they
        were not built), ``"numpy"`` the book's NumPy code
        (:mod:`mnist_fast.reference`), ``"auto"`` the compiled kernels when
        they are built.
    seed : None, int, numpy.random.Generator or RandomState, optional
        Where the initial weights come from, drawn in the book's order
        (:mod:`mnist_fast.seeding`): None draws from NumPy's global
        generator as the book's ``np.random.randn`` does (so
        ``np.random.seed(s)`` first gives the book's weights); an integer
        ``s`` gives those same weights without touching the global
        generator.  The same on every backend.
    num_threads : int, optional
        OpenMP threads of the compiled kernels; default
        ``$MNIST_FAST_NUM_THREADS`` (read now), else all cores (fewer if
        not that many threads can be started here).  A chosen count that
        cannot be started is a ``RuntimeError``, now or at the first call
        (:mod:`mnist_fast.threads`).

    Attributes
    ----------
    params : dict
        The book's plain dict of float64 arrays ``W1`` (input, hidden),
        ``b1`` (hidden,), ``W2`` (hidden, output), ``b2`` (output,).  Update
        it in place (``net.params[k] -= lr * grad[k]``) or assign new arrays
        of the same shapes; every method reads it afresh.
    activation : str
        ``"sigmoid"`` or ``"relu"``, as given (read-only: the parameters
        were made for it).
    backend : str
        ``"cython"`` or ``"numpy"``: the backend that runs.  Setting it
        (to any name the constructor takes) switches the engine.
    num_threads : int or None
        As given; setting it resolves the thread count again.
    engine : mnist_fast.engine.Engine
        The object that does the arithmetic on checked arrays (for
        :func:`mnist_fast.train`; see :mod:`mnist_fast.engine`).
    """

    #: Whether ``predict`` returns the scores rather than the probabilities
    #: (:class:`mnist_fast.engine.Architecture`): ch. 5's class does.
    _scores = False
    #: The activations a network of this class may have.
    ACTIVATIONS = book.ACTIVATIONS

    def __init__(self, input_size, hidden_size, output_size,
                 weight_init_std=0.01, *, activation="sigmoid", backend="auto",
                 seed=None, num_threads=None):
        self.input_size, self.hidden_size, self.output_size = layer_sizes(
            input_size, hidden_size, output_size)
        weight_init_std = real_number(weight_init_std, "weight_init_std",
                                      minimum=0.0)
        self._architecture = Architecture(
            one_of(activation, "activation", self.ACTIVATIONS), self._scores)
        self._num_threads = num_threads
        self._threads = thread_policy(num_threads)
        self.engine = self._engine(backend)
        rng = random_source(seed)
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
                f"{self.output_size}, activation={self.activation!r}, "
                f"backend={self.backend!r})")

    def _engine(self, backend):
        """The engine of ``backend`` for this network's architecture and
        thread policy: every way a network gets one (construction, a new
        backend or thread count, a model file's load) comes here."""
        return make_engine(backend, self._threads, self._architecture)

    @property
    def activation(self):
        return self._architecture.activation

    @property
    def backend(self):
        return self.engine.name

    @backend.setter
    def backend(self, backend):
        self.engine = self._engine(backend)

    @property
    def num_threads(self):
        return self._num_threads

    @num_threads.setter
    def num_threads(self, num_threads):
        self._threads = thread_policy(num_threads)
        self._num_threads = num_threads
        self.engine = self._engine(self.engine.name)

    @property
    def param_shapes(self):
        """Expected shape of each parameter array."""
        return param_shapes(self.input_size, self.hidden_size,
                            self.output_size)

    def checked_params(self):
        """:attr:`params` checked (docs/api.md) as float64 C-contiguous
        arrays: the user's own arrays where they already are such."""
        return as_params(self.params, self.param_shapes)

    def save(self, path):
        """Save the layer sizes, activation and parameters to a model file
        (``.npz``).

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

        Read without pickle, so safe on files from anyone.  The network has
        the file's activation (files of format version 1, from before
        there was a choice, hold sigmoid networks).

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
            Not a model file, damaged, another format version, missing or
            wrong arrays, an activation this class does not have, or
            headers that declare more than the file holds
            (checked before anything of that size is allocated: see
            :mod:`mnist_fast.model_file`); the message names the file and
            what is wrong.
        OSError
            The file cannot be read (``PermissionError``).
        MemoryError
            The file really holds a network too large for the memory.
        RuntimeError
            ``num_threads`` threads cannot be started (as the constructor).
        """
        return load_model(cls, path, **kwargs)

    # -- the boundary: every argument is checked here, once -------------------

    def _inputs(self, x):
        return as_inputs(x, self.input_size, "x", self.engine.num_threads)

    def _batch(self, x, t):
        x = self._inputs(x)
        return x, as_labels(t, x.shape[0], self.output_size, "t")

    def _call(self, method, x, t=_NO_LABELS, w1_by_kernel=False):
        """``method(p, x[, t])`` of the engine on the checked arguments.

        When the engine's kernel reads every value of ``x`` anyway
        (``engine.scans_inputs``), the values of the arrays of the book's
        loop are left to it: the kernel says whether they are all finite,
        and only when it cannot vouch for them (:class:`InputsNotScanned`)
        is ``x`` checked whole here, which raises the error the full check
        words, or passes ``x`` (a NaN loss of finite rows) for a second
        call.  With ``w1_by_kernel`` (the engine's ``gradient``, when
        ``engine.scans_w1`` says so for the size of ``W1``) the values of
        ``params["W1"]`` are left to the kernel the same way, and checked
        whole (after ``x``) when it cannot vouch for them.  Every other
        check runs first as ever, and when one fails, ``x``'s own error, if
        it has one, is raised first, as the checks' order (``x``, ``t``,
        ``params``) has it.
        """
        engine = self.engine
        if engine.scans_inputs:
            x, scanned = as_unscanned_inputs(x, self.input_size, "x",
                                             engine.num_threads)
        else:
            x, scanned = self._inputs(x), True
        failed = None
        try:
            rest = (() if t is _NO_LABELS
                    else (as_labels(t, x.shape[0], self.output_size, "t"),))
            if w1_by_kernel:
                p, w1_scanned = as_unscanned_params(self.params,
                                                    self.param_shapes)
            else:
                p, w1_scanned = self.checked_params(), True
        except (TypeError, ValueError) as exc:
            if scanned:
                raise
            failed = exc
        if failed is not None:
            self._inputs(x)  # raises x's own error, if it has one
            raise failed
        if scanned and w1_scanned:
            return method(p, x, *rest)
        left = {"scanned": scanned}
        if not w1_scanned:
            left["w1_scanned"] = False
        try:
            return method(p, x, *rest, **left)
        except InputsNotScanned:
            pass
        x = self._inputs(x)  # x's error first
        return method(self.checked_params() if not w1_scanned else p, x,
                      *rest)

    # -- the book's methods ----------------------------------------------------

    def predict(self, x):
        """Class probabilities ``softmax(h(x @ W1 + b1) @ W2 + b2)``, ``h``
        the :attr:`activation`.

        Parameters
        ----------
        x : array_like of shape (n_samples, input_size)
            Finite real numbers (docs/api.md, "Inputs and errors").

        Returns
        -------
        numpy.ndarray of shape (n_samples, output_size), float64
        """
        return self._call(self.engine.predict, x)

    def loss(self, x, t):
        """The book's cross-entropy loss ``mean(-log(y[t] + 1e-7))``.

        Parameters
        ----------
        x : array_like of shape (n_samples, input_size)
        t : array_like of shape (n_samples,) or (n_samples, output_size)
            Class labels in ``[0, output_size)``, or one-hot rows.

        Returns
        -------
        numpy.float64
            A float, of NumPy's type as the book's.
        """
        return np.float64(self._call(self.engine.loss, x, t))

    def accuracy(self, x, t):
        """Fraction of rows whose most probable class is the label.

        Parameters
        ----------
        x, t : array_like
            As in :meth:`loss`.

        Returns
        -------
        numpy.float64
            The book's ``argmax`` count, ties included, divided by the rows
            (a float of NumPy's type, as the book's).  From 1,000 rows the
            compiled backend decides most rows by a float32 pass with a
            rigorous error bound (:mod:`mnist_fast.screen`); the count is
            the float64 one, row for row.
        """
        return np.float64(self._call(self.engine.accuracy, x, t))

    def numerical_gradient(self, x, t):
        """Central-difference gradient of :meth:`loss` (h = 1e-4), as the book.

        Every entry is ``(L(theta + h) - L(theta - h)) / 2h`` of the mean
        loss, with ``theta + h`` rounded as the book rounds it.  The numpy
        backend runs the book's loop (two full loss evaluations per
        parameter).  The cython backend evaluates, per parameter, only the
        rows and units the perturbation changes and sums the exact change
        of their losses; it agrees with the book's loop to ~1e-12 and is
        bit-identical for any thread count.  When a step could move a logit
        by more than 1 (inputs and weights both large, ~1000), it runs the
        book's loop instead: same answer, book's speed.

        Parameters
        ----------
        x, t : array_like
            As in :meth:`loss`.

        Returns
        -------
        dict
            ``W1, b1, W2, b2`` float64 arrays shaped like :attr:`params`.
        """
        x, t = self._batch(x, t)
        return self.engine.numerical_gradient(self.checked_params(), x, t)

    def gradient(self, x, t):
        """Backpropagation gradient of :meth:`loss`, as in the book.

        ``dy = (softmax - onehot(t)) / N``, then the chain rule through the
        hidden layer (for ReLU the book's mask: 0 where ``a1 <= 0``).  As
        in the book it ignores the loss's 1e-7 guard, so
        it differs from :meth:`numerical_gradient` by about ``1e-7 / y_t``
        relative besides the O(h^2) of central differences.

        Parameters
        ----------
        x, t : array_like
            As in :meth:`loss`.

        Returns
        -------
        dict
            ``W1, b1, W2, b2`` float64 arrays shaped like :attr:`params`.
        """
        return self._call(self.engine.gradient, x, t,
                          w1_by_kernel=self.engine.scans_w1(
                              self.input_size * self.hidden_size))


__all__ = ["TwoLayerNet", "BACKENDS"]
