"""mnist_fast.plot: the book's two figures, headless, as real PNG files."""

import subprocess
import sys

import matplotlib.figure
import pytest

from mnist_fast import History
from mnist_fast.plot import plot_accuracy, plot_loss
from conftest import cli_env, png_size


@pytest.fixture
def history():
    losses = [2.3 * 0.999 ** i for i in range(1200)]
    return History(train_loss_list=losses, train_acc_list=[0.1, 0.8, 0.9],
                   test_acc_list=[0.11, 0.79, 0.88], iter_per_epoch=600,
                   iterations=1200)


def test_loss_figure_is_the_books_second(history, tmp_path):
    fig = plot_loss(history, tmp_path / "loss.png")
    assert isinstance(fig, matplotlib.figure.Figure)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "loss"
    assert ax.get_ylim() == (0, 3)
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == history.train_loss_list
    assert list(line.get_xdata()) == list(range(1200))
    assert png_size(tmp_path / "loss.png") == (640, 480)


def test_accuracy_figure_is_the_books_first(history, tmp_path):
    fig = plot_accuracy(history, tmp_path / "accuracy.png")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "epochs" and ax.get_ylabel() == "accuracy"
    assert ax.get_ylim() == (0, 1)
    train, test = ax.get_lines()
    assert list(train.get_ydata()) == [0.1, 0.8, 0.9]
    assert list(test.get_ydata()) == [0.11, 0.79, 0.88]
    assert train.get_linestyle() == "-" and test.get_linestyle() == "--"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["train acc", "test acc"]
    renderer = fig.canvas.get_renderer()
    box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.x0 > (frame.x0 + frame.x1) / 2 and box.y1 < (frame.y0 + frame.y1) / 2
    assert png_size(tmp_path / "accuracy.png") == (640, 480)


def test_no_path_saves_nothing(history, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert isinstance(plot_loss(history), matplotlib.figure.Figure)
    assert isinstance(plot_accuracy(history), matplotlib.figure.Figure)
    assert list(tmp_path.iterdir()) == []


def test_needs_no_display_nor_pyplot(tmp_path):
    # a GUI backend that cannot start here, no DISPLAY: the figures are
    # still written, and pyplot (which would pick a GUI) is never imported
    code = (
        "import sys; from mnist_fast import History; "
        "from mnist_fast.plot import plot_loss; "
        "plot_loss(History(train_loss_list=[2.0, 1.0]), 'loss.png'); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    env = cli_env(MPLBACKEND="TkAgg")
    env.pop("DISPLAY", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert png_size(tmp_path / "loss.png") == (640, 480)
