/* The SIMD row helpers of the kernels, dispatched at import.
 *
 * The helpers themselves are in simd_rows.c, which setup.py compiles into
 * one C object per variant, each defining a table of pointers to its
 * helpers (struct mf_ops): mf_ops_baseline always, and mf_ops_avx2 (the
 * same source with -mavx2 -mfma) when the compiler can build it, which
 * setup.py tells the modules by MF_HAVE_AVX2=1.  Both objects are linked
 * into every kernel module; the tables are hidden, so each module has its
 * own and nothing clashes between modules.
 *
 * Each module that includes this header (through _common.pxd) has its own
 * mf_active, the table in use.  _simd.pxi sets it at import to the best
 * variant this CPU runs (mf_use_best) and lets Python switch it
 * (use_simd); the mf_* functions below keep the names and signatures the
 * Cython code has always called, and call through mf_active.
 *
 * On compilers without GCC/Clang vector extensions, or not on x86, there
 * is only the baseline table (plain C loops where there are no vector
 * extensions).
 */
#ifndef MNIST_FAST_SIMD_ROWS_H
#define MNIST_FAST_SIMD_ROWS_H

#include <stddef.h>

#if (defined(__GNUC__) || defined(__clang__)) && !defined(MF_PORTABLE_C)
#define MF_VECTOR_EXTENSIONS 1
#else
#define MF_VECTOR_EXTENSIONS 0
#endif

#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32) && !defined(__CYGWIN__)
#define MF_HIDDEN __attribute__((visibility("hidden")))
#else
#define MF_HIDDEN
#endif

#ifndef MF_HAVE_AVX2
#define MF_HAVE_AVX2 0
#endif

/* Series of expm1 and log1p, truncated where the next term is below 2**-55
 * relative to the result, for the argument ranges stated (the numerical
 * gradient's, src_cython/_numerical.pyx; macros, so that they serve scalars
 * and vectors alike):
 *   MF_EXPM1_DEG5(x)  expm1(x) for |x| <= 2**-10
 *   MF_EXPM1_DEG3(x)  expm1(x) for |x| <= 2**-17
 *   MF_LOG1P_DEG8(x)  log1p(x) for |x| <= 2**-7
 *   MF_LOG1P_DEG4(x)  log1p(x) for |x| <= 2**-14 */
#define MF_EXPM1_DEG5(x) ((x) * (1.0 + (x) * (0.5 + (x) * (1.0 / 6.0 + (x) \
    * (1.0 / 24.0 + (x) * (1.0 / 120.0))))))
#define MF_EXPM1_DEG3(x) ((x) * (1.0 + (x) * (0.5 + (x) * (1.0 / 6.0))))
#define MF_LOG1P_DEG8(x) ((x) * (1.0 - (x) * (0.5 - (x) * (1.0 / 3.0 - (x) \
    * (0.25 - (x) * (0.2 - (x) * (1.0 / 6.0 - (x) * (1.0 / 7.0 - (x) * 0.125))))))))
#define MF_LOG1P_DEG4(x) ((x) * (1.0 - (x) * (0.5 - (x) * (1.0 / 3.0 - (x) * 0.25))))

/* The book's ReLU (ch. 5: a where a > 0, else 0; a NaN stays NaN). */
static inline double mf_relu(double a) { return a <= 0.0 ? 0.0 : a; }

/* How a ReLU unit moves when its pre-activation a moves by da (the
 * numerical gradient's, src_cython/_numerical.pyx): da itself where a and
 * a + da are both > 0, else relu(a + da) - relu(a), the difference of
 * the two forward passes at the kink.  |result| <= |da|. */
static inline double mf_relu_move(double a, double da)
{
    const double moved = a + da;
    if (a > 0.0 && moved > 0.0)
        return da;
    return mf_relu(moved) - mf_relu(a);
}

/* Hidden units of a row the numerical gradient's libm case moves together
 * (src_cython/_numerical.pyx): its temporaries are local arrays of this
 * size. */
#define MF_UNIT_BLOCK 16

/* The numerical gradient's series rows (simd_rows.c) take H units padded
 * to a multiple of MF_UNIT_PAD, in arrays aligned to MF_ROW_ALIGN bytes:
 * whole vectors of every width, the padding 0 (a unit that no step moves
 * and that adds exactly 0). */
#define MF_UNIT_PAD 8
#define MF_ROW_ALIGN 64

/* The table of one row b of the batch that the series rows read, MF_ROW_TERMS
 * arrays of H (padded) values each, for every hidden unit j, with
 * e_k = exp(a2[b, k] - max a2[b]) and w_k = W2[j, k]:
 *   MF_ROW_SC  s c = sigmoid(a1) (1 - sigmoid(a1))   (sigmoid)
 *   MF_ROW_C   c = 1 - sigmoid(a1)                    (sigmoid)
 *   MF_ROW_A   a1                                     (ReLU)
 *   MF_ROW_G + n - 1   sum_{k != t} e_k (w_t^n - w_k^n) / n!   n = 1 ... 5
 *   MF_ROW_M + n - 1   sum_k e_k w_k^n / n!                     n = 1 ... 5
 * so that, for a move dz of the unit (logit k moves by dz w_k, |dz w_k|
 * within the expm1 series' range), the row's
 *   sum_k e_k (expm1(dz w_t) - expm1(dz w_k)) = dz (G1 + dz (G2 + ...))
 *   D = sum_k e_k expm1(dz w_k)               = dz (M1 + dz (M2 + ...))
 * are the expm1 series summed over k, in another order. */
#define MF_ROW_SC 0
#define MF_ROW_C 1
#define MF_ROW_A 0
#define MF_ROW_G 2
#define MF_ROW_M 7
#define MF_ROW_TERMS 12
#define MF_ROW_DEGREE 5

/* One row of the numerical gradient's central differences for a column of
 * W1 (or b1): its pre-activations move by v * dp[j] and v * dm[j]. */
struct mf_hidden_row {
    double v;               /* x[b, i] (1 for b1) */
    const double *dp, *dm;  /* (H,) the applied perturbations +h, -h */
    const double *u;        /* (MF_ROW_TERMS, H) the row's table */
    double S, P;            /* sum of e, p_t / (p_t + guard) */
    ptrdiff_t H;            /* the units, padded (a multiple of MF_UNIT_PAD) */
};

/* A row of compact rows (_rows.pxd) coded by a float table: its n-th
 * nonzero is table[code[n]] in column col[n]. */
struct mf_coded_row {
    const unsigned char *code;
    const unsigned short *col;
    const float *table;
};

/* A block of at most 64 rows of a batch (rows ldx values apart from x),
 * pixel by pixel: bit r of mask[i] is set when x[r ldx + i] != 0.  The
 * float32 screen's pass (mf_pixels_times32_*) also requests the
 * ahead_lines cache lines from ahead into L2 (the next block's rows; 0
 * for none), a share before each pair of pixels: so the next block's
 * loads wait on memory while this block's arithmetic runs, not before it
 * (a hint: without the vector extensions, nothing is requested). */
struct mf_pixels_f32 {
    const unsigned long long *mask;
    const float *x;
    ptrdiff_t ldx;
    const char *ahead;
    ptrdiff_t ahead_lines;
};
struct mf_pixels_f64 {
    const unsigned long long *mask;
    const double *x;
    ptrdiff_t ldx;
    const char *ahead;
    ptrdiff_t ahead_lines;
};

/* One variant of the helpers (what each does: see _common.pxd). */
struct mf_ops {
    const char *name;
    void (*combine_rows_f64)(const double *val, const int *idx, ptrdiff_t nnz,
                             const double *M, ptrdiff_t ld, ptrdiff_t H,
                             double *out);
    void (*combine_rows_f32)(const float *val, const int *idx, ptrdiff_t nnz,
                             const double *M, ptrdiff_t ld, ptrdiff_t H,
                             double *out);
    void (*vector_matrix)(const double *val, ptrdiff_t n, const double *M,
                          ptrdiff_t ld, ptrdiff_t width, double *out);
    void (*rows_times)(const double *z, ptrdiff_t ldz, ptrdiff_t rows,
                       ptrdiff_t n, const double *M, ptrdiff_t width,
                       double *out, ptrdiff_t ldo);
    int (*block_mask_f32)(const float *x, ptrdiff_t ldx, int n, ptrdiff_t D,
                          unsigned long long *mask);
    int (*block_mask_f64)(const double *x, ptrdiff_t ldx, int n,
                          ptrdiff_t D, unsigned long long *mask);
    void (*pixels_times_f32)(const struct mf_pixels_f32 *c, ptrdiff_t i0,
                             ptrdiff_t i1, const double *W, ptrdiff_t ldw,
                             ptrdiff_t width, double *A, ptrdiff_t lda);
    void (*pixels_times_f64)(const struct mf_pixels_f64 *c, ptrdiff_t i0,
                             ptrdiff_t i1, const double *W, ptrdiff_t ldw,
                             ptrdiff_t width, double *A, ptrdiff_t lda);
    void (*pixels_t_times_f32)(const struct mf_pixels_f32 *c, ptrdiff_t i0,
                               ptrdiff_t i1, const double *M, ptrdiff_t ldm,
                               ptrdiff_t width, int add, double *O,
                               ptrdiff_t ldo);
    void (*pixels_t_times_f64)(const struct mf_pixels_f64 *c, ptrdiff_t i0,
                               ptrdiff_t i1, const double *M, ptrdiff_t ldm,
                               ptrdiff_t width, int add, double *O,
                               ptrdiff_t ldo);
    void (*pixels_times32_f32)(const struct mf_pixels_f32 *c, ptrdiff_t i0,
                               ptrdiff_t i1, const float *W, ptrdiff_t ldw,
                               ptrdiff_t width, float *A, ptrdiff_t lda);
    void (*pixels_times32_f64)(const struct mf_pixels_f64 *c, ptrdiff_t i0,
                               ptrdiff_t i1, const float *W, ptrdiff_t ldw,
                               ptrdiff_t width, float *A, ptrdiff_t lda);
    double (*row_l1_f32)(const float *x, ptrdiff_t D, ptrdiff_t *nnz);
    double (*row_l1_f64)(const double *x, ptrdiff_t D, ptrdiff_t *nnz);
    ptrdiff_t (*gather_nonzeros_f32)(const float *x, ptrdiff_t D, double *val,
                                     int *idx);
    ptrdiff_t (*gather_nonzeros_f64)(const double *x, ptrdiff_t D, double *val,
                                     int *idx);
    ptrdiff_t (*count_nonzeros_f32)(const float *x, ptrdiff_t D);
    ptrdiff_t (*count_nonzeros_f64)(const double *x, ptrdiff_t D);
    void (*combine_rows32)(const float *val, const int *idx, ptrdiff_t nnz,
                           const float *M, ptrdiff_t width, float *out);
    void (*combine_coded32)(const struct mf_coded_row *r, ptrdiff_t nnz,
                            const float *M, ptrdiff_t width, float *out);
    float (*sigmoid32)(float *a, const float *b, ptrdiff_t n);
    void (*output32)(const float *z, ptrdiff_t n, const float *W,
                     ptrdiff_t width, const float *b, float *out);
    double (*exp_shifted)(double *a, ptrdiff_t K, double m);
    void (*sigmoid_bias)(double *z, const double *b, ptrdiff_t n);
    void (*sigmoid_rows)(double *z, ptrdiff_t ld, ptrdiff_t rows,
                         const double *b, ptrdiff_t n);
    ptrdiff_t (*update_in_place)(double *p, double *g, double lr, ptrdiff_t n);
    int (*all_finite_f32)(const void *x, ptrdiff_t n);
    int (*all_finite_f64)(const void *x, ptrdiff_t n);
    void (*hidden_row_tiny)(const struct mf_hidden_row *r, double *acc);
    void (*hidden_row_series)(const struct mf_hidden_row *r, double *acc);
    void (*hidden_row_relu_tiny)(const struct mf_hidden_row *r, double *acc);
    void (*hidden_row_relu_series)(const struct mf_hidden_row *r,
                                   double *acc);
};

extern MF_HIDDEN const struct mf_ops mf_ops_baseline;
#if MF_HAVE_AVX2
extern MF_HIDDEN const struct mf_ops mf_ops_avx2;
#endif

/* Ask for the cache line at p (a hint: no SIMD, so not dispatched), into
 * every level or (MF_PREFETCH_L2, for the vector passes only) into L2
 * only.  The empty asm keeps GCC from deleting a loop of prefetches as
 * empty. */
#if MF_VECTOR_EXTENSIONS
#define MF_PREFETCH(p) do { __builtin_prefetch(p); __asm__ volatile("" :: "r"(p)); } while (0)
#define MF_PREFETCH_L2(p) do { __builtin_prefetch(p, 0, 2); __asm__ volatile("" :: "r"(p)); } while (0)
#else
#define MF_PREFETCH(p) ((void)(p))
#endif

#ifndef MF_IMPLEMENTATION  /* what the Cython modules see */

/* The variants of this build, worst first. */
static const struct mf_ops *const mf_variants[] = {
    &mf_ops_baseline,
#if MF_HAVE_AVX2
    &mf_ops_avx2,
#endif
};
#define MF_N_VARIANTS ((int)(sizeof(mf_variants) / sizeof(mf_variants[0])))

/* The table in use: set once at import (before any kernel runs). */
static const struct mf_ops *mf_active = &mf_ops_baseline;

/* Whether this CPU (and OS) runs variant i.  (Tested here, in baseline
 * code: nothing of the avx2 object runs before this says yes.) */
static int mf_variant_runs(int i)
{
    if (i <= 0)
        return 1;
#if MF_HAVE_AVX2 && (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int mf_n_variants(void) { return MF_N_VARIANTS; }
static const char *mf_variant_name(int i) { return mf_variants[i]->name; }
static const char *mf_active_name(void) { return mf_active->name; }
static void mf_use_variant(int i) { mf_active = mf_variants[i]; }

/* The best variant this CPU runs. */
static void mf_use_best(void)
{
    int i = MF_N_VARIANTS - 1;
    while (i > 0 && !mf_variant_runs(i))
        i--;
    mf_use_variant(i);
}

static inline void mf_combine_rows_f64(const double *val, const int *idx,
                                       ptrdiff_t nnz, const double *M,
                                       ptrdiff_t ld, ptrdiff_t H, double *out)
{
    mf_active->combine_rows_f64(val, idx, nnz, M, ld, H, out);
}

static inline void mf_combine_rows_f32(const float *val, const int *idx,
                                       ptrdiff_t nnz, const double *M,
                                       ptrdiff_t ld, ptrdiff_t H, double *out)
{
    mf_active->combine_rows_f32(val, idx, nnz, M, ld, H, out);
}

static inline void mf_vector_matrix(const double *val, ptrdiff_t n,
                                    const double *M, ptrdiff_t ld,
                                    ptrdiff_t width, double *out)
{
    mf_active->vector_matrix(val, n, M, ld, width, out);
}

static inline void mf_rows_times(const double *z, ptrdiff_t ldz,
                                 ptrdiff_t rows, ptrdiff_t n, const double *M,
                                 ptrdiff_t width, double *out, ptrdiff_t ldo)
{
    mf_active->rows_times(z, ldz, rows, n, M, width, out, ldo);
}

/* The dispatch wrappers of the pixel passes, one set per value type. */
#define MF_DISPATCH_PIXELS(SUFFIX, VAL_T)                                      \
static inline int mf_block_mask_##SUFFIX(const VAL_T *x, ptrdiff_t ldx,      \
                                         int n, ptrdiff_t D,                 \
                                         unsigned long long *mask)           \
{                                                                            \
    return mf_active->block_mask_##SUFFIX(x, ldx, n, D, mask);               \
}                                                                            \
static inline void mf_pixels_times_##SUFFIX(                                 \
    const struct mf_pixels_##SUFFIX *c, ptrdiff_t i0, ptrdiff_t i1,          \
    const double *W, ptrdiff_t ldw, ptrdiff_t width, double *A,              \
    ptrdiff_t lda)                                                           \
{                                                                            \
    mf_active->pixels_times_##SUFFIX(c, i0, i1, W, ldw, width, A, lda);      \
}                                                                            \
static inline void mf_pixels_t_times_##SUFFIX(                               \
    const struct mf_pixels_##SUFFIX *c, ptrdiff_t i0, ptrdiff_t i1,          \
    const double *M, ptrdiff_t ldm, ptrdiff_t width, int add, double *O,     \
    ptrdiff_t ldo)                                                           \
{                                                                            \
    mf_active->pixels_t_times_##SUFFIX(c, i0, i1, M, ldm, width, add, O,     \
                                       ldo);                                 \
}                                                                            \
static inline void mf_pixels_times32_##SUFFIX(                               \
    const struct mf_pixels_##SUFFIX *c, ptrdiff_t i0, ptrdiff_t i1,          \
    const float *W, ptrdiff_t ldw, ptrdiff_t width, float *A, ptrdiff_t lda) \
{                                                                            \
    mf_active->pixels_times32_##SUFFIX(c, i0, i1, W, ldw, width, A, lda);    \
}                                                                            \
static inline double mf_row_l1_##SUFFIX(const VAL_T *x, ptrdiff_t D,         \
                                        ptrdiff_t *nnz)                      \
{                                                                            \
    return mf_active->row_l1_##SUFFIX(x, D, nnz);                            \
}

MF_DISPATCH_PIXELS(f32, float)
MF_DISPATCH_PIXELS(f64, double)

static inline ptrdiff_t mf_gather_nonzeros_f32(const float *x, ptrdiff_t D,
                                               double *val, int *idx)
{
    return mf_active->gather_nonzeros_f32(x, D, val, idx);
}

static inline ptrdiff_t mf_gather_nonzeros_f64(const double *x, ptrdiff_t D,
                                               double *val, int *idx)
{
    return mf_active->gather_nonzeros_f64(x, D, val, idx);
}

static inline ptrdiff_t mf_count_nonzeros_f32(const float *x, ptrdiff_t D)
{
    return mf_active->count_nonzeros_f32(x, D);
}

static inline ptrdiff_t mf_count_nonzeros_f64(const double *x, ptrdiff_t D)
{
    return mf_active->count_nonzeros_f64(x, D);
}

static inline void mf_combine_rows32(const float *val, const int *idx,
                                     ptrdiff_t nnz, const float *M,
                                     ptrdiff_t width, float *out)
{
    mf_active->combine_rows32(val, idx, nnz, M, width, out);
}

static inline void mf_combine_coded32(const struct mf_coded_row *r,
                                      ptrdiff_t nnz, const float *M,
                                      ptrdiff_t width, float *out)
{
    mf_active->combine_coded32(r, nnz, M, width, out);
}

static inline float mf_sigmoid32(float *a, const float *b, ptrdiff_t n)
{
    return mf_active->sigmoid32(a, b, n);
}

static inline void mf_output32(const float *z, ptrdiff_t n, const float *W,
                               ptrdiff_t width, const float *b, float *out)
{
    mf_active->output32(z, n, W, width, b, out);
}

static inline double mf_exp_shifted(double *a, ptrdiff_t K, double m)
{
    return mf_active->exp_shifted(a, K, m);
}

static inline void mf_sigmoid_bias(double *z, const double *b, ptrdiff_t n)
{
    mf_active->sigmoid_bias(z, b, n);
}

static inline void mf_sigmoid_rows(double *z, ptrdiff_t ld, ptrdiff_t rows,
                                   const double *b, ptrdiff_t n)
{
    mf_active->sigmoid_rows(z, ld, rows, b, n);
}

static inline ptrdiff_t mf_update_in_place(double *p, double *g, double lr,
                                           ptrdiff_t n)
{
    return mf_active->update_in_place(p, g, lr, n);
}

static inline int mf_all_finite_f32(const float *x, ptrdiff_t n)
{
    return mf_active->all_finite_f32(x, n);
}

static inline int mf_all_finite_f64(const double *x, ptrdiff_t n)
{
    return mf_active->all_finite_f64(x, n);
}

static inline void mf_hidden_row_tiny(const struct mf_hidden_row *r,
                                      double *acc)
{
    mf_active->hidden_row_tiny(r, acc);
}

static inline void mf_hidden_row_series(const struct mf_hidden_row *r,
                                        double *acc)
{
    mf_active->hidden_row_series(r, acc);
}

static inline void mf_hidden_row_relu_tiny(const struct mf_hidden_row *r,
                                           double *acc)
{
    mf_active->hidden_row_relu_tiny(r, acc);
}

static inline void mf_hidden_row_relu_series(const struct mf_hidden_row *r,
                                             double *acc)
{
    mf_active->hidden_row_relu_series(r, acc);
}

/* Ask for the cache lines of n items of size bytes at p. */
static inline void mf_prefetch(const void *p, ptrdiff_t n, ptrdiff_t size)
{
    const char *c = (const char *)p;
    ptrdiff_t off;
    for (off = 0; off < n * size; off += 64)
        MF_PREFETCH(c + off);
}

#endif  /* MF_IMPLEMENTATION */
#endif
