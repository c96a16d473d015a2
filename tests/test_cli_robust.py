"""``mnist-fast`` against a careless user: Ctrl-C at the end of a run,
output folders that cannot be written, file names the terminal cannot
print, option values out of range, wrong environment variables.

The command runs in its own process, as a user runs it; a few checks of
the functions behind it run here.
"""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnist_fast
from mnist_fast import TwoLayerNet, kernels
from mnist_fast.files import check_writable
from mnist_fast.image import load_digit
from mnist_fast.seeding import MAX_SEED
from mnist_fast.threads import MAX_THREADS
from mnist_fast.validation import MAX_INDEX
from conftest import cli_env, run_cli

posix_signals = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def assert_one_line_error(result, *fragments, status=1):
    """Failed with ``status``, one clear line on stderr, no traceback, and
    nothing trained."""
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "train acc" not in result.stdout
    lines = result.stderr.splitlines()
    if status == 1:
        assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], result.stderr


# -- Ctrl-C once the model is trained --------------------------------------------
#
# The interrupt is a real SIGINT, sent by the process to itself at a chosen
# step of the command: this driver wraps one function (the plotting of the
# loss, the final accuracy pass...) so that it sends SIGINT on entry or
# return, prints which, and then runs the real function.  Python runs the
# SIGINT handler right after os.kill returns, so the interrupt lands in that
# step every time, with no race against a clock.

DRIVER = """
import importlib, os, signal, sys
from mnist_fast import cli

module, attribute, when = sys.argv[1:4]
owner = importlib.import_module(module)
*path, name = attribute.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, name)

def interrupt():
    print(f"SIGINT {when} {attribute}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGINT)

def step(*args, **kwargs):
    if when == "before":
        interrupt()
    result = real(*args, **kwargs)
    if when == "after":
        interrupt()
    return result

setattr(owner, name, step)
sys.exit(cli.main(sys.argv[4:]))
"""

ITERS, SEED = 30, 5


def interrupted_train(tmp_path, module, attribute, when, *options):
    model = tmp_path / "model.npz"
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, module, attribute, when, "train",
         "--iters", str(ITERS), "--seed", str(SEED), "--no-progress",
         "--save", str(model), *map(str, options)],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
        timeout=300)
    assert f"SIGINT {when} {attribute}" in result.stderr, result.stderr
    return result, model


@pytest.fixture(scope="module")
def trained_here(mnist):
    """The parameters of the same run, trained in this process."""
    (x_train, t_train), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, seed=SEED)
    mnist_fast.train(net, x_train, t_train, x_test, t_test, iters_num=ITERS,
                     seed=SEED)
    return net.params


@posix_signals
@pytest.mark.parametrize("module, attribute, when, plots", [
    # as train() returns, before the model is written
    ("mnist_fast.cli", "train", "after", False),
    # while the model file is written (inside write_atomic)
    ("numpy", "savez", "before", False),
    # the final accuracy pass
    ("mnist_fast.two_layer_net", "TwoLayerNet.accuracy", "before", False),
    # the plotting at the end: the first figure and the last picture
    ("mnist_fast.plot", "plot_loss", "before", True),
    ("mnist_fast.plot", "plot_confusion", "before", True),
], ids=["train-returns", "saving", "accuracy", "first-plot", "last-plot"])
def test_ctrl_c_after_training_still_saves_the_model(
        tmp_path, trained_here, module, attribute, when, plots):
    options = ("--plot-dir", tmp_path / "plots") if plots else ()
    result, model = interrupted_train(tmp_path, module, attribute, when, *options)
    assert result.returncode == 130, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"saved the model to {model}" in result.stdout
    assert result.stderr.splitlines()[-1] == \
        f"mnist-fast: interrupted (the model is saved in {model})"
    net = TwoLayerNet.load(model)
    for key, value in trained_here.items():
        np.testing.assert_array_equal(net.params[key], value)
    # the save was whole: no temporary file beside it
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["model.npz"]


@posix_signals
def test_ctrl_c_before_training_saves_nothing(tmp_path):
    # before the first step there is no trained model: stop at once
    result, model = interrupted_train(tmp_path, "mnist_fast.cli", "train", "before")
    assert result.returncode == 130, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == "mnist-fast: interrupted"
    assert "train acc" not in result.stdout
    assert not model.exists()


# -- output folders checked before training --------------------------------------

#: A folder that exists and that nobody, root included, can write into.
UNWRITABLE = Path("/proc/self")
needs_proc = pytest.mark.skipif(
    not UNWRITABLE.is_dir(), reason="needs Linux's /proc (a folder that even "
    "root cannot write into)")


@needs_proc
def test_check_writable_tries_a_real_file(tmp_path):
    with pytest.raises(OSError):
        check_writable(UNWRITABLE / "model.npz")
    check_writable(tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []  # its trial file is gone
    with pytest.raises(OSError):  # its temporary name is too long
        check_writable(tmp_path / ("m" * 250))


@needs_proc
@pytest.mark.parametrize("args, message", [
    (["train", "--save", UNWRITABLE / "model.npz"],
     f"--save: cannot write {UNWRITABLE / 'model.npz'} ("),
    (["train", "--plot-dir", UNWRITABLE],
     f"--plot-dir: cannot write into the folder {UNWRITABLE} ("),
    (["train", "--plot-dir", UNWRITABLE / "plots"],
     f"--plot-dir: cannot create the folder {UNWRITABLE / 'plots'} ("),
    (["train", "--save", "model.npz", "--plot-dir", UNWRITABLE / "plots"],
     "--plot-dir: cannot create the folder"),
    (["show", "model.npz", "--plot-dir", UNWRITABLE],
     f"--plot-dir: cannot write into the folder {UNWRITABLE} ("),
], ids=["save", "plot-dir", "plot-dir-new", "plot-dir-with-save", "show"])
def test_an_unwritable_folder_fails_before_training(tmp_path, args, message):
    TwoLayerNet(784, 5, 10, seed=0).save(tmp_path / "model.npz")
    result = run_cli(*args, "--iters", 1, cwd=tmp_path) if args[0] == "train" \
        else run_cli(*args, cwd=tmp_path)
    assert_one_line_error(result, message)
    assert not result.stdout  # not even the header of the run


#: Permission bits stop everyone but root.
not_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                              reason="root reads and writes a folder whatever "
                              "its mode")


@contextlib.contextmanager
def folder_with_mode(path, mode):
    """The new folder ``path`` with permission bits ``mode``, for the block."""
    path.mkdir()
    path.chmod(mode)
    try:
        yield path
    finally:
        path.chmod(0o700)


@not_root
def test_a_read_only_folder_fails_before_training(tmp_path):
    with folder_with_mode(tmp_path / "locked", 0o500) as locked:
        for args, message in (
                (["--save", locked / "model.npz"], "--save: cannot write"),
                (["--plot-dir", locked], "--plot-dir: cannot write into the folder")):
            assert_one_line_error(
                run_cli("train", "--iters", 1, *args, cwd=tmp_path),
                message, "Permission denied")


@not_root
def test_a_folder_that_cannot_be_searched_is_named_with_the_option(tmp_path):
    with folder_with_mode(tmp_path / "closed", 0o000) as closed:
        for option in ("--save", "--plot-dir"):
            assert_one_line_error(
                run_cli("train", "--iters", 1, option, closed / "inside" / "x",
                        cwd=tmp_path), f"{option}: ", "Permission denied")


def test_output_paths_that_are_not_folders_or_files(tmp_path):
    (tmp_path / "file").write_text("")
    cases = [
        (["--save", tmp_path / "file" / "model.npz"],
         f"--save: {tmp_path / 'file'} is not a folder"),
        (["--plot-dir", tmp_path / "file" / "plots"],
         f"--plot-dir: cannot create the folder {tmp_path / 'file' / 'plots'} "
         "(Not a directory)"),
        (["--save", tmp_path / ("m" * 250 + ".npz")], "--save: cannot write"),
    ]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        cases.append((["--save", tmp_path / "fifo"],
                      f"--save: {tmp_path / 'fifo'} exists and is not a regular file"))
    if os.path.exists(os.devnull) and not os.path.isfile(os.devnull):
        cases.append((["--save", os.devnull],
                      f"--save: {os.devnull} exists and is not a regular file"))
    for args, message in cases:
        assert_one_line_error(run_cli("train", "--iters", 1, *args, cwd=tmp_path),
                              message)
    assert (tmp_path / "file").read_text() == ""


# -- file names the terminal's encoding cannot print ------------------------------

def run_bytes(args, cwd, **env):
    """``python -m mnist_fast ARGS`` (bytes allowed), output as bytes."""
    return subprocess.run([sys.executable, "-m", "mnist_fast", *args], cwd=cwd,
                          env=cli_env(**env), capture_output=True, timeout=300)


#: Environments whose stdout cannot encode some file names, and the names:
#: (environment, name as bytes on disk, the name as the command prints it).
UNPRINTABLE = {
    # bytes that are not UTF-8, under a strict UTF-8 stdout
    "strict-utf8": ({"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"},
                    b"digit-\xff\xfe.png", rb"digit-\udcff\udcfe.png"),
    # a UTF-8 name under a strict ASCII stdout
    "strict-ascii": ({"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"},
                     "digit-é.png".encode(), rb"digit-\udcc3\udca9.png"),
    # Python's choice under the C locale writes a name back as its bytes
    "c-locale": ({"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""},
                 "digit-é.png".encode(), "digit-é.png".encode()),
}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
@pytest.mark.parametrize("case", list(UNPRINTABLE))
def test_predict_goes_on_past_a_name_it_cannot_print(tmp_path, mnist, case):
    env, odd, printed = UNPRINTABLE[case]
    net = TwoLayerNet(784, 20, 10, seed=1)
    net.save(tmp_path / "model.npz")
    _, (x_test, _) = mnist
    folder = os.fsencode(tmp_path)
    names = [b"first.png", odd, b"last.png"]
    for i, name in enumerate(names):
        digit = (x_test[i].reshape(28, 28) * 255).round().astype(np.uint8)
        Image.fromarray(digit).save(os.path.join(folder, name))
    paths = [os.path.join(folder, name) for name in names]
    missing = os.path.join(folder, odd.replace(b".png", b"-gone.png"))
    result = run_bytes([b"predict", b"model.npz", *paths, missing], tmp_path, **env)
    assert result.returncode == 1, result.stderr  # the missing one
    assert b"Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout + result.stderr
    for line, path, name in zip(lines, paths, [b"first.png", printed, b"last.png"]):
        shown, _, ranked = line.rpartition(b": ")
        assert shown.endswith(b"/" + name), line
        digit = int(net.predict(load_digit(os.fsdecode(path))).argmax())
        assert ranked.startswith(f"{digit} (".encode()), line
    # stderr writes what it cannot encode as escapes (Python's own choice)
    assert len(result.stderr.splitlines()) == 1
    assert b"image not found: " in result.stderr
    assert result.stderr.rstrip().endswith(b"-gone.png")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
@pytest.mark.parametrize("case", ["strict-utf8", "strict-ascii"])
def test_train_saves_into_a_name_it_cannot_print(tmp_path, case):
    env, odd, printed = UNPRINTABLE[case]
    model = os.path.join(os.fsencode(tmp_path), odd.replace(b".png", b".npz"))
    plots = os.path.join(os.fsencode(tmp_path), odd.replace(b".png", b"-plots"))
    # the figures' folder (its 'wrote' line) once: Matplotlib takes seconds
    with_plots = [b"--plot-dir", plots] if case == "strict-utf8" else []
    result = run_bytes([b"train", b"--iters", b"2", b"--seed", b"0", b"--save",
                        model, *with_plots], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    saved = printed.replace(b".png", b".npz")
    assert b"saved the model to " + os.fsencode(tmp_path) + b"/" + saved in result.stdout
    assert TwoLayerNet.load(os.fsdecode(model)).hidden_size == 50
    if with_plots:
        shown = os.fsencode(tmp_path) + b"/" + printed.replace(b".png", b"-plots")
        assert b"wrote " + shown + b"/loss.png, " in result.stdout
        assert os.path.getsize(os.path.join(plots, b"loss.png")) > 0
    assert result.stdout.splitlines()[-1].startswith(b"done: ")


def test_no_character_stops_the_streams(tmp_path):
    # the CLI's own text may not be ASCII either (the 'µs' of the timings)
    code = ("import sys; from mnist_fast.console import never_refuse; "
            "never_refuse(); print('412 \\u00b5s', sys.argv[1]); "
            "print('412 \\u00b5s', sys.argv[1], file=sys.stderr)")
    name = "digit-é.png".encode()
    for env, out, err in (
            ({"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""},
             b"412 \\xb5s " + name, b"412 \\xb5s digit-\\udcc3\\udca9.png"),
            ({"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"},
             b"412 \\xb5s digit-\\udcc3\\udca9.png", None),
            ({"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:replace"},
             # the user's own choice of handler is kept
             "412 µs".encode() + b" " + name, None)):
        result = subprocess.run([sys.executable, "-c", code, name], cwd=tmp_path,
                                env=cli_env(**env), capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout == out + b"\n"
        if err is not None:
            assert result.stderr.endswith(err + b"\n"), result.stderr


# -- option values out of range: usage errors naming the option -------------------

OUT_OF_RANGE = [
    (["train", "--threads", MAX_THREADS + 1],
     f"argument --threads: threads must be an integer between 1 and "
     f"{MAX_THREADS}, got {MAX_THREADS + 1}"),
    (["train", "--threads", 0], "argument --threads: threads must be an integer "
     f"between 1 and {MAX_THREADS}, got 0"),
    (["train", "--threads", "2.5"], "argument --threads: threads must be a whole number"),
    (["bench", "--threads", 10**6], "argument --threads: threads must be an integer"),
    (["train", "--batch-size", MAX_INDEX + 1],
     f"argument --batch-size: batch-size must be an integer between 1 and "
     f"{MAX_INDEX}, got {MAX_INDEX + 1}"),
    (["train", "--batch-size", -5], "argument --batch-size: batch-size must be"),
    (["train", "--iters", "1.5"], "argument --iters: iters must be a whole number"),
    (["train", "--iters", "many"], "argument --iters: expected a number, got 'many'"),
    (["train", "--seed", MAX_SEED + 1],
     f"argument --seed: seed must be an integer between 0 and {MAX_SEED}"),
    (["gradcheck", "--seed", -1], "argument --seed: seed must be an integer between 0"),
    (["train", "--hidden", 0], "argument --hidden: hidden must be a positive integer"),
    (["train", "--lr", "-0.1"], "argument --lr: lr must be > 0.0, got -0.1"),
    (["train", "--lr", "1e999"], "argument --lr: lr must be finite, got inf"),
    (["train", "--lr", "nan"], "argument --lr: lr must be finite, got nan"),
    # argparse reads "-1e-9" after an option as an option itself: "=" form
    (["gradcheck", "--rtol=-1e-9"], "argument --rtol: rtol must be >= 0.0"),
    (["gradcheck", "--floor", "0"], "argument --floor: floor must be > 0.0"),
    (["gradcheck", "--samples", 60001],
     "argument --samples: samples must be an integer between 1 and 60000, got "
     "60001 (60000 is the number of training images)"),
    (["bench", "--repeats", 0], "argument --repeats: repeats must be a positive integer"),
    (["predict", "m.npz", "x.png", "--top", -1], "argument --top: top must be"),
]


@pytest.mark.parametrize("args, message", OUT_OF_RANGE,
                         ids=[" ".join(map(str, args)) for args, _ in OUT_OF_RANGE])
def test_out_of_range_options_are_usage_errors(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: mnist-fast "), result.stderr
    assert message in result.stderr.splitlines()[-1], result.stderr
    for api_name in ("num_threads", "batch_size", "iters_num", "learning_rate"):
        assert api_name not in result.stderr


def test_the_options_limits_are_the_apis(mnist):
    # the options' bounds are where the API's are: the largest value passes
    # (batch_size's would allocate its workspace), one more is refused
    (x_train, t_train), (x_test, t_test) = mnist
    assert TwoLayerNet(784, 5, 10, num_threads=MAX_THREADS).num_threads >= 1
    net = TwoLayerNet(784, 5, 10, seed=MAX_SEED, num_threads=1)
    for bad in ({"num_threads": MAX_THREADS + 1}, {"seed": MAX_SEED + 1}):
        with pytest.raises(ValueError):
            TwoLayerNet(784, 5, 10, **bad)
    with pytest.raises(ValueError, match="batch_size"):
        mnist_fast.train(net, x_train, t_train, x_test, t_test, iters_num=0,
                         batch_size=MAX_INDEX + 1)


# -- environment variables ----------------------------------------------------------

@pytest.mark.parametrize("value", ["avx", "AVX512", "sse2", "none", "1"])
def test_a_wrong_simd_value_stops_every_entry_naming_the_variable(tmp_path, value):
    message = (f"$MNIST_FAST_SIMD must be one of auto, avx2, baseline, got "
               f"{value!r}")
    env = cli_env(MNIST_FAST_SIMD=value)
    for args in (["-c", "import mnist_fast; print(mnist_fast.build_info())"],
                 ["-m", "mnist_fast", "info"],
                 ["-m", "mnist_fast", "train", "--iters", "1"]):
        result = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stdout
        assert result.stdout == ""  # nothing ran on the NumPy code
        assert result.stderr.splitlines()[-1] == f"ImportError: {message}"
        assert "reinstall" not in result.stderr.lower()


@pytest.mark.parametrize("value", ["AVX2", " baseline ", "Auto", ""])
def test_simd_value_case_and_spaces_do_not_matter(tmp_path, value):
    result = subprocess.run(
        [sys.executable, "-c", "import mnist_fast; print(mnist_fast.build_info()['simd'])"],
        cwd=tmp_path, env=cli_env(MNIST_FAST_SIMD=value), capture_output=True,
        text=True, timeout=120)
    wanted = value.strip().lower()
    if wanted in ("", "auto"):
        wanted = kernels.simd_variants()[-1]
    if wanted not in kernels.simd_variants():
        assert result.returncode == 1
        return
    assert result.stdout.strip() == wanted, result.stderr


def test_a_variant_this_machine_cannot_run_is_an_import_error(tmp_path):
    missing = [name for name in kernels.SIMD_CHOICES[1:]
               if name not in kernels.simd_variants()]
    if not missing:
        pytest.skip(f"this build and CPU run every variant ({kernels.SIMD_CHOICES[1:]})")
    for name in missing:
        result = subprocess.run([sys.executable, "-c", "import mnist_fast"],
                                cwd=tmp_path, env=cli_env(MNIST_FAST_SIMD=name),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert f"ImportError: $MNIST_FAST_SIMD={name}: " in result.stderr


def test_a_simd_variant_without_compiled_kernels_is_an_import_error(tmp_path):
    # the package as an sdist unpacked without building: its .py files only
    source = Path(mnist_fast.__file__).resolve().parent
    copy = tmp_path / "mnist_fast"
    copy.mkdir()
    for path in source.glob("*.py"):
        (copy / path.name).write_bytes(path.read_bytes())
    code = ("import mnist_fast; i = mnist_fast.build_info(); "
            "print(i['compiled'], mnist_fast.TwoLayerNet(3, 2, 2).backend)")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    for value, status, last_line in (
            ("auto", 0, None),  # the documented fallback: NumPy, said by build_info
            ("avx2", 1, "ImportError: $MNIST_FAST_SIMD=avx2 asks for the compiled "
                        "kernels, which did not import ("),
            ("baseline", 1, "ImportError: $MNIST_FAST_SIMD=baseline asks for the "
                            "compiled kernels")):
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                                env=dict(env, MNIST_FAST_SIMD=value),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == status, result.stderr
        if last_line is None:
            assert result.stdout == "False numpy\n"
        else:
            assert result.stderr.splitlines()[-1].startswith(last_line)
            assert "reinstall" not in result.stderr.lower()


@pytest.mark.parametrize("value", ["abc", "0", "1025", "1.5", "-3", "2 threads"])
def test_a_wrong_thread_count_in_the_environment_names_the_variable(tmp_path, value):
    env = cli_env(MNIST_FAST_NUM_THREADS=value)
    for args in (["info"], ["train", "--iters", "1"]):
        result = subprocess.run([sys.executable, "-m", "mnist_fast", *args],
                                cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=120)
        assert_one_line_error(
            result, "mnist-fast: error: $MNIST_FAST_NUM_THREADS must be an "
            f"integer between 1 and {MAX_THREADS}, got ")
