"""The reference functions against values computed by hand."""

import numpy as np
import pytest

from mnist_fast import reference


def test_sigmoid_and_its_gradient():
    x = np.array([0.0, np.log(3.0), -np.log(3.0)])
    np.testing.assert_allclose(reference.sigmoid(x), [0.5, 0.75, 0.25], rtol=1e-15)
    np.testing.assert_allclose(reference.sigmoid_grad(x),
                               [0.25, 0.1875, 0.1875], rtol=1e-15)


def test_softmax_vector_matrix_and_shift_invariance():
    a = np.array([0.0, np.log(2.0), np.log(5.0)])
    np.testing.assert_allclose(reference.softmax(a), [0.125, 0.25, 0.625], rtol=1e-15)
    # the max shift keeps exp from overflowing; a + 1000 rounds the logits
    # themselves by up to 1.1e-13, hence the wider tolerance of that row
    m = np.vstack([a, a + 1000.0])
    y = reference.softmax(m)
    np.testing.assert_allclose(y[0], [0.125, 0.25, 0.625], rtol=1e-15)
    np.testing.assert_allclose(y[1], [0.125, 0.25, 0.625], rtol=1e-12)


def test_cross_entropy_with_both_label_forms():
    y = np.array([[0.125, 0.25, 0.625], [0.5, 0.25, 0.25]])
    expected = -(np.log(0.625 + 1e-7) + np.log(0.5 + 1e-7)) / 2
    assert reference.cross_entropy_error(y, np.array([2, 0])) == pytest.approx(
        expected, rel=1e-15)
    one_hot = np.array([[0, 0, 1], [1, 0, 0]])
    assert reference.cross_entropy_error(y, one_hot) == pytest.approx(
        expected, rel=1e-15)
    # a single sample, as the book allows
    assert reference.cross_entropy_error(y[0], np.array([0, 0, 1])) == pytest.approx(
        -np.log(0.625 + 1e-7), rel=1e-15)


def test_the_guard_keeps_the_loss_finite():
    y = np.array([[1.0, 0.0]])
    assert reference.cross_entropy_error(y, np.array([1])) == pytest.approx(
        -np.log(1e-7), rel=1e-15)


def test_generic_numerical_gradient_of_any_function():
    # f(x) = sum(x**3): the central difference of a cubic is 3x^2 + h^2
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    x_before = x.copy()
    grad = reference.numerical_gradient(lambda v: np.sum(v ** 3), x)
    np.testing.assert_allclose(grad, 3 * x_before ** 2 + 1e-8, rtol=1e-9)
    np.testing.assert_array_equal(x, x_before)  # restored after perturbing
    # a 1-D argument and a function of only some entries
    grad = reference.numerical_gradient(lambda v: 2.0 * v[1], np.zeros(3))
    np.testing.assert_allclose(grad, [0.0, 2.0, 0.0], atol=1e-10)


def test_network_on_hand_computed_values():
    net = reference.TwoLayerNet.from_params({
        "W1": np.array([[1.0, 0.0], [0.0, 1.0]]),
        "b1": np.zeros(2),
        "W2": np.array([[np.log(3.0), 0.0], [0.0, 0.0]]),
        "b2": np.zeros(2),
    })
    x = np.array([[0.0, 0.0]])  # z1 = (0.5, 0.5), a2 = (log(3)/2, 0)
    p0 = np.sqrt(3.0) / (np.sqrt(3.0) + 1.0)
    np.testing.assert_allclose(net.predict(x), [[p0, 1 - p0]], rtol=1e-15)
    assert net.loss(x, np.array([0])) == pytest.approx(-np.log(p0 + 1e-7), rel=1e-15)
    assert net.accuracy(x, np.array([0])) == 1.0
    assert net.accuracy(x, np.array([[0.0, 1.0]])) == 0.0
    g = net.gradient(x, np.array([0]))
    dy = np.array([p0 - 1.0, 1.0 - p0])
    np.testing.assert_allclose(g["b2"], dy, rtol=1e-14)
    np.testing.assert_allclose(g["W2"], np.outer([0.5, 0.5], dy), rtol=1e-14)
    np.testing.assert_allclose(g["b1"], 0.25 * np.array([np.log(3.0) * dy[0], 0.0]),
                               rtol=1e-14, atol=1e-300)
    np.testing.assert_array_equal(g["W1"], np.zeros((2, 2)))  # x = 0


def test_network_gradients_agree_with_each_other():
    # the book's ch05 gradient check, on a small network
    rng = np.random.default_rng(3)
    net = reference.TwoLayerNet(5, 4, 3, weight_init_std=0.5, rng=rng)
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    num, back = net.numerical_gradient(x, t), net.gradient(x, t)
    for key in ("W1", "b1", "W2", "b2"):
        # central differences differ from the derivative by O(h^2) = O(1e-8)
        np.testing.assert_allclose(num[key], back[key], atol=1e-6)
