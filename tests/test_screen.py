"""The float32 screen of the compiled accuracy: the count is the float64
one (and the book's), row for row, whatever the weights, for rows stored
compressed (as ``train`` keeps them) or dense (as ``accuracy`` gets them)."""

import numpy as np
import pytest

from mnist_fast import TwoLayerNet, kernels, reference, train
from mnist_fast.compiled_engine import CompressedRows
from mnist_fast.screen import LARGEST, screen_for
from conftest import reference_net, requires_compiled, trained_params

# every test here runs once per SIMD variant of the kernels
pytestmark = [requires_compiled, pytest.mark.usefixtures("simd_variant")]


def counts(x, t, p, dtype=np.float32, num_threads=2):
    """Numbers of correct rows: (screened, float64 only) for compressed
    rows, then the same for dense rows."""
    x = np.ascontiguousarray(x, dtype=dtype)
    t = np.asarray(t, dtype=np.intp)
    data = CompressedRows(x, t, num_threads)
    count = kernels.forward.count_correct
    return tuple(count(values, t, csr, p, 0, False, screen, num_threads)
                 for values, csr in ((data.values, data), (x.ravel(), None))
                 for screen in (screen_for(p), None))


@pytest.mark.parametrize("seed, scale", [(0, 1.0), (1, 3.0), (2, 30.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_screen_counts_as_the_book(mnist, seed, scale, dtype):
    (x, t), _ = mnist
    x, t = x[:5000], t[:5000]
    p = trained_params((784, 50, 10), seed=seed, scale=scale)
    book = int(np.sum(reference_net(p).predict(x).argmax(axis=1) == t))
    assert counts(x, t, p, dtype) == (book,) * 4


def leading_pair(gap):
    """Weights whose classes 3 and 4 lead every row, apart by gap * (z @ r):
    an exact tie (the book's argmax takes 3) or a near one whose winner
    varies by row."""
    p = trained_params((784, 50, 10), seed=3)
    r = np.random.default_rng(3).standard_normal(50)
    r -= r.mean()  # so that the sign of z @ r varies with the row
    p["W2"][:, 3] = 5 * np.abs(p["W2"][:, 3])
    p["W2"][:, 4] = p["W2"][:, 3] + gap * r
    p["b2"][4] = p["b2"][3]
    return p


@pytest.mark.parametrize("gap", [0.0, 1e-9, 1e-5])
def test_screen_leaves_near_ties_to_the_float64_pass(mnist, gap):
    (x, t), _ = mnist
    x, t = x[:3000], t[:3000]
    p = leading_pair(gap)
    if gap == 0 and not np.array_equal(*book_logits(p, x)[:, 3:5].T):
        # the OpenBLAS of NumPy 1.25-1.26 sums two equal columns of W2 in
        # different orders: the book's code breaks the tie by rounding
        pytest.skip("this NumPy's x @ W2 differs between equal columns "
                    "(test_screen_keeps_an_exact_tie_whatever_numpy_does)")
    winners = reference_net(p).predict(x).argmax(axis=1)
    assert set(np.unique(winners)) == ({3} if gap == 0 else {3, 4})
    t = np.where(np.arange(3000) % 2 == 0, 3, 4)
    assert counts(x, t, p) == (int(np.sum(winners == t)),) * 4


def book_logits(p, x):
    """The book's logits of ``x``, by its NumPy code."""
    return reference.sigmoid(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def test_screen_keeps_an_exact_tie_whatever_numpy_does(mnist):
    # Classes 3 and 4 with equal weights lead every row: an exact tie, which
    # the book's argmax gives to class 3 on every row, on every NumPy.
    (x, t), _ = mnist
    x = x[:3000]
    p = leading_pair(0.0)
    t = np.where(np.arange(3000) % 2 == 0, 3, 4)
    assert counts(x, t, p) == (1500,) * 4


def test_screen_random_shapes_and_negative_inputs():
    rng = np.random.default_rng(7)
    for D, H, K in [(37, 9, 4), (5, 1, 2), (64, 100, 13)]:
        x = rng.standard_normal((400, D)) * 3
        x[rng.random(x.shape) < 0.5] = 0.0
        x[-1] = 0.0  # an empty last row: it starts past the last nonzero
        t = rng.integers(0, K, 400)
        p = trained_params((D, H, K), seed=D, scale=5.0)
        book = int(np.sum(reference_net(p).predict(x).argmax(axis=1) == t))
        assert counts(x, t, p, np.float64, num_threads=1) == (book,) * 4


def test_screen_shapes_and_factors():
    p = trained_params((784, 50, 10), seed=0)
    p["W1"][3, 4] = LARGEST / 2
    sc = screen_for(p)
    arrays = (sc.W1, sc.b1, sc.W2, sc.b2)
    assert [a.shape for a in arrays] == [(784, 56), (56,), (56, 16), (16,)]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}
    # per_n carries max |W1| (underflow of its products)
    assert sc.per_n >= LARGEST / 2 * 2.0**-150 * np.abs(p["W2"]).sum(axis=0).max()
    assert min(sc.n4s, sc.per_s, sc.per_big, sc.const) > 0


@pytest.mark.parametrize("where", ["W1", "b1", "W2", "b2"])
def test_screen_is_off_for_weights_too_large_for_float32(mnist, where):
    (x, t), _ = mnist
    x, t = x[:2000], t[:2000]
    p = trained_params((784, 50, 10), seed=4)
    p[where].flat[1] = -2 * LARGEST
    assert screen_for(p) is None
    with np.errstate(over="ignore"):  # the book's sigmoid of -2e30: exp(2e30)
        book = int(np.sum(reference_net(p).predict(x).argmax(axis=1) == t))
    assert counts(x, t, p) == (book,) * 4


def test_screen_decides_most_rows_and_rightly(mnist):
    """On a trained network the screen decides nearly every row (else it
    would cost time for nothing), each as the float64 pass does."""
    (x, t), (x_test, t_test) = mnist
    net = TwoLayerNet(784, 50, 10, seed=0)
    train(net, x, t, x_test, t_test, iters_num=600, seed=0,
          eval_every_epoch=False)
    data = CompressedRows(x[:10000], t[:10000].astype(np.intp), 2)
    classes = kernels.forward.screen_classes(
        data.values, data, net.params, screen_for(net.params))
    book = reference_net(net.params).predict(x[:10000]).argmax(axis=1)
    decided = classes >= 0
    assert decided.mean() > 0.99
    assert np.array_equal(classes[decided], book[decided])


def test_screen_bound_covers_the_float32_output_layer():
    """Rows whose two leading logits differ by 1e-9, where rounding b2 to
    float32 (~5e-4 at 1e4) decides the float32 winner while x @ W1 is
    nearly exact: without the output layer's terms in the bound the screen
    gets some of them wrong."""
    R = 40  # rows; row r: pixel r, hidden unit r, classes 2r and 2r + 1
    D, H, K = R, R, 2 * R
    rng = np.random.default_rng(11)
    x = np.eye(R) * (0.5 + rng.random(R))
    W1 = np.full((D, H), -0.1) + np.eye(R) * 0.2
    W2 = np.zeros((H, K))
    rows = np.arange(R)
    W2[rows, 2 * rows] = 200.0
    W2[rows, 2 * rows + 1] = 210.0
    p = {"W1": W1, "b1": np.zeros(H), "W2": W2,
         "b2": 1e4 + 1e-2 * rng.random(K)}
    a2 = 1 / (1 + np.exp(-(x @ W1))) @ W2 + p["b2"]
    sign = np.where(rows % 2 == 0, 1.0, -1.0)
    p["b2"][2 * rows + 1] += a2[rows, 2 * rows] - a2[rows, 2 * rows + 1] + sign * 1e-9
    winners = reference_net(p).predict(x).argmax(axis=1)
    assert np.array_equal(winners, 2 * rows + (sign > 0))
    for t in (winners, winners ^ 1):  # right, then wrong labels
        assert counts(x, t, p, np.float64, num_threads=1) == (
            int(np.sum(winners == t)),) * 4


def test_float32_sigmoid_within_its_bound():
    """The screen's sigmoid of a + b against float64's on a dense grid, the
    ends of its clamp and the extremes of float32 (8.9e-8 measured over
    every float32 input; the bound takes SIGMOID32_ERROR = 1e-6); the
    largest |a + b| it returns; non-finite inputs signal inf."""
    a = np.concatenate([
        np.linspace(-100, 100, 2_000_001),
        [-88.0, -87.5, -87.0, 87.0, 88.0, 88.5, 0.0, -0.0, 1e-45, -1e-45,
         3e38, -3e38, 0.34657359, -0.34657359, 7.85921097],
    ]).astype(np.float32)
    a = np.concatenate([a, np.zeros(-len(a) % 8, dtype=np.float32)])
    b = np.zeros_like(a)
    b[::3] = np.random.default_rng(0).standard_normal(b[::3].shape)
    b[-16:] = 0.0  # the extremes as they are
    z = a.copy()
    t = a + b  # rounded to float32 as in the screen
    assert kernels.forward.sigmoid32(z, b) == np.abs(t).max()
    with np.errstate(over="ignore"):  # exp(100): inf, the sigmoid 0
        exact = 1 / (1 + np.exp(-(a.astype(np.float64) + b)))
    assert np.all((z >= 0) & (z <= 1))
    # 1.5e-7 for the sigmoid (the bound allows SIGMOID32_ERROR), 0.225 u
    # for rounding a + b
    assert np.max(np.abs(z - exact)) <= 1.5e-7 + 0.225 * 2.0**-24
    for bad in (np.inf, -np.inf, np.nan):
        row = np.zeros(16, dtype=np.float32)
        row[11] = bad
        assert kernels.forward.sigmoid32(row, np.zeros(16, np.float32)) == np.inf
    with pytest.raises(ValueError, match="multiple of 8"):
        kernels.forward.sigmoid32(np.zeros(5, np.float32), np.zeros(5, np.float32))


def _sigmoid_steps(a):
    """The screen's float32 sigmoid (src_cython/simd_rows.c, mf_sigmoid_vnf),
    step by step in NumPy float32: each operation rounded once, no FMA."""
    f = np.float32
    x = np.clip(-a, f(-87.0), f(88.0))
    shift = f(12582912.0)
    kd = x * f(1.44269504) + shift
    k = kd.view(np.int32) - np.array(shift).view(np.int32)
    kd = kd - shift
    r = (x - kd * f(0.693359375)) - kd * f(-2.12194440e-4)
    p = r * f(1.0 / 5040.0) + f(1.0 / 720.0)
    for c in (1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0):
        p = p * r + f(c)
    p = p * ((k + 127) << 23).astype(np.int32).view(np.float32)
    return f(1.0) / (f(1.0) + p)


def test_float32_sigmoid_is_the_analysed_arithmetic(simd_variant):
    # the error bound of mnist_fast/screen.py is for this arithmetic: the
    # baseline (and the plain-C build, .ci/matrix) compute it bit for bit;
    # the avx2 variant may fuse a multiply and an add (FMA), which changes
    # a result by a few units in the last place, within the bound
    rng = np.random.default_rng(2)
    a = np.concatenate([
        np.linspace(-100, 100, 200_000, dtype=np.float32),
        rng.integers(0, 2**32, 200_000, dtype=np.uint32).view(np.float32),
    ])
    a = a[np.isfinite(a)]
    a = a[: len(a) // 8 * 8].copy()
    expected = _sigmoid_steps(a)
    z = a.copy()
    kernels.forward.sigmoid32(z, np.zeros_like(z))
    if simd_variant == "avx2":
        ulps = np.abs(z.view(np.int32).astype(np.int64)
                      - expected.view(np.int32).astype(np.int64))
        assert ulps.max() <= 4, ulps.max()
    else:
        np.testing.assert_array_equal(z.view(np.int32), expected.view(np.int32))


def test_screen_on_rows_the_float32_pass_gets_wrong():
    """Rows whose two leading logits differ by 1e-9 while the float32 pass
    moves their difference by ~1e-7: a screen without its bound would get
    about half of them wrong."""
    R = 20  # rows; row r: pixel r drives hidden unit r, classes 2r, 2r+1
    D, H, K = R, R, 2 * R
    rng = np.random.default_rng(11)
    x = np.eye(R) * (1 + rng.random(R))  # one pixel per row
    W1 = np.full((D, H), -3.0) + np.eye(R) * (4.7 + 0.1 * rng.random((R, R)))
    b1 = np.zeros(H)
    W2 = np.zeros((H, K))
    W2[np.arange(R), 2 * np.arange(R)] = 10.0
    W2[np.arange(R), 2 * np.arange(R) + 1] = 20.0
    b2 = np.zeros(K)
    p = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    z = 1 / (1 + np.exp(-(x @ W1 + b1)))
    logits = z @ W2 + b2
    sign = np.where(np.arange(R) % 2 == 0, 1.0, -1.0)
    rows = np.arange(R)
    # b2[2r+1] so that logit 2r+1 - logit 2r = sign * 1e-9 on row r
    b2[2 * rows + 1] = (logits[rows, 2 * rows] - logits[rows, 2 * rows + 1]
                        + sign * 1e-9)
    winners = reference_net(p).predict(x).argmax(axis=1)
    assert np.array_equal(winners, 2 * rows + (sign > 0))
    for t in (winners, winners ^ 1):  # right, then wrong labels
        assert counts(x, t, p, np.float64, num_threads=1) == (
            int(np.sum(winners == t)),) * 4
