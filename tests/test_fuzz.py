"""Fuzzing: whatever is thrown at the public API, only documented errors
come out, and legal inputs give the reference's answers on every backend.

Inputs are drawn from every kind of value -- arrays of any dtype, shape and
values (NaN, inf, huge, negative, empty, wrong ndim), nested lists,
scalars, strings, None -- with legal batches drawn often enough to be
compared with the book's NumPy code.  derandomize=True: CI replays the same
examples every run.
"""

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnist_fast import TrainingDiverged, TwoLayerNet, train
from mnist_fast.mnist import IDXFormatError, parse_idx
from mnist_fast.validation import PARAM_NAMES
from conftest import ATOL, BACKENDS, METHODS, call, reference_net

D, H, K = 4, 3, 3  # tiny: the reference's numerical gradient stays fast

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                database=None, suppress_health_check=list(HealthCheck))

REAL_DTYPES = [np.float64, np.float32, np.float16, np.longdouble, ">f8",
               np.int8, np.int16, np.int64, np.uint8, np.uint64, np.bool_]
OTHER_DTYPES = [np.complex128, "U3", "S3", "M8[s]", "m8[s]",
                [("a", "f8"), ("b", "i4")]]
#: Beyond this, x @ W1 may overflow: then NaN or not depends on summation
#: order and FMA, which differ between the kernels and BLAS (README).
MODERATE = 1e100
#: Compared with the reference only where both are accurate to ~1e-13, so
#: that 1e-12 measures the kernels, not rounding: the terms of x @ W1,
#: z1 @ W2 and of the backprop sums (x.T @ (dy @ W2.T)) are at most
#: max|x| max|W1| max|W2| (each at least 1), and rounding is ~1e-16 of them
#: (found by the fuzz: W2 of 2e5, equal columns, makes dy @ W2.T a
#: cancellation whose rounding differs by 2e-12 between the two).
CONDITION_BOUND = 1e3
#: The book's numerical gradient is a difference of two rounded losses
#: divided by 2h: with logits beyond this its own rounding approaches 1e-10
#: (the compiled one, exact to ~1e-12 against an extended-precision run of
#: the book's loop, is then the more accurate).
LOGIT_BOUND = 10.0

WILD_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)


def any_array(shape):
    """Arrays of ``shape`` with any dtype and any values."""
    dtype = st.sampled_from(REAL_DTYPES + OTHER_DTYPES).map(np.dtype)
    return dtype.flatmap(lambda d: hnp.arrays(d, shape))


def floats(dtype, shape, **bounds):
    return hnp.arrays(dtype, shape, elements=st.floats(
        width=np.dtype(dtype).itemsize * 8, **bounds))


def oddities():
    """Things that are not arrays at all."""
    return st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                     st.text(max_size=4), st.complex_numbers(),
                     st.just({}), st.just(object()))


def as_list(strategy):
    return strategy.map(lambda a: a.tolist())


def pick(draw, *choices):
    """Draw from one of ``choices``; a strategy listed twice, twice as often."""
    return draw(draw(st.sampled_from(choices)))


@st.composite
def inputs(draw, n):
    """``x`` for ``n`` rows: legal about half of the time."""
    shape = (n, D) if draw(st.integers(0, 3)) else draw(WILD_SHAPES)
    moderate64 = floats(np.float64, shape, min_value=-1e3, max_value=1e3)
    return pick(
        draw, moderate64, moderate64, as_list(moderate64),
        floats(np.float32, shape, min_value=-1e3, max_value=1e3),
        floats(np.float64, shape, allow_nan=False, allow_infinity=False),
        st.sampled_from(REAL_DTYPES).flatmap(lambda d: hnp.arrays(d, shape)),
        any_array(shape), oddities(),
    )


@st.composite
def labels(draw, n):
    """``t`` for ``n`` rows: class labels or one-hot rows, mostly legal."""
    classes = hnp.arrays(np.int64, n, elements=st.integers(0, K - 1))
    return pick(
        draw, classes, classes,
        classes.map(lambda t: t.astype(np.uint8)),
        classes.map(lambda t: t.astype(np.float32)),
        classes.map(lambda t: np.eye(K)[t]),
        classes.map(lambda t: np.eye(K, dtype=np.int8)[t]),
        as_list(classes),
        hnp.arrays(np.int64, n, elements=st.integers(-2, K + 1)),
        st.sampled_from([(n,), (n, K)]).flatmap(any_array),
        WILD_SHAPES.flatmap(any_array),
        oddities(),
    )


@st.composite
def batches(draw):
    n = draw(st.integers(0, 6))
    return draw(inputs(n)), draw(labels(n))


ARGUMENT = re.compile(r"(x|t|one-hot t|params(\['\w+'\])?) ")


def check_error(exc):
    """A documented error whose message starts with the argument's name."""
    assert isinstance(exc, (TypeError, ValueError)), repr(exc)
    assert ARGUMENT.match(str(exc)), str(exc)


def largest(values):
    with np.errstate(over="ignore"):
        return float(np.abs(np.asarray(values, dtype=np.float64)).max())


def moderate(values):
    """Finite numbers of at most MODERATE in magnitude."""
    return largest(values) <= MODERATE


def well_conditioned(method, x, p):
    """Whether the reference's own rounding is well below the tolerance."""
    scale = (max(1.0, largest(x)) * max(1.0, largest(p["W1"]), largest(p["b1"]))
             * max(1.0, largest(p["W2"]), largest(p["b2"])))
    logits = np.abs(p["W2"]).sum(axis=0).max() + largest(p["b2"])
    return scale <= CONDITION_BOUND and (method != "numerical_gradient"
                                         or logits <= LOGIT_BOUND)


def check_result(net, method, x, t, result):
    """The right kind of result; the reference's answer for moderate inputs."""
    if method == "predict":
        assert result.shape == (len(x), K) and result.dtype == np.float64
    elif method in ("loss", "accuracy"):
        assert isinstance(result, float)
    else:
        assert {k: v.shape for k, v in result.items()} == net.param_shapes
    if not (moderate(x) and all(map(moderate, net.params.values()))):
        event("legal, huge values")
        return  # only the kind of result is checked
    if method != "predict":
        t = np.asarray(t)
        t = t.astype(np.intp) if t.ndim == 1 else t.astype(np.float64)
    want = call(reference_net(net.params), method,
                np.asarray(x, dtype=np.float64), t)
    if isinstance(want, dict):
        result, want = (np.concatenate([d[k].ravel() for k in PARAM_NAMES])
                        for d in (result, want))
    if well_conditioned(method, x, net.params):
        event("legal, compared with the reference")
        np.testing.assert_allclose(result, want, rtol=0, atol=ATOL[method])
    else:  # finite wherever the book's answer is
        event("legal, large values: finiteness compared")
        assert np.isfinite(result)[np.isfinite(want)].all()


def outcome(net, method, x, t):
    """``(None, result)``, or ``(error, None)`` for a documented error."""
    try:
        return None, call(net, method, x, t)
    except Exception as exc:  # noqa: BLE001 -- the point of the test
        check_error(exc)
        return exc, None


def check_every_method(nets, x, t):
    """Each method on each backend: a documented error, the same on every
    backend, or the reference's answer."""
    for method in METHODS:
        outcomes = [outcome(net, method, x, t) for net in nets]
        errors = {(type(e), str(e)) if e else None for e, _ in outcomes}
        assert len(errors) == 1, errors
        if outcomes[0][0] is not None:
            event(type(outcomes[0][0]).__name__)
        for net, (error, result) in zip(nets, outcomes):
            if error is None:
                check_result(net, method, x, t, result)


def tiny_nets():
    return [TwoLayerNet(D, H, K, weight_init_std=0.5, backend=backend, seed=7)
            for backend in BACKENDS]


NETS = tiny_nets()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(FUZZ, max_examples=800)
@given(batch=batches())
def test_any_batch(batch):
    check_every_method(NETS, *batch)


def spoiled_params():
    """A params dict with one entry replaced or removed, or not a dict."""
    shapes = NETS[0].param_shapes
    key = st.sampled_from(PARAM_NAMES)
    replacement = st.one_of(
        key.flatmap(lambda k: hnp.arrays(
            st.sampled_from([np.float64, np.float32, np.float16]), shapes[k]
        ).map(lambda v: (k, v))),            # the right shape: NaN, inf, huge
        key.flatmap(lambda k: st.sampled_from([np.float64, np.float32]).flatmap(
            lambda d: floats(d, shapes[k], min_value=-3, max_value=3)
        ).map(lambda v: (k, v))),            # the right shape, legal
        st.tuples(key, any_array(hnp.array_shapes(min_dims=0, max_dims=3,
                                                  max_side=5))),
        st.tuples(key, oddities()),
        st.tuples(key, st.just("delete")),
    )
    return st.one_of(replacement, oddities().map(lambda v: (None, v)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(FUZZ, max_examples=500)
@given(spoil=spoiled_params())
def test_any_params(spoil):
    nets = tiny_nets()
    key, value = spoil
    for net in nets:
        if key is None:
            net.params = value
        elif isinstance(value, str) and value == "delete":
            del net.params[key]
        else:
            net.params[key] = value
    check_every_method(nets, np.linspace(-1, 1, 2 * D).reshape(2, D),
                       np.array([0, K - 1]))


ANYTHING = st.one_of(oddities(), st.integers(-3, 8), st.floats(-3, 8),
                     st.sampled_from([2**62, 2**70, 10**30]))


@FUZZ
@given(input_size=ANYTHING, hidden_size=ANYTHING, output_size=ANYTHING,
       weight_init_std=st.one_of(oddities(), st.floats()),
       backend=st.one_of(oddities(), st.sampled_from(["auto", "numpy", "cython", "C"])),
       seed=st.one_of(oddities(), st.integers(-2, 2**70)),
       num_threads=st.one_of(oddities(), st.integers(-2, 4)))
def test_any_constructor_arguments(input_size, hidden_size, output_size,
                                   weight_init_std, backend, seed, num_threads):
    try:
        net = TwoLayerNet(input_size, hidden_size, output_size, weight_init_std,
                          backend=backend, seed=seed, num_threads=num_threads)
    except (TypeError, ValueError, MemoryError, RuntimeError) as exc:
        assert re.match(r"(input_size|hidden_size|output_size|weight_init_std|"
                        r"backend|seed|num_threads|a \d+-\d+-\d+ network) ",
                        str(exc)), str(exc)
    else:
        assert all(np.isfinite(v).all() for v in net.params.values())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@FUZZ
@given(iters_num=st.one_of(oddities(), st.integers(-2, 3)),
       batch_size=st.one_of(oddities(), st.integers(-2, 8)),
       learning_rate=st.one_of(oddities(), st.floats()),
       gradient=st.one_of(oddities(), st.sampled_from(["backprop", "numerical", "x"])),
       seed=st.one_of(oddities(), st.integers(-2, 5)))
def test_any_training_arguments(iters_num, batch_size, learning_rate, gradient, seed):
    net = TwoLayerNet(D, H, K, seed=0)
    x, t = np.linspace(0, 1, 6 * D).reshape(6, D), np.arange(6) % K
    try:
        train(net, x, t, x, t, iters_num=iters_num, batch_size=batch_size,
              learning_rate=learning_rate, gradient=gradient, seed=seed)
    except TrainingDiverged as exc:
        assert str(exc).startswith(f"training diverged at iteration {exc.iteration}")
    except (TypeError, ValueError) as exc:
        assert re.match(r"(iters_num|batch_size|learning_rate|gradient|seed) ",
                        str(exc)), str(exc)
    assert all(np.isfinite(v).all() for v in net.params.values())


@st.composite
def idx_files(draw):
    """IDX bytes: right or wrong magic, dimensions and length."""
    dims = draw(st.lists(st.integers(0, 3), max_size=4))
    magic = draw(st.one_of(st.just(bytes([0, 0, 8, len(dims)])),
                           st.binary(max_size=4)))
    size = max(math.prod(dims) + draw(st.integers(-2, 2)), 0)
    data = (magic + b"".join(d.to_bytes(4, "big") for d in dims)
            + draw(st.binary(min_size=size, max_size=size)))
    return data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@FUZZ
@given(data=idx_files())
def test_any_idx_bytes(data):
    try:
        arr = parse_idx(data, "fuzz.idx")
    except IDXFormatError as exc:
        assert str(exc).startswith("fuzz.idx: "), str(exc)
    else:
        assert arr.dtype == np.uint8
        assert len(data) == 4 + 4 * arr.ndim + arr.size
