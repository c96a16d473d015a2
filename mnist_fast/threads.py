"""How many OpenMP threads the compiled kernels get, and how they wait.

The policy in five rules:

* A network's thread count is resolved once, when it is created (or when
  ``net.num_threads`` is set): the argument, else
  ``$MNIST_FAST_NUM_THREADS``, else OpenMP's default (all cores, or
  ``$OMP_NUM_THREADS``), at most :data:`MAX_THREADS`; 1 without OpenMP.
* ``predict``, ``loss``, ``accuracy`` and ``gradient`` on ``n`` rows use
  at most ``n // MIN_ROWS_PER_THREAD`` threads: below that a thread team
  costs more to start than it saves.  The numerical gradient, the training
  steps, ``train``'s evaluations and the ``gradient`` of a wide layer
  (:data:`mnist_fast.compiled_engine.WIDE_W1`: its per-call work on
  ``W1`` grows with the layer, not the rows) may use them all.
* A count the user chose (``num_threads=`` or ``$MNIST_FAST_NUM_THREADS``)
  is used as it is (:class:`FixedThreads`).  Otherwise
  (:class:`AdaptiveThreads`) each kind of call runs on one thread or on
  all it may use, whichever its recent calls timed faster: on a machine
  where another program keeps a core busy, a team of all cores waits for
  the thread that does not get one, and one thread is then several times
  faster.  The other count is tried again now and then, so the choice
  follows the machine's load.  The results are bit-identical for any
  count, so the choice changes only the time.
* A team of threads is started only if it can be: when a count is
  resolved (for more than one thread) and again at a network's first
  call, :func:`startable_team` starts that many threads at once, with
  the stack OpenMP gives its own (:data:`OMP_STACK_SIZE`), and joins them.  GNU OpenMP ends the process
  when it cannot create a thread (an address-space limit, ``ulimit -v``,
  or a limit on processes, ``ulimit -u``); instead a count the user chose
  that cannot be started is a ``RuntimeError`` naming it, and OpenMP's
  default is lowered to the count that can.  Counts above the cores are
  kept: results are bit-identical for any count (which the tests check
  with more threads than cores), only slower.
* Idle OpenMP threads spin only briefly before they sleep.  GNU OpenMP's
  default (300,000 spins) lets a waiting worker hold a core that the
  Python thread starting the next parallel region needs; on a 2-core
  machine with one other busy process that multiplies the time of a run
  several times over.  Importing mnist_fast therefore sets
  ``GOMP_SPINCOUNT`` to :data:`GOMP_SPINCOUNT` unless ``OMP_WAIT_POLICY``
  or ``GOMP_SPINCOUNT`` is already set.  libgomp reads it when it loads,
  which is why this module is imported before :mod:`mnist_fast.kernels`.
"""

import os
import re
import time
from collections import deque

#: Spins of an idle GNU OpenMP thread before it sleeps (see above).
GOMP_SPINCOUNT = "10000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT

from . import kernels  # noqa: E402 (after the wait policy, see above)
from .validation import positive_int  # noqa: E402


def omp_stack_size(environ):
    """The stack of each GNU OpenMP thread, in bytes, as libgomp reads it
    from ``environ``: ``OMP_STACKSIZE``, else ``GOMP_STACKSIZE`` (the
    first valid one), a number of KiB or one with a suffix ``B``, ``K``,
    ``M`` or ``G``; None when neither is set (the default thread stack,
    ``ulimit -s`` on Linux)."""
    for name in ("OMP_STACKSIZE", "GOMP_STACKSIZE"):
        match = re.fullmatch(r"\s*(\d+)\s*([bkmg]?)\s*", environ.get(name, ""),
                             re.IGNORECASE)
        if match:
            shift = {"b": 0, "": 10, "k": 10, "m": 20, "g": 30}
            return int(match[1]) << shift[match[2].lower()]
    return None


#: The stack size of OpenMP's threads, read when libgomp reads it (as it
#: loads, just after this module).
OMP_STACK_SIZE = omp_stack_size(os.environ)

#: Environment variable that sets the default thread count of the kernels.
ENV_NUM_THREADS = "MNIST_FAST_NUM_THREADS"
#: The most threads a kernel gets: more than any machine these kernels run
#: on has cores, few enough that OpenMP can always create them (a request
#: for 200,000 threads crashed the interpreter).
MAX_THREADS = 1024
#: Rows each thread of a kernel call gets at least.
MIN_ROWS_PER_THREAD = 50


#: Timings kept per kind of call and thread count (their median decides).
SAMPLES = 3
#: Calls between two tries of the count not chosen: from the first, doubled
#: while the tries confirm the choice, up to the second ...
PROBE_INTERVAL = (4, 32)
#: ... and at least as many as keep the tries' extra time below this
#: fraction of the time (a try of k calls on a count r times slower costs
#: k * (r - 1) calls), up to PROBE_MAX_WAIT calls; the tries a kind joins
#: (TEAM_WINDOW) at most double it.
PROBE_BUDGET = 0.01
PROBE_MAX_WAIT = 1024
#: Calls of a network during which, once one kind of short calls tries all
#: its threads again, the other kinds of short calls on one thread try
#: theirs too (see AdaptiveThreads) ...
TEAM_WINDOW = 4 * SAMPLES
#: ... short: a median below this many seconds on either count (beside
#: longer calls, the team's waking up is lost in the time).
SHORT_CALL = 1e-3
#: A burst on one thread ends at its first call that takes this many times
#: the chosen count's median: one thread has no team to wake, so its first
#: call is as fast as the next ones would be.
CLEARLY_SLOWER = 1.25
#: One thread replaces all of them only when its calls are this many times
#: faster: a team's calls are slow while the other kinds of calls between
#: them run on one thread (its idle threads fall asleep, see
#: GOMP_SPINCOUNT), so a kind that left the team on a small difference
#: would make the team look slow to the others, and all would stay on one
#: thread on an idle machine.
CLEARLY_FASTER = 1.15


def resolve_num_threads(num_threads=None):
    """The thread count of a network.

    Parameters
    ----------
    num_threads : int or None
        Explicit count, 1 to ``MAX_THREADS``.  None means
        ``$MNIST_FAST_NUM_THREADS`` if set, else OpenMP's default capped at
        ``MAX_THREADS``.

    Returns
    -------
    int
        The count, 1 when the kernels were built without OpenMP; for
        OpenMP's default, at most the threads that can be started
        (:func:`startable_team`).

    Raises
    ------
    TypeError
        ``num_threads`` is not an integer (a bool, a string...).
    ValueError
        ``num_threads`` or ``$MNIST_FAST_NUM_THREADS`` is < 1, above
        ``MAX_THREADS`` or not a whole number.
    RuntimeError
        That many threads cannot be started here (:func:`startable_team`).
    """
    return _resolved(num_threads)[0]


def _resolved(num_threads):
    """The count of :func:`resolve_num_threads`, and who chose it."""
    n, chosen = _requested(num_threads)
    return (startable_team(n, chosen) if kernels.openmp_enabled() else 1,
            chosen)


def _requested(num_threads):
    """The count asked for, and who chose it (``"num_threads"`` or
    ``"$MNIST_FAST_NUM_THREADS"``, for messages; None for OpenMP's
    default); checked as
    :func:`resolve_num_threads` says, not yet started."""
    chosen = None
    if num_threads is None:
        env = os.environ.get(ENV_NUM_THREADS, "").strip()
        if env:
            try:
                value = int(env)
            except ValueError:
                raise ValueError(
                    f"${ENV_NUM_THREADS} must be an integer between 1 and "
                    f"{MAX_THREADS}, got {env!r}"
                ) from None
            n = positive_int(value, f"${ENV_NUM_THREADS}",
                             maximum=MAX_THREADS)
            chosen = f"${ENV_NUM_THREADS}"
        else:
            # $OMP_NUM_THREADS may ask for more than OpenMP can create
            n = min(kernels.max_threads(), MAX_THREADS)
    else:
        n = positive_int(num_threads, "num_threads", maximum=MAX_THREADS)
        chosen = "num_threads"
    return n, chosen


def startable_team(n, chosen=None):
    """``n`` if a team of ``n`` OpenMP threads can be started now.

    Starts ``n - 1`` threads at once (the calling thread is the team's
    first) with OpenMP's stack size and joins them.  They come on top of
    the threads already running (OpenMP's idle ones among them), so the
    check errs on the safe side.  Memory taken after it can still leave
    OpenMP short: it is made again whenever a count is resolved and at a
    policy's first use (:attr:`FixedThreads.num_threads`).

    Parameters
    ----------
    n : int
        The team size, 1 ... MAX_THREADS.
    chosen : str or None
        Who chose ``n`` (``"num_threads"``), for the message; None for
        OpenMP's default.

    Returns
    -------
    int
        ``n``; for OpenMP's default, the most threads that could be
        started when that is fewer.  Where there are no POSIX threads
        nothing is checked and ``n`` is returned.

    Raises
    ------
    ThreadsUnavailable
        ``chosen`` is given and fewer than ``n`` threads could be started.
    """
    if n == 1:
        return 1
    started, error = kernels.machine.start_threads(n - 1, OMP_STACK_SIZE or 0)
    if started < 0 or started == n - 1:
        return n
    if chosen is None:
        return started + 1
    stack = (f"each has the {OMP_STACK_SIZE}-byte stack of $OMP_STACKSIZE/"
             "$GOMP_STACKSIZE"
             if OMP_STACK_SIZE else "each has the default stack, ulimit -s")
    raise ThreadsUnavailable(
        chosen, n, started + 1,
        f"creating more failed: {error}; {stack}, and an address-space "
        "limit, ulimit -v, or a process limit, ulimit -u, caps them")


class ThreadsUnavailable(RuntimeError):
    """A thread count chosen by the user that cannot be started here.

    Attributes
    ----------
    chosen : str
        Who chose it: ``"num_threads"`` or ``"$MNIST_FAST_NUM_THREADS"``.
    wanted, startable : int
        The count chosen, and the most that could be started.
    """

    def __init__(self, chosen, wanted, startable, why):
        self.chosen, self.wanted, self.startable = chosen, wanted, startable
        self._why = why
        super().__init__(self.message(f"{chosen}={wanted}"))

    def message(self, asked):
        """The message, with ``asked`` saying how the count was asked for
        (``"num_threads=8"``; the CLI's ``"--threads 8"``)."""
        return (f"{asked}: only {self.startable} threads can be started here "
                f"({self._why}): ask for at most {self.startable}, or set "
                "OMP_STACKSIZE smaller")


def threads_for_rows(num_threads, n_rows):
    """Threads for a call on ``n_rows`` rows by a network with ``num_threads``."""
    return max(1, min(num_threads, n_rows // MIN_ROWS_PER_THREAD))


def thread_policy(num_threads=None):
    """The thread policy of a network created with ``num_threads``.

    Returns
    -------
    FixedThreads or AdaptiveThreads
        Fixed when ``num_threads`` or ``$MNIST_FAST_NUM_THREADS`` gives a
        count (or there is one thread only), else adaptive up to OpenMP's
        default.  Raises as :func:`resolve_num_threads`.
    """
    n, chosen = _resolved(num_threads)
    return (FixedThreads(n, chosen) if chosen or n == 1
            else AdaptiveThreads(n))


class FixedThreads:
    """The same count for every call (capped by its rows, see above).

    Every policy has this interface: :meth:`run` calls a kernel with the
    count for its kind of call.

    Parameters
    ----------
    num_threads : int
        The most threads a call gets.
    chosen : str or None
        Who chose it (``"num_threads=8"``), None for OpenMP's default.
    """

    adaptive = False

    def __init__(self, num_threads, chosen=None):
        self._num_threads, self._chosen = num_threads, chosen
        self._started = num_threads == 1

    @property
    def num_threads(self):
        """The most threads a call gets.  Read first (by the first call),
        it checks again that they can be started (:func:`startable_team`):
        what was allocated since the network was created (its data)
        counts.  RuntimeError then if a chosen count cannot be; OpenMP's
        default is lowered to what can."""
        if not self._started:
            self._num_threads = startable_team(self._num_threads, self._chosen)
            self._started = True
        return self._num_threads

    def __repr__(self):
        return f"fixed, {self.num_threads} thread(s)"

    def run(self, kind, most, kernel, *args):
        """``kernel(*args, n)`` with ``n <= most`` threads for this ``kind``
        of call (a hashable: the method and the size of its work); its
        result."""
        return kernel(*args, most)


class AdaptiveThreads(FixedThreads):
    """One thread or ``most``, per kind of call, whichever is faster now.

    Each kind of call keeps the durations of its last :data:`SAMPLES` calls
    on each count and runs on the count whose median is lower (one thread
    replaces ``most`` only when :data:`CLEARLY_FASTER`); every few
    calls (:data:`PROBE_INTERVAL`, fewer the slower the other count is:
    :data:`PROBE_BUDGET`) it runs :data:`SAMPLES` calls in a row on the
    other count, so that a change of load changes the choice.

    The kinds of short calls (:data:`SHORT_CALL`) try all their threads
    together: once one does, each such kind that runs on one thread and is
    called in the next :data:`TEAM_WINDOW` calls starts its own try (not
    twice without a try of its own between).  A
    team's call is quick only while its threads are awake, which they are
    not when the other calls between two of a kind (the book's ``gradient``
    and ``loss`` in turn) run on one thread: tried alone, each kind would
    find the team slow because the others keep it asleep, and stay on one
    thread for good.
    """

    adaptive = True

    def __init__(self, num_threads):
        super().__init__(num_threads)
        self._kinds = {}
        self._window = 0  # the last window of team tries (0: none yet)
        self._window_left = 0  # its calls left

    def __repr__(self):
        return f"adaptive, 1 or {self.num_threads} threads, timed per call"

    def run(self, kind, most, kernel, *args):
        if most == 1:
            return kernel(*args, 1)
        timings = self._kinds.get(kind)
        if timings is None:
            timings = self._kinds[kind] = _Timings(most)
        if self._window_left:
            self._window_left -= 1
            if timings.short():
                timings.join(self._window)
        n = timings.next_count()
        if timings.team_try and timings.short():  # (a join is no team_try)
            self._window, self._window_left = self._window + 1, TEAM_WINDOW
            timings.window = self._window
        start = time.perf_counter()
        result = kernel(*args, n)
        timings.record(n, time.perf_counter() - start)
        return result


class _Timings:
    """The recent durations of one kind of call on 1 and ``most`` threads,
    and which count to use next.

    The count not in use is tried in bursts of :data:`SAMPLES` calls, and
    only a burst's timings judge it: the first call after a pause pays for
    waking the other threads and warming their caches, which one call
    alone would always blame on the count.  A burst on one thread has no
    threads to wake: it ends at its first call :data:`CLEARLY_SLOWER` than
    the chosen count, so that on an idle machine trying one thread costs
    one slow call, not :data:`SAMPLES`.
    """

    def __init__(self, most):
        self.samples = {most: deque(maxlen=SAMPLES), 1: deque(maxlen=SAMPLES)}
        self.best, self.other = most, 1
        self.interval = PROBE_INTERVAL[0]
        self.wait = 0    # calls on the best count before the next burst
        self.burst = 0   # calls left in the burst on the other count
        self.window = 0  # the last window of team tries it took part in
        self.joined = False  # its last try of the team was another's window
        self.team_try = False  # the call next_count chose starts a try of
        # the team on this kind's own schedule

    def next_count(self):
        """The thread count of the next call."""
        self.team_try = False
        if len(self.samples[self.best]) < SAMPLES:
            return self.best
        if not self.burst and self.wait <= 0:
            self._start_burst()
            self.team_try, self.joined = self.other != 1, False
        if self.burst:
            return self.other
        self.wait -= 1
        return self.best

    def join(self, window):
        """Try the team from this call on, in the window of team tries
        ``window`` that another kind opened: once per window, if this kind
        runs on one thread and is not trying already, and not twice without
        a try of its own between, so that a kind's tries cost at most twice
        :data:`PROBE_BUDGET` however often the others try."""
        if (self.window != window and self.best == 1 and not self.burst
                and not self.joined):
            self.window, self.joined = window, True
            self._start_burst()

    def short(self):
        """Whether its calls are short (:data:`SHORT_CALL`) on either
        count."""
        return min(self._median(self.best),
                   self._median(self.other)) < SHORT_CALL

    def _start_burst(self):
        self.burst = SAMPLES
        self.samples[self.other].clear()

    def _median(self, n):
        times = sorted(self.samples[n])
        return times[len(times) // 2] if times else float("inf")

    def record(self, n, seconds):
        self.samples[n].append(seconds)
        if n != self.other or not self.burst:
            return
        self.burst -= 1
        if self.burst and not (
                n == 1 and seconds > CLEARLY_SLOWER * self._median(self.best)):
            return
        self.burst = 0
        low, high = PROBE_INTERVAL
        margin = CLEARLY_FASTER if self.other == 1 else 1.0
        if margin * self._median(self.other) < self._median(self.best):
            self.best, self.other = self.other, self.best
            self.interval = self.wait = low  # confirm the change soon
        else:  # the burst confirmed the choice: try less often
            self.interval = min(2 * self.interval, high)
            slower = self._median(self.other) / self._median(self.best) - 1
            tried = len(self.samples[self.other])
            self.wait = max(self.interval, min(
                PROBE_MAX_WAIT, int(tried * slower / PROBE_BUDGET)))
