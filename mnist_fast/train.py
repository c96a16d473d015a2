"""Mini-batch SGD, as the book's training script: ``train`` and ``History``."""

import contextlib
import signal
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field

import numpy as np

from . import book
from .progress import TrainingProgress
from .seeding import batch_source
from .two_layer_net import TwoLayerNet
from .validation import (MAX_INDEX, as_inputs, as_labels, flag, one_of,
                         positive_int, real_number)

GRADIENTS = ("backprop", "numerical")


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
        True when Ctrl-C stopped the run (at the end of the block of
        iterations it came in, see :func:`train`; in the last block the run
        is complete, ``iterations == iters_num``, and this is still true).
    backend, activation, gradient, batch_size, learning_rate, iters_num, seed
        What ran: the network's backend and activation (``"sigmoid"`` or
        ``"relu"``), and ``train``'s arguments.
    """

    train_loss_list: list = field(default_factory=list)
    train_acc_list: list = field(default_factory=list)
    test_acc_list: list = field(default_factory=list)
    iter_per_epoch: int = 1
    iterations: int = 0
    wall_time: float = 0.0
    interrupted: bool = False
    backend: str = ""
    activation: str = ""
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
    """Turn Ctrl-C into a flag read between steps (main thread only).

    An ignored SIGINT (a process started with ``nohup``, or in the
    background by a shell) stays ignored: Ctrl-C was not meant to stop
    it, as ``mnist-fast train`` also holds."""
    flag = threading.Event()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield flag
        return

    def handler(signum, frame):
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class _Batches:
    """The iterations' batches: rows drawn with replacement, as the book's
    ``np.random.choice(train_size, batch_size)`` per iteration, from
    ``rng`` (:mod:`mnist_fast.seeding`).  A block of ``n`` iterations draws
    ``rng.choice(train_size, (n, batch_size))``: the same numbers as ``n``
    separate draws, however a trainer groups its steps, and no more than
    the iterations use."""

    def __init__(self, rng, train_size, batch_size):
        self.rng, self.train_size, self.batch_size = rng, train_size, batch_size

    def take(self, n):
        """The next ``n`` batches, as an (n, batch_size) intp array."""
        drawn = self.rng.choice(self.train_size, (n, self.batch_size))
        return np.ascontiguousarray(drawn, dtype=np.intp)


@dataclass
class _Run:
    """A training run's checked arguments."""

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    iters_num: int
    batch_size: int
    learning_rate: float
    gradient: str
    seed: object
    rng: object
    eval_every_epoch: bool
    callback: object
    verbose: bool
    progress: bool
    params: dict


def _checked_run(net, x_train, t_train, x_test, t_test, iters_num, batch_size,
                 learning_rate, gradient, seed, eval_every_epoch, callback,
                 verbose, progress):
    """Every argument of :func:`train` checked, before anything changes."""
    if not isinstance(net, TwoLayerNet):
        raise TypeError(f"net must be a TwoLayerNet, got {type(net).__name__}")
    iters_num = positive_int(iters_num, "iters_num", minimum=0)
    batch_size = positive_int(batch_size, "batch_size", maximum=MAX_INDEX)
    learning_rate = real_number(learning_rate, "learning_rate", minimum=0.0,
                                strict=True)
    one_of(gradient, "gradient", GRADIENTS)
    rng = batch_source(seed, (net.input_size, net.hidden_size,
                              net.output_size))
    eval_every_epoch = flag(eval_every_epoch, "eval_every_epoch")
    verbose = flag(verbose, "verbose")
    progress = flag(progress, "progress")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable or None, got {type(callback).__name__}"
        )
    threads = net.engine.num_threads
    x_train = as_inputs(x_train, net.input_size, "x_train", threads)
    t_train = as_labels(t_train, x_train.shape[0], net.output_size, "t_train",
                        "x_train")
    x_test = as_inputs(x_test, net.input_size, "x_test", threads)
    t_test = as_labels(t_test, x_test.shape[0], net.output_size, "t_test",
                       "x_test")
    return _Run(x_train, t_train, x_test, t_test, iters_num, batch_size,
                learning_rate, gradient, seed, rng, eval_every_epoch, callback,
                verbose, progress, net.checked_params())


def train(net, x_train, t_train, x_test, t_test, *, iters_num=book.ITERS_NUM,
          batch_size=book.BATCH_SIZE, learning_rate=book.LEARNING_RATE,
          gradient="backprop", seed=None, eval_every_epoch=True,
          callback=None, verbose=False, progress=False):
    """Train ``net`` by mini-batch SGD, exactly as the book's script.

    Each iteration draws ``batch_size`` training rows with replacement,
    as the book's ``np.random.choice(train_size, batch_size)`` (see
    ``seed``), computes the gradient, updates ``net.params`` in place
    (``p -= learning_rate * grad``) and records the batch loss after the
    update.  Every ``iter_per_epoch`` iterations (starting with iteration
    0) it records the accuracy over the whole training and test sets.

    The compiled backprop path runs up to 64 iterations per GIL-free call
    (an evaluation point ends such a block); Ctrl-C and ``callback`` are
    served between blocks.  Every argument is checked before the first
    step (docs/api.md, "Inputs and errors"); nothing changes when one is
    wrong.

    Parameters
    ----------
    net : TwoLayerNet
        Trained in place; its parameters become float64 C-contiguous
        arrays.  ``net.params`` may be any mapping (docs/api.md); one that
        cannot be written is replaced by a dict of the trained arrays.
    x_train, x_test : array_like of shape (n, net.input_size)
    t_train, t_test : array_like of shape (n,) or (n, net.output_size)
        Integer labels or one-hot rows.
    iters_num : int, default 10000
        Iterations, >= 0.
    batch_size : int, default 100
        May exceed the training set (rows are drawn with replacement).
    learning_rate : float, default 0.1
        Finite and > 0.
    gradient : {"backprop", "numerical"}, default "backprop"
    seed : None, int, numpy.random.Generator or RandomState, optional
        Where the batches come from (:mod:`mnist_fast.seeding`).  None
        draws from NumPy's global generator, as the book's script does.
        An integer ``s`` draws what the book's script draws after
        ``np.random.seed(s)`` and the creation of a network of ``net``'s
        sizes: with ``TwoLayerNet(..., seed=s)`` that is the book's whole
        run.  The same seed and backend give bit-identical histories and
        weights, for any thread count.
    eval_every_epoch : bool, default True
        Record the per-epoch accuracies (they cost a pass over all data).
    callback : callable, optional
        Called as ``callback(history)`` once per iteration, in order, with
        the history up to that iteration.  On the compiled backprop path
        the calls for a block come after the block has run, so
        ``net.params`` may be up to 63 iterations further on.  It may
        change ``net.params`` in place or replace its arrays (or the whole
        mapping): the next steps train what ``net.params`` holds then,
        checked as the methods check it (a wrong array raises their
        ``TypeError``/``ValueError`` naming ``params['W1']`` ...).
    verbose : bool, default False
        Print the book's ``train acc, test acc | ...`` line at each
        evaluation.
    progress : bool, default False
        Show a live bar (iterations/s, the last loss and accuracies): a
        widget in Jupyter, text in a terminal; redrawn at least once a
        second while iterations end.

    Returns
    -------
    History

    Raises
    ------
    TrainingDiverged
        An update would make a parameter or the batch loss non-finite; it
        is not applied: ``net.params`` keeps the parameters from before it.
        ``.iteration`` says which it was, ``.history`` what was recorded.
    """
    run = _checked_run(net, x_train, t_train, x_test, t_test, iters_num,
                       batch_size, learning_rate, gradient, seed,
                       eval_every_epoch, callback, verbose, progress)
    engine = net.engine
    train_set = engine.data_set(run.x_train, run.t_train)
    test_set = engine.data_set(run.x_test, run.t_test)
    params = _TrainedParams(net, run.params, lambda p: engine.trainer(
        p, train_set, run.batch_size, run.learning_rate, run.gradient))
    history = History(
        iter_per_epoch=max(run.x_train.shape[0] // run.batch_size, 1),
        backend=engine.name, activation=net.activation,
        gradient=run.gradient, batch_size=run.batch_size,
        learning_rate=run.learning_rate, iters_num=run.iters_num,
        seed=run.seed,
    )
    start = time.perf_counter()
    # silent runs call nothing per iteration but the user's callback
    report = (TrainingProgress(run.iters_num, lines=run.verbose,
                               bar=run.progress)
              if run.verbose or run.progress else contextlib.nullcontext())
    listeners = [f for f in (report, run.callback) if callable(f)]
    try:
        with report:
            _run_blocks(run, params, listeners, lambda: engine.accuracies(
                params.p, (train_set, test_set)), history)
    finally:
        history.wall_time = time.perf_counter() - start
    return history


class _TrainedParams:
    """The arrays ``train`` updates: ``net.params``' own, followed.

    They are the checked arrays of ``net.params`` (copies of read-only
    ones), written back into it (replacing it by a dict when it is a
    mapping that cannot be written or keeps copies).  After every block's
    callbacks :meth:`follow` looks whether ``net.params`` still holds them;
    if the mapping or one of its arrays was replaced (or removed), it is
    checked again as every method checks it, and the next steps update
    what it holds now.  So the trained network is always the one in
    ``net.params``, and ``History`` describes it.
    """

    def __init__(self, net, checked, make_trainer):
        self._net, self._make_trainer = net, make_trainer
        self._take(checked)

    def _take(self, checked):
        p = {k: v if v.flags.writeable else v.copy() for k, v in checked.items()}
        params = self._net.params
        if isinstance(params, MutableMapping):
            params.update(p)
        if not (isinstance(params, MutableMapping)
                and all(params[k] is v for k, v in p.items())):
            # a mapping that cannot take the trained arrays, or keeps
            # copies of them: a dict that holds them (and its other keys)
            self._net.params = {**params, **p}
        self.p, self._mapping = p, self._net.params
        self.trainer = self._make_trainer(p)

    def follow(self):
        params = self._net.params
        if params is self._mapping and all(
                k in params and params[k] is v for k, v in self.p.items()):
            return  # the usual case: nothing replaced
        self._take(self._net.checked_params())


def _run_blocks(run, params, listeners, accuracies, history):
    """The iterations of ``run``, a block of up to ``trainer.block`` steps
    per call; each of ``listeners`` is called with ``history`` after each
    iteration, then ``params`` follows what they put in ``net.params``;
    ``accuracies()`` gives the train and test accuracy."""
    batches = _Batches(run.rng, run.x_train.shape[0], run.batch_size)
    losses = np.empty(params.trainer.block)
    every = history.iter_per_epoch
    with _stop_on_sigint() as stop:
        i = 0
        while i < run.iters_num and not history.interrupted:
            # a block ends at an evaluation point (iteration 0, every ...)
            n = min(params.trainer.block, run.iters_num - i)
            if run.eval_every_epoch:
                n = min(n, -i % every + 1)
            done, loss, n_bad = params.trainer.run(batches.take(n), losses)
            for k in range(done):
                history.train_loss_list.append(float(losses[k]))
                history.iterations = i + k + 1
                if run.eval_every_epoch and (i + k) % every == 0:
                    train_acc, test_acc = accuracies()
                    history.train_acc_list.append(train_acc)
                    history.test_acc_list.append(test_acc)
                for listener in listeners:
                    listener(history)
            params.follow()
            if done < n:
                what = (f"its update would make {n_bad} parameter(s) "
                        "non-finite" if n_bad else
                        f"its update made the batch loss {loss}")
                raise TrainingDiverged(
                    f"training diverged at iteration {i + done} (learning_rate="
                    f"{run.learning_rate:g}): {what}; net.params keeps the "
                    "parameters from before that update. Try a smaller "
                    "learning_rate.", i + done, history)
            i += n
            # a Ctrl-C in the last block is still the user's: reported
            history.interrupted = stop.is_set()
