"""Threads and memory: concurrent calls, no leaks, no crash when memory runs out."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mnist_fast
from conftest import requires_compiled

OUT_OF_MEMORY = textwrap.dedent("""
    import resource
    import numpy as np
    from mnist_fast import TwoLayerNet

    warm = TwoLayerNet(1, 3, 2, backend="cython", num_threads=1)
    x, t = np.ones((1, 1)), np.array([0])
    warm.predict(x)  # start the OpenMP runtime while memory lasts
    # 2,000,000 hidden units: each kernel wants 16 MB of scratch
    net = TwoLayerNet(1, 2_000_000, 2, backend="cython", num_threads=1)
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS,
                       (size + 4 * 2**20, resource.RLIM_INFINITY))
    for method, args in (("predict", (x,)), ("loss", (x, t)),
                         ("accuracy", (x, t))):
        try:
            getattr(net, method)(*args)
        except MemoryError as exc:
            print(method, exc)
""")


@requires_compiled
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux")
def test_kernels_raise_memory_error_when_scratch_cannot_be_allocated():
    # The kernels allocated their scratch with an unchecked malloc inside
    # the parallel region: a NULL pointer, a segmentation fault.  Fixed
    # glibc mmap threshold: the 16 MB blocks cannot come from a heap that
    # kept an earlier, freed block.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072",
               PYTHONPATH=str(Path(mnist_fast.__file__).parent.parent))
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c",
                          OUT_OF_MEMORY], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["predict", "loss", "accuracy"]
    for line in lines:
        assert "cannot allocate 160000" in line and "bytes of scratch" in line
