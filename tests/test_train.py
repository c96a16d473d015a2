"""train: misuse is refused before anything changes; divergence keeps the
last finite parameters."""

import os
import signal
import time
import types
from collections.abc import Mapping, MutableMapping

import numpy as np
import pytest

from mnist_fast import TrainingDiverged, TwoLayerNet, train
from conftest import BACKENDS, pattern

RNG = np.random.default_rng(0)
X = RNG.random((40, 6))
T = RNG.integers(0, 3, 40)


def tiny_net(backend="numpy", **kwargs):
    return TwoLayerNet(6, 4, 3, backend=backend, seed=0, **kwargs)


def snapshot(net):
    return {k: v.copy() for k, v in net.params.items()}


def assert_params_equal(net, expected):
    assert sorted(net.params) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(net.params[key], value, err_msg=key)


BAD_ARGUMENTS = [
    (dict(iters_num=-1), ValueError, "iters_num must be an integer >= 0, got -1"),
    (dict(iters_num=2.5), ValueError, "iters_num must be a whole number, got 2.5"),
    (dict(iters_num=True), TypeError, "iters_num must be an integer >= 0, got True"),
    (dict(batch_size=0), ValueError,
     "batch_size must be an integer between 1 and 2147483647, got 0"),
    (dict(batch_size=-3), ValueError,
     "batch_size must be an integer between 1 and 2147483647, got -3"),
    (dict(batch_size="10"), TypeError,
     "batch_size must be an integer between 1 and 2147483647, got str '10'"),
    (dict(batch_size=2**31), ValueError,
     "batch_size must be an integer between 1 and 2147483647, got 2147483648"),
    (dict(learning_rate=0), ValueError, "learning_rate must be > 0.0, got 0.0"),
    (dict(learning_rate=-0.1), ValueError, "learning_rate must be > 0.0, got -0.1"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate must be finite, got nan"),
    (dict(learning_rate=float("inf")), ValueError, "learning_rate must be finite, got inf"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate must be a real number, got str '0.1'"),
    (dict(gradient="adam"), ValueError,
     "gradient must be one of 'backprop', 'numerical', got 'adam'"),
    (dict(gradient=None), TypeError,
     "gradient must be one of 'backprop', 'numerical', got NoneType None"),
    (dict(gradient=np.array(["backprop", "numerical"])), TypeError,
     "gradient must be one of .*got an array of shape (2,)"),
    (dict(seed=-1), ValueError, "seed must be None, an integer from 0 to "
     "2**32 - 1 or a sequence of them (as for np.random.seed), a "
     "numpy.random.Generator or RandomState, got int -1"),
    (dict(seed="abc"), TypeError, "seed must be .*got str 'abc'"),
    (dict(callback=3), TypeError, "callback must be callable or None, got int"),
    (dict(eval_every_epoch="no"), TypeError,
     "eval_every_epoch must be True or False, got str 'no'"),
    (dict(x_train=X[:, :5]), ValueError, "x_train must have 6 features (columns) "
     "to match the network's input_size, got shape (40, 5)"),
    (dict(x_train=X[:0]), ValueError, "x_train is an empty batch"),
    (dict(t_train=T[:39]), ValueError, "t_train has 39 labels but x_train has 40 rows"),
    (dict(t_train=np.eye(3)[T][:, :2]), ValueError,
     "one-hot t_train must have 3 columns (the network's output_size), got shape (40, 2)"),
    (dict(t_test=T.astype(bool)), TypeError, "t_test must hold integer class labels"),
    (dict(x_test=np.where(X == X[3, 4], np.nan, X)), ValueError,
     "x_test must be finite, but 1 value(s) are NaN or infinite (first at index (3, 4): nan)"),
    (dict(t_test=T + 1), ValueError,
     "t_test labels must be in [0, 2] (output_size is 3), got 3 at index"),
]


def argument_id(kwargs):
    (key, value), = kwargs.items()
    shown = f"array{value.shape}" if isinstance(value, np.ndarray) else repr(value)
    return f"{key}={shown}"


@pytest.mark.parametrize("kwargs, error, message", BAD_ARGUMENTS,
                         ids=[argument_id(k) for k, _, _ in BAD_ARGUMENTS])
def test_bad_arguments_change_nothing(kwargs, error, message):
    net = tiny_net()
    before = snapshot(net)
    data = dict(x_train=X, t_train=T, x_test=X, t_test=T)
    args = {k: kwargs.pop(k) if k in kwargs else v for k, v in data.items()}
    with pytest.raises(error, match=pattern(message)):
        train(net, **args, **(dict(iters_num=3, batch_size=5) | kwargs))
    assert_params_equal(net, before)


def test_net_must_be_a_two_layer_net():
    with pytest.raises(TypeError, match="net must be a TwoLayerNet, got dict"):
        train({"W1": None}, X, T, X, T)


def test_bad_params_are_reported_before_training():
    net = tiny_net()
    net.params["b2"] = np.array([0.0, np.inf, 0.0])
    with pytest.raises(ValueError, match=pattern("params['b2'] must be finite")):
        train(net, X, T, X, T, iters_num=3)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_through_the_loss_keeps_the_last_finite_parameters(backend):
    # The weights stay finite but the logits overflow: the batch loss is
    # NaN (the failing update was once kept in net.params).  Divergence
    # through the weights is tests/test_backprop.py's
    # test_train_diverges_cleanly.
    def train_tiny(net, iters_num):
        train(net, X, T, X, T, iters_num=iters_num, batch_size=5,
              learning_rate=1e308, seed=1)
        return net

    net = tiny_net(backend)
    with pytest.raises(TrainingDiverged) as info:
        train_tiny(net, 100)
    error, i = info.value, info.value.iteration
    assert 0 < i < 100  # a step that diverges after some that did not
    assert str(error) == (
        f"training diverged at iteration {i} (learning_rate=1e+308): its update "
        "made the batch loss nan; net.params keeps the parameters from before "
        "that update. Try a smaller learning_rate.")
    assert len(error.history.train_loss_list) == error.history.iterations == i
    assert all(np.isfinite(error.history.train_loss_list))
    assert all(np.isfinite(v).all() for v in net.params.values())
    assert_params_equal(net, train_tiny(tiny_net(backend), i).params)


def test_verbose_prints_the_books_line_at_each_evaluation(mnist, capsys):
    (x_train, t_train), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, seed=0)
    history = train(net, x_train[:1000], t_train[:1000], x_test[:200],
                    t_test[:200], iters_num=25, batch_size=100, seed=0,
                    verbose=True)
    lines = capsys.readouterr().out.splitlines()
    # the book's print, str() of each accuracy
    assert lines == ["train acc, test acc | " + str(a) + ", " + str(b)
                     for a, b in zip(history.train_acc_list,
                                     history.test_acc_list)]
    assert len(lines) == 3  # iterations 0, 10 and 20


def test_quiet_by_default_and_a_bar_with_progress(mnist, capsys):
    (x_train, t_train), (x_test, t_test) = mnist
    args = (x_train[:1000], t_train[:1000], x_test[:200], t_test[:200])
    train(TwoLayerNet(784, 50, 10, seed=0), *args, iters_num=30, seed=0)
    assert capsys.readouterr() == ("", "")
    # the bar redraws at most every 0.1 s: a callback that waits 5 ms per
    # iteration makes the run last at least 0.3 s on any machine (a run
    # that is merely slow, like the numerical gradient, is fast enough on
    # some machines never to redraw)
    train(TwoLayerNet(784, 50, 10, seed=0), *args, iters_num=60, seed=0,
          progress=True, callback=lambda history: time.sleep(5e-3))
    out = capsys.readouterr().out
    assert "/60 [" in out and "it/s" in out and "loss " in out
    assert "train acc, test acc |" not in out  # the lines need verbose


@pytest.mark.parametrize("name", ["verbose", "progress"])
def test_verbose_and_progress_are_flags(mnist, name):
    (x_train, t_train), (x_test, t_test) = mnist
    with pytest.raises(TypeError, match=f"{name} must be True or False"):
        train(TwoLayerNet(784, 50, 10, seed=0), x_train[:100], t_train[:100],
              x_test[:10], t_test[:10], iters_num=1, **{name: "yes"})


# -- net.params: any mapping, followed when a callback replaces its arrays -----

class ReadOnlyParams(Mapping):
    """A mapping that is not a dict and cannot be written."""

    def __init__(self, arrays):
        self._arrays = dict(arrays)

    def __getitem__(self, key):
        return self._arrays[key]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)


class CopyingParams(ReadOnlyParams, MutableMapping):
    """A mapping that keeps copies of what is put in it, and a key more."""

    def __setitem__(self, key, value):
        self._arrays[key] = np.array(value)

    def __delitem__(self, key):
        del self._arrays[key]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mapping", [types.MappingProxyType, ReadOnlyParams,
                                     CopyingParams])
def test_any_mapping_trains_like_a_dict(backend, mapping):
    plain, other = tiny_net(backend), tiny_net(backend)
    other.params = mapping({"note": "kept",
                            **{k: v.copy() for k, v in other.params.items()}})
    assert other.loss(X, T) == plain.loss(X, T)  # the methods take it
    histories = [train(net, X, T, X, T, iters_num=70, batch_size=8, seed=2)
                 for net in (plain, other)]
    assert histories[0].train_loss_list == histories[1].train_loss_list
    assert type(other.params) is dict and other.params.pop("note") == "kept"
    assert_params_equal(other, plain.params)


#: Replacements a callback may make (after iteration STEPS of the run).
STEPS = 64  # the end of a block of the compiled trainer
REPLACEMENTS = {
    "same shape": lambda net: net.params.__setitem__("W1", net.params["W1"] * 0.5),
    "float32": lambda net: net.params.__setitem__("W2", net.params["W2"].astype(np.float32)),
    "Fortran order": lambda net: net.params.__setitem__("W1", np.asfortranarray(net.params["W1"])),
    "view": lambda net: net.params.__setitem__("b1", net.params["b1"][:]),
    "strided view": lambda net: net.params.__setitem__(
        "b1", np.repeat(net.params["b1"], 2)[::2]),
    "read-only": lambda net: net.params.__setitem__(
        "b2", np.array(net.params["b2"]).view()),
    "whole mapping": lambda net: setattr(net, "params", {
        k: v + 0.01 for k, v in net.params.items()}),
    "mapping proxy": lambda net: setattr(net, "params", types.MappingProxyType(
        {k: v.copy() for k, v in net.params.items()})),
    "in place": lambda net: net.params["W1"].__imul__(0.5),
}


def read_only(net):
    net.params["b2"].flags.writeable = False


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(REPLACEMENTS))
def test_a_callback_replacing_arrays_is_followed(backend, name):
    replace = REPLACEMENTS[name]

    def callback(history):
        if history.iterations == STEPS:
            replace(net)
            if name == "read-only":
                read_only(net)

    net, split = tiny_net(backend), tiny_net(backend)
    rng, split_rng = np.random.RandomState(5), np.random.RandomState(5)
    kwargs = dict(batch_size=8, eval_every_epoch=False)
    history = train(net, X, T, X, T, iters_num=2 * STEPS + 5, seed=rng,
                    callback=callback, **kwargs)
    # the same run in two calls, the replacement between them
    first = train(split, X, T, X, T, iters_num=STEPS, seed=split_rng, **kwargs)
    replace(split)
    if name == "read-only":
        read_only(split)
    second = train(split, X, T, X, T, iters_num=STEPS + 5, seed=split_rng,
                   **kwargs)
    assert history.train_loss_list == (first.train_loss_list
                                       + second.train_loss_list)
    assert_params_equal(net, split.params)
    for key, value in net.params.items():
        assert type(value) is np.ndarray and value.dtype == np.float64
        assert value.flags.c_contiguous and value.flags.writeable
    assert net.loss(X, T) == split.loss(X, T)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("replace, error, message", [
    (lambda p: p.__setitem__("W1", np.zeros((6, 5))), ValueError,
     r"params['W1'] must have shape (6, 4), got (6, 5)"),
    (lambda p: p.pop("b2"), ValueError, "params is missing b2"),
    (lambda p: p.__setitem__("W2", np.zeros((4, 3), dtype=int)), TypeError,
     "params['W2'] must be a float array, got dtype int64"),
    (lambda p: p.__setitem__("b1", np.full(4, np.nan)), ValueError,
     "params['b1'] must be finite"),
    (lambda p: p.__setitem__("b1", [0.0] * 4), TypeError,
     "params['b1'] must be a numpy array, got list"),
])
def test_a_callback_putting_a_wrong_array_is_refused(backend, replace, error,
                                                     message):
    net = tiny_net(backend)

    def callback(history):
        if history.iterations == 3:
            replace(net.params)

    with pytest.raises(error, match=pattern(message)):
        train(net, X, T, X, T, iters_num=STEPS + 10, batch_size=8,
              callback=callback)


def press_ctrl_c_at(at):
    """A callback sending a real SIGINT at iteration ``at``."""
    def press_ctrl_c(history):
        if history.iterations == at:
            os.kill(os.getpid(), signal.SIGINT)
    return press_ctrl_c


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("at", [3, 9])  # a middle iteration, the last
def test_ctrl_c_in_any_block_is_reported(backend, at):
    # a real SIGINT, sent by the callback of iteration `at` (the last
    # block's too, whose Ctrl-C must not be swallowed)
    net = tiny_net(backend)
    history = train(net, X, T, X, T, iters_num=10, batch_size=4, seed=1,
                    eval_every_epoch=False, callback=press_ctrl_c_at(at))
    assert history.interrupted
    assert at <= history.iterations <= 10


def test_an_ignored_sigint_stays_ignored():
    # a run started with nohup: the SIGINT of iteration 3 stops nothing
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        history = train(tiny_net(BACKENDS[0]), X, T, X, T, iters_num=10,
                        batch_size=4, seed=1, eval_every_epoch=False,
                        callback=press_ctrl_c_at(3))
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not history.interrupted and history.iterations == 10
