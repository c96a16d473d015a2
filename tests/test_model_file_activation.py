"""The activation in the model file: version 2 stores it, version 1 files
(no activation) load as the sigmoid networks they are."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, ch05, model_file
from conftest import pattern


def _arrays(net, version=model_file.FORMAT_VERSION, **changes):
    """The arrays of ``net``'s model file of ``version`` (1: without an
    activation), with ``changes`` (None removes an array)."""
    arrays = {
        "format": np.array(model_file.FORMAT),
        "format_version": np.array(version),
        "layer_sizes": np.array([net.input_size, net.hidden_size,
                                 net.output_size]),
        **({"activation": np.array(net.activation)} if version >= 2 else {}),
        **net.params,
    }
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.mark.parametrize("cls, kwargs", [(TwoLayerNet, {"activation": "relu"}),
                                         (TwoLayerNet, {}),
                                         (ch05.TwoLayerNet, {})])
def test_round_trip_keeps_the_activation(tmp_path, cls, kwargs):
    net = cls(20, 7, 4, seed=3, weight_init_std=0.5, backend="numpy", **kwargs)
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as archive:
        assert str(archive["activation"]) == net.activation
        assert int(archive["format_version"]) == 2
    loaded = cls.load(path, backend="numpy")
    assert type(loaded) is cls and loaded.activation == net.activation
    assert loaded.engine.architecture == net.engine.architecture
    x = np.random.default_rng(0).standard_normal((5, 20))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


def test_a_ch05_file_loads_as_the_relu_network(tmp_path):
    net = ch05.TwoLayerNet(20, 7, 4, seed=3, weight_init_std=0.5,
                           backend="numpy")
    net.save(tmp_path / "ch05.npz")
    loaded = TwoLayerNet.load(tmp_path / "ch05.npz", backend="numpy")
    assert loaded.activation == "relu"
    x = np.random.default_rng(1).standard_normal((5, 20))
    # the same network: probabilities here, the softmax of ch. 5's scores
    probabilities = loaded.predict(x)
    assert (probabilities.argmax(axis=1) == net.predict(x).argmax(axis=1)).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)


def test_a_version_1_file_loads_as_a_sigmoid_network(tmp_path):
    net = TwoLayerNet(20, 7, 4, seed=3, weight_init_std=0.5)
    path = tmp_path / "old.npz"
    np.savez(path, **_arrays(net, version=1))
    with np.load(path) as archive:
        assert "activation" not in archive.files
    loaded = TwoLayerNet.load(path)
    assert loaded.activation == "sigmoid"
    for key, value in net.params.items():
        np.testing.assert_array_equal(loaded.params[key], value)
    with pytest.raises(ValueError, match=pattern(
            f"{path}: the model file holds a sigmoid network; "
            "mnist_fast.ch05.TwoLayerNet has a relu hidden layer")):
        ch05.TwoLayerNet.load(path)


@pytest.mark.parametrize("change, message", [
    ({"activation": None}, "not a complete mnist_fast model file: missing "
                           "activation (a version 2 file names its hidden "
                           "layer's activation)"),
    ({"activation": np.array("tanh")},
     "activation must be one of 'sigmoid', 'relu', got array('tanh'"),
    ({"activation": np.array("ReLU")},
     "activation must be one of 'sigmoid', 'relu', got array('ReLU'"),
    ({"activation": np.array(1)}, "activation must be one of 'sigmoid', 'relu', got array(1)"),
    ({"activation": np.array(["relu"])}, "activation must be one of .*got array(['relu']"),
    ({"activation": np.array(b"relu")}, "activation must be one of .*got array(b'relu'"),
    ({"activation": np.array("x" * 300)}, "array 'activation' has 1200 bytes"),
    ({"format_version": np.array(3)},
     "format version 3 is not supported (written by a newer mnist_fast?); "
     "this mnist_fast reads versions 1 and 2"),
    ({"format_version": np.array(0)}, "format version 0 is not supported; "
                                      "this mnist_fast reads versions 1 and 2"),
])
def test_a_wrong_activation_or_version_names_the_file(tmp_path, change, message):
    net = TwoLayerNet(20, 7, 4, seed=3, activation="relu")
    path = tmp_path / "bad.npz"
    np.savez(path, **_arrays(net, **change))
    with pytest.raises(ValueError, match=pattern(f"{path}: .*{message}")):
        TwoLayerNet.load(path)


def test_a_missing_array_says_what_every_version_needs(tmp_path):
    net = TwoLayerNet(20, 7, 4, seed=3)
    path = tmp_path / "bad.npz"
    np.savez(path, **_arrays(net, W2=None))
    with pytest.raises(ValueError, match=pattern(
            "missing W2 (expected format, format_version, layer_sizes, W1, "
            "b1, W2, b2, and activation from version 2)")):
        TwoLayerNet.load(path)


def test_the_activation_is_the_files_not_an_argument(tmp_path):
    TwoLayerNet(20, 7, 4, seed=3).save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="TwoLayerNet.load takes the "
                                        "activation from the model file"):
        TwoLayerNet.load(tmp_path / "m.npz", activation="relu")
