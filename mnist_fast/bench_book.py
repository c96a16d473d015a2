"""Speed where the book's readers work: per call, in the book's script, on a
busy machine.

``mnist-fast bench --book`` prints what :func:`learners_benchmark`
measures, for mnist_fast's ``TwoLayerNet`` beside the book's own classes
(:mod:`mnist_fast.reference`): for ``activation="sigmoid"`` ch. 4's
``TwoLayerNet`` and script, for ``"relu"`` ch. 5's (:mod:`mnist_fast.ch05`
beside :class:`~mnist_fast.reference.LayerNet`).

* per call, from Python, at the book's batch of 100 MNIST rows:
  ``gradient``, ``loss``, ``predict``, and ``accuracy`` over all 70,000
  images (dense float32 rows, as ``load_mnist`` gives them);
* the book's training script (:mod:`mnist_fast.book_scripts`, the
  backprop line on, ``np.random.seed(0)``) run whole, with its printed
  lines compared;
* with ``loaded=True``, the same while one other CPU-bound process runs
  (:func:`competing_process`): a learner's browser or IDE.
"""

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import book, book_scripts, ch05, reference
from .bench import median_time
from .mnist import load_mnist
from .two_layer_net import TwoLayerNet
from .validation import one_of

CALLS = ("gradient", "loss", "predict", "accuracy")
#: The classes compared: mnist_fast's and the book's own.
CLASSES = ("mnist_fast", "book")
#: Each activation's chapter: its ``TwoLayerNet`` (mnist_fast's, the
#: book's) and its training script.
CHAPTERS = {
    "sigmoid": ({"mnist_fast": TwoLayerNet, "book": reference.TwoLayerNet},
                "ch04_train_neuralnet"),
    "relu": ({"mnist_fast": ch05.TwoLayerNet, "book": reference.LayerNet},
             "ch05_train_neuralnet"),
}


@contextlib.contextmanager
def competing_process():
    """One CPU-bound process running beside the block (ended by its PID).

    Yields
    ------
    int
        Its PID.
    """
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # running before the measurement starts
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _network(classes, num_threads, activation):
    cls = CHAPTERS[activation][0][classes]
    if classes == "book":
        return cls(784, book.HIDDEN_SIZE, 10)
    return cls(784, book.HIDDEN_SIZE, 10, num_threads=num_threads)


def per_call(classes, *, num_threads=None, repeats=5, activation="sigmoid"):
    """Median seconds per call of each of :data:`CALLS`.

    ``gradient``, ``loss`` and ``predict`` on a batch of 100 training rows
    (one-hot labels, as the book's script passes them); ``accuracy`` on
    all 70,000 images.
    """
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True,
                                                      one_hot_label=True)
    idx = np.random.default_rng(0).choice(x_train.shape[0], book.BATCH_SIZE)
    x, t = x_train[idx], t_train[idx]
    x_all, t_all = np.concatenate([x_train, x_test]), np.concatenate([t_train, t_test])
    net = _network(classes, num_threads, activation)
    calls = {"gradient": lambda: net.gradient(x, t),
             "loss": lambda: net.loss(x, t),
             "predict": lambda: net.predict(x),
             "accuracy": lambda: net.accuracy(x_all, t_all)}
    return {name: median_time(calls[name], repeats) for name in CALLS}


def book_script(classes, *, gradient="backprop", seed=0, activation="sigmoid"):
    """Run the book's training script of ``activation``'s chapter whole;
    (seconds, printed lines)."""
    import matplotlib

    matplotlib.use("Agg")  # the script ends in plt.show()
    import matplotlib.pyplot as plt

    text = book_scripts.variant(CHAPTERS[activation][1], classes=classes,
                                seed=seed, gradient=gradient)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with _quiet_show():
            lines, _ = book_scripts.run(text, Path(tmp) / "train_neuralnet.py")
        seconds = time.perf_counter() - start
    plt.close("all")
    return seconds, lines


@contextlib.contextmanager
def _quiet_show():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "FigureCanvasAgg is non-interactive")
        yield


def learners_benchmark(*, script=True, loaded=False, num_threads=None,
                       repeats=5, activation="sigmoid"):
    """Per-call times and, with ``script``, the book's script, for
    mnist_fast's classes and the book's, alternating.

    ``activation`` chooses the chapter (:data:`CHAPTERS`): ``"sigmoid"``
    ch. 4's classes and script, ``"relu"`` ch. 5's.

    Returns
    -------
    dict
        ``per_call[classes][call]`` seconds; ``script[classes]`` seconds
        and ``script_lines_equal`` (the printed lines are the same, digit
        for digit); ``loaded``, ``num_threads``, ``activation`` and
        ``script_name``.
    """
    one_of(activation, "activation", tuple(CHAPTERS))
    result = {"loaded": loaded, "num_threads": num_threads, "per_call": {},
              "script": {}, "activation": activation,
              "script_name": CHAPTERS[activation][1]}
    with competing_process() if loaded else contextlib.nullcontext():
        for classes in CLASSES:
            result["per_call"][classes] = per_call(
                classes, num_threads=num_threads, repeats=repeats,
                activation=activation)
        if script:
            lines = {}
            for classes in CLASSES:
                result["script"][classes], lines[classes] = book_script(
                    classes, activation=activation)
            result["script_lines_equal"] = lines["mnist_fast"] == lines["book"]
            result["script_last_line"] = lines["mnist_fast"][-1]
    return result
