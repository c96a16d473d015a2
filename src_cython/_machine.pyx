"""Facts about the build and the machine: OpenMP, thread count, debug build."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define MNIST_FAST_OPENMP 1
    static int mnist_fast_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define MNIST_FAST_OPENMP 0
    static int mnist_fast_max_threads(void) { return 1; }
    #endif

    /* Start n threads at once, each with a stack of stack_size bytes (0:
       the default of pthread_attr_init, which is what GNU OpenMP uses
       unless OMP_STACKSIZE or GOMP_STACKSIZE is set), then join them.
       Returns how many started; *error is pthread_create's error for the
       first that did not (0 when all did).  -1 where there are no POSIX
       threads: nothing can be checked. */
    #if defined(__unix__) || defined(__APPLE__)
    #include <errno.h>
    #include <pthread.h>
    #include <stdlib.h>
    static void *mnist_fast_idle(void *arg) { return arg; }
    static int mnist_fast_start_threads(int n, size_t stack_size, int *error)
    {
        pthread_t *threads = malloc((size_t)(n > 0 ? n : 1) * sizeof *threads);
        pthread_attr_t attr;
        int started = 0, i;
        *error = 0;
        if (threads == NULL) {
            *error = ENOMEM;
            return 0;
        }
        pthread_attr_init(&attr);
        if (stack_size)  /* as libgomp: a size it refuses leaves the default */
            pthread_attr_setstacksize(&attr, stack_size);
        /* a thread that has returned keeps its stack until it is joined:
           all n stacks exist at once, as a team's do */
        for (; started < n; started++) {
            *error = pthread_create(&threads[started], &attr, mnist_fast_idle,
                                    NULL);
            if (*error)
                break;
        }
        for (i = 0; i < started; i++)
            pthread_join(threads[i], NULL);
        pthread_attr_destroy(&attr);
        free(threads);
        return started;
    }
    #else
    static int mnist_fast_start_threads(int n, size_t stack_size, int *error)
    {
        (void)n; (void)stack_size;
        *error = 0;
        return -1;
    }
    #endif
    """
    int MNIST_FAST_OPENMP
    int mnist_fast_max_threads() noexcept nogil
    int mnist_fast_start_threads(int n, size_t stack_size, int *error) noexcept nogil
    const char* MNIST_FAST_CYTHON_VERSION
    int MNIST_FAST_DEBUG_BUILD

import os


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(MNIST_FAST_OPENMP)


def max_threads():
    """OpenMP's default team size (honours OMP_NUM_THREADS); 1 if serial."""
    return mnist_fast_max_threads()


def start_threads(int n, size_t stack_size=0):
    """Start ``n`` POSIX threads at once with stacks of ``stack_size`` bytes
    (0: the default) and join them: whether a team of ``n + 1`` threads
    can be created now.

    Returns
    -------
    (started, error) : (int, str or None)
        How many started (all ``n``, or up to the first that could not:
        then ``error`` says why, as ``strerror``); ``(-1, None)`` on a
        platform without POSIX threads, where nothing is checked.
    """
    cdef int error = 0, started
    with nogil:
        started = mnist_fast_start_threads(n, stack_size, &error)
    return started, (os.strerror(error) if error else None)


def cython_version():
    """Version of Cython that generated the kernels."""
    return MNIST_FAST_CYTHON_VERSION.decode()


def debug_build():
    """True when built with MNIST_FAST_DEBUG=1 (bounds checks on)."""
    return bool(MNIST_FAST_DEBUG_BUILD)
