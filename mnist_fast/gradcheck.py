"""The book's gradient check (ch. 5): numerical vs backprop, with a verdict.

The book compares ``network.numerical_gradient`` (central differences) with
``network.gradient`` (backpropagation) on the first 3 training images and
prints the mean absolute difference of each parameter.  ``gradient_check``
returns that figure, the largest absolute and relative differences, and
whether they are within tolerance.

Tolerance: an entry passes when its relative error
``|num - back| / max(|num|, |back|, floor)`` is at most ``rtol`` (defaults
``RTOL = 1e-3``, ``FLOOR = 1e-4``): relative for entries of magnitude above
``floor``, an absolute bound of ``rtol * floor`` (1e-7) for smaller ones.
Central differences with h = 1e-4 agree with the derivative to about
1e-8, and the book's loss adds 1e-7 inside the log, which backprop ignores:
a relative difference of about ``1e-7 / y`` where ``y`` is the probability
of the right class.  A correct gradient stays below 1e-4; a wrong one (a
missing factor, a transposed product) is off by far more than 1e-3.
"""

from dataclasses import dataclass

import numpy as np

from .validation import PARAM_NAMES, real_number

#: Largest relative error that passes.
RTOL = 1e-3
#: Magnitude below which the relative error is taken against ``FLOOR``.
FLOOR = 1e-4


@dataclass(frozen=True)
class ParamCheck:
    """How the two gradients of one parameter compare.

    Attributes
    ----------
    name : str
        ``"W1"``, ``"b1"``, ``"W2"`` or ``"b2"``.
    mean_abs : float
        Mean of ``|num - back|`` (the book's figure).
    max_abs : float
        Largest ``|num - back|``.
    max_rel : float
        Largest ``|num - back| / max(|num|, |back|, floor)``.
    passed : bool
        ``max_rel <= rtol``.
    """

    name: str
    mean_abs: float
    max_abs: float
    max_rel: float
    passed: bool


def compare_gradients(numerical, backprop, *, rtol=RTOL, floor=FLOOR):
    """Compare two gradient dicts entry by entry.

    Parameters
    ----------
    numerical, backprop : dict
        ``W1, b1, W2, b2`` arrays of matching shapes.
    rtol, floor : float
        See the module docstring.

    Returns
    -------
    dict of str to ParamCheck
    """
    rtol = real_number(rtol, "rtol", minimum=0.0)
    floor = real_number(floor, "floor", minimum=0.0, strict=True)
    checks = {}
    for key in PARAM_NAMES:
        num, back = np.asarray(numerical[key]), np.asarray(backprop[key])
        diff = np.abs(num - back)
        scale = np.maximum(np.maximum(np.abs(num), np.abs(back)), floor)
        max_rel = float((diff / scale).max())
        checks[key] = ParamCheck(key, float(diff.mean()), float(diff.max()),
                                 max_rel, max_rel <= rtol)
    return checks


def gradient_check(net, x, t, *, rtol=RTOL, floor=FLOOR):
    """The book's gradient check: ``net.numerical_gradient`` vs ``net.gradient``.

    Parameters
    ----------
    net : TwoLayerNet
    x : array_like of shape (n_samples, net.input_size)
        A few samples: the numerical gradient costs two loss evaluations
        per parameter (the book uses the first 3 training images).
    t : array_like of shape (n_samples,) or (n_samples, net.output_size)
    rtol : float, default ``RTOL`` (1e-3)
        Largest relative error that passes.
    floor : float, default ``FLOOR`` (1e-4)
        Magnitude below which errors are measured against ``floor``.

    Returns
    -------
    dict of str to ParamCheck
        One per parameter, ``W1, b1, W2, b2``; the check passes when all
        of them do (``all(c.passed for c in result.values())``).
    """
    return compare_gradients(net.numerical_gradient(x, t), net.gradient(x, t),
                             rtol=rtol, floor=floor)
