"""MNIST, bundled and offline: ``load_mnist`` with the book's signature.

The four canonical IDX files (Y. LeCun, C. Cortes, C. J. C. Burges; CC
BY-SA 3.0) ship gzip-compressed inside the package, with the SHA-256 of
their decompressed bytes.  The first call decompresses them, checks the
checksums and keeps the decoded uint8 arrays in a per-user cache (written
atomically); later calls read the cache.  Nothing here uses the network.
"""

import gzip
import hashlib
import math
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from .files import write_atomic
from .validation import describe, flag

#: The standard file names, shared by MNIST and Fashion-MNIST.
FILES = {
    "train_img": "train-images-idx3-ubyte",
    "train_label": "train-labels-idx1-ubyte",
    "test_img": "t10k-images-idx3-ubyte",
    "test_label": "t10k-labels-idx1-ubyte",
}
#: Folder of IDX files to read instead of the bundled MNIST.
ENV_DATA_DIR = "MNIST_FAST_DATA_DIR"
#: Folder of the decoded-array cache (default: the user's cache folder).
ENV_CACHE_DIR = "MNIST_FAST_CACHE_DIR"

BUNDLED_DIR = Path(__file__).parent / "data"
N_CLASSES = 10
_IDX_UINT8 = 0x08
_IDX_NDIM = {"img": 3, "label": 1}


class IDXFormatError(ValueError):
    """An IDX file that is truncated, corrupted or not what was expected."""


def parse_idx(data, name):
    """Decode the bytes of an unsigned-byte IDX file.

    Parameters
    ----------
    data : bytes
        The whole (decompressed) file.
    name : str
        How to name the file in error messages.

    Returns
    -------
    numpy.ndarray of uint8, shaped by the file's dimensions.
    """
    if len(data) < 4:
        raise IDXFormatError(
            f"{name}: not an IDX file: {len(data)} bytes, shorter than the "
            "4-byte magic number"
        )
    zero, dtype_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != _IDX_UINT8 or ndim == 0:
        raise IDXFormatError(
            f"{name}: bad magic number 0x{data[:4].hex()}: expected "
            "0x0000080N (unsigned bytes, N dimensions), e.g. 0x00000803 "
            "(2051) for images or 0x00000801 (2049) for labels"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(
            f"{name}: truncated header: {len(data)} bytes, expected {header}"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big")
                 for i in range(ndim))
    expected = header + math.prod(dims)  # exact: no int64 overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{name}: {what}: {len(data)} bytes, expected {expected} for "
            f"dimensions {dims}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_bytes(path):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    # bad gzip header or CRC (OSError), corrupted deflate data (zlib.error),
    # truncated stream (EOFError)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXFormatError(f"{path}: cannot be read: {exc}") from None


def _find(folder, stem):
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file {stem} (or {stem}.gz) not found in {folder}"
    )


def _check_split(arrays, folder):
    """Dimensions and labels that fit together, or an error naming files."""
    for key, arr in arrays.items():
        kind = key.split("_")[1]
        if arr.ndim != _IDX_NDIM[kind]:
            raise IDXFormatError(
                f"{folder / FILES[key]}: expected {_IDX_NDIM[kind]} "
                f"dimension(s) for {'images' if kind == 'img' else 'labels'}, "
                f"got shape {arr.shape}"
            )
    for split in ("train", "test"):
        n_img = arrays[f"{split}_img"].shape[0]
        n_lab = arrays[f"{split}_label"].shape[0]
        if n_img != n_lab:
            raise IDXFormatError(
                f"{folder}: {FILES[split + '_img']} holds {n_img} images but "
                f"{FILES[split + '_label']} holds {n_lab} labels"
            )
        top = int(arrays[f"{split}_label"].max(initial=0))
        if top >= N_CLASSES:
            raise IDXFormatError(
                f"{folder / FILES[split + '_label']}: labels must be 0-9, "
                f"got {top}"
            )
    if arrays["train_img"].shape[1:] != arrays["test_img"].shape[1:]:
        raise IDXFormatError(
            f"{folder}: training images are {arrays['train_img'].shape[1:]} "
            f"but test images are {arrays['test_img'].shape[1:]}"
        )


def read_idx_folder(folder):
    """The four standard files of a folder, ``.gz`` or raw, decoded."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            f"data_dir must be a folder holding the four MNIST files, got "
            f"the file {folder}"
        )
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST data folder not found: {folder}")
    arrays = {}
    for key, stem in FILES.items():
        path = _find(folder, stem)
        arrays[key] = parse_idx(_read_bytes(path), str(path))
    _check_split(arrays, folder)
    return arrays


def _checksums():
    sums = {}
    for line in (BUNDLED_DIR / "SHA256SUMS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, stem = line.split()
            sums[stem] = digest
    return sums


def cache_dir():
    """Folder of the decoded-array cache (``$MNIST_FAST_CACHE_DIR``)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist_fast"


def _save_atomic(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.save(f, arr, allow_pickle=False))


def _load_bundled_file(stem, digest):
    """One bundled file: from the cache, or decoded, verified and cached."""
    cached = cache_dir() / f"{stem}-{digest[:16]}.npy"
    try:
        return np.load(cached, allow_pickle=False)
    except (OSError, ValueError):  # absent, unreadable or damaged cache
        pass
    path = BUNDLED_DIR / f"{stem}.gz"
    data = _read_bytes(path)
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise IDXFormatError(
            f"{path}: the bundled file is corrupted: SHA-256 of its "
            f"decompressed bytes is {actual}, expected {digest}; reinstall "
            "mnist_fast"
        )
    arr = parse_idx(data, str(path))
    try:
        _save_atomic(cached, arr)
    except OSError as exc:
        warnings.warn(f"mnist_fast: cannot cache MNIST in {cached.parent}: "
                      f"{exc}; set ${ENV_CACHE_DIR} to a writable folder")
    return arr


def _one_hot(labels):
    one_hot = np.zeros((labels.size, N_CLASSES))
    one_hot[np.arange(labels.size), labels] = 1
    return one_hot


def load_mnist(normalize=True, flatten=True, one_hot_label=False, *,
               data_dir=None):
    """Load MNIST as the book does, from the data bundled with the package.

    Parameters
    ----------
    normalize : bool, default True
        Images as float32 in [0, 1] (``x / 255``); else uint8 in 0-255.
    flatten : bool, default True
        Images as rows of 784 values; else shape (N, 1, 28, 28).
    one_hot_label : bool, default False
        Labels as float64 one-hot rows (N, 10); else uint8 classes (N,).
    data_dir : str or path, optional
        Read the four standard IDX files (``train-images-idx3-ubyte`` ...,
        each raw or ``.gz``) from this folder instead, e.g. Fashion-MNIST;
        default ``$MNIST_FAST_DATA_DIR``, else the bundled MNIST.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))
        60,000 training and 10,000 test images for MNIST.

    Raises
    ------
    TypeError
        ``normalize``, ``flatten`` or ``one_hot_label`` is not True/False;
        ``data_dir`` is not a str or path.
    FileNotFoundError
        ``data_dir`` or one of its four files does not exist.
    NotADirectoryError
        ``data_dir`` is a file.
    IDXFormatError (a ValueError)
        A file is truncated, has trailing bytes, is not valid gzip, has
        the wrong magic number or dimensions, does not match its partner
        file (image and label counts, image sizes), holds labels beyond
        9, or (bundled files) fails its SHA-256 checksum.
    """
    normalize = flag(normalize, "normalize")
    flatten = flag(flatten, "flatten")
    one_hot_label = flag(one_hot_label, "one_hot_label")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(
            f"data_dir must be a str or os.PathLike folder, got "
            f"{describe(data_dir)}"
        )
    data_dir = data_dir or os.environ.get(ENV_DATA_DIR)
    if data_dir:
        arrays = read_idx_folder(data_dir)
    else:
        sums = _checksums()
        arrays = {key: _load_bundled_file(stem, sums[stem])
                  for key, stem in FILES.items()}

    out = {}
    for split in ("train", "test"):
        x = arrays[f"{split}_img"]
        if normalize:
            x = x.astype(np.float32)
            x /= 255.0
        else:
            x = x.copy() if not x.flags.writeable else x
        x = x.reshape(-1, 1, *x.shape[1:]) if not flatten else x.reshape(len(x), -1)
        t = arrays[f"{split}_label"]
        t = _one_hot(t) if one_hot_label else np.array(t, dtype=np.uint8)
        out[split] = (x, t)
    return out["train"], out["test"]
