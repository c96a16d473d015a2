"""TwoLayerNet.save / TwoLayerNet.load: the .npz model file."""

import os

import numpy as np
import pytest

import mnist_fast
from mnist_fast import TwoLayerNet, model_file


def _arrays(net):
    """What save writes, as a dict to tamper with."""
    return {
        "format": np.array(model_file.FORMAT),
        "format_version": np.array(model_file.FORMAT_VERSION),
        "layer_sizes": np.array([net.input_size, net.hidden_size, net.output_size]),
        "activation": np.array(net.activation),
        **net.params,
    }


@pytest.fixture
def net():
    return TwoLayerNet(20, 7, 4, seed=3, weight_init_std=0.5)


def test_round_trip_keeps_sizes_parameters_and_predictions(tmp_path, net):
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = TwoLayerNet.load(path, backend="numpy")
    assert (loaded.input_size, loaded.hidden_size, loaded.output_size) == (20, 7, 4)
    assert loaded.backend == "numpy"
    for key, value in net.params.items():
        np.testing.assert_array_equal(loaded.params[key], value)
        assert loaded.params[key].dtype == np.float64
    x = np.random.default_rng(0).random((5, 20))
    np.testing.assert_array_equal(loaded.predict(x),
                                  TwoLayerNet.load(str(path), backend="numpy").predict(x))
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(model_file.KEYS)
        assert archive["layer_sizes"].tolist() == [20, 7, 4]


def test_save_uses_the_name_as_given_and_replaces_the_old_file(tmp_path, net):
    path = tmp_path / "model"  # no .npz added
    TwoLayerNet(20, 7, 4, seed=99).save(path)
    net.save(path)
    assert os.listdir(tmp_path) == ["model"]
    np.testing.assert_array_equal(TwoLayerNet.load(path).params["W1"], net.params["W1"])


def test_interrupted_save_leaves_the_previous_model(tmp_path, net, monkeypatch):
    path = tmp_path / "model.npz"
    net.save(path)
    before = path.read_bytes()

    def savez_then_ctrl_c(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(model_file.np, "savez", savez_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        TwoLayerNet(20, 7, 4, seed=5).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found: .*nope.npz"):
        TwoLayerNet.load(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="is a folder"):
        TwoLayerNet.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        TwoLayerNet(4, 3, 2).save(tmp_path / "no" / "such" / "folder.npz")


@pytest.mark.parametrize("content, message", [
    (b"hello, I am text", "not a mnist_fast model file: expected an .npz"),
    (b"", "not a mnist_fast model file"),
])
def test_not_an_archive(tmp_path, content, message):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        TwoLayerNet.load(path)


def test_npy_file_is_not_a_model(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="w.npy: not a mnist_fast model file"):
        TwoLayerNet.load(path)


def test_truncated_archive(tmp_path, net):
    path = tmp_path / "model.npz"
    net.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + data[-200:])
    with pytest.raises(ValueError, match="model.npz: (damaged|not a)"):
        TwoLayerNet.load(path)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("W2"), r"missing W2 \(expected format, format_version, "),
    (lambda a: a.update(format=np.array("something.else")), "format is"),
    (lambda a: a.update(format_version=np.array(3)),
     "format version 3 is not supported .*newer.*reads versions 1 and 2"),
    (lambda a: a.update(format_version=np.array(0.5)), "format_version must be an integer"),
    (lambda a: a.update(layer_sizes=np.array([20, 7])), "layer_sizes must be 3 integers"),
    (lambda a: a.update(layer_sizes=np.array([20, 7, 1])), "output >= 2"),
    (lambda a: a.update(W1=np.zeros((20, 8))), r"params\['W1'\] must have shape \(20, 7\), got \(20, 8\)"),
    (lambda a: a.update(b2=np.array([0, 1, 2, 3])), r"params\['b2'\] must be a float array"),
    (lambda a: a["b1"].__setitem__(2, np.nan), r"params\['b1'\] must be finite"),
])
def test_wrong_arrays_name_what_is_wrong(tmp_path, net, change, message):
    arrays = _arrays(net)
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=f"bad.npz: .*{message}"):
        TwoLayerNet.load(path)


class _Payload:
    """Unpickling this would create a file: load must never do it."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_object_arrays_are_refused_without_unpickling(tmp_path, net):
    target = tmp_path / "pwned"
    arrays = _arrays(net)
    arrays["W1"] = np.array([_Payload(str(target))], dtype=object)
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays)  # numpy pickles object arrays when saving
    with pytest.raises(ValueError, match="evil.npz: array 'W1' cannot be read without pickle"):
        TwoLayerNet.load(path)
    assert not target.exists()


def test_unsaveable_network_is_refused(tmp_path, net):
    net.params["W1"][0, 0] = np.inf
    with pytest.raises(ValueError, match="must be finite"):
        net.save(tmp_path / "model.npz")
    assert not list(tmp_path.iterdir())


def test_load_passes_options_to_the_constructor(tmp_path, net):
    path = tmp_path / "model.npz"
    net.save(path)
    with pytest.raises(ValueError, match="backend must be one of"):
        TwoLayerNet.load(path, backend="torch")
    assert TwoLayerNet.load(path, num_threads=1).num_threads == 1
    assert mnist_fast.TwoLayerNet.load(path).backend in ("cython", "numpy")
