"""The thread policy (mnist_fast/threads.py): a count the user chose is kept;
otherwise each kind of call runs on the count its recent calls timed faster."""

import time

import numpy as np
import pytest

import mnist_fast
from mnist_fast.threads import (ENV_NUM_THREADS, PROBE_INTERVAL, PROBE_MAX_WAIT,
                                SAMPLES, AdaptiveThreads, FixedThreads,
                                thread_policy)
from conftest import requires_compiled


def test_a_chosen_count_is_fixed(monkeypatch):
    monkeypatch.delenv(ENV_NUM_THREADS, raising=False)
    assert isinstance(thread_policy(1), FixedThreads)
    assert not thread_policy(2).adaptive and thread_policy(2).num_threads >= 1
    monkeypatch.setenv(ENV_NUM_THREADS, "2")
    assert not thread_policy(None).adaptive


@requires_compiled
def test_the_default_adapts_when_there_are_threads_to_choose(monkeypatch):
    monkeypatch.delenv(ENV_NUM_THREADS, raising=False)
    policy = thread_policy(None)
    assert policy.adaptive == (policy.num_threads > 1)
    info = mnist_fast.build_info()["thread_policy"]
    assert info.startswith("adaptive" if policy.adaptive else "fixed")
    net = mnist_fast.TwoLayerNet(4, 3, 2)
    assert net.engine.threads.adaptive == policy.adaptive
    assert not mnist_fast.TwoLayerNet(4, 3, 2, num_threads=1).engine.threads.adaptive


def counts_used(policy, seconds, calls, kind=("kernel", 100)):
    """Run ``calls`` calls of a kernel that sleeps ``seconds[n]`` on ``n``
    threads (n = 1 or 4); the counts the policy gave."""
    used = []

    def kernel(n):
        time.sleep(seconds[n])
        used.append(n)

    for _ in range(calls):
        policy.run(kind, 4, kernel)
    return used


#: A busy machine: 4 threads wait for the one another program delays.
BUSY = {4: 2e-3, 1: 1e-4}


def test_adaptive_runs_the_faster_count_and_tries_the_other_now_and_then():
    policy = AdaptiveThreads(4)
    used = counts_used(policy, BUSY, calls=200)
    burst = [4] * SAMPLES
    assert used[:2 * SAMPLES] == burst + [1] * SAMPLES  # each count timed
    tries = [i for i, n in enumerate(used) if n == 4][SAMPLES:]
    # one burst to confirm the switch, then as rare as the budget allows: a
    # count ~20 times slower, once per SAMPLES * (20 - 1) / PROBE_BUDGET
    # calls (more than the 200 made here; one more if the machine delays a
    # call)
    start = 2 * SAMPLES + PROBE_INTERVAL[0]
    assert tries[:SAMPLES] == list(range(start, start + SAMPLES))
    assert len(tries) <= 2 * SAMPLES


def test_adaptive_tries_a_close_count_at_growing_intervals():
    policy = AdaptiveThreads(4)
    used = []

    def kernel(n):  # 1.0 ms against 1.02 ms: tries limited by the interval
        time.sleep(1e-3 if n == 1 else 1.02e-3)
        used.append(n)

    for _ in range(150):
        policy.run(("close", 100), 4, kernel)
    switches = np.flatnonzero(np.diff(used))
    assert len(switches) >= 150 // (2 * PROBE_INTERVAL[1])  # it keeps trying


def test_adaptive_follows_a_change_of_load():
    policy = AdaptiveThreads(4)
    counts_used(policy, BUSY, calls=100)
    # the other program stops: 4 threads take 0.2 ms, less than 1's 1 ms
    used = counts_used(policy, {4: 2e-4, 1: 1e-3}, calls=1200)
    assert used[-100:].count(4) >= 95
    # noticed at the next burst, at most PROBE_MAX_WAIT calls away
    assert used.index(4) <= PROBE_MAX_WAIT


def test_each_kind_of_call_has_its_own_timings():
    policy = AdaptiveThreads(4)
    counts_used(policy, BUSY, calls=50, kind=("a", 100))
    used = counts_used(policy, {4: 1e-4, 1: 2e-3}, calls=50, kind=("b", 100))
    assert used[-20:].count(4) >= 19


def test_one_possible_count_is_not_timed():
    policy = AdaptiveThreads(4)
    seen = []
    for _ in range(5):
        policy.run(("small", 10), 1, seen.append)
    assert seen == [1] * 5


def test_a_slow_first_call_does_not_decide():
    # the first call on 4 threads pays for starting them (20 ms); afterwards
    # 4 threads take 0.1 ms and 1 thread 1 ms (so does the first call of
    # each burst on 4 threads: its threads have to wake up)
    policy = AdaptiveThreads(4)
    used = []

    def kernel(n):
        waking = n == 4 and (not used or used[-1] != 4)
        time.sleep(2e-2 if waking else {4: 1e-4, 1: 1e-3}[n])
        used.append(n)

    for _ in range(40):
        policy.run(("cold", 100), 4, kernel)
    assert used[-20:].count(4) >= 19
