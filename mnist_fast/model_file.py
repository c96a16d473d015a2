"""The model file of ``TwoLayerNet.save`` and ``TwoLayerNet.load``.

A model file is an ``.npz`` archive (NumPy's zip of ``.npy`` arrays) that
holds, and is read back without pickle (safe on untrusted files):

==================  ==========================================================
``format``          the string ``"mnist_fast.TwoLayerNet"``
``format_version``  the integer ``FORMAT_VERSION`` (1)
``layer_sizes``     ``[input_size, hidden_size, output_size]``, int64
``W1 b1 W2 b2``     the parameters, float64
==================  ==========================================================

It is written atomically (a temporary file in the same folder, then
``os.replace``): an interrupted save leaves the previous file, never half a
model.
"""

import zipfile
import zlib

import numpy as np

from .files import existing_file, write_atomic
from .validation import PARAM_NAMES, as_params

FORMAT = "mnist_fast.TwoLayerNet"
FORMAT_VERSION = 1
KEYS = ("format", "format_version", "layer_sizes") + PARAM_NAMES


def save_model(net, path):
    """Write ``net``'s layer sizes and parameters to the model file ``path``.

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
        **params,
    }
    write_atomic(path, lambda f: np.savez(f, **arrays))


def _read_arrays(path):
    """Every array of ``KEYS`` in the archive, or a ValueError saying why not."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a mnist_fast model file: expected an .npz archive "
            "written by TwoLayerNet.save"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in KEYS if k not in archive.files]
            if missing:
                raise ValueError(
                    f"{path}: not a complete mnist_fast model file: missing "
                    f"{', '.join(missing)} (expected {', '.join(KEYS)})"
                )
            arrays = {}
            for key in KEYS:
                try:
                    arrays[key] = archive[key]
                except ValueError as exc:  # object arrays need pickle
                    raise ValueError(
                        f"{path}: array {key!r} cannot be read without pickle "
                        f"({exc}); a model file holds numbers and one string"
                    ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ValueError(f"{path}: damaged model file: {exc}") from None
    return arrays


def _check_header(arrays, path):
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
    if int(version) != FORMAT_VERSION:
        newer = " (written by a newer mnist_fast?)" if version > FORMAT_VERSION else ""
        raise ValueError(
            f"{path}: model file format version {int(version)} is not "
            f"supported{newer}; this mnist_fast reads version {FORMAT_VERSION}"
        )
    sizes = arrays["layer_sizes"]
    values = sizes.tolist()
    if (sizes.shape != (3,) or sizes.dtype.kind not in "iu"
            or min(values[:2]) < 1 or values[2] < 2):
        raise ValueError(
            f"{path}: layer_sizes must be 3 integers [input >= 1, hidden "
            f">= 1, output >= 2], got {sizes!r}"
        )
    return tuple(values)


def load_model(cls, path, **kwargs):
    """A network of class ``cls`` with the layer sizes and parameters of ``path``.

    Parameters
    ----------
    cls : type
        ``TwoLayerNet`` (or a subclass).
    path : str or path
        A model file written by :func:`save_model`.
    **kwargs
        Passed to ``cls`` (e.g. ``backend``, ``num_threads``).

    Returns
    -------
    cls instance

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a model file, is damaged, has another format
        version, or misses or has wrong arrays; the message names the file
        and what is wrong.
    """
    path = existing_file(path, "model file")
    arrays = _read_arrays(path)
    net = cls(*_check_header(arrays, path), **kwargs)
    try:
        net.params = as_params({k: arrays[k] for k in PARAM_NAMES},
                               net.param_shapes)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return net
