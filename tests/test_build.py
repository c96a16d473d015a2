import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnist_fast
from mnist_fast import kernels, threads
from mnist_fast.threads import ENV_NUM_THREADS, resolve_num_threads


def test_build_info_reports_what_was_built():
    info = mnist_fast.build_info()
    for key in ("compiled", "openmp", "max_threads", "cython_version",
                "numpy_version", "compiled_methods", "num_threads"):
        assert key in info
    assert info["numpy_version"] == np.__version__
    assert isinstance(info["max_threads"], int) and info["max_threads"] >= 1
    if info["compiled"]:
        assert info["import_error"] is None
        assert info["cython_version"].startswith("3.")
        assert {"predict", "loss", "accuracy"} <= set(info["compiled_methods"])
    else:
        assert info["import_error"]
        assert info["compiled_methods"] == []
    if not info["openmp"]:
        assert info["max_threads"] == 1


def run_python(code, cwd, **env):
    """``python -c code`` in a fresh process, from the folder ``cwd`` (not
    a checkout, whose source tree would be imported), with ``env`` added."""
    from conftest import cli_env
    return subprocess.run([sys.executable, "-c", code], cwd=cwd,
                          env=cli_env(**env), capture_output=True, text=True,
                          timeout=120)


def test_simd_variant_follows_the_environment(tmp_path):
    info = mnist_fast.build_info()
    assert info["simd"] in ("avx2", "baseline")
    show = "import mnist_fast; print(mnist_fast.build_info()['simd'])"
    for wanted in kernels.simd_variants():
        result = run_python(show, tmp_path, MNIST_FAST_SIMD=wanted)
        assert result.stdout.strip() == wanted, result.stderr


def test_a_wrong_simd_setting_is_an_error_not_the_numpy_backend(tmp_path):
    result = run_python("import mnist_fast", tmp_path, MNIST_FAST_SIMD="avx512")
    assert result.returncode != 0
    assert ("$MNIST_FAST_SIMD must be one of auto, avx2, baseline, got "
            "'avx512'") in result.stderr


def test_installed_package_is_compiled():
    # The package under test must be the built one, not a source tree
    # whose extensions silently failed to import.
    info = mnist_fast.build_info()
    assert info["compiled"], info["import_error"]


def test_num_threads_env_and_argument(monkeypatch):
    openmp = mnist_fast.build_info()["openmp"]
    monkeypatch.setenv(ENV_NUM_THREADS, "1")
    assert resolve_num_threads(None) == 1
    assert resolve_num_threads(2) == (2 if openmp else 1)
    monkeypatch.setenv(ENV_NUM_THREADS, "many")
    with pytest.raises(ValueError, match=ENV_NUM_THREADS):
        resolve_num_threads(None)
    monkeypatch.delenv(ENV_NUM_THREADS)
    with pytest.raises(ValueError, match="num_threads"):
        resolve_num_threads(0)
    with pytest.raises(ValueError, match="num_threads must be a whole number, got 1.5"):
        resolve_num_threads(1.5)
    for wrong in ("2", True):
        with pytest.raises(TypeError, match="num_threads must be an integer between 1 and"):
            resolve_num_threads(wrong)
    assert resolve_num_threads(2.0) == resolve_num_threads(2)


def test_openmp_default_is_capped(monkeypatch):
    # $OMP_NUM_THREADS may ask for more threads than OpenMP can create
    monkeypatch.delenv(ENV_NUM_THREADS, raising=False)
    monkeypatch.setattr(kernels, "max_threads", lambda: 10**6)
    expected = threads.MAX_THREADS if mnist_fast.build_info()["openmp"] else 1
    assert resolve_num_threads(None) == expected


def test_pytest_on_an_unbuilt_checkout_fails_saying_how_to_build(tmp_path):
    # ``python -m pytest`` in a checkout imports the source tree (no
    # compiled kernels): the run must stop, not skip every kernel test
    here = Path(__file__).resolve().parent
    (tmp_path / "mnist_fast").mkdir()
    for source in (here.parent / "mnist_fast").glob("*.py"):
        shutil.copy(source, tmp_path / "mnist_fast")
    (tmp_path / "tests").mkdir()
    shutil.copy(here / "conftest.py", tmp_path / "tests")
    (tmp_path / "tests" / "test_nothing.py").write_text(
        "def test_nothing():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "source tree" in out and "build_ext --inplace" in out, out
    assert "passed" not in out


def _package_copy(tmp_path):
    """A copy of the package under test in ``tmp_path/pkg``, to break."""
    copy = tmp_path / "pkg" / "mnist_fast"
    package = Path(mnist_fast.__file__).resolve().parent
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    # a repaired wheel's shared libraries (libgomp), found beside it
    libs = package.parent / "mnist_fast.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy.parent / libs.name)
    return copy


SHOW_BACKEND = ("import mnist_fast\n"
                "for _ in range(3):\n"
                "    net = mnist_fast.TwoLayerNet(4, 3, 2)\n"
                "print(net.engine.name)\n"
                "print(mnist_fast.build_info()['not_compiled'])\n")


def _run_copy(copy, code):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(copy.parent)
    return subprocess.run([sys.executable, "-c", code], cwd=copy.parent.parent,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not mnist_fast.build_info()["compiled"],
                    reason="the compiled kernels are not built")
def test_built_kernels_that_do_not_load_are_reported_once(tmp_path):
    copy = _package_copy(tmp_path)
    broken = next(copy.glob("_numerical.*"))
    broken.write_bytes(b"not a shared library")
    result = _run_copy(copy, SHOW_BACKEND)
    assert result.returncode == 0, result.stderr
    backend, reason = result.stdout.splitlines()
    assert backend == "numpy"
    assert reason.startswith("they were built but do not load: ImportError")
    assert broken.name in reason
    assert result.stderr.count("RuntimeWarning: mnist_fast: the compiled "
                               "kernels do not load") == 1, result.stderr


def test_an_install_that_could_not_build_them_says_why_without_warning(tmp_path):
    copy = _package_copy(tmp_path)
    for module in copy.glob("_*.*"):
        if module.suffix in (".so", ".pyd"):
            module.unlink()
    # what setup.py leaves when the build fails (.ci/run builds it so)
    (copy / "NOT_COMPILED.txt").write_text(
        "not built when mnist_fast was installed: CompileError: no working "
        "C compiler (command 'cc' failed)\n")
    result = _run_copy(copy, SHOW_BACKEND)
    assert result.returncode == 0, result.stderr
    backend, reason = result.stdout.splitlines()
    assert backend == "numpy"
    assert reason == ("not built when mnist_fast was installed: CompileError: "
                      "no working C compiler (command 'cc' failed); install a "
                      "C compiler and reinstall mnist_fast to get them")
    assert "Warning" not in result.stderr, result.stderr


def test_plot_is_there_after_import_mnist_fast_without_loading_matplotlib(tmp_path):
    code = ("import sys, mnist_fast\n"
            "assert 'matplotlib' not in sys.modules\n"
            "print(mnist_fast.plot.plot_loss.__name__)\n")
    result = run_python(code, tmp_path)
    assert result.stdout.strip() == "plot_loss", result.stderr


@pytest.mark.skipif(not mnist_fast.build_info()["compiled"] or os.name == "nt",
                    reason="compiled modules named by their ABI (not Windows)")
def test_the_modules_are_built_for_the_stable_abi_when_cython_can():
    import sysconfig

    info = mnist_fast.build_info()
    cython = tuple(int(part) for part in info["cython_version"].split(".")[:2])
    stable = cython >= (3, 1) and not sysconfig.get_config_var("Py_GIL_DISABLED")
    for module in kernels.KERNEL_MODULES + (kernels.machine,):
        assert (".abi3." in Path(module.__file__).name) == stable, module.__file__
