"""``mnist-fast train``, run as a user runs it: output, files, seeds, Ctrl-C."""

import os
import re
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mnist_fast
from mnist_fast import TwoLayerNet
from conftest import cli_env, png_size, run_cli

EPOCH = re.compile(r"^train acc, test acc \| (0\.\d+|1\.0), (0\.\d+|1\.0)$")
SUMMARY = re.compile(
    r"^(?P<what>done|interrupted \(Ctrl-C\) after (?P<n>\d+) of \d+ iterations): "
    r"train acc (?P<train>[01]\.\d{4}), test acc (?P<test>[01]\.\d{4}) \| "
    r"(?P<iters>\d+) iterations in \d+\.\d s \([\d.]+ it/s\)$")


@pytest.fixture
def short_run(cli_trained):
    return cli_trained


def test_prints_the_books_lines_and_a_summary(short_run):
    result, _ = short_run
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == ("mnist-fast train: 784-50-10, 1200 iterations, batch 100, "
                        "lr 0.1, backprop gradient")
    assert "seed 7 (repeat with --seed 7); 60000 training images, an epoch is 600 " \
           "iterations" in lines[1]
    epochs = [line for line in lines if line.startswith("train acc")]
    assert len(epochs) == 2  # after iterations 0 and 600
    assert all(EPOCH.match(line) for line in epochs), epochs
    first_test_acc = float(epochs[0].split(", ")[-1])
    assert first_test_acc < 0.3  # untrained: about chance
    summary = SUMMARY.match(lines[-1])
    assert summary, lines[-1]
    assert summary["what"] == "done" and summary["iters"] == "1200"
    assert float(summary["test"]) > 0.85


def test_writes_the_two_figures(short_run):
    _, folder = short_run
    for name in ("loss.png", "accuracy.png"):
        assert png_size(folder / "plots" / name) == (640, 480)


def test_writes_the_trained_networks_pictures(short_run):
    _, folder = short_run
    for name in ("weights.png", "misclassified.png", "confusion.png"):
        assert png_size(folder / "plots" / name) == (640, 480)


def test_show_prints_per_class_accuracy_and_the_confusion_matrix(
        short_run, mnist, tmp_path):
    _, folder = short_run
    result = run_cli("show", folder / "model.npz", "--plot-dir", tmp_path,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    net = TwoLayerNet.load(folder / "model.npz")
    _, (x_test, t_test) = mnist
    predicted = net.predict(x_test).argmax(axis=1)
    accuracy = np.mean(predicted == t_test)
    assert f"test accuracy {accuracy:.4f}" in lines[0]
    per_class = next(line for line in lines if line.startswith("per class: "))
    for k in (0, 5, 9):
        rate = np.mean(predicted[t_test == k] == k)
        assert f"{k} {rate:.1%}" in per_class
    header = lines.index("confusion matrix (rows: the true digit, columns: "
                         "the predicted one)")
    rows = np.array([line.split()[1:] for line in lines[header + 2:header + 12]],
                    dtype=int)
    assert rows.sum() == 10000
    assert np.array_equal(np.diag(rows), np.bincount(
        t_test[predicted == t_test], minlength=10))
    for name in ("weights.png", "misclassified.png", "confusion.png"):
        assert png_size(tmp_path / name) == (640, 480)


def test_show_refuses_a_model_that_is_not_mnist_sized(tmp_path):
    TwoLayerNet(20, 5, 3, seed=0).save(tmp_path / "small.npz")
    result = run_cli("show", tmp_path / "small.npz", cwd=tmp_path)
    assert result.returncode == 1
    assert "small.npz: a 20-5-3 network; show needs 784 inputs and 10 classes" \
        in result.stderr


def test_saved_model_is_what_was_trained(short_run, mnist):
    result, folder = short_run
    _, (x_test, t_test) = mnist
    net = TwoLayerNet.load(folder / "model.npz")
    assert (net.input_size, net.hidden_size, net.output_size) == (784, 50, 10)
    printed = SUMMARY.match(result.stdout.splitlines()[-1])["test"]
    assert f"{net.accuracy(x_test, t_test):.4f}" == printed


def test_same_seed_gives_the_same_run(tmp_path, mnist):
    runs = [run_cli("train", "--iters", 60, "--seed", 3, "--save",
                    tmp_path / f"model{i}.npz", cwd=tmp_path) for i in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
        # stdout is a pipe: no progress bar, though --no-progress was not given
        assert "\r" not in r.stdout and "it/s]" not in r.stdout + r.stderr
    outputs = [r.stdout.splitlines() for r in runs]
    assert outputs[0][:-2] == outputs[1][:-2]  # all but the file and timing lines
    assert [o[-1].split(" | ")[0] for o in outputs] == [outputs[0][-1].split(" | ")[0]] * 2
    nets = [TwoLayerNet.load(tmp_path / f"model{i}.npz") for i in range(2)]
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(nets[0].params[key], nets[1].params[key])

    # ... and the same as mnist_fast.train with that seed, in this process
    (x_train, t_train), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, seed=3)
    mnist_fast.train(net, x_train, t_train, x_test, t_test, iters_num=60, seed=3)
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(net.params[key], nets[0].params[key])


def test_epochs_are_whole_numbers_of_iterations_with_batch_128(tmp_path):
    # 60000 / 128 = 468.75: the book's float test `i % 468.75 == 0` fires
    # only at i = 0 and 1875; epochs are every 468 iterations here
    result = run_cli("train", "--iters", 469, "--batch-size", 128, "--seed", 0,
                     "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "an epoch is 468 iterations" in result.stdout
    epochs = [line for line in result.stdout.splitlines() if EPOCH.match(line)]
    assert len(epochs) == 2  # after iterations 0 and 468


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_and_keeps_what_was_learnt(tmp_path, mnist):
    plots, model = tmp_path / "plots", tmp_path / "model.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnist_fast", "train", "--iters", "1000000",
         "--no-progress", "--seed", "0", "--plot-dir", str(plots),
         "--save", str(model)],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        head = []
        for line in proc.stdout:
            head.append(line)
            if line.startswith("train acc, test acc |"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(head) + out + err
    assert "Traceback" not in err
    summary = SUMMARY.match(out.splitlines()[-1])
    assert summary, out
    assert summary["what"].startswith("interrupted (Ctrl-C) after")
    assert 1 <= int(summary["n"]) < 1000000
    assert (f"wrote {plots / 'loss.png'}, {plots / 'accuracy.png'}, "
            f"{plots / 'weights.png'}") in out
    for name in ("loss.png", "accuracy.png"):
        assert png_size(plots / name) == (640, 480)
    _, (x_test, t_test) = mnist
    net = TwoLayerNet.load(model)
    assert f"{net.accuracy(x_test, t_test):.4f}" == summary["test"]


def _run_in_terminal(*args, cwd, timeout=120):
    """Run mnist-fast with a pseudo-terminal as stdout; return all it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "mnist_fast", *map(str, args)],
                            cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1.0)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other end is closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals")
def test_progress_bar_on_a_terminal_only(tmp_path):
    shown = _run_in_terminal("train", "--iters", 100, "--seed", 0, cwd=tmp_path)
    assert re.search(r"\d+/100 \[.*it/s, loss \d\.\d{4}, train acc 0\.\d{4}, "
                     r"test acc 0\.\d{4}\]", shown), shown
    # the book's line, written above the bar (which is cleared first: \r)
    assert re.search(r"(^|\r)train acc, test acc \| 0\.\d+, 0\.\d+\r?$", shown, re.M)
    quiet = _run_in_terminal("train", "--iters", 20, "--seed", 0, "--no-progress",
                             cwd=tmp_path)
    assert "it/s]" not in quiet and "train acc, test acc |" in quiet
