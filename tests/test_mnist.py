import gzip
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnist_fast
from mnist_fast import mnist as mnist_module
from mnist_fast.mnist import FILES, IDXFormatError, load_mnist, parse_idx
from conftest import cli_env

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(arr):
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape
    )
    return header + arr.tobytes()


def write_folder(folder, n_train=5, n_test=3, side=4, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_img": rng.integers(0, 256, (n_train, side, side)),
        "train_label": rng.integers(0, 10, n_train),
        "test_img": rng.integers(0, 256, (n_test, side, side)),
        "test_label": rng.integers(0, 10, n_test),
    }
    for key, arr in arrays.items():
        data = idx_bytes(arr)
        if gz:
            (folder / f"{FILES[key]}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / FILES[key]).write_bytes(data)
    return arrays


def test_bundled_mnist_shapes_dtypes_ranges(mnist):
    (x_train, t_train), (x_test, t_test) = mnist
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert 0.0 == x_train.min() and x_train.max() == 1.0
    assert t_train.shape == (60000,) and t_test.shape == (10000,)
    assert np.bincount(t_train).tolist() == TRAIN_COUNTS
    assert np.bincount(t_test).tolist() == TEST_COUNTS


def test_bundled_data_comes_from_the_package():
    bundled = Path(mnist_fast.__file__).parent / "data"
    for stem in FILES.values():
        assert (bundled / f"{stem}.gz").is_file()
    # the checksums of the decompressed bytes ship alongside
    sums = mnist_module._checksums()
    data = gzip.decompress((bundled / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.sha256(data).hexdigest() == sums["t10k-labels-idx1-ubyte"]


def test_book_options(mnist):
    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=False, flatten=False, one_hot_label=True
    )
    assert x_train.dtype == np.uint8 and x_train.shape == (60000, 1, 28, 28)
    assert x_test.shape == (10000, 1, 28, 28)
    assert t_train.dtype == np.float64 and t_train.shape == (60000, 10)
    assert (t_train.sum(axis=1) == 1).all()
    (x_norm, t_int), _ = mnist
    np.testing.assert_array_equal(t_train.argmax(axis=1), t_int)
    # normalisation is the book's: astype(float32) / 255
    np.testing.assert_array_equal(
        x_train.reshape(60000, 784).astype(np.float32) / 255.0, x_norm
    )
    x_train[0, 0, 0, 0] = 7  # arrays returned are the caller's own
    assert load_mnist(normalize=False)[0][0][0, 0] == 0


def test_cold_then_warm_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(mnist_module.ENV_CACHE_DIR, str(tmp_path / "cache"))
    cold = load_mnist()
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 4 and all(n.endswith(".npy") for n in cached)
    warm = load_mnist()
    for (x_cold, t_cold), (x_warm, t_warm) in zip(cold, warm):
        np.testing.assert_array_equal(x_cold, x_warm)
        np.testing.assert_array_equal(t_cold, t_warm)


PEAK_MEMORY = """
import resource, sys
import mnist_fast
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
(x, t), (x_test, t_test) = mnist_fast.load_mnist()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - before) * 1024)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="ru_maxrss in KiB is Linux's")
@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_load_mnist_holds_no_more_than_one_split_twice(tmp_path, cache):
    """At its peak ``load_mnist`` holds the uint8 images and the float32
    copy of the training split only: each split's uint8 images go as soon
    as their copy is made (learners' laptops run short of memory first)."""
    env = cli_env(**{mnist_module.ENV_CACHE_DIR: str(tmp_path)})
    if cache == "warm":
        subprocess.run([sys.executable, "-c", PEAK_MEMORY], env=env,
                       check=True, capture_output=True, cwd=tmp_path)
    out = subprocess.run([sys.executable, "-c", PEAK_MEMORY], env=env,
                         check=True, capture_output=True, text=True,
                         cwd=tmp_path)
    uint8_images = (60000 + 10000) * 784
    float32_train = 60000 * 784 * 4
    slack = 8 * 2**20  # the interpreter's own allocations meanwhile
    assert int(out.stdout) <= uint8_images + float32_train + slack


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv(mnist_module.ENV_CACHE_DIR, str(tmp_path))
    load_mnist()
    victim = next(tmp_path.glob("t10k-labels*.npy"))
    victim.write_bytes(victim.read_bytes()[:50])
    (_, _), (_, t_test) = load_mnist()
    assert np.bincount(t_test).tolist() == TEST_COUNTS


def test_corrupted_bundled_file_is_rejected(tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    for f in mnist_module.BUNDLED_DIR.iterdir():
        (bundled / f.name).write_bytes(f.read_bytes())
    data = bytearray(gzip.decompress((bundled / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    data[100] ^= 0xFF  # one flipped label byte: still a valid IDX file
    (bundled / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(data)))
    monkeypatch.setattr(mnist_module, "BUNDLED_DIR", bundled)
    monkeypatch.setenv(mnist_module.ENV_CACHE_DIR, str(tmp_path / "cache"))
    with pytest.raises(IDXFormatError, match="t10k-labels-idx1-ubyte.gz.*corrupted"):
        load_mnist()


@pytest.mark.parametrize("gz", [False, True])
def test_data_dir_reads_any_idx_folder(tmp_path, gz):
    arrays = write_folder(tmp_path, gz=gz)
    (x, t), (xt, tt) = load_mnist(data_dir=tmp_path, normalize=False)
    np.testing.assert_array_equal(x, arrays["train_img"].reshape(5, 16))
    np.testing.assert_array_equal(t, arrays["train_label"])
    np.testing.assert_array_equal(xt, arrays["test_img"].reshape(3, 16))
    (x, _), _ = load_mnist(data_dir=str(tmp_path), flatten=False)
    assert x.shape == (5, 1, 4, 4) and x.dtype == np.float32


def test_data_dir_from_environment(tmp_path, monkeypatch):
    write_folder(tmp_path, n_train=7)
    monkeypatch.setenv(mnist_module.ENV_DATA_DIR, str(tmp_path))
    (x, _), _ = load_mnist()
    assert x.shape == (7, 16)


def test_missing_file_names_it(tmp_path):
    write_folder(tmp_path)
    (tmp_path / FILES["test_label"]).unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_mnist(data_dir=tmp_path / "nowhere")


def test_truncated_file_names_it(tmp_path):
    write_folder(tmp_path)
    path = tmp_path / FILES["train_img"]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(IDXFormatError, match="train-images-idx3-ubyte.*truncated"):
        load_mnist(data_dir=tmp_path)


def test_truncated_gzip_is_rejected(tmp_path):
    write_folder(tmp_path, gz=True)
    path = tmp_path / f"{FILES['train_label']}.gz"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(IDXFormatError, match="train-labels-idx1-ubyte.gz"):
        load_mnist(data_dir=tmp_path)


def test_mismatched_counts_are_rejected(tmp_path):
    write_folder(tmp_path)
    (tmp_path / FILES["test_label"]).write_bytes(idx_bytes(np.zeros(4)))
    with pytest.raises(IDXFormatError, match="3 images but .* 4 labels"):
        load_mnist(data_dir=tmp_path)


def test_labels_out_of_range_are_rejected(tmp_path):
    write_folder(tmp_path)
    (tmp_path / FILES["train_label"]).write_bytes(idx_bytes(np.full(5, 10)))
    with pytest.raises(IDXFormatError, match="labels must be 0-9"):
        load_mnist(data_dir=tmp_path)


def test_images_and_labels_swapped_are_rejected(tmp_path):
    write_folder(tmp_path)
    img = (tmp_path / FILES["train_img"]).read_bytes()
    (tmp_path / FILES["train_img"]).write_bytes(
        (tmp_path / FILES["train_label"]).read_bytes())
    (tmp_path / FILES["train_label"]).write_bytes(img)
    with pytest.raises(IDXFormatError, match="expected 3 dimension"):
        load_mnist(data_dir=tmp_path)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "shorter than the 4-byte magic"),
        (b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\0\0\0\0", "bad magic"),
        (b"\x12\x34\x08\x01" + (1).to_bytes(4, "big") + b"\0", "bad magic"),
        (b"\x00\x00\x08\x03" + (1).to_bytes(4, "big"), "truncated header"),
        (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\1\2", "truncated"),
        (b"\x00\x00\x08\x01" + (1).to_bytes(4, "big") + b"\1\2", "trailing bytes"),
    ],
)
def test_parse_idx_rejects_malformed_bytes(data, message):
    with pytest.raises(IDXFormatError, match=message) as info:
        parse_idx(data, "some-file")
    assert "some-file" in str(info.value)


def test_parse_idx_reads_dimensions():
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(arr), "f"), arr)


def replace_file(folder, key, data):
    """Write ``data`` as the raw file of ``key``, removing its ``.gz``."""
    (folder / f"{FILES[key]}.gz").unlink(missing_ok=True)
    (folder / FILES[key]).write_bytes(data)


@pytest.mark.parametrize("key, data, message", [
    ("train_label", b"", "train-labels-idx1-ubyte: not an IDX file: 0 bytes"),
    ("test_img", bytes([0, 0, 0x0D, 3]) + bytes(12),
     "t10k-images-idx3-ubyte: bad magic number 0x00000d03"),
    ("train_img", idx_bytes(np.zeros((5, 4, 4))) + b"\0",
     "train-images-idx3-ubyte: has trailing bytes: 97 bytes, expected 96 "
     "for dimensions (5, 4, 4)"),
    ("test_label", bytes([0, 0, 8, 3]) + (2**32 - 1).to_bytes(4, "big") * 3,
     "t10k-labels-idx1-ubyte: truncated: 16 bytes, expected "
     f"{16 + (2**32 - 1) ** 3} for dimensions"),
    ("test_img", idx_bytes(np.zeros((3, 5, 5))),
     "training images are (4, 4) but test images are (5, 5)"),
])
def test_malformed_files_are_named_with_what_is_wrong(tmp_path, key, data, message):
    write_folder(tmp_path)
    replace_file(tmp_path, key, data)
    with pytest.raises(IDXFormatError, match=re.escape(message)):
        load_mnist(data_dir=tmp_path)


@pytest.mark.parametrize("spoil, message", [
    # a flipped byte in the deflate stream (it raised zlib.error)
    (lambda data: data[:10] + bytes([data[10] ^ 0xFF]) + data[11:],
     "cannot be read: Error -3 while decompressing data"),
    (lambda data: data[:-8] + bytes(8), "CRC check failed"),
    (lambda data: b"plain bytes, not gzip", "Not a gzipped file"),
])
def test_corrupted_gzip_is_an_idx_format_error(tmp_path, spoil, message):
    write_folder(tmp_path, gz=True)
    path = tmp_path / f"{FILES['test_img']}.gz"
    path.write_bytes(spoil(path.read_bytes()))
    with pytest.raises(IDXFormatError, match=f"t10k-images-idx3-ubyte.gz: .*{message}"):
        load_mnist(data_dir=tmp_path)


def test_a_folder_where_a_file_should_be_is_missing(tmp_path):
    write_folder(tmp_path)
    (tmp_path / FILES["train_img"]).unlink()
    (tmp_path / FILES["train_img"]).mkdir()
    with pytest.raises(FileNotFoundError,
                       match="MNIST file train-images-idx3-ubyte .*not found in"):
        load_mnist(data_dir=tmp_path)


def test_data_dir_must_be_a_folder_path(tmp_path):
    write_folder(tmp_path)
    with pytest.raises(NotADirectoryError,
                       match="data_dir must be a folder holding the four MNIST "
                             "files, got the file .*train-labels-idx1-ubyte"):
        load_mnist(data_dir=tmp_path / FILES["train_label"])
    with pytest.raises(TypeError,
                       match="data_dir must be a str or os.PathLike folder, got int 3"):
        load_mnist(data_dir=3)


@pytest.mark.parametrize("option", ["normalize", "flatten", "one_hot_label"])
def test_options_must_be_true_or_false(option):
    with pytest.raises(TypeError, match=f"{option} must be True or False, got str 'no'"):
        load_mnist(**{option: "no"})


# -- decompression bounded by the header ---------------------------------------

def gzip_stream(path, *parts):
    """Write ``parts`` (bytes, or (byte, count) runs of one byte) as one
    gzip file, compressing the runs a MiB at a time."""
    with gzip.open(path, "wb") as f:
        for part in parts:
            if isinstance(part, bytes):
                f.write(part)
                continue
            byte, count = part
            block = byte * (1 << 20)
            for start in range(0, count, len(block)):
                f.write(block[:count - start])


def peak_python_memory(call):
    """The exception ``call()`` raises and the peak of Python's allocations
    meanwhile (tracemalloc: bytes objects, NumPy's buffers)."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 -- returned to the test
        error = exc
    else:
        error = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak


@pytest.mark.parametrize("zeros", [1, 100 * 2**20])
def test_gzip_longer_than_its_header_stops_at_the_declared_size(tmp_path, zeros):
    write_folder(tmp_path, gz=True)
    path = tmp_path / f"{FILES['train_img']}.gz"
    header = idx_bytes(np.zeros((5, 4, 4)))
    gzip_stream(path, header, (b"\0", zeros))  # 80 bytes declared, then more
    assert path.stat().st_size < 200_000
    error, peak = peak_python_memory(lambda: load_mnist(data_dir=tmp_path))
    assert isinstance(error, IDXFormatError)
    assert str(error) == (f"{path}: has trailing bytes: more than 96 bytes, "
                          "expected 96 for dimensions (5, 4, 4)")
    assert peak < 8 * 2**20  # a 100 MiB stream is not decompressed whole


@pytest.mark.parametrize("dims", [(2**31 + 1,), (60000, 28, 28, 28, 28),
                                  (2**32 - 1,) * 3])
def test_header_declaring_too_much_is_refused_before_reading(tmp_path, dims):
    write_folder(tmp_path, gz=True)
    path = tmp_path / f"{FILES['train_img']}.gz"
    header = bytes([0, 0, 8, len(dims)]) + b"".join(
        d.to_bytes(4, "big") for d in dims)
    gzip_stream(path, header, (b"\x07", 50 * 2**20))
    error, peak = peak_python_memory(lambda: load_mnist(data_dir=tmp_path))
    assert isinstance(error, IDXFormatError)
    assert re.fullmatch(
        re.escape(f"{path}: dimensions {dims} declare ") + r"\d+"
        + re.escape(f" bytes of data, more than the {2**31} bytes (2 GiB) "
                    "an IDX file may hold"), str(error))
    assert peak < 8 * 2**20


def test_gzip_shorter_than_its_header_is_truncated(tmp_path):
    write_folder(tmp_path, gz=True)
    path = tmp_path / f"{FILES['test_label']}.gz"
    gzip_stream(path, idx_bytes(np.zeros(3))[:8], (b"\1", 2))  # 3 labels declared
    with pytest.raises(IDXFormatError, match=re.escape(
            f"{path}: truncated: 10 bytes, expected 11 for dimensions (3,)")):
        load_mnist(data_dir=tmp_path)


def test_raw_file_length_is_checked_before_reading(tmp_path):
    # a raw file's length is known: the messages give it, and the data is
    # read only when it is what the header declares
    write_folder(tmp_path)
    path = tmp_path / FILES["test_img"]
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4))) + bytes(10 * 2**20))
    error, peak = peak_python_memory(lambda: load_mnist(data_dir=tmp_path))
    assert str(error) == (f"{path}: has trailing bytes: {64 + 10 * 2**20} "
                          "bytes, expected 64 for dimensions (3, 4, 4)")
    assert peak < 2**20


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_returns_the_header_and_the_array(tmp_path, gz):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    path = tmp_path / ("f.gz" if gz else "f")
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    header, got = mnist_module.read_idx(path)
    assert header == data[:16]
    np.testing.assert_array_equal(got, arr)
    assert got.dtype == np.uint8


# -- the per-user cache, verified on read ---------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch, warm_mnist_cache):
    """A copy of the warm cache, made the cache of this test."""
    import shutil

    folder = tmp_path / "cache"
    shutil.copytree(warm_mnist_cache, folder)
    monkeypatch.setenv(mnist_module.ENV_CACHE_DIR, str(folder))
    return folder


def cache_file(folder, stem):
    return next(folder.glob(f"{stem}-*.npy"))


def assert_cache_silent(stem):
    """Reading the cache file of ``stem`` now gives no warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return mnist_module._load_bundled_file(stem, mnist_module._checksums()[stem])


def npy_bytes(arr):
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npz_bytes(arr):
    import io

    buf = io.BytesIO()
    np.savez(buf, labels=arr)
    return buf.getvalue()


def huge_npy(elements, n=16):
    """A .npy header of uint8 declaring ``elements``, then ``n`` bytes."""
    small = npy_bytes(np.zeros(1, np.uint8))[:-1]
    shape = f"({elements},), }}".encode()
    huge = small.replace(b"(1,), }" + b" " * (len(shape) - 7), shape)
    assert len(huge) == len(small)
    return huge + bytes(n)


SPOILED_LABELS = {
    "5 labels for 10,000 images": lambda t: npy_bytes(t[:5]),
    "other dtype": lambda t: npy_bytes(t.astype(np.int64)),
    "all zeros": lambda t: npy_bytes(np.zeros_like(t)),
    "shuffled": lambda t: npy_bytes(np.random.default_rng(0).permutation(t)),
    "2-D": lambda t: npy_bytes(t.reshape(100, 100)),
    "one label changed": lambda t: npy_bytes(
        np.where(np.arange(t.size) == 77, (t + 1) % 10, t)),
    "zero bytes": lambda t: b"",
    "truncated": lambda t: npy_bytes(t)[:5000],
    "longer": lambda t: npy_bytes(t) + b"\0",
    "npz": lambda t: npz_bytes(t),
    "text": lambda t: b"not an array\n",
    "object dtype": lambda t: npy_bytes(np.array([1, 2], np.int64))[:8]
    + npy_bytes(np.array([1, 2], np.int64))[8:].replace(b"'<i8'", b"'|O' "),
}


@pytest.mark.parametrize("spoil", list(SPOILED_LABELS), ids=list(SPOILED_LABELS))
def test_cache_that_is_not_the_bundled_file_is_rebuilt(cache, mnist, spoil):
    _, (_, t_right) = mnist
    victim = cache_file(cache, "t10k-labels-idx1-ubyte")
    victim.write_bytes(SPOILED_LABELS[spoil](t_right))
    with pytest.warns(UserWarning, match=re.escape(
            f"mnist_fast: the cached MNIST file {victim} is not "
            "t10k-labels-idx1-ubyte (")) as caught:
        (_, _), (_, t_test) = load_mnist()
    assert len(caught) == 1, [str(w.message) for w in caught]
    np.testing.assert_array_equal(t_test, t_right)
    # rebuilt: it is read without a word now
    np.testing.assert_array_equal(assert_cache_silent("t10k-labels-idx1-ubyte"), t_right)


@pytest.mark.parametrize("content, reason", [
    # the digest covers the shape: it is that of the IDX file, header included
    (lambda x: npy_bytes(x[:, :27]), "its contents are not the bundled file's (SHA-256)"),
    (lambda x: npy_bytes(np.asfortranarray(x)),
     "holds a Fortran-order uint8 array of shape (10000, 28, 28)"),
    (lambda x: npy_bytes(x.astype(np.float32) / 255), "holds a float32 array"),
    (lambda x: npy_bytes(x)[:128] + x.tobytes()[:1000],
     "1000 bytes of data for an array of shape (10000, 28, 28), expected 7840000"),
    (lambda x: npy_bytes(np.zeros_like(x)),
     "its contents are not the bundled file's (SHA-256)"),
])
def test_cached_images_are_checked_by_shape_dtype_and_digest(cache, mnist, content, reason):
    _, (x_right, _) = mnist
    victim = cache_file(cache, "t10k-images-idx3-ubyte")
    raw = (x_right * 255).round().astype(np.uint8).reshape(-1, 28, 28)
    victim.write_bytes(content(raw))
    with pytest.warns(UserWarning, match=re.escape(str(victim)) + ".*" + re.escape(reason)):
        _, (x_test, _) = load_mnist()
    np.testing.assert_array_equal(x_test, x_right)
    assert_cache_silent("t10k-images-idx3-ubyte")


@pytest.mark.parametrize("elements, reason", [
    (4_000_000_000, "16 bytes of data for an array of shape (4000000000,), "
                    "expected 4000000000"),
    (2**40, "it holds a uint8 array of shape (1099511627776,), not the uint8 "
            "array of an IDX file"),
])
def test_cache_header_declaring_a_huge_array_allocates_nothing(tmp_path, monkeypatch,
                                                               elements, reason):
    monkeypatch.setenv(mnist_module.ENV_CACHE_DIR, str(tmp_path))
    stem = "t10k-labels-idx1-ubyte"
    digest = mnist_module._checksums()[stem]
    right = mnist_module._load_bundled_file(stem, digest)
    victim = cache_file(tmp_path, stem)
    victim.write_bytes(huge_npy(elements))

    def load():
        with pytest.warns(UserWarning, match=re.escape(reason)):
            return mnist_module._load_bundled_file(stem, digest)

    error, peak = peak_python_memory(load)
    assert error is None and peak < 8 * 2**20
    np.testing.assert_array_equal(mnist_module._load_bundled_file(stem, digest), right)


def test_folder_in_the_cache_place_warns_and_loads_from_the_package(cache, mnist):
    _, (_, t_right) = mnist
    victim = cache_file(cache, "t10k-labels-idx1-ubyte")
    victim.unlink()
    victim.mkdir()
    with pytest.warns(UserWarning) as caught:
        (_, _), (_, t_test) = load_mnist()
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    assert messages[0].startswith(f"mnist_fast: the cached MNIST file {victim} is not ")
    assert "(it is a folder)" in messages[0]
    assert messages[1].startswith(f"mnist_fast: cannot cache MNIST in {cache}: ")
    np.testing.assert_array_equal(t_test, t_right)
    # the folder is left alone, no temporary file is left behind
    assert victim.is_dir() and not list(victim.iterdir())
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []


def no_permission(victim):
    if not hasattr(os, "geteuid") or os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    victim.chmod(0)


def symlink_loop(victim):
    victim.unlink()
    victim.symlink_to(victim.name)


def fifo(victim):
    victim.unlink()
    os.mkfifo(victim)  # opening it would wait for a writer


@pytest.mark.parametrize("spoil, reason", [
    (no_permission, "Permission denied"),
    (symlink_loop, "Too many levels of symbolic links"),
    pytest.param(fifo, "it is not a regular file",
                 marks=pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")),
])
def test_unreadable_cache_file_is_rebuilt(cache, mnist, spoil, reason):
    _, (_, t_right) = mnist
    victim = cache_file(cache, "t10k-labels-idx1-ubyte")
    spoil(victim)
    with pytest.warns(UserWarning, match=re.escape(f"{victim} is not "
                                                   f"t10k-labels-idx1-ubyte ({reason})")):
        (_, _), (_, t_test) = load_mnist()
    np.testing.assert_array_equal(t_test, t_right)
    np.testing.assert_array_equal(assert_cache_silent("t10k-labels-idx1-ubyte"), t_right)
