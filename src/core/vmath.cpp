#include "sdegen/core/vmath.h"

#include <cblas.h>

// OpenBLAS's thread-count setter, where the linked BLAS has it (weak: null otherwise).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

#include <cmath>

// glibc's vector math library (libmvec) has tanh, erf and log1p from 2.35; x86-64 only.
#if defined(SDEGEN_HAVE_MVEC) && defined(__x86_64__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define SDEGEN_VECTOR_MATH 1
#include <immintrin.h>
#else
#define SDEGEN_VECTOR_MATH 0
#endif

namespace sdegen::vmath {
namespace {

#if SDEGEN_VECTOR_MATH

// The vector ABI names of libmvec: 'b' SSE2 with 2 lanes, 'd' AVX2 with 4.
#define SDEGEN_MVEC(fn)                                                            \
  extern "C" __m128d _ZGVbN2v_##fn(__m128d);                                       \
  extern "C" __attribute__((target("avx2"))) __m256d _ZGVdN4v_##fn(__m256d);
SDEGEN_MVEC(tanh)
SDEGEN_MVEC(exp)
SDEGEN_MVEC(sin)
SDEGEN_MVEC(cos)
SDEGEN_MVEC(erf)
SDEGEN_MVEC(log1p)
#undef SDEGEN_MVEC

bool avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}

template <__m256d (*Wide)(__m256d)>
__attribute__((target("avx2"))) int64_t apply_avx2(const double* x, double* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, Wide(_mm256_loadu_pd(x + i)));
  return i;
}

template <__m128d (*Narrow)(__m128d)>
int64_t apply_sse2(const double* x, double* y, int64_t n) {
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) _mm_storeu_pd(y + i, Narrow(_mm_loadu_pd(x + i)));
  return i;
}

// The vector kernel over the bulk, the scalar function over the remainder.
template <__m256d (*Wide)(__m256d), __m128d (*Narrow)(__m128d), double (*Scalar)(double)>
void apply(const double* x, double* y, int64_t n) {
  int64_t i = avx2() ? apply_avx2<Wide>(x, y, n) : apply_sse2<Narrow>(x, y, n);
  for (; i < n; ++i) y[i] = Scalar(x[i]);
}

double scalar_tanh(double v) { return std::tanh(v); }
double scalar_exp(double v) { return std::exp(v); }
double scalar_sin(double v) { return std::sin(v); }
double scalar_cos(double v) { return std::cos(v); }
double scalar_erf(double v) { return std::erf(v); }
double scalar_log1p(double v) { return std::log1p(v); }

#define SDEGEN_APPLY(fn) apply<_ZGVdN4v_##fn, _ZGVbN2v_##fn, scalar_##fn>(x, y, n)

#else

template <class F>
void scalar_loop(const double* x, double* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
#define SDEGEN_APPLY(fn) scalar_loop(x, y, n, [](double v) { return std::fn(v); })

#endif

}  // namespace

void tanh(const double* x, double* y, int64_t n) { SDEGEN_APPLY(tanh); }
void exp(const double* x, double* y, int64_t n) { SDEGEN_APPLY(exp); }
void sin(const double* x, double* y, int64_t n) { SDEGEN_APPLY(sin); }
void cos(const double* x, double* y, int64_t n) { SDEGEN_APPLY(cos); }
void erf(const double* x, double* y, int64_t n) { SDEGEN_APPLY(erf); }
void log1p(const double* x, double* y, int64_t n) { SDEGEN_APPLY(log1p); }

void sigmoid(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
  exp(y, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0 / (1.0 + y[i]);
}

bool has_avx2() {
#if SDEGEN_VECTOR_MATH
  return avx2();
#else
  return false;
#endif
}

void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta C; BLAS implementations differ on k = 0
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0 ? 0.0 : beta * c[i * ldc + j];
    return;
  }
  // One row or one column of C is a matrix-vector product: dgemv reads the matrix in place, where
  // dgemm would first pack it (most of a batch-1 network evaluation's time in OpenBLAS).
  if (m == 1 || n == 1) {
    if (beta == 0.0)  // C is not read (some BLAS scale it by 0, which keeps a NaN)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = 0.0;
    if (m == 1) {
      // c = alpha op(B)^T x + beta c, with x the row op(A) (k values, stride lda if transposed).
      const int incx = transpose_a ? static_cast<int>(lda) : 1;
      if (transpose_b)  // B is [n, k]
        cblas_dgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), alpha, b,
                    static_cast<int>(ldb), a, incx, beta, c, 1);
      else  // B is [k, n]
        cblas_dgemv(CblasRowMajor, CblasTrans, static_cast<int>(k), static_cast<int>(n), alpha, b,
                    static_cast<int>(ldb), a, incx, beta, c, 1);
    } else {
      // c (stride ldc) = alpha op(A) x + beta c, with x the column op(B) (k values).
      const int incx = transpose_b ? 1 : static_cast<int>(ldb);
      if (transpose_a)  // A is [k, m]
        cblas_dgemv(CblasRowMajor, CblasTrans, static_cast<int>(k), static_cast<int>(m), alpha, a,
                    static_cast<int>(lda), b, incx, beta, c, static_cast<int>(ldc));
      else  // A is [m, k]
        cblas_dgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(m), static_cast<int>(k), alpha, a,
                    static_cast<int>(lda), b, incx, beta, c, static_cast<int>(ldc));
    }
    return;
  }
  cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void set_blas_threads(int threads) {
  if (openblas_set_num_threads != nullptr && threads > 0) openblas_set_num_threads(threads);
}

int blas_threads() { return openblas_get_num_threads != nullptr ? openblas_get_num_threads() : 1; }

}  // namespace sdegen::vmath
