/* Sparse combinations of matrix rows, the inner loop of x @ W1 and x.T @ dz1:
 *
 *     out[j] = sum_n val[n] * M[idx[n] * H + j]      for j < H
 *
 * Written with GCC/Clang vector extensions (no intrinsics, no -march): a
 * block of accumulators lives in vector registers while the loop streams
 * over the nonzeros; the compiler lowers the 4-double vectors to SSE2 pairs
 * in the baseline build and to AVX2+FMA registers in the _avx2 variants.
 * Plain C loops on other compilers.  Each out[j] is summed in the order of
 * n, as a plain loop would.
 */
#ifndef MNIST_FAST_COMBINE_ROWS_H
#define MNIST_FAST_COMBINE_ROWS_H

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

#endif
