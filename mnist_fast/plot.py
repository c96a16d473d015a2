"""The book's two figures of a training run, drawn without a display.

The figures are built with Matplotlib's object-oriented API (a
``matplotlib.figure.Figure`` on an Agg canvas, no ``pyplot``), so they work
on a server, in CI or over SSH, whatever GUI backend is (not) configured.
Show one in Jupyter by leaving it as the last expression of a cell.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: Resolution of the saved PNGs (640x480 pixels at the default size).
DPI = 100


def _figure():
    fig = Figure(figsize=(6.4, 4.8), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, format="png", dpi=DPI)
    return fig


def plot_loss(history, path=None):
    """The loss of each iteration, as the book's second figure.

    Parameters
    ----------
    history : History
        What ``train`` returned (its ``train_loss_list`` is plotted).
    path : str or path, optional
        Where to save the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        x: "iteration", y: "loss" from 0 to 3.
    """
    fig, ax = _figure()
    losses = history.train_loss_list
    ax.plot(np.arange(len(losses)), losses, label="train loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_ylim(0, 3)
    return _finish(fig, path)


def plot_accuracy(history, path=None):
    """Train and test accuracy per epoch, as the book's first figure.

    Parameters
    ----------
    history : History
        What ``train`` returned (its ``train_acc_list`` and
        ``test_acc_list`` are plotted).
    path : str or path, optional
        Where to save the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        Train accuracy solid, test accuracy dashed; x: "epochs", y:
        "accuracy" from 0 to 1, legend lower right.
    """
    fig, ax = _figure()
    epochs = np.arange(len(history.train_acc_list))
    ax.plot(epochs, history.train_acc_list, label="train acc")
    ax.plot(epochs, history.test_acc_list, label="test acc", linestyle="--")
    ax.set_xlabel("epochs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    return _finish(fig, path)
