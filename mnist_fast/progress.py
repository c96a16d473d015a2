"""What a training run shows while it runs: the book's lines and a progress bar.

``train(..., verbose=True, progress=True)`` and ``mnist-fast train`` both
report through :class:`TrainingProgress`.
"""

import sys
import warnings

from tqdm import TqdmWarning, std


def epoch_line(train_acc, test_acc):
    """The book's line, as its script prints it (every digit)."""
    return "train acc, test acc | " + str(train_acc) + ", " + str(test_acc)


#: Longest time between two redraws of the bar, in seconds (when the
#: steps allow: the bar moves between iterations).
MAX_INTERVAL = 1.0


def _bar(total, file):
    """A live bar: a widget in Jupyter, text elsewhere (and in a notebook
    without ipywidgets, where tqdm's widget cannot be made)."""
    with warnings.catch_warnings():
        # in a notebook without ipywidgets tqdm.auto takes the text bar and
        # warns about it: the text bar is what is wanted then
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm import auto

    options = dict(total=total, unit="it", leave=False,
                   mininterval=0.1, maxinterval=MAX_INTERVAL)
    try:
        return auto.tqdm(file=file, dynamic_ncols=True, **options)
    except ImportError:  # tqdm.notebook without ipywidgets
        return std.tqdm(file=file, dynamic_ncols=True, **options)


class TrainingProgress:
    """Reports a training run as it goes, one call per iteration.

    Prints the book's line ``train acc, test acc | 0.9468, 0.9461`` at
    each evaluation when ``lines`` is true and, when ``bar`` is true, keeps
    a live bar under it (iterations/s, the last loss and accuracies, the
    time left).  The lines are written with ``tqdm.write`` so they do not
    break the bar.  Use it as a context manager so the bar is closed
    however training ends.

    Parameters
    ----------
    total : int
        Iterations the run will make.
    lines : bool, default True
        Print the book's line at each evaluation.
    bar : bool, default True
        Show the bar (``mnist-fast train`` passes ``stdout.isatty()``).
    file : file object, optional
        Where lines and a text bar go; default ``sys.stdout``.
    """

    def __init__(self, total, *, lines=True, bar=True, file=None):
        self.file = file if file is not None else sys.stdout
        self.lines = lines
        self.bar = (_bar(total, self.file) if bar
                    else std.tqdm(total=total, disable=True))
        self._epochs = 0
        self._accuracies = ""

    def __call__(self, history):
        new_epoch = history.epochs > self._epochs
        if new_epoch:
            self._epochs = history.epochs
            train_acc, test_acc = history.train_acc_list[-1], history.test_acc_list[-1]
            self._accuracies = f", train acc {train_acc:.4f}, test acc {test_acc:.4f}"
        if not self.bar.disable:
            self.bar.set_postfix_str(
                f"loss {history.train_loss_list[-1]:.4f}{self._accuracies}",
                refresh=False)
            self.bar.update(1)
        if new_epoch and self.lines:
            # tqdm.write redraws the bar, up to date, under the line
            std.tqdm.write(epoch_line(train_acc, test_acc),
                           file=self.file)
            self.file.flush()

    def close(self):
        """Remove the bar."""
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
