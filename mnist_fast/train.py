"""Mini-batch SGD, as the book's training script: ``train`` and ``History``."""

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import build
from .screen import screen_weights
from .threads import resolve_num_threads
from .validation import (MAX_INDEX, as_inputs, as_labels, as_rng, flag,
                         one_of, positive_int, real_number)

GRADIENTS = ("backprop", "numerical")
#: Iterations the compiled trainer runs per call (between two checks for
#: Ctrl-C; an evaluation point also ends a block).
_BLOCK = 64


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite parameter or loss.

    Attributes
    ----------
    iteration : int
        The (0-based) iteration whose update failed.
    history : History
        What was recorded up to that iteration.
    """

    def __init__(self, message, iteration, history):
        super().__init__(message)
        self.iteration = iteration
        self.history = history


@dataclass
class History:
    """What a training run recorded, in the book's lists.

    Attributes
    ----------
    train_loss_list : list of float
        Per iteration: the loss on that iteration's batch after its update.
    train_acc_list, test_acc_list : list of float
        Per epoch: accuracy over the whole training and test sets,
        evaluated after iterations 0, ``iter_per_epoch``, 2 *
        ``iter_per_epoch`` ... as the book does.
    iter_per_epoch : int
        ``max(train_size // batch_size, 1)``: a whole number (the book's
        float ``train_size / batch_size`` skips epochs when it does not
        divide, e.g. batch 128).
    iterations : int
        Iterations completed.
    wall_time : float
        Seconds spent in ``train``.
    interrupted : bool
        True when Ctrl-C stopped the run early (at the end of a block of
        iterations, see :func:`train`).
    """

    train_loss_list: list = field(default_factory=list)
    train_acc_list: list = field(default_factory=list)
    test_acc_list: list = field(default_factory=list)
    iter_per_epoch: int = 1
    iterations: int = 0
    wall_time: float = 0.0
    interrupted: bool = False
    backend: str = ""
    gradient: str = ""
    batch_size: int = 0
    learning_rate: float = 0.0
    iters_num: int = 0
    seed: object = None

    @property
    def epochs(self):
        """Number of accuracy evaluations recorded."""
        return len(self.train_acc_list)


@contextlib.contextmanager
def _stop_on_sigint():
    """Turn Ctrl-C into a flag read between steps (main thread only)."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _generic_run(net, p, x, t, learning_rate, gradient):
    """SGD steps through the network's own gradient and loss methods."""
    grad_fn = net._gradient if gradient == "backprop" else net._numerical_gradient

    def step(idx):
        x_batch, t_batch = x[idx], t[idx]
        grad = grad_fn(p, x_batch, t_batch)
        new = {k: p[k] - learning_rate * grad[k] for k in p}
        bad = sum(int(np.count_nonzero(~np.isfinite(v))) for v in new.values())
        if bad:
            return float("nan"), bad
        with np.errstate(all="ignore"):  # an overflow is reported below
            loss = net._loss(new, x_batch, t_batch)
        if np.isfinite(loss):
            for k in p:
                p[k][...] = new[k]
        return loss, 0

    def run(batches, losses):
        for done, idx in enumerate(batches):
            loss, n_bad = step(idx)
            if n_bad or not np.isfinite(loss):
                return done, loss, n_bad
            losses[done] = loss
        return len(batches), 0.0, 0

    return run


class _Batches:
    """The iterations' batches, rows drawn with replacement as the book
    does, ``rng.choice(train_size, (n, batch_size))`` for a few iterations
    at a time (the same draws however the iterations are grouped)."""

    def __init__(self, rng, train_size, batch_size):
        self.rng, self.train_size, self.batch_size = rng, train_size, batch_size
        self.per_draw = max(1, min(_BLOCK, 2**16 // batch_size))
        self.drawn = np.empty((0, batch_size), dtype=np.intp)

    def take(self, n):
        """The next ``n`` batches, as an (n, batch_size) intp array."""
        while len(self.drawn) < n:
            more = self.rng.choice(self.train_size, (self.per_draw, self.batch_size))
            self.drawn = np.concatenate([self.drawn, more.astype(np.intp)])
        batches, self.drawn = self.drawn[:n], self.drawn[n:]
        return np.ascontiguousarray(batches)


class _CompiledData:
    """A data set kept in CSR form for the compiled kernels (81% of MNIST
    pixels are 0): built once per ``train``, no float64 copy."""

    def __init__(self, x, t, num_threads):
        self.indptr, self.indices, self.values = build._backprop.to_csr(
            x, num_threads)
        self.row_l1 = build._forward.row_l1(self.indptr, self.values)
        self.t = t

    def accuracy(self, p, screen, num_threads):
        """Accuracy with parameters ``p``; ``screen`` is
        ``screen_weights(p)`` (computed once for several data sets)."""
        correct = build._forward.count_correct_csr(
            self.indptr, self.indices, self.values, self.t, p["W1"], p["b1"],
            p["W2"], p["b2"], *screen, self.row_l1, num_threads)
        return correct / self.t.shape[0]


def train(net, x_train, t_train, x_test, t_test, *, iters_num=10000,
          batch_size=100, learning_rate=0.1, gradient="backprop", seed=None,
          eval_every_epoch=True, callback=None):
    """Train ``net`` by mini-batch SGD, exactly as the book's script.

    Each iteration draws ``batch_size`` training rows with replacement
    (as the book's ``np.random.choice(train_size, batch_size)``; the rows of
    up to 64 iterations are drawn at once, ``rng.choice(train_size, (64,
    batch_size))``), computes the gradient, updates ``net.params`` in place
    (``p -= learning_rate * grad``) and records the batch loss after the
    update.  Every ``iter_per_epoch`` iterations (starting with iteration
    0) it records the accuracy over the whole training and test sets.

    The compiled backprop path runs up to 64 iterations per GIL-free call
    (an evaluation point ends such a block); Ctrl-C and ``callback`` are
    served between blocks.

    Parameters
    ----------
    net : TwoLayerNet
        Trained in place; its parameters become float64 C-contiguous arrays.
    x_train, x_test : array_like of shape (n, net.input_size)
    t_train, t_test : array_like of shape (n,) or (n, net.output_size)
        Integer labels or one-hot rows.
    iters_num : int, default 10000
        Iterations, >= 0.
    batch_size : int, default 100
        1 ... 2**31 - 1; may exceed the training set (rows are drawn with
        replacement).
    learning_rate : float, default 0.1
        Finite and > 0.
    gradient : {"backprop", "numerical"}, default "backprop"
    seed : int, optional
        Seeds the batch sampling: the same seed, backend and thread count
        give bit-identical histories and weights.
    eval_every_epoch : bool, default True
        Record the per-epoch accuracies (they cost a pass over all data).
    callback : callable, optional
        Called as ``callback(history)`` once per iteration, in order, with
        the history up to that iteration.  On the compiled backprop path
        the calls for a block come after the block has run, so
        ``net.params`` may be up to 63 iterations further on.

    Returns
    -------
    History

    Raises
    ------
    TypeError
        ``net`` is not a TwoLayerNet; ``iters_num``, ``batch_size``,
        ``learning_rate``, ``gradient``, ``seed`` or ``eval_every_epoch``
        of the wrong type; ``callback`` not callable; bad data or
        ``net.params`` as in :meth:`TwoLayerNet.loss` (the messages name
        ``x_train``, ``t_train``, ``x_test`` or ``t_test``).
    ValueError
        ``iters_num`` < 0, ``batch_size`` outside 1 ... 2**31 - 1 (or not
        whole numbers),
        ``learning_rate`` <= 0 or not finite, an unknown ``gradient``, a
        negative ``seed``; bad data or ``net.params`` as in
        :meth:`TwoLayerNet.loss`.  Nothing is trained then.
    TrainingDiverged
        An update would make a parameter or the batch loss non-finite; it
        is not applied: ``net.params`` keeps the parameters from before it.
        ``.iteration`` says which it was, ``.history`` what was recorded.
    """
    from .two_layer_net import TwoLayerNet

    if not isinstance(net, TwoLayerNet):
        raise TypeError(f"net must be a TwoLayerNet, got {type(net).__name__}")
    iters_num = positive_int(iters_num, "iters_num", minimum=0)
    batch_size = positive_int(batch_size, "batch_size", maximum=MAX_INDEX)
    learning_rate = real_number(learning_rate, "learning_rate", minimum=0.0,
                                strict=True)
    one_of(gradient, "gradient", GRADIENTS)
    rng = as_rng(seed)
    eval_every_epoch = flag(eval_every_epoch, "eval_every_epoch")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable or None, got {type(callback).__name__}"
        )
    x_train = as_inputs(x_train, net.input_size, "x_train")
    t_train = as_labels(t_train, x_train.shape[0], net.output_size, "t_train",
                        "x_train")
    x_test = as_inputs(x_test, net.input_size, "x_test")
    t_test = as_labels(t_test, x_test.shape[0], net.output_size, "t_test",
                       "x_test")

    p = net._checked_params()
    p = {k: v if v.flags.writeable else v.copy() for k, v in p.items()}
    net.params.update(p)  # the arrays the steps update in place

    train_size = x_train.shape[0]
    history = History(
        iter_per_epoch=max(train_size // batch_size, 1), backend=net.backend,
        gradient=gradient, batch_size=batch_size, learning_rate=learning_rate,
        iters_num=iters_num, seed=seed,
    )
    if net.backend == "cython":
        threads = resolve_num_threads(net.num_threads)
        train_set = _CompiledData(x_train, t_train, threads)
        test_set = _CompiledData(x_test, t_test, threads)

        def accuracies():
            screen = screen_weights(p)
            return (train_set.accuracy(p, screen, threads),
                    test_set.accuracy(p, screen, threads))
    else:
        def accuracies():
            return (net._accuracy(p, x_train, t_train),
                    net._accuracy(p, x_test, t_test))
    if net.backend == "cython" and gradient == "backprop":
        run = build._backprop.SGDTrainer(
            train_set.indptr, train_set.indices, train_set.values, t_train,
            p["W1"], p["b1"], p["W2"], p["b2"], batch_size, learning_rate,
            threads).run
        block = _BLOCK  # iterations per call: one GIL-free call for many
    else:
        run = _generic_run(net, p, x_train, t_train, learning_rate, gradient)
        block = 1
    batches = _Batches(rng, train_size, batch_size)
    losses = np.empty(block)

    start = time.perf_counter()
    with _stop_on_sigint() as stop:
        i = 0
        while i < iters_num and not history.interrupted:
            # a block ends at an evaluation point (iteration 0, iter_per_epoch ...)
            n = min(block, iters_num - i)
            if eval_every_epoch:
                n = min(n, -i % history.iter_per_epoch + 1)
            done, loss, n_bad = run(batches.take(n), losses)
            for k in range(done):
                history.train_loss_list.append(float(losses[k]))
                history.iterations = i + k + 1
                if eval_every_epoch and (i + k) % history.iter_per_epoch == 0:
                    train_acc, test_acc = accuracies()
                    history.train_acc_list.append(train_acc)
                    history.test_acc_list.append(test_acc)
                if callback is not None:
                    callback(history)
            if done < n:
                history.wall_time = time.perf_counter() - start
                what = (f"its update would make {n_bad} parameter(s) "
                        "non-finite" if n_bad else
                        f"its update made the batch loss {loss}")
                raise TrainingDiverged(
                    f"training diverged at iteration {i + done} (learning_rate="
                    f"{learning_rate:g}): {what}; net.params keeps the "
                    "parameters from before that update. Try a smaller "
                    "learning_rate.", i + done, history)
            i += n
            history.interrupted = stop.is_set() and i < iters_num
    history.wall_time = time.perf_counter() - start
    return history
