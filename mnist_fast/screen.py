"""The float32 screen of the compiled accuracy: which class a row gets, for
sure, from a float32 forward pass.

``accuracy`` needs, for each row, the class of the largest logit of the
float64 forward pass (the book's ``argmax``).  The compiled kernel first
runs the row's ``x @ W1`` in float32 (half the bytes and half the vector
operations of float64) and takes the class it gives when the largest logit
leads the others by more than twice a rigorous bound on how far the float32
logits can be from the float64 ones; otherwise it runs the float64 pass.
The count is therefore the float64 one, row for row.

The bound, for a row with ``n`` nonzeros ``x`` (``S = sum |x|``), unit
roundoffs ``u = 2**-24`` (float32) and ``v = 2**-53`` (float64):

* ``|a1_32[j] - a1_64[j]| <= c S M[j] + (n (1 + max M) + S) 2**-150`` with
  ``c = 1.001 (n + 4) u / (1 - (n + 4) u)``, ``M[j] = max_i |W1[i, j]|``:
  the float32 sum of ``n`` products of rounded inputs (FMA or not), the
  float64 pass's own error (the 0.1%), and float32 underflow (rows with
  ``(n + 4) u >= 1/2``, over 8 million nonzeros, skip the screen; ``S`` is
  rounded up to cover its own float64 sum);
* the sigmoid is 1/4-Lipschitz; both passes round its input (``v`` times
  its size) and its value (5e-16 covers both);
* ``|a2_32[k] - a2_64[k]| <= sum_j |W2[j, k]| |z_32[j] - z_64[j]|`` plus
  both passes' rounding of ``z @ W2 + b2`` (``2 (H + 2) v (sum_j |W2[j,
  k]| + |b2[k]|)``, ``z`` in [0, 1]).

This module computes the weights' factors once per call: ``max M``,
``max_k sum_j |W2[j, k]| M[j]`` and ``max_k sum_j |W2[j, k]| + |b2[k]|``
(each rounded up by 1e-12 relative), and ``W1`` in float32 with its rows
padded to whole vectors of 8.
"""

import numpy as np

#: Weights beyond this size skip the screen (float32 would overflow).
LARGEST = 1e30
#: The screen's arguments when it is off: every row gets the float64 pass.
OFF = (np.empty((0, 0), dtype=np.float32), 0.0, 0.0, 0.0)


def screen_weights(p):
    """``(W1f, mmax, vmax, amax)`` for ``count_correct`` and
    ``count_correct_csr``; ``OFF`` when ``W1`` is too large for float32."""
    W1, W2, b2 = p["W1"], p["W2"], p["b2"]
    D, H = W1.shape
    M = np.abs(W1).max(axis=0, initial=0.0)
    mmax = float(M.max(initial=0.0))
    if not mmax < LARGEST:
        return OFF
    up = 1.0 + 1e-12
    vmax = float((np.abs(W2) * M[:, None]).sum(axis=0).max()) * up
    amax = float((np.abs(W2).sum(axis=0) + np.abs(b2)).max()) * up
    W1f = np.zeros((D, -(-H // 8) * 8), dtype=np.float32)
    W1f[:, :H] = W1
    return W1f, mmax * up, vmax, amax
