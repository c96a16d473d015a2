"""The book's own scripts, with only their imports changed to mnist_fast.

* ``ch04_train_neuralnet.py``: ch. 4's training loop (numerical gradient on,
  as printed; the backprop line below it);
* ``ch05_gradient_check.py``: ch. 5's check of backprop against the
  numerical gradient, on ch. 5's class (``variant(..., chapter="ch04")``
  runs it on ch. 4's);
* ``ch05_train_neuralnet.py``: ch. 5's training loop (ch. 4's, backprop
  on) on ch. 5's class, :mod:`mnist_fast.ch05`.

Run one as it is, ``python -m mnist_fast.book_scripts.ch05_gradient_check``,
or copy it out of this folder.  :func:`variant` makes the versions the tests
and benchmarks run: the book's own classes instead of mnist_fast's, a seed,
the other gradient line, fewer iterations, another backend -- each edit
one a learner makes.
"""

import contextlib
import io
import runpy
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("ch04_train_neuralnet", "ch05_gradient_check",
           "ch05_train_neuralnet")
#: The imports of a script on each chapter's ``TwoLayerNet``: mnist_fast's
#: (those of the scripts here), and the book's code.
IMPORTS = {
    "ch04": {"mnist_fast": "from mnist_fast import load_mnist, TwoLayerNet\n",
             "book": ("from mnist_fast import load_mnist\n"
                      "from mnist_fast.reference import TwoLayerNet\n")},
    "ch05": {"mnist_fast": ("from mnist_fast import load_mnist\n"
                            "from mnist_fast.ch05 import TwoLayerNet\n"),
             "book": ("from mnist_fast import load_mnist\n"
                      "from mnist_fast.reference import LayerNet as "
                      "TwoLayerNet\n")},
}
#: The line of every script here that makes the network.
NETWORK_LINE = "network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)"
GRADIENT_LINES = {
    "numerical": "    grad = network.numerical_gradient(x_batch, t_batch)\n",
    "backprop": "    grad = network.gradient(x_batch, t_batch)\n",
}


def source(name):
    """The text of script ``name`` (one of :data:`SCRIPTS`)."""
    if name not in SCRIPTS:
        raise ValueError(f"name must be one of {', '.join(SCRIPTS)}, got {name!r}")
    return (HERE / f"{name}.py").read_text(encoding="utf-8")


def _replace_once(text, old, new):
    if text.count(old) != 1:
        raise ValueError(f"the script does not have exactly one {old.strip()!r}")
    return text.replace(old, new)


def chapter_of(text):
    """The chapter (a key of :data:`IMPORTS`) whose mnist_fast class the
    script ``text`` imports."""
    found = [ch for ch, imports in IMPORTS.items()
             if imports["mnist_fast"] in text]
    if len(found) != 1:
        raise ValueError("the script does not import exactly one chapter's "
                         "TwoLayerNet from mnist_fast")
    return found[0]


def variant(name, *, classes="mnist_fast", chapter=None, seed=None,
            gradient=None, iters_num=None, backend=None):
    """Script ``name`` edited as a learner edits it.

    Parameters
    ----------
    classes : {"mnist_fast", "book"}
        Whose ``TwoLayerNet`` it imports: mnist_fast's, or the book's code
        (:mod:`mnist_fast.reference`).
    chapter : {"ch04", "ch05"}, optional
        Which chapter's ``TwoLayerNet`` (default: the script's own).
    seed : int, optional
        Adds ``np.random.seed(seed)`` after ``import numpy as np``.
    gradient : {"numerical", "backprop"}, optional
        For ch. 4: which ``grad =`` line is on (the other is commented).
    iters_num : int, optional
        For the training scripts: the ``iters_num = 10000`` line with
        another count.
    backend : str, optional
        With mnist_fast's classes: ``backend=...`` added to the network's
        constructor.
    """
    text = source(name)
    own = chapter_of(text)
    text = _replace_once(text, IMPORTS[own]["mnist_fast"],
                         IMPORTS[chapter or own][classes])
    if backend is not None:
        if classes != "mnist_fast":
            raise ValueError("backend is an argument of mnist_fast's classes, "
                             f"not of the {classes!r} ones")
        text = _replace_once(text, NETWORK_LINE,
                             f"{NETWORK_LINE[:-1]}, backend={backend!r})")
    if seed is not None:
        text = _replace_once(text, "import numpy as np\n",
                             f"import numpy as np\nnp.random.seed({int(seed)})\n")
    if gradient is not None:
        for which, line in GRADIENT_LINES.items():
            off = line.replace("grad =", "#grad =")
            have = off if off in text else line
            text = _replace_once(text, have, line if which == gradient else off)
    if iters_num is not None:
        text = _replace_once(text, "iters_num = 10000",
                             f"iters_num = {int(iters_num)}")
    return text


def run(text, path):
    """Run a script's ``text`` in this process as ``path`` (written there),
    as ``python path`` would.

    Returns
    -------
    (lines, names) : (list of str, dict)
        What it printed, and its global names after the run.
    """
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        names = runpy.run_path(str(path), run_name="__main__")
    return out.getvalue().splitlines(), names
