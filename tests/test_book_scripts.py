"""The book's scripts run unmodified on mnist_fast (but for their imports)
and, after np.random.seed, print what they print with the book's classes."""

import matplotlib
import numpy as np
import pytest

from mnist_fast import book_scripts

matplotlib.use("Agg")  # the scripts end in plt.show()
pytestmark = pytest.mark.filterwarnings(
    "ignore:FigureCanvasAgg is non-interactive:UserWarning")


def run(tmp_path, name, **edits):
    import matplotlib.pyplot as plt

    classes = edits.get("classes", "mnist_fast")
    try:
        return book_scripts.run(book_scripts.variant(name, **edits),
                                tmp_path / f"{name}_{classes}.py")
    finally:
        plt.close("all")


@pytest.mark.parametrize("seed", [0, 3])
def test_the_training_script_prints_the_books_lines(tmp_path, seed):
    # 601 iterations: the evaluations after iterations 0 and 600
    edits = dict(seed=seed, gradient="backprop", iters_num=601)
    lines, names = run(tmp_path, "ch04_train_neuralnet", **edits)
    book_lines, book_names = run(tmp_path, "ch04_train_neuralnet",
                                 classes="book", **edits)
    assert len(lines) == 2
    assert all(line.startswith("train acc, test acc | 0.") for line in lines)
    assert lines == book_lines  # every digit of every accuracy
    np.testing.assert_allclose(names["train_loss_list"],
                               book_names["train_loss_list"], rtol=0, atol=1e-9)
    for key in ("train_acc_list", "train_loss_list"):  # np.float64, as the book's
        assert type(names[key][0]) is type(book_names[key][0])


def test_the_training_script_runs_the_numerical_gradient_as_printed(tmp_path):
    lines, names = run(tmp_path, "ch04_train_neuralnet", seed=0, iters_num=3)
    assert len(lines) == 1 and lines[0].startswith("train acc, test acc | 0.")
    assert len(names["train_loss_list"]) == 3
    assert np.all(np.diff(names["train_loss_list"]) < 0.05)


def assert_the_books_differences(tmp_path, **edits):
    """The gradient check prints what it prints with the book's classes."""
    lines, _ = run(tmp_path, "ch05_gradient_check", seed=0, **edits)
    book_lines, _ = run(tmp_path, "ch05_gradient_check", classes="book",
                        seed=0, **edits)
    assert [line.split(":")[0] for line in lines] == ["W1", "b1", "W2", "b2"]
    for line, book_line in zip(lines, book_lines):
        ours, book = float(line.split(":")[1]), float(book_line.split(":")[1])
        # mean |backprop - numerical|: the numerical gradients agree within
        # 1e-10 per entry (tests/test_numerical_gradient.py), so do the means
        assert 0 < ours < 1e-6
        assert abs(ours - book) <= 1e-10


def test_the_gradient_check_prints_the_books_differences(tmp_path):
    assert_the_books_differences(tmp_path)


def test_variant_refuses_a_script_it_cannot_edit():
    with pytest.raises(ValueError, match="name must be one of"):
        book_scripts.variant("train")
    with pytest.raises(ValueError, match="does not have exactly one"):
        book_scripts.variant("ch05_gradient_check", iters_num=5)


def test_the_command_prints_what_the_books_script_prints(tmp_path):
    # mnist-fast train --seed s is the book's script after np.random.seed(s)
    import subprocess
    import sys

    book_lines, _ = run(tmp_path, "ch04_train_neuralnet", classes="book",
                        seed=3, gradient="backprop", iters_num=601)
    result = subprocess.run(
        [sys.executable, "-m", "mnist_fast", "train", "--seed", "3", "--iters",
         "601", "--no-progress"], capture_output=True, text=True, cwd=tmp_path,
        check=True)
    lines = [line for line in result.stdout.splitlines()
             if line.startswith("train acc, test acc | ")]
    assert lines == book_lines


# -- ch. 5: the scripts on mnist_fast.ch05.TwoLayerNet, against the book's
#    ch. 5 classes (reference.LayerNet)

from conftest import BACKENDS, requires_compiled, run_cli  # noqa: E402


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_ch05_training_script_prints_the_books_lines(tmp_path, backend):
    # 601 iterations: the evaluations after iterations 0 and 600; the NumPy
    # backend runs the book's code itself, so 1 (its weights, batch, one
    # evaluation) shows that it is wired to it
    iters_num = 601 if backend == "cython" else 1
    lines, names = run(tmp_path, "ch05_train_neuralnet", seed=0,
                       iters_num=iters_num, backend=backend)
    book_lines, book_names = run(tmp_path, "ch05_train_neuralnet",
                                 classes="book", seed=0, iters_num=iters_num)
    assert len(lines) == (2 if backend == "cython" else 1)
    assert all(len(line.split()) == 2 and line.startswith("0.")
               for line in lines)
    assert lines == book_lines  # every digit of every accuracy
    assert names["train_acc_list"] == book_names["train_acc_list"]
    assert names["test_acc_list"] == book_names["test_acc_list"]
    np.testing.assert_allclose(names["train_loss_list"],
                               book_names["train_loss_list"], rtol=0, atol=1e-9)
    if backend == "cython":
        assert names["test_acc_list"][-1] > 0.85  # it learnt
    for key in ("train_acc_list", "train_loss_list"):  # np.float64, as the book's
        assert type(names[key][0]) is type(book_names[key][0])


@requires_compiled  # the NumPy backend's numerical gradient is the book's loop
def test_the_gradient_check_on_ch04s_class_prints_the_books_differences(
        tmp_path):
    assert_the_books_differences(tmp_path, chapter="ch04")


def test_variants_name_the_chapter_and_backend_they_run():
    text = book_scripts.variant("ch05_gradient_check", chapter="ch05",
                                backend="numpy")
    assert "from mnist_fast.ch05 import TwoLayerNet\n" in text
    assert "output_size=10, backend='numpy')" in text
    assert book_scripts.chapter_of(text) == "ch05"
    assert book_scripts.chapter_of(book_scripts.source(
        "ch05_train_neuralnet")) == "ch05"
    book_text = book_scripts.variant("ch05_train_neuralnet", classes="book")
    assert "from mnist_fast.reference import LayerNet as TwoLayerNet\n" in book_text
    with pytest.raises(ValueError, match="backend is an argument of mnist_fast"):
        book_scripts.variant("ch05_train_neuralnet", classes="book",
                             backend="numpy")
    with pytest.raises(ValueError, match="does not import exactly one"):
        book_scripts.chapter_of("import numpy as np\n")


def test_the_relu_command_prints_the_accuracies_of_the_books_ch05_script(
        tmp_path):
    # mnist-fast train --activation relu --seed s is the book's ch. 5 script
    # after np.random.seed(s): the same batches, the same accuracies
    result = run_cli("train", "--activation", "relu", "--seed", 3,
                     "--iters", 601, "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    prefix = "train acc, test acc | "
    printed = [tuple(map(float, line[len(prefix):].split(", ")))
               for line in result.stdout.splitlines() if line.startswith(prefix)]
    _, book_names = run(tmp_path, "ch05_train_neuralnet", classes="book",
                        seed=3, iters_num=601)
    assert len(printed) == 2
    assert printed == list(zip(book_names["train_acc_list"],
                               book_names["test_acc_list"]))
