/* The two inner loops of every forward and backward pass, in explicit SIMD.
 *
 * mf_combine_rows_*: sparse combinations of matrix rows (x @ W1, x.T @ dz1)
 *
 *     out[j] = sum_n val[n] * M[idx[n] * H + j]      for j < H
 *
 * mf_sigmoid_bias: z[j] = 1 / (1 + exp(-(z[j] + b[j]))), with an exp
 * accurate to about 1 ulp (Cody-Waite reduction, degree-13 series).
 *
 * Written with GCC/Clang vector extensions (no intrinsics, no -march): a
 * block of accumulators lives in vector registers while the loop streams
 * over the nonzeros; the compiler lowers the 4-double vectors to SSE2 pairs
 * in the baseline build and to AVX2+FMA registers in the _avx2 variants.
 * Plain C loops on other compilers.  Each out[j] is summed in the order of
 * n, as a plain loop would.
 */
#ifndef MNIST_FAST_SIMD_ROWS_H
#define MNIST_FAST_SIMD_ROWS_H

#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)

typedef double mf_v4d __attribute__((vector_size(32), aligned(8), may_alias));

/* MF_ACC accumulator vectors of 4 doubles per block: as many as the vector
 * registers hold (16 ymm with AVX, 16 xmm = 8 pairs without). */
#ifdef __AVX__
#define MF_ACC 12
#else
#define MF_ACC 4
#endif
#define MF_BLOCK (4 * MF_ACC)

#define MF_DEFINE_COMBINE_ROWS(NAME, VAL_T)                                   \
static inline void NAME(const VAL_T *val, const int *idx, ptrdiff_t nnz,      \
                        const double *M, ptrdiff_t H, double *out)            \
{                                                                              \
    ptrdiff_t j0 = 0, j, n;                                                    \
    int a;                                                                     \
    for (; j0 + MF_BLOCK <= H; j0 += MF_BLOCK) {                               \
        mf_v4d acc[MF_ACC];                                                    \
        for (a = 0; a < MF_ACC; a++)                                           \
            acc[a] = (mf_v4d){0.0, 0.0, 0.0, 0.0};                             \
        for (n = 0; n < nnz; n++) {                                            \
            const double *m = M + (ptrdiff_t)idx[n] * H + j0;                  \
            const double v = (double)val[n];                                   \
            for (a = 0; a < MF_ACC; a++)                                       \
                acc[a] += v * *(const mf_v4d *)(m + 4 * a);                    \
        }                                                                      \
        for (a = 0; a < MF_ACC; a++)                                           \
            *(mf_v4d *)(out + j0 + 4 * a) = acc[a];                            \
    }                                                                          \
    for (; j0 + 4 <= H; j0 += 4) {                                             \
        mf_v4d acc0 = {0.0, 0.0, 0.0, 0.0};                                    \
        for (n = 0; n < nnz; n++)                                              \
            acc0 += (double)val[n] * *(const mf_v4d *)(M + (ptrdiff_t)idx[n] * H + j0); \
        *(mf_v4d *)(out + j0) = acc0;                                          \
    }                                                                          \
    if (j0 < H) { /* the last H % 4 units, together */                        \
        double s0 = 0.0, s1 = 0.0, s2 = 0.0;                                   \
        const ptrdiff_t rest = H - j0;                                         \
        for (n = 0; n < nnz; n++) {                                            \
            const double *m = M + (ptrdiff_t)idx[n] * H + j0;                  \
            const double v = (double)val[n];                                   \
            s0 += v * m[0];                                                    \
            if (rest > 1) s1 += v * m[1];                                      \
            if (rest > 2) s2 += v * m[2];                                      \
        }                                                                      \
        out[j0] = s0;                                                          \
        if (rest > 1) out[j0 + 1] = s1;                                        \
        if (rest > 2) out[j0 + 2] = s2;                                        \
    }                                                                          \
    (void)j;                                                                   \
}

#else  /* portable C */

#define MF_DEFINE_COMBINE_ROWS(NAME, VAL_T)                                   \
static void NAME(const VAL_T *val, const int *idx, ptrdiff_t nnz,             \
                 const double *M, ptrdiff_t H, double *out)                   \
{                                                                              \
    ptrdiff_t j, n;                                                            \
    for (j = 0; j < H; j++)                                                    \
        out[j] = 0.0;                                                          \
    for (n = 0; n < nnz; n++) {                                                \
        const double *m = M + (ptrdiff_t)idx[n] * H;                           \
        const double v = (double)val[n];                                       \
        for (j = 0; j < H; j++)                                                \
            out[j] += v * m[j];                                                \
    }                                                                          \
}

#endif

MF_DEFINE_COMBINE_ROWS(mf_combine_rows_f64, double)
MF_DEFINE_COMBINE_ROWS(mf_combine_rows_f32, float)

#if defined(__GNUC__) || defined(__clang__)

typedef long long mf_v4i __attribute__((vector_size(32), aligned(8), may_alias));

/* exp of 4 doubles: exp(x) = 2**k exp(r), x = k ln2 + r, |r| <= ln2 / 2;
 * exp(r) by its series to r**13 / 13! (truncation < 5e-18 relative); 2**k
 * applied as two factors so that no intermediate over- or underflows.
 * Beyond the double range: inf above 709.78, 0 below -745.14. */
static inline void mf_exp4(mf_v4d *inout)
{
    const mf_v4d x = *inout;
    const double ln2_hi = 6.93147180369123816490e-01;  /* 32 bits: k ln2_hi exact */
    const double ln2_lo = 1.90821492927058770002e-10;
    const double shifter = 6755399441055744.0;         /* 1.5 * 2**52: rounds */
    const mf_v4i over = x > 709.782712893384;
    const mf_v4i under = x < -745.1332191019412;
    mf_v4d xc = x, kd, r, p, s1, s2, y;
    mf_v4i k, k1, k2;
    int i;
    for (i = 0; i < 4; i++)  /* clamp; NaN passes through */
        xc[i] = xc[i] > 709.8 ? 709.8 : (xc[i] < -745.2 ? -745.2 : xc[i]);
    kd = (xc * 1.4426950408889634 + shifter) - shifter;
    r = (xc - kd * ln2_hi) - kd * ln2_lo;
    p = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;  /* 1/13!, 1/12! */
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    k = __builtin_convertvector(kd, mf_v4i);
    k1 = k >> 1;                            /* k = k1 + k2, both in range */
    k2 = k - k1;
    s1 = (mf_v4d)((k1 + 1023) << 52);
    s2 = (mf_v4d)((k2 + 1023) << 52);
    y = p * s1 * s2;
    y = (mf_v4d)((~over & (mf_v4i)y) | (over & (mf_v4i)(mf_v4d){INFINITY, INFINITY, INFINITY, INFINITY}));
    *inout = (mf_v4d)(~under & (mf_v4i)y);
}

static inline void mf_sigmoid_bias(double *z, const double *b, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + 4 <= n; j += 4) {
        mf_v4d e = -(*(const mf_v4d *)(z + j) + *(const mf_v4d *)(b + j));
        mf_exp4(&e);
        *(mf_v4d *)(z + j) = 1.0 / (1.0 + e);
    }
    for (; j < n; j++)
        z[j] = 1.0 / (1.0 + exp(-(z[j] + b[j])));
}

#else  /* portable C */

static void mf_sigmoid_bias(double *z, const double *b, ptrdiff_t n)
{
    ptrdiff_t j;
    for (j = 0; j < n; j++)
        z[j] = 1.0 / (1.0 + exp(-(z[j] + b[j])));
}

#endif

#endif
