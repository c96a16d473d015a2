"""Build the compiled kernels of mnist_fast.

Everything that decides how the Cython extensions are compiled lives here:

* ``COMPILER_DIRECTIVES`` -- the Cython directives for every module, in one
  place.  ``MNIST_FAST_DEBUG=1`` turns bounds checks, wraparound and
  initialisation checks back on (and builds without optimisation).
* OpenMP -- enabled when a test program compiles and links with the
  compiler's OpenMP flag (``-fopenmp``, MSVC's ``/openmp``; on macOS also
  Apple clang's ``-Xpreprocessor -fopenmp -lomp`` where libomp is found);
  otherwise the build goes on serially with a
  warning.  ``MNIST_FAST_NO_OPENMP=1`` forces a serial build.
  ``mnist_fast.build_info()`` reports which one was built.
* No ``-march=native`` or ``-ffast-math``: the binaries must stay portable
  and the arithmetic must stay IEEE so that results equal the reference.
* No C compiler -- the extensions are optional as a whole: when a test
  program does not compile, or any extension fails to build, the install
  goes on without any of them, with one warning, and writes the reason to
  ``mnist_fast/NOT_COMPILED.txt``; the package then runs on its NumPy
  backend and ``build_info()`` says why.
* Release builds drop debug information (``-g0``) and compile the modules
  in parallel (one job per CPU unless ``--parallel`` says otherwise).
* SIMD variants -- the row helpers of the kernels (src_cython/simd_rows.c)
  are compiled into one C object per variant: the baseline (SSE2 on
  x86-64) always and, on x86-64, ``avx2`` with ``-mavx2 -mfma`` (optional:
  a compiler that cannot gives a warning and the baseline only).  Every
  module links them all and, at import, takes the best one the CPU runs
  (src_cython/simd_rows.h); ``MNIST_FAST_SIMD=baseline`` at run time forces
  the baseline.  The Cython code itself is compiled for the baseline.
  ``MNIST_FAST_PLAIN_C=1`` builds every variant from the plain C loops of
  simd_rows.c (no GCC/clang vector extensions or builtins: the code MSVC
  compiles), to test that code with GCC or clang.
"""

import contextlib
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import textwrap
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.errors import CCompilerError, CompileError, ExecError, PlatformError
except ImportError:  # setuptools < 59
    from distutils.errors import (CCompilerError, CompileError,
                                  DistutilsExecError as ExecError,
                                  DistutilsPlatformError as PlatformError)

#: What a missing or broken C toolchain raises while building.
BUILD_ERRORS = (CCompilerError, CompileError, ExecError, PlatformError, OSError)

HERE = Path(__file__).parent.resolve()


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_flag("MNIST_FAST_DEBUG")
NO_OPENMP = _env_flag("MNIST_FAST_NO_OPENMP")
PLAIN_C = _env_flag("MNIST_FAST_PLAIN_C")
#: Macros of every C file that includes simd_rows.h.
SIMD_MACROS = [("MF_PORTABLE_C", "1")] if PLAIN_C else []

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

# One extension module per .pyx file, as private modules of the package;
# all but _machine (facts about the build) hold kernels (the input checks
# of _checks among them).
MODULES = sorted(p.stem for p in (HERE / "src_cython").glob("*.pyx"))
KERNEL_MODULES = [m for m in MODULES if m != "_machine"]
# The row helpers, compiled once per variant and linked into every module.
SIMD_SOURCE = "src_cython/simd_rows.c"
SIMD_DEPENDS = [SIMD_SOURCE, "src_cython/simd_rows.h"]
# The variants beyond the baseline, and their flags (GCC and clang).
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


COMPILER_TEST = "int main(void) { return 0; }\n"
#: Written next to the package's modules when the kernels were not built:
#: mnist_fast.kernels reads the reason from it.
NOT_COMPILED_FILE = "NOT_COMPILED.txt"


def _try_build(compiler, source, compile_flags=(), link_flags=None):
    """Compile ``source`` (and link it with ``link_flags`` unless None);
    the error on failure, else None."""
    tmp = tempfile.mkdtemp(prefix="mnist_fast_cc_")
    try:
        src = os.path.join(tmp, "test.c")
        with open(src, "w") as f:
            f.write(source)
        objects = compiler.compile([src], output_dir=tmp,
                                   extra_postargs=list(compile_flags))
        if link_flags is not None:
            compiler.link_executable(objects, "test", output_dir=tmp,
                                     extra_postargs=list(link_flags))
    except BUILD_ERRORS as exc:
        return exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None


#: Where macOS users have libomp (Homebrew on Apple Silicon and Intel, the
#: Python's own prefix for conda); $LIBOMP_PREFIX first.
LIBOMP_PREFIXES = [os.environ.get("LIBOMP_PREFIX", ""), "/opt/homebrew/opt/libomp",
                   "/usr/local/opt/libomp", sys.prefix]


def _openmp_candidates(compiler):
    """(compile flags, link flags) to try for OpenMP, best first."""
    if compiler.compiler_type == "msvc":
        yield ["/openmp"], []
        return
    yield ["-fopenmp"], ["-fopenmp"]
    if sys.platform == "darwin":
        # Apple's clang has OpenMP only through the preprocessor and libomp
        for prefix in filter(None, LIBOMP_PREFIXES):
            if os.path.exists(os.path.join(prefix, "include", "omp.h")):
                lib = os.path.join(prefix, "lib")
                yield (["-Xpreprocessor", "-fopenmp",
                        f"-I{os.path.join(prefix, 'include')}"],
                       [f"-L{lib}", "-lomp", f"-Wl,-rpath,{lib}"])


def _openmp_flags(compiler):
    """Compile and link flags for OpenMP, or ``None`` when unavailable."""
    for flags in _openmp_candidates(compiler):
        if _try_build(compiler, OPENMP_TEST, *flags) is None:
            return flags
    return None


class BuildExt(build_ext):
    """build_ext that decides OpenMP and optimisation flags per compiler,
    builds in parallel, and installs without the kernels when they cannot
    be built."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self):
        inplace = self.inplace
        try:
            super().run()
        except BUILD_ERRORS as exc:
            # setuptools builds into build_lib, then copies when inplace
            self.inplace = 0
            for ext in self.extensions:
                with contextlib.suppress(OSError):
                    os.unlink(self.get_ext_fullpath(ext.name))
            self.inplace = inplace
            self._without_kernels(f"{type(exc).__name__}: {exc}")
        else:
            self._write_note(None)

    def _without_kernels(self, reason):
        """Warn once and record ``reason``."""
        warnings.warn(
            "mnist_fast: the compiled kernels could not be built, so this "
            "install runs the NumPy backend (much slower); "
            "build_info() and 'mnist-fast info' say why. To get them, install "
            "a C compiler (gcc or clang; Xcode command-line tools on macOS; "
            "Microsoft C++ Build Tools on Windows) and reinstall. Reason: "
            f"{reason}")
        self._write_note(reason)

    def _write_note(self, reason):
        """Write NOT_COMPILED_FILE with ``reason``, or remove a stale one."""
        folder = os.path.dirname(self.get_ext_fullpath("mnist_fast._machine"))
        path = os.path.join(folder, NOT_COMPILED_FILE)
        if reason is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"not built when mnist_fast was installed: {reason}\n")

    def build_extensions(self):
        if _try_build(self.compiler, COMPILER_TEST) is not None:
            command = getattr(self.compiler, "compiler_so", None)
            name = command[0] if command else self.compiler.compiler_type
            raise CompileError(f"no working C compiler ({name!r} cannot "
                               "compile a test program)")
        if self.compiler.compiler_type == "msvc":
            opt_args = ["/Od"] if DEBUG else ["/O2"]
        else:
            opt_args = ["-O0", "-g"] if DEBUG else ["-O3", "-g0"]
        compile_args = list(opt_args)
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
            if self.compiler.compiler_type != "msvc":
                # Cython keeps a prange's chunk size in a variable that
                # only the OpenMP pragma reads: set, then unused here
                compile_args.append("-Wno-unused-but-set-variable")
        else:
            compile_args += openmp[0]
            link_args += openmp[1]
        simd_objects, simd_macros = self._simd_objects(opt_args)
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + ext.extra_compile_args
            ext.extra_link_args = link_args + ext.extra_link_args
            if ext.name.split(".")[-1] in KERNEL_MODULES:
                ext.extra_objects = simd_objects + ext.extra_objects
                ext.define_macros = ext.define_macros + simd_macros
        super().build_extensions()

    def _simd_objects(self, opt_args):
        """The C objects of the row helpers, one per variant, and the
        macros (``MF_HAVE_<VARIANT>=1``) that tell the modules which exist."""
        objects, macros = [], []
        variants = {} if self.compiler.compiler_type == "msvc" else SIMD_VARIANTS
        for variant, flags in [("baseline", [])] + list(variants.items()):
            macro = variant.upper()
            try:
                objects += self.compiler.compile(
                    [SIMD_SOURCE],
                    output_dir=os.path.join(self.build_temp, "simd", variant),
                    macros=SIMD_MACROS + ([] if variant == "baseline"
                                          else [(f"MF_VARIANT_{macro}", "1")]),
                    include_dirs=["src_cython"],
                    extra_postargs=opt_args + flags,
                    depends=SIMD_DEPENDS,
                )
            except CompileError as exc:
                if variant == "baseline":
                    raise
                warnings.warn(
                    f"mnist_fast: cannot build the {variant} kernels ({exc}); "
                    "building the baseline only. build_info()['simd'] "
                    "reports what runs.")
            else:
                if variant != "baseline":
                    macros.append((f"MF_HAVE_{macro}", "1"))
        return objects, macros


#: The stable ABI: one wheel for CPython 3.11 and later (``abi3``), through
#: Cython's Limited API (from Cython 3.1; not on free-threaded builds, which
#: have no stable ABI).  The kernels run as fast (docs/performance.md).
LIMITED_API_VERSION = (3, 11)


def _limited_api(cython_version):
    """Whether to build for the stable ABI with this Cython and Python."""
    cython = tuple(int(part) for part in cython_version.split(".")[:2])
    return (cython >= (3, 1) and sys.version_info >= LIMITED_API_VERSION
            and not sysconfig.get_config_var("Py_GIL_DISABLED"))


def _extensions(limited_api):
    from Cython import __version__ as cython_version
    from Cython.Build import cythonize

    macros = [
        ("MNIST_FAST_CYTHON_VERSION", f'"{cython_version}"'),
        ("MNIST_FAST_DEBUG_BUILD", "1" if DEBUG else "0"),
    ] + SIMD_MACROS
    if limited_api:
        major, minor = LIMITED_API_VERSION
        macros += [("Py_LIMITED_API", f"0x{major:02X}{minor:02X}0000"),
                   ("CYTHON_LIMITED_API", "1")]
    extensions = [
        Extension(f"mnist_fast.{name}", [f"src_cython/{name}.pyx"],
                  include_dirs=["src_cython"], define_macros=macros,
                  py_limited_api=limited_api, depends=SIMD_DEPENDS)
        for name in MODULES
    ]
    return cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        include_path=["src_cython"],
        # Debug and release C files are generated apart, never mixed up.
        build_dir="build/cython-debug" if DEBUG else "build/cython",
        quiet=True,
    )


def _setup():
    from Cython import __version__ as cython_version

    limited_api = _limited_api(cython_version)
    major, minor = LIMITED_API_VERSION
    setup(ext_modules=_extensions(limited_api), cmdclass={"build_ext": BuildExt},
          # the wheel's tag: cp311-abi3, for this and every later CPython
          options={"bdist_wheel": {"py_limited_api": f"cp{major}{minor}"}}
          if limited_api else {})


_setup()
