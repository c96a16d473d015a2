"""Input checks at the boundary between the public API and the kernels.

The compiled kernels run without bounds checks and without the GIL, so
everything they receive is checked and coerced here first: shapes, dtypes,
values, contiguity.  A bad input raises ``TypeError`` (wrong kind of object
or dtype) or ``ValueError`` (wrong shape or value) whose message names the
argument and says what was expected and what was got.  What is accepted is
written once, in docs/api.md ("Inputs and errors"); these functions are
that contract.

Every call checks its arguments as they are then: nothing is remembered
between calls, so arrays written in place, replaced, reshaped or given
another dtype are seen.  For the arrays of the book's loop the three
boundary checks (:func:`as_inputs`, :func:`as_labels`, :func:`as_params`)
are each one compiled call (``_checks.ready_*``) that passes only what the
full check below would pass unchanged; anything else goes through the
full check, which words every error.
"""

import numbers
import operator
from collections.abc import Mapping

import numpy as np

from . import kernels, reference

#: The finiteness and one-hot scans: compiled (one GIL-free pass) when the
#: kernels are built, else their NumPy twins; the same answers.
_scans = kernels.checks if kernels.COMPILED else reference
#: The fast paths of as_inputs, as_labels and as_params when compiled: one
#: call that passes what these checks would pass unchanged (the arrays of
#: the book's loop) and answers "not ready" for anything else, which the
#: full checks below then decide.  None without the kernels.
_ready = kernels.checks if kernels.COMPILED else None

PARAM_NAMES = ("W1", "b1", "W2", "b2")
_FLOAT64 = np.dtype(np.float64)
#: Most rows of a batch, and most input features: the kernels index pixels
#: and batch rows with C ints.
MAX_INDEX = 2**31 - 1


def describe(obj):
    """A short account of ``obj`` for error messages."""
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape} and dtype {obj.dtype}"
    return f"{type(obj).__name__} {obj!r}"[:200]


def _as_array(obj, name, lists=True):
    """``obj`` as an ndarray; scalars, strings and other objects are refused.

    Lists and tuples of numbers are converted when ``lists`` is true.
    """
    if isinstance(obj, np.ma.MaskedArray):
        raise TypeError(
            f"{name} must be a plain numpy array, got a masked array (its "
            f"mask would be ignored): pass {name}.filled(value) or drop the "
            "masked rows"
        )
    if isinstance(obj, np.ndarray):
        # the kernels read the buffer: check the array they will read, not
        # what a subclass says of it (its shape, its dtype)
        return obj if type(obj) is np.ndarray else obj.view(np.ndarray)
    if lists and isinstance(obj, (list, tuple)):
        try:
            arr = np.asarray(obj)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{name} must be a rectangular array: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"{name} must hold real numbers, got a list of {arr.dtype} "
                f"({describe(obj)})"
            )
        return arr
    accepted = " (or a nested list of numbers)" if lists else ""
    raise TypeError(
        f"{name} must be a numpy array{accepted}, got {describe(obj)}"
    )


def positive_int(value, name, minimum=1, maximum=None):
    """``value`` as an int in [minimum, maximum] (bools, fractions refused)."""
    if maximum is not None:
        expected = f"an integer between {minimum} and {maximum}"
    elif minimum == 1:
        expected = "a positive integer"
    else:
        expected = f"an integer >= {minimum}"
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        if not float(value).is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {expected}, got {describe(value)}") from None
    if n < minimum or (maximum is not None and n > maximum):
        raise ValueError(f"{name} must be {expected}, got {n}")
    return n


def layer_sizes(input_size, hidden_size, output_size):
    """The layer sizes of a network, checked: ``(D, H, K)`` as ints.

    ``input_size`` and ``hidden_size`` >= 1, ``output_size`` >= 2;
    ``input_size`` at most :data:`MAX_INDEX` (the kernels index pixels
    with C ints).  The constructor's rule, also applied to a model file's
    ``layer_sizes``.
    """
    return (positive_int(input_size, "input_size", maximum=MAX_INDEX),
            positive_int(hidden_size, "hidden_size"),
            positive_int(output_size, "output_size", minimum=2))


def param_shapes(input_size, hidden_size, output_size):
    """The shape of each parameter array of a network of these sizes."""
    D, H, K = input_size, hidden_size, output_size
    return {"W1": (D, H), "b1": (H,), "W2": (H, K), "b2": (K,)}


def one_of(value, name, options):
    """``value`` if it is one of the strings ``options``."""
    if isinstance(value, str) and value in options:
        return value
    if isinstance(value, str):
        error, got = ValueError, repr(value)
    else:
        error, got = TypeError, describe(value)
    raise error(
        f"{name} must be one of {', '.join(map(repr, options))}, got {got}"
    )


def flag(value, name):
    """``value`` as a bool; only ``True``/``False`` (or numpy bools) pass."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {describe(value)}")


def real_number(value, name, *, minimum=None, strict=False):
    """``value`` as a finite float, optionally bounded below."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        bound = ">" if strict else ">="
        raise ValueError(f"{name} must be {bound} {minimum}, got {value}")
    return value


def _contiguous(arr, dtype):
    """``arr`` as a C-contiguous ``dtype`` array (itself when it is one).

    Values beyond the range of ``dtype`` become inf without a warning:
    the finiteness check that follows reports them.
    """
    if arr.dtype != dtype:
        with np.errstate(over="ignore"):
            arr = arr.astype(dtype)
    return np.ascontiguousarray(arr)


def _check_finite(arr, name, num_threads=1):
    """ValueError naming ``name`` unless the float array ``arr`` is all
    finite (one scan, by ``num_threads`` threads when it is large)."""
    scans = (_scans if arr.dtype in (np.float32, np.float64)  # native order
             and arr.flags.c_contiguous else reference)
    if scans.all_finite(arr.reshape(-1), num_threads):
        return
    bad = np.flatnonzero(~np.isfinite(arr.ravel()))
    where = np.unravel_index(bad[0], arr.shape)
    raise ValueError(
        f"{name} must be finite, but {bad.size} value(s) are NaN or "
        f"infinite (first at index {tuple(int(i) for i in where)}: "
        f"{arr[where]})"
    )


def as_inputs(x, n_features, name="x", num_threads=1):
    """Check a batch of inputs and return it ready for a kernel.

    Parameters
    ----------
    x : array_like of shape (n_samples, n_features)
        See docs/api.md, "x, t and params".
    n_features : int
        The expected number of columns (the network's ``input_size``).
    num_threads : int, default 1
        Threads for the scan of a large ``x`` (the network's).

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 or float64 array (``x`` itself when it already
        is one).
    """
    if _ready is not None and _ready.ready_inputs(x, n_features, MAX_INDEX,
                                                  num_threads):
        return x
    arr = _as_array(x, name)
    kind = arr.dtype.kind
    if kind not in "biuf" or arr.dtype.names is not None:
        raise TypeError(
            f"{name} must hold real numbers (float or integer), got dtype "
            f"{arr.dtype}"
        )
    if arr.ndim != 2:
        hint = f" (for one sample use {name}.reshape(1, -1))" if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D (n_samples, {n_features}), got {arr.ndim}-D "
            f"shape {arr.shape}{hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {arr.shape})")
    if arr.shape[0] > MAX_INDEX:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows, more than the {MAX_INDEX} "
            "(2**31 - 1) a batch may have: split it"
        )
    if arr.shape[1] != n_features:
        raise ValueError(
            f"{name} must have {n_features} features (columns) to match the "
            f"network's input_size, got shape {arr.shape}"
        )
    if arr.dtype in (np.float32, np.float64):
        dtype = arr.dtype
    elif kind == "b" or arr.dtype.itemsize <= 2:  # exact in float32
        dtype = np.float32
    else:
        dtype = np.float64
    arr = _contiguous(arr, dtype)
    _check_finite(arr, name, num_threads)
    return arr


def as_unscanned_inputs(x, n_features, name="x", num_threads=1):
    """``(x, scanned)``: ``x`` checked as :func:`as_inputs` checks it, but
    for the arrays of the book's loop without the scan of its values
    (``scanned`` False), which a compiled kernel that reads every value
    anyway makes instead (:class:`~mnist_fast.engine.InputsNotScanned`).
    Anything else goes through :func:`as_inputs` whole (``scanned``
    True)."""
    if _ready is not None and _ready.ready_inputs(x, n_features, MAX_INDEX,
                                                  num_threads, False):
        return x, False
    return as_inputs(x, n_features, name, num_threads), True


def as_labels(t, n_samples, n_classes, name="t", x_name="x"):
    """Check labels (integer classes or one-hot rows); return class indices.

    Parameters
    ----------
    t : array_like
        Class labels or one-hot rows: see docs/api.md, "x, t and params".
    n_samples, n_classes : int
        Rows of the matching inputs and the network's ``output_size``.
    name, x_name : str
        How to call the labels and their inputs in messages.

    Returns
    -------
    numpy.ndarray
        C-contiguous ``np.intp`` class indices of shape (n_samples,).
    """
    if _ready is not None:
        classes = _ready.ready_labels(t, n_samples, n_classes)
        if classes is not None:
            return classes
    arr = _as_array(t, name)
    kind = arr.dtype.kind
    if kind not in "iuf" or arr.dtype.names is not None:
        raise TypeError(
            f"{name} must hold integer class labels or one-hot rows of 0/1, "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim == 2:
        if arr.shape[0] != n_samples:
            raise ValueError(
                f"one-hot {name} has {arr.shape[0]} rows but {x_name} has "
                f"{n_samples} rows"
            )
        if arr.shape[1] != n_classes:
            hint = (f" (for class labels in a column use {name}.ravel())"
                    if arr.shape[1] == 1 else "")
            raise ValueError(
                f"one-hot {name} must have {n_classes} columns (the "
                f"network's output_size), got shape {arr.shape}{hint}"
            )
        classes = np.empty(n_samples, dtype=np.intp)
        if arr.dtype.itemsize > 8:  # long double: compared unrounded
            row = reference.onehot_classes(arr, classes)
        else:  # float64 holds 0, 1 and their neighbours exactly
            row = _scans.onehot_classes(_contiguous(arr, np.float64), classes)
        if row >= 0:
            raise ValueError(
                f"one-hot {name} must hold 0s and exactly one 1 per row, got "
                f"row {row}: {arr[row]}"
            )
        return classes
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D class labels ({n_samples},) or one-hot "
            f"({n_samples}, {n_classes}), got shape {arr.shape}"
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} labels but {x_name} has {n_samples} "
            "rows"
        )
    if kind == "f":
        _check_finite(arr, name)
        fractional = arr != np.floor(arr)
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise ValueError(
                f"{name} must hold whole-number class labels, got {arr[i]} "
                f"at index {i}"
            )
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = (arr < 0) | (arr >= n_classes)
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} labels must be in [0, {n_classes - 1}] (output_size is "
            f"{n_classes}), got {arr[i]} at index {i}"
        )
    return np.ascontiguousarray(arr, dtype=np.intp)


def as_params(params, shapes):
    """Check a parameter dict and return float64 C-contiguous arrays.

    Parameters
    ----------
    params : mapping
        ``W1, b1, W2, b2``: see docs/api.md, "x, t and params".
    shapes : dict
        The expected shape of each parameter.

    Returns
    -------
    dict
        ``W1, b1, W2, b2`` as C-contiguous float64 arrays (the user's own
        arrays when they already are).
    """
    if _ready is not None:
        checked = _ready.ready_params(params, PARAM_NAMES, shapes)
        if checked is not None:
            return checked
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict, got {describe(params)}")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(
            f"params is missing {', '.join(missing)}; expected keys "
            f"{', '.join(PARAM_NAMES)}"
        )
    out = {}
    for key in PARAM_NAMES:
        p = params[key]
        # the arrays of the book's loop are already what the kernels take:
        # only their values need the scan
        if not (type(p) is np.ndarray and p.dtype is _FLOAT64
                and p.shape == shapes[key] and p.flags.c_contiguous):
            p = _param_array(p, f"params[{key!r}]", shapes[key])
        _check_finite(p, f"params[{key!r}]")
        out[key] = p
    return out


def as_unscanned_params(params, shapes, unscanned="W1"):
    """``(params, scanned)``: ``params`` checked as :func:`as_params` checks
    them, but for the arrays of the book's loop without the scan of the
    values of ``params[unscanned]`` (``scanned`` False), which a compiled
    kernel that reads them makes instead
    (:class:`~mnist_fast.engine.InputsNotScanned`): a wide layer's ``W1``
    is megabytes, which the kernel's threads share.  Anything else goes
    through :func:`as_params` whole (``scanned`` True)."""
    if _ready is not None:
        checked = _ready.ready_params(params, PARAM_NAMES, shapes, unscanned)
        if checked is not None:
            return checked, False
    return as_params(params, shapes), True


def check_param_form(name, dtype, shape, expected):
    """TypeError or ValueError naming ``name`` unless an array of ``dtype``
    and ``shape`` can be the parameter of shape ``expected``."""
    if dtype.kind != "f":
        raise TypeError(f"{name} must be a float array, got dtype {dtype}")
    if shape != expected:
        raise ValueError(f"{name} must have shape {expected}, got {shape}")


def _param_array(p, name, shape):
    """Parameter ``p`` as a C-contiguous float64 array of ``shape``."""
    p = _as_array(p, name, lists=False)
    check_param_form(name, p.dtype, p.shape, shape)
    return _contiguous(p, np.float64)
