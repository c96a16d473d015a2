"""The seam between the public API and the arithmetic: one engine per backend.

``TwoLayerNet`` and ``train`` check every input once (the contract is in
docs/api.md, "Inputs and errors") and hand the checked arrays to the
network's engine, chosen once per network by
:func:`mnist_fast.backends.make_engine`:

* :class:`~mnist_fast.numpy_engine.NumpyEngine` runs the book's NumPy code
  (:mod:`mnist_fast.reference`);
* :class:`~mnist_fast.compiled_engine.CompiledEngine` runs the compiled
  kernels (:mod:`mnist_fast.kernels`).

An engine computes one :class:`Architecture` (the hidden layer's
activation, and what ``predict`` returns), fixed when it is made.  Both
have the surface of :class:`Engine`.  Its methods take ``p``, the
parameter dict of :func:`~mnist_fast.validation.as_params` (float64
C-contiguous ``W1, b1, W2, b2``), ``x`` from
:func:`~mnist_fast.validation.as_inputs` and ``t``, class indices from
:func:`~mnist_fast.validation.as_labels`; they check nothing again,
except the values of an ``x`` their caller left unscanned
(:class:`InputsNotScanned`).
"""

from dataclasses import dataclass

import numpy as np

from . import book
from .threads import threads_for_rows


@dataclass(frozen=True)
class Architecture:
    """What a network computes beyond its parameters.

    Attributes
    ----------
    activation : {"sigmoid", "relu"}
        The hidden layer's (:data:`mnist_fast.book.ACTIVATIONS`).
    scores : bool
        Whether ``predict`` returns the last layer's scores (the book's
        ch. 5 class) rather than their softmax probabilities (ch. 4);
        ``accuracy`` takes the argmax of what ``predict`` returns.
    """

    activation: str = "sigmoid"
    scores: bool = False

    @property
    def activation_code(self):
        """The activation's code in the compiled kernels."""
        return book.ACTIVATIONS.index(self.activation)


class DataSet:
    """A checked data set kept for repeated passes (``train``'s two sets)."""

    def __init__(self, x, t):
        self.x, self.t = x, t


class InputsNotScanned(Exception):
    """Raised by an engine's ``predict``, ``loss``, ``accuracy`` or
    ``gradient`` called with ``scanned=False`` (rows whose values the
    caller left unscanned, :func:`~mnist_fast.validation.as_unscanned_inputs`)
    when a value of ``x`` is not finite, or when its answer cannot rule
    that out (a NaN loss): the caller then checks ``x`` whole, which words
    the error, or passes it and calls again.  The same for ``gradient``
    called with ``w1_scanned=False``
    (:func:`~mnist_fast.validation.as_unscanned_params`) and a value of
    ``W1`` that is not finite: the caller then checks the parameters
    whole."""


class Engine:
    """What every engine computes; ``name`` is the backend it runs and
    ``compiled`` says whether compiled kernels do the work;
    ``scans_inputs`` whether its ``predict``, ``loss``, ``accuracy`` and
    ``gradient`` take ``scanned=False`` (see :class:`InputsNotScanned`);
    :meth:`scans_w1` whether its ``gradient`` takes ``w1_scanned=False``,
    the same for the values of ``params["W1"]``."""

    name = None
    compiled = False
    scans_inputs = False

    def __init__(self, threads, architecture=Architecture()):
        #: the thread policy (:mod:`mnist_fast.threads`)
        self.threads = threads
        #: what the network computes (:class:`Architecture`)
        self.architecture = architecture

    @property
    def num_threads(self):
        """The most threads a call gets."""
        return self.threads.num_threads

    def scans_w1(self, size):
        """Whether ``gradient`` takes ``w1_scanned=False`` for a ``W1`` of
        ``size`` values (see :class:`InputsNotScanned`)."""
        return False

    def _run(self, method, n_rows, kernel, *args):
        """``kernel(*args, n_threads)`` on ``n_rows`` rows, the count chosen
        by the thread policy for this method and size (at most
        :func:`~mnist_fast.threads.threads_for_rows`)."""
        return self.threads.run((method, n_rows),
                                threads_for_rows(self.num_threads, n_rows),
                                kernel, *args)

    def predict(self, p, x):
        """Class probabilities (or the scores, ``architecture.scores``),
        ``(n_samples, output_size)`` float64."""
        raise NotImplementedError

    def loss(self, p, x, t):
        """The book's mean cross-entropy, a float."""
        raise NotImplementedError

    def accuracy(self, p, x, t):
        """Fraction of rows whose most probable class (largest score,
        ``architecture.scores``) is ``t``."""
        raise NotImplementedError

    def gradient(self, p, x, t):
        """The book's backprop gradient, a dict shaped like ``p``."""
        raise NotImplementedError

    def numerical_gradient(self, p, x, t):
        """The book's central differences of the loss, a dict like ``p``."""
        raise NotImplementedError

    def data_set(self, x, t):
        """``(x, t)`` prepared for repeated passes."""
        return DataSet(x, t)

    def accuracies(self, p, data_sets):
        """The accuracy of ``p`` on each of ``data_sets``, in order."""
        return [self.accuracy(p, d.x, d.t) for d in data_sets]

    def trainer(self, p, data, batch_size, learning_rate, gradient):
        """The book's SGD step on ``data`` (a :meth:`data_set`), updating
        the arrays of ``p`` in place; ``gradient`` is ``"backprop"`` or
        ``"numerical"``.  See :class:`StepByStep` for the interface."""
        return StepByStep(self, p, data, learning_rate, gradient)


class StepByStep:
    """SGD through an engine's own ``gradient`` and ``loss``, one step per
    call of :meth:`run`.

    Attributes
    ----------
    block : int
        The most steps one call of :meth:`run` takes.
    """

    block = 1

    def __init__(self, engine, p, data, learning_rate, gradient):
        self.engine, self.p, self.data = engine, p, data
        self.learning_rate = learning_rate
        self.gradient = (engine.gradient if gradient == "backprop"
                         else engine.numerical_gradient)

    def _step(self, idx):
        p, lr = self.p, self.learning_rate
        x, t = self.data.x[idx], self.data.t[idx]
        grad = self.gradient(p, x, t)
        new = {k: p[k] - lr * grad[k] for k in p}
        bad = sum(int(np.count_nonzero(~np.isfinite(v))) for v in new.values())
        if bad:
            return float("nan"), bad
        with np.errstate(all="ignore"):  # an overflow is reported by train
            loss = self.engine.loss(new, x, t)
        if np.isfinite(loss):
            for k in p:
                p[k][...] = new[k]
        return loss, 0

    def run(self, batches, losses):
        """The steps on the rows ``batches[0]``, ``batches[1]`` ... until
        one fails.

        Returns
        -------
        (done, loss, n_bad) : (int, float, int)
            ``losses[:done]`` are the post-update batch losses of the steps
            done.  When ``done < len(batches)``, step ``done`` was not
            applied: it would have made ``n_bad`` parameters non-finite, or
            (``n_bad == 0``) the loss ``loss``.
        """
        for done, idx in enumerate(batches):
            loss, n_bad = self._step(idx)
            if n_bad or not np.isfinite(loss):
                return done, loss, n_bad
            losses[done] = loss
        return len(batches), 0.0, 0
