"""Both kernel variants pass the equivalence tests.

The suite runs the variant this CPU gets (``build_info()["simd"]``); on a
CPU with AVX2+FMA this test reruns the equivalence tests against the
portable baseline kernels, in a subprocess with ``MNIST_FAST_SIMD=baseline``.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from mnist_fast import build_info
from conftest import cli_env

HERE = Path(__file__).parent
EQUIVALENCE = ["test_build.py", "test_forward.py", "test_numerical_gradient.py",
               "test_screen.py",
               "test_backprop.py"]


@pytest.mark.skipif(build_info()["simd"] != "avx2",
                    reason="this CPU runs the baseline kernels already")
def test_baseline_kernels_pass_the_equivalence_tests(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(str(HERE / name) for name in EQUIVALENCE)],
        cwd=tmp_path, env=cli_env(MNIST_FAST_SIMD="baseline"),
        capture_output=True, text=True, timeout=600,
    )
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout and " failed" not in result.stdout, tail
