"""What a seed means: the book's random streams.

The book seeds nothing itself; its readers write ``np.random.seed(0)`` at
the top of its script, which then draws, from NumPy's global generator,

1. the initial weights: ``weight_init_std * np.random.randn(input_size,
   hidden_size)`` for ``W1``, then the same for ``W2`` (the biases are
   zeros);
2. each iteration's batch: ``np.random.choice(train_size, batch_size)``.

mnist_fast follows that stream (docs/api.md, "Seeds"):

* ``seed=None`` draws from the global generator, as the book does, so
  ``np.random.seed(s)`` before the book's script with mnist_fast's classes
  gives the book's run;
* an integer ``s`` (or anything else ``np.random.seed`` takes) draws from
  a private ``numpy.random.RandomState(s)``, the stream of
  ``np.random.seed(s)`` without touching the global one:
  ``TwoLayerNet(..., seed=s)`` has the book's initial weights and
  ``train(net, ..., seed=s)`` the batches that follow them in that stream;
* a ``numpy.random.Generator`` or ``RandomState`` is used as given.
"""

import numbers

import numpy as np

from .validation import describe


#: The largest integer seed (``np.random.seed`` takes 0 to 2**32 - 1).
MAX_SEED = 2**32 - 1
#: The generator objects a seed may be: used as given.
GENERATORS = (np.random.Generator, np.random.RandomState)


def random_source(seed, name="seed"):
    """The generator that ``seed`` stands for (see the module docstring).

    Parameters
    ----------
    seed : None, int, sequence of ints, Generator or RandomState
        What ``np.random.seed`` takes (an integer from 0 to 2**32 - 1 or a
        sequence of them), or a generator.

    Returns
    -------
    object
        Something with the ``standard_normal(shape)`` and ``choice(n,
        size)`` of ``numpy.random``: the module itself for None (its
        global generator), a ``RandomState`` for what ``np.random.seed``
        takes.
    """
    if seed is None:
        return np.random
    if isinstance(seed, GENERATORS):
        return seed
    if not isinstance(seed, (bool, np.bool_, float, str, bytes)):
        try:
            return np.random.RandomState(seed)
        except (TypeError, ValueError):
            pass
    error = (ValueError if isinstance(seed, numbers.Integral)
             and not isinstance(seed, bool) else TypeError)
    raise error(
        f"{name} must be None, an integer from 0 to 2**32 - 1 or a sequence "
        f"of them (as for np.random.seed), a numpy.random.Generator or "
        f"RandomState, got {describe(seed)}"
    )


def batch_source(seed, sizes):
    """Where ``train`` draws its batches for ``seed`` and a network of
    ``sizes`` (input, hidden, output): for a seed that is not a generator,
    its stream after the network's initial weights, which are drawn and
    dropped."""
    rng = random_source(seed)
    if seed is not None and not isinstance(seed, GENERATORS):
        D, H, K = sizes
        rng.standard_normal(D * H + H * K)
    return rng
