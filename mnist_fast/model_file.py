"""The model file of ``TwoLayerNet.save`` and ``TwoLayerNet.load``.

A model file is an ``.npz`` archive (NumPy's zip of ``.npy`` arrays) that
holds, and is read back without pickle (safe on untrusted files):

==================  ==========================================================
``format``          the string ``"mnist_fast.TwoLayerNet"``
``format_version``  the integer ``FORMAT_VERSION`` (2)
``layer_sizes``     ``[input_size, hidden_size, output_size]``, int64
``activation``      the hidden layer's, ``"sigmoid"`` or ``"relu"``
``W1 b1 W2 b2``     the parameters, float64
==================  ==========================================================

Version 1 files (mnist_fast 0.1) have no ``activation``: they
hold sigmoid networks, and load as such.  A reader of version 1 refuses a
version 2 file, rather than read a ReLU network as a sigmoid one.

It is written atomically (a temporary file in the same folder, then
``os.replace``): an interrupted save leaves the previous file, never half a
model.

It is read as untrusted data, and nothing is allocated for an array before
its ``.npy`` header has been checked against what the file can hold and
what the model needs (:func:`load_model`):

* every member is stored or deflated (what ``np.savez`` and
  ``np.savez_compressed`` write), lies inside the file, and its ``.npy``
  header declares exactly the bytes of the member (its shape times its
  item size, no more, no less);
* a deflated member may declare at most :data:`DEFLATE_MAX_RATIO` times its
  compressed bytes (deflate cannot expand more), so a small file cannot
  declare a huge array, and inflating stops at what the header declares;
* ``format``, ``format_version``, ``layer_sizes`` and ``activation`` hold
  at most :data:`SMALL_MEMBER_BYTES` bytes each;
* ``layer_sizes`` obey the constructor's rule
  (:func:`~mnist_fast.validation.layer_sizes`) and the four parameter
  headers declare float arrays of exactly the shapes those sizes need --
  before the network is built.

So the memory a file can make ``load`` take is bounded by its size on
disk (stored members: that size; deflated ones: 1032 times it); a network
of any size loads from a file that really holds its parameters.
"""

import math
import os
import tokenize
import zipfile
import zlib

import numpy as np

from . import book
from .files import existing_file, write_atomic
from .validation import (PARAM_NAMES, as_params, check_param_form,
                         layer_sizes, param_shapes)

FORMAT = "mnist_fast.TwoLayerNet"
#: The version :func:`save_model` writes.
FORMAT_VERSION = 2
#: The versions :func:`load_model` reads.
READ_VERSIONS = (1, 2)
HEADER_KEYS = ("format", "format_version", "layer_sizes")
#: The member of the hidden layer's activation (from version 2).
ACTIVATION_KEY = "activation"
#: The activation of every version 1 file.
VERSION_1_ACTIVATION = "sigmoid"
#: What :func:`save_model` writes.
KEYS = HEADER_KEYS + (ACTIVATION_KEY,) + PARAM_NAMES
#: What a file of every version has.
REQUIRED_KEYS = HEADER_KEYS + PARAM_NAMES
#: Most bytes a deflated member may declare per compressed byte: deflate's
#: own limit (a 258-byte match costs at least 2 bits).
DEFLATE_MAX_RATIO = 1032
#: Most data bytes of each of ``HEADER_KEYS`` and ``activation`` (a string
#: of 22 characters, one or three integers, a string of at most 7).
SMALL_MEMBER_BYTES = 1024
#: The .npy format versions np.save writes for these arrays.
NPY_VERSIONS = ((1, 0), (2, 0))
#: What a damaged .npy header or zip member raises while it is parsed.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
           SyntaxError, tokenize.TokenError, RecursionError, TypeError,
           OverflowError)


def save_model(net, path):
    """Write ``net``'s layer sizes, activation and parameters to the model
    file ``path``.

    Parameters
    ----------
    net : TwoLayerNet
        Its parameters must be finite and of the right shapes.
    path : str or path
        The file to write (its folder must exist), conventionally ``.npz``;
        the name is used as given.
    """
    params = net.checked_params()
    sizes = (net.input_size, net.hidden_size, net.output_size)
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "layer_sizes": np.array(sizes, dtype=np.int64),
        ACTIVATION_KEY: np.array(net.activation),
        **params,
    }
    write_atomic(path, lambda f: np.savez(f, **arrays))


class _Archive:
    """The members of a model file, each checked before it is read.

    Parameters
    ----------
    path : str
        The model file; it is opened (and ``close`` closes it).
    """

    def __init__(self, path):
        self.path = path
        self._file = open(path, "rb")
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            if not zipfile.is_zipfile(self._file):
                raise ValueError(
                    f"{path}: not a mnist_fast model file: expected an .npz "
                    "archive written by TwoLayerNet.save"
                )
            try:
                self._zip = zipfile.ZipFile(self._file)
            except _DAMAGE as exc:
                raise self.damaged(exc) from None
            # np.load's names: the member "W1.npy" (or "W1") is array "W1"
            self._members = {}
            for info in self._zip.infolist():
                name = info.filename
                self._members[name[:-4] if name.endswith(".npy") else name] = info
            self._headers = {}
        except BaseException:
            self._file.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._file.close()

    def damaged(self, exc):
        return ValueError(f"{self.path}: damaged model file: {exc}")

    def missing(self, keys):
        """The names among ``keys`` that the archive has not got."""
        return [k for k in keys if k not in self._members]

    def header(self, key):
        """``(shape, fortran_order, dtype)`` of array ``key``, from its
        ``.npy`` header, once the member has been found to hold exactly
        the bytes the header declares; ValueError naming the file if not."""
        if key not in self._headers:
            self._headers[key] = self._read_header(key)
        return self._headers[key]

    def _read_header(self, key):
        info = self._members[key]
        what = f"{self.path}: array {key!r}"
        if info.flag_bits & 0x1:
            raise ValueError(f"{what} is encrypted; a model file is not")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(
                f"{what} is compressed by method {info.compress_type}; a "
                "model file's members are stored or deflated (np.savez, "
                "np.savez_compressed)"
            )
        bound = (info.compress_size if info.compress_type == zipfile.ZIP_STORED
                 else DEFLATE_MAX_RATIO * info.compress_size)
        if info.header_offset + info.compress_size > self._size:
            raise self.damaged(
                f"array {key!r} says it takes {info.compress_size} bytes at "
                f"offset {info.header_offset}, beyond the end of the "
                f"{self._size}-byte file")
        if info.file_size > bound:
            raise self.damaged(
                f"array {key!r} says it holds {info.file_size} bytes, more "
                f"than its {info.compress_size} stored bytes can")
        try:
            with self._zip.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version not in NPY_VERSIONS:
                    raise ValueError(f".npy format version {version} "
                                     f"(np.save writes {NPY_VERSIONS})")
                shape, fortran, dtype = (
                    np.lib.format.read_array_header_1_0(stream)
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0(stream))
                offset = stream.tell()
        except _DAMAGE as exc:
            raise self.damaged(f"array {key!r}: {exc}") from None
        if dtype.hasobject:  # object arrays need pickle
            raise ValueError(
                f"{what} cannot be read without pickle (its dtype is "
                f"{dtype}); a model file holds numbers and one string"
            )
        if any(n < 0 for n in shape):
            raise self.damaged(f"array {key!r} declares the shape {shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise self.damaged(
                f"array {key!r} declares shape {shape} of {dtype} "
                f"({nbytes} bytes) but holds {info.file_size - offset} bytes")
        return shape, fortran, dtype

    def read(self, key):
        """Array ``key``, read after :meth:`header` has checked it: the
        inflating stops at the bytes its header declares."""
        self.header(key)
        try:
            with self._zip.open(self._members[key]) as stream:
                return np.lib.format.read_array(stream, allow_pickle=False)
        except _DAMAGE as exc:
            raise self.damaged(f"array {key!r}: {exc}") from None


def _read_small(archive, key):
    """Array ``key`` of the archive, at most SMALL_MEMBER_BYTES long."""
    shape, _, dtype = archive.header(key)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > SMALL_MEMBER_BYTES:
        raise ValueError(
            f"{archive.path}: array {key!r} has {nbytes} bytes (shape "
            f"{shape}, dtype {dtype}); in a model file it has at most "
            f"{SMALL_MEMBER_BYTES}"
        )
    return archive.read(key)


def _read_header_arrays(archive):
    """``format``, ``format_version`` and ``layer_sizes``, each at most
    SMALL_MEMBER_BYTES long."""
    return {key: _read_small(archive, key) for key in HEADER_KEYS}


def _read_activation(archive, version, cls):
    """The activation of a model file of format ``version``, one that
    networks of class ``cls`` have; ValueError naming the file if not."""
    path = archive.path
    if version == 1:
        activation = VERSION_1_ACTIVATION
    elif archive.missing([ACTIVATION_KEY]):
        raise ValueError(
            f"{path}: not a complete mnist_fast model file: missing "
            f"{ACTIVATION_KEY} (a version {version} file names its hidden "
            f"layer's activation)")
    else:
        array = _read_small(archive, ACTIVATION_KEY)
        activation = str(array) if (array.shape == ()
                                    and array.dtype.kind == "U") else None
        if activation not in book.ACTIVATIONS:
            raise ValueError(
                f"{path}: activation must be one of "
                f"{', '.join(map(repr, book.ACTIVATIONS))}, got {array!r}")
    if activation not in cls.ACTIVATIONS:
        raise ValueError(
            f"{path}: the model file holds a {activation} network; "
            f"{cls.__module__}.{cls.__qualname__} has a "
            f"{' or '.join(cls.ACTIVATIONS)} hidden layer")
    return activation


def _check_header(arrays, path):
    """The format version and layer sizes of a model file whose ``format``,
    ``format_version`` and ``layer_sizes`` are ``arrays``; ValueError
    naming ``path`` if they are not a supported model file's."""
    fmt, version = arrays["format"], arrays["format_version"]
    if fmt.shape != () or fmt.dtype.kind != "U" or str(fmt) != FORMAT:
        raise ValueError(
            f"{path}: not a mnist_fast model file: format is {fmt!r}, "
            f"expected {FORMAT!r}"
        )
    if version.shape != () or version.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: format_version must be an integer, got {version!r}"
        )
    version = int(version)
    if version not in READ_VERSIONS:
        newer = " (written by a newer mnist_fast?)" if version > FORMAT_VERSION else ""
        raise ValueError(
            f"{path}: model file format version {version} is not "
            f"supported{newer}; this mnist_fast reads versions "
            f"{', '.join(map(str, READ_VERSIONS[:-1]))} and {READ_VERSIONS[-1]}"
        )
    sizes = arrays["layer_sizes"]
    expected = (f"{path}: layer_sizes must be 3 integers [input >= 1, "
                f"hidden >= 1, output >= 2], got {sizes!r}")
    if sizes.shape != (3,) or sizes.dtype.kind not in "iu":
        raise ValueError(expected)
    try:
        return version, layer_sizes(*sizes.tolist())
    except ValueError as exc:  # the constructor's rule, in the file's words
        raise ValueError(f"{expected}: {exc}") from None


def _check_param_headers(archive, sizes):
    """The four parameter headers declare float arrays of the shapes a
    network of ``sizes`` needs."""
    for key, shape in param_shapes(*sizes).items():
        declared, _, dtype = archive.header(key)
        try:
            check_param_form(f"params[{key!r}]", dtype, declared, shape)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{archive.path}: {exc}") from None


def load_model(cls, path, **kwargs):
    """A network of class ``cls`` with the layer sizes, activation and
    parameters of ``path``.

    Every header is checked (see the module's docstring) before the network
    is built and its parameters are read.

    Parameters
    ----------
    cls : type
        ``TwoLayerNet`` (or a subclass: its ``ACTIVATIONS`` are those its
        networks may have).
    path : str or path
        A model file written by :func:`save_model`.
    **kwargs
        Passed to ``cls`` (e.g. ``backend``, ``num_threads``); not
        ``activation``, which is the file's.

    Returns
    -------
    cls instance

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a model file, is damaged, has another format
        version, declares arrays its members do not hold, misses or has
        wrong arrays, or holds an activation ``cls`` has not got; the
        message names the file and what is wrong.
    TypeError
        ``activation`` among ``kwargs``.
    OSError
        ``path`` cannot be read (``PermissionError`` ...), as ``open``
        raises it.
    MemoryError
        The file really holds a network too large for the memory; the
        message names the file.
    """
    if ACTIVATION_KEY in kwargs:
        raise TypeError(f"{cls.__qualname__}.load takes the activation from "
                        "the model file, not as an argument")
    path = existing_file(path, "model file")
    with _Archive(path) as archive:
        missing = archive.missing(REQUIRED_KEYS)
        if missing:
            raise ValueError(
                f"{path}: not a complete mnist_fast model file: missing "
                f"{', '.join(missing)} (expected {', '.join(REQUIRED_KEYS)}, "
                f"and {ACTIVATION_KEY} from version 2)"
            )
        version, sizes = _check_header(_read_header_arrays(archive), path)
        activation = _read_activation(archive, version, cls)
        _check_param_headers(archive, sizes)
        try:
            net = cls(*sizes, activation=activation, **kwargs)
            params = {k: archive.read(k) for k in PARAM_NAMES}
        except MemoryError:
            raise MemoryError(
                f"{path}: a {'-'.join(map(str, sizes))} network does not fit "
                "in memory"
            ) from None
    try:
        net.params = as_params(params, net.param_shapes)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return net
