"""Pictures of a training run and of a trained network, without a display.

The book's two figures of a run (:func:`plot_loss`, :func:`plot_accuracy`,
for one run or several side by side) and three pictures of a trained
network (:func:`plot_weights`, :func:`plot_misclassified`,
:func:`plot_confusion`).  Each returns a Matplotlib ``Figure`` and saves
it as PNG when given a path.

The figures are built with Matplotlib's object-oriented API (a
``matplotlib.figure.Figure`` on an Agg canvas, no ``pyplot``), so they work
on a server, in CI or over SSH, whatever GUI backend is (not) configured.
Show one in Jupyter by leaving it as the last expression of a cell.
"""

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.colors import PowerNorm
from matplotlib.ticker import MaxNLocator

from .train import History
from .validation import describe, positive_int

#: Resolution of the saved PNGs (640x480 pixels at the default size).
DPI = 100


class PictureFigure(Figure):
    """A Figure on an Agg canvas that Jupyter shows as a PNG when it is the
    last expression of a cell, with or without ``%matplotlib inline``."""

    def __init__(self):
        super().__init__(figsize=(6.4, 4.8), dpi=DPI)
        FigureCanvasAgg(self)

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()


def _figure():
    fig = PictureFigure()
    return fig, fig.add_subplot()


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, format="png", dpi=DPI)
    return fig


def _histories(histories, labels):
    """``histories`` as a list of History, and ``labels`` as a list of
    str (or None when not given)."""
    if isinstance(histories, History):
        histories = [histories]
    elif isinstance(histories, Sequence) and not isinstance(histories, str):
        histories = list(histories)
        if not histories:
            raise ValueError("histories must hold at least one History, got "
                             "an empty sequence")
        for i, h in enumerate(histories):
            if not isinstance(h, History):
                raise TypeError(f"histories[{i}] must be a History (what "
                                f"train returns), got {describe(h)}")
    else:
        raise TypeError("histories must be a History or a sequence of them, "
                        f"got {describe(histories)}")
    if labels is None:
        return histories, None
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, Sequence):
        raise TypeError("labels must be a sequence of strings, one per "
                        f"history, got {describe(labels)}")
    labels = list(labels)
    if len(labels) != len(histories):
        raise ValueError(f"labels must name each of the {len(histories)} "
                         f"histories, got {len(labels)} label(s)")
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise TypeError(f"labels[{i}] must be a string, got "
                            f"{describe(label)}")
    return histories, labels


def smooth_curve(values, window):
    """The trailing moving average of ``values`` over ``window`` points.

    Point ``i`` is the mean of ``values[max(0, i - window + 1):i + 1]``:
    the first ``window - 1`` points average what there is so far, so the
    result is as long as ``values`` and stays aligned with the iterations.
    ``window=1`` gives ``values`` back.  (The book's ch. 6
    ``common.util.smooth_curve`` smooths with a fixed 11-point window
    too, a centred Kaiser-weighted one; a plain trailing mean is simpler
    and never looks ahead.)

    Parameters
    ----------
    values : array_like of shape (n,)
    window : int >= 1

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
    """
    window = positive_int(window, "window")
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate(([0.0], values)))
    stop = np.arange(1, values.size + 1)
    start = np.maximum(stop - window, 0)
    return (sums[stop] - sums[start]) / (stop - start)


def plot_loss(histories, path=None, *, labels=None, smooth=None, title=None):
    """The loss of each iteration, as the book's second figure.

    Parameters
    ----------
    histories : History or sequence of History
        What ``train`` returned (each ``train_loss_list`` is plotted, one
        colour per history).
    path : str or path, optional
        Where to save the figure as PNG.
    labels : sequence of str, optional
        A name for each history's curve, in the legend.  There is a legend
        when labels are given or there are several histories (then named
        "run 1", "run 2" ... by default).
    smooth : int >= 1, optional
        Plot the trailing moving average over this many iterations
        (:func:`smooth_curve`) instead of the raw losses; the title says so.
    title : str, optional
        The figure's title (which run it is, say), before the smoothing's.

    Returns
    -------
    matplotlib.figure.Figure
        x: "iteration", y: "loss" from 0 to 3.  One history without labels
        or smoothing: exactly the book's figure, one line labelled "train
        loss" and no legend.
    """
    histories, labels = _histories(histories, labels)
    if smooth is not None:
        smooth = positive_int(smooth, "smooth")
    fig, ax = _figure()
    for i, history in enumerate(histories):
        losses = history.train_loss_list
        if smooth is not None:
            losses = smooth_curve(losses, smooth)
        label = _label(labels, histories, i, "train loss")
        ax.plot(np.arange(len(losses)), losses, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_ylim(0, 3)
    titles = [_title(title)] if title is not None else []
    if smooth is not None:
        titles.append(f"train loss, trailing mean over {smooth} iterations")
    if titles:
        ax.set_title("; ".join(titles))
    if labels is not None or len(histories) > 1:
        ax.legend(loc="upper right")
    return _finish(fig, path)


def _title(title):
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {describe(title)}")
    return title


def _label(labels, histories, i, single):
    if labels is not None:
        return labels[i]
    return single if len(histories) == 1 else f"run {i + 1}"


def plot_accuracy(histories, path=None, *, labels=None, title=None):
    """Train and test accuracy per epoch, as the book's first figure.

    Parameters
    ----------
    histories : History or sequence of History
        What ``train`` returned (each ``train_acc_list`` and
        ``test_acc_list`` are plotted).
    path : str or path, optional
        Where to save the figure as PNG.
    labels : sequence of str, optional
        A name for each history: its curves are "<label> train acc" and
        "<label> test acc" in the legend (several histories without labels
        are named "run 1", "run 2" ...).
    title : str, optional
        The figure's title (which run it is, say).

    Returns
    -------
    matplotlib.figure.Figure
        Train accuracy solid, test accuracy dashed, one colour per history;
        x: "epochs", y: "accuracy" from 0 to 1, legend lower right.  One
        history without labels: exactly the book's figure ("train acc",
        "test acc").
    """
    histories, labels = _histories(histories, labels)
    fig, ax = _figure()
    named = labels is not None or len(histories) > 1
    for i, history in enumerate(histories):
        prefix = _label(labels, histories, i, "") + " " if named else ""
        colour = f"C{i % 10}"
        epochs = np.arange(len(history.train_acc_list))
        ax.plot(epochs, history.train_acc_list, label=prefix + "train acc",
                color=colour)
        ax.plot(np.arange(len(history.test_acc_list)), history.test_acc_list,
                label=prefix + "test acc", linestyle="--", color=colour)
    ax.set_xlabel("epochs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    if title is not None:
        ax.set_title(_title(title))
    return _finish(fig, path)


# -- pictures of a trained network ---------------------------------------------

#: Side of the square MNIST images, in pixels.
SIDE = 28


def _first_layer(net):
    """``net``'s W1 as an array, after checking that it takes 28x28 images."""
    params = getattr(net, "params", None)
    if not isinstance(params, dict) or "W1" not in params:
        raise TypeError(f"net must be a TwoLayerNet, got {describe(net)}")
    W1 = np.asarray(params["W1"], dtype=np.float64)
    if W1.ndim != 2 or W1.shape[0] != SIDE * SIDE:
        raise ValueError(
            f"net must take {SIDE * SIDE} inputs (28x28 MNIST images) to be "
            f"drawn as images, got a network whose W1 has shape {W1.shape}")
    return W1


def _predictions(net, x, t):
    """(images of shape (n, 28, 28), labels (n,), predictions (n,))."""
    _first_layer(net)
    y = net.predict(x).argmax(axis=1)  # checks x (shape, values)
    images = np.asarray(x, dtype=np.float64).reshape(-1, SIDE, SIDE)
    t = np.asarray(t)
    if t.ndim == 2:
        t = t.argmax(axis=1)
    if t.ndim != 1 or t.shape[0] != y.shape[0]:
        raise ValueError(
            f"t must hold one label (or one-hot row) per row of x, that is "
            f"shape ({y.shape[0]},) or ({y.shape[0]}, K), got shape {t.shape}")
    if t.dtype.kind not in "iub":
        raise TypeError(f"t must hold integer classes or one-hot rows, got "
                        f"dtype {t.dtype}")
    return images, t.astype(np.intp), y.astype(np.intp)


def _grid(n):
    """(rows, columns) for ``n`` tiles: ceil(sqrt(n)) columns."""
    cols = max(math.ceil(math.sqrt(n)), 1)
    return math.ceil(n / cols), cols


def plot_weights(net, path=None):
    """Each hidden unit's first-layer weights as a 28x28 image.

    Parameters
    ----------
    net : TwoLayerNet
        With 784 inputs; any hidden size.
    path : str or path, optional
        Where to save the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        One tile per hidden unit ``j`` (``W1[:, j]`` as 28x28, row-major like
        the images), in a grid of ceil(sqrt(hidden_size)) columns, in unit
        order, without ticks; all on one symmetric colour scale from
        ``-m`` to ``m`` with ``m = max|W1|`` (red positive, blue negative),
        shown by one colorbar (the last axes).
    """
    W1 = _first_layer(net)
    H = W1.shape[1]
    m = float(np.abs(W1).max()) or 1.0
    fig = PictureFigure()
    rows, cols = _grid(H)
    grid = fig.add_gridspec(rows, cols, left=0.02, right=0.83, bottom=0.02,
                            top=0.90, wspace=0.08, hspace=0.08)
    for j in range(H):
        ax = fig.add_subplot(grid[j // cols, j % cols])
        im = ax.imshow(W1[:, j].reshape(SIDE, SIDE), cmap="RdBu_r", vmin=-m,
                       vmax=m, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    cax = fig.add_axes((0.86, 0.1, 0.025, 0.72))
    fig.colorbar(im, cax=cax, label="weight")
    fig.suptitle("first-layer weights W1: one 28x28 tile per hidden unit")
    return _finish(fig, path)


def plot_misclassified(net, x, t, path=None, n=20):
    """The first ``n`` images that ``net`` gets wrong.

    Parameters
    ----------
    net : TwoLayerNet
        With 784 inputs.
    x : array_like of shape (N, 784)
        Images as rows (e.g. the test set of ``load_mnist()``).
    t : array_like of shape (N,) or (N, 10)
        Integer labels or one-hot rows.
    path : str or path, optional
        Where to save the figure as PNG.
    n : int >= 1, default 20
        Most images shown.

    Returns
    -------
    matplotlib.figure.Figure
        The first ``n`` rows where ``net.predict(x).argmax(axis=1) != t``,
        in order, in greyscale, one axes each (ceil(sqrt) columns), titled
        "label 7, predicted 2"; all of them when there are fewer.  The
        figure's title says how many of how many rows are wrong.  With no
        mistakes, one empty axes saying so.
    """
    n = positive_int(n, "n")
    images, t, y = _predictions(net, x, t)
    wrong = np.flatnonzero(y != t)
    shown = wrong[:n]
    fig = PictureFigure()
    total = (f"{wrong.size} of {t.size} images misclassified "
             f"({wrong.size / max(t.size, 1):.1%})")
    if shown.size == 0:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no misclassified images (0 of {t.size})",
                ha="center", va="center", fontsize=14, transform=ax.transAxes)
        return _finish(fig, path)
    rows, cols = _grid(shown.size)
    grid = fig.add_gridspec(rows, cols, left=0.02, right=0.98, bottom=0.02,
                            top=0.86 if rows > 1 else 0.80, wspace=0.15,
                            hspace=0.45)
    size = 8 if cols <= 5 else 6
    for k, i in enumerate(shown):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=max(images.max(), 1),
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"label {t[i]}, predicted {y[i]}", fontsize=size)
    first = (f"the first {shown.size}" if shown.size < wrong.size
             else f"all {shown.size}")
    fig.suptitle(f"{total}: {first}")
    return _finish(fig, path)


def confusion_matrix(net, x, t):
    """How often ``net`` predicts each class for each true class.

    Parameters
    ----------
    net : TwoLayerNet
        With 784 inputs.
    x : array_like of shape (N, 784)
    t : array_like of shape (N,) or (N, K)
        Integer labels in ``0 .. K-1`` (``K = net``'s output size) or
        one-hot rows.

    Returns
    -------
    numpy.ndarray of shape (K, K), int
        ``counts[i, j]``: rows of true class ``i`` predicted as ``j``; the
        counts sum to N.
    """
    _, t, y = _predictions(net, x, t)
    K = net.params["W2"].shape[1] if "W2" in net.params else 10
    if t.size and (t.min() < 0 or t.max() >= K):
        raise ValueError(f"t must hold classes 0 to {K - 1}, got labels from "
                         f"{t.min()} to {t.max()}")
    return np.bincount(t * K + y, minlength=K * K).reshape(K, K)


def plot_confusion(net, x, t, path=None):
    """The confusion matrix of ``net`` on ``(x, t)``, with counts.

    Parameters
    ----------
    net, x, t
        As for :func:`confusion_matrix`.
    path : str or path, optional
        Where to save the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        One axes whose image (``ax.images[0].get_array()``) is the K x K
        matrix of counts: row = true class, column = predicted class, summing
        to N.  Each cell shows its count (zero cells are left blank); the
        colour scale is compressed (power 0.3) so that mistakes show beside
        the diagonal.  The y tick labels give each class's accuracy,
        "3 (97.1%)" (recall: diagonal / row sum; "n/a" for an absent
        class); the title the overall accuracy.
    """
    counts = confusion_matrix(net, x, t)
    K, n_rows = counts.shape[0], int(counts.sum())
    fig = PictureFigure()
    ax = fig.add_subplot()
    top = max(int(counts.max()), 1)
    norm = PowerNorm(0.3, vmin=0, vmax=top)
    ax.imshow(counts, cmap="Blues", norm=norm, interpolation="nearest")
    size = 7 if K <= 10 else 5
    for i in range(K):
        for j in range(K):
            if counts[i, j]:
                dark = norm(counts[i, j]) > 0.6
                ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                        fontsize=size, color="white" if dark else "black")
    rows = counts.sum(axis=1)
    ticks = [f"{k} ({counts[k, k] / rows[k]:.1%})" if rows[k] else f"{k} (n/a)"
             for k in range(K)]
    ax.set_xticks(range(K))
    ax.set_yticks(range(K), ticks)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (its accuracy)")
    correct = int(np.trace(counts))
    ax.set_title(f"confusion matrix: {correct} of {n_rows} correct "
                 f"({correct / max(n_rows, 1):.2%})")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.1)
    return _finish(fig, path)
