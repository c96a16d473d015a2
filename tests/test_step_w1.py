"""The fused step (SGDTrainer) steps from W1 as the caller left it: what
is written into it in place between two runs (as a callback may) is what
the next run uses -- the trainer steps on its own copy of W1 (rows on
cache lines), which each run must take from the caller's array and give
back."""

import numpy as np
import pytest

from mnist_fast import book, kernels
from mnist_fast.compiled_engine import CompressedRows
from conftest import KEYS, requires_compiled, trained_params

pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]

SIGMOID = 0


def data(dtype, n=600, seed=0):
    """n sparse rows of 784 pixels (about a fifth nonzero) and labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)) * (rng.random((n, 784)) < 0.2)
    return x.astype(dtype), rng.integers(0, 10, n).astype(np.intp)


def fresh_steps(p0, x, t, batches, hidden_threads=1):
    """The parameters and losses after ``batches`` from a new trainer."""
    p = {k: v.copy() for k, v in p0.items()}
    trainer = kernels.backprop.SGDTrainer(
        CompressedRows(x, t, 1), p, SIGMOID, batches.shape[1], 0.1,
        book.LOG_GUARD)
    losses = np.empty(len(batches))
    assert trainer.run(batches, losses, hidden_threads)[::2] == (
        len(batches), 0)
    return p, losses


@pytest.mark.parametrize("hidden", [50, 13, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_w1_changed_between_runs_is_used(hidden, dtype):
    """W1 written in place between two runs (as a callback may): the next
    run steps from the new values, bit for bit as a new trainer would."""
    x, t = data(dtype)
    rng = np.random.default_rng(hidden)
    batches = rng.choice(len(x), (5, 37)).astype(np.intp)
    p0 = trained_params((784, hidden, 10), seed=hidden)
    losses = np.empty(5)
    for n_threads in (1, 2):
        p = {k: v.copy() for k, v in p0.items()}
        trainer = kernels.backprop.SGDTrainer(
            CompressedRows(x, t, 1), p, SIGMOID, 37, 0.1, book.LOG_GUARD)
        assert trainer.run(batches[:2], losses, n_threads)[::2] == (2, 0)
        p["W1"] *= 0.5  # in place: the trainer holds this array
        p["W1"][3] = 1.0  # a pixel row the last run may not have touched
        changed = {k: v.copy() for k, v in p.items()}
        assert trainer.run(batches[2:], losses, n_threads)[::2] == (3, 0)
        want, want_losses = fresh_steps(changed, x, t, batches[2:], n_threads)
        for key in KEYS:
            np.testing.assert_array_equal(p[key], want[key], err_msg=key)
        np.testing.assert_array_equal(losses[:3], want_losses)

