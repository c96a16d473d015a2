"""What a training run shows while it runs: the book's lines and a progress bar."""

import sys

from tqdm import tqdm

#: The book's per-epoch line.
EPOCH_LINE = "train acc, test acc | {:.4f}, {:.4f}"


class TrainingProgress:
    """A ``train(callback=...)`` that reports progress.

    Prints the book's line ``train acc, test acc | 0.xxxx, 0.xxxx`` at
    each epoch and, when ``bar`` is true, keeps a live tqdm bar under it
    (iterations/s, current loss, last accuracies, ETA).  The lines are
    written with ``tqdm.write`` so they do not break the bar.  Use it as a
    context manager so the bar is closed however training ends.

    Parameters
    ----------
    total : int
        Iterations the run will make.
    bar : bool, default True
        Show the bar (pass ``file.isatty()`` to show it on terminals only).
    file : file object, optional
        Where lines and bar go; default ``sys.stdout``.
    """

    def __init__(self, total, *, bar=True, file=None):
        self.file = file if file is not None else sys.stdout
        self.bar = tqdm(total=total, disable=not bar, file=self.file,
                        unit="it", leave=False, dynamic_ncols=True)
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
        if new_epoch:  # tqdm.write redraws the bar, up to date, under the line
            tqdm.write(EPOCH_LINE.format(train_acc, test_acc), file=self.file)
            self.file.flush()

    def close(self):
        """Remove the bar."""
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
