"""Seeds follow the book's stream (mnist_fast/seeding.py): the initial
weights and the batches the book's script draws after np.random.seed."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, reference, train
from conftest import BACKENDS

SIZES = [(784, 50, 10), (5, 3, 2)]


def books_weights(sizes, weight_init_std=0.01):
    """The book's TwoLayerNet.__init__, word for word, on the global generator."""
    input_size, hidden_size, output_size = sizes
    params = {}
    params['W1'] = weight_init_std * np.random.randn(input_size, hidden_size)
    params['b1'] = np.zeros(hidden_size)
    params['W2'] = weight_init_std * np.random.randn(hidden_size, output_size)
    params['b2'] = np.zeros(output_size)
    return params


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert a[key].dtype == b[key].dtype


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes", SIZES)
def test_no_seed_draws_the_books_weights_from_the_global_generator(backend, sizes):
    np.random.seed(0)
    expected = books_weights(sizes, 0.05)
    after = np.random.random()
    np.random.seed(0)
    net = TwoLayerNet(*sizes, 0.05, backend=backend)
    assert_same_arrays(net.params, expected)
    assert np.random.random() == after  # exactly the book's draws, no more


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1, [1, 2, 3]])
def test_a_seed_gives_the_books_weights_after_np_random_seed(backend, seed):
    np.random.seed(12345)
    state = np.random.get_state()
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=seed)
    # the global generator is not touched
    assert all(np.array_equal(a, b) for a, b in
               zip(np.random.get_state(), state))
    np.random.seed(seed)
    assert_same_arrays(net.params, books_weights((784, 50, 10)))


def test_a_generator_is_still_accepted():
    net = TwoLayerNet(5, 3, 2, seed=np.random.default_rng(3))
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(net.params["W1"],
                                  0.01 * rng.standard_normal((5, 3)))
    np.testing.assert_array_equal(net.params["W2"],
                                  0.01 * rng.standard_normal((3, 2)))


def books_loop(net, x, t, iters_num, batch_size, lr):
    """The book's training loop (without the accuracies): the batches and
    losses it draws and records from the global generator."""
    masks, losses = [], []
    for i in range(iters_num):
        batch_mask = np.random.choice(x.shape[0], batch_size)
        grad = net.gradient(x[batch_mask], t[batch_mask])
        for key in ('W1', 'b1', 'W2', 'b2'):
            net.params[key] -= lr * grad[key]
        losses.append(net.loss(x[batch_mask], t[batch_mask]))
        masks.append(batch_mask)
    return masks, losses


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    x = rng.random((300, 20))
    return x, rng.integers(0, 4, 300)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [None, 0, 31])
def test_train_draws_the_books_batches(backend, seed, data):
    # the book's script after np.random.seed(s): the network, then the loop
    x, t = data
    sizes = (20, 6, 4)
    np.random.seed(99 if seed is None else seed)
    book_net = reference.TwoLayerNet(*sizes)
    _, book_losses = books_loop(book_net, x, t, 150, 10, 0.1)
    after = np.random.random()

    np.random.seed(99)
    untouched = np.random.random()
    np.random.seed(99)
    net = TwoLayerNet(*sizes, backend=backend, seed=seed)
    history = train(net, x, t, x, t, iters_num=150, batch_size=10, seed=seed,
                    eval_every_epoch=False)
    np.testing.assert_allclose(history.train_loss_list, book_losses,
                               rtol=0, atol=1e-12)
    for key in net.params:
        np.testing.assert_allclose(net.params[key], book_net.params[key],
                                   rtol=0, atol=1e-12)
    # seed=None: the global stream, not one draw more than the book's;
    # an integer seed leaves the global generator alone
    assert np.random.random() == (after if seed is None else untouched)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True, "0", [0.5]])
def test_bad_seeds_name_the_argument(bad):
    error = ValueError if bad in (-1, 2**32) else TypeError
    with pytest.raises(error, match="^seed must be None, an integer from 0 to "
                                    r"2\*\*32 - 1"):
        TwoLayerNet(5, 3, 2, seed=bad)
