"""``mnist-fast`` against a careless user: Ctrl-C at the end of a run,
output folders that cannot be written, file names the terminal cannot
print, option values out of range, wrong environment variables.

The command runs in its own process, as a user runs it; a few checks of
the functions behind it run here.
"""

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


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into a folder whatever its mode")
def test_a_read_only_folder_fails_before_training(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for args, message in (
                (["--save", locked / "model.npz"], "--save: cannot write"),
                (["--plot-dir", locked], "--plot-dir: cannot write into the folder")):
            assert_one_line_error(
                run_cli("train", "--iters", 1, *args, cwd=tmp_path),
                message, "Permission denied")
    finally:
        locked.chmod(0o700)


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


