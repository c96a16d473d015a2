"""mnist_fast.plot: the book's two figures and pictures of a trained network,
headless, as real PNG files."""

import math
import re
import subprocess
import sys

import matplotlib.figure
import numpy as np
import pytest

import mnist_fast
from mnist_fast import History, TwoLayerNet
from mnist_fast.plot import (plot_accuracy, plot_confusion, plot_loss,
                             plot_misclassified, plot_weights, smooth_curve)
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
    assert ax.get_legend() is None
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


# -- several histories, smoothing -------------------------------------------------

def run(losses, accs=(0.1, 0.5)):
    return History(train_loss_list=list(losses), train_acc_list=list(accs),
                   test_acc_list=[a - 0.01 for a in accs])


def test_loss_of_several_histories_has_a_legend(tmp_path):
    a, b = run([2.0, 1.0, 0.5]), run([2.2, 1.5, 1.0, 0.8])
    fig = plot_loss([a, b], tmp_path / "loss.png", labels=["lr 0.1", "lr 0.5"])
    (ax,) = fig.axes
    first, second = ax.get_lines()
    assert list(first.get_ydata()) == [2.0, 1.0, 0.5]
    assert list(second.get_xdata()) == [0, 1, 2, 3]
    assert first.get_color() != second.get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr 0.1", "lr 0.5"]
    assert ax.get_xlabel() == "iteration" and ax.get_ylim() == (0, 3)
    assert png_size(tmp_path / "loss.png") == (640, 480)
    # default names for several; a legend for one history only when labelled
    (ax,) = plot_loss((a, b)).axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run 1", "run 2"]
    (ax,) = plot_loss(a, labels=["only"]).axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["only"]
    (ax,) = plot_loss(a).axes
    assert ax.get_legend() is None and ax.get_title() == ""


def test_accuracy_of_several_histories(tmp_path):
    a, b = run([1.0], [0.1, 0.8, 0.9]), run([1.0], [0.2, 0.6])
    fig = plot_accuracy([a, b], tmp_path / "acc.png", labels=["A", "B"])
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-", "--"]
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert lines[2].get_color() == lines[3].get_color()
    assert list(lines[2].get_ydata()) == [0.2, 0.6]
    assert list(lines[3].get_ydata()) == [0.19, 0.59]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "A train acc", "A test acc", "B train acc", "B test acc"]
    assert ax.get_xlabel() == "epochs" and ax.get_ylim() == (0, 1)
    assert png_size(tmp_path / "acc.png") == (640, 480)
    (ax,) = plot_accuracy([a, b]).axes
    assert [t.get_text() for t in ax.get_legend().get_texts()][::2] == [
        "run 1 train acc", "run 2 train acc"]


def test_smoothing_is_a_trailing_moving_average():
    assert smooth_curve([3, 0, 3, 0, 3], 2).tolist() == [3, 1.5, 1.5, 1.5, 1.5]
    assert smooth_curve([3, 0, 3, 0, 3], 3).tolist() == [3, 1.5, 2, 1, 2]
    assert smooth_curve([3, 0, 3], 1).tolist() == [3, 0, 3]
    assert smooth_curve([1, 2], 10).tolist() == [1, 1.5]
    assert smooth_curve([], 3).tolist() == []
    series = np.random.default_rng(0).random(500)
    want = [series[max(0, i - 19):i + 1].mean() for i in range(500)]
    np.testing.assert_allclose(smooth_curve(series, 20), want, rtol=1e-12)

    fig = plot_loss([run([3, 0, 3, 0, 3]), run([1, 1])], smooth=3,
                    labels=["a", "b"])
    (ax,) = fig.axes
    first, second = ax.get_lines()
    assert first.get_ydata().tolist() == [3, 1.5, 2, 1, 2]
    assert list(first.get_xdata()) == [0, 1, 2, 3, 4]
    assert second.get_ydata().tolist() == [1, 1]
    assert ax.get_title() == "train loss, trailing mean over 3 iterations"


@pytest.mark.parametrize("call, error, match", [
    (lambda h: plot_loss([]), ValueError, "histories must hold at least one"),
    (lambda h: plot_loss([h, "x"]), TypeError, r"histories\[1\] must be a History"),
    (lambda h: plot_accuracy({"a": 1}), TypeError, "histories must be a History"),
    (lambda h: plot_loss([h, h], labels=["a"]), ValueError, "labels must name each of the 2"),
    (lambda h: plot_accuracy(h, labels=[1]), TypeError, r"labels\[0\] must be a string"),
    (lambda h: plot_loss(h, smooth=0), ValueError, "smooth must be a positive integer"),
    (lambda h: plot_loss(h, smooth=2.5), ValueError, "smooth must be a whole number"),
    (lambda h: plot_loss(h, smooth="3"), TypeError, "smooth must be a positive integer"),
])
def test_bad_histories_labels_smooth(history, call, error, match):
    with pytest.raises(error, match=match):
        call(history)


# -- pictures of a trained network ------------------------------------------------

@pytest.fixture(scope="module")
def trained(mnist):
    """A briefly trained 784-50-10 network and the first 1000 test rows."""
    (x_train, t_train), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, seed=0)
    mnist_fast.train(net, x_train, t_train, x_test, t_test, iters_num=300,
                     seed=0, eval_every_epoch=False)
    return net, x_test[:1000], t_test[:1000]


def test_weights_one_tile_per_hidden_unit(trained, tmp_path):
    net, _, _ = trained
    fig = plot_weights(net, tmp_path / "weights.png")
    assert png_size(tmp_path / "weights.png") == (640, 480)
    *tiles, colorbar = fig.axes
    W1 = net.params["W1"]
    m = np.abs(W1).max()
    assert len(tiles) == 50
    for j, ax in enumerate(tiles):
        (image,) = ax.images
        np.testing.assert_array_equal(image.get_array(), W1[:, j].reshape(28, 28))
        assert image.get_clim() == (-m, m)
        assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    # 8 columns (ceil(sqrt(50))), in unit order
    columns = {round(ax.get_position().x0, 6) for ax in tiles}
    assert len(columns) == 8
    assert tiles[1].get_position().x0 > tiles[0].get_position().x0
    assert tiles[8].get_position().y0 < tiles[0].get_position().y0
    assert colorbar.get_ylabel() == "weight"
    assert fig.get_suptitle() == (
        "first-layer weights W1: one 28x28 tile per hidden unit")


@pytest.mark.parametrize("hidden", [1, 7])
def test_weights_any_hidden_size(hidden):
    net = TwoLayerNet(784, hidden, 10, seed=1)
    fig = plot_weights(net)
    assert len(fig.axes) == hidden + 1
    columns = {round(ax.get_position().x0, 6) for ax in fig.axes[:-1]}
    assert len(columns) == math.ceil(math.sqrt(hidden))


def misclassified_titles(fig):
    pairs = []
    for ax in fig.axes:
        match = re.fullmatch(r"label (\d), predicted (\d)", ax.get_title())
        assert match, ax.get_title()
        pairs.append(tuple(map(int, match.groups())))
    return pairs


def test_misclassified_are_the_first_n_wrong(trained, tmp_path):
    net, x, t = trained
    predicted = net.predict(x).argmax(axis=1)
    wrong = np.flatnonzero(predicted != t)
    assert wrong.size > 20  # a briefly trained network makes mistakes
    fig = plot_misclassified(net, x, t, tmp_path / "wrong.png", n=12)
    assert png_size(tmp_path / "wrong.png") == (640, 480)
    shown = wrong[:12]
    assert len(fig.axes) == 12
    assert misclassified_titles(fig) == list(zip(t[shown], predicted[shown]))
    assert (predicted[shown] != t[shown]).sum() == len(fig.axes)
    for ax, i in zip(fig.axes, shown):
        np.testing.assert_array_equal(ax.images[0].get_array(),
                                      x[i].reshape(28, 28))
        assert ax.images[0].get_cmap().name == "gray_r"
    assert fig.get_suptitle().startswith(f"{wrong.size} of 1000 images misclassified")
    # one-hot labels and the default n give the same pictures
    fig = plot_misclassified(net, x, np.eye(10)[t])
    assert misclassified_titles(fig) == list(zip(t[wrong[:20]], predicted[wrong[:20]]))


def test_misclassified_fewer_than_n_and_none(trained):
    net, x, t = trained
    predicted = net.predict(x).argmax(axis=1)
    wrong = np.flatnonzero(predicted != t)
    rows = np.r_[wrong[:3], np.flatnonzero(predicted == t)[:40]]
    fig = plot_misclassified(net, x[rows], t[rows], n=20)
    assert misclassified_titles(fig) == list(zip(t[wrong[:3]], predicted[wrong[:3]]))
    assert "all 3" in fig.get_suptitle()
    # all correct: one empty axes that says so
    fig = plot_misclassified(net, x[:50], predicted[:50])
    (ax,) = fig.axes
    assert len(ax.images) == 0 and not ax.axison
    assert [text.get_text() for text in ax.texts] == ["no misclassified images (0 of 50)"]


def test_confusion_matrix(trained, tmp_path):
    net, x, t = trained
    predicted = net.predict(x).argmax(axis=1)
    fig = plot_confusion(net, x, t, tmp_path / "confusion.png")
    assert png_size(tmp_path / "confusion.png") == (640, 480)
    (ax,) = fig.axes
    counts = np.asarray(ax.images[0].get_array())
    assert counts.shape == (10, 10) and counts.sum() == len(x)
    want = np.zeros((10, 10), dtype=int)
    np.add.at(want, (t.astype(int), predicted), 1)
    np.testing.assert_array_equal(counts, want)
    assert np.trace(counts) == (predicted == t).sum()
    assert ax.get_xlabel() == "predicted class"
    assert ax.get_ylabel() == "true class (its accuracy)"
    ticks = [label.get_text() for label in ax.get_yticklabels()]
    assert ticks == [f"{k} ({want[k, k] / want[k].sum():.1%})" for k in range(10)]
    # each non-zero cell shows its count
    cells = {(round(text.get_position()[1]), round(text.get_position()[0])):
             int(text.get_text()) for text in ax.texts}
    assert cells == {(i, j): want[i, j] for i in range(10) for j in range(10)
                     if want[i, j]}
    correct = int(np.trace(want))
    assert ax.get_title() == (f"confusion matrix: {correct} of 1000 correct "
                              f"({correct / 1000:.2%})")
    # one-hot labels: the same matrix; a class absent from t: "n/a"
    fig = plot_confusion(net, x, np.eye(10)[t])
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), want)
    keep = t != 3
    (ax,) = plot_confusion(net, x[keep], t[keep]).axes
    assert np.asarray(ax.images[0].get_array()).sum() == keep.sum()
    assert ax.get_yticklabels()[3].get_text() == "3 (n/a)"


def test_network_pictures_save_nothing_without_path(trained, tmp_path, monkeypatch):
    net, x, t = trained
    monkeypatch.chdir(tmp_path)
    for fig in (plot_weights(net), plot_misclassified(net, x, t),
                plot_confusion(net, x, t)):
        assert isinstance(fig, matplotlib.figure.Figure)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n, error, match", [
    (0, ValueError, "n must be a positive integer, got 0"),
    (-3, ValueError, "n must be a positive integer"),
    (2.5, ValueError, "n must be a whole number"),
    ("5", TypeError, "n must be a positive integer"),
    (True, TypeError, "n must be a positive integer"),
    (None, TypeError, "n must be a positive integer"),
])
def test_bad_n(trained, n, error, match):
    net, x, t = trained
    with pytest.raises(error, match=match):
        plot_misclassified(net, x, t, n=n)


def test_image_pictures_need_784_inputs(trained):
    net = TwoLayerNet(100, 5, 10, seed=0)
    x = np.zeros((4, 100))
    t = np.zeros(4, dtype=int)
    for call in (lambda: plot_weights(net), lambda: plot_misclassified(net, x, t),
                 lambda: plot_confusion(net, x, t)):
        with pytest.raises(ValueError, match=r"net must take 784 inputs .*got "
                           r"a network whose W1 has shape \(100, 5\)"):
            call()
    with pytest.raises(TypeError, match="net must be a TwoLayerNet"):
        plot_weights("net")


def test_bad_labels_for_pictures(trained):
    net, x, t = trained
    with pytest.raises(ValueError, match=r"t must hold one label .* got shape \(999,\)"):
        plot_misclassified(net, x, t[:-1])
    with pytest.raises(ValueError, match=r"t must hold one label"):
        plot_confusion(net, x[:5], np.zeros((5, 2, 2), dtype=int))
    with pytest.raises(TypeError, match="t must hold integer classes"):
        plot_confusion(net, x[:5], np.zeros(5))
    with pytest.raises(ValueError, match="t must hold classes 0 to 9"):
        plot_confusion(net, x[:5], np.array([0, 1, 2, 3, 10]))
    with pytest.raises(ValueError, match="x"):
        plot_confusion(net, x[:, :100], t)


def test_a_figure_shows_itself_as_png_in_jupyter(history):
    # IPython displays an object through its _repr_png_ when no matplotlib
    # backend has registered a formatter (no %matplotlib inline)
    png = plot_loss(history)._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_a_title_says_which_run_it_is(history, tmp_path):
    # what mnist-fast train --plot-dir writes: which network ran
    title = "784-50-10, relu hidden layer, seed 0"
    assert plot_loss(history, title=title).axes[0].get_title() == title
    assert plot_loss(history, smooth=5, title=title).axes[0].get_title() == (
        f"{title}; train loss, trailing mean over 5 iterations")
    fig = plot_accuracy(history, tmp_path / "accuracy.png", title=title)
    assert fig.axes[0].get_title() == title
    assert png_size(tmp_path / "accuracy.png") == (640, 480)
    assert plot_accuracy(history).axes[0].get_title() == ""  # the book's
    for plot in (plot_loss, plot_accuracy):
        with pytest.raises(TypeError, match="title must be a str, got int 3"):
            plot(history, title=3)
