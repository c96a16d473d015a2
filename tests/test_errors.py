"""Misuse of TwoLayerNet: every bad argument is a TypeError or ValueError
that names the argument and says what was expected and what was got."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet
from conftest import BACKENDS

LABELLED = ["loss", "accuracy", "gradient", "numerical_gradient"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", LABELLED)
def test_missing_labels_are_a_type_error(backend, method):
    # t=None used to reach the compiled kernels as a None memoryview: a
    # segmentation fault in loss and accuracy
    net = TwoLayerNet(4, 3, 2, backend=backend, seed=0)
    with pytest.raises(TypeError, match="t must be a numpy array, got NoneType"):
        getattr(net, method)(np.ones((2, 4)), None)
