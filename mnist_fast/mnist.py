"""MNIST, bundled and offline: ``load_mnist`` with the book's signature.

The four canonical IDX files (Y. LeCun, C. Cortes, C. J. C. Burges; CC
BY-SA 3.0) ship gzip-compressed inside the package, with the SHA-256 of
their decompressed bytes.  The first call decompresses them, checks the
checksums and keeps the decoded uint8 arrays in a per-user cache (written
atomically); later calls read the cache, checking each file against the
same checksum, and rebuild (with a warning) a file that does not match.
IDX files are read no further than their headers declare.  Nothing here
uses the network.
"""

import contextlib
import gzip
import hashlib
import math
import os
import stat
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
#: The most data an IDX file may declare: 2 GiB, four times the largest
#: file in use (EMNIST ByClass, 697,932 images of 28x28); beyond it,
#: ``normalize=True`` alone would need 8 GiB.  Checked before reading.
MAX_IDX_BYTES = 2**31
_CHUNK = 1 << 20
#: The readers of the .npy header versions ``np.save`` writes for uint8.
_NPY_HEADER = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


class IDXFormatError(ValueError):
    """An IDX file that is truncated, corrupted or not what was expected."""


def _parse_header(data, name):
    """The dimensions and header length at the start of an IDX file."""
    if len(data) < 4:
        raise IDXFormatError(
            f"{name}: not an IDX file: {len(data)} bytes, shorter than the "
            "4-byte magic number"
        )
    zero, dtype_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != _IDX_UINT8 or ndim == 0:
        raise IDXFormatError(
            f"{name}: bad magic number 0x{bytes(data[:4]).hex()}: expected "
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
    return dims, header


def _idx_header(shape):
    """The header of the IDX file of a uint8 array of ``shape``."""
    return bytes([0, 0, _IDX_UINT8, len(shape)]) + b"".join(
        d.to_bytes(4, "big") for d in shape)


def _check_length(length, expected, dims, name, *, more=False):
    """``length`` bytes where the header declares ``expected`` (``more``:
    the reading stopped at ``length`` and the file goes on)."""
    if length != expected:
        what = "truncated" if length < expected else "has trailing bytes"
        got = f"more than {expected}" if more else length
        raise IDXFormatError(
            f"{name}: {what}: {got} bytes, expected {expected} for "
            f"dimensions {dims}"
        )


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
    dims, header = _parse_header(data, name)
    # math.prod of Python ints: exact, no int64 overflow
    _check_length(len(data), header + math.prod(dims), dims, name)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_at_most(f, n):
    """Up to ``n`` bytes of ``f``, read in chunks: memory grows with what
    the file really holds, whatever ``n`` is."""
    chunks, got = [], 0
    while got < n:
        chunk = f.read(min(n - got, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_idx(path):
    """An IDX file, raw or ``.gz``, read no further than its header says.

    The header is read first; the data is then read (decompressed) up to
    the declared size and one byte more, so that a file longer than its
    header says -- a gzip bomb, say -- costs no more than the declared size.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    (header, array) : (bytes, numpy.ndarray of uint8)
        The file's header and its data, shaped by the header's dimensions.

    Raises
    ------
    IDXFormatError
        As :func:`parse_idx`; also broken gzip data, an unreadable file,
        and dimensions declaring more than ``MAX_IDX_BYTES`` of data.
    """
    name = str(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            head = _read_at_most(f, 4)
            if len(head) == 4:
                head += _read_at_most(f, 4 * head[3])
            dims, header = _parse_header(head, name)
            size = math.prod(dims)
            if not isinstance(f, gzip.GzipFile):  # a raw file's length is known
                _check_length(os.fstat(f.fileno()).st_size, header + size,
                              dims, name)
            if size > MAX_IDX_BYTES:
                raise IDXFormatError(
                    f"{name}: dimensions {dims} declare {size} bytes of data, "
                    f"more than the {MAX_IDX_BYTES} bytes (2 GiB) an IDX file "
                    "may hold"
                )
            data = _read_at_most(f, size + 1)
    # bad gzip header or CRC (OSError), corrupted deflate data (zlib.error),
    # truncated stream (EOFError)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXFormatError(f"{path}: cannot be read: {exc}") from None
    _check_length(header + len(data), header + size, dims, name,
                  more=len(data) > size)
    return bytes(head), np.frombuffer(data, dtype=np.uint8).reshape(dims)


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
        arrays[key] = read_idx(_find(folder, stem))[1]
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


def _digest(header, data):
    """SHA-256 (hex) of an IDX file's bytes, as SHA256SUMS gives it."""
    sha = hashlib.sha256(header)
    sha.update(data)
    return sha.hexdigest()


class _StaleCache(Exception):
    """A cache file that is not the array it stands for (the reason)."""


def _read_cache(path, digest):
    """The array cached in ``path``, or None if there is none.

    The file must be the ``.npy`` of a uint8 array whose IDX file (the
    header rebuilt from its shape, then its data) has the SHA-256
    ``digest``; anything else -- another array, zeros, a truncated or
    foreign file, a folder, a FIFO -- raises ``_StaleCache``.  The ``.npy``
    header and the file's length are checked before the data is read, so
    a header declaring a huge array allocates nothing.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):  # a FIFO would block open()
            raise _StaleCache("it is a folder" if stat.S_ISDIR(mode)
                              else "it is not a regular file")
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as exc:  # no permission, a loop of links ...
        raise _StaleCache(exc.strerror or str(exc)) from None
    with f:
        try:
            version = np.lib.format.read_magic(f)
            shape, fortran_order, dtype = _NPY_HEADER[version](f)
        except (KeyError, ValueError, OSError) as exc:
            raise _StaleCache(f"not a NumPy .npy array file: {exc}") from None
        if (dtype != np.uint8 or fortran_order or not 0 < len(shape) < 256
                or max(shape) >= 2**32):
            order = "Fortran-order " if fortran_order else ""
            raise _StaleCache(f"it holds a {order}{dtype} array of shape "
                              f"{shape}, not the uint8 array of an IDX file")
        size = math.prod(shape)
        left = os.fstat(f.fileno()).st_size - f.tell()
        if left != size:
            raise _StaleCache(f"{left} bytes of data for an array of shape "
                              f"{shape}, expected {size}")
        # its length is checked: read at once, into memory left unfilled
        data = np.fromfile(f, dtype=np.uint8, count=size)
        if data.size != size:
            raise _StaleCache("it changed while being read")
    if _digest(_idx_header(shape), data) != digest:
        raise _StaleCache("its contents are not the bundled file's (SHA-256)")
    return data.reshape(shape)


def _remove_special(path):
    """Remove ``path`` if it is neither a regular file nor a folder (a FIFO,
    a socket): a cache entry, ours to remove, which write_atomic would not
    replace (it never replaces such files)."""
    with contextlib.suppress(OSError):
        if path.exists() and not (path.is_file() or path.is_dir()):
            path.unlink()


def _load_bundled_file(stem, digest):
    """One bundled file: from the cache, or decoded, verified and cached.

    A cache file that is not the file it stands for is rebuilt, with a
    warning naming it; if it cannot be rewritten, the decoded file is used.
    """
    cached = cache_dir() / f"{stem}-{digest[:16]}.npy"
    try:
        arr = _read_cache(cached, digest)
    except _StaleCache as exc:
        warnings.warn(f"mnist_fast: the cached MNIST file {cached} is not "
                      f"{stem} ({exc}); rebuilding it")
        arr = None
        _remove_special(cached)
    if arr is not None:
        return arr
    path = BUNDLED_DIR / f"{stem}.gz"
    header, arr = read_idx(path)
    actual = _digest(header, arr)
    if actual != digest:
        raise IDXFormatError(
            f"{path}: the bundled file is corrupted: SHA-256 of its "
            f"decompressed bytes is {actual}, expected {digest}; reinstall "
            "mnist_fast"
        )
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
        the wrong magic number or dimensions, declares more than
        ``MAX_IDX_BYTES`` (2 GiB) of data, does not match its partner
        file (image and label counts, image sizes), holds labels beyond
        9, or (bundled files) fails its SHA-256 checksum.

    Warns
    -----
    UserWarning
        A cache file that is not the bundled file it stands for (another
        array, damaged, a folder, unreadable): it is rebuilt; or the cache
        cannot be written: the bundled files are used without it.
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
        # popped: the uint8 images go as soon as their copy is made, so the
        # load's peak memory is the result and one split's uint8 images
        x = arrays.pop(f"{split}_img")
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
