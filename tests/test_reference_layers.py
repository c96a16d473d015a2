"""The book's ch. 5 layers and the network built from them
(``mnist_fast.reference``), against values computed by hand."""

import numpy as np
import pytest

from mnist_fast import reference


def test_relu_forward_and_backward_mask_at_and_below_zero():
    relu = reference.Relu()
    x = np.array([[-2.0, 0.0, 3.0], [-0.0, 1e-300, -1e-300]])
    out = relu.forward(x)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 3.0], [0.0, 1e-300, 0.0]])
    assert x[0, 0] == -2.0  # the input is not changed
    dx = relu.backward(np.full((2, 3), 5.0))
    # 0 where the input was <= 0 (0 and -0 included), dout where > 0
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 5.0], [0.0, 5.0, 0.0]])


def test_affine_forward_and_backward():
    W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    b = np.array([0.5, -1.0])
    affine = reference.Affine(W, b)
    x = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    np.testing.assert_array_equal(affine.forward(x),
                                  [[-3.5, -5.0], [5.5, 7.0]])
    dout = np.array([[1.0, -1.0], [0.5, 2.0]])
    np.testing.assert_array_equal(affine.backward(dout),
                                  [[-1.0, -1.0, -1.0], [4.5, 9.5, 14.5]])
    np.testing.assert_array_equal(affine.dW, x.T @ dout)
    np.testing.assert_array_equal(affine.db, [1.5, 1.0])
    assert affine.W is W and affine.b is b  # used, not copied


def test_affine_flattens_images_and_gives_dx_their_shape():
    affine = reference.Affine(np.ones((4, 1)), np.zeros(1))
    x = np.arange(8.0).reshape(2, 2, 2)
    np.testing.assert_array_equal(affine.forward(x), [[6.0], [22.0]])
    assert affine.backward(np.ones((2, 1))).shape == (2, 2, 2)


def test_softmax_with_loss_both_label_forms():
    scores = np.array([[0.0, np.log(2.0), np.log(5.0)],
                       [np.log(4.0), np.log(2.0), np.log(2.0)]])
    y = np.array([[0.125, 0.25, 0.625], [0.5, 0.25, 0.25]])
    expected = -(np.log(0.625 + 1e-7) + np.log(0.5 + 1e-7)) / 2
    for t in (np.array([2, 0]), np.array([[0, 0, 1], [1, 0, 0]])):
        layer = reference.SoftmaxWithLoss()
        assert layer.forward(scores, t) == pytest.approx(expected, rel=1e-15)
        np.testing.assert_allclose(
            layer.backward(), (y - [[0, 0, 1], [1, 0, 0]]) / 2, rtol=1e-15)


def test_layer_net_on_hand_computed_values():
    net = reference.LayerNet.from_params({
        "W1": np.array([[1.0, -1.0], [2.0, 0.5]]),
        "b1": np.array([0.0, -1.0]),
        "W2": np.array([[1.0, 0.0], [0.0, 1.0]]),
        "b2": np.array([0.0, np.log(3.0)]),
    })
    x = np.array([[1.0, 1.0], [-1.0, 0.0]])
    # a1 = [[3, -1.5], [-1, 0]]: relu -> [[3, 0], [0, 0]]
    scores = net.predict(x)
    np.testing.assert_allclose(scores, [[3.0, np.log(3.0)], [0.0, np.log(3.0)]],
                               rtol=1e-15)
    t = np.array([0, 1])
    np.testing.assert_array_equal(net.accuracy(x, t), 1.0)
    y0 = np.exp(3.0) / (np.exp(3.0) + 3.0)
    expected = -(np.log(y0 + 1e-7) + np.log(0.75 + 1e-7)) / 2
    assert net.loss(x, t) == pytest.approx(expected, rel=1e-15)
    g = net.gradient(x, t)
    dy = np.array([[y0 - 1.0, 1.0 - y0], [0.25, -0.25]]) / 2
    np.testing.assert_allclose(g["b2"], dy.sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(g["W2"], [[3.0 * dy[0, 0], 3.0 * dy[0, 1]],
                                         [0.0, 0.0]], rtol=1e-14)
    # only unit 0 of row 0 is active: dz1 = [[dy[0] @ W2[0]], 0]
    np.testing.assert_allclose(g["b1"], [dy[0, 0], 0.0], rtol=1e-14)
    np.testing.assert_allclose(g["W1"], [[dy[0, 0], 0.0], [dy[0, 0], 0.0]],
                               rtol=1e-14)


@pytest.mark.parametrize("one_hot", [False, True])
def test_layer_net_gradient_is_the_derivative_of_its_loss(one_hot):
    rng = np.random.default_rng(5)
    net = reference.LayerNet(6, 5, 3, weight_init_std=0.5, rng=rng)
    x = rng.standard_normal((8, 6))
    labels = rng.integers(0, 3, 8)
    t = np.eye(3)[labels] if one_hot else labels

    def unguarded_loss(_):
        # the loss without its 1e-7 guard, which backprop leaves out (as in
        # the book): then only the O(h^2) of central differences remains
        y = reference.softmax(net.predict(x))
        return -np.mean(np.log(y[np.arange(8), labels]))

    backprop = net.gradient(x, t)
    for key in ("W1", "b1", "W2", "b2"):
        numerical = reference.numerical_gradient(unguarded_loss, net.params[key])
        np.testing.assert_allclose(backprop[key], numerical, rtol=0, atol=1e-8)
    # no pre-activation lies within a step of the kink at 0
    a1 = x @ net.params["W1"] + net.params["b1"]
    assert np.abs(a1).min() > 1e-2


def test_layer_net_draws_the_book_weights_and_shares_its_arrays():
    np.random.seed(3)
    book4 = reference.TwoLayerNet(7, 4, 3)
    np.random.seed(3)
    net = reference.LayerNet(7, 4, 3)
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(net.params[key], book4.params[key])
    x = np.ones((1, 7))
    before = net.predict(x)
    net.params["b2"] -= 1.0  # the book's in-place update reaches the layers
    np.testing.assert_allclose(net.predict(x), before - 1.0, rtol=1e-15)
