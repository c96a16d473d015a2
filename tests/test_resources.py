"""Threads and memory: concurrent calls, no leaks, no crash when memory runs out."""

import gc
import resource
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mnist_fast import TwoLayerNet
from conftest import BACKENDS, METHODS, call, cli_env, requires_compiled

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
def test_kernels_raise_memory_error_when_scratch_cannot_be_allocated(tmp_path):
    # The kernels allocated their scratch with an unchecked malloc inside
    # the parallel region: a NULL pointer, a segmentation fault.  Fixed
    # glibc mmap threshold: the 16 MB blocks cannot come from a heap that
    # kept an earlier, freed block.
    # (from a neutral folder: the package under test, not a source tree)
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c",
                          OUT_OF_MEMORY], cwd=tmp_path,
                         env=cli_env(MALLOC_MMAP_THRESHOLD_="131072"),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["predict", "loss", "accuracy"]
    for line in lines:
        assert "cannot allocate 160000" in line and "bytes of scratch" in line


# -- threads -----------------------------------------------------------------

WORKERS = 4
ROUNDS = 3


def every_method(net, x, t):
    return [call(net, method, x, t) for method in METHODS]


def assert_same_results(got, expected):
    """Bit for bit: the kernels and the reference are deterministic."""
    for method, a, b in zip(METHODS, got, expected):
        if isinstance(b, dict):
            assert sorted(a) == sorted(b), method
            for key in b:
                np.testing.assert_array_equal(a[key], b[key], err_msg=method)
        else:
            np.testing.assert_array_equal(a, b, err_msg=method)


def batch(seed, backend):
    """600 rows for the kernels (they then use two OpenMP threads), 60 for
    the reference (its numerical gradient is the book's slow loop)."""
    n = 600 if backend == "cython" else 60
    rng = np.random.default_rng(seed)
    return rng.random((n, 30)), rng.integers(0, 5, n)


def test_separate_networks_in_threads_give_serial_results():
    nets = [TwoLayerNet(30, 16, 5, weight_init_std=0.3, backend=backend,
                        seed=i) for i in range(WORKERS) for backend in BACKENDS]
    data = [batch(i, net.backend) for i, net in enumerate(nets)]
    serial = [every_method(net, *xt) for net, xt in zip(nets, data)]
    with ThreadPoolExecutor(max_workers=len(nets)) as pool:
        for _ in range(ROUNDS):
            concurrent = list(pool.map(every_method, nets, *zip(*data)))
            for got, expected in zip(concurrent, serial):
                assert_same_results(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_only_calls_on_one_shared_network_give_serial_results(backend):
    net = TwoLayerNet(30, 16, 5, weight_init_std=0.3, backend=backend, seed=0)
    params = {k: v.copy() for k, v in net.params.items()}
    data = [batch(i, backend) for i in range(WORKERS)]
    serial = [every_method(net, *xt) for xt in data]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for _ in range(ROUNDS):
            concurrent = list(pool.map(every_method, [net] * WORKERS, *zip(*data)))
            for got, expected in zip(concurrent, serial):
                assert_same_results(got, expected)
    for key, value in params.items():  # numerical_gradient restored them
        np.testing.assert_array_equal(net.params[key], value)


# -- memory ------------------------------------------------------------------

def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux")
@pytest.mark.parametrize("methods, calls", [
    (("loss", "gradient"), 100_000),
    (("predict", "accuracy", "numerical_gradient"), 15_000),
])
def test_many_calls_do_not_grow_memory(methods, calls):
    # 32 hidden units: a kernel's per-call scratch of (H + K) doubles, or an
    # array or memoryview kept by mistake, would leak 10+ MB over the calls.
    net = TwoLayerNet(8, 32, 3, backend=BACKENDS[-1], seed=0, num_threads=1)
    x, t = np.random.default_rng(0).random((2, 8)), np.array([0, 2])

    def work(n):
        for i in range(n):
            call(net, methods[i % len(methods)], x, t)

    work(2_000)  # warm-up: caches, allocator pools
    gc.collect()
    before = resident_bytes()
    work(calls)
    gc.collect()
    growth = resident_bytes() - before
    assert growth < 10 * 2**20, f"{calls} calls grew the process by {growth / 2**20:.1f} MB"
