"""Misuse of TwoLayerNet: every bad argument is a TypeError or ValueError
that names the argument and says what was expected and what was got."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet
from conftest import BACKENDS, METHODS, call, pattern

X = np.arange(8.0).reshape(2, 4) / 8  # a valid batch for a 4-3-2 network
T = np.array([0, 1])


def with_value(shape, index, value, dtype=float):
    arr = np.zeros(shape, dtype=dtype)
    arr[index] = value
    return arr


def case(value, error, message, id):
    """A parametrized case; ``message`` is literal but for ``.*``."""
    return pytest.param(value, error, pattern(message), id=id)


BAD_X = [
    case(np.ones(4), ValueError, "x must be 2-D (n_samples, 4), got 1-D shape "
         "(4,) (for one sample use x.reshape(1, -1))", "1-D"),
    case(np.ones((1, 2, 4)), ValueError,
         "x must be 2-D (n_samples, 4), got 3-D shape (1, 2, 4)", "3-D"),
    case(np.array(1.0), ValueError, "got 0-D shape ()", "0-D array"),
    case(np.ones((2, 5)), ValueError, "x must have 4 features (columns) to "
         "match the network's input_size, got shape (2, 5)", "5 features"),
    case(np.ones((0, 4)), ValueError,
         "x is an empty batch (shape (0, 4))", "empty batch"),
    case(np.broadcast_to(np.ones(4), (2**31, 4)), ValueError,  # no memory
         "x has 2147483648 rows, more than the 2147483647 (2**31 - 1) a "
         "batch may have: split it", "2**31 rows"),
    case([], ValueError, "got 1-D shape (0,)", "empty list"),
    case(with_value((2, 4), (1, 2), np.nan), ValueError,
         "x must be finite, but 1 value(s) are NaN or infinite (first at "
         "index (1, 2): nan)", "NaN"),
    case(with_value((2, 4), (0, 3), -np.inf, np.float32), ValueError,
         "x must be finite, but 1 value(s) are NaN or infinite (first at "
         "index (0, 3): -inf)", "float32 -inf"),
    case(np.full((2, 4), np.longdouble("1e400")), ValueError,
         "x must be finite, but 8 value(s)", "longdouble past float64"),
    case(np.ones((2, 4), complex), TypeError, "x must hold real numbers "
         "(float or integer), got dtype complex128", "complex"),
    case(np.ones((2, 4), object), TypeError, "got dtype object", "object"),
    case(np.full((2, 4), "1"), TypeError, "got dtype <U1", "str dtype"),
    case(np.full((2, 4), b"1"), TypeError, "got dtype |S1", "bytes dtype"),
    case(np.zeros((2, 4), [("a", "f8")]), TypeError,
         "got dtype [('a', '<f8')]", "structured"),
    case(np.zeros((2, 4), "M8[s]"), TypeError, "got dtype datetime64", "datetime"),
    case([["1", "2", "3", "4"]], TypeError,
         "x must hold real numbers, got a list of <U1", "list of str"),
    case([[1, 2, 3, 4], [1]], ValueError, "x must be a rectangular array",
         "ragged list"),
    case([[None] * 4], TypeError, "got a list of object", "list of None"),
    case(None, TypeError, "x must be a numpy array (or a nested list of "
         "numbers), got NoneType None", "None"),
    case(3.5, TypeError, "x must be a numpy array .*got float 3.5", "scalar"),
    case("0123", TypeError, "x must be a numpy array .*got str '0123'", "str"),
    case(np.ma.masked_array(np.ones((2, 4)), mask=True), TypeError,
         "x must be a plain numpy array, got a masked array", "masked"),
]

BAD_T = [
    case(None, TypeError, "t must be a numpy array .*got NoneType None", "None"),
    case(1, TypeError, "t must be a numpy array .*got int 1", "scalar"),
    case(np.array([True, False]), TypeError, "t must hold integer class "
         "labels or one-hot rows of 0/1, got dtype bool", "bool"),
    case(np.eye(2, dtype=bool), TypeError, "got dtype bool", "bool one-hot"),
    case(np.array([0, 1], complex), TypeError, "got dtype complex128", "complex"),
    case(np.array([0, 1], object), TypeError, "got dtype object", "object"),
    case(np.array(["0", "1"]), TypeError, "got dtype <U1", "str"),
    case(np.array([0, 1, 1]), ValueError,
         "t has 3 labels but x has 2 rows", "3 labels"),
    case(np.eye(2)[[0, 1, 1]], ValueError,
         "one-hot t has 3 rows but x has 2 rows", "3 one-hot rows"),
    case(np.eye(3)[[0, 1]], ValueError, "one-hot t must have 2 columns (the "
         "network's output_size), got shape (2, 3)", "3 one-hot columns"),
    case(np.array([[0], [1]]), ValueError,
         "(for class labels in a column use t.ravel())", "column"),
    case(np.zeros((2, 2, 1)), ValueError, "t must be 1-D class labels (2,) or "
         "one-hot (2, 2), got shape (2, 2, 1)", "3-D"),
    case(np.array([0, -1]), ValueError, "t labels must be in [0, 1] "
         "(output_size is 2), got -1 at index 1", "negative"),
    case(np.array([2, 0]), ValueError, "got 2 at index 0", "out of range"),
    case(np.array([0, 2**64 - 1], np.uint64), ValueError,
         "got 18446744073709551615 at index 1", "uint64 max"),
    case(np.array([0.0, 0.5]), ValueError,
         "t must hold whole-number class labels, got 0.5 at index 1", "fraction"),
    case(np.array([np.nan, 1.0]), ValueError, "t must be finite, but 1 "
         "value(s) are NaN or infinite (first at index (0,): nan)", "NaN"),
    case(np.array([0.0, 1e300]), ValueError, "got 1e+300 at index 1", "1e300"),
    case(np.array([[1, 1], [0, 1]]), ValueError, "one-hot t must hold 0s and "
         "exactly one 1 per row, got row 0: [1 1]", "two ones"),
    case(np.array([[1, 0], [0, 0]]), ValueError,
         "exactly one 1 per row, got row 1: [0 0]", "no one"),
    case(np.array([[0.5, 0.5], [0, 1]]), ValueError,
         "got row 0: [0.5 0.5]", "soft labels"),
    case(np.array([[1, 0], [np.nan, 1]]), ValueError,
         "got row 1: [nan  1.]", "NaN one-hot"),
]


def set_param(key, value):
    return lambda params: params.__setitem__(key, value)


BAD_PARAMS = [
    case(set_param("W1", np.ones((3, 4))), ValueError,
         "params['W1'] must have shape (4, 3), got (3, 4)", "W1 transposed"),
    case(set_param("b1", np.ones((3, 1))), ValueError,
         "params['b1'] must have shape (3,), got (3, 1)", "b1 column"),
    case(set_param("W2", np.ones((3, 2), int)), TypeError,
         "params['W2'] must be a float array, got dtype int64", "W2 int"),
    case(set_param("b2", np.ones(2, complex)), TypeError,
         "params['b2'] must be a float array, got dtype complex128",
         "b2 complex"),
    case(set_param("W1", np.ones((4, 3), bool)), TypeError,
         "got dtype bool", "W1 bool"),
    case(set_param("W1", with_value((4, 3), (2, 1), np.nan)), ValueError,
         "params['W1'] must be finite, but 1 value(s) are NaN or infinite "
         "(first at index (2, 1): nan)", "W1 NaN"),
    case(set_param("b1", with_value(3, 0, np.inf, np.float32)), ValueError,
         "params['b1'] must be finite", "b1 float32 inf"),
    case(set_param("W2", [[0.0, 0.0]] * 3), TypeError,
         "params['W2'] must be a numpy array, got list", "W2 list"),
    case(set_param("b2", None), TypeError, "got NoneType None", "b2 None"),
    case(set_param("b2", np.ma.zeros(2)), TypeError,
         "params['b2'] must be a plain numpy array", "b2 masked"),
    case(lambda params: params.pop("b2"), ValueError,
         "params is missing b2; expected keys W1, b1, W2, b2", "missing b2"),
]


def bad_x(net, x):
    return x, T


def bad_t(net, t):
    return X, t


def bad_params(net, spoil):
    spoil(net.params)
    return X, T


# Every case of each table on every method that takes the argument.
MISUSE = [
    pytest.param(spoil, method, *case.values, id=f"{name} {case.id}, {method}")
    for name, spoil, methods, table in [
        ("x", bad_x, METHODS, BAD_X),
        ("t", bad_t, METHODS[1:], BAD_T),
        ("params", bad_params, METHODS, BAD_PARAMS),
    ]
    for case in table for method in methods
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spoil, method, value, error, message", MISUSE)
def test_misuse(backend, spoil, method, value, error, message):
    # (t=None used to reach the compiled loss and accuracy kernels as a
    # None memoryview: a segmentation fault.)
    net = TwoLayerNet(4, 3, 2, backend=backend, seed=0)
    x, t = spoil(net, value)
    with pytest.raises(error, match=message):
        call(net, method, x, t)


@pytest.mark.parametrize("params, message", [
    (None, "params must be a dict, got NoneType None"),
    ([np.ones((4, 3))], "params must be a dict, got list"),
])
def test_params_must_be_a_dict(params, message):
    net = TwoLayerNet(4, 3, 2, seed=0)
    net.params = params
    for method in METHODS:
        with pytest.raises(TypeError, match=pattern(message)):
            call(net, method, X, T)


BAD_CONSTRUCTOR = [
    case(dict(input_size=0), ValueError,
         "input_size must be an integer between 1 and 2147483647, got 0",
         "input_size 0"),
    case(dict(hidden_size=-5), ValueError,
         "hidden_size must be a positive integer, got -5", "hidden_size < 0"),
    case(dict(output_size=1), ValueError,
         "output_size must be an integer >= 2, got 1", "output_size 1"),
    case(dict(hidden_size=2.5), ValueError,
         "hidden_size must be a whole number, got 2.5", "fractional size"),
    case(dict(input_size=float("nan")), ValueError,
         "input_size must be a whole number, got nan", "NaN size"),
    case(dict(input_size="784"), TypeError,
         "input_size must be an integer between 1 and 2147483647, got str "
         "'784'", "str size"),
    case(dict(output_size=True), TypeError,
         "output_size must be an integer >= 2, got True", "bool size"),
    case(dict(input_size=None), TypeError,
         "input_size must be an integer between 1 and 2147483647, got "
         "NoneType None", "None size"),
    case(dict(input_size=2**31), ValueError,  # pixels are C-int indices
         "input_size must be an integer between 1 and 2147483647, got "
         "2147483648", "2**31 inputs"),
    case(dict(hidden_size=2**70), MemoryError,
         "a 4-1180591620717411303424-2 network has .* parameters: more than "
         "can be addressed", "unaddressable"),
    case(dict(weight_init_std=-0.01), ValueError,
         "weight_init_std must be >= 0.0, got -0.01", "negative std"),
    case(dict(weight_init_std=float("inf")), ValueError,
         "weight_init_std must be finite, got inf", "infinite std"),
    case(dict(weight_init_std=float("nan")), ValueError,
         "weight_init_std must be finite, got nan", "NaN std"),
    case(dict(weight_init_std=1e308), ValueError, "weight_init_std must be "
         "small enough for the initial weights to be finite, got 1e+308",
         "overflowing std"),
    case(dict(weight_init_std="0.01"), TypeError,
         "weight_init_std must be a real number, got str '0.01'", "str std"),
    case(dict(backend="torch"), ValueError, "backend must be one of 'auto', "
         "'cython', 'numpy', got 'torch'", "unknown backend"),
    case(dict(backend=None), TypeError, "backend must be one of 'auto', "
         "'cython', 'numpy', got NoneType None", "None backend"),
    case(dict(backend=np.array(["numpy", "cython"])), TypeError,
         "backend must be one of .*got an array of shape (2,)", "array backend"),
    case(dict(num_threads=0), ValueError,
         "num_threads must be an integer between 1 and 1024, got 0", "0 threads"),
    case(dict(num_threads=-2), ValueError,
         "num_threads must be an integer between 1 and 1024, got -2",
         "negative threads"),
    case(dict(num_threads=200_000), ValueError,  # OpenMP crashed on it
         "num_threads must be an integer between 1 and 1024, got 200000",
         "200,000 threads"),
    case(dict(num_threads="2"), TypeError,
         "num_threads must be an integer between 1 and 1024, got str '2'",
         "str threads"),
    case(dict(seed=-1), ValueError, "seed must be None, an integer from 0 "
         "to 2**32 - 1 or a sequence of them (as for np.random.seed), "
         "a numpy.random.Generator or RandomState, got int -1",
         "negative seed"),
    case(dict(seed=2**32), ValueError, "seed must be None, an integer from 0 "
         "to .*got int 4294967296", "seed beyond np.random.seed's range"),
    case(dict(seed=0.5), TypeError, "seed must be .*got float 0.5", "float seed"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_CONSTRUCTOR)
def test_bad_constructor_arguments(kwargs, error, message):
    args = dict(input_size=4, hidden_size=3, output_size=2, seed=0) | kwargs
    with pytest.raises(error, match=message):
        TwoLayerNet(**args)


@pytest.mark.parametrize("value", ["0", "5000", "many"])
def test_bad_thread_count_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("MNIST_FAST_NUM_THREADS", value)
    message = "$MNIST_FAST_NUM_THREADS must be an integer between 1 and 1024, got "
    with pytest.raises(ValueError, match=pattern(message)):
        TwoLayerNet(4, 3, 2)


class LyingShape(np.ndarray):
    """A subclass whose shape says more rows than its buffer holds."""

    @property
    def shape(self):
        return (1000, super().shape[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_reads_the_real_buffer_of_a_subclass(backend):
    from mnist_fast import TwoLayerNet

    net = TwoLayerNet(6, 4, 3, backend=backend, seed=0)
    x = np.ones((2, 6)).view(LyingShape)
    t = np.array([0, 2])
    # the two real rows are used; nothing reads beyond them
    expected = net.predict(np.ones((2, 6)))
    np.testing.assert_array_equal(net.predict(x), expected)
    assert net.loss(x, t) == net.loss(np.ones((2, 6)), t)
