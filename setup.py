"""Build the compiled kernels of mnist_fast.

Everything that decides how the Cython extensions are compiled lives here:

* ``COMPILER_DIRECTIVES`` -- the Cython directives for every module, in one
  place.  ``MNIST_FAST_DEBUG=1`` turns bounds checks, wraparound and
  initialisation checks back on (and builds without optimisation).
* OpenMP -- enabled when a test program compiles and links with the
  compiler's OpenMP flag; otherwise the build goes on serially with a
  warning.  ``MNIST_FAST_NO_OPENMP=1`` forces a serial build.
  ``mnist_fast.build_info()`` reports which one was built.
* No ``-march=native`` or ``-ffast-math``: the binaries must stay portable
  and the arithmetic must stay IEEE so that results equal the reference.
* SIMD variants -- on x86-64, every kernel module is also built as
  ``<module>_avx2`` with ``-mavx2 -mfma`` (optional: a compiler that cannot
  is skipped with a warning).  ``mnist_fast`` imports that variant only on
  CPUs that report AVX2 and FMA, and the baseline (SSE2) modules
  elsewhere; ``MNIST_FAST_SIMD=baseline`` at run time forces the baseline.
"""

import os
import platform
import shutil
import tempfile
import textwrap
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent.resolve()


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_flag("MNIST_FAST_DEBUG")
NO_OPENMP = _env_flag("MNIST_FAST_NO_OPENMP")

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": True,
    "cpow": True,
    "embedsignature": True,
}

# One extension module per .pyx file, as private modules of the package.
MODULES = sorted(p.stem for p in (HERE / "src_cython").glob("*.pyx"))
# Modules that are only facts about the build get no SIMD variant.
SIMD_MODULES = [m for m in MODULES if m != "_machine"]
SIMD_VARIANTS = (
    {"avx2": ["-mavx2", "-mfma"]}
    if platform.machine().lower() in {"x86_64", "amd64"} and os.name != "nt"
    else {}
)

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
    }
    """
)


def _openmp_flags(compiler):
    """Compile and link flags for OpenMP, or ``None`` when unavailable."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    flags = ["-fopenmp"]
    tmp = tempfile.mkdtemp(prefix="mnist_fast_omp_")
    try:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
        compiler.link_executable(
            objects, "omp_test", output_dir=tmp, extra_postargs=flags
        )
    except Exception:  # any compiler/linker failure means "no OpenMP"
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return flags, flags


class BuildExt(build_ext):
    """build_ext that decides OpenMP and optimisation flags per compiler."""

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            compile_args = ["/Od"] if DEBUG else ["/O2"]
        else:
            compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
        link_args = []
        openmp = None if NO_OPENMP else _openmp_flags(self.compiler)
        if openmp is None:
            reason = (
                "MNIST_FAST_NO_OPENMP is set"
                if NO_OPENMP
                else "the compiler cannot build an OpenMP program"
            )
            warnings.warn(
                f"mnist_fast: building WITHOUT OpenMP ({reason}); the kernels "
                "will run on one thread. build_info()['openmp'] reports this."
            )
        else:
            compile_args += openmp[0]
            link_args += openmp[1]
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + ext.extra_compile_args
            ext.extra_link_args = link_args + ext.extra_link_args
        super().build_extensions()


def _extensions():
    from Cython import __version__ as cython_version
    from Cython.Build import cythonize

    macros = [
        ("MNIST_FAST_CYTHON_VERSION", f'"{cython_version}"'),
        ("MNIST_FAST_DEBUG_BUILD", "1" if DEBUG else "0"),
    ]
    extensions = [
        Extension(f"mnist_fast.{name}", [f"src_cython/{name}.pyx"],
                  include_dirs=["src_cython"], define_macros=macros)
        for name in MODULES
    ]
    # A variant is the same source, included by a generated stub so that it
    # gets its own module name and C file.
    stubs = HERE / "build" / "simd_stubs"
    stubs.mkdir(parents=True, exist_ok=True)
    for variant, flags in SIMD_VARIANTS.items():
        for name in SIMD_MODULES:
            stub = stubs / f"{name}_{variant}.pyx"
            text = f'include "{(HERE / "src_cython" / name).as_posix()}.pyx"\n'
            if not stub.exists() or stub.read_text() != text:
                stub.write_text(text)
            extensions.append(Extension(
                f"mnist_fast.{name}_{variant}",
                [os.path.relpath(stub, HERE)],
                include_dirs=["src_cython"],
                define_macros=macros,
                extra_compile_args=flags,
                optional=True,
            ))
    return cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        include_path=["src_cython"],
        # Debug and release C files are generated apart, never mixed up.
        build_dir="build/cython-debug" if DEBUG else "build/cython",
        quiet=True,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
