"""The ``mnist-fast`` command, run as a user runs it: predict, gradcheck, bench, info, errors."""

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnist_fast
from mnist_fast import TwoLayerNet
from mnist_fast.image import to_mnist
from conftest import BACKENDS, cli_env, run_cli

SUBCOMMANDS = ("train", "gradcheck", "bench", "predict", "info")


def assert_user_error(result, *fragments, status=1):
    """Failed with ``status`` and one clear message, no traceback."""
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_help_on_every_subcommand(tmp_path):
    top = run_cli("--help", cwd=tmp_path)
    assert top.returncode == 0
    for name in SUBCOMMANDS:
        assert name in top.stdout
        sub = run_cli(name, "--help", cwd=tmp_path)
        assert sub.returncode == 0, sub.stderr
        assert sub.stdout.startswith(f"usage: mnist-fast {name}")
    assert run_cli("--version", cwd=tmp_path).stdout.strip() == \
        f"mnist-fast {mnist_fast.__version__}"


@pytest.mark.parametrize("args, message", [
    (["train", "--iters", "-1"], "argument --iters: iters must be an integer >= 0, got -1"),
    (["train", "--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["train", "--lr", "0"], "argument --lr: lr must be > 0.0, got 0.0"),
    (["train", "--batch-size", "2.5"], "batch-size must be a whole number, got 2.5"),
    (["train", "--backend", "torch"], "argument --backend: invalid choice: 'torch'"),
    (["gradcheck", "--samples", "0"], "samples must be a positive integer, got 0"),
    (["predict", "model.npz"], "the following arguments are required: IMAGE"),
    (["teach"], "invalid choice: 'teach'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    assert_user_error(run_cli(*args, cwd=tmp_path), message, status=2)


def test_output_paths_are_checked_before_training(tmp_path):
    result = run_cli("train", "--save", tmp_path / "no" / "model.npz", cwd=tmp_path)
    assert_user_error(result, f"--save: the folder {tmp_path / 'no'} does not exist")
    assert "train acc" not in result.stdout
    (tmp_path / "file").write_text("")
    assert_user_error(run_cli("train", "--plot-dir", tmp_path / "file", cwd=tmp_path),
                      "--plot-dir:", "exists and is not a folder")
    assert_user_error(run_cli("train", "--save", tmp_path, cwd=tmp_path),
                      "is a folder; give a file name")


def test_diverging_training_is_an_error(tmp_path):
    result = run_cli("train", "--iters", 20, "--lr", "1.7e308", "--seed", 0,
                     "--no-progress", cwd=tmp_path)
    assert_user_error(result, "training diverged at iteration", "smaller learning_rate")


# -- predict ----------------------------------------------------------------------

def _predictions(stdout):
    """{file name: [(digit, 'pp.p%'), ...]} from predict's output."""
    out = {}
    for line in stdout.splitlines():
        path, _, ranked = line.rpartition(": ")
        out[Path(path).name] = re.findall(r"(\d) \((\d+\.\d%)\)", ranked)
    return out


@pytest.fixture(scope="module")
def test_digits():
    _, (x, t) = mnist_fast.load_mnist(normalize=False, flatten=False)
    return x[:8, 0], t[:8]


def test_predict_mnist_images_as_net_predict_does(cli_trained, test_digits, tmp_path):
    _, folder = cli_trained
    x, _ = test_digits
    paths = []
    for i, digit in enumerate(x):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(digit).save(paths[-1])
    result = run_cli("predict", folder / "model.npz", *paths, "--top", 3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = _predictions(result.stdout)
    net = TwoLayerNet.load(folder / "model.npz")
    rows = x.reshape(-1, 784).astype(np.float32)
    rows /= 255.0  # load_mnist's rows
    for i, y in enumerate(net.predict(rows)):
        best = np.argsort(-y, kind="stable")[:3]
        assert got[f"digit{i}.png"] == [(str(d), f"{y[d]:.1%}") for d in best]


def test_predict_a_drawn_digit(cli_trained, test_digits, tmp_path):
    # the test digits drawn big, dark on white, off centre, as JPEG
    _, folder = cli_trained
    x, t = test_digits
    net = TwoLayerNet.load(folder / "model.npz")
    paths, expected = [], []
    for i, digit in enumerate(x):
        big = np.asarray(Image.fromarray(digit).resize((150, 150), Image.Resampling.BICUBIC))
        page = np.full((320, 280), 255, np.uint8)
        page[20:170, 100:250] = 255 - big
        paths.append(tmp_path / f"drawn{i}.jpg")
        Image.fromarray(page).convert("RGB").save(paths[-1], quality=90)
        expected.append(str(int(net.predict(to_mnist(page)).argmax())))
    result = run_cli("predict", folder / "model.npz", *paths, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = [_predictions(result.stdout)[p.name][0][0] for p in paths]
    assert sum(g == e for g, e in zip(got, expected)) >= 7  # JPEG noise aside
    assert sum(g == str(label) for g, label in zip(got, t)) >= 6


def test_predict_names_the_files_it_cannot_read(cli_trained, test_digits, tmp_path):
    _, folder = cli_trained
    good = tmp_path / "good.png"
    Image.fromarray(test_digits[0][0]).save(good)
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture")
    result = run_cli("predict", folder / "model.npz", bad, good, tmp_path / "gone.png",
                     cwd=tmp_path)
    assert_user_error(result, f"{bad}: not an image that can be read",
                      f"image not found: {tmp_path / 'gone.png'}")
    assert list(_predictions(result.stdout)) == ["good.png"]
    assert_user_error(run_cli("predict", tmp_path / "none.npz", good, cwd=tmp_path),
                      f"model file not found: {tmp_path / 'none.npz'}")
    assert_user_error(run_cli("predict", bad, good, cwd=tmp_path),
                      f"{bad}: not a mnist_fast model file")


# -- gradcheck, bench, info ----------------------------------------------------------

def test_gradcheck_table_and_verdict(tmp_path):
    # a hidden layer of 5 keeps the numerical gradient quick
    result = run_cli("gradcheck", "--hidden", 5, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "network 784-5-10, seed 0" in result.stdout
    assert "the first 3 training image(s)" in result.stdout
    header = lines.index(next(line for line in lines if line.startswith("param")))
    assert lines[header].split() == ["param", "mean", "|diff|", "max", "|diff|",
                                     "max", "rel", "err", "result"]
    rows = [line.split() for line in lines[header + 1:header + 5]]
    assert [r[0] for r in rows] == ["W1", "b1", "W2", "b2"]
    for r in rows:
        mean_abs, max_abs, max_rel = map(float, r[1:4])
        assert 0 < mean_abs <= max_abs < 1e-6 and max_rel <= 1e-3 and r[4] == "PASS"
    assert "tolerance: max rel err <= 0.001, where rel err = |num - back| / " \
           "max(|num|, |back|, 0.0001)" in result.stdout
    assert lines[-1].startswith("PASS")

    strict = run_cli("gradcheck", "--hidden", 5, "--rtol", "1e-12", cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[-1].startswith("FAIL: ")


def test_bench_json(tmp_path):
    result = run_cli("bench", "--json", "--repeats", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["layer_sizes"] == [784, 50, 10] and r["n_params"] == 39760
    assert r["batch_size"] == 100 and r["repeats"] == 1
    assert list(r["results"]) == BACKENDS
    numerical = r["results"]["numpy"]["numerical_gradient"]
    assert numerical["estimated"] and 0 < numerical["params_timed"] < 39760
    for backend, res in r["results"].items():
        assert res["gradient"]["seconds"] > 0 and not res["gradient"]["estimated"]
        assert r["speedups"]["backprop_vs_numerical"][backend] == pytest.approx(
            res["numerical_gradient"]["seconds"] / res["gradient"]["seconds"])
    if "cython" in r["results"]:
        assert r["speedups"]["cython_vs_numpy"]["gradient"] == pytest.approx(
            r["results"]["numpy"]["gradient"]["seconds"]
            / r["results"]["cython"]["gradient"]["seconds"])
    assert r["build_info"]["version"] == mnist_fast.__version__
    assert r["peak_rss_mib"] > 50  # MNIST alone is 200 MB as float32


def test_bench_table(tmp_path):
    result = run_cli("bench", "--repeats", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "time per batch of 100 MNIST rows, 784-50-10 (39,760 parameters)" in out
    assert re.search(r"^numpy +\d.* s \* +\d.*s +[\d,]+x$", out, re.M), out
    assert re.search(r"^\* estimated: the central differences of \d+ of the 39,760 "
                     r"parameters timed and scaled up \(--full times them all\)$", out, re.M)
    assert re.search(r"^machine: .*CPU.*mnist_fast", out, re.M)
    assert re.search(r"^peak RSS: \d+ MiB$", out, re.M)


def test_info(tmp_path):
    human = run_cli("info", cwd=tmp_path)
    assert human.returncode == 0
    info = mnist_fast.build_info()
    assert human.stdout.startswith(f"mnist_fast {info['version']}\n")
    assert ("compiled kernels  yes: predict" if info["compiled"] else
            "compiled kernels  no") in human.stdout
    assert f"NumPy {info['numpy_version']}" in human.stdout
    for lib in info["blas"]:
        assert f"{lib['library']} ({lib['num_threads']} threads" in human.stdout
    as_json = json.loads(run_cli("info", "--json", cwd=tmp_path).stdout)
    assert as_json == info


def _installed():
    """Whether the mnist_fast under test was installed (by pip: its
    metadata has an INSTALLER), not a tree built in place, which may hold
    the egg-info of a build."""
    try:
        dist = importlib.metadata.distribution("mnist_fast")
    except importlib.metadata.PackageNotFoundError:
        return False
    where = Path(dist.locate_file("mnist_fast/__init__.py")).resolve()
    return (dist.read_text("INSTALLER") is not None
            and where == Path(mnist_fast.__file__).resolve())


def test_console_script(tmp_path):
    entry = [e for e in importlib.metadata.entry_points(group="console_scripts")
             if e.name == "mnist-fast"]
    if not (entry and _installed()):
        pytest.skip("mnist_fast is not installed (built in place)")
    assert entry[0].value == "mnist_fast.cli:main"
    script = shutil.which("mnist-fast", path=str(Path(sys.executable).parent))
    assert script, "the mnist-fast script is not beside python"
    result = subprocess.run([script, "info"], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("mnist_fast ")


def test_running_out_of_memory_is_one_line_saying_what(tmp_path):
    result = run_cli("train", "--hidden", 2_000_000_000, "--iters", 1,
                     "--no-progress", cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    # NumPy's own account of the allocation, then what to change
    assert line.startswith("mnist-fast: error: not enough memory (Unable to "
                           "allocate"), line
    assert "(784, 2000000000)" in line
    assert line.endswith(": a smaller --hidden or --batch-size needs less")
