import faulthandler
import math
import re
import signal
from pathlib import Path

import numpy as np
import pytest

import mnist_fast
from mnist_fast import book, kernels, reference
from mnist_fast.engine import Architecture
from mnist_fast.numpy_engine import REFERENCE_NETS
from mnist_fast.validation import PARAM_NAMES

faulthandler.enable()

COMPILED = mnist_fast.build_info()["compiled"]

#: The package's source folder next to these tests.
SOURCE_TREE = Path(__file__).resolve().parent.parent / "mnist_fast"
if not COMPILED and Path(mnist_fast.__file__).resolve().parent == SOURCE_TREE:
    # ``python -m pytest`` from a checkout imports the source tree, which
    # has no compiled kernels: testing it would skip every kernel test.
    pytest.exit(
        f"the tests imported mnist_fast from its source tree ({SOURCE_TREE}), "
        "whose compiled kernels are not built "
        f"({mnist_fast.build_info()['import_error']}). Install it "
        "(pip install \".[test]\") and run 'pytest' (not 'python -m "
        "pytest', which puts the checkout first on sys.path), or build the "
        "kernels in place (python setup.py build_ext --inplace).",
        returncode=4)
#: The backends to test: the NumPy reference, and the kernels when built.
BACKENDS = ["numpy"] + (["cython"] if COMPILED else [])

#: The public methods of TwoLayerNet; all but predict take labels.
METHODS = ["predict", "loss", "accuracy", "gradient", "numerical_gradient"]
#: The parameter names, in the book's order.
KEYS = PARAM_NAMES

requires_compiled = pytest.mark.skipif(
    not COMPILED, reason="the compiled kernels are not built",
)
#: The SIMD variants of the kernels that this build has and this CPU runs.
SIMD_VARIANTS = kernels.simd_variants()


@pytest.fixture(scope="module", params=SIMD_VARIANTS or [None])
def simd_variant(request):
    """Runs the tests of a module once with each SIMD variant of the
    kernels, in this process (``pytestmark = pytest.mark.usefixtures(
    "simd_variant")``); the variant that ran before is restored."""
    if request.param is None:
        yield None
        return
    before = kernels.simd()
    kernels.use_simd(request.param)
    try:
        yield request.param
    finally:
        kernels.use_simd(before)


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_live():
    """SIGINT as a terminal delivers it: Python's KeyboardInterrupt here,
    and the default action in the processes the tests start (a handled
    signal is reset to it by exec), even when the suite itself was started
    with SIGINT ignored (``nohup``, a shell's background job), which the
    package rightly leaves alone.  The Ctrl-C tests need it live."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST, normalised, integer labels."""
    return mnist_fast.load_mnist()


@pytest.fixture(scope="session")
def warm_mnist_cache(tmp_path_factory):
    """A folder holding the four MNIST cache files ``load_mnist()`` writes
    (tests copy it before they change it)."""
    from mnist_fast.mnist import ENV_CACHE_DIR

    folder = tmp_path_factory.mktemp("warm-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_CACHE_DIR, str(folder))
        mnist_fast.load_mnist()
    return folder


@pytest.fixture(scope="session")
def mnist_batch(mnist):
    """Batches of real MNIST rows: (x, integer labels, one-hot labels)."""
    (x_train, t_train), _ = mnist
    rng = np.random.default_rng(1234)

    def take(n):
        idx = rng.choice(x_train.shape[0], n)
        t = t_train[idx]
        return x_train[idx], t, np.eye(10)[t]

    return take


def pattern(text):
    """A regex for ``pytest.raises(match=...)``: ``text`` literally, except
    that ``.*`` stands for anything."""
    return ".*".join(map(re.escape, text.split(".*")))


def one_hot(t, k):
    return np.eye(k)[t]


def trained_params(shape, seed, std=0.01, scale=1.0):
    """Parameters shaped like a network's, random and not near zero."""
    D, H, K = shape
    rng = np.random.default_rng(seed)
    return {
        "W1": std * rng.standard_normal((D, H)) * scale,
        "b1": 0.1 * rng.standard_normal(H) * scale,
        "W2": std * rng.standard_normal((H, K)) * scale * 10,
        "b2": 0.1 * rng.standard_normal(K) * scale,
    }


def compiled_net(params, num_threads=None):
    """A compiled network with a copy of ``params``."""
    D, H = params["W1"].shape
    net = mnist_fast.TwoLayerNet(D, H, params["W2"].shape[1], backend="cython",
                                 num_threads=num_threads)
    net.params = {k: np.array(v) for k, v in params.items()}
    return net


def softmax_c_exp(a):
    """The book's softmax of one row of logits ``a`` with the C library's
    exp (``math.exp``), summed in order: how the compiled kernels decide a
    near tie on every NumPy (docs/api.md, What the contract decides)."""
    e = [math.exp(v - max(a)) for v in a]
    s = 0.0
    for v in e:
        s += v
    return np.array([v / s for v in e])


def reference_net(params, architecture=Architecture()):
    """The book's network of ``architecture`` (ch. 4's by default) on a
    deep copy of ``params``."""
    return REFERENCE_NETS[architecture].from_params(
        {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    )


# -- the mnist-fast command, run as a user runs it -----------------------------

def cli_env(**extra):
    """The environment of a ``python -m mnist_fast`` subprocess.

    It imports the package under test (installed or built in place), from
    a neutral working directory.
    """
    import os
    from pathlib import Path

    env = dict(os.environ, **extra)
    package_parent = str(Path(mnist_fast.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def run_cli(*args, cwd, timeout=300, **popen):
    """Run ``mnist-fast ARGS`` to completion; return the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "mnist_fast", *map(str, args)], cwd=cwd,
        env=cli_env(), capture_output=True, text=True, timeout=timeout,
        **popen)


def png_size(path):
    """(width, height) of a PNG file, after checking that it is one."""
    import struct

    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    assert len(data) > 5000, f"{path} is only {len(data)} bytes"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="session")
def cli_trained(tmp_path_factory):
    """``mnist-fast train``, the book's run shortened to 1200 iterations.

    Returns the CompletedProcess and its folder, which holds ``model.npz``
    and ``plots/loss.png``, ``plots/accuracy.png``.
    """
    folder = tmp_path_factory.mktemp("train")
    result = run_cli("train", "--iters", 1200, "--batch-size", 100, "--seed", 7,
                     "--no-progress", "--plot-dir", folder / "plots",
                     "--save", folder / "model.npz", cwd=folder)
    return result, folder


def call(net, method, x, t):
    """``net.<method>(x, t)``, or ``net.predict(x)``."""
    if method == "predict":
        return net.predict(x)
    return getattr(net, method)(x, t)


#: Largest differences from the reference allowed for legal inputs.
ATOL = {"predict": 1e-12, "loss": 1e-12, "gradient": 1e-12,
        "numerical_gradient": 1e-10, "accuracy": 0.0}


def assert_matches_reference(net, x, t, methods=METHODS):
    """Every method of ``net`` on ``(x, t)`` gives the book's answer.

    The oracle loop of the suite, as bottleneck's tests run each function
    against its ``bn.slow`` twin: the reference (the book's class of the
    network's architecture) runs in float64 on copies of ``net.params``,
    with integer class labels or float one-hot rows;
    results have the reference's shapes and float64 dtype, are within
    ``ATOL[method]`` (accuracy equal), and no method changes ``net.params``.
    """
    ref = reference_net(net.params, net.engine.architecture)
    before = {k: np.array(v) for k, v in net.params.items()}
    x_ref = np.asarray(x, dtype=np.float64)
    t_ref = np.asarray(t)
    t_ref = t_ref.astype(np.intp if t_ref.ndim == 1 else np.float64)
    for method in methods:
        got = call(net, method, x, t)
        want = call(ref, method, x_ref, t_ref)
        if isinstance(want, dict):
            assert sorted(got) == sorted(PARAM_NAMES)
            for key in PARAM_NAMES:
                assert got[key].shape == want[key].shape, (method, key)
                assert got[key].dtype == np.float64, (method, key)
            got, want = (np.concatenate([d[k].ravel() for k in PARAM_NAMES])
                         for d in (got, want))
        elif isinstance(want, np.ndarray):
            assert got.shape == want.shape and got.dtype == np.float64, method
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL[method],
                                   err_msg=method)
        for key in PARAM_NAMES:
            np.testing.assert_array_equal(net.params[key], before[key])


def assert_compiled_like_book(params, x, t, methods, num_threads=None):
    """:func:`assert_matches_reference` for a compiled network with
    ``params``, with integer labels ``t`` and with them one-hot."""
    net = compiled_net(params, num_threads)
    for labels in (t, one_hot(t, params["W2"].shape[1])):
        assert_matches_reference(net, x, labels, methods)



def book_loop_entries(net, x, t, key, indices):
    """The book's numerical_gradient loop on ``net`` (a reference network),
    run for some entries of ``net.params[key]`` only (each restored)."""
    arr, h = net.params[key], book.H
    out = []
    for idx in indices:
        tmp_val = arr[idx]
        arr[idx] = float(tmp_val) + h
        fxh1 = net.loss(x, t)
        arr[idx] = tmp_val - h
        fxh2 = net.loss(x, t)
        out.append((fxh1 - fxh2) / (2 * h))
        arr[idx] = tmp_val
    return np.array(out)


def sampled_entries(x, rng, n_w1, H=50, K=10):
    """Entries of each parameter array of a (D, H, K) network to check (the
    book's full loop takes ~25 s per batch at 784-50-10), always including
    W1 rows whose pixel is zero in every row of ``x`` and rows that are
    not."""
    zero_cols = np.flatnonzero((x == 0).all(axis=0))
    live_cols = np.flatnonzero((x != 0).any(axis=0))
    rows = np.concatenate([rng.choice(zero_cols, 4) if zero_cols.size else [],
                           rng.choice(live_cols, n_w1 - 4)]).astype(int)
    return {
        "W1": list(zip(rows, rng.integers(0, H, rows.size))),
        "b1": [(j,) for j in rng.choice(H, 10, replace=False)],
        "W2": list(zip(rng.integers(0, H, 20), rng.integers(0, K, 20))),
        "b2": [(k,) for k in range(K)],
    }


def assert_entries_like_book(got, net, x, t, picks):
    """The numerical gradient ``got`` at the entries ``picks`` (as
    :func:`sampled_entries` returns) is the book's loop on ``net`` within
    ``ATOL["numerical_gradient"]``."""
    for key, indices in picks.items():
        expected = book_loop_entries(net, x, t, key, indices)
        actual = np.array([got[key][idx] for idx in indices])
        assert np.abs(actual - expected).max() <= ATOL["numerical_gradient"], key

# -- model files as anyone may write them --------------------------------------

def npy_bytes(array=None, *, shape=None, descr="<f8", fortran_order=False,
              data=b"", version=(1, 0)):
    """The bytes of a ``.npy`` file: ``array``'s, or a header that declares
    ``shape`` and ``descr`` (whatever they are) followed by ``data``."""
    import io

    f = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(f, np.asanyarray(array), version=version)
        return f.getvalue()
    header = {"descr": descr, "fortran_order": fortran_order, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(f, header)
    else:
        np.lib.format.write_array_header_2_0(f, header)
    return f.getvalue() + data


def model_members(net):
    """What ``net.save`` writes: each array's name and ``.npy`` bytes."""
    from mnist_fast import model_file

    sizes = [net.input_size, net.hidden_size, net.output_size]
    arrays = {"format": np.array(model_file.FORMAT),
              "format_version": np.array(model_file.FORMAT_VERSION),
              "layer_sizes": np.array(sizes, dtype=np.int64),
              "activation": np.array(net.activation), **net.params}
    return {k: npy_bytes(v) for k, v in arrays.items()}


def write_zip(path, members, compression=None):
    """A zip archive of ``members`` (name -> bytes) named ``<name>.npy``, as
    ``np.savez`` (stored) or ``np.savez_compressed`` (ZIP_DEFLATED) write."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression or zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(f"{name}.npy", data)
    return path


#: Offsets of fields in a zip central directory entry.
CENTRAL_FIELDS = {"flag_bits": (8, "<H"), "compress_type": (10, "<H"),
                  "compress_size": (20, "<I"), "file_size": (24, "<I")}


def patch_central_directory(path, name, **fields):
    """Overwrite ``fields`` (see CENTRAL_FIELDS) of member ``<name>.npy``
    in the central directory of the zip archive ``path`` -- what a file
    that lies about its members looks like."""
    import struct

    data = bytearray(open(path, "rb").read())
    target = f"{name}.npy".encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + length] == target:
            for field, value in fields.items():
                offset, fmt = CENTRAL_FIELDS[field]
                struct.pack_into(fmt, data, at + offset, value)
            open(path, "wb").write(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{target} is not in {path}")
