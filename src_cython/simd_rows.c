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
 * streams over the n.  The row passes are written in the native vector of
 * the compilation (mf_vn: 2 doubles in SSE2 registers in the baseline one,
 * 4 in AVX2+FMA registers in the avx2 one): GCC lowers a vector wider than
 * the registers into pieces on the stack.  The last block also carries
 * the leftover units, so a width up to 13 native vectors less one unit
 * (51 with AVX: the book's 50 hidden units) takes a single pass.  Plain C
 * loops on other compilers (and with -DMF_PORTABLE_C, to test them with
 * GCC), in blocks of units whose sums the compiler keeps in registers
 * (MF_PLAIN_BLOCKS); the screen's float32 sigmoid there does the vector
 * one's arithmetic lane by lane (mf_sigmoid1).  Each out[j] is summed in
 * the order of n, as a plain loop would.
 */
#define MF_IMPLEMENTATION 1
#include "simd_rows.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
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

/* exp(r) by its series to r**7 / 7!, Horner's rule, for the screen's
 * float32 sigmoid (mf_sigmoid_vnf on vectors, mf_sigmoid1 on one float: one
 * arithmetic, analysed in mnist_fast/screen.py) */
#define MF_EXP_SERIES32(r) ((((((((r) * (1.0f / 5040.0f) + 1.0f / 720.0f)       \
    * (r) + 1.0f / 120.0f) * (r) + 1.0f / 24.0f) * (r) + 1.0f / 6.0f) * (r)    \
    + 0.5f) * (r) + 1.0f) * (r) + 1.0f)

#if MF_VECTOR_EXTENSIONS

typedef double mf_v4d __attribute__((vector_size(32), aligned(8), may_alias));
typedef double mf_v2d __attribute__((vector_size(16), aligned(8), may_alias));
typedef long long mf_v4i __attribute__((vector_size(32), aligned(8), may_alias));
typedef unsigned long long mf_v4u __attribute__((vector_size(32), aligned(8), may_alias));
#define MF_INLINE static inline __attribute__((always_inline))
/* The native vector of the compilation: 4 doubles with AVX, else 2 (GCC
 * lowers a 4-double vector into pairs without AVX, and their broadcasts
 * through memory); mf_vni and mf_vnu hold its lanes as integers (masks,
 * exponent bits), MF_LANES their indices.  Every helper the baseline runs
 * often is written in it. */
#ifdef __AVX__
typedef mf_v4d mf_vn;
typedef mf_v4i mf_vni;
typedef mf_v4u mf_vnu;
#define MF_VN 4
#define MF_BROADCAST(c) {c, c, c, c}
#define MF_LANES {0, 1, 2, 3}
#else
typedef mf_v2d mf_vn;
typedef long long mf_vni __attribute__((vector_size(16), aligned(8), may_alias));
typedef unsigned long long mf_vnu __attribute__((vector_size(16), aligned(8), may_alias));
#define MF_VN 2
#define MF_BROADCAST(c) {c, c}
#define MF_LANES {0, 1}
#endif
/* Unroll the loops over the accumulators completely, so that each one is
 * a register (GCC would otherwise turn their zeroing and storing into
 * memset/memcpy calls through memory; clang, given "GCC unroll", kept
 * them in an array on the stack and looped over it) */
#if defined(__clang__)
#define MF_UNROLL _Pragma("clang loop unroll(full)")
#else
#define MF_UNROLL _Pragma("GCC unroll 16")
#endif

/* The passes over `width` units in native vectors (MF_VN doubles; the
 * leftover units, fewer than MF_VN, are rem): blocks of NACC vectors, the
 * last one also carrying the leftover units.  A pass holds its NACC
 * accumulators in vector registers: 12 of the 16 leaves room for the
 * leftover sums, the broadcast value and a loaded row, and 6 for the
 * passes that hold two rows of W in registers.  Native vectors, not 4
 * doubles everywhere: without AVX, GCC lowers a 4-double vector into
 * pairs that it keeps on the stack, and broadcasts a scalar into one
 * through memory (a store and a wider load, which stalls).  (The plain C
 * blocks, tried in the baseline for the sparse rows, made `train`
 * slower.) */
#define MF_CASE(PASS, NV)                                                      \
    case NV:                                                                   \
        switch (rem) {                                                         \
        case 0: PASS(&args, j0, NV, 0); break;                                 \
        case 1: PASS(&args, j0, NV, 1); break;                                 \
        case 2: PASS(&args, j0, NV, 2); break;                                 \
        default: PASS(&args, j0, NV, 3);                                       \
        }                                                                      \
        break;
#define MF_CASES_6(PASS)                                                       \
    MF_CASE(PASS, 0) MF_CASE(PASS, 1) MF_CASE(PASS, 2) MF_CASE(PASS, 3)        \
    MF_CASE(PASS, 4) MF_CASE(PASS, 5) MF_CASE(PASS, 6)
#define MF_CASES_12(PASS)                                                      \
    MF_CASES_6(PASS) MF_CASE(PASS, 7) MF_CASE(PASS, 8) MF_CASE(PASS, 9)        \
    MF_CASE(PASS, 10) MF_CASE(PASS, 11) MF_CASE(PASS, 12)
#define MF_NATIVE_PASSES(PASS, width, NACC)                                    \
    do {                                                                       \
        ptrdiff_t j0 = 0;                                                      \
        int rem;                                                               \
        for (; (width) - j0 > MF_VN * (NACC + 1) - 1; j0 += MF_VN * NACC)      \
            PASS(&args, j0, NACC, 0);                                          \
        rem = (int)(((width) - j0) % MF_VN);                                   \
        switch (((width) - j0) / MF_VN) { MF_CASES_##NACC(PASS) }              \
    } while (0)

/* One pass over the n for units j0 ... j0 + MF_VN nv + rem - 1 (nv <= 12,
 * rem < MF_VN); nv and rem are constants after inlining (see MF_CASE).
 * The sums start from 0, or from out (add: the sums go on from there). */
#define MF_DEFINE_PASS(SUFFIX, VAL_T)                                          \
struct mf_combine_##SUFFIX {                                                   \
    const VAL_T *val;                                                          \
    const int *idx;                                                            \
    ptrdiff_t nnz;                                                             \
    const double *M;                                                           \
    ptrdiff_t ld;                                                              \
    int add;                                                                   \
    double *out;                                                               \
};                                                                             \
MF_INLINE void mf_pass_##SUFFIX(const struct mf_combine_##SUFFIX *p,           \
                                ptrdiff_t j0, const int nv, const int rem)     \
{                                                                              \
    const VAL_T *val = p->val;                                                 \
    const int *idx = p->idx;                                                   \
    const double *M = p->M;                                                    \
    const ptrdiff_t nnz = p->nnz, ld = p->ld;                                  \
    double *out = p->out + j0;                                                 \
    mf_vn acc[12];                                                             \
    mf_v2d acc2 = {0.0, 0.0};                                                  \
    double acc1 = 0.0;                                                         \
    ptrdiff_t n;                                                               \
    int a;                                                                     \
    MF_UNROLL                                                                  \
    for (a = 0; a < nv; a++)                                                   \
        acc[a] = p->add ? *(const mf_vn *)(out + MF_VN * a)                    \
                        : (mf_vn)MF_BROADCAST(0.0);                            \
    if (p->add && (rem & 2))                                                   \
        acc2 = *(const mf_v2d *)(out + MF_VN * nv);                            \
    if (p->add && (rem & 1))                                                   \
        acc1 = out[MF_VN * nv + (rem & 2)];                                    \
    for (n = 0; n < nnz; n++) {                                                \
        const double *m = M + (idx ? (ptrdiff_t)idx[n] : n) * ld + j0;         \
        const double v = (double)val[n];                                       \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++)                                               \
            acc[a] += v * *(const mf_vn *)(m + MF_VN * a);                     \
        if (rem & 2)                                                           \
            acc2 += v * *(const mf_v2d *)(m + MF_VN * nv);                     \
        if (rem & 1)                                                           \
            acc1 += v * m[MF_VN * nv + (rem & 2)];                             \
    }                                                                          \
    MF_UNROLL                                                                  \
    for (a = 0; a < nv; a++)                                                   \
        *(mf_vn *)(out + MF_VN * a) = acc[a];                                  \
    if (rem & 2)                                                               \
        *(mf_v2d *)(out + MF_VN * nv) = acc2;                                  \
    if (rem & 1)                                                               \
        out[MF_VN * nv + (rem & 2)] = acc1;                                    \
}

#define MF_DEFINE_COMBINE(SUFFIX, VAL_T)                                       \
MF_DEFINE_PASS(SUFFIX, VAL_T)                                                  \
MF_INLINE void mf_combine_##SUFFIX(const VAL_T *val, const int *idx,           \
                                   ptrdiff_t nnz, const double *M,             \
                                   ptrdiff_t ld, ptrdiff_t width, int add,     \
                                   double *out)                                \
{                                                                              \
    const struct mf_combine_##SUFFIX args = {val, idx, nnz, M, ld, add, out};  \
    MF_NATIVE_PASSES(mf_pass_##SUFFIX, width, 12);                             \
}

/* Float32 rows for the accuracy screen: out[j] = sum_n val[n] M[idx[n], j]
 * in float32 for j < width, a multiple of 8 (M's rows are padded), in
 * passes of at most 12 native vectors of MF_VNF floats (8 with AVX, else
 * 4: as for the double passes, GCC keeps an 8-float vector's halves on
 * the stack without AVX). */
typedef float mf_v8f __attribute__((vector_size(32), aligned(4), may_alias));
#ifdef __AVX__
typedef mf_v8f mf_vnf;
#define MF_VNF 8
#else
typedef float mf_vnf __attribute__((vector_size(16), aligned(4), may_alias));
#define MF_VNF 4
#endif

/* A pass over the nnz nonzeros of a row, the n-th being VALUE(n) in column
 * COLUMN(n): the body of mf_pass32 and mf_pass_coded32 */
#define MF_PASS32_BODY(VALUE, COLUMN)                                          \
    mf_vnf acc[12];                                                            \
    ptrdiff_t n;                                                               \
    int a;                                                                     \
    MF_UNROLL                                                                  \
    for (a = 0; a < nv; a++)                                                   \
        acc[a] = (mf_vnf){0.0f};                                               \
    for (n = 0; n < nnz; n++) {                                                \
        const float *m = M + (ptrdiff_t)(COLUMN) * ld + j0;                    \
        const float v = (VALUE);                                               \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++)                                               \
            acc[a] += v * *(const mf_vnf *)(m + MF_VNF * a);                   \
    }                                                                          \
    MF_UNROLL                                                                  \
    for (a = 0; a < nv; a++)                                                   \
        *(mf_vnf *)(out + j0 + MF_VNF * a) = acc[a];

MF_INLINE void mf_pass32(const float *val, const int *idx, ptrdiff_t nnz,
                         const float *M, ptrdiff_t ld, ptrdiff_t j0,
                         const int nv, float *out)
{
    MF_PASS32_BODY(val[n], idx[n])
}

MF_INLINE void mf_pass_coded32(const struct mf_coded_row *r, ptrdiff_t nnz,
                               const float *M, ptrdiff_t ld, ptrdiff_t j0,
                               const int nv, float *out)
{
    const unsigned char *code = r->code;
    const unsigned short *col = r->col;
    const float *table = r->table;
    MF_PASS32_BODY(table[code[n]], col[n])
}

/* out = the passes PASS(nv) over width floats, at most 12 vectors each */
#define MF_COMBINE32_BODY(PASS)                                                \
    ptrdiff_t j0 = 0;                                                          \
    for (; width - j0 > 12 * MF_VNF; j0 += 12 * MF_VNF)                        \
        PASS(12);                                                              \
    switch ((width - j0) / MF_VNF) {                                           \
    case 1: PASS(1); break;   case 2: PASS(2); break;                          \
    case 3: PASS(3); break;   case 4: PASS(4); break;                          \
    case 5: PASS(5); break;   case 6: PASS(6); break;                          \
    case 7: PASS(7); break;   case 8: PASS(8); break;                          \
    case 9: PASS(9); break;   case 10: PASS(10); break;                        \
    case 11: PASS(11); break; case 12: PASS(12); break;                        \
    }

#define MF_PLAIN_PASS32(NV) mf_pass32(val, idx, nnz, M, width, j0, NV, out)
#define MF_CODED_PASS32(NV) mf_pass_coded32(r, nnz, M, width, j0, NV, out)

static inline void mf_combine_rows32(const float *val, const int *idx,
                                     ptrdiff_t nnz, const float *M,
                                     ptrdiff_t width, float *out)
{
    MF_COMBINE32_BODY(MF_PLAIN_PASS32)
}

static inline void mf_combine_coded32(const struct mf_coded_row *r,
                                      ptrdiff_t nnz, const float *M,
                                      ptrdiff_t width, float *out)
{
    MF_COMBINE32_BODY(MF_CODED_PASS32)
}


/* The screen's float32 hidden and output layers (error bounds: see
 * mnist_fast/screen.py).
 *
 * mf_sigmoid_vnf: sigmoid(a) = 1 / (1 + exp(-a)) of a native vector of
 * MF_VNF floats in place (each lane's arithmetic the same whatever the
 * width), exp(x) = 2**k exp(r) with x clamped to [-87, 88] (beyond, the sigmoid is within 2e-38
 * of 0 or 1), k = round(x log2(e)) read from the bits of the rounding sum
 * x log2(e) + 1.5 * 2**23, r = x - k ln2 in two parts (Cody-Waite: k times
 * the 9-bit part is exact) and exp(r) by its series to r**7 / 7!. */
#ifdef __AVX__
typedef int mf_vni32 __attribute__((vector_size(32), aligned(4), may_alias));
#define MF_VNF_OF(c) {c, c, c, c, c, c, c, c}
#else
typedef int mf_vni32 __attribute__((vector_size(16), aligned(4), may_alias));
#define MF_VNF_OF(c) {c, c, c, c}
#endif

MF_INLINE void mf_sigmoid_vnf(mf_vnf *inout)
{
    const mf_vnf shift = MF_VNF_OF(12582912.0f);  /* 1.5 * 2**23 */
    const mf_vnf top = MF_VNF_OF(88.0f), bottom = MF_VNF_OF(-87.0f);
    mf_vnf x = -*inout, kd, r, p;
    const mf_vni32 hi = x > top, lo = x < bottom;
    mf_vni32 k;
    x = (mf_vnf)((hi & (mf_vni32)top) | (lo & (mf_vni32)bottom)
                 | (~(hi | lo) & (mf_vni32)x));
    kd = x * 1.44269504f + shift;
    k = (mf_vni32)kd - (mf_vni32)shift;
    kd = kd - shift;
    r = (x - kd * 0.693359375f) - kd * -2.12194440e-4f;
    p = MF_EXP_SERIES32(r);
    p = p * (mf_vnf)((k + 127) << 23);
    *inout = 1.0f / (1.0f + p);
}

/* a[j] = sigmoid(a[j] + b[j]) for j < n, a multiple of 8; returns max_j
 * |a[j] + b[j]|, or inf when one of them is not finite. */
static inline float mf_sigmoid32(float *a, const float *b, ptrdiff_t n)
{
    const mf_vni32 magnitude = MF_VNF_OF(0x7fffffff), all = MF_VNF_OF(-1);
    mf_vnf big = MF_VNF_OF(0.0f);
    mf_vni32 finite = all, more;
    float m = 0.0f;
    ptrdiff_t j;
    int i;
    for (j = 0; j < n; j += MF_VNF) {
        mf_vnf v = *(const mf_vnf *)(a + j) + *(const mf_vnf *)(b + j);
        const mf_vnf size = (mf_vnf)((mf_vni32)v & magnitude);
        finite &= size <= 3.40282347e+38f;  /* false for inf and NaN */
        more = size > big;
        big = (mf_vnf)((more & (mf_vni32)size) | (~more & (mf_vni32)big));
        mf_sigmoid_vnf(&v);
        *(mf_vnf *)(a + j) = v;
    }
    for (i = 0; i < MF_VNF; i++) {
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
    for (c = 0; c < width; c += MF_VNF) {
        mf_vnf s[4];
        MF_UNROLL
        for (q = 0; q < 4; q++)
            s[q] = (mf_vnf)MF_VNF_OF(0.0f);
        for (j = 0; j < n; j += 4) {
            MF_UNROLL
            for (q = 0; q < 4; q++)
                s[q] += z[j + q] * *(const mf_vnf *)(W + (j + q) * width + c);
        }
        *(mf_vnf *)(out + c) = *(const mf_vnf *)(b + c) + ((s[0] + s[1]) + (s[2] + s[3]));
    }
}

#else  /* portable C */

#define MF_INLINE static inline
#define MF_UNROLL

/* Blocks of units whose sums stay in a local array over all the n: the
 * loops over a block have a constant trip count (MF_PLAIN_BLOCK is a
 * macro: no inlining needed), so the compiler vectorises them with the
 * sums in vector registers, where one loop over `width` would load and
 * store out[j] at every n.  Blocks of UNITS units, then one of UNITS / 2
 * and one of UNITS / 4 as they fit, then the fewer units left in one
 * block of a variable count (each block is one more pass over the n). */
#define MF_PLAIN_BLOCKS(BLOCK, UNITS, width)                                   \
    do {                                                                       \
        ptrdiff_t j0 = 0;                                                      \
        for (; j0 + (UNITS) <= (width); j0 += (UNITS))                         \
            BLOCK(j0, UNITS, UNITS);                                           \
        if ((width) - j0 >= (UNITS) / 2) {                                     \
            BLOCK(j0, (UNITS) / 2, (UNITS) / 2);                               \
            j0 += (UNITS) / 2;                                                 \
        }                                                                      \
        if ((width) - j0 >= (UNITS) / 4) {                                     \
            BLOCK(j0, (UNITS) / 4, (UNITS) / 4);                               \
            j0 += (UNITS) / 4;                                                 \
        }                                                                      \
        if ((width) - j0 >= 1)                                                 \
            BLOCK(j0, (width) - j0, (UNITS) / 4);                              \
    } while (0)

/* out[j0 ... j0 + w - 1] = sum_n val[n] M[ROW, j0 ...] in ACC_T (w <=
 * SIZE, a constant; from out with add), over val, idx, nnz, M, ld, add and
 * out of the caller; ROW of n */
#define MF_PLAIN_BLOCK(ACC_T, ROW, VALUE, j0, w, SIZE)                         \
    do {                                                                       \
        ACC_T acc[SIZE];                                                       \
        ptrdiff_t j, n;                                                        \
        for (j = 0; j < (w); j++)                                              \
            acc[j] = add ? out[(j0) + j] : (ACC_T)0;                           \
        for (n = 0; n < nnz; n++) {                                            \
            const ACC_T *m = M + (ROW) * ld + (j0);                            \
            const ACC_T v = (ACC_T)(VALUE);                                    \
            for (j = 0; j < (w); j++)                                          \
                acc[j] += v * m[j];                                            \
        }                                                                      \
        for (j = 0; j < (w); j++)                                              \
            out[(j0) + j] = acc[j];                                            \
    } while (0)
#define MF_PLAIN_BLOCK64(j0, w, SIZE)                                          \
    MF_PLAIN_BLOCK(double, idx ? (ptrdiff_t)idx[n] : n, val[n], j0, w, SIZE)
#define MF_PLAIN_BLOCK32(j0, w, SIZE)                                          \
    MF_PLAIN_BLOCK(float, (ptrdiff_t)idx[n], val[n], j0, w, SIZE)
#define MF_CODED_BLOCK32(j0, w, SIZE)                                          \
    MF_PLAIN_BLOCK(float, (ptrdiff_t)r->col[n], r->table[r->code[n]], j0, w,   \
                   SIZE)

/* Blocks of 16 units (doubles: 8 SSE2 registers of sums; floats too):
 * GCC turned blocks of 32 into scalar loops */
#define MF_DEFINE_COMBINE(SUFFIX, VAL_T)                                       \
MF_INLINE void mf_combine_##SUFFIX(const VAL_T *val, const int *idx,           \
                                   ptrdiff_t nnz, const double *M,             \
                                   ptrdiff_t ld, ptrdiff_t width, int add,     \
                                   double *out)                                \
{                                                                              \
    MF_PLAIN_BLOCKS(MF_PLAIN_BLOCK64, 16, width);                              \
}

static inline void mf_combine_rows32(const float *val, const int *idx,
                                     ptrdiff_t nnz, const float *M,
                                     ptrdiff_t width, float *out)
{
    const ptrdiff_t ld = width;
    const int add = 0;
    MF_PLAIN_BLOCKS(MF_PLAIN_BLOCK32, 16, width);
}

static inline void mf_combine_coded32(const struct mf_coded_row *r,
                                      ptrdiff_t nnz, const float *M,
                                      ptrdiff_t width, float *out)
{
    const ptrdiff_t ld = width;
    const int add = 0;
    MF_PLAIN_BLOCKS(MF_CODED_BLOCK32, 16, width);
}

/* mf_sigmoid_vnf's arithmetic on one float, operation for operation (the same
 * clamp, reduction and series, no libm), so that the screen's error bound
 * (mnist_fast/screen.py) holds for it as for the vector one. */
static inline float mf_sigmoid1(float a)
{
    const float shift = 12582912.0f;  /* 1.5 * 2**23 */
    float x = -a, kd, r, p, scale;
    int32_t k, kd_bits, shift_bits, scale_bits;
    if (x > 88.0f)
        x = 88.0f;
    else if (x < -87.0f)
        x = -87.0f;
    kd = x * 1.44269504f + shift;
    memcpy(&kd_bits, &kd, sizeof kd_bits);
    memcpy(&shift_bits, &shift, sizeof shift_bits);
    k = kd_bits - shift_bits;
    kd = kd - shift;
    r = (x - kd * 0.693359375f) - kd * -2.12194440e-4f;
    p = MF_EXP_SERIES32(r);
    scale_bits = (k + 127) * (1 << 23);  /* 2**k: k + 127 is 1 ... 254 */
    memcpy(&scale, &scale_bits, sizeof scale);
    p = p * scale;
    return 1.0f / (1.0f + p);
}

static inline float mf_sigmoid32(float *a, const float *b, ptrdiff_t n)
{
    ptrdiff_t j;
    float m = 0.0f;
    for (j = 0; j < n; j++) {
        const float v = a[j] + b[j];
        if (!(fabsf(v) <= 3.40282347e+38f))
            return INFINITY;
        m = fabsf(v) > m ? fabsf(v) : m;
        a[j] = mf_sigmoid1(v);
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

/* A value's bits as an unsigned integer (mf_bits_of_*: the mask pass ORs
 * the bits of v - v, +0.0 only for a finite v), and the exponent's bits,
 * its unit and the top bit of mf_all_finite_*'s test (below). */
typedef unsigned int mf_bits_f32;
typedef unsigned long long mf_bits_f64;
#define MF_EXP_f32 0x7f800000u
#define MF_UNIT_f32 0x00800000u
#define MF_TOP_f32 31
#define MF_EXP_f64 0x7ff0000000000000ull
#define MF_UNIT_f64 0x0010000000000000ull
#define MF_TOP_f64 63
static inline mf_bits_f32 mf_bits_of_f32(float v)
{
    mf_bits_f32 b;
    memcpy(&b, &v, sizeof b);
    return b;
}
static inline mf_bits_f64 mf_bits_of_f64(double v)
{
    mf_bits_f64 b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* the add of a t_times pass whose first block starts from 0 and leaves the
 * rows of O without rows as they are (see mf_zero_rows_without) */
#define MF_SKIP_EMPTY 2

/* The two products of a block of at most 64 rows of a batch, pixel by
 * pixel (struct mf_pixels_*: bit r of mask[i] is set when row r of the
 * block, x + r ldx, is nonzero at pixel i), for the pixels i0 ... i1 - 1:
 *
 *   mf_pixels_times:    A[r, j] += x[r, i] * W[i, j]   (x @ W1)
 *   mf_pixels_t_times:  O[i, j] += x[r, i] * M[r, j]   (x.T @ dz1)
 *
 * over the rows r of mask[i], in order, and j < width (with add = 0, O's
 * rows are written instead, 0 where the pixel has no row).  The first keeps
 * a row of W in vector registers while it runs over the pixel's rows; the
 * second sums O[i, :] in registers.  Each element grows in the order of
 * the pixels (the first) or of the rows (the second), as one plain loop
 * would.  The rows come from the mask (lowest bit first) and the values
 * from x: no sorted copy of the nonzeros is made. */
#define MF_DEFINE_PIXELS(SUFFIX, VAL_T)                                        \
struct mf_pixels_args_##SUFFIX {                                               \
    const struct mf_pixels_##SUFFIX *c;                                        \
    ptrdiff_t i0, i1;                                                          \
    const double *M;                                                           \
    ptrdiff_t ldm;                                                             \
    double *O;                                                                 \
    ptrdiff_t ldo;                                                             \
    int add;  /* t_times: 1, 0 or MF_SKIP_EMPTY (mf_zero_rows_without) */    \
};                                                                             \
                                                                               \
/* mask[i] of mf_pixels_* for the n <= 64 rows at x, ldx apart, i < D:         \
 * eight rows per pass over the masks, in loops the compiler vectorises.      \
 * The same loops test each value, so that a call's finiteness check of x    \
 * costs no pass of its own: v - v is +0.0 (no bit set) for every finite v   \
 * and NaN (bits set) for NaN and infinities, so the OR of their bits is 0   \
 * when all are finite -- one subtraction and one OR per vector.  Returns    \
 * whether every value read is finite. */                                     \
static int mf_block_mask_##SUFFIX(const VAL_T *x, ptrdiff_t ldx, int n,        \
                                  ptrdiff_t D, unsigned long long *mask)       \
{                                                                              \
    mf_bits_##SUFFIX bad = 0;                                                  \
    ptrdiff_t i;                                                               \
    int r = 0, k;                                                              \
    for (i = 0; i < D; i++)                                                    \
        mask[i] = 0;                                                           \
    for (; r + 8 <= n; r += 8) {                                               \
        const VAL_T *rows = x + r * ldx;                                       \
        for (i = 0; i < D; i++) {                                              \
            unsigned m = 0;                                                    \
            for (k = 0; k < 8; k++) {                                          \
                const VAL_T v = rows[k * ldx + i];                             \
                m |= (unsigned)(v != 0) << k;                                  \
                bad |= mf_bits_of_##SUFFIX(v - v);                             \
            }                                                                  \
            mask[i] |= (unsigned long long)m << r;                             \
        }                                                                      \
    }                                                                          \
    for (; r < n; r++)                                                         \
        for (i = 0; i < D; i++) {                                              \
            const VAL_T v = x[r * ldx + i];                                    \
            mask[i] |= (unsigned long long)(v != 0) << r;                      \
            bad |= mf_bits_of_##SUFFIX(v - v);                                 \
        }                                                                      \
    return bad == 0;                                                           \
}                                                                              \
                                                                               \
MF_PIXELS_PASSES(SUFFIX, VAL_T)                                                \
                                                                               \
static void mf_pixels_times_##SUFFIX(const struct mf_pixels_##SUFFIX *c,       \
                                     ptrdiff_t i0, ptrdiff_t i1,               \
                                     const double *W, ptrdiff_t ldw,           \
                                     ptrdiff_t width, double *A,               \
                                     ptrdiff_t lda)                            \
{                                                                              \
    const struct mf_pixels_args_##SUFFIX args = {c, i0, i1, W, ldw, A, lda, 1};\
    MF_NATIVE_PASSES(mf_pair_times_pass_##SUFFIX, width, 6);                   \
}                                                                              \
                                                                               \
static void mf_pixels_t_times_##SUFFIX(const struct mf_pixels_##SUFFIX *c,     \
                                       ptrdiff_t i0, ptrdiff_t i1,             \
                                       const double *M, ptrdiff_t ldm,         \
                                       ptrdiff_t width, int add, double *O,    \
                                       ptrdiff_t ldo)                          \
{                                                                              \
    const int zeroed = !add && width >= MF_ZERO_MIN_WIDTH;                     \
    const struct mf_pixels_args_##SUFFIX args = {c, i0, i1, M, ldm, O, ldo,    \
                                                 zeroed ? MF_SKIP_EMPTY        \
                                                        : !!add};              \
    if (zeroed)                                                                \
        MF_ZERO_ROWS_WITHOUT(c->mask, i0, i1, width, O, ldo);                  \
    MF_NATIVE_PASSES(mf_t_times_pass_##SUFFIX, width, 12);                     \
}

#if MF_VECTOR_EXTENSIONS
/* The rows i0 ... i1 - 1 of O (width values, ldo apart) whose mask[i] is 0
 * set to 0, a run of consecutive rows at a time when they are contiguous:
 * for rows of at least MF_ZERO_MIN_WIDTH values, the rows of x.T @ dz1
 * that the first block has no row for, written whole one after the other
 * rather than by each pass over a slice of the units (a wide layer's
 * gradient of W1, mostly such rows for a small batch, would be written
 * slice by slice, a pass after the other); the passes then skip them
 * (add = MF_SKIP_EMPTY: the other rows' sums start from 0, as with add =
 * 0).  Narrower rows cost less to write in the passes than a memset per
 * run. */
#define MF_ZERO_MIN_WIDTH 128
static inline void mf_zero_rows_without(const unsigned long long *mask,
                                        ptrdiff_t i0, ptrdiff_t i1,
                                        ptrdiff_t width, double *O,
                                        ptrdiff_t ldo)
{
    ptrdiff_t i = i0, j;
    while (i < i1) {
        if (mask[i]) {
            i++;
            continue;
        }
        for (j = i + 1; j < i1 && !mask[j]; j++)
            ;
        if (ldo == width)
            memset(O + i * ldo, 0, (size_t)((j - i) * width) * sizeof(double));
        else
            for (; i < j; i++)
                memset(O + i * ldo, 0, (size_t)width * sizeof(double));
        i = j;
    }
}
#define MF_ZERO_ROWS_WITHOUT mf_zero_rows_without
/* the passes over units j0 ... j0 + MF_VN nv + rem - 1 (see MF_NATIVE_PASSES) */
#define MF_PIXELS_PASSES(SUFFIX, VAL_T)                                        \
MF_INLINE void mf_times_pass_##SUFFIX(                                         \
    const struct mf_pixels_args_##SUFFIX *p, ptrdiff_t j0, const int nv,       \
    const int rem)                                                             \
{                                                                              \
    const unsigned long long *mask = p->c->mask;                               \
    const VAL_T *x = p->c->x;                                                  \
    const ptrdiff_t ldx = p->c->ldx, ldo = p->ldo;                             \
    double *A = p->O + j0;                                                     \
    ptrdiff_t i;                                                               \
    int a;                                                                     \
    for (i = p->i0; i < p->i1; i++) {                                          \
        const double *m = p->M + i * p->ldm + j0;                              \
        unsigned long long rows = mask[i];                                     \
        mf_vn w[12];                                                           \
        mf_v2d w2 = {0.0, 0.0};                                                \
        double w1 = 0.0;                                                       \
        if (!rows)                                                             \
            continue;                                                          \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++)                                               \
            w[a] = *(const mf_vn *)(m + MF_VN * a);                            \
        if (rem & 2)                                                           \
            w2 = *(const mf_v2d *)(m + MF_VN * nv);                            \
        if (rem & 1)                                                           \
            w1 = m[MF_VN * nv + (rem & 2)];                                    \
        do {                                                                   \
            const ptrdiff_t r = __builtin_ctzll(rows);                         \
            double *out = A + r * ldo;                                         \
            const double v = (double)x[r * ldx + i];                           \
            rows &= rows - 1;                                                  \
            MF_UNROLL                                                          \
            for (a = 0; a < nv; a++)                                           \
                *(mf_vn *)(out + MF_VN * a) += v * w[a];                       \
            if (rem & 2)                                                       \
                *(mf_v2d *)(out + MF_VN * nv) += v * w2;                       \
            if (rem & 1)                                                       \
                out[MF_VN * nv + (rem & 2)] += v * w1;                         \
        } while (rows);                                                        \
    }                                                                          \
}                                                                              \
                                                                               \
/* Two pixels at a time: each row of their union takes both products in        \
 * one load and store of its a1 (a row that is 0 at one of the pixels          \
 * takes 0 * W[i, j] there, which changes nothing: a1 is never -0.0, and       \
 * the weights are finite; the book's x @ W1 adds every such term). */         \
MF_INLINE void mf_pair_times_pass_##SUFFIX(                                    \
    const struct mf_pixels_args_##SUFFIX *p, ptrdiff_t j0, const int nv,       \
    const int rem)                                                             \
{                                                                              \
    const unsigned long long *mask = p->c->mask;                               \
    const VAL_T *x = p->c->x;                                                  \
    const ptrdiff_t ldx = p->c->ldx, ldo = p->ldo;                             \
    double *A = p->O + j0;                                                     \
    ptrdiff_t i;                                                               \
    int a;                                                                     \
    for (i = p->i0; i + 1 < p->i1; i += 2) {                                   \
        const double *m = p->M + i * p->ldm + j0, *n = m + p->ldm;             \
        unsigned long long rows = mask[i] | mask[i + 1];                       \
        mf_vn w[6], u[6];                                                      \
        mf_v2d w2 = {0.0, 0.0}, u2 = {0.0, 0.0};                               \
        double w1 = 0.0, u1 = 0.0;                                             \
        if (!rows)                                                             \
            continue;                                                          \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++) {                                             \
            w[a] = *(const mf_vn *)(m + MF_VN * a);                            \
            u[a] = *(const mf_vn *)(n + MF_VN * a);                            \
        }                                                                      \
        if (rem & 2) {                                                         \
            w2 = *(const mf_v2d *)(m + MF_VN * nv);                            \
            u2 = *(const mf_v2d *)(n + MF_VN * nv);                            \
        }                                                                      \
        if (rem & 1) {                                                         \
            w1 = m[MF_VN * nv + (rem & 2)];                                    \
            u1 = n[MF_VN * nv + (rem & 2)];                                    \
        }                                                                      \
        do {                                                                   \
            const ptrdiff_t r = __builtin_ctzll(rows);                         \
            double *out = A + r * ldo;                                         \
            const double v = (double)x[r * ldx + i];                           \
            const double y = (double)x[r * ldx + i + 1];                       \
            rows &= rows - 1;                                                  \
            MF_UNROLL                                                          \
            for (a = 0; a < nv; a++) {                                         \
                mf_vn t = *(mf_vn *)(out + MF_VN * a);                         \
                t += v * w[a];                                                 \
                *(mf_vn *)(out + MF_VN * a) = t + y * u[a];                    \
            }                                                                  \
            if (rem & 2) {                                                     \
                mf_v2d t = *(mf_v2d *)(out + MF_VN * nv);                      \
                t += v * w2;                                                   \
                *(mf_v2d *)(out + MF_VN * nv) = t + y * u2;                    \
            }                                                                  \
            if (rem & 1) {                                                     \
                double t = out[MF_VN * nv + (rem & 2)];                        \
                t += v * w1;                                                   \
                out[MF_VN * nv + (rem & 2)] = t + y * u1;                      \
            }                                                                  \
        } while (rows);                                                        \
    }                                                                          \
    if (i < p->i1) {  /* the last pixel of an odd count */                     \
        struct mf_pixels_args_##SUFFIX last = *p;                              \
        last.i0 = i;                                                           \
        mf_times_pass_##SUFFIX(&last, j0, nv, rem);                            \
    }                                                                          \
}                                                                              \
                                                                               \
MF_INLINE void mf_t_times_pass_##SUFFIX(                                       \
    const struct mf_pixels_args_##SUFFIX *p, ptrdiff_t j0, const int nv,       \
    const int rem)                                                             \
{                                                                              \
    const unsigned long long *mask = p->c->mask;                               \
    const VAL_T *x = p->c->x;                                                  \
    const ptrdiff_t ldx = p->c->ldx, ldm = p->ldm;                             \
    const double *M = p->M + j0;                                               \
    ptrdiff_t i;                                                               \
    int a;                                                                     \
    for (i = p->i0; i < p->i1; i++) {                                          \
        double *out = p->O + i * p->ldo + j0;                                  \
        unsigned long long rows = mask[i];                                     \
        mf_vn acc[12];                                                         \
        mf_v2d acc2 = {0.0, 0.0};                                              \
        double acc1 = 0.0;                                                     \
        if (!rows && p->add)                                                   \
            continue;                                                          \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++)                                               \
            acc[a] = p->add == 1 ? *(const mf_vn *)(out + MF_VN * a)           \
                                 : (mf_vn)MF_BROADCAST(0.0);                   \
        if (p->add == 1 && (rem & 2))                                          \
            acc2 = *(const mf_v2d *)(out + MF_VN * nv);                        \
        if (p->add == 1 && (rem & 1))                                          \
            acc1 = out[MF_VN * nv + (rem & 2)];                                \
        while (rows) {                                                         \
            const ptrdiff_t r = __builtin_ctzll(rows);                         \
            const double *m = M + r * ldm;                                     \
            const double v = (double)x[r * ldx + i];                           \
            rows &= rows - 1;                                                  \
            MF_UNROLL                                                          \
            for (a = 0; a < nv; a++)                                           \
                acc[a] += v * *(const mf_vn *)(m + MF_VN * a);                 \
            if (rem & 2)                                                       \
                acc2 += v * *(const mf_v2d *)(m + MF_VN * nv);                 \
            if (rem & 1)                                                       \
                acc1 += v * m[MF_VN * nv + (rem & 2)];                         \
        }                                                                      \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++)                                               \
            *(mf_vn *)(out + MF_VN * a) = acc[a];                              \
        if (rem & 2)                                                           \
            *(mf_v2d *)(out + MF_VN * nv) = acc2;                              \
        if (rem & 1)                                                           \
            out[MF_VN * nv + (rem & 2)] = acc1;                                \
    }                                                                          \
}

#else  /* portable C */

/* the lowest set bit of m (m != 0) */
static inline int mf_lowest_bit(unsigned long long m)
{
    int r = 0;
    while (!(m & 1)) {
        m >>= 1;
        r++;
    }
    return r;
}

/* one pass over all the units (j0 = 0, width nv), pixel by pixel; it
 * writes each row of x.T @ dz1 whole itself */
#define MF_NATIVE_PASSES(PASS, width, NACC) PASS(&args, 0, (int)(width), 0)
#define MF_ZERO_ROWS_WITHOUT(mask, i0, i1, width, O, ldo) ((void)0)
#define MF_ZERO_MIN_WIDTH PTRDIFF_MAX  /* never */
#define mf_pair_times_pass_f32 mf_times_pass_f32
#define mf_pair_times_pass_f64 mf_times_pass_f64
#define MF_PIXELS_PASSES(SUFFIX, VAL_T)                                        \
static void mf_times_pass_##SUFFIX(const struct mf_pixels_args_##SUFFIX *p,    \
                                   ptrdiff_t j0, int width, int rem)           \
{                                                                              \
    const struct mf_pixels_##SUFFIX *c = p->c;                                 \
    ptrdiff_t i, j;                                                            \
    (void)j0;                                                                  \
    (void)rem;                                                                 \
    for (i = p->i0; i < p->i1; i++) {                                          \
        unsigned long long rows = c->mask[i];                                  \
        for (; rows; rows &= rows - 1) {                                       \
            const ptrdiff_t r = mf_lowest_bit(rows);                           \
            const double v = (double)c->x[r * c->ldx + i];                     \
            for (j = 0; j < width; j++)                                        \
                p->O[r * p->ldo + j] += v * p->M[i * p->ldm + j];              \
        }                                                                      \
    }                                                                          \
}                                                                              \
                                                                               \
static void mf_t_times_pass_##SUFFIX(const struct mf_pixels_args_##SUFFIX *p,  \
                                     ptrdiff_t j0, int width, int rem)         \
{                                                                              \
    const struct mf_pixels_##SUFFIX *c = p->c;                                 \
    ptrdiff_t i, j;                                                            \
    (void)j0;                                                                  \
    (void)rem;                                                                 \
    for (i = p->i0; i < p->i1; i++) {                                          \
        unsigned long long rows = c->mask[i];                                  \
        double *out = p->O + i * p->ldo;                                       \
        if (!p->add)                                                           \
            for (j = 0; j < width; j++)                                        \
                out[j] = 0.0;                                                  \
        for (; rows; rows &= rows - 1) {                                       \
            const ptrdiff_t r = mf_lowest_bit(rows);                           \
            const double v = (double)c->x[r * c->ldx + i];                     \
            for (j = 0; j < width; j++)                                        \
                out[j] += v * p->M[r * p->ldm + j];                            \
        }                                                                      \
    }                                                                          \
}

#endif

MF_DEFINE_PIXELS(f32, float)
MF_DEFINE_PIXELS(f64, double)

/* x @ W1 of the accuracy's float32 screen, pixel by pixel as
 * mf_pixels_times_* (two pixels at a time):
 *
 *   A[r, j] += (float)x[r, i] * W[i, j]   in float32, for j < width
 *
 * (width a multiple of 8: the screen's rows are padded).  The screen's
 * error bound (mnist_fast/screen.py) holds for any order of the sum and
 * either rounding of its products; the 0 * W[i, j] terms are exact. */
#if MF_VECTOR_EXTENSIONS
/* MF_PAIR native vectors of MF_VNF floats per pass: two rows of W in
 * registers (2 MF_PAIR of the 16) beside a vector of A and the two
 * broadcast values; with AVX, 7 take the book's 56 padded units in one
 * pass. */
#ifdef __AVX__
#define MF_PAIR 7
#else
#define MF_PAIR 6
#endif
#define MF_DEFINE_PIXELS32(SUFFIX, VAL_T)                                      \
MF_INLINE void mf_times32_pass_##SUFFIX(                                       \
    const struct mf_pixels_##SUFFIX *c, ptrdiff_t i0, ptrdiff_t i1,            \
    const float *W, ptrdiff_t ldw, float *A, ptrdiff_t lda, const int nv)      \
{                                                                              \
    const unsigned long long *mask = c->mask;                                  \
    const VAL_T *x = c->x;                                                     \
    const ptrdiff_t ldx = c->ldx;                                              \
    const ptrdiff_t pairs = (i1 - i0 + 1) / 2;                                 \
    const ptrdiff_t share = pairs ? (c->ahead_lines + pairs - 1) / pairs : 0;  \
    ptrdiff_t i, line = 0;                                                     \
    int a;                                                                     \
    for (i = i0; i < i1; i += 2) {                                             \
        const int two = i + 1 < i1;                                            \
        const float *m = W + i * ldw, *n = two ? m + ldw : m;                  \
        unsigned long long rows = mask[i] | (two ? mask[i + 1] : 0);           \
        const ptrdiff_t stop = line + share < c->ahead_lines                   \
                               ? line + share : c->ahead_lines;                \
        mf_vnf w[MF_PAIR], u[MF_PAIR];                                         \
        for (; line < stop; line++)                                            \
            MF_PREFETCH_L2(c->ahead + 64 * line);                              \
        if (!rows)                                                             \
            continue;                                                          \
        MF_UNROLL                                                              \
        for (a = 0; a < nv; a++) {                                             \
            w[a] = *(const mf_vnf *)(m + MF_VNF * a);                          \
            u[a] = *(const mf_vnf *)(n + MF_VNF * a);                          \
        }                                                                      \
        do {                                                                   \
            const ptrdiff_t r = __builtin_ctzll(rows);                         \
            float *out = A + r * lda;                                          \
            const float v = (float)x[r * ldx + i];                             \
            const float y = two ? (float)x[r * ldx + i + 1] : 0.0f;            \
            rows &= rows - 1;                                                  \
            MF_UNROLL                                                          \
            for (a = 0; a < nv; a++) {                                         \
                mf_vnf t = *(mf_vnf *)(out + MF_VNF * a);                      \
                t += v * w[a];                                                 \
                *(mf_vnf *)(out + MF_VNF * a) = t + y * u[a];                  \
            }                                                                  \
        } while (rows);                                                        \
    }                                                                          \
}                                                                              \
                                                                               \
static void mf_pixels_times32_##SUFFIX(const struct mf_pixels_##SUFFIX *c,     \
                                       ptrdiff_t i0, ptrdiff_t i1,             \
                                       const float *W, ptrdiff_t ldw,          \
                                       ptrdiff_t width, float *A,              \
                                       ptrdiff_t lda)                          \
{                                                                              \
    struct mf_pixels_##SUFFIX rest = *c; /* the later passes request none */   \
    ptrdiff_t j0;                                                              \
    rest.ahead_lines = 0;                                                      \
    for (j0 = 0; j0 < width; j0 += MF_VNF * MF_PAIR, c = &rest) {              \
        const float *Wj = W + j0;                                              \
        float *Aj = A + j0;                                                    \
        switch ((width - j0) / MF_VNF < MF_PAIR ? (width - j0) / MF_VNF        \
                : MF_PAIR) {                                                   \
        case 1: mf_times32_pass_##SUFFIX(c, i0, i1, Wj, ldw, Aj, lda, 1); break;\
        case 2: mf_times32_pass_##SUFFIX(c, i0, i1, Wj, ldw, Aj, lda, 2); break;\
        case 3: mf_times32_pass_##SUFFIX(c, i0, i1, Wj, ldw, Aj, lda, 3); break;\
        case 4: mf_times32_pass_##SUFFIX(c, i0, i1, Wj, ldw, Aj, lda, 4); break;\
        case 5: mf_times32_pass_##SUFFIX(c, i0, i1, Wj, ldw, Aj, lda, 5); break;\
        case 6: mf_times32_pass_##SUFFIX(c, i0, i1, Wj, ldw, Aj, lda, 6); break;\
        default: mf_times32_pass_##SUFFIX(c, i0, i1, Wj, ldw, Aj, lda, MF_PAIR);\
        }                                                                      \
    }                                                                          \
}
#else
#define MF_DEFINE_PIXELS32(SUFFIX, VAL_T)                                      \
static void mf_pixels_times32_##SUFFIX(const struct mf_pixels_##SUFFIX *c,     \
                                       ptrdiff_t i0, ptrdiff_t i1,             \
                                       const float *W, ptrdiff_t ldw,          \
                                       ptrdiff_t width, float *A,              \
                                       ptrdiff_t lda)                          \
{                                                                              \
    ptrdiff_t i, j;                                                            \
    for (i = i0; i < i1; i++) {                                                \
        unsigned long long rows = c->mask[i];                                  \
        for (; rows; rows &= rows - 1) {                                       \
            const ptrdiff_t r = mf_lowest_bit(rows);                           \
            const float v = (float)c->x[r * c->ldx + i];                       \
            for (j = 0; j < width; j++)                                        \
                A[r * lda + j] += v * W[i * ldw + j];                          \
        }                                                                      \
    }                                                                          \
}
#endif
MF_DEFINE_PIXELS32(f32, float)
MF_DEFINE_PIXELS32(f64, double)

/* sum |x[i]| of a dense row in sixteen partial sums (part[m] sums the
 * x[i] with i % 16 = m: independent chains; double sums of the float or
 * double values), reduced in one order whatever the vector width, their
 * number of nonzeros to *nnz; a loop without branches.  The sums sit in
 * MF_L1_ACC native vectors side by side. */
#if MF_VECTOR_EXTENSIONS
#define MF_L1_ACC (16 / MF_VN)
#ifdef __AVX__
#define MF_VN_LOAD(c) {(double)(c)[0], (double)(c)[1], (double)(c)[2],         \
                       (double)(c)[3]}
#else
#define MF_VN_LOAD(c) {(double)(c)[0], (double)(c)[1]}
#endif
#define MF_DEFINE_ROW_L1(SUFFIX, VAL_T)                                        \
static double mf_row_l1_##SUFFIX(const VAL_T *x, ptrdiff_t D, ptrdiff_t *nnz) \
{                                                                              \
    const mf_vni magnitude = MF_BROADCAST(0x7fffffffffffffffLL);              \
    mf_vn s[MF_L1_ACC];                                                        \
    mf_vni n = MF_BROADCAST(0LL);                                              \
    double part[16], t[4];                                                     \
    ptrdiff_t i = 0, count = 0;                                                \
    int q;                                                                     \
    MF_UNROLL                                                                  \
    for (q = 0; q < MF_L1_ACC; q++)                                            \
        s[q] = (mf_vn)MF_BROADCAST(0.0);                                       \
    for (; i + 16 <= D; i += 16) {                                             \
        MF_UNROLL                                                              \
        for (q = 0; q < MF_L1_ACC; q++) {                                      \
            const mf_vn v = MF_VN_LOAD(x + i + MF_VN * q);                     \
            s[q] += (mf_vn)((mf_vni)v & magnitude);                            \
            n -= v != 0.0;                                                     \
        }                                                                      \
    }                                                                          \
    memcpy(part, s, sizeof part);                                              \
    for (; i < D; i++) {                                                       \
        part[0] += fabs((double)x[i]);                                         \
        count += x[i] != 0;                                                    \
    }                                                                          \
    for (q = 0; q < MF_VN; q++)                                                \
        count += n[q];                                                         \
    *nnz = count;                                                              \
    for (q = 0; q < 4; q++)                                                    \
        t[q] = (part[q] + part[4 + q]) + (part[8 + q] + part[12 + q]);         \
    return (t[0] + t[1]) + (t[2] + t[3]);                                      \
}
#else
#define MF_DEFINE_ROW_L1(SUFFIX, VAL_T)                                        \
static double mf_row_l1_##SUFFIX(const VAL_T *x, ptrdiff_t D, ptrdiff_t *nnz)  \
{                                                                              \
    double s = 0.0;                                                            \
    ptrdiff_t i, n = 0;                                                        \
    for (i = 0; i < D; i++) {                                                  \
        s += fabs((double)x[i]);                                               \
        n += x[i] != 0;                                                        \
    }                                                                          \
    *nnz = n;                                                                  \
    return s;                                                                  \
}
#endif
MF_DEFINE_ROW_L1(f32, float)
MF_DEFINE_ROW_L1(f64, double)

/* sum_n val[n] * M[idx[n], :H] for M's rows ld apart */
static inline void mf_combine_rows_f64(const double *val, const int *idx,
                                       ptrdiff_t nnz, const double *M,
                                       ptrdiff_t ld, ptrdiff_t H, double *out)
{
    mf_combine_f64(val, idx, nnz, M, ld, H, 0, out);
}

static inline void mf_combine_rows_f32(const float *val, const int *idx,
                                       ptrdiff_t nnz, const double *M,
                                       ptrdiff_t ld, ptrdiff_t H, double *out)
{
    mf_combine_f32(val, idx, nnz, M, ld, H, 0, out);
}

/* val @ M[:, :width] for M of n rows ld apart */
static inline void mf_vector_matrix(const double *val, ptrdiff_t n,
                                    const double *M, ptrdiff_t ld,
                                    ptrdiff_t width, double *out)
{
    mf_combine_f64(val, NULL, n, M, ld, width, 0, out);
}

/* z @ M for `rows` rows of z (ldz apart), n values each, M of shape
 * (n, width): out[r, j] = sum_i z[r, i] M[i, j] (ldo apart), each summed
 * in the order of i from 0 as mf_vector_matrix does.  Each row's sums are
 * a chain of n dependent multiply-adds; MF_ROWS rows side by side are
 * independent chains.  Every row takes the same arithmetic whatever its
 * place in a group (the leftover rows take the same pass with fewer
 * rows), so a row's result does not depend on how the rows are cut. */
#if MF_VECTOR_EXTENSIONS
/* In native vectors (see MF_NATIVE_PASSES); the widest width of the
 * side-by-side passes is MF_ROWS_NV vectors and MF_VN - 1 leftover units a
 * row (the book's 10 classes: 2 vectors and 2 units with AVX, 5 vectors
 * without), the accumulators of the MF_ROWS rows in registers. */
#ifdef __AVX__
#define MF_ROWS 4
#define MF_ROWS_NV 3
#else
#define MF_ROWS 2
#define MF_ROWS_NV 6
#endif
struct mf_rows_args {
    const double *z;
    ptrdiff_t ldz, n;
    const double *M;
    ptrdiff_t width;
    double *out;
    ptrdiff_t ldo;
};
MF_INLINE void mf_rows_pass(const struct mf_rows_args *p, ptrdiff_t r0,
                            const int nr, const int nv, const int rem)
{
    const double *z = p->z + r0 * p->ldz, *M = p->M;
    const ptrdiff_t n = p->n, ldz = p->ldz, w = p->width;
    double *out = p->out + r0 * p->ldo;
    mf_vn acc[MF_ROWS][MF_ROWS_NV];
    mf_v2d acc2[MF_ROWS];
    double acc1[MF_ROWS];
    ptrdiff_t i;
    int r, a;
    MF_UNROLL
    for (r = 0; r < nr; r++) {
        MF_UNROLL
        for (a = 0; a < nv; a++)
            acc[r][a] = (mf_vn)MF_BROADCAST(0.0);
        acc2[r] = (mf_v2d){0.0, 0.0};
        acc1[r] = 0.0;
    }
    for (i = 0; i < n; i++) {
        const double *m = M + i * w;
        MF_UNROLL
        for (r = 0; r < nr; r++) {
            const double v = z[r * ldz + i];
            MF_UNROLL
            for (a = 0; a < nv; a++)
                acc[r][a] += v * *(const mf_vn *)(m + MF_VN * a);
            if (rem & 2)
                acc2[r] += v * *(const mf_v2d *)(m + MF_VN * nv);
            if (rem & 1)
                acc1[r] += v * m[MF_VN * nv + (rem & 2)];
        }
    }
    MF_UNROLL
    for (r = 0; r < nr; r++) {
        double *o = out + r * p->ldo;
        MF_UNROLL
        for (a = 0; a < nv; a++)
            *(mf_vn *)(o + MF_VN * a) = acc[r][a];
        if (rem & 2)
            *(mf_v2d *)(o + MF_VN * nv) = acc2[r];
        if (rem & 1)
            o[MF_VN * nv + (rem & 2)] = acc1[r];
    }
}

#if MF_VN > 2
#define MF_ROWS_REM_WIDE(NR, NV)                                               \
    case 2: mf_rows_pass(&args, r0, NR, NV, 2); break;                         \
    case 3: mf_rows_pass(&args, r0, NR, NV, 3); break;
#else
#define MF_ROWS_REM_WIDE(NR, NV)
#endif
#define MF_ROWS_REM(NR, NV)                                                    \
    switch (rem) {                                                             \
    case 0: mf_rows_pass(&args, r0, NR, NV, 0); break;                         \
    MF_ROWS_REM_WIDE(NR, NV)                                                   \
    default: mf_rows_pass(&args, r0, NR, NV, 1);                               \
    }
#define MF_ROWS_CASE(NR, NV) case NV: MF_ROWS_REM(NR, NV) break;
#if MF_ROWS_NV > 3
#define MF_ROWS_WIDE(NR)                                                       \
    MF_ROWS_CASE(NR, 3) MF_ROWS_CASE(NR, 4) MF_ROWS_CASE(NR, 5)
#else
#define MF_ROWS_WIDE(NR)
#endif
#define MF_ROWS_NR(NR)                                                         \
    switch (width / MF_VN) {                                                   \
    MF_ROWS_CASE(NR, 0) MF_ROWS_CASE(NR, 1) MF_ROWS_CASE(NR, 2)                \
    MF_ROWS_WIDE(NR)                                                           \
    default: MF_ROWS_REM(NR, MF_ROWS_NV)                                       \
    }

static void mf_rows_times(const double *z, ptrdiff_t ldz, ptrdiff_t rows,
                          ptrdiff_t n, const double *M, ptrdiff_t width,
                          double *out, ptrdiff_t ldo)
{
    const struct mf_rows_args args = {z, ldz, n, M, width, out, ldo};
    const int rem = (int)(width % MF_VN);
    ptrdiff_t r0;
    if (width > MF_VN * (MF_ROWS_NV + 1) - 1) {  /* too wide for side by side */
        for (r0 = 0; r0 < rows; r0++)
            mf_vector_matrix(z + r0 * ldz, n, M, width, width,
                             out + r0 * ldo);
        return;
    }
    for (r0 = 0; r0 + MF_ROWS <= rows; r0 += MF_ROWS)
        MF_ROWS_NR(MF_ROWS)
    for (; r0 < rows; r0++)
        MF_ROWS_NR(1)
}
#undef MF_ROWS_NR
#undef MF_ROWS_WIDE
#undef MF_ROWS_CASE
#undef MF_ROWS_REM
#undef MF_ROWS_REM_WIDE

#else  /* portable C */

static void mf_rows_times(const double *z, ptrdiff_t ldz, ptrdiff_t rows,
                          ptrdiff_t n, const double *M, ptrdiff_t width,
                          double *out, ptrdiff_t ldo)
{
    ptrdiff_t r;
    for (r = 0; r < rows; r++)
        mf_vector_matrix(z + r * ldz, n, M, width, width, out + r * ldo);
}

#endif

#if MF_VECTOR_EXTENSIONS


/* Native vectors (MF_VN doubles, see MF_NATIVE_PASSES) that mf_expn takes
 * at a time: side by side, their series are independent chains of
 * multiply-adds. */
#define MF_EXP_BATCH 4

/* exp of nv <= MF_EXP_BATCH native vectors: exp(x) = 2**k exp(r),
 * x = k ln2 + r, |r| <= ln2 / 2; exp(r) by its series to r**13 / 13! (truncation < 5e-18 relative); 2**k
 * applied as two factors so that no intermediate over- or underflows.
 * k is rounded by adding 1.5 * 2**52, which leaves it as an integer in the
 * low bits of the sum (AVX2 has no vector double -> int64 conversion).
 * Beyond the double range: inf above 709.78, 0 below -745.14. */
MF_INLINE void mf_expn(mf_vn *v, const int nv)
{
    const double ln2_hi = 6.93147180369123816490e-01;  /* 32 bits: k ln2_hi exact */
    const double ln2_lo = 1.90821492927058770002e-10;
    const double shifter = 6755399441055744.0;         /* 1.5 * 2**52: rounds */
    const mf_vn top = MF_BROADCAST(709.8), bottom = MF_BROADCAST(-745.2);
    const mf_vn shift = MF_BROADCAST(shifter);
    mf_vni over[MF_EXP_BATCH], under[MF_EXP_BATCH], k[MF_EXP_BATCH];
    mf_vn kd[MF_EXP_BATCH], r[MF_EXP_BATCH], p[MF_EXP_BATCH];
    int q;
    MF_UNROLL
    for (q = 0; q < nv; q++) {
        const mf_vn x = v[q];
        mf_vn xc;
        mf_vni hi, lo;
        over[q] = x > 709.782712893384;
        under[q] = x < -745.1332191019412;
        /* clamp; NaN passes through (both compares false) */
        hi = x > top;
        lo = x < bottom;
        xc = (mf_vn)((hi & (mf_vni)top) | (lo & (mf_vni)bottom)
                     | (~(hi | lo) & (mf_vni)x));
        kd[q] = xc * 1.4426950408889634 + shifter;  /* k in the low bits */
        k[q] = (mf_vni)kd[q] - (mf_vni)shift;
        kd[q] = kd[q] - shifter;
        r[q] = (xc - kd[q] * ln2_hi) - kd[q] * ln2_lo;
        p[q] = r[q] * (1.0 / 6227020800.0) + 1.0 / 479001600.0;  /* 1/13!, 1/12! */
    }
    /* the series of the nv vectors side by side: independent chains */
#define MF_EXP_STEP(c)                                                         \
    MF_UNROLL                                                                  \
    for (q = 0; q < nv; q++)                                                   \
        p[q] = p[q] * r[q] + (c);
    MF_EXP_STEP(1.0 / 39916800.0)
    MF_EXP_STEP(1.0 / 3628800.0)
    MF_EXP_STEP(1.0 / 362880.0)
    MF_EXP_STEP(1.0 / 40320.0)
    MF_EXP_STEP(1.0 / 5040.0)
    MF_EXP_STEP(1.0 / 720.0)
    MF_EXP_STEP(1.0 / 120.0)
    MF_EXP_STEP(1.0 / 24.0)
    MF_EXP_STEP(1.0 / 6.0)
    MF_EXP_STEP(0.5)
    MF_EXP_STEP(1.0)
    MF_EXP_STEP(1.0)
#undef MF_EXP_STEP
    MF_UNROLL
    for (q = 0; q < nv; q++) {
        /* k = k1 + k2, both in range; k1 = floor(k / 2), as k >> 1, by a
         * logical shift of k + 2048 > 0 (AVX2 has no 64-bit arithmetic
         * one) */
        const mf_vni k1 = (mf_vni)((mf_vnu)(k[q] + 2048) >> 1) - 1024;
        const mf_vni k2 = k[q] - k1;
        const mf_vn s1 = (mf_vn)((k1 + 1023) << 52);
        const mf_vn s2 = (mf_vn)((k2 + 1023) << 52);
        const mf_vn inf = MF_BROADCAST(INFINITY);
        mf_vn y = p[q] * s1 * s2;
        y = (mf_vn)((~over[q] & (mf_vni)y) | (over[q] & (mf_vni)inf));
        v[q] = (mf_vn)(~under[q] & (mf_vni)y);
    }
}

/* z = sigmoid(z + b), MF_EXP_BATCH native vectors at a time, the last
 * n % MF_VN units in one vector too */
static inline void mf_sigmoid_bias(double *z, const double *b, ptrdiff_t n)
{
    mf_vn e[MF_EXP_BATCH];
    ptrdiff_t j = 0, k;
    int q;
    for (; j + MF_VN * MF_EXP_BATCH <= n; j += MF_VN * MF_EXP_BATCH) {
        MF_UNROLL
        for (q = 0; q < MF_EXP_BATCH; q++)
            e[q] = -(*(const mf_vn *)(z + j + MF_VN * q)
                     + *(const mf_vn *)(b + j + MF_VN * q));
        mf_expn(e, MF_EXP_BATCH);
        MF_UNROLL
        for (q = 0; q < MF_EXP_BATCH; q++)
            *(mf_vn *)(z + j + MF_VN * q) = 1.0 / (1.0 + e[q]);
    }
    for (; j < n; j += MF_VN) {
        e[0] = (mf_vn)MF_BROADCAST(0.0);
        for (k = 0; k < MF_VN && j + k < n; k++)
            e[0][k] = -(z[j + k] + b[j + k]);
        mf_expn(e, 1);
        e[0] = 1.0 / (1.0 + e[0]);
        for (k = 0; k < MF_VN && j + k < n; k++)
            z[j + k] = e[0][k];
    }
}

/* z[r, :n] = sigmoid(z[r, :n] + b) for `rows` rows ld apart, ld at least
 * n rounded up to MF_VN (the lanes from n on become 0.5): the rows'
 * native vectors as one stream, MF_EXP_BATCH at a time, so that every
 * mf_expn has its chains side by side (a row alone leaves its last batch
 * nearly empty).  The exp is per lane: each unit's value is
 * mf_sigmoid_bias's. */
static void mf_sigmoid_rows(double *z, ptrdiff_t ld, ptrdiff_t rows,
                            const double *b, ptrdiff_t n)
{
    const ptrdiff_t full = n / MF_VN * MF_VN;
    mf_vn e[MF_EXP_BATCH], btail = MF_BROADCAST(0.0);
    const mf_vni lane = MF_LANES, every = MF_BROADCAST(-1LL);
    const mf_vni tail = lane < (long long)(n - full);
    const ptrdiff_t total = rows * ((n + MF_VN - 1) / MF_VN);
    double *dst[MF_EXP_BATCH];
    ptrdiff_t r = 0, j = 0, v0;
    int q;
    for (q = 0; full + q < n; q++)
        btail[q] = b[full + q];
    for (v0 = 0; v0 < total; v0 += MF_EXP_BATCH) {
        MF_UNROLL
        for (q = 0; q < MF_EXP_BATCH; q++) {
            if (v0 + q < total) {
                const int whole = j < full;
                const mf_vn bj = whole ? *(const mf_vn *)(b + j) : btail;
                dst[q] = z + r * ld + j;
                e[q] = (mf_vn)((mf_vni)(-(*(const mf_vn *)dst[q] + bj))
                               & (whole ? every : tail));
                j += MF_VN;
                if (j >= n) {
                    j = 0;
                    r++;
                }
            } else {  /* past the end: the last vector again */
                dst[q] = dst[q - 1];
                e[q] = e[q - 1];
            }
        }
        mf_expn(e, MF_EXP_BATCH);
        MF_UNROLL
        for (q = 0; q < MF_EXP_BATCH; q++)
            *(mf_vn *)dst[q] = 1.0 / (1.0 + e[q]);
    }
}

/* exp(a[k] - m) in place for k < K, MF_EXP_BATCH native vectors at a
 * time; returns their sum, summed in the order of k. */
static inline double mf_exp_shifted(double *a, ptrdiff_t K, double m)
{
    mf_vn v[MF_EXP_BATCH];
    ptrdiff_t k0, k;
    double s = 0.0;
    int q;
    for (k0 = 0; k0 < K; k0 += MF_VN * MF_EXP_BATCH) {
        const ptrdiff_t n = K - k0 < MF_VN * MF_EXP_BATCH ? K - k0
                                                          : MF_VN * MF_EXP_BATCH;
        MF_UNROLL
        for (q = 0; q < MF_EXP_BATCH; q++)
            v[q] = (mf_vn)MF_BROADCAST(0.0);
        for (k = 0; k < n; k++)
            v[k / MF_VN][k % MF_VN] = a[k0 + k] - m;
        mf_expn(v, MF_EXP_BATCH);
        for (k = 0; k < n; k++) {
            a[k0 + k] = v[k / MF_VN][k % MF_VN];
            s += a[k0 + k];
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

static void mf_sigmoid_rows(double *z, ptrdiff_t ld, ptrdiff_t rows,
                            const double *b, ptrdiff_t n)
{
    ptrdiff_t r;
    for (r = 0; r < rows; r++)
        mf_sigmoid_bias(z + r * ld, b, n);
}

#endif

/* The nonzero entries of a dense row x[0 ... D-1]: values (as doubles) and
 * columns at val[0 ... nnz-1], idx[0 ... nnz-1]; returns nnz.  Places
 * beyond the nonzeros are written too (up to 7), within x's D places: a
 * chunk of pixels is written whole at the
 * next free place, which only its nonzeros advance (zeros and nonzeros
 * alternate unpredictably, a branch per pixel would often be mispredicted).
 *
 * With AVX2 (x86 intrinsics: AVX2 has no compress instruction that the
 * compiler could use), each chunk of 8 floats or 4 doubles is packed by a
 * permutation: the nonzero lanes (-0.0 is zero, NaN is not) first, in
 * order, the permutation looked up by the chunk's lane mask.  Otherwise,
 * chunks that are all zero (81% of MNIST pixels are) are skipped by one
 * test of their bits, the sign bits masked, and the others written pixel
 * by pixel. */
#if MF_VECTOR_EXTENSIONS && defined(__AVX2__)
#include <immintrin.h>

/* for each mask of 8 lanes, the indices of its set lanes in order (a byte
 * each, the lowest first) */
static const unsigned long long mf_pack_lanes[256] = {
    0x0000000000000000ULL, 0x0000000000000000ULL, 0x0000000000000001ULL,
    0x0000000000000100ULL, 0x0000000000000002ULL, 0x0000000000000200ULL,
    0x0000000000000201ULL, 0x0000000000020100ULL, 0x0000000000000003ULL,
    0x0000000000000300ULL, 0x0000000000000301ULL, 0x0000000000030100ULL,
    0x0000000000000302ULL, 0x0000000000030200ULL, 0x0000000000030201ULL,
    0x0000000003020100ULL, 0x0000000000000004ULL, 0x0000000000000400ULL,
    0x0000000000000401ULL, 0x0000000000040100ULL, 0x0000000000000402ULL,
    0x0000000000040200ULL, 0x0000000000040201ULL, 0x0000000004020100ULL,
    0x0000000000000403ULL, 0x0000000000040300ULL, 0x0000000000040301ULL,
    0x0000000004030100ULL, 0x0000000000040302ULL, 0x0000000004030200ULL,
    0x0000000004030201ULL, 0x0000000403020100ULL, 0x0000000000000005ULL,
    0x0000000000000500ULL, 0x0000000000000501ULL, 0x0000000000050100ULL,
    0x0000000000000502ULL, 0x0000000000050200ULL, 0x0000000000050201ULL,
    0x0000000005020100ULL, 0x0000000000000503ULL, 0x0000000000050300ULL,
    0x0000000000050301ULL, 0x0000000005030100ULL, 0x0000000000050302ULL,
    0x0000000005030200ULL, 0x0000000005030201ULL, 0x0000000503020100ULL,
    0x0000000000000504ULL, 0x0000000000050400ULL, 0x0000000000050401ULL,
    0x0000000005040100ULL, 0x0000000000050402ULL, 0x0000000005040200ULL,
    0x0000000005040201ULL, 0x0000000504020100ULL, 0x0000000000050403ULL,
    0x0000000005040300ULL, 0x0000000005040301ULL, 0x0000000504030100ULL,
    0x0000000005040302ULL, 0x0000000504030200ULL, 0x0000000504030201ULL,
    0x0000050403020100ULL, 0x0000000000000006ULL, 0x0000000000000600ULL,
    0x0000000000000601ULL, 0x0000000000060100ULL, 0x0000000000000602ULL,
    0x0000000000060200ULL, 0x0000000000060201ULL, 0x0000000006020100ULL,
    0x0000000000000603ULL, 0x0000000000060300ULL, 0x0000000000060301ULL,
    0x0000000006030100ULL, 0x0000000000060302ULL, 0x0000000006030200ULL,
    0x0000000006030201ULL, 0x0000000603020100ULL, 0x0000000000000604ULL,
    0x0000000000060400ULL, 0x0000000000060401ULL, 0x0000000006040100ULL,
    0x0000000000060402ULL, 0x0000000006040200ULL, 0x0000000006040201ULL,
    0x0000000604020100ULL, 0x0000000000060403ULL, 0x0000000006040300ULL,
    0x0000000006040301ULL, 0x0000000604030100ULL, 0x0000000006040302ULL,
    0x0000000604030200ULL, 0x0000000604030201ULL, 0x0000060403020100ULL,
    0x0000000000000605ULL, 0x0000000000060500ULL, 0x0000000000060501ULL,
    0x0000000006050100ULL, 0x0000000000060502ULL, 0x0000000006050200ULL,
    0x0000000006050201ULL, 0x0000000605020100ULL, 0x0000000000060503ULL,
    0x0000000006050300ULL, 0x0000000006050301ULL, 0x0000000605030100ULL,
    0x0000000006050302ULL, 0x0000000605030200ULL, 0x0000000605030201ULL,
    0x0000060503020100ULL, 0x0000000000060504ULL, 0x0000000006050400ULL,
    0x0000000006050401ULL, 0x0000000605040100ULL, 0x0000000006050402ULL,
    0x0000000605040200ULL, 0x0000000605040201ULL, 0x0000060504020100ULL,
    0x0000000006050403ULL, 0x0000000605040300ULL, 0x0000000605040301ULL,
    0x0000060504030100ULL, 0x0000000605040302ULL, 0x0000060504030200ULL,
    0x0000060504030201ULL, 0x0006050403020100ULL, 0x0000000000000007ULL,
    0x0000000000000700ULL, 0x0000000000000701ULL, 0x0000000000070100ULL,
    0x0000000000000702ULL, 0x0000000000070200ULL, 0x0000000000070201ULL,
    0x0000000007020100ULL, 0x0000000000000703ULL, 0x0000000000070300ULL,
    0x0000000000070301ULL, 0x0000000007030100ULL, 0x0000000000070302ULL,
    0x0000000007030200ULL, 0x0000000007030201ULL, 0x0000000703020100ULL,
    0x0000000000000704ULL, 0x0000000000070400ULL, 0x0000000000070401ULL,
    0x0000000007040100ULL, 0x0000000000070402ULL, 0x0000000007040200ULL,
    0x0000000007040201ULL, 0x0000000704020100ULL, 0x0000000000070403ULL,
    0x0000000007040300ULL, 0x0000000007040301ULL, 0x0000000704030100ULL,
    0x0000000007040302ULL, 0x0000000704030200ULL, 0x0000000704030201ULL,
    0x0000070403020100ULL, 0x0000000000000705ULL, 0x0000000000070500ULL,
    0x0000000000070501ULL, 0x0000000007050100ULL, 0x0000000000070502ULL,
    0x0000000007050200ULL, 0x0000000007050201ULL, 0x0000000705020100ULL,
    0x0000000000070503ULL, 0x0000000007050300ULL, 0x0000000007050301ULL,
    0x0000000705030100ULL, 0x0000000007050302ULL, 0x0000000705030200ULL,
    0x0000000705030201ULL, 0x0000070503020100ULL, 0x0000000000070504ULL,
    0x0000000007050400ULL, 0x0000000007050401ULL, 0x0000000705040100ULL,
    0x0000000007050402ULL, 0x0000000705040200ULL, 0x0000000705040201ULL,
    0x0000070504020100ULL, 0x0000000007050403ULL, 0x0000000705040300ULL,
    0x0000000705040301ULL, 0x0000070504030100ULL, 0x0000000705040302ULL,
    0x0000070504030200ULL, 0x0000070504030201ULL, 0x0007050403020100ULL,
    0x0000000000000706ULL, 0x0000000000070600ULL, 0x0000000000070601ULL,
    0x0000000007060100ULL, 0x0000000000070602ULL, 0x0000000007060200ULL,
    0x0000000007060201ULL, 0x0000000706020100ULL, 0x0000000000070603ULL,
    0x0000000007060300ULL, 0x0000000007060301ULL, 0x0000000706030100ULL,
    0x0000000007060302ULL, 0x0000000706030200ULL, 0x0000000706030201ULL,
    0x0000070603020100ULL, 0x0000000000070604ULL, 0x0000000007060400ULL,
    0x0000000007060401ULL, 0x0000000706040100ULL, 0x0000000007060402ULL,
    0x0000000706040200ULL, 0x0000000706040201ULL, 0x0000070604020100ULL,
    0x0000000007060403ULL, 0x0000000706040300ULL, 0x0000000706040301ULL,
    0x0000070604030100ULL, 0x0000000706040302ULL, 0x0000070604030200ULL,
    0x0000070604030201ULL, 0x0007060403020100ULL, 0x0000000000070605ULL,
    0x0000000007060500ULL, 0x0000000007060501ULL, 0x0000000706050100ULL,
    0x0000000007060502ULL, 0x0000000706050200ULL, 0x0000000706050201ULL,
    0x0000070605020100ULL, 0x0000000007060503ULL, 0x0000000706050300ULL,
    0x0000000706050301ULL, 0x0000070605030100ULL, 0x0000000706050302ULL,
    0x0000070605030200ULL, 0x0000070605030201ULL, 0x0007060503020100ULL,
    0x0000000007060504ULL, 0x0000000706050400ULL, 0x0000000706050401ULL,
    0x0000070605040100ULL, 0x0000000706050402ULL, 0x0000070605040200ULL,
    0x0000070605040201ULL, 0x0007060504020100ULL, 0x0000000706050403ULL,
    0x0000070605040300ULL, 0x0000070605040301ULL, 0x0007060504030100ULL,
    0x0000070605040302ULL, 0x0007060504030200ULL, 0x0007060504030201ULL,
    0x0706050403020100ULL,
};

/* the permutation of 32-bit lanes that packs the lanes of mask m */
static inline __m256i mf_packing(int m)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)&mf_pack_lanes[m]));
}

static inline ptrdiff_t mf_gather_nonzeros_f32(const float *x, ptrdiff_t D,
                                               double *val, int *idx)
{
    const __m256 zero = _mm256_setzero_ps();
    ptrdiff_t i = 0, nnz = 0;
    for (; i + 8 <= D; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const int m = _mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
        const __m256i p = mf_packing(m);
        const __m256 packed = _mm256_permutevar8x32_ps(v, p);
        _mm256_storeu_pd(val + nnz, _mm256_cvtps_pd(_mm256_castps256_ps128(packed)));
        _mm256_storeu_pd(val + nnz + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(packed, 1)));
        _mm256_storeu_si256((__m256i *)(idx + nnz),
                            _mm256_add_epi32(p, _mm256_set1_epi32((int)i)));
        nnz += __builtin_popcount((unsigned)m);
    }
    for (; i < D; i++) {
        val[nnz] = (double)x[i];
        idx[nnz] = (int)i;
        nnz += x[i] != 0;
    }
    return nnz;
}

static inline ptrdiff_t mf_gather_nonzeros_f64(const double *x, ptrdiff_t D,
                                               double *val, int *idx)
{
    const __m256d zero = _mm256_setzero_pd();
    ptrdiff_t i = 0, nnz = 0;
    for (; i + 4 <= D; i += 4) {
        const __m256d v = _mm256_loadu_pd(x + i);
        const int m = _mm256_movemask_pd(_mm256_cmp_pd(v, zero, _CMP_NEQ_UQ));
        /* the lanes of m as pairs of 32-bit lanes */
        const __m256i q = mf_packing(m);
        const __m256i qq = _mm256_permutevar8x32_epi32(
            q, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
        const __m256i p = _mm256_add_epi32(
            _mm256_add_epi32(qq, qq), _mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1));
        _mm256_storeu_pd(val + nnz, _mm256_castsi256_pd(
            _mm256_permutevar8x32_epi32(_mm256_castpd_si256(v), p)));
        _mm_storeu_si128((__m128i *)(idx + nnz),
                         _mm_add_epi32(_mm256_castsi256_si128(q),
                                       _mm_set1_epi32((int)i)));
        nnz += __builtin_popcount((unsigned)m);
    }
    for (; i < D; i++) {
        val[nnz] = x[i];
        idx[nnz] = (int)i;
        nnz += x[i] != 0;
    }
    return nnz;
}
#define MF_PACKED_GATHER 1
#endif

#ifndef MF_PACKED_GATHER
#define MF_DEFINE_GATHER(SUFFIX, VAL_T, CHUNK, MASK)                           \
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
}

MF_DEFINE_GATHER(f32, float, 8, 0x7fffffff7fffffffULL)
MF_DEFINE_GATHER(f64, double, 4, 0x7fffffffffffffffULL)
#endif

/* How many nonzeros a dense row has: a loop the compiler vectorises (a
 * compare per pixel, no branch). */
#define MF_DEFINE_COUNT(SUFFIX, VAL_T)                                         \
static inline ptrdiff_t mf_count_nonzeros_##SUFFIX(const VAL_T *x,             \
                                                   ptrdiff_t D)                \
{                                                                              \
    ptrdiff_t i;                                                               \
    int nnz = 0;                                                               \
    for (i = 0; i < D; i++)                                                    \
        nnz += x[i] != 0;                                                      \
    return nnz;                                                                \
}
MF_DEFINE_COUNT(f32, float)
MF_DEFINE_COUNT(f64, double)

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

/* Whether all of x[0 ... n-1] are finite (the input checks,
 * src_cython/_checks.pyx).  A value is NaN or infinite when its exponent
 * bits are all ones; adding one unit of the exponent to those bits then
 * carries into the sign bit, which no other exponent reaches.  The OR of
 * the sums over the values has its top bit set when one is not finite:
 * integer AND, ADD and OR, in MF_SCAN_ACC native vectors side by side, so
 * that the loads, not the chain of ORs, set the pace. */
#define MF_SCAN_ACC 4
#if MF_VECTOR_EXTENSIONS
/* native vectors (GCC splits wider ones through memory without AVX) */
#ifdef __AVX__
#define MF_SCAN_BYTES 32
#else
#define MF_SCAN_BYTES 16
#endif
typedef unsigned int mf_scan32 __attribute__((vector_size(MF_SCAN_BYTES), aligned(4), may_alias));
typedef unsigned long long mf_scan64 __attribute__((vector_size(MF_SCAN_BYTES), aligned(8), may_alias));
#define MF_DEFINE_ALL_FINITE(SUFFIX, UINT, VEC, LANES, EXP, UNIT, TOP)         \
static int mf_all_finite_##SUFFIX(const void *x, ptrdiff_t n)                  \
{                                                                              \
    const UINT *u = (const UINT *)x;                                           \
    const VEC e = (VEC){0} + (UINT)(EXP), one = (VEC){0} + (UINT)(UNIT);       \
    VEC acc[MF_SCAN_ACC];                                                      \
    UINT a = 0;                                                                \
    ptrdiff_t i = 0;                                                           \
    int q, l;                                                                  \
    MF_UNROLL                                                                  \
    for (q = 0; q < MF_SCAN_ACC; q++)                                          \
        acc[q] = (VEC){0};                                                     \
    for (; i + MF_SCAN_ACC * (LANES) <= n; i += MF_SCAN_ACC * (LANES)) {       \
        MF_UNROLL                                                              \
        for (q = 0; q < MF_SCAN_ACC; q++)                                      \
            acc[q] |= (*(const VEC *)(u + i + q * (LANES)) & e) + one;         \
    }                                                                          \
    MF_UNROLL                                                                  \
    for (q = 1; q < MF_SCAN_ACC; q++)                                          \
        acc[0] |= acc[q];                                                      \
    for (l = 0; l < (LANES); l++)                                              \
        a |= acc[0][l];                                                        \
    for (; i < n; i++)                                                         \
        a |= (u[i] & (UINT)(EXP)) + (UINT)(UNIT);                              \
    return !(a >> (TOP));                                                      \
}
MF_DEFINE_ALL_FINITE(f32, unsigned int, mf_scan32, MF_SCAN_BYTES / 4,
                     MF_EXP_f32, MF_UNIT_f32, MF_TOP_f32)
MF_DEFINE_ALL_FINITE(f64, unsigned long long, mf_scan64, MF_SCAN_BYTES / 8,
                     MF_EXP_f64, MF_UNIT_f64, MF_TOP_f64)
#else  /* portable C */
#define MF_DEFINE_ALL_FINITE(SUFFIX, UINT, EXP, UNIT, TOP)                     \
static int mf_all_finite_##SUFFIX(const void *x, ptrdiff_t n)                  \
{                                                                              \
    const UINT *u = (const UINT *)x;                                           \
    UINT a = 0;                                                                \
    ptrdiff_t i;                                                               \
    for (i = 0; i < n; i++)                                                    \
        a |= (u[i] & (UINT)(EXP)) + (UINT)(UNIT);                              \
    return !(a >> (TOP));                                                      \
}
MF_DEFINE_ALL_FINITE(f32, unsigned int, MF_EXP_f32, MF_UNIT_f32, MF_TOP_f32)
MF_DEFINE_ALL_FINITE(f64, unsigned long long, MF_EXP_f64, MF_UNIT_f64,
                     MF_TOP_f64)
#endif
#undef MF_DEFINE_ALL_FINITE

/* The numerical gradient's central differences of one row for a column
 * of W1 or b1 (_numerical.pyx, hidden_rows), when every move is small
 * enough for the series (simd_rows.h): Tiny (logit moves <= 2**-17:
 * expm1 of degree 3, log1p of degree 4) and Series (<= 2**-10: degrees 5
 * and 8).  For every unit j, with the row's table u (simd_rows.h):
 *
 *   q = expm1(-v d),  dz = -s c q / (1 + c q)       (the unit's move;
 *                     a ReLU unit's: relu(a + v d) - relu(a), or v d)
 *   N = sum_k e_k (expm1(dz w_t) - expm1(dz w_k))    (S (p' - p) / p)
 *   D = sum_k e_k expm1(dz w_k)                      (S' = S + D)
 *   r = P N / (S + D)                                ((p' - p) / (p + eps))
 *   acc[j] += -log1p((r+ - r-) / (1 + r-))
 *
 * N and D are the expm1 series of the K logit moves summed over k, in
 * powers of dz (the table's sums); the two moves +-h of a sigmoid unit
 * share one division, and the ratio, written over one denominator,
 *   (r+ - r-) / (1 + r-) = P (N+ (S + D-) - N- (S + D+))
 *                          / ((S + D+) (S + D- + P N-)),
 * another: no cancellation (N+ and N- have opposite signs, S >= 1 and
 * |D|, |P N| << 1).  The units run in vectors of MF_HN doubles: the
 * native vector of the compilation (MF_UNIT_PAD is a multiple of each;
 * there is no 512-bit variant: docs/performance.md, "Still to do"). */
#if MF_VECTOR_EXTENSIONS
#if defined(__AVX__)
#define MF_HN 4
#else
#define MF_HN 2
#endif
typedef double mf_hv __attribute__((vector_size(8 * MF_HN), aligned(8 * MF_HN)));
typedef long long mf_hm __attribute__((vector_size(8 * MF_HN), aligned(8 * MF_HN)));
#define MF_HLOAD(p) (*(const mf_hv *)(p))
#define MF_HSPLAT(c) ((mf_hv){0} + (c))
/* relu(x) (a NaN stays NaN), and the lanes of x where m is set, else y */
#define MF_HRELU(x) ((mf_hv)((mf_hm)(x) & ~((x) <= MF_HSPLAT(0.0))))
#define MF_HSELECT(m, x, y) ((mf_hv)(((mf_hm)(x) & (m)) | ((mf_hm)(y) & ~(m))))
/* mf_relu_move (simd_rows.h) lane by lane */
#define MF_HRELU_MOVE(a, da) MF_HSELECT(                                       \
    ((a) > MF_HSPLAT(0.0)) & (((a) + (da)) > MF_HSPLAT(0.0)), (da),             \
    MF_HRELU((a) + (da)) - MF_HRELU(a))
#else
#define MF_HN 1
typedef double mf_hv;
#define MF_HLOAD(p) (*(p))
#define MF_HSPLAT(c) (c)
#define MF_HRELU_MOVE(a, da) mf_relu_move((a), (da))
#endif
/* Two vectors of units at a time with AVX: each one's chain (the moves,
 * the sums, the ratio's division, the log1p) is long, the chains
 * independent (the 2-double baseline gained nothing from it). */
#if defined(__AVX__) && defined(__clang__)
#define MF_UNROLL_UNITS _Pragma("clang loop unroll_count(2)")
#elif defined(__AVX__) && defined(__GNUC__)
#define MF_UNROLL_UNITS _Pragma("GCC unroll 2")
#else
#define MF_UNROLL_UNITS
#endif

/* sum_n c_n x^n of the table's terms c (H apart), n = 1 ... DEGREE */
#define MF_ROW_SUM3(c, H, x) ((x) * (MF_HLOAD(c) + (x) * (MF_HLOAD((c) + (H))   \
    + (x) * MF_HLOAD((c) + 2 * (H)))))
#define MF_ROW_SUM5(c, H, x) ((x) * (MF_HLOAD(c) + (x) * (MF_HLOAD((c) + (H))   \
    + (x) * (MF_HLOAD((c) + 2 * (H)) + (x) * (MF_HLOAD((c) + 3 * (H))          \
    + (x) * MF_HLOAD((c) + 4 * (H)))))))

/* The moves zp, zm of the units j ... j + MF_HN - 1 of a row when their
 * pre-activations move by v dp and v dm: a sigmoid unit's by the exact
 * algebra (one division for both), a ReLU unit's by mf_relu_move. */
#define MF_SIGMOID_MOVES(r, j, v, zp, zm) do {                                \
    const mf_hv c = MF_HLOAD((r)->u + MF_ROW_C * (r)->H + (j));               \
    const mf_hv qp = MF_EXPM1_DEG5(-((v) * MF_HLOAD((r)->dp + (j))));          \
    const mf_hv qm = MF_EXPM1_DEG5(-((v) * MF_HLOAD((r)->dm + (j))));          \
    const mf_hv ep = 1.0 + c * qp, em = 1.0 + c * qm;                          \
    const mf_hv f = -MF_HLOAD((r)->u + MF_ROW_SC * (r)->H + (j)) / (ep * em);  \
    (zp) = qp * em * f;                                                        \
    (zm) = qm * ep * f;                                                        \
} while (0)
#define MF_RELU_MOVES(r, j, v, zp, zm) do {                                   \
    const mf_hv a = MF_HLOAD((r)->u + MF_ROW_A * (r)->H + (j));               \
    (zp) = MF_HRELU_MOVE(a, (v) * MF_HLOAD((r)->dp + (j)));                    \
    (zm) = MF_HRELU_MOVE(a, (v) * MF_HLOAD((r)->dm + (j)));                    \
} while (0)

#define MF_DEFINE_HIDDEN_ROW(NAME, SUM, LOG1P, MOVES)                          \
static void mf_hidden_row_##NAME(const struct mf_hidden_row *r, double *acc) \
{                                                                              \
    const ptrdiff_t H = r->H;                                                  \
    const double *G = r->u + MF_ROW_G * H, *M = r->u + MF_ROW_M * H;           \
    const mf_hv v = MF_HSPLAT(r->v), S = MF_HSPLAT(r->S), P = MF_HSPLAT(r->P);\
    ptrdiff_t j;                                                               \
    MF_UNROLL_UNITS                                                            \
    for (j = 0; j < H; j += MF_HN) {                                           \
        mf_hv zp, zm;                                                          \
        MOVES(r, j, v, zp, zm);                                                \
        {                                                                      \
            const mf_hv Np = SUM(G + j, H, zp), Nm = SUM(G + j, H, zm);        \
            const mf_hv sp = S + SUM(M + j, H, zp);                            \
            const mf_hv sm = S + SUM(M + j, H, zm);                            \
            const mf_hv ratio = P * (Np * sm - Nm * sp) / (sp * (sm + P * Nm));\
            *(mf_hv *)(acc + j) += -LOG1P(ratio);                              \
        }                                                                      \
    }                                                                          \
}
MF_DEFINE_HIDDEN_ROW(tiny, MF_ROW_SUM3, MF_LOG1P_DEG4, MF_SIGMOID_MOVES)
MF_DEFINE_HIDDEN_ROW(series, MF_ROW_SUM5, MF_LOG1P_DEG8, MF_SIGMOID_MOVES)
MF_DEFINE_HIDDEN_ROW(relu_tiny, MF_ROW_SUM3, MF_LOG1P_DEG4, MF_RELU_MOVES)
MF_DEFINE_HIDDEN_ROW(relu_series, MF_ROW_SUM5, MF_LOG1P_DEG8, MF_RELU_MOVES)

/* The table of this compilation (see simd_rows.h). */
MF_HIDDEN const struct mf_ops MF_OPS = {
    MF_OPS_NAME,
    mf_combine_rows_f64,
    mf_combine_rows_f32,
    mf_vector_matrix,
    mf_rows_times,
    mf_block_mask_f32,
    mf_block_mask_f64,
    mf_pixels_times_f32,
    mf_pixels_times_f64,
    mf_pixels_t_times_f32,
    mf_pixels_t_times_f64,
    mf_pixels_times32_f32,
    mf_pixels_times32_f64,
    mf_row_l1_f32,
    mf_row_l1_f64,
    mf_gather_nonzeros_f32,
    mf_gather_nonzeros_f64,
    mf_count_nonzeros_f32,
    mf_count_nonzeros_f64,
    mf_combine_rows32,
    mf_combine_coded32,
    mf_sigmoid32,
    mf_output32,
    mf_exp_shifted,
    mf_sigmoid_bias,
    mf_sigmoid_rows,
    mf_update_in_place,
    mf_all_finite_f32,
    mf_all_finite_f64,
    mf_hidden_row_tiny,
    mf_hidden_row_series,
    mf_hidden_row_relu_tiny,
    mf_hidden_row_relu_series,
};
