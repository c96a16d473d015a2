"""``mnist-fast ... --activation relu``, run as a user runs it: train,
gradcheck, bench, predict and show of a ReLU model file, info, usage errors."""

import json
import re

import numpy as np
import pytest
from PIL import Image

import mnist_fast
from mnist_fast import TwoLayerNet, train
from conftest import BACKENDS, COMPILED, png_size, run_cli

#: A short run whose epochs are short: 60 iterations of 1000 rows each,
#: evaluations after iterations 0, 60 and 120.
SHORT = ("--iters", 121, "--batch-size", 1000, "--seed", 0, "--no-progress")
EPOCH = re.compile(r"^train acc, test acc \| (0\.\d+|1\.0), (0\.\d+|1\.0)$")


@pytest.fixture(scope="module")
def reference_run(mnist):
    """The short run in this process on the NumPy backend (the book's
    code): the trained network and its History."""
    (x_train, t_train), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, activation="relu", backend="numpy", seed=0)
    history = train(net, x_train, t_train, x_test, t_test, iters_num=121,
                    batch_size=1000, seed=0)
    return net, history


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_relu_is_the_reference_run(tmp_path, backend, reference_run):
    net, history = reference_run
    result = run_cli("train", "--activation", "relu", "--backend", backend,
                      *SHORT, "--save", tmp_path / "relu.npz", "--plot-dir",
                      tmp_path / "plots", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[1].startswith(f"relu hidden layer, backend {backend}, seed 0 ")
    epochs = [line for line in lines if line.startswith("train acc")]
    assert all(EPOCH.match(line) for line in epochs), epochs
    # per-epoch accuracies identical to the book's code with the same batches
    printed = [tuple(map(float, line.split("| ")[1].split(", ")))
               for line in epochs]
    assert printed == list(zip(history.train_acc_list, history.test_acc_list))
    assert history.test_acc_list[-1] > 0.7  # it learnt (chance is 0.1)
    assert history.activation == "relu"
    saved = TwoLayerNet.load(tmp_path / "relu.npz", backend="numpy")
    assert saved.activation == "relu"
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(saved.params[key], net.params[key],
                                   rtol=0, atol=1e-9)
    for name in ("loss.png", "accuracy.png"):
        assert png_size(tmp_path / "plots" / name) == (640, 480)


@pytest.fixture(scope="module")
def relu_model(tmp_path_factory, reference_run):
    folder = tmp_path_factory.mktemp("relu-model")
    reference_run[0].save(folder / "relu.npz")
    return folder / "relu.npz"


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_reads_digits_with_a_relu_model_file(tmp_path, backend, mnist,
                                                     relu_model):
    _, (x_test, _) = mnist
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray((x_test[i].reshape(28, 28) * 255).round()
                        .astype(np.uint8)).save(paths[-1])
    result = run_cli("predict", relu_model, *paths, "--top", 2, "--backend",
                      backend, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    net = TwoLayerNet.load(relu_model, backend="numpy")
    rows = np.stack([np.asarray(Image.open(p), dtype=np.float32).reshape(-1)
                     for p in paths]) / np.float32(255.0)
    want = []
    for path, y in zip(paths, net.predict(rows)):
        best = np.argsort(-y, kind="stable")[:2]
        want.append(f"{path}: " + ", ".join(f"{d} ({y[d]:.1%})" for d in best))
    assert result.stdout.splitlines() == want


@pytest.mark.parametrize("backend", BACKENDS)
def test_show_says_the_model_files_activation(tmp_path, backend, relu_model):
    result = run_cli("show", relu_model, "--backend", backend, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{relu_model}: 784-50-10, relu hidden "
                                    "layer, test accuracy 0.")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_relu(tmp_path, backend):
    result = run_cli("gradcheck", "--activation", "relu", "--hidden", 5,
                      "--backend", backend, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"network 784-5-10, seed 0, backend {backend}, relu hidden layer; "
            "the first 3 training image(s)") in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()
            if line[:2] in ("W1", "b1", "W2", "b2")]
    assert [r[0] for r in rows] == ["W1", "b1", "W2", "b2"]
    assert all(r[-1] == "PASS" and float(r[1]) < 1e-6 for r in rows)
    assert result.stdout.splitlines()[-1].startswith("PASS")


def test_bench_relu_json(tmp_path):
    result = run_cli("bench", "--activation", "relu", "--json", "--repeats", 1,
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["activation"] == "relu" and r["n_params"] == 39760
    assert all(res["gradient"]["seconds"] > 0 for res in r["results"].values())


def test_info_says_what_runs_compiled_per_activation(tmp_path):
    info = mnist_fast.build_info()
    by_activation = info["compiled_methods_by_activation"]
    assert set(by_activation) == {"sigmoid", "relu"}
    assert by_activation["sigmoid"] == info["compiled_methods"]
    if COMPILED:
        assert {"predict", "loss", "accuracy", "gradient", "numerical_gradient",
                "train"} == set(info["compiled_methods"])
        assert by_activation["relu"] == by_activation["sigmoid"]
    else:
        assert by_activation == {"sigmoid": [], "relu": []}
    human = run_cli("info", cwd=tmp_path).stdout
    if COMPILED:
        assert (f"compiled kernels  yes: {', '.join(info['compiled_methods'])}"
                " (sigmoid and relu nets)\n") in human


@pytest.mark.parametrize("args", [
    ("train", "--activation", "tanh"),
    ("gradcheck", "--activation", "ReLU"),
    ("bench", "--activation", ""),
])
def test_a_wrong_activation_is_a_usage_error(tmp_path, args):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert ("error: argument --activation: invalid choice: "
            f"{args[-1]!r} (choose from 'sigmoid', 'relu')") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["predict", "show"])
def test_predict_and_show_take_the_activation_from_the_file(tmp_path, command):
    result = run_cli(command, "model.npz", "--activation", "relu", cwd=tmp_path)
    assert result.returncode == 2
    assert "unrecognized arguments: --activation" in result.stderr
