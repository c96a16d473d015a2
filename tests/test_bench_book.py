"""mnist_fast.bench_book: the figures of mnist-fast bench --book/--loaded are
real measurements of both classes, beside a process that really runs."""

import os
import time

import pytest

from mnist_fast.bench_book import CALLS, competing_process, learners_benchmark
from conftest import requires_compiled


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_the_competing_process_burns_a_core_and_is_ended():
    with competing_process() as pid:
        # CPU-bound, not sleeping: it burns CPU time, however busy the
        # machine (the deadline only stops a process that never runs)
        before, deadline = cpu_seconds(pid), time.monotonic() + 60
        while cpu_seconds(pid) - before < 0.2:
            assert time.monotonic() < deadline, "it uses no CPU"
            time.sleep(0.05)
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or open(
        f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


@requires_compiled
def test_learners_benchmark_times_both_classes_loaded():
    r = learners_benchmark(script=False, loaded=True, repeats=1)
    assert r["loaded"] and r["script"] == {}
    for classes in ("mnist_fast", "book"):
        assert set(r["per_call"][classes]) == set(CALLS)
        assert all(0 < s < 60 for s in r["per_call"][classes].values())


@requires_compiled
def test_learners_benchmark_of_relu_times_ch05s_classes():
    r = learners_benchmark(script=False, repeats=1, activation="relu")
    assert r["activation"] == "relu"
    assert r["script_name"] == "ch05_train_neuralnet"
    for classes in ("mnist_fast", "book"):
        assert set(r["per_call"][classes]) == set(CALLS)


def test_learners_benchmark_names_a_wrong_activation():
    with pytest.raises(ValueError, match="activation must be one of 'sigmoid', "
                                         "'relu', got 'tanh'"):
        learners_benchmark(script=False, activation="tanh")
