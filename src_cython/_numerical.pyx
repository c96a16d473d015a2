"""Compiled numerical gradient: the book's central differences, exactly.

Private module: the public, validating API is
``mnist_fast.TwoLayerNet.numerical_gradient``.

For every parameter theta the book evaluates the mean loss L at
theta + h and theta - h (h = 1e-4) with two full forward passes and
returns (L(theta + h) - L(theta - h)) / 2h.  This kernel computes the same
quantity from the same losses, but evaluates only what a perturbation
changes, and evaluates the *change* of each row's loss directly:

* ``W1[i, j]`` changes ``a1[b, j]`` by ``x[b, i] * d`` (d = the applied
  perturbation ``fl(theta +- h) - theta``), so only rows with
  ``x[b, i] != 0`` and only hidden unit j change; ``b1[j]`` is the same
  with ``x[b, i] = 1``.  The hidden unit moves by
  ``dz = sigmoid(a + da) - sigmoid(a) = -s c q / (1 + c q)`` with
  ``s = sigmoid(a)``, ``c = 1 - s``, ``q = expm1(-da)`` (exact algebra),
  and every logit k of the row moves by ``dz * W2[j, k]``.
* ``W2[j, k]`` moves logit k of every row by ``z1[b, j] * d``; ``b2[k]`` by
  ``d``.
* A ReLU unit (the book's ch. 5) moves by ``dz = da`` where ``a`` and
  ``a + da`` are both > 0 and by ``relu(a + da) - relu(a)`` where they are
  not (``mf_relu_move``, simd_rows.h): at and across the kink the
  difference of the two forward passes, as the book's loop takes it.
  ReLU moves nothing more than its input (``|relu(u) - relu(w)| <=
  |u - w|``), so this differs from the book's by no more than the book's
  pre-activations differ from the kernel's (the rounding of ``x @ W1 +
  b1`` in another order): kink or not, no case is special.  A unit
  further below 0 than any step moves it stays at 0 and adds exactly 0.
* With ``e_k = exp(a2_k - max)``, ``S = sum(e)``, ``p = e_t / S`` and the
  logit moves ``delta_k``: ``em_k = expm1(delta_k)``,
  ``D = sum_k e_k em_k`` (so ``S' = S + D``) and
  ``p' - p = e_t * sum_k e_k (em_t - em_k) / (S (S + D))``.  The row's loss
  changes by ``-log1p((p' - p) / (p + 1e-7))``, and the central difference
  of a row is ``-log1p((r+ - r-) / (1 + r-))`` for the two ratios r+-.

No derivative formula and no expansion in h is used: every value is the
loss at the perturbed parameters minus the loss at the others, computed
without cancellation (expm1/log1p), so the result is more accurate than
the book's difference of two rounded totals.  ``expm1`` and ``log1p`` of
small arguments are evaluated by their series to full double precision
(truncation below 1e-17 relative) so that the loops vectorise; arguments
outside the proven range take libm's ``expm1``/``log1p``.  Within the
series' range the K logits' series of a unit's move are summed in powers
of the move, from sums over the logits that each row computes once
(``row_table``; simd_rows.h): a hidden unit's move then costs the same
for any K.

Each output element is computed by one thread in a fixed order (W1's
and b1's summed over the rows in order, ``hidden_rows``): results are
bit-identical whatever the number of threads.
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY, exp, expm1, fabs, log1p

from _common cimport (MF_EXPM1_DEG5, MF_LOG1P_DEG8, MF_ROW_A, MF_ROW_ALIGN,
                      MF_ROW_C, MF_ROW_DEGREE, MF_ROW_G, MF_ROW_M, MF_ROW_SC,
                      MF_ROW_TERMS, MF_UNIT_BLOCK, MF_UNIT_PAD, RELU, SIGMOID,
                      Grads, Net, check_rows, count_nonzeros, grads_of,
                      hidden_preactivation_row, mf_hidden_row,
                      mf_hidden_row_relu_series, mf_hidden_row_relu_tiny,
                      mf_hidden_row_series, mf_hidden_row_tiny, mf_relu,
                      mf_relu_move, net_of, output_row, shifted_exp_row)

include "_simd.pxi"  # simd(), simd_variants(), use_simd()

# 1 / n!, n = 1 ... MF_ROW_DEGREE: the expm1 series' coefficients
cdef double[5] INVERSE_FACTORIALS = [1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0,
                                     1.0 / 120.0]
# A unit's move |dz| <= bound * |x d|: a sigmoid unit's while
# |da| <= Q_SMALL (sigmoid' <= 1/4, margin), a ReLU unit's for any move
# (mf_relu_move returns da = fl(x d) or less, and |fl(x d)| <=
# |x d| (1 + 2**-53); margin).
cdef double SIGMOID_DZ_BOUND = 0.2505
cdef double RELU_DZ_BOUND = 1.0005
# Bounds on the arguments for which each series is exact (see below).
cdef double Q_SMALL = 0.000244140625          # 2**-12 on |da|
cdef double SERIES_SMALL = 0.0009765625       # 2**-10 on a logit move
cdef double TINY_SMALL = 0.00000762939453125  # 2**-17 on a logit move
# Columns of W1 a member of the team sums in a run: every team-th run is
# its (MNIST's pixels are nonzero in the middle of the picture).
cdef enum:
    COLUMN_RUN = 4
# Logits the output units take side by side.
cdef enum:
    LOGIT_BLOCK = 16


# How expm1 and log1p are evaluated, by the size of the moves:
#   Tiny    every logit move |delta| <= 2**-17 and |da| <= 2**-12
#   Series  every logit move |delta| <= 2**-10 and |da| <= 2**-12
#   Libm    anything else.
# (|da| <= 2**-12 is the series of a sigmoid unit's q = expm1(-da); a ReLU
# unit's move takes no series.)
# With |delta| <= B the ratios below obey |r+-| <= 2B / (1 - B) and
# |(r+ - r-) / (1 + r-)| <= 4.02 B, inside the log1p series' range (the
# series: simd_rows.h).  A W1 or b1 column's rows run their Tiny and Series
# cases in simd_rows.c; the output units choose Series or Libm at compile
# time (fused types), so that each case compiles to straight loops.
cdef struct Series:
    char unused
cdef struct Libm:
    char unused
ctypedef fused Evaluation:
    Series
    Libm
# The tags passed to choose a case (only their type is read); globals, so
# that they are initialised (zero) as C compilers want of what is passed.
cdef Series SERIES
cdef Libm LIBM


cdef inline double expm1_logit(double x, Evaluation how) noexcept nogil:
    """expm1 of a logit move."""
    if Evaluation is Series:
        return MF_EXPM1_DEG5(x)
    else:
        return expm1(x)


cdef inline double row_difference(double rp, double rm, Evaluation how) noexcept nogil:
    """-log1p((r+ - r-) / (1 + r-)) = L(theta + h) - L(theta - h) of a row.

    ``r+-`` is (p' - p) / (p + 1e-7) of the row's true class at theta +- h.
    """
    cdef double ratio = (rp - rm) / (1.0 + rm)
    if Evaluation is Series:
        return -MF_LOG1P_DEG8(ratio)
    else:
        return -log1p(ratio)


cdef inline double hidden_move(
    double a, double da, double s, double c, double q,
) noexcept nogil:
    """sigmoid(a + da) - sigmoid(a), with s = sigmoid(a), c = 1 - s and
    q = expm1(-da), for any move da.

    The exact algebra -s c q / (1 + c q) needs 1 + c q = s / sigmoid(a + da)
    well away from 0 and finite.  A large move out of saturation takes it
    towards 0 (exactly 0 once q rounds to -1: 0 / 0), one of more than 709
    into saturation makes q infinite (inf / inf).  Then sigmoid(a + da) is
    at least 2 s, or the move is nearly all of s: the plain difference
    loses nothing.
    """
    cdef double d = 1.0 + c * q
    if 0.5 <= d < INFINITY:
        return -s * c * q / d
    return 1.0 / (1.0 + exp(-(a + da))) - s


cdef struct Forward:
    # The one forward pass the kernel keeps, of the batch's N rows.
    const double* a         # (N, H) a1
    const double* z         # (N, H) z1: sigmoid(a1) or relu(a1)
    const double* c         # (N, H) 1 - sigmoid(a1) (sigmoid only)
    const double* e         # (N, K) exp(a2 - max a2)
    const double* S         # (N,)   sum of e per row
    const double* P         # (N,)   p_t / (p_t + guard) per row
    const Py_ssize_t* t     # (N,)   labels
    const double* W2T       # (K, H) W2 transposed
    Py_ssize_t N, H, K
    int activation          # the hidden layer's (an Activation)


cdef struct Steps:
    # The perturbations of one column of W1 (or of b1), per hidden unit j.
    const double* dp        # (H,) applied +h: fl(theta + h) - theta
    const double* dm        # (H,) applied -h


cdef inline double unit_move(
    const Forward* f,       # IN  the kept forward pass
    Py_ssize_t i,           # IN  the unit: b H + j
    double da,              # IN  the move of its pre-activation a1[b, j]
) noexcept nogil:
    """How hidden unit i moves when its pre-activation moves by da, for any
    move, by the network's activation."""
    if f.activation == RELU:
        return mf_relu_move(f.a[i], da)
    return hidden_move(f.a[i], da, f.z[i], f.c[i], expm1(-da))


cdef inline double dz_bound(int activation) noexcept nogil:
    """The largest |dz| / |da| of a unit's move within the series' range."""
    return RELU_DZ_BOUND if activation == RELU else SIGMOID_DZ_BOUND


cdef inline void hidden_units(
    const double* a,        # IN  (H,) a1 of a row
    Py_ssize_t H,
    int activation,         # IN  the hidden layer's
    double* z,              # OUT (H,) z1: sigmoid(a1) or relu(a1)
    double* c,              # OUT (H,) 1 - sigmoid(a1) (sigmoid only)
) noexcept nogil:
    """The hidden layer of a row, and what a sigmoid unit's moves need."""
    cdef Py_ssize_t j
    for j in range(H):
        if activation == RELU:
            z[j] = mf_relu(a[j])
        else:
            c[j] = 1.0 / (1.0 + exp(a[j]))
            z[j] = 1.0 / (1.0 + exp(-a[j]))


cdef inline void libm_row_difference(
    double v,               # IN  x[b, i] (1 for b1)
    const Steps* st,        # IN  the perturbations
    const Forward* f,       # IN  the kept forward pass
    Py_ssize_t b,           # IN  the row
    double* acc,            # IN/OUT (H,) += L+ - L- of row b, per unit j
) noexcept nogil:
    """Row b's central differences when a1[b, j] moves by v * d, all j,
    for moves of any size, saturation included (libm's expm1 and log1p;
    small moves take the series in simd_rows.c, the same algebra)."""
    cdef double dzp[MF_UNIT_BLOCK]
    cdef double dzm[MF_UNIT_BLOCK]
    cdef double emtp[MF_UNIT_BLOCK]
    cdef double emtm[MF_UNIT_BLOCK]
    cdef double Dp[MF_UNIT_BLOCK]
    cdef double Dm[MF_UNIT_BLOCK]
    cdef Py_ssize_t H = f.H, K = f.K, j0 = 0, j, k, n
    cdef const double* dp = st.dp
    cdef const double* dm = st.dm
    cdef const double* eb = f.e + b * K
    cdef const double* W2T = f.W2T
    cdef double Sb = f.S[b], Pb = f.P[b]
    cdef Py_ssize_t tb = f.t[b]
    cdef double ek, w
    cdef const double* wk
    while j0 < H:
        n = min(<Py_ssize_t> MF_UNIT_BLOCK, H - j0)
        wk = W2T + tb * H + j0
        for j in range(n):
            # hidden unit j moves by dz when a1[b, j] moves by v * d
            dzp[j] = unit_move(f, b * H + j0 + j, v * dp[j0 + j])
            dzm[j] = unit_move(f, b * H + j0 + j, v * dm[j0 + j])
            emtp[j] = expm1(dzp[j] * wk[j])
            emtm[j] = expm1(dzm[j] * wk[j])
            Dp[j] = 0.0
            Dm[j] = 0.0
        for k in range(K):
            # every logit k moves by dz * W2[j, k]: D = sum_k e_k em_k
            ek = eb[k]
            wk = W2T + k * H + j0
            for j in range(n):
                w = wk[j]
                Dp[j] += ek * expm1(dzp[j] * w)
                Dm[j] += ek * expm1(dzm[j] * w)
        for j in range(n):
            # p' - p = e_t (S em_t - D) / (S (S + D)); r = (p' - p) / (p + eps)
            acc[j0 + j] += row_difference(
                Pb * (emtp[j] * Sb - Dp[j]) / (Sb + Dp[j]),
                Pb * (emtm[j] * Sb - Dm[j]) / (Sb + Dm[j]), LIBM)
        j0 += MF_UNIT_BLOCK


cdef inline void series_row(
    const mf_hidden_row* row,   # IN  the row and the column's moves
    bint tiny,                  # IN  whether the Tiny case holds
    int activation,             # IN  the hidden layer's
    double* acc,                # IN/OUT (H,) += L+ - L- of the row
) noexcept nogil:
    """The dispatched C of a row within the series' range (simd_rows.c)."""
    if activation == RELU:
        if tiny:
            mf_hidden_row_relu_tiny(row, acc)
        else:
            mf_hidden_row_relu_series(row, acc)
    elif tiny:
        mf_hidden_row_tiny(row, acc)
    else:
        mf_hidden_row_series(row, acc)


cdef struct Pixels:
    # The batch's nonzero pixels row by row (CSR), each row's ending with
    # b1 as pixel D (1 in every row), what a column's steps are, and what
    # the series rows read; Hp is H padded to MF_UNIT_PAD, every row of
    # steps, tables and acc aligned to MF_ROW_ALIGN bytes, padding 0.
    const Py_ssize_t* start     # (N + 1,) row b's: start[b] ... start[b + 1] - 1
    const int* cols             # their pixels i (D for b1)
    const double* vals          # their values x[b, i] (1 for b1)
    const double* W1            # (D, H) the columns' parameters: W1's
    const double* b1            # (H,)   rows, b1 for column D
    double h                    # the book's step
    double w2max                # max |W2|
    double* steps               # (D + 1, 2 Hp) scratch: each column's dp,
                                #   then dm (set by the column's owner)
    double* vmax_series         # (D + 1,) scratch: each column's |x| bound
    double* vmax_tiny           #   of the Series case, of the Tiny case
    const double* tables        # (N, MF_ROW_TERMS Hp) the rows' tables
    double* acc                 # (D + 1, Hp) scratch: the columns' sums
    Py_ssize_t D, Hp


cdef inline bint owns(Py_ssize_t i, Py_ssize_t member,
                      Py_ssize_t team) noexcept nogil:
    """Whether team member ``member`` of ``team`` sums column i of W1 (or
    b1, i = D): every team-th run of COLUMN_RUN columns."""
    return (i // COLUMN_RUN) % team == member


cdef inline double* column_out(const Grads* g, Py_ssize_t i, Py_ssize_t D,
                               Py_ssize_t H) noexcept nogil:
    """The output of column i: row i of W1's gradient, b1's for i = D."""
    return g.W1 + i * H if i < D else g.b1


cdef inline void row_table(
    const Forward* f,       # IN  the kept forward pass
    Py_ssize_t b,           # IN  the row
    Py_ssize_t Hp,          # IN  H padded
    double* u,              # OUT (MF_ROW_TERMS, Hp) the row's table
) noexcept nogil:
    """What the series rows read of row b (simd_rows.h).

    With P_n(w) = w^n / n!: M_n = sum_k e_k P_n(w_k), and G_n = sum_{k != t}
    e_k (P_n(w_t) - P_n(w_k)), which is P_n(w_t) S - M_n; G_1, which
    carries the most of a move, is summed term by term instead (no
    cancellation when e_t is most of S).  The padding stays 0.
    """
    cdef Py_ssize_t j, k, n, H = f.H, K = f.K, t = f.t[b]
    cdef const double* e = f.e + b * K
    cdef const double* wt = f.W2T + t * H
    cdef const double* wk
    cdef double* G = u + MF_ROW_G * Hp
    cdef double* M = u + MF_ROW_M * Hp
    cdef double ek, w, power
    for j in range(MF_ROW_TERMS * Hp):
        u[j] = 0.0
    for j in range(H):
        if f.activation == RELU:
            u[MF_ROW_A * Hp + j] = f.a[b * H + j]
        else:
            u[MF_ROW_SC * Hp + j] = f.z[b * H + j] * f.c[b * H + j]
            u[MF_ROW_C * Hp + j] = f.c[b * H + j]
    for k in range(K):
        ek = e[k]
        wk = f.W2T + k * H
        for j in range(H):
            w = wk[j]
            power = 1.0
            for n in range(MF_ROW_DEGREE):
                power = power * w
                M[n * Hp + j] += ek * (power * INVERSE_FACTORIALS[n])
            if k != t:
                G[j] += ek * (wt[j] - w)
    for j in range(H):
        power = wt[j]
        for n in range(1, MF_ROW_DEGREE):
            power = power * wt[j]
            G[n * Hp + j] = (power * INVERSE_FACTORIALS[n]) * f.S[b] - M[n * Hp + j]


cdef inline void hidden_rows(
    const Forward* f,       # IN  the kept forward pass
    const Pixels* px,       # IN  the batch's pixels, the columns' steps,
                            #     the rows' tables; px.acc: scratch
    Py_ssize_t member,      # IN  this member of the team
    Py_ssize_t team,
    double scale,           # IN  1 / (2 h N)
    const Grads* g,         # OUT the member's rows of W1's gradient, b1's
) noexcept nogil:
    """Central differences for the columns of W1 and b1 the member owns.

    First the columns' steps, then row by row, each row's pixels in turn:
    every output is summed over the
    rows in order, whichever member owns it and however many there are.  A
    row whose moves are small enough for the series (``|x|`` within the
    column's bounds) runs in the dispatched C (simd_rows.c), the others in
    ``libm_row_difference``.
    """
    cdef Py_ssize_t b, n, i, j, H = f.H, Hp = px.Hp, D = px.D
    cdef double v
    cdef double* acc
    cdef double* out
    cdef Steps st
    cdef mf_hidden_row row
    for i in range(D + 1):
        if owns(i, member, team):
            column_steps(px.W1 + i * H if i < D else px.b1, H, Hp, px.h,
                         px.w2max, f.activation, px.steps + i * 2 * Hp,
                         px.vmax_series + i, px.vmax_tiny + i)
            acc = px.acc + i * Hp
            for j in range(Hp):
                acc[j] = 0.0
    row.H = Hp
    for b in range(f.N):
        row.u, row.S, row.P = px.tables + b * MF_ROW_TERMS * Hp, f.S[b], f.P[b]
        for n in range(px.start[b], px.start[b + 1]):
            i = px.cols[n]
            if not owns(i, member, team):
                continue
            v = px.vals[n]
            acc = px.acc + i * Hp
            st.dp = px.steps + i * 2 * Hp
            st.dm = st.dp + Hp
            if fabs(v) <= px.vmax_series[i]:
                row.v, row.dp, row.dm = v, st.dp, st.dm
                series_row(&row, fabs(v) <= px.vmax_tiny[i], f.activation,
                           acc)
            else:
                libm_row_difference(v, &st, f, b, acc)
    for i in range(D + 1):
        if owns(i, member, team):
            acc = px.acc + i * Hp
            out = column_out(g, i, D, H)
            for j in range(H):
                out[j] = acc[j] * scale


cdef inline double output_unit(
    const double* zcol,     # IN  (N,) z1[:, j] (all ones for b2)
    Py_ssize_t k,
    double dp,              # IN  applied perturbation +h
    double dm,              # IN  applied perturbation -h
    const Forward* f,       # IN  the kept forward pass
    Evaluation how,         # IN  Series when |z d| is small for every z
) noexcept nogil:
    """Sum over rows of L+ - L- when only logit k moves by z * d."""
    cdef Py_ssize_t b, K = f.K
    cdef const double* e = f.e
    cdef const double* S = f.S
    cdef const double* P = f.P
    cdef double total = 0.0, ek, emp, emm, Np, Nm
    for b in range(f.N):
        ek = e[b * K + k]
        emp = expm1_logit(zcol[b] * dp, how)
        emm = expm1_logit(zcol[b] * dm, how)
        if f.t[b] == k:  # sum_k' e_k' (em_t - em_k') with only em_k nonzero
            Np = (S[b] - ek) * emp
            Nm = (S[b] - ek) * emm
        else:
            Np = -ek * emp
            Nm = -ek * emm
        total += row_difference(P[b] * Np / (S[b] + ek * emp),
                                P[b] * Nm / (S[b] + ek * emm), how)
    return total


cdef inline double output_column(
    const double* zcol, double zmax, Py_ssize_t k, double dp, double dm,
    const Forward* f,
) noexcept nogil:
    """``output_unit`` with the series when every |z d| <= zmax |d| <=
    2**-10 (``zmax``: the largest z of the column; a sigmoid's z <= 1, a
    ReLU's has no bound but the column's)."""
    if zmax * max(fabs(dp), fabs(dm)) <= SERIES_SMALL:
        return output_unit(zcol, k, dp, dm, f, SERIES)
    return output_unit(zcol, k, dp, dm, f, LIBM)


cdef inline void output_units(
    const double* zcol,     # IN  (N,) z1[:, j] (all ones for b2)
    Py_ssize_t k0,          # IN  the first logit
    Py_ssize_t n,           #     and how many (<= LOGIT_BLOCK)
    const double* dp,       # IN  (n,) applied perturbations +h
    const double* dm,       # IN  (n,) applied perturbations -h
    const Forward* f,       # IN  the kept forward pass
    const double* coef,     # IN  (N, K) S (k == t) - e_k per row
    double* total,          # OUT (n,) sum over rows of L+ - L-
) noexcept nogil:
    """``output_unit``'s series case for the logits k0 ... k0 + n - 1 side
    by side, each summed over the rows in order.

    With N+- = coef em+- and S+- = S + e_k em+-, the two ratios' difference
    (r+ - r-) / (1 + r-) = P (N+ S- - N- S+) / (S+ (S- + P N-)) takes one
    division (no cancellation: N+ and N- have opposite signs, S >= 1).
    """
    cdef Py_ssize_t b, k, K = f.K
    cdef const double* eb
    cdef const double* cb
    cdef double zb, Sb, Pb, emp, emm, Np, Nm, sp, sm
    for k in range(n):
        total[k] = 0.0
    for b in range(f.N):
        zb, Sb, Pb = zcol[b], f.S[b], f.P[b]
        eb, cb = f.e + b * K + k0, coef + b * K + k0
        for k in range(n):
            emp = MF_EXPM1_DEG5(zb * dp[k])
            emm = MF_EXPM1_DEG5(zb * dm[k])
            Np, Nm = cb[k] * emp, cb[k] * emm
            sp, sm = Sb + eb[k] * emp, Sb + eb[k] * emm
            total[k] += -MF_LOG1P_DEG8(Pb * (Np * sm - Nm * sp) / (sp * (sm + Pb * Nm)))


cdef inline void output_row_of(
    const double* zcol,     # IN  (N,) z1[:, j] (all ones for b2)
    double zmax,            # IN  its largest value
    const double* theta,    # IN  (K,) W2[j, :] (b2 for the ones)
    double h,
    double scale,           # IN  1 / (2 h N)
    const Forward* f,       # IN  the kept forward pass
    const double* coef,     # IN  (N, K) see output_units
    double* out,            # OUT (K,) row j of W2's gradient (or b2's)
) noexcept nogil:
    """Central differences of a row of W2 (or of b2), the logits in blocks:
    a block whose moves |z d| <= zmax |d| are all within 2**-10 takes the
    series side by side, any other block ``output_column`` logit by
    logit."""
    cdef double dp[LOGIT_BLOCK]
    cdef double dm[LOGIT_BLOCK]
    cdef double total[LOGIT_BLOCK]
    cdef Py_ssize_t k0 = 0, k, n, K = f.K
    cdef bint series
    while k0 < K:
        n = min(<Py_ssize_t> LOGIT_BLOCK, K - k0)
        applied_steps(theta + k0, n, h, dp, dm)
        series = True
        for k in range(n):
            series = series and zmax * max(fabs(dp[k]), fabs(dm[k])) <= SERIES_SMALL
        if series:
            output_units(zcol, k0, n, dp, dm, f, coef, total)
        else:
            for k in range(n):
                total[k] = output_column(zcol, zmax, k0 + k, dp[k], dm[k], f)
        for k in range(n):
            out[k0 + k] = scale * total[k]
        k0 += LOGIT_BLOCK


cdef inline void applied_steps(
    const double* theta, Py_ssize_t n, double h, double* dp, double* dm,
) noexcept nogil:
    """The perturbations the book applies: fl(theta +- h) - theta."""
    cdef Py_ssize_t j
    for j in range(n):
        dp[j] = (theta[j] + h) - theta[j]
        dm[j] = (theta[j] - h) - theta[j]


cdef inline void column_steps(
    const double* theta,    # IN  (H,) a row of W1, or b1
    Py_ssize_t H,
    Py_ssize_t Hp,          # IN  H padded
    double h,
    double w2max,           # IN  max |W2|
    int activation,
    double* steps,          # OUT (2 Hp,) dp, then dm (padding untouched)
    double* vmax_series,    # OUT the |x| bounds of their cases
    double* vmax_tiny,
) noexcept nogil:
    """A column's perturbations and the |x| bounds of their cases."""
    cdef Py_ssize_t j
    cdef double dmax = 0.0
    applied_steps(theta, H, h, steps, steps + Hp)
    for j in range(H):
        dmax = max(dmax, fabs(steps[j]), fabs(steps[Hp + j]))
    vmax_series[0] = input_bound(dmax, w2max, SERIES_SMALL, activation)
    vmax_tiny[0] = input_bound(dmax, w2max, TINY_SMALL, activation)


cdef inline double input_bound(
    double dmax, double w2max, double logit_bound, int activation,
) noexcept nogil:
    """Largest |x| that keeps a column's moves within the series' range,
    for steps of at most ``dmax``.

    |dz W2| <= dz_bound |x d| max|W2| <= logit_bound, and for a sigmoid
    |da| = |x d| <= 2**-12.
    """
    cdef double bound = INFINITY
    if dmax == 0.0:
        return INFINITY
    if activation == SIGMOID:
        bound = Q_SMALL / dmax
    if w2max > 0.0:
        bound = min(bound, logit_bound / (dz_bound(activation) * dmax * w2max))
    return bound


cdef inline double* aligned(double[::1] buffer) noexcept nogil:
    """The first MF_ROW_ALIGN-byte boundary in buffer (which has
    MF_ROW_ALIGN bytes to spare)."""
    cdef size_t p = <size_t> &buffer[0]
    return <double*> ((p + (MF_ROW_ALIGN - 1)) & ~(<size_t> (MF_ROW_ALIGN - 1)))


def numerical_gradient(
    const floating[:, ::1] x,     # IN  (N, D)
    const Py_ssize_t[::1] t,      # IN  (N,) labels in [0, K)
    dict params,                  # IN  W1, b1, W2, b2 (see _common.Net)
    int activation,               # IN  the hidden layer's (an Activation)
    double h,                     # IN  the book's step
    double guard,                 # IN  the book's guard inside the log
    dict grads,                   # OUT W1, b1, W2, b2 arrays of their shapes
    int n_threads,
):
    """The book's numerical gradient of the mean loss, into ``grads``."""
    cdef Net net = net_of(params, activation)
    cdef Grads g = grads_of(grads, &net)
    check_rows(x.shape[1], &net)
    if t.shape[0] != x.shape[0]:
        raise ValueError("t needs one label per row of x")
    cdef Py_ssize_t N = x.shape[0], D = net.D, H = net.H, K = net.K
    cdef Py_ssize_t Hp = (H + MF_UNIT_PAD - 1) // MF_UNIT_PAD * MF_UNIT_PAD
    cdef Py_ssize_t spare = MF_ROW_ALIGN // sizeof(double)
    cdef Py_ssize_t team = max(n_threads, 1)
    cdef Py_ssize_t b, i, j, k, nnz = 0
    cdef double p, w2max = 0.0
    cdef double scale = 1.0 / (N * 2.0 * h)

    with nogil:
        for b in range(N):
            nnz += count_nonzeros(&x[b, 0], D)
    # Scratch of the one kept forward pass, O(N (H + K) + nnz(x)).
    cdef double[:, ::1] a = np.empty((N, H))       # a1
    cdef double[:, ::1] z = np.empty((N, H))       # z1
    cdef double[:, ::1] c = np.empty((N, H))       # 1 - sigmoid(a1)
    cdef double[:, ::1] zT = np.empty((H, N))      # z1 transposed
    cdef double[::1] zmax = np.zeros(H)            # max of each column of z1
    cdef double[:, ::1] e = np.empty((N, K))       # exp(a2 - max a2)
    cdef double[::1] S = np.empty(N)               # sum of e
    cdef double[::1] P = np.empty(N)               # p_t / (p_t + guard)
    cdef double[:, ::1] coef = np.empty((N, K))    # S (k == t) - e
    cdef double[::1] ones = np.ones(N)
    cdef double[:, ::1] W2T = np.ascontiguousarray(
        np.asarray(params["W2"]).T)
    # The batch's pixels row by row (CSR), b1 last in each row (a row's
    # gather may write up to D places), the columns' steps, the rows'
    # tables and the columns' sums (see Pixels).
    cdef Py_ssize_t[::1] px_start = np.empty(N + 1, dtype=np.intp)
    cdef int[::1] px_cols = np.empty(nnz + N + D, dtype=np.intc)
    cdef double[::1] px_vals = np.empty(nnz + N + D)
    cdef double[::1] steps = np.zeros((D + 1) * 2 * Hp + spare)
    cdef double[::1] vmax_series = np.empty(D + 1)
    cdef double[::1] vmax_tiny = np.empty(D + 1)
    cdef double[::1] tables = np.empty(N * MF_ROW_TERMS * Hp + spare)
    cdef double[::1] acc = np.empty((D + 1) * Hp + spare)
    cdef double* table_rows = aligned(tables)
    cdef Forward f
    cdef Pixels px
    f.a, f.z, f.c, f.e = &a[0, 0], &z[0, 0], &c[0, 0], &e[0, 0]
    f.S, f.P, f.t, f.W2T = &S[0], &P[0], &t[0], &W2T[0, 0]
    f.N, f.H, f.K, f.activation = N, H, K, net.activation
    px.start, px.cols, px.vals = &px_start[0], &px_cols[0], &px_vals[0]
    px.W1, px.b1, px.h = net.W1, net.b1, h
    px.steps, px.vmax_series = aligned(steps), &vmax_series[0]
    px.vmax_tiny, px.tables, px.acc = &vmax_tiny[0], table_rows, aligned(acc)
    px.D, px.Hp = D, Hp

    with nogil:
        nnz = 0
        for b in range(N):
            # the row's nonzero pixels, x @ W1 + b1 from them, then b1
            px_start[b] = nnz
            k = hidden_preactivation_row(&x[b, 0], &net, &a[b, 0],
                                         &px_vals[nnz], &px_cols[nnz])
            nnz = nnz + k
            px_cols[nnz] = D
            px_vals[nnz] = 1.0
            nnz = nnz + 1
            hidden_units(&a[b, 0], H, net.activation, &z[b, 0], &c[b, 0])
            for j in range(H):
                zT[j, b] = z[b, j]
                zmax[j] = max(zmax[j], z[b, j])
            output_row(&z[b, 0], &net, &e[b, 0])
            S[b] = shifted_exp_row(&e[b, 0], K)
            p = e[b, t[b]] / S[b]
            P[b] = p / (p + guard)
        px_start[N] = nnz
        for b in range(N):
            row_table(&f, b, Hp, table_rows + b * MF_ROW_TERMS * Hp)
        for j in range(H * K):
            w2max = max(w2max, fabs(net.W2[j]))
        px.w2max = w2max

        # W1 and b1: each member of the team its columns, row by row.
        for i in prange(team, schedule="static", num_threads=team):
            hidden_rows(&f, &px, i, team, scale, &g)

        # W2[j, k] moves logit k by z1[:, j] d; b2[k] by d.
        for b in range(N):
            for k in range(K):
                coef[b, k] = (S[b] if k == t[b] else 0.0) - e[b, k]
        for j in prange(H, schedule="static", num_threads=n_threads):
            output_row_of(&zT[j, 0], zmax[j], net.W2 + j * K, h, scale, &f,
                          &coef[0, 0], g.W2 + j * K)
        output_row_of(&ones[0], 1.0, net.b2, h, scale, &f, &coef[0, 0], g.b2)
