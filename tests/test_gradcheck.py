"""mnist_fast.gradient_check: the book's ch. 5 check, with a verdict."""

import numpy as np
import pytest

import mnist_fast
from mnist_fast import TwoLayerNet, gradcheck, gradient_check
from conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_correct_gradient_passes_on_mnist(backend, mnist):
    # the book's check on its first 3 training images, a smaller hidden
    # layer to keep the numerical gradient quick
    (x_train, t_train), _ = mnist
    net = TwoLayerNet(784, 8, 10, backend=backend, seed=0)
    checks = gradient_check(net, x_train[:3], t_train[:3])
    assert list(checks) == ["W1", "b1", "W2", "b2"]
    for name, check in checks.items():
        assert check.name == name
        assert check.passed, check
        assert 0 < check.mean_abs <= check.max_abs < 1e-6
        assert check.max_rel <= gradcheck.RTOL


def test_figures_are_the_books_and_exact():
    num = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([0.5]),
           "W2": np.array([[1e-9]]), "b2": np.array([3.0, 0.0])}
    back = {"W1": np.array([[1.0005, -2.0]]), "b1": np.array([0.4]),
            "W2": np.array([[2e-9]]), "b2": np.array([3.0, 0.0])}
    checks = gradcheck.compare_gradients(num, back)
    w1 = checks["W1"]
    assert w1.mean_abs == pytest.approx(0.00025)
    assert w1.max_abs == pytest.approx(0.0005)
    assert w1.max_rel == pytest.approx(0.0005 / 1.0005)
    assert w1.passed
    assert not checks["b1"].passed and checks["b1"].max_rel == pytest.approx(0.2)
    # below the floor, differences count against the floor (1e-4)
    assert checks["W2"].max_rel == pytest.approx(1e-9 / gradcheck.FLOOR)
    assert checks["W2"].passed
    assert checks["b2"].max_abs == 0 and checks["b2"].passed


def test_wrong_gradient_fails(mnist_batch):
    x, t, _ = mnist_batch(3)

    class MissingBatchMean(TwoLayerNet):
        """Backprop without the book's ``/ batch_num``: a classic bug."""

        def gradient(self, x, t):
            return {k: g * x.shape[0] for k, g in super().gradient(x, t).items()}

    net = MissingBatchMean(784, 4, 10, seed=1, backend="numpy")
    checks = gradient_check(net, x, t)
    assert not any(c.passed for c in checks.values())
    assert all(c.max_rel > 0.5 for c in checks.values())


def test_tolerances_are_checked_and_can_be_tightened(mnist_batch):
    x, t, _ = mnist_batch(2)
    net = TwoLayerNet(784, 3, 10, seed=2)
    strict = gradient_check(net, x, t, rtol=1e-12)
    assert not all(c.passed for c in strict.values())
    with pytest.raises(ValueError, match="rtol must be >= 0.0"):
        gradient_check(net, x, t, rtol=-1)
    with pytest.raises(ValueError, match="floor must be > 0.0"):
        gradient_check(net, x, t, floor=0)
