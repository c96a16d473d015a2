"""The thread policy (mnist_fast/threads.py): a count the user chose is kept;
otherwise each kind of call runs on the count its recent calls timed faster;
a team that cannot be started is an exception or a smaller team, never the
end of the process."""

import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mnist_fast
from mnist_fast import kernels, threads
from mnist_fast.threads import (CLEARLY_FASTER, CLEARLY_SLOWER,
                                ENV_NUM_THREADS, PROBE_BUDGET,
                                PROBE_INTERVAL, PROBE_MAX_WAIT, SAMPLES,
                                SHORT_CALL, TEAM_WINDOW,
                                AdaptiveThreads, FixedThreads, thread_policy)
from conftest import COMPILED, cli_env, requires_compiled


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


def test_a_try_of_one_thread_ends_at_its_first_clearly_slower_call():
    # an idle machine: 1 thread 8 times slower than 4 (more than
    # CLEARLY_SLOWER even if the machine delays a call on 4 threads)
    assert CLEARLY_SLOWER < 4
    used = counts_used(AdaptiveThreads(4), {4: 2e-4, 1: 1.6e-3}, calls=1000)
    tries = np.flatnonzero(np.array(used) == 1)
    assert used[:SAMPLES + 2] == [4] * SAMPLES + [1, 4]
    # it still tries now and then, one call at a time, as often as the
    # budget allows a try of one call ~8 times slower (a try of SAMPLES
    # such calls would wait PROBE_MAX_WAIT calls)
    assert len(tries) >= 2 and np.all(np.diff(tries) > 1)
    assert SAMPLES * 7 / PROBE_BUDGET > PROBE_MAX_WAIT
    assert tries[1] - tries[0] < PROBE_MAX_WAIT


class Clock:
    """A perf_counter that only the kernels move: durations exactly as
    given, whatever the machine does meanwhile."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.mark.parametrize("ratio", [1.05, CLEARLY_FASTER - 0.01,
                                   CLEARLY_FASTER + 0.01, 1.5])
def test_one_thread_replaces_the_team_only_when_clearly_faster(monkeypatch,
                                                               ratio):
    # a team's calls ratio times as long as one thread's
    clock = Clock()
    monkeypatch.setattr(threads, "time", clock)
    policy, used = AdaptiveThreads(4), []

    def kernel(n):
        clock.now += 1e-3 * (ratio if n == 4 else 1.0)
        used.append(n)

    for _ in range(300):
        policy.run(("kernel", 100), 4, kernel)
    assert used[:SAMPLES + 1] == [4] * SAMPLES + [1]
    if ratio < CLEARLY_FASTER:  # tries of one thread only
        assert used[SAMPLES + SAMPLES] == 4
        assert used[-100:].count(4) > 80
    else:
        assert used[SAMPLES:SAMPLES + SAMPLES] == [1] * SAMPLES
        assert used[-100:].count(1) > 80


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


def test_kinds_in_turn_find_the_team_together(monkeypatch):
    # the book's loop, gradient and loss in turn (short calls): a call on 4
    # threads is quick only right after another call on 4 (its threads
    # still awake), and first the machine is busy (4 threads slower
    # whatever happens).  Seconds on 1 thread, on 4 busy or asleep, and on
    # 4 awake, per kind: their tries fall at different calls
    clock = Clock()
    monkeypatch.setattr(threads, "time", clock)
    policy = AdaptiveThreads(4)
    used = []
    times = {"gradient": (200e-6, 300e-6, 80e-6),
             "loss": (100e-6, 120e-6, 40e-6)}

    def run(busy, calls):
        for i in range(calls):
            kind = "gradient" if i % 2 else "loss"
            one, slow, fast = times[kind]

            def kernel(n):
                awake = bool(used) and used[-1] == 4
                if n == 1:
                    clock.now += one
                else:
                    clock.now += slow if busy or not awake else fast
                used.append(n)
            policy.run((kind, 100), 4, kernel)

    assert max(max(t) for t in times.values()) < SHORT_CALL
    run(busy=True, calls=100)
    assert used[-20:].count(1) >= 19  # both on one thread
    # idle now: each kind alone would find 4 threads slow, since the other
    # kind's calls on one thread let them sleep; together they find them
    # fast, at the first try of either kind (at most SAMPLES * 0.5 /
    # PROBE_BUDGET calls of the kind after its last)
    run(busy=False, calls=2 * int(SAMPLES * 0.5 / PROBE_BUDGET) + 100)
    assert used[-20:].count(4) >= 19


@pytest.mark.parametrize("first", ["short", "long"])
def test_long_calls_try_the_team_alone(monkeypatch, first):
    # a busy machine: one kind settles on one thread, then the other comes
    # in turn with it and tries the team early (its first tries); when one
    # of them is of long calls (2 * SHORT_CALL), neither joins the other's
    # tries
    clock = Clock()
    monkeypatch.setattr(threads, "time", clock)
    policy = AdaptiveThreads(4)
    used = {"short": [], "long": []}
    one = {"short": 100e-6, "long": 2 * SHORT_CALL}

    def call(kind):
        def kernel(n):
            clock.now += one[kind] * (1.3 if n == 4 else 1.0)
            used[kind].append(n)
        policy.run((kind, 100), 4, kernel)

    second = "long" if first == "short" else "short"
    for _ in range(50):
        call(first)
    start = len(used[first])
    for _ in range(20):
        call(second)
        call(first)
    assert used[second].count(4) >= 2 * SAMPLES  # the second kind tried
    # the first kind's next try is not due yet (SAMPLES * 0.3 /
    # PROBE_BUDGET of its calls after its last)
    assert used[first][start:] == [1] * 20


def test_a_window_of_team_tries_is_not_opened_again_by_a_kind_in_it(
        monkeypatch):
    # a busy machine, A and B on one thread: A's try of the team opens a
    # window; B, called only at its last call, joins, which opens no window
    # of its own: A does not try again at once
    clock = Clock()
    monkeypatch.setattr(threads, "time", clock)
    policy = AdaptiveThreads(4)
    used = {"A": [], "B": []}

    def call(kind):
        def kernel(n):
            clock.now += 300e-6 if n == 4 else 100e-6
            used[kind].append(n)
        policy.run((kind, 100), 4, kernel)

    for _ in range(60):  # B on one thread, its first tries behind it
        call("B")
    assert used["B"][-20:] == [1] * 20
    while used["A"][-2:] != [1, 4]:
        call("A")  # until A's try of the team (its first) opens a window
    for _ in range(TEAM_WINDOW - 1):
        call("A")
    call("B")  # the window's last call
    assert used["B"][-1] == 4
    for _ in range(TEAM_WINDOW):
        call("A")
    assert used["A"][-TEAM_WINDOW:] == [1] * TEAM_WINDOW


def test_tries_of_others_cost_a_kind_at_most_twice_the_budget(monkeypatch):
    # a busy machine: A and B 3 times slower on the team; C on one thread,
    # whose team became nearly as fast, tries it every PROBE_INTERVAL[1]
    # calls; A and B join C's tries only between tries of their own
    clock = Clock()
    monkeypatch.setattr(threads, "time", clock)
    policy = AdaptiveThreads(4)
    used = {"A": [], "B": [], "C": []}
    for i in range(3 * 3000):
        kind = "ABC"[i % 3]
        team = 300e-6 if kind != "C" else 130e-6 if i < 900 else 105e-6

        def kernel(n):
            clock.now += team if n == 4 else 100e-6
            used[kind].append(n)
        policy.run((kind, 100), 4, kernel)
    assert used["C"][-1000:].count(4) >= 1000 // PROBE_INTERVAL[1]
    for kind in "AB":
        # each team call costs 2 calls more: their share of the time
        extra = 2 * used[kind][600:].count(4) / len(used[kind][600:])
        assert extra <= 2 * PROBE_BUDGET + 0.005


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


# -- teams that cannot be started ----------------------------------------------

@pytest.mark.parametrize("environ, size", [
    ({}, None),
    ({"OMP_STACKSIZE": "512"}, 512 * 2**10),
    ({"OMP_STACKSIZE": " 3 M "}, 3 * 2**20),
    ({"OMP_STACKSIZE": "2g"}, 2 * 2**30),
    ({"OMP_STACKSIZE": "4096B"}, 4096),
    ({"OMP_STACKSIZE": "lots", "GOMP_STACKSIZE": "64k"}, 64 * 2**10),
    ({"GOMP_STACKSIZE": "1K"}, 2**10),
    ({"OMP_STACKSIZE": "1T"}, None),
])
def test_openmp_stack_size_is_read_as_libgomp_reads_it(environ, size):
    assert threads.omp_stack_size(environ) == size


#: A process whose address space leaves room for about LIMIT_MB more: a
#: team of 1024 threads of 8 MiB stacks cannot start, one of 2 can.
UNDER_LIMIT = textwrap.dedent("""
    import os, resource, sys
    import numpy as np
    import mnist_fast
    from mnist_fast import TwoLayerNet

    assert mnist_fast.build_info()["compiled"], mnist_fast.__file__
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS,
                       (size + {limit_mb} * 2**20, resource.RLIM_INFINITY))
    x, t = np.ones((200, 8)), np.zeros(200, dtype=int)

    def attempt(what, make, data_mb=0):
        try:
            net = make()
            data = np.ones(data_mb * 2**17)  # taken after the network
            print(what, "ok", net.engine.num_threads, net.loss(x, t) > 0)
        except RuntimeError as exc:
            print(what, "RuntimeError", exc)

    {body}
""")


def run_under_limit(body, limit_mb=400, **env):
    code = UNDER_LIMIT.format(limit_mb=limit_mb, body=textwrap.dedent(body))
    # from an empty folder: `python -c` imports from its working folder
    # first, and a checkout there would give its unbuilt source tree
    with tempfile.TemporaryDirectory() as cwd:
        run = subprocess.run([sys.executable, "-c", code], cwd=cwd,
                             capture_output=True, text=True, timeout=120,
                             env=cli_env(OMP_STACKSIZE="8M", **env))
    assert run.returncode == 0, run.stderr
    return dict(line.split(" ", 1) for line in run.stdout.splitlines())


needs_limits = pytest.mark.skipif(
    not (COMPILED and kernels.openmp_enabled()
         and Path("/proc/self/statm").exists()),
    reason="needs OpenMP and Linux address-space limits")


CHOSEN_COUNTS = """
    attempt("1024", lambda: TwoLayerNet(8, 4, 3, num_threads=1024))
    attempt("600", lambda: TwoLayerNet(8, 4, 3, num_threads=600))
    attempt("2", lambda: TwoLayerNet(8, 4, 3, num_threads=2))
    attempt("1", lambda: TwoLayerNet(8, 4, 3, num_threads=1))
"""


@pytest.mark.skipif(not (COMPILED and not kernels.openmp_enabled()
                         and Path("/proc/self/statm").exists()),
                    reason="for a build without OpenMP, on Linux")
def test_without_openmp_any_count_runs_on_one_thread_under_a_limit():
    out = run_under_limit(CHOSEN_COUNTS)
    assert set(out.values()) == {"ok 1 True"}, out


@needs_limits
def test_a_chosen_team_that_cannot_start_is_an_error_not_an_exit():
    out = run_under_limit(CHOSEN_COUNTS)
    for n in ("1024", "600"):
        assert re.match(rf"RuntimeError num_threads={n}: only \d+ threads can "
                        r"be started here \(creating more failed: .*"
                        r"8388608-byte stack of \$OMP_STACKSIZE.*ask for at "
                        r"most \d+", out[n]), out[n]
    assert out["2"] == "ok 2 True" and out["1"] == "ok 1 True"


@needs_limits
def test_the_environment_count_is_named():
    out = run_under_limit("""
        attempt("env", lambda: TwoLayerNet(8, 4, 3))
    """, MNIST_FAST_NUM_THREADS="1000")
    assert out["env"].startswith(
        "RuntimeError $MNIST_FAST_NUM_THREADS=1000: only "), out["env"]


@needs_limits
def test_openmp_default_is_lowered_to_what_can_start():
    out = run_under_limit("""
        info = mnist_fast.build_info()
        print("info", info["num_threads"], info["thread_policy"])
        attempt("default", lambda: TwoLayerNet(8, 4, 3))
    """, OMP_NUM_THREADS="1000")
    n = int(out["info"].split()[0])
    assert 2 <= n < 1000, out
    assert f"{n} threads" in out["info"]
    state, count, works = out["default"].split()
    assert state == "ok" and 2 <= int(count) <= n and works == "True"


@needs_limits
def test_memory_taken_after_creation_is_seen_at_the_first_call():
    # 30 stacks fit when the network is created; after 300 MB of data they
    # do not, and the first call says so instead of OpenMP ending the process
    out = run_under_limit("""
        attempt("late", lambda: TwoLayerNet(8, 4, 3, num_threads=30), 300)
        attempt("small", lambda: TwoLayerNet(8, 4, 3, num_threads=2), 300)
    """)
    assert out["late"].startswith("RuntimeError num_threads=30: only "), out
    assert out["small"] == "ok 2 True"


#: ``mnist-fast ARGS`` in a process left about 300 MB more address space.
CLI_UNDER_LIMIT = textwrap.dedent("""
    import resource, sys
    from mnist_fast import cli

    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS,
                       (size + 300 * 2**20, resource.RLIM_INFINITY))
    sys.exit(cli.main(sys.argv[1:]))
""")


@needs_limits
def test_the_command_line_reports_a_team_that_cannot_start(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", CLI_UNDER_LIMIT, "train", "--threads", "1024",
         "--iters", "1", "--no-progress"], cwd=tmp_path,
        env=cli_env(OMP_STACKSIZE="8M", MNIST_FAST_CACHE_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "libgomp" not in run.stderr
    (line,) = run.stderr.splitlines()
    # in the words typed: --threads, not the API's num_threads
    assert line.startswith("mnist-fast: error: --threads 1024: only "), line
    assert re.search(r"only \d+ threads can be started here", line), line
    assert "num_threads" not in line
