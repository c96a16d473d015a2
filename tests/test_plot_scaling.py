"""benchmarks/plot_scaling.py draws a real PNG from the JSON of a real (tiny)
run of benchmarks/test_bench_scaling.py, each in a subprocess."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import png_size, requires_compiled

pytest.importorskip("pytest_benchmark")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
#: Two cells of the grid, each series but PyTorch's (not a test dependency).
NODES = [node for cell in ("H50-B1", "H50-B10") for node in (
    f"test_backprop[cython-{cell}]", f"test_backprop[numpy-{cell}]",
    f"test_numerical_compiled[{cell}]", f"test_numerical_numpy_subset[{cell}]")]


def plot_module():
    spec = importlib.util.spec_from_file_location(
        "plot_scaling", BENCHMARKS / "plot_scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The JSON of a run of NODES, one round each."""
    tmp = tmp_path_factory.mktemp("scaling")
    path = tmp / "results.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--benchmark-min-rounds=1", "--benchmark-max-time=0",
         "--benchmark-warmup=off", f"--benchmark-json={path}"]
        + [f"{BENCHMARKS / 'test_bench_scaling.py'}::{n}" for n in NODES],
        cwd=tmp, check=True, capture_output=True, text=True,
        env={**os.environ, "MNIST_FAST_CACHE_DIR": str(tmp / "cache")})
    return path


@requires_compiled
def test_the_nodes_name_tests_of_the_grid(results):
    names = {b["fullname"].split("::")[-1]
             for b in json.loads(results.read_text())["benchmarks"]}
    assert names == set(NODES)


@requires_compiled
def test_series_scale_the_subset_to_every_parameter(results):
    data = json.loads(results.read_text())
    lines = plot_module().series(data)
    assert list(lines) == [50]
    assert set(lines[50]) == {("backprop", "compiled"), ("backprop", "numpy"),
                              ("numerical", "compiled"), ("numerical", "numpy")}
    medians = {(b["extra_info"]["scaling"]["method"],
                b["extra_info"]["scaling"]["engine"],
                b["extra_info"]["scaling"]["batch"]): b["stats"]["median"]
               for b in data["benchmarks"]}
    n = 784 * 50 + 50 + 50 * 10 + 10
    for batch, seconds, timed, params in lines[50]["numerical", "numpy"]:
        assert params == n and timed < n
        assert seconds == pytest.approx(medians["numerical", "numpy", batch]
                                        * n / timed, rel=1e-12)
    assert [p[0] for p in lines[50]["backprop", "compiled"]] == [1, 10]
    assert all(p[2] == p[3] == n for p in lines[50]["backprop", "compiled"])


@requires_compiled
def test_the_script_writes_a_png(results, tmp_path):
    out = tmp_path / "scaling.png"
    subprocess.run([sys.executable, str(BENCHMARKS / "plot_scaling.py"),
                    str(results), str(out)], check=True, capture_output=True)
    # one panel: a 6 x 4.5 inch figure at 100 dpi
    assert png_size(out) == (600, 450)
    assert out.stat().st_size > 20_000


def test_the_script_names_a_json_without_scaling_benchmarks(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"benchmarks": [
        {"name": "x", "extra_info": {}, "stats": {"median": 1.0}}]}))
    run = subprocess.run([sys.executable, str(BENCHMARKS / "plot_scaling.py"),
                          str(path), str(tmp_path / "x.png")],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "no scaling benchmark in the JSON" in run.stderr
    assert not (tmp_path / "x.png").exists()
