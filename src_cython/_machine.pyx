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
    """
    int MNIST_FAST_OPENMP
    int mnist_fast_max_threads() noexcept nogil
    const char* MNIST_FAST_CYTHON_VERSION
    int MNIST_FAST_DEBUG_BUILD


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(MNIST_FAST_OPENMP)


def max_threads():
    """OpenMP's default team size (honours OMP_NUM_THREADS); 1 if serial."""
    return mnist_fast_max_threads()


def cython_version():
    """Version of Cython that generated the kernels."""
    return MNIST_FAST_CYTHON_VERSION.decode()


def debug_build():
    """True when built with MNIST_FAST_DEBUG=1 (bounds checks on)."""
    return bool(MNIST_FAST_DEBUG_BUILD)

