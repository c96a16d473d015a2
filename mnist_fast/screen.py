"""The float32 screen of the compiled accuracy: which class a row gets, for
sure, from a float32 forward pass.

``accuracy`` needs, for each row, the class of the largest logit of the
float64 forward pass (the book's ``argmax``).  The compiled kernel first
runs the row's forward pass in float32 (half the bytes and half the vector
operations of float64: ``x @ W1``, the hidden layer and ``z @ W2``) and takes
the class it gives when the largest logit leads the others by more than
twice a rigorous bound on how far the float32 logits can be from the
float64 ones; otherwise it runs the float64 pass.  The count is therefore
the float64 one, row for row.

The bound depends on the hidden layer's activation: :func:`screen_for`
gives the screen of the sigmoid (the book's ch. 4) or of the ReLU (ch. 5)
network, and the kernel refuses a screen made for the other one.

The sigmoid's bound, for a row with ``n`` nonzeros ``x`` (``S = sum
|x|``), unit roundoffs ``u = 2**-24`` (float32) and ``v = 2**-53``
(float64), ``H`` hidden units (``Hp`` padded) and ``gamma(m) = m u / (1 -
m u)``:

* ``|a1_32[j] - a1_64[j]| <= c S M[j] + (n (1 + max M) + S) 2**-150`` with
  ``c = 1.001 (n + 4) u / (1 - (n + 4) u)``, ``M[j] = max_i |W1[i, j]|``:
  the float32 sum of ``n`` products of rounded inputs (FMA or not), the
  float64 pass's own error (the 0.1%), and float32 underflow (rows of more
  than ``MAX_NNZ`` nonzeros skip the screen, see below; ``S`` is rounded up
  to cover its own float64 sum);
* the sigmoid is 1/4-Lipschitz.  The float64 pass rounds its input (``v``
  times its size, at most ``big``, the largest ``|a1_32 + b1|`` of the
  row) and its value (5e-16 covers both).  The float32 pass rounds ``b1``
  to float32 (``(u max |b1| + 2**-150) / 4`` on ``z``) and the sum ``t =
  a1_32 + b1`` (relatively, by at most ``u``: that moves the sigmoid by at
  most ``0.225 u``, as ``|t sigmoid'(t)| <= 0.2239``, and ``2**-150 / 4``
  for underflow); its sigmoid is within ``SIGMOID32_ERROR`` = 1e-6 of
  the exact one: its exp(-a) = 2**k exp(r), ``|r| <= ln(2)/2 + 1e-5``, is
  within 1.9e-6 relatively (the series to ``r**7 / 7!`` within 1.1e-8,
  Horner's float32 rounding within ``gamma(15) e**|r| / e**-|r|`` = 1.8e-6,
  the reduction within 3e-8; the clamped and subnormal cases move the
  sigmoid by less than 1e-37), which moves ``1 / (1 + e)`` by at most a
  quarter of that, and the sum and division add ``2u``: 6e-7 in all
  (measured over every finite float32 input: 8.9e-8);
* ``|a2_32[k] - a2_64[k]| <= sum_j |W2[j, k]| |z_32[j] - z_64[j]|`` plus
  the float64 pass's rounding of ``z @ W2 + b2`` (``2 (H + 2) v (sum_j
  |W2[j, k]| + |b2[k]|)``, ``z`` in [0, 1]) and the float32 pass's: ``W2``
  and ``b2`` rounded to float32 and a sum of ``Hp + 1`` terms in any order
  (``(u + gamma(Hp + 1) (1 + u)) (sum_j |W2[j, k]| + |b2[k]|)`` and
  ``2**-150`` per term for underflow).

This module holds the whole bound: :func:`screen_for` computes, once per
evaluation, the weights in float32 (padded with zeros to whole vectors of 8
hidden units and classes) and the named coefficients of the per-row bound
that the kernel evaluates,

    delta = n4s (n + 4) S + per_n n + per_s S + per_big big + const,

a row's class being the screen's when its largest float32 logit leads the
next by more than ``2 delta + tie (1 + |first| + delta)`` (``tie`` keeps
the rows the float64 pass treats as near ties, within 1e-12 relative, to
that pass).  Rows of more than ``max_nnz`` nonzeros, where ``(n + 4) u``
would exceed 2**-10, skip the screen, so that ``c <= n4s_c (n + 4)`` with
the constant ``n4s_c = 1.001 u / (1 - 2**-10)``.  Weights of ``LARGEST`` or
more turn the screen off (float32 holds up to 3.4e38).

The ReLU's bound, for the same row: ``x @ W1`` is the same float32 sum
as the sigmoid's, so the first item above holds as it is (call it
``A[j]``).  Then:

* ``z = relu(t)`` is exact in either precision (a comparison and a
  choice) and 1-Lipschitz: ``|z_32[j] - z_64[j]| <= |t_32[j] - t_64[j]|``
  with ``t_32 = fl32(a1_32 + fl32(b1))`` and ``t_64 = fl64(a1_64 + b1)``:
  no ``SIGMOID32_ERROR`` term, and no 1/4.  That difference is at most
  the float32 rounding of the sum, ``u |t_32[j]| <= u big`` (``big`` is
  the row's largest ``|t_32|``, which the pass measures, as the
  sigmoid's; a sum whose result is subnormal is exact), that of ``b1``
  (``u max |b1| + 2**-150``), ``A[j]``, and the float64 rounding of the
  sum, ``v |t_64[j]| <= v (big + E[j])``: so ``E[j] = |t_32[j] -
  t_64[j]| <= ((u + v) big + u max |b1| + 2**-150 + A[j]) / (1 - v)``.
* ``z`` is no longer within [0, 1], and the output layer's rounding
  scales with it: the float32 ``z`` are at most ``big`` (``relu(t) <=
  |t|``), the float64 ones at most ``big + E[j]``.  (``big`` takes the
  place of the a-priori bound ``max_j (S M[j] + |b1[j]|)`` on ``|t|``,
  which it can exceed by the rounding only, and is usually far below.)
  With ``r = 2 (H + 2) v``,
  ``|a2_32[k] - a2_64[k]|`` is at most ``(1 + r) sum_j |W2[j, k]| E[j]``
  (the z errors, through the float64 sum too), plus ``(u + gamma(Hp + 1)
  (1 + u) + r) (big sum_j |W2[j, k]| + |b2[k]|)`` (the float32 pass's
  rounding of ``W2``, ``b2`` and of its sum, and the float64 pass's
  sum), plus ``2 (Hp + 1) 2**-150 (1 + big)`` (float32 underflow of
  ``W2`` rounded, of the products and of ``b2``, doubled to cover the
  sum's rounding of them).
* Over the classes, ``sum_j |W2[j, k]| + |b2[k]| <= amax``, ``sum_j
  |W2[j, k]| M[j] <= vmax`` and ``big sum_j |W2[j, k]| + |b2[k]| <= (big
  + 1) amax``: the per-row form above, with ``f = (1 + r) / (1 - v)``,
  ``n4s = f n4s_c vmax``, ``per_n = f (1 + max M) 2**-150 amax``, ``per_s
  = f 2**-150 amax``, ``per_big = f (u + v) amax + o`` and ``const = f (u
  max |b1| + 2**-150) amax + o``, ``o = (u + gamma(Hp + 1) (1 + u) + r)
  amax + 2 (Hp + 1) 2**-150`` (each rounded up by ``UP``).

For the scores' argmax (``count_correct(..., scores=True)``, the book's
ch. 5 ``accuracy``) the float32 leader's class is the float64 argmax
whenever it leads the next by more than ``2 delta``: the float64 scores
are then finite and the leader's strictly the largest, whatever ties the
others have.  The kernel drops ``tie`` there: it serves the
probabilities' rule only.
"""

from dataclasses import dataclass

import numpy as np

from .book import ACTIVATIONS

#: Weights of this size or more turn the screen off (float32 overflows).
LARGEST = 1e30
#: How far the float32 sigmoid of the screen may be from the exact one.
SIGMOID32_ERROR = 1e-6
#: float32's unit roundoff, its underflow slack (half the smallest
#: subnormal, per term), float64's unit roundoff.
U32, TINY32, U64 = 2.0**-24, 2.0**-150, 2.0**-53
#: Rows of more nonzeros skip the screen: (MAX_NNZ + 4) U32 = 2**-10.
MAX_NNZ = 2**14 - 4
#: Relative margin of the float64 pass's near ties (``predicted_class`` in
#: src_cython/_common.pxd), twice: such rows are left to that pass.
TIE = 2e-12
#: Factors by which computed sums are rounded up.
UP = 1.0 + 1e-12


@dataclass(frozen=True)
class Screen:
    """The float32 weights and the per-row bound's coefficients (see the
    module docstring), as the kernel ``count_correct`` reads them; the
    bound is for the hidden layer ``activation`` (its kernel code, the
    position in :data:`mnist_fast.book.ACTIVATIONS`)."""

    W1: np.ndarray      # (D, Hp) float32
    b1: np.ndarray      # (Hp,)
    W2: np.ndarray      # (Hp, Kp)
    b2: np.ndarray      # (Kp,)
    activation: int
    n4s: float
    per_n: float
    per_s: float
    per_big: float
    const: float
    tie: float = TIE
    max_nnz: int = MAX_NNZ


def _padded(a, shape):
    """``a`` in float32, zero-padded to ``shape``."""
    out = np.zeros(shape, dtype=np.float32)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def screen_for(p, activation="sigmoid"):
    """The :class:`Screen` of the parameters ``p`` for the hidden layer
    ``activation`` (a name of :data:`mnist_fast.book.ACTIVATIONS`), or None
    (screen off) when a weight is too large for float32."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got "
                         f"{activation!r}")
    W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
    D, H = W1.shape
    K = W2.shape[1]
    M = np.abs(W1).max(axis=0, initial=0.0)
    mmax = float(M.max(initial=0.0)) * UP
    bmax = float(np.abs(b1).max(initial=0.0))
    if not max(mmax, bmax, float(np.abs(W2).max(initial=0.0)),
               float(np.abs(b2).max(initial=0.0))) < LARGEST:
        return None
    # max_k sum_j |W2[j, k]| M[j] and max_k sum_j |W2[j, k]| + |b2[k]|
    vmax = float((np.abs(W2) * M[:, None]).sum(axis=0).max()) * UP
    amax = float((np.abs(W2).sum(axis=0) + np.abs(b2)).max()) * UP
    Hp, Kp = -(-H // 8) * 8, -(-K // 8) * 8
    gamma = (Hp + 1) * U32 / (1.0 - (Hp + 1) * U32)
    n4s_c = 1.001 * U32 / (1.0 - 2.0**-10)
    bound = _relu_bound if activation == "relu" else _sigmoid_bound
    return Screen(
        _padded(W1, (D, Hp)), _padded(b1, (Hp,)), _padded(W2, (Hp, Kp)),
        _padded(b2, (Kp,)), ACTIVATIONS.index(activation),
        **bound(H=H, Hp=Hp, mmax=mmax, bmax=bmax, vmax=vmax, amax=amax,
                gamma=gamma, n4s_c=n4s_c))


def _sigmoid_bound(H, Hp, mmax, bmax, vmax, amax, gamma, n4s_c):
    """The coefficients of the sigmoid's per-row bound (module docstring)."""
    # the float32 pass's z errors (sigmoid, rounding a + b and b1) and its
    # output layer (W2, b2 rounded, a sum of Hp + 1 terms, underflow)
    z_error = SIGMOID32_ERROR + 0.225 * U32 + (U32 * bmax + 2 * TINY32) / 4
    output_error = (U32 + gamma * (1.0 + U32)) * amax + (2 * Hp + 1) * TINY32
    tail = (z_error * amax + output_error) * UP
    # the float64 pass's rounding of its input (5e-16 with the sigmoid's)
    # and of z @ W2 + b2
    const = (5e-16 + 2.0 * (H + 2) * U64) * amax * UP + tail
    return dict(
        n4s=n4s_c / 4.0 * (1.0 + U64) * vmax * UP,
        per_n=(1.0 + mmax) * TINY32 * amax * UP,
        per_s=TINY32 * amax * UP,
        per_big=U64 * amax * UP,
        const=const,
    )


def _relu_bound(H, Hp, mmax, bmax, vmax, amax, gamma, n4s_c):
    """The coefficients of the ReLU's per-row bound (module docstring)."""
    r = 2.0 * (H + 2) * U64
    # the z errors E[j] through the output layers, per unit of their terms
    f = (1.0 + r) / (1.0 - U64) * UP
    # the output layers' rounding per unit of big sum |W2| + |b2|, and
    # float32 underflow there (per unit of 1 + big)
    output = (U32 + gamma * (1.0 + U32) + r) * amax
    underflow = 2.0 * (Hp + 1) * TINY32
    return dict(
        n4s=f * n4s_c * vmax,
        per_n=f * (1.0 + mmax) * TINY32 * amax,
        per_s=f * TINY32 * amax,
        per_big=(f * (U32 + U64) * amax + output + underflow) * UP,
        const=(f * (U32 * bmax + TINY32) * amax + output + underflow) * UP,
    )
