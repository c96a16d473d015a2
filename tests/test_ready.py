"""The fast paths of the boundary checks (src_cython/_checks.pyx,
``ready_inputs``, ``ready_labels``, ``ready_params``): each passes exactly
what the full check of mnist_fast.validation would pass unchanged, judged
here by NumPy, for every kind of array; and what a user changes between
calls (values written in place, arrays replaced, reshaped or given another
dtype) is seen by the next call, which words the error as always."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet
from mnist_fast.kernels import checks
from mnist_fast.validation import MAX_INDEX, PARAM_NAMES, as_inputs, as_labels, as_params
from conftest import BACKENDS, METHODS, call, pattern, requires_compiled

D, H, K = 6, 5, 4
SHAPES = {"W1": (D, H), "b1": (H,), "W2": (H, K), "b2": (K,)}
NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Subclass(np.ndarray):
    pass


def layouts(a):
    """``a`` as the kinds of array a user can hand over: the array itself,
    a copy in Fortran order, strided and reversed views, a subclass, a
    read-only view, a big-endian copy, other dtypes."""
    yield "C", a
    yield "F", np.asfortranarray(a)
    if a.ndim == 2:
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
        wide[:, ::2] = a
        yield "strided", wide[:, ::2]
        yield "transposed twice", np.ascontiguousarray(a.T).T
    if a.shape[0] > 1:
        yield "reversed", a[::-1]
    yield "subclass", a.view(Subclass)
    readonly = a.view()
    readonly.flags.writeable = False
    yield "read-only", readonly
    yield "big-endian", a.astype(a.dtype.newbyteorder(">"))
    for dtype in (np.float32, np.float64, np.float16, np.longdouble, np.int8,
                  np.uint8, np.int32, np.int64, np.uint64, bool, complex):
        yield np.dtype(dtype).name, a.astype(dtype)
    yield "list", a.tolist()


def spoiled(a):
    """``a`` with a NaN or an infinity at the first, a middle and the last
    place, each in turn."""
    for value in (np.nan, np.inf, -np.inf):
        for where in {0, a.size // 2, a.size - 1}:
            b = a.copy()
            b.reshape(-1)[where] = value
            yield b


def oracle_inputs(x, n_features, max_rows=MAX_INDEX):
    """What as_inputs returns unchanged, said with NumPy."""
    return (type(x) is np.ndarray and x.dtype in NATIVE_FLOATS
            and x.dtype.isnative and x.ndim == 2 and 0 < len(x) <= max_rows
            and x.shape[1] == n_features and x.flags.c_contiguous
            and bool(np.isfinite(x).all()))


def input_cases():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.random((7, D)).astype(dtype)
        for name, y in layouts(x):
            yield name, y
        for y in spoiled(x):
            yield "non-finite", y
        yield "1-D", x[0]
        yield "3-D", x[None]
        yield "wrong features", x[:, 1:].copy()
        yield "one row", x[:1]
        yield "no rows", x[:0]
        yield "column slice", np.ascontiguousarray(x[:, :1])
        yield "rows of a larger array", np.concatenate([x, x])[3:10]
        yield "length-1 dimension with odd stride", np.zeros((2, D), dtype)[:1]
    yield "datetime", np.zeros((2, D), "M8[s]")
    yield "structured", np.zeros((2, D), [("a", "f8")])
    yield "object", np.zeros((2, D), object)
    yield "masked", np.ma.masked_array(np.ones((2, D)))
    yield "None", None


@requires_compiled
@pytest.mark.parametrize("n_threads", [1, 2])
def test_ready_inputs_passes_what_the_full_check_returns_unchanged(n_threads):
    for name, x in input_cases():
        ready = checks.ready_inputs(x, D, MAX_INDEX, n_threads)
        assert ready is oracle_inputs(x, D), name
        if ready:
            assert as_inputs(x, D) is x


@requires_compiled
def test_ready_inputs_keeps_the_row_limit():
    x = np.ones((4, D))
    assert checks.ready_inputs(x, D, 4, 1) is True
    assert checks.ready_inputs(x, D, 3, 1) is False


@requires_compiled
def test_ready_inputs_scans_large_arrays_on_every_thread_count():
    # large enough for the scan's chunks to be shared between threads
    x = np.ones((20 * 2**16 // D + 1, D), np.float32)
    for n_threads in (1, 2, 3):
        assert checks.ready_inputs(x, D, MAX_INDEX, n_threads) is True
        for y in spoiled(x):
            assert checks.ready_inputs(y, D, MAX_INDEX, n_threads) is False


INTEGERS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
            np.int64, np.uint64, np.longlong, np.ulonglong, np.intp]


def label_cases():
    rng = np.random.default_rng(1)
    n = 9
    classes = rng.integers(0, K, n)
    for dtype in INTEGERS:
        t = classes.astype(dtype)
        yield f"{np.dtype(dtype).name} labels", t, classes
        for where in (0, n // 2, n - 1):
            for bad in (K, 255 if dtype in (np.int8, np.uint8) else 2**31 - 1):
                if np.can_cast(np.min_scalar_type(bad), dtype):
                    u = t.copy()
                    u[where] = bad
                    yield "label too large", u, None
            if np.issubdtype(dtype, np.signedinteger):
                u = t.copy()
                u[where] = -1
                yield "negative label", u, None
        yield "reversed", t[::-1], classes[::-1]
        yield "strided", np.repeat(t, 2)[::2], classes
        yield "big-endian", t.astype(np.dtype(dtype).newbyteorder(">")), classes
        yield "too many", np.concatenate([t, t[:1]]), None
        yield "column", t[:, None], None
    big = classes.astype(np.uint64)
    big[2] = 2**63 + 1  # negative as a signed integer
    yield "uint64 beyond int64", big, None
    for dtype in (np.float32, np.float64):
        onehot = np.eye(K, dtype=dtype)[classes]
        yield f"{np.dtype(dtype).name} one-hot", onehot, classes
        for bad in (np.nan, np.inf, 2.0, 0.5, -1.0, 1.0 + 2**-20):
            u = onehot.copy()
            u[4, (classes[4] + 1) % K] = bad
            yield f"one-hot with {bad}", u, None
        two = onehot.copy()
        two[3] = 1
        yield "two ones", two, None
        none = onehot.copy()
        none[n - 1] = 0
        yield "no one", none, None
        yield "one-hot, Fortran order", np.asfortranarray(onehot), classes
        yield "one-hot, too many rows", np.eye(K, dtype=dtype)[
            np.r_[classes, 0]], None
        yield "one-hot, wrong classes", np.eye(K + 1, dtype=dtype)[classes], None
        yield "float labels", classes.astype(dtype), classes
    yield "float16 one-hot", np.eye(K, dtype=np.float16)[classes], classes
    yield "int one-hot", np.eye(K, dtype=int)[classes], classes
    yield "bool", classes.astype(bool), None
    yield "subclass", classes.view(Subclass), classes
    yield "list", classes.tolist(), classes
    yield "None", None, None


def fast_kind(t):
    """Whether the fast path is meant to take ``t``: an exact C-contiguous
    ndarray of native integer labels or native float32/float64 one-hot
    rows."""
    if type(t) is not np.ndarray or not t.flags.c_contiguous:
        return False
    if not t.dtype.isnative:
        return False
    if t.ndim == 1:
        return t.dtype.kind in "iu"
    return t.ndim == 2 and t.dtype in NATIVE_FLOATS


@requires_compiled
def test_ready_labels_gives_the_classes_of_the_full_check():
    n = 9
    for name, t, classes in label_cases():
        got = checks.ready_labels(t, n, K)
        if classes is None:  # not labels of this batch: the full check words why
            assert got is None, name
            with pytest.raises((TypeError, ValueError)):
                as_labels(t, n, K)
            continue
        full = as_labels(t, n, K)
        np.testing.assert_array_equal(full, classes)
        if not fast_kind(t):
            assert got is None, name
            continue
        assert got is not None, name
        assert got.dtype == np.intp and got.flags.c_contiguous, name
        np.testing.assert_array_equal(got, classes, err_msg=name)
        # the same object as the full check's: the labels themselves when
        # they are np.intp already (not merely of its size: long long is
        # copied), else new class indices
        assert (got is t) == (full is t), name
        if t.dtype.char == np.dtype(np.intp).char:
            assert got is t, name


@requires_compiled
def test_ready_labels_writes_no_classes_into_the_labels():
    t = np.array([0, 1, 2, 3], np.int8)
    before = t.copy()
    checks.ready_labels(t, 4, K)
    np.testing.assert_array_equal(t, before)


def good_params():
    rng = np.random.default_rng(2)
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def oracle_params(params):
    """Whether as_params returns the user's own arrays unchanged."""
    return type(params) is dict and all(
        type(params.get(k)) is np.ndarray and params[k].dtype == np.float64
        and params[k].dtype.isnative and params[k].shape == SHAPES[k]
        and params[k].flags.c_contiguous and bool(np.isfinite(params[k]).all())
        for k in PARAM_NAMES)


def param_cases():
    yield "the book's", good_params()
    yield "extra keys", {**good_params(), "W3": "ignored"}
    for key in PARAM_NAMES:
        for name, a in layouts(good_params()[key]):
            yield f"{key} {name}", {**good_params(), key: a}
        for a in spoiled(good_params()[key]):
            yield f"{key} non-finite", {**good_params(), key: a}
        a = good_params()[key]
        yield f"{key} wrong shape", {**good_params(), key: np.ones(a.size + 1)}
        yield f"{key} as a row", {**good_params(), key: a.reshape(1, -1)}
        # (views: NumPy 2.5 deprecates setting .shape and .dtype in place)
        reshaped = a.copy().reshape((a.size,) if a.ndim == 2 else (1, a.size))
        yield f"{key} reshaped", {**good_params(), key: reshaped}
        as_ints = a.copy().view(np.int64)  # the same bytes, another dtype
        yield f"{key} its bytes as int64", {**good_params(), key: as_ints}
        missing = good_params()
        del missing[key]
        yield f"{key} missing", missing
        yield f"{key} None", {**good_params(), key: None}

    class Dict(dict):
        pass

    yield "dict subclass", Dict(good_params())
    yield "list of pairs", list(good_params().items())
    yield "None", None


@requires_compiled
def test_ready_params_passes_what_the_full_check_returns_unchanged():
    for name, params in param_cases():
        got = checks.ready_params(params, PARAM_NAMES, SHAPES)
        if not oracle_params(params):
            assert got is None, name
            continue
        assert got is not None, name
        assert list(got) == list(PARAM_NAMES), name
        full = as_params(params, SHAPES)
        for k in PARAM_NAMES:
            assert got[k] is params[k] is full[k], (name, k)


# -- through the public API: what changes between calls is seen -------------

def book_loop_network(backend):
    net = TwoLayerNet(D, H, K, seed=0, backend=backend)
    rng = np.random.default_rng(3)
    x = rng.random((8, D))
    t = np.eye(K)[rng.integers(0, K, 8)]
    return net, x, t


def step(net, x, t):
    """One iteration of the book's loop: gradient, in-place update, loss."""
    grad = net.gradient(x, t)
    for key in PARAM_NAMES:
        net.params[key] -= 0.1 * grad[key]
    return net.loss(x, t)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", METHODS)
def test_values_written_in_place_between_calls_are_checked(backend, method):
    net, x, t = book_loop_network(backend)
    for key in PARAM_NAMES:
        step(net, x, t)
        for value in (np.nan, np.inf):
            where = net.params[key].size - 1
            old = net.params[key].reshape(-1)[where]
            net.params[key].reshape(-1)[where] = value
            index = np.unravel_index(where, net.params[key].shape)
            with pytest.raises(ValueError, match=pattern(
                    f"params[{key!r}] must be finite, but 1 value(s) are NaN "
                    f"or infinite (first at index {tuple(map(int, index))}: "
                    f"{value})")):
                call(net, method, x, t)
            net.params[key].reshape(-1)[where] = old
            call(net, method, x, t)  # fixed in place: accepted again
    x[3, 2] = -np.inf
    with pytest.raises(ValueError, match=pattern(
            "x must be finite, but 1 value(s) are NaN or infinite (first at "
            "index (3, 2): -inf)")):
        call(net, method, x, t)
    x[3, 2] = 0.5
    if method != "predict":
        t[5] = 0  # a one-hot row without its 1
        with pytest.raises(ValueError, match=pattern("one-hot t must hold 0s "
                                                     "and exactly one 1 per row, got row 5")):
            call(net, method, x, t)
        labels = np.zeros(len(x), np.intp)
        call(net, method, x, labels)
        labels[2] = K  # integer labels changed in place
        with pytest.raises(ValueError, match=pattern(
                f"t labels must be in [0, {K - 1}] (output_size is {K}), got "
                f"{K} at index 2")):
            call(net, method, x, labels)


def replacements(a, key):
    """Arrays a user may put in place of parameter ``a``, the results they
    give (the same as ``a`` or an error), and the error's message."""
    yield a.astype(np.float32), None
    yield np.asfortranarray(a), None
    yield a.astype(">f8"), None
    yield a.tolist(), f"params[{key!r}] must be a numpy array, got list"
    yield a.astype(int), f"params[{key!r}] must be a float array, got dtype int64"
    yield np.ones(a.size + 1), (f"params[{key!r}] must have shape {a.shape}, "
                                f"got ({a.size + 1},)")
    yield a.copy().reshape(1, a.size), (
        f"params[{key!r}] must have shape {a.shape}, got (1, {a.size})")
    yield (a.copy().view(np.int64),
           f"params[{key!r}] must be a float array, got dtype int64")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", METHODS)
def test_arrays_replaced_between_calls_are_checked(backend, method):
    net, x, t = book_loop_network(backend)
    step(net, x, t)
    expected = call(net, method, x, t)
    for key in PARAM_NAMES:
        original = net.params[key]
        for replacement, message in replacements(original, key):
            net.params[key] = replacement
            if message is None:  # converted: as its float64 C twin gives
                got = call(net, method, x, t)
                net.params[key] = np.ascontiguousarray(replacement, np.float64)
                assert_same(got, call(net, method, x, t), method)
            else:
                with pytest.raises((TypeError, ValueError),
                                   match=pattern(message)):
                    call(net, method, x, t)
            net.params[key] = original
            assert_same(call(net, method, x, t), expected, method)
    # x and t of other dtypes and layouts between calls of the fast kind
    for x2 in (x.astype(np.float32), np.asfortranarray(x), x.tolist()):
        call(net, method, x2, t)
    assert_same(call(net, method, x, t), expected, method)


def assert_same(got, expected, method):
    if isinstance(expected, dict):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])
    else:
        np.testing.assert_array_equal(got, expected)
