"""The compiled engine: the kernels of :mod:`mnist_fast.kernels` behind the
engine surface of :mod:`mnist_fast.engine`.

What the kernels need beyond the checked arrays is decided here and only
here: output and scratch arrays, the thread count of a call (at most
:func:`~mnist_fast.threads.threads_for_rows`, chosen by the network's
thread policy, :mod:`mnist_fast.threads`), the float32 screen of the
accuracy (:mod:`mnist_fast.screen`), the compressed rows (CSR) of a data
set kept for training, and the fused SGD step.
"""

from functools import partial

import numpy as np

from . import book
from .engine import Architecture, DataSet, Engine, InputsNotScanned
from .kernels import backprop, forward, numerical
from .numpy_engine import NumpyEngine
from .screen import screen_for
from .threads import threads_for_rows

#: Rows from which ``accuracy`` screens them in float32 first: below, the
#: screen's weights cost more than the screen saves.
SCREEN_MIN_ROWS = 1000
#: Largest logit move a perturbation may cause for the compiled numerical
#: gradient: its exact-change algebra takes expm1 of the moves, which
#: overflows or cancels for large ones.  Beyond, the book's loop runs.
MAX_LOGIT_MOVE = 1.0
#: Values of ``W1`` from which ``gradient``'s kernel scans them (instead
#: of the boundary check) and may use all the network's threads whatever
#: the batch: its per-call work on ``W1`` (the scan of its values, the
#: zeros of its gradient's rows without a pixel) grows with them, not with
#: the rows.  Below, a scan costs little and stays where it was.
WIDE_W1 = 100_000
#: Steps of the fused trainer per GIL-free call (``train`` serves Ctrl-C
#: and its callback between calls).
STEPS_PER_CALL = 64


def compiled_numerical_gradient_fits(p, x, activation="sigmoid"):
    """Whether every perturbation moves every logit by <= MAX_LOGIT_MOVE.

    A step of ``W1`` or ``b1`` moves a pre-activation by at most
    ``max|x| * step`` (``x = 1`` for ``b1``), a hidden unit by a quarter
    of that for a sigmoid (sigmoid' <= 1/4, and never more than 1) and by
    all of it for a ReLU (ReLU' <= 1; a ReLU unit is not bounded), a logit
    by that times ``max|W2|``.  A step of ``W2`` moves a logit by at most
    the step times the largest hidden unit: 1 for a sigmoid, for a ReLU
    ``|a1| <= max(sum|x|) * max|W1| + max|b1|`` over the rows; a step of
    ``b2`` by the step.  The applied step ``fl(theta + h) - theta`` is at
    most ``h`` plus the spacing of the largest parameter.

    Parameters
    ----------
    p : dict
        The parameters ``W1, b1, W2, b2``.
    x : numpy.ndarray
        The checked rows.
    activation : {"sigmoid", "relu"}
        The hidden layer's (:data:`mnist_fast.book.ACTIVATIONS`).
    """
    def max_abs(a):  # max |a| without an array of |a| (a is finite)
        return max(a.max(), -a.min())

    def step(largest):  # the applied step of parameters up to |largest|
        return book.H + np.spacing(largest)

    if activation not in book.ACTIVATIONS:
        raise ValueError(f"activation must be one of {book.ACTIVATIONS}, "
                         f"got {activation!r}")
    w1, b1, w2, b2 = (max_abs(p[key]) for key in ("W1", "b1", "W2", "b2"))
    da = max(max_abs(x), 1.0) * step(max(w1, b1))
    if activation == "relu":
        dz = da
        z_max = np.abs(x).sum(axis=1, dtype=np.float64).max() * w1 + b1
    else:
        dz = min(1.0, da / 4)
        z_max = 1.0
    return max(dz * w2, max(z_max, 1.0) * step(max(w2, b2))) <= MAX_LOGIT_MOVE


def _like(p):
    """Uninitialised arrays shaped like the parameters, for a gradient."""
    # np.empty of the shape: float64 and C order, as every checked
    # parameter is (np.empty_like would read each array's layout first)
    return {k: np.empty(v.shape) for k, v in p.items()}


class CompressedRows(DataSet):
    """A data set with its rows also in CSR form (81% of MNIST pixels are
    0), compact (``to_csr``: a uint16 column and, for MNIST's 256 grey
    levels, a uint8 code per nonzero): built once per ``train``."""

    def __init__(self, x, t, num_threads):
        super().__init__(x, t)
        self.indptr, self.indices, self.codes, self.values = backprop.to_csr(
            x, num_threads)
        self.row_l1 = forward.row_l1(self, self.values, x.shape[1])


class FusedTrainer:
    """The book's SGD step in one GIL-free kernel call per block of steps
    (see ``StepByStep.run`` for the interface), on the thread count the
    policy chooses for blocks of that many steps."""

    block = STEPS_PER_CALL

    def __init__(self, p, data, batch_size, learning_rate, threads,
                 activation):
        self._threads = threads
        self._steps = backprop.SGDTrainer(data, p, activation, batch_size,
                                          learning_rate, book.LOG_GUARD)

    def run(self, batches, losses):
        return self._threads.run(("train steps", batches.shape),
                                 self._threads.num_threads, self._steps.run,
                                 batches, losses)


class CompiledEngine(Engine):
    """Every method runs a compiled kernel.

    The numerical gradient runs the book's loop instead when a step could
    move a logit by more than ``MAX_LOGIT_MOVE``
    (:func:`compiled_numerical_gradient_fits`): same answer, book's speed.
    """

    name = "cython"
    compiled = True

    def __init__(self, threads, architecture=Architecture()):
        super().__init__(threads, architecture)
        # the kernels' arguments for the architecture
        self._activation = architecture.activation_code
        self._scores = architecture.scores
        # the book's loop, for steps too large for the numerical kernel
        self._book = NumpyEngine(threads, architecture)
        # the count of dense rows, -1 when one of their values is not finite
        self._count_checked = partial(forward.count_correct, check=True)
        # the gradient, W1's values checked by the kernel (False) or not
        self._gradients = {True: backprop.gradient,
                           False: partial(backprop.gradient, check_w1=True)}

    # Each kernel of these four reads every value of x as it builds its
    # blocks' masks and says whether all are finite: with scanned=False
    # (x's values not checked yet), InputsNotScanned when one is not.
    scans_inputs = True

    def scans_w1(self, size):
        # gradient's kernel also says whether every value of a wide W1 is
        # finite, with w1_scanned=False (its threads share the scan)
        return size >= WIDE_W1

    def predict(self, p, x, scanned=True):
        y = np.empty((x.shape[0], p["b2"].shape[0]))
        finite = self._run("predict", x.shape[0], forward.predict, x, p,
                           self._activation, self._scores, y)
        if not (finite or scanned):
            raise InputsNotScanned
        return y

    def loss(self, p, x, t, scanned=True):
        scratch = np.empty(x.shape[0])
        value = self._run("loss", x.shape[0], forward.loss, x, t, p,
                          self._activation, book.LOG_GUARD, scratch)
        if not (value == value or scanned):  # NaN: x may not be finite
            raise InputsNotScanned
        return value

    def accuracy(self, p, x, t, scanned=True):
        screen = (screen_for(p, self.architecture.activation)
                  if x.shape[0] >= SCREEN_MIN_ROWS else None)
        correct = self._run("accuracy", x.shape[0], self._count_checked,
                            x.reshape(-1), t, None, p, self._activation,
                            self._scores, screen)
        if correct < 0 and not scanned:
            raise InputsNotScanned
        return correct / x.shape[0]

    def gradient(self, p, x, t, scanned=True, w1_scanned=True):
        grads = _like(p)
        # a wide W1's work per call is the threads' to share even for one
        # row (the policy still times one thread against them)
        most = (self.num_threads if self.scans_w1(p["W1"].size)
                else threads_for_rows(self.num_threads, x.shape[0]))
        finite = self.threads.run(("gradient", x.shape[0]), most,
                                  self._gradients[w1_scanned], x, t, p,
                                  self._activation, grads)
        if not (finite or (scanned and w1_scanned)):
            raise InputsNotScanned
        return grads

    def numerical_gradient(self, p, x, t):
        if not compiled_numerical_gradient_fits(p, x,
                                                self.architecture.activation):
            return self._book.numerical_gradient(p, x, t)
        grads = _like(p)
        self.threads.run(("numerical_gradient", x.shape[0]), self.num_threads,
                         numerical.numerical_gradient, x, t, p,
                         self._activation, book.H, book.LOG_GUARD, grads)
        return grads

    def data_set(self, x, t):
        return CompressedRows(x, t, self.num_threads)

    def accuracies(self, p, data_sets):
        # once for all the sets
        screen = screen_for(p, self.architecture.activation)
        return [self.threads.run(("accuracies", d.t.shape[0]),
                                 self.num_threads, forward.count_correct,
                                 d.values, d.t, d, p, self._activation,
                                 self._scores, screen) / d.t.shape[0]
                for d in data_sets]

    def trainer(self, p, data, batch_size, learning_rate, gradient):
        if gradient == "backprop":
            return FusedTrainer(p, data, batch_size, learning_rate,
                                self.threads, self._activation)
        return super().trainer(p, data, batch_size, learning_rate, gradient)
