#pragma once
// Elementwise math and matrix products on raw float64 buffers, for the fused kernels that train
// and sample small networks without building tensors (net/mlp_kernel.h). A small network's
// step is bound by per-operation overhead, not arithmetic: these calls have none beyond the
// arithmetic itself. The transcendental functions run four lanes at a time through glibc's
// vector math library where the CPU has AVX2 (chosen at run time), two lanes (SSE2) otherwise,
// each accurate to a few ulp like the scalar functions. Every function accepts n = 0.
#include <cstdint>

namespace sdegen::vmath {

void tanh(const double* x, double* y, int64_t n);
void exp(const double* x, double* y, int64_t n);
void sin(const double* x, double* y, int64_t n);
void cos(const double* x, double* y, int64_t n);
void erf(const double* x, double* y, int64_t n);
void log1p(const double* x, double* y, int64_t n);
// 1 / (1 + exp(-x)), without overflow for large |x|.
void sigmoid(const double* x, double* y, int64_t n);

// Row-major C = alpha op(A) op(B) + beta C, with C [m, n] and the inner dimension k; op
// transposes when the flag is set. lda, ldb, ldc are row strides. Runs on the CBLAS the
// program links (OpenBLAS on the supported set-up).
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// The BLAS's own thread pool (OpenBLAS keeps one apart from LibTorch's): set to the program's
// thread count, so that --threads 1 runs single-threaded GEMMs. Busy-waiting BLAS threads on a
// machine whose cores are taken made a training run 30x slower. A no-op on a BLAS without it.
void set_blas_threads(int threads);
// The BLAS's own thread count (1 for a BLAS without a pool of its own).
int blas_threads();

// Whether the vectorised (AVX2) paths are in use on this machine; for reports.
bool has_avx2();

}  // namespace sdegen::vmath
