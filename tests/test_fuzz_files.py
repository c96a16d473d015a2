"""Fuzzing the files the package reads: image files for ``load_digit``,
files in the place of the MNIST cache, and IDX files, raw and gzip.

Whatever the file holds, ``load_digit`` returns an MNIST row or raises the
documented ``ValueError`` naming the file, and ``load_mnist`` returns the
bundled MNIST, rebuilding a cache file that is not what it stands for;
``read_idx`` returns the file's bytes or raises ``IDXFormatError`` naming it.
derandomize=True: CI replays the same examples every run.
"""

import gzip
import io
import shutil
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mnist_fast import mnist as mnist_module
from mnist_fast.image import load_digit
from mnist_fast.mnist import IDXFormatError, load_mnist, read_idx
from test_fuzz import idx_files

FILES_FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                      database=None, suppress_health_check=list(HealthCheck))

#: Modes, the dtype of the arrays that make them, and formats that store them.
MODES = {
    "L": ("u1", ["PNG", "TIFF", "BMP", "GIF", "JPEG"]),
    "P": ("u1", ["PNG", "TIFF", "BMP", "GIF"]),
    "1": ("?", ["PNG", "TIFF", "BMP"]),
    "I;16": ("<u2", ["PNG", "TIFF"]),
    "I": ("<i4", ["TIFF"]),
    "F": ("<f4", ["TIFF"]),
    "RGB": ("u1", ["PNG", "TIFF", "BMP", "JPEG"]),
    "RGBA": ("u1", ["PNG", "TIFF"]),
    "LA": ("u1", ["PNG"]),
    "CMYK": ("u1", ["TIFF", "JPEG"]),
}
BANDS = {"RGB": 3, "RGBA": 4, "LA": 2, "CMYK": 4}


@st.composite
def pictures(draw):
    """The bytes of an image file of any mode, size and pixel values."""
    mode = draw(st.sampled_from(list(MODES)))
    dtype, formats = MODES[mode]
    shape = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    if mode in BANDS:
        shape += (BANDS[mode],)
    pixels = draw(hnp.arrays(np.dtype(dtype), shape))
    if mode == "F" and draw(st.booleans()):  # mostly in the documented range
        pixels = np.clip(np.nan_to_num(pixels), 0, 1).astype(dtype)
    # Pillow takes the mode of a single-band array from its dtype
    img = (Image.fromarray(pixels, mode) if mode in BANDS or mode == "P"
           else Image.fromarray(pixels))
    assert img.mode == mode
    if mode in ("P", "L") and draw(st.booleans()):
        img.info["transparency"] = draw(st.integers(0, 255))
    buf = io.BytesIO()
    fmt = draw(st.sampled_from(formats))
    img.save(buf, fmt, **({"transparency": img.info["transparency"]}
                          if "transparency" in img.info and fmt in ("PNG", "GIF") else {}))
    return buf.getvalue()


@st.composite
def image_files(draw):
    """Image files, whole, truncated or with a byte changed, or other bytes."""
    kind = draw(st.sampled_from(["whole", "whole", "truncated", "changed", "bytes"]))
    if kind == "bytes":
        head = draw(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM",
                                     b"II*\x00", b"MM\x00*", b"\xff\xd8\xff", b"P5\n"]))
        return head + draw(st.binary(max_size=200))
    data = draw(pictures())
    if kind == "truncated":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "changed":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return data


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("images")


@FILES_FUZZ
@given(data=image_files())
def test_any_image_file(image_folder, data):
    path = image_folder / "fuzz.img"
    path.write_bytes(data)
    with warnings.catch_warnings():
        # Pillow's decompression-bomb warning becomes the ValueError (its
        # warnings about damaged metadata are left as they are)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
        try:
            row = load_digit(path)
        except ValueError as exc:
            assert str(exc).startswith(f"{path}: "), str(exc)
            event(str(exc)[len(str(path)) + 2:].split(" (")[0][:40])
            return
    event("a row")
    assert row.shape == (1, 784) and row.dtype == np.float32
    assert np.isfinite(row).all() and row.min() >= 0 and row.max() <= 1


# -- the MNIST cache -------------------------------------------------------------

VICTIMS = ["t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte"]


@pytest.fixture(scope="module")
def cache_and_mnist(tmp_path_factory, warm_mnist_cache):
    """A copy of the warm cache, made the cache, and the right MNIST arrays."""
    folder = tmp_path_factory.mktemp("fuzz") / "cache"
    shutil.copytree(warm_mnist_cache, folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(mnist_module.ENV_CACHE_DIR, str(folder))
        yield folder, load_mnist(normalize=False)


def npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@st.composite
def cache_contents(draw, right):
    """What may be found in the place of a cache file of labels ``right``."""
    kind = draw(st.sampled_from(["array", "changed labels", "prefix", "bytes", "npy head"]))
    if kind == "array":
        dtype = draw(st.sampled_from(["u1", "i8", "f4", "?", "<u2"]))
        shape = draw(st.sampled_from([right.shape, (5,), (0,), (100, 100), ()]))
        return npy(draw(hnp.arrays(np.dtype(dtype), shape)))
    if kind == "changed labels":
        at = draw(st.integers(0, right.size - 1))
        changed = right.copy()
        changed[at] = (int(changed[at]) + draw(st.integers(1, 255))) % 256
        return npy(changed)
    whole = npy(right)
    if kind == "prefix":
        return whole[:draw(st.integers(0, len(whole) - 1))]
    if kind == "npy head":  # the right header, then anything
        return whole[:128] + draw(st.binary(max_size=64))
    return draw(st.binary(max_size=300))


@settings(FILES_FUZZ, max_examples=20)  # each reads the whole of MNIST
@given(data=st.data())
def test_anything_in_the_place_of_a_cache_file(cache_and_mnist, data):
    folder, right = cache_and_mnist
    stem = data.draw(st.sampled_from(VICTIMS))
    labels = right[1][1] if stem.startswith("t10k") else right[0][1]
    victim = next(folder.glob(f"{stem}-*.npy"))
    content = data.draw(cache_contents(labels))
    victim.write_bytes(content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_mnist(normalize=False)
    for (x, t), (x_right, t_right) in zip(got, right):
        # np.array_equal: assert_array_equal takes a second on 47 million pixels
        assert x.shape == x_right.shape and np.array_equal(x, x_right)
        assert t.shape == t_right.shape and np.array_equal(t, t_right)
    assert all(str(w.message).startswith(f"mnist_fast: the cached MNIST file {victim} ")
               for w in caught), [str(w.message) for w in caught]
    assert len(caught) == (content != npy(labels))
    assert victim.read_bytes() == npy(labels)  # rebuilt


# -- IDX files, raw and gzip -----------------------------------------------------

@FILES_FUZZ
@given(data=idx_files(), gz=st.sampled_from(["raw", "gzip", "gzip cut"]),
       cut=st.integers(1, 30))
def test_any_idx_file(image_folder, data, gz, cut):
    path = image_folder / ("fuzz.idx" if gz == "raw" else "fuzz.idx.gz")
    stored = data if gz == "raw" else gzip.compress(data)
    path.write_bytes(stored[:-cut] if gz == "gzip cut" else stored)
    try:
        header, arr = read_idx(path)
    except IDXFormatError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
        event(f"{gz}: error")
    else:
        event(f"{gz}: read")
        assert gz != "gzip cut"  # a gzip file cut short is never read
        assert arr.dtype == np.uint8 and header + arr.tobytes() == data
