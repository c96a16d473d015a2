/* The inner loops of every forward and backward pass, in explicit SIMD.
 *
 * This file is compiled twice by setup.py, into C objects linked into each
 * kernel module: once as it is (the baseline: SSE2 on x86-64) and, where
 * the compiler can, once with -DMF_VARIANT_AVX2 -mavx2 -mfma.  Every
 * helper here is static; each compilation defines one table of pointers
 * to them, mf_ops_baseline or mf_ops_avx2 (hidden in the module), and
 * simd_rows.h -- what the Cython modules include -- calls through the
 * table the module chose at import (see there).
 *
 * mf_combine_rows_*: combinations of matrix rows
 *
 *     out[j] = sum_n val[n] * M[row(n) * ld + j]      for j < width
 *
 * with row(n) = idx[n] (sparse: x @ W1 over the nonzero pixels, x.T @ dz1
 * over a pixel's batch rows) or row(n) = n (dense: z1 @ W2, dy @ W2.T).
 *
 * mf_sigmoid_bias: z[j] = 1 / (1 + exp(-(z[j] + b[j]))), and
 * mf_exp_shifted: a[k] = exp(a[k] - m) (the softmax's exp), with an exp
 * accurate to about 1 ulp (Cody-Waite reduction, degree-13 series).
 *
 * Written with GCC/Clang vector extensions (no intrinsics, no -march): the
 * accumulators of a block of units live in vector registers while one pass
 * streams over the n; the compiler lowers the 4-double vectors to SSE2
 * pairs in the baseline compilation and to AVX2+FMA registers in the avx2
 * one.  The last block also carries the width % 4 leftover units, so
 * a width up to 4 * MF_ACC + 3 (51 with AVX: the book's 50 hidden units)
 * takes a single pass.  Plain C loops on other compilers (and with
 * -DMF_PORTABLE_C, to test them with GCC).  Each out[j] is summed in the
 * order of n, as a plain loop would.
 */
#define MF_IMPLEMENTATION 1
#include "simd_rows.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#ifdef MF_VARIANT_AVX2
#if !defined(__AVX2__) || !defined(__FMA__)
#error "MF_VARIANT_AVX2 is compiled with -mavx2 -mfma"
#endif
#define MF_OPS mf_ops_avx2
#define MF_OPS_NAME "avx2"
#else
#define MF_OPS mf_ops_baseline
#define MF_OPS_NAME "baseline"
#endif

#if MF_VECTOR_EXTENSIONS

typedef double mf_v4d __attribute__((vector_size(32), aligned(8), may_alias));
typedef double mf_v2d __attribute__((vector_size(16), aligned(8), may_alias));
#define MF_INLINE static inline __attribute__((always_inline))
/* Unroll the loops over the accumulators completely (GCC would otherwise
 * turn their zeroing and storing into memset/memcpy calls through memory) */
#define MF_UNROLL _Pragma("GCC unroll 16")

/* MF_ACC accumulator vectors of 4 doubles per block: as many as the vector
 * registers hold next to the leftover accumulators (16 ymm with AVX, 16
 * xmm = 8 pairs without). */
#ifdef __AVX__
#define MF_ACC 12
#else
#define MF_ACC 4
#endif
#define MF_BLOCK (4 * MF_ACC)

/* One pass over the n for units j0 ... j0 + 4 nv + rem - 1 (nv <= MF_ACC,
 * rem < 4); nv and rem are constants after inlining (see MF_CASE). */
#define MF_DEFINE_PASS(SUFFIX, VAL_T)                                         \
MF_INLINE void mf_pass_##SUFFIX(const VAL_T *val, const int *idx,             \
                                ptrdiff_t nnz, const double *M, ptrdiff_t ld, \
                                ptrdiff_t j0, const int nv, const int rem,    \
                                double *out)                                  \
{                                                                              \
    mf_v4d acc[MF_ACC];                                                        \
    mf_v2d acc2 = {0.0, 0.0};                                                  \
    double acc1 = 0.0;                                                         \
    ptrdiff_t n;                                                               \
    int a;                                                                     \
    MF_UNROLL                                                                  \
    for (a = 0; a < nv; a++)                                                   \
        acc[a] = (mf_v4d){0.0, 0.0, 0.0, 0.0};                                 \
    for (n = 0; n < nnz; n++) {                                                \
        const double *m = M + (idx ? (ptrdiff_t)idx[n] : n) * ld + j0;         \
        const double v = (double)val[n];                                       \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++)                                               \
            acc[a] += v * *(const mf_v4d *)(m + 4 * a);                        \
        if (rem & 2)                                                           \
            acc2 += v * *(const mf_v2d *)(m + 4 * nv);                         \
        if (rem & 1)                                                           \
            acc1 += v * m[4 * nv + (rem & 2)];                                 \
    }                                                                          \
    MF_UNROLL                                                                  \
    for (a = 0; a < nv; a++)                                                   \
        *(mf_v4d *)(out + j0 + 4 * a) = acc[a];                                \
    if (rem & 2)                                                               \
        *(mf_v2d *)(out + j0 + 4 * nv) = acc2;                                 \
    if (rem & 1)                                                               \
        out[j0 + 4 * nv + (rem & 2)] = acc1;                                   \
}

/* The pass for r = 4 nv + rem units, with nv and rem as constants. */
#define MF_CASE(SUFFIX, NV)                                                    \
    case NV:                                                                   \
        switch (rem) {                                                         \
        case 0: mf_pass_##SUFFIX(val, idx, nnz, M, ld, j0, NV, 0, out); break; \
        case 1: mf_pass_##SUFFIX(val, idx, nnz, M, ld, j0, NV, 1, out); break; \
        case 2: mf_pass_##SUFFIX(val, idx, nnz, M, ld, j0, NV, 2, out); break; \
        default: mf_pass_##SUFFIX(val, idx, nnz, M, ld, j0, NV, 3, out);       \
        }                                                                      \
        break;
#ifdef __AVX__
#define MF_WIDE_CASES(SUFFIX)                                                  \
    MF_CASE(SUFFIX, 5) MF_CASE(SUFFIX, 6) MF_CASE(SUFFIX, 7)                   \
    MF_CASE(SUFFIX, 8) MF_CASE(SUFFIX, 9) MF_CASE(SUFFIX, 10)                  \
    MF_CASE(SUFFIX, 11) MF_CASE(SUFFIX, 12)
#else
#define MF_WIDE_CASES(SUFFIX)
#endif

#define MF_DEFINE_COMBINE(SUFFIX, VAL_T)                                      \
MF_DEFINE_PASS(SUFFIX, VAL_T)                                                  \
MF_INLINE void mf_combine_##SUFFIX(const VAL_T *val, const int *idx,          \
                                   ptrdiff_t nnz, const double *M,            \
                                   ptrdiff_t ld, ptrdiff_t width, double *out)\
{                                                                              \
    ptrdiff_t j0 = 0;                                                          \
    int rem;                                                                   \
    for (; width - j0 > MF_BLOCK + 3; j0 += MF_BLOCK)                          \
        mf_pass_##SUFFIX(val, idx, nnz, M, ld, j0, MF_ACC, 0, out);            \
    rem = (int)((width - j0) & 3);                                             \
    switch ((width - j0) >> 2) {                                               \
        MF_CASE(SUFFIX, 0) MF_CASE(SUFFIX, 1) MF_CASE(SUFFIX, 2)               \
        MF_CASE(SUFFIX, 3) MF_CASE(SUFFIX, 4) MF_WIDE_CASES(SUFFIX)            \
    }                                                                          \
}

/* Float32 rows for the accuracy screen: out[j] = sum_n val[n] M[idx[n], j]
 * in float32 for j < width, a multiple of 8 (M's rows are padded), 8 units
 * per vector, MF_ACC8 vectors per pass. */
typedef float mf_v8f __attribute__((vector_size(32), aligned(4), may_alias));
#ifdef __AVX__
#define MF_ACC8 12
#else
#define MF_ACC8 6
#endif

MF_INLINE void mf_pass32(const float *val, const int *idx, ptrdiff_t nnz,
                         const float *M, ptrdiff_t ld, ptrdiff_t j0,
                         const int nv, float *out)
{
    mf_v8f acc[MF_ACC8];
    ptrdiff_t n;
    int a;
    MF_UNROLL
    for (a = 0; a < nv; a++)
        acc[a] = (mf_v8f){0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (n = 0; n < nnz; n++) {
        const float *m = M + (ptrdiff_t)idx[n] * ld + j0;
        const float v = val[n];
        MF_UNROLL
        for (a = 0; a < nv; a++)
            acc[a] += v * *(const mf_v8f *)(m + 8 * a);
    }
    MF_UNROLL
    for (a = 0; a < nv; a++)
        *(mf_v8f *)(out + j0 + 8 * a) = acc[a];
}

#define MF_CASE32(NV) \
    case NV: mf_pass32(val, idx, nnz, M, width, j0, NV, out); break;

static inline void mf_combine_rows32(const float *val, const int *idx,
                                     ptrdiff_t nnz, const float *M,
                                     ptrdiff_t width, float *out)
{
    ptrdiff_t j0 = 0;
    for (; width - j0 > 8 * MF_ACC8; j0 += 8 * MF_ACC8)
        mf_pass32(val, idx, nnz, M, width, j0, MF_ACC8, out);
    switch ((width - j0) / 8) {
        MF_CASE32(1) MF_CASE32(2) MF_CASE32(3) MF_CASE32(4) MF_CASE32(5)
        MF_CASE32(6)
#if MF_ACC8 > 6
        MF_CASE32(7) MF_CASE32(8) MF_CASE32(9) MF_CASE32(10) MF_CASE32(11)
        MF_CASE32(12)
#endif
    }
}


/* The screen's float32 hidden and output layers (error bounds: see
 * mnist_fast/screen.py).
 *
 * mf_sigmoid8: sigmoid(a) = 1 / (1 + exp(-a)) of 8 floats in place, exp(x) = 2**k
 * exp(r) with x clamped to [-87, 88] (beyond, the sigmoid is within 2e-38
 * of 0 or 1), k = round(x log2(e)) read from the bits of the rounding sum
 * x log2(e) + 1.5 * 2**23, r = x - k ln2 in two parts (Cody-Waite: k times
 * the 9-bit part is exact) and exp(r) by its series to r**7 / 7!. */
typedef int mf_v8i __attribute__((vector_size(32), aligned(4), may_alias));
#define MF_V8F(c) {c, c, c, c, c, c, c, c}

MF_INLINE void mf_sigmoid8(mf_v8f *inout)
{
    const mf_v8f shift = MF_V8F(12582912.0f);  /* 1.5 * 2**23 */
    const mf_v8f top = MF_V8F(88.0f), bottom = MF_V8F(-87.0f);
    mf_v8f x = -*inout, kd, r, p;
    const mf_v8i hi = x > top, lo = x < bottom;
    mf_v8i k;
    x = (mf_v8f)((hi & (mf_v8i)top) | (lo & (mf_v8i)bottom)
                 | (~(hi | lo) & (mf_v8i)x));
    kd = x * 1.44269504f + shift;
    k = (mf_v8i)kd - (mf_v8i)shift;
    kd = kd - shift;
    r = (x - kd * 0.693359375f) - kd * -2.12194440e-4f;
    p = r * (1.0f / 5040.0f) + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    p = p * (mf_v8f)((k + 127) << 23);
    *inout = 1.0f / (1.0f + p);
}

/* a[j] = sigmoid(a[j] + b[j]) for j < n, a multiple of 8; returns max_j
 * |a[j] + b[j]|, or inf when one of them is not finite. */
static inline float mf_sigmoid32(float *a, const float *b, ptrdiff_t n)
{
    const mf_v8i magnitude = MF_V8F(0x7fffffff), all = MF_V8F(-1);
    mf_v8f big = MF_V8F(0.0f);
    mf_v8i finite = all, more;
    float m = 0.0f;
    ptrdiff_t j;
    int i;
    for (j = 0; j < n; j += 8) {
        mf_v8f v = *(const mf_v8f *)(a + j) + *(const mf_v8f *)(b + j);
        const mf_v8f size = (mf_v8f)((mf_v8i)v & magnitude);
        finite &= size <= 3.40282347e+38f;  /* false for inf and NaN */
        more = size > big;
        big = (mf_v8f)((more & (mf_v8i)size) | (~more & (mf_v8i)big));
        mf_sigmoid8(&v);
        *(mf_v8f *)(a + j) = v;
    }
    for (i = 0; i < 8; i++) {
        if (!finite[i])
            return INFINITY;
        m = big[i] > m ? big[i] : m;
    }
    return m;
}

/* out = z @ W + b in float32, W of shape (n, width) C order, n a multiple
 * of 4 and width of 8; four partial sums over the rows of W. */
static inline void mf_output32(const float *z, ptrdiff_t n, const float *W,
                               ptrdiff_t width, const float *b, float *out)
{
    ptrdiff_t c, j;
    int q;
    for (c = 0; c < width; c += 8) {
        mf_v8f s[4];
        MF_UNROLL
        for (q = 0; q < 4; q++)
            s[q] = (mf_v8f)MF_V8F(0.0f);
        for (j = 0; j < n; j += 4) {
            MF_UNROLL
            for (q = 0; q < 4; q++)
                s[q] += z[j + q] * *(const mf_v8f *)(W + (j + q) * width + c);
        }
        *(mf_v8f *)(out + c) = *(const mf_v8f *)(b + c) + ((s[0] + s[1]) + (s[2] + s[3]));
    }
}

#else  /* portable C */

#define MF_INLINE static inline
#define MF_DEFINE_COMBINE(SUFFIX, VAL_T)                                      \
MF_INLINE void mf_combine_##SUFFIX(const VAL_T *val, const int *idx,          \
                                   ptrdiff_t nnz, const double *M,            \
                                   ptrdiff_t ld, ptrdiff_t width, double *out)\
{                                                                              \
    ptrdiff_t j, n;                                                            \
    for (j = 0; j < width; j++)                                                \
        out[j] = 0.0;                                                          \
    for (n = 0; n < nnz; n++) {                                                \
        const double *m = M + (idx ? (ptrdiff_t)idx[n] : n) * ld;              \
        const double v = (double)val[n];                                       \
        for (j = 0; j < width; j++)                                            \
            out[j] += v * m[j];                                                \
    }                                                                          \
}


static inline void mf_combine_rows32(const float *val, const int *idx,
                                     ptrdiff_t nnz, const float *M,
                                     ptrdiff_t width, float *out)
{
    ptrdiff_t j, n;
    for (j = 0; j < width; j++)
        out[j] = 0.0f;
    for (n = 0; n < nnz; n++)
        for (j = 0; j < width; j++)
            out[j] += val[n] * M[(ptrdiff_t)idx[n] * width + j];
}

/* (with libm's expf: within SIGMOID32_ERROR for any libm whose expf is
 * within a few ulp, which the error analysis of mf_sigmoid8 does not cover) */
static inline float mf_sigmoid32(float *a, const float *b, ptrdiff_t n)
{
    ptrdiff_t j;
    float m = 0.0f;
    for (j = 0; j < n; j++) {
        const float v = a[j] + b[j];
        if (!(fabsf(v) <= 3.40282347e+38f))
            return INFINITY;
        m = fabsf(v) > m ? fabsf(v) : m;
        a[j] = 1.0f / (1.0f + expf(-v));
    }
    return m;
}

static inline void mf_output32(const float *z, ptrdiff_t n, const float *W,
                               ptrdiff_t width, const float *b, float *out)
{
    ptrdiff_t c, j;
    for (c = 0; c < width; c++) {
        float s = 0.0f;
        for (j = 0; j < n; j++)
            s += z[j] * W[j * width + c];
        out[c] = b[c] + s;
    }
}

#endif

MF_DEFINE_COMBINE(f64, double)
MF_DEFINE_COMBINE(f32, float)

/* sum_n val[n] * M[idx[n], :] for M of shape (rows, H) */
static inline void mf_combine_rows_f64(const double *val, const int *idx,
                                       ptrdiff_t nnz, const double *M,
                                       ptrdiff_t H, double *out)
{
    mf_combine_f64(val, idx, nnz, M, H, H, out);
}

static inline void mf_combine_rows_f32(const float *val, const int *idx,
                                       ptrdiff_t nnz, const double *M,
                                       ptrdiff_t H, double *out)
{
    mf_combine_f32(val, idx, nnz, M, H, H, out);
}

/* val @ M for M of shape (n, width), C order */
static inline void mf_vector_matrix(const double *val, ptrdiff_t n,
                                    const double *M, ptrdiff_t width,
                                    double *out)
{
    mf_combine_f64(val, NULL, n, M, width, width, out);
}

#if MF_VECTOR_EXTENSIONS

typedef long long mf_v4i __attribute__((vector_size(32), aligned(8), may_alias));
typedef unsigned long long mf_v4u __attribute__((vector_size(32), aligned(8), may_alias));

/* exp of 4 doubles: exp(x) = 2**k exp(r), x = k ln2 + r, |r| <= ln2 / 2;
 * exp(r) by its series to r**13 / 13! (truncation < 5e-18 relative); 2**k
 * applied as two factors so that no intermediate over- or underflows.
 * k is rounded by adding 1.5 * 2**52, which leaves it as an integer in the
 * low bits of the sum (AVX2 has no vector double -> int64 conversion).
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
    kd = xc * 1.4426950408889634 + shifter;  /* k in the low bits */
    k = (mf_v4i)kd - (mf_v4i)((mf_v4d){shifter, shifter, shifter, shifter});
    kd = kd - shifter;
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
    /* k = k1 + k2, both in range; k1 = floor(k / 2), as k >> 1, by a
     * logical shift of k + 2048 > 0 (AVX2 has no 64-bit arithmetic one) */
    k1 = (mf_v4i)((mf_v4u)(k + 2048) >> 1) - 1024;
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

/* exp(a[k] - m) in place for k < K, 4 at a time; returns their sum, summed
 * in the order of k. */
static inline double mf_exp_shifted(double *a, ptrdiff_t K, double m)
{
    ptrdiff_t k0, k, n;
    double s = 0.0;
    for (k0 = 0; k0 < K; k0 += 4) {
        mf_v4d v = {0.0, 0.0, 0.0, 0.0};
        n = K - k0 < 4 ? K - k0 : 4;
        for (k = 0; k < n; k++)
            v[k] = a[k0 + k] - m;
        mf_exp4(&v);
        for (k = 0; k < n; k++) {
            a[k0 + k] = v[k];
            s += v[k];
        }
    }
    return s;
}

#else  /* portable C */

static double mf_exp_shifted(double *a, ptrdiff_t K, double m)
{
    ptrdiff_t k;
    double s = 0.0;
    for (k = 0; k < K; k++) {
        a[k] = exp(a[k] - m);
        s += a[k];
    }
    return s;
}

static void mf_sigmoid_bias(double *z, const double *b, ptrdiff_t n)
{
    ptrdiff_t j;
    for (j = 0; j < n; j++)
        z[j] = 1.0 / (1.0 + exp(-(z[j] + b[j])));
}

#endif

/* The nonzero entries of a dense row x[0 ... D-1]: values (as doubles) and
 * columns at val[0 ... nnz-1], idx[0 ... nnz-1]; returns nnz.  val and idx
 * need one place beyond the nonzeros: every pixel of a chunk that holds a
 * nonzero is written at the next free place, which only a nonzero advances
 * (zeros and nonzeros alternate unpredictably).  Chunks of 8 (float) or 4
 * (double) pixels that are all zero (81% of MNIST pixels are) are skipped
 * by one test of their bits, the sign bits masked (-0.0 is zero). */
#define MF_DEFINE_GATHER(SUFFIX, VAL_T, CHUNK, MASK)                          \
/* whether x[0 ... CHUNK-1] holds a nonzero (-0.0 is zero) */                  \
static inline int mf_chunk_nonzero_##SUFFIX(const VAL_T *x)                    \
{                                                                              \
    unsigned long long w, any = 0;                                             \
    ptrdiff_t c;                                                               \
    for (c = 0; c < CHUNK * (ptrdiff_t)sizeof(VAL_T); c += 8) {                \
        memcpy(&w, (const char *)x + c, 8);                                    \
        any |= w;                                                              \
    }                                                                          \
    return (any & MASK) != 0;                                                  \
}                                                                              \
                                                                               \
static inline ptrdiff_t mf_gather_nonzeros_##SUFFIX(                           \
    const VAL_T *x, ptrdiff_t D, double *val, int *idx)                        \
{                                                                              \
    ptrdiff_t i = 0, c, nnz = 0;                                               \
    for (; i + CHUNK <= D; i += CHUNK) {                                       \
        if (!mf_chunk_nonzero_##SUFFIX(x + i))                                 \
            continue;                                                          \
        for (c = i; c < i + CHUNK; c++) {                                      \
            val[nnz] = (double)x[c];                                           \
            idx[nnz] = (int)c;                                                 \
            nnz += x[c] != 0;                                                  \
        }                                                                      \
    }                                                                          \
    for (; i < D; i++) {                                                       \
        val[nnz] = (double)x[i];                                               \
        idx[nnz] = (int)i;                                                     \
        nnz += x[i] != 0;                                                      \
    }                                                                          \
    return nnz;                                                                \
}                                                                              \
                                                                               \
static inline ptrdiff_t mf_count_nonzeros_##SUFFIX(const VAL_T *x,             \
                                                   ptrdiff_t D)                \
{                                                                              \
    ptrdiff_t i = 0, c, nnz = 0;                                               \
    for (; i + CHUNK <= D; i += CHUNK) {                                       \
        if (mf_chunk_nonzero_##SUFFIX(x + i))                                  \
            for (c = i; c < i + CHUNK; c++)                                    \
                nnz += x[c] != 0;                                              \
    }                                                                          \
    for (; i < D; i++)                                                         \
        nnz += x[i] != 0;                                                      \
    return nnz;                                                                \
}

MF_DEFINE_GATHER(f32, float, 8, 0x7fffffff7fffffffULL)
MF_DEFINE_GATHER(f64, double, 4, 0x7fffffffffffffffULL)

/* The book's update p -= lr * g of n values, in place; g becomes the old p
 * (for a rollback).  Returns how many updated values are not finite.  The
 * product and the difference are rounded apart, as the book's NumPy does
 * (a fused multiply-add would round once): no contraction here. */
#if defined(__clang__)
#define MF_NO_CONTRACT _Pragma("clang fp contract(off)")
#define MF_NO_CONTRACT_ATTR
#elif defined(__GNUC__)
#define MF_NO_CONTRACT
#define MF_NO_CONTRACT_ATTR __attribute__((optimize("fp-contract=off")))
#else
#define MF_NO_CONTRACT
#define MF_NO_CONTRACT_ATTR
#endif
MF_NO_CONTRACT_ATTR
static ptrdiff_t mf_update_in_place(double *p, double *g, double lr,
                                    ptrdiff_t n)
{
    MF_NO_CONTRACT
    ptrdiff_t j, bad = 0;
    for (j = 0; j < n; j++) {
        const double old = p[j];
        p[j] = old - lr * g[j];
        g[j] = old;
        bad += !isfinite(p[j]);
    }
    return bad;
}

/* The numerical gradient's central differences of one row for a column
 * of W1 or b1 (_numerical.pyx, hidden_column), when every move is
 * small enough for the series (simd_rows.h): Tiny (logit moves <= 2**-17:
 * expm1 of degree 3, log1p of degree 4) and Series (<= 2**-10: degrees 5
 * and 8).  Per block of MF_UNIT_BLOCK hidden units j:
 *
 *   q = expm1(-v d),  dz = -s c q / (1 + c q)       (the unit's move)
 *   D = sum_k e_k expm1(dz W2[j, k])                 (S' = S + D)
 *   r = P (S expm1(dz W2[j, t]) - D) / (S + D)       ((p' - p) / (p + eps))
 *   acc[j] += -log1p((r+ - r-) / (1 + r-))
 *
 * The logit sums D, for j < n, are summed in the order of k: */
#if MF_VECTOR_EXTENSIONS
/* 2 MF_VN units at a time in vectors of the native width (GCC lowers the
 * broadcast of ek into a 4-double vector through memory without AVX),
 * the leftover units one by one */
#ifdef __AVX__
typedef mf_v4d mf_vn;
#define MF_VN 4
#define MF_BROADCAST(c) {c, c, c, c}
#else
typedef mf_v2d mf_vn;
#define MF_VN 2
#define MF_BROADCAST(c) {c, c}
#endif
#define MF_LOGIT_SUMS_BODY(DEGREE)                                            \
    ptrdiff_t j0 = 0, j, k;                                                    \
    for (; j0 + 2 * MF_VN <= n; j0 += 2 * MF_VN) {                             \
        mf_vn p0 = *(const mf_vn *)(Dp + j0);                                  \
        mf_vn p1 = *(const mf_vn *)(Dp + j0 + MF_VN);                          \
        mf_vn m0 = *(const mf_vn *)(Dm + j0);                                  \
        mf_vn m1 = *(const mf_vn *)(Dm + j0 + MF_VN);                          \
        const mf_vn zp0 = *(const mf_vn *)(dzp + j0);                          \
        const mf_vn zp1 = *(const mf_vn *)(dzp + j0 + MF_VN);                  \
        const mf_vn zm0 = *(const mf_vn *)(dzm + j0);                          \
        const mf_vn zm1 = *(const mf_vn *)(dzm + j0 + MF_VN);                  \
        for (k = 0; k < K; k++) {                                              \
            const mf_vn ek = MF_BROADCAST(e[k]);                               \
            const mf_vn w0 = *(const mf_vn *)(W2T + k * H + j0);               \
            const mf_vn w1 = *(const mf_vn *)(W2T + k * H + j0 + MF_VN);       \
            mf_vn x;                                                           \
            x = zp0 * w0; p0 += ek * MF_EXPM1_DEG##DEGREE(x);                  \
            x = zp1 * w1; p1 += ek * MF_EXPM1_DEG##DEGREE(x);                  \
            x = zm0 * w0; m0 += ek * MF_EXPM1_DEG##DEGREE(x);                  \
            x = zm1 * w1; m1 += ek * MF_EXPM1_DEG##DEGREE(x);                  \
        }                                                                      \
        *(mf_vn *)(Dp + j0) = p0;                                              \
        *(mf_vn *)(Dp + j0 + MF_VN) = p1;                                      \
        *(mf_vn *)(Dm + j0) = m0;                                              \
        *(mf_vn *)(Dm + j0 + MF_VN) = m1;                                      \
    }                                                                          \
    for (j = j0; j < n; j++) {                                                 \
        double p = Dp[j], m = Dm[j], x;                                        \
        for (k = 0; k < K; k++) {                                              \
            const double ek = e[k], w = W2T[k * H + j];                        \
            x = dzp[j] * w; p += ek * MF_EXPM1_DEG##DEGREE(x);                 \
            x = dzm[j] * w; m += ek * MF_EXPM1_DEG##DEGREE(x);                 \
        }                                                                      \
        Dp[j] = p;                                                             \
        Dm[j] = m;                                                             \
    }
#else
#define MF_LOGIT_SUMS_BODY(DEGREE)                                            \
    ptrdiff_t j, k;                                                            \
    double x;                                                                  \
    for (k = 0; k < K; k++)                                                    \
        for (j = 0; j < n; j++) {                                              \
            x = dzp[j] * W2T[k * H + j];                                       \
            Dp[j] += e[k] * MF_EXPM1_DEG##DEGREE(x);                           \
            x = dzm[j] * W2T[k * H + j];                                       \
            Dm[j] += e[k] * MF_EXPM1_DEG##DEGREE(x);                           \
        }
#endif
/* ... for the n units from unit `first` of row r, the unit moves dz (dzp
 * then dzm, MF_UNIT_BLOCK apart) into D (Dp then Dm, the same). */
#define MF_DEFINE_LOGIT_SUMS(DEGREE)                                          \
static void mf_logit_sums_deg##DEGREE(const struct mf_hidden_row *r,          \
                                      ptrdiff_t first, ptrdiff_t n,           \
                                      const double *dz, double *D)            \
{                                                                              \
    const double *e = r->e, *W2T = r->W2T + first;                             \
    const ptrdiff_t H = r->H, K = r->K;                                        \
    const double *dzp = dz, *dzm = dz + MF_UNIT_BLOCK;                         \
    double *Dp = D, *Dm = D + MF_UNIT_BLOCK;                                   \
    MF_LOGIT_SUMS_BODY(DEGREE)                                                 \
}
MF_DEFINE_LOGIT_SUMS(3)
MF_DEFINE_LOGIT_SUMS(5)

#define MF_DEFINE_HIDDEN_ROW(NAME, EXPM1_DEG, LOG1P)                          \
static void mf_hidden_row_##NAME(const struct mf_hidden_row *r, double *acc) \
{                                                                              \
    double dz[2 * MF_UNIT_BLOCK], D[2 * MF_UNIT_BLOCK];                        \
    double emtp[MF_UNIT_BLOCK], emtm[MF_UNIT_BLOCK];                           \
    double *dzp = dz, *dzm = dz + MF_UNIT_BLOCK;                               \
    double *Dp = D, *Dm = D + MF_UNIT_BLOCK;                                   \
    const ptrdiff_t H = r->H;                                                  \
    const double v = r->v, S = r->S, P = r->P;                                 \
    ptrdiff_t j0, j, n;                                                        \
    for (j0 = 0; j0 < H; j0 += MF_UNIT_BLOCK) {                                \
        const double *wt = r->W2T + r->t * H + j0;                             \
        const double *s = r->s + j0, *c = r->c + j0;                           \
        const double *dp = r->dp + j0, *dm = r->dm + j0;                       \
        n = H - j0 < MF_UNIT_BLOCK ? H - j0 : MF_UNIT_BLOCK;                   \
        for (j = 0; j < n; j++) {                                              \
            const double qp = MF_EXPM1_DEG5(-(v * dp[j]));                     \
            const double qm = MF_EXPM1_DEG5(-(v * dm[j]));                     \
            const double sc = s[j] * c[j];                                     \
            double x;                                                          \
            dzp[j] = -sc * qp / (1.0 + c[j] * qp);                             \
            dzm[j] = -sc * qm / (1.0 + c[j] * qm);                             \
            x = dzp[j] * wt[j];                                                \
            emtp[j] = MF_EXPM1_DEG##EXPM1_DEG(x);                              \
            x = dzm[j] * wt[j];                                                \
            emtm[j] = MF_EXPM1_DEG##EXPM1_DEG(x);                              \
            Dp[j] = 0.0;                                                       \
            Dm[j] = 0.0;                                                       \
        }                                                                      \
        mf_logit_sums_deg##EXPM1_DEG(r, j0, n, dz, D);                         \
        for (j = 0; j < n; j++) {                                              \
            const double rp = P * (emtp[j] * S - Dp[j]) / (S + Dp[j]);         \
            const double rm = P * (emtm[j] * S - Dm[j]) / (S + Dm[j]);         \
            const double ratio = (rp - rm) / (1.0 + rm);                       \
            acc[j0 + j] += -LOG1P(ratio);                                      \
        }                                                                      \
    }                                                                          \
}
MF_DEFINE_HIDDEN_ROW(tiny, 3, MF_LOG1P_DEG4)
MF_DEFINE_HIDDEN_ROW(series, 5, MF_LOG1P_DEG8)

/* The table of this compilation (see simd_rows.h). */
MF_HIDDEN const struct mf_ops MF_OPS = {
    MF_OPS_NAME,
    mf_combine_rows_f64,
    mf_combine_rows_f32,
    mf_vector_matrix,
    mf_gather_nonzeros_f32,
    mf_gather_nonzeros_f64,
    mf_count_nonzeros_f32,
    mf_count_nonzeros_f64,
    mf_combine_rows32,
    mf_sigmoid32,
    mf_output32,
    mf_exp_shifted,
    mf_sigmoid_bias,
    mf_update_in_place,
    mf_hidden_row_tiny,
    mf_hidden_row_series,
};
