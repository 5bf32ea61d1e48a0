#include "sdegen/net/mlp_kernel.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/core/vmath.h"

namespace sdegen {
namespace {

constexpr double kTwoPi = 6.28318530717958647692;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSoftplusThreshold = 20.0;  // torch's default: softplus(x) = x above it
// Rows per forward_trace chunk: d + 1 blocks of a chunk's activations stay in L1/L2 (on the
// likelihood benchmark 32 to 128 rows ran 2.5x faster than one chunk of 10,000, 256 10% slower).
constexpr int64_t kTraceChunk = 128;

void grow(std::vector<double>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

double* grad_of(const torch::Tensor& p) {
  const torch::Tensor& g = p.grad();
  SDEGEN_CHECK(is_raw_double(g), "MlpKernel: a parameter's gradient must be a defined, contiguous float64 CPU tensor; "
               "call zero_gradients first");
  return g.data_ptr<double>();
}

// Single-threaded BLAS calls while it lives; the BLAS's thread count is restored after.
class SerialBlas {
 public:
  SerialBlas() : threads_(vmath::blas_threads()) { vmath::set_blas_threads(1); }
  ~SerialBlas() { vmath::set_blas_threads(threads_); }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int threads_;
};

}  // namespace

bool MlpKernel::supports(const MlpImpl& net, std::string* why, bool condition_inputs) {
  auto no = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (net.options.num_classes() > 0) return no("class-conditional nets are not supported");
  if (net.options.condition_dim() > 0 && !condition_inputs)
    return no("a net with a condition vector needs its condition inputs, which this caller does not pass");
  for (const auto& p : net.parameters())
    if (!is_raw_double(p)) return no("parameters must be contiguous float64 CPU tensors");
  for (const auto& b : net.buffers())
    if (!is_raw_double(b)) return no("buffers must be contiguous float64 CPU tensors");
  return true;
}

MlpKernel::MlpKernel(MlpImpl& net, bool condition_inputs) {
  std::string why;
  SDEGEN_CHECK(supports(net, &why, condition_inputs), "MlpKernel: ", why);
  const MlpOptions& o = net.options;
  in_dim_ = o.in_dim();
  condition_width_ = o.condition_dim() > 0 ? o.condition_dim() + 1 : 0;
  out_dim_ = o.resolved_out_dim();
  const std::string& act = o.activation();
  act_ = act == "tanh" ? Act::Tanh : act == "relu" ? Act::Relu : act == "gelu" ? Act::Gelu
       : act == "silu" ? Act::Silu : Act::Softplus;
  embedding_dim_ = net.time_embedding->dim();
  if (o.time_embedding() == "sinusoidal") {
    embedding_ = Embedding::Sinusoidal;
    const auto* e = dynamic_cast<const SinusoidalTimeEmbeddingImpl*>(net.time_embedding.get());
    SDEGEN_CHECK(e != nullptr, "MlpKernel: the net's time embedding is not sinusoidal");
    const double* f = e->frequencies.data_ptr<double>();
    angular_.assign(f, f + e->frequencies.numel());
  } else if (o.time_embedding() == "fourier") {
    embedding_ = Embedding::Fourier;
    const auto* e = dynamic_cast<const FourierTimeEmbeddingImpl*>(net.time_embedding.get());
    SDEGEN_CHECK(e != nullptr, "MlpKernel: the net's time embedding is not fourier");
    const double* B = e->B.data_ptr<double>();
    for (int64_t k = 0; k < e->B.numel(); ++k) angular_.push_back(B[k] * kTwoPi);  // as B * 2 pi in forward
  }
  auto add = [&](const torch::nn::Linear& l) {
    layers_.push_back({l->weight, l->bias, l->weight.data_ptr<double>(), l->bias.data_ptr<double>(),
                       l->weight.size(1), l->weight.size(0)});
  };
  for (const auto& l : net.hidden_layers()) add(l);
  add(net.output);
}

void MlpKernel::embed(const double* x, const double* t, int64_t n, Directions dirs, const double* condition,
                      MlpTape& tape) const {
  const int64_t d = in_dim_, E = embedding_dim_, C = condition_width_, width = d + E + C, B = tape.blocks_;
  grow(tape.input, B * n * width);
  double* z = tape.input.data();
  std::memset(z, 0, sizeof(double) * static_cast<size_t>(B * n * width));
  double* z_time = dirs.time ? z + n * width : nullptr;
  for (int64_t i = 0; i < n; ++i) std::memcpy(z + i * width, x + i * d, sizeof(double) * static_cast<size_t>(d));
  if (embedding_ == Embedding::Raw) {
    for (int64_t i = 0; i < n; ++i) {
      z[i * width + d] = t[i];
      if (z_time) z_time[i * width + d] = 1.0;
    }
  } else {
    const int64_t half = E / 2, m = n * half;
    grow(tape.grad_a, 3 * m);
    double* phase = tape.grad_a.data();
    double *s = phase + m, *c = phase + 2 * m;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < half; ++k) phase[i * half + k] = t[i] * angular_[k];
    vmath::sin(phase, s, m);
    vmath::cos(phase, c, m);
    for (int64_t i = 0; i < n; ++i) {
      double* row = z + i * width + d;
      for (int64_t k = 0; k < half; ++k) row[k] = s[i * half + k], row[half + k] = c[i * half + k];
      if (!z_time) continue;
      double* drow = z_time + i * width + d;
      for (int64_t k = 0; k < half; ++k)
        drow[k] = c[i * half + k] * angular_[k], drow[half + k] = -s[i * half + k] * angular_[k];
    }
  }
  // The condition's features in the value block only: they depend on neither t nor x. None given:
  // zeros, the null condition.
  if (C > 0 && condition != nullptr)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(z + i * width + d + E, condition + i * C, sizeof(double) * static_cast<size_t>(C));
  if (dirs.jacobian) {
    double* zj = z + (dirs.time ? 2 : 1) * n * width;
    for (int64_t j = 0; j < d; ++j, zj += n * width)
      for (int64_t i = 0; i < n; ++i) zj[i * width + j] = 1.0;
  }
}

void MlpKernel::activate(MlpTape::Layer& layer, int64_t n, int64_t w, int64_t B, bool curve) const {
  const int64_t m = n * w;
  const double* p = layer.pre.data();
  double *h = layer.act.data(), *S = layer.slope.data();
  double* C = curve ? layer.curve.data() : nullptr;
  switch (act_) {
    case Act::Tanh:
      vmath::tanh(p, h, m);
      for (int64_t i = 0; i < m; ++i) {
        S[i] = 1.0 - h[i] * h[i];
        if (C) C[i] = -2.0 * h[i] * S[i];
      }
      break;
    case Act::Relu:
      for (int64_t i = 0; i < m; ++i) {
        const bool on = p[i] > 0.0;
        h[i] = on ? p[i] : 0.0;
        S[i] = on ? 1.0 : 0.0;
        if (C) C[i] = 0.0;
      }
      break;
    case Act::Silu:
      // vmath::sigmoid with its last pass, s = 1 / (1 + e^-x), folded into this one.
      for (int64_t i = 0; i < m; ++i) S[i] = -p[i];
      vmath::exp(S, S, m);
      for (int64_t i = 0; i < m; ++i) {
        const double s = 1.0 / (1.0 + S[i]), x = p[i];
        h[i] = x * s;
        if (C) C[i] = s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s));
        S[i] = s * (1.0 + x * (1.0 - s));
      }
      break;
    case Act::Softplus:
      vmath::exp(p, S, m);  // z = e^x
      vmath::log1p(S, h, m);
      for (int64_t i = 0; i < m; ++i) {
        const bool linear = p[i] > kSoftplusThreshold;
        const double s = S[i] / (S[i] + 1.0);
        if (linear) h[i] = p[i];
        if (C) C[i] = linear ? 0.0 : s * (1.0 - s);
        S[i] = linear ? 1.0 : s;
      }
      break;
    case Act::Gelu:
      for (int64_t i = 0; i < m; ++i) h[i] = p[i] * kInvSqrt2;
      vmath::erf(h, h, m);
      for (int64_t i = 0; i < m; ++i) S[i] = -0.5 * p[i] * p[i];
      vmath::exp(S, S, m);
      for (int64_t i = 0; i < m; ++i) {
        const double x = p[i], cdf = 0.5 * (1.0 + h[i]), pdf = S[i] * kInvSqrt2Pi;
        h[i] = x * cdf;
        if (C) C[i] = pdf * (2.0 - x * x);
        S[i] = cdf + x * pdf;
      }
      break;
  }
  // Tangents: d act = sigma'(pre) d pre.
  for (int64_t k = 1; k < B; ++k) {
    const double* dp = p + k * m;
    double* dh = h + k * m;
    for (int64_t i = 0; i < m; ++i) dh[i] = S[i] * dp[i];
  }
}

void MlpKernel::forward(const double* x, const double* t, int64_t n, Directions dirs, MlpTape& tape,
                        const double* condition) const {
  run(x, t, n, dirs, /*reverse=*/true, tape, condition);
}

void MlpKernel::run(const double* x, const double* t, int64_t n, Directions dirs, bool reverse, MlpTape& tape,
                    const double* condition) const {
  SDEGEN_CHECK(n >= 0, "MlpKernel: batch must be >= 0, got ", n);
  const int64_t B = blocks(dirs), L = static_cast<int64_t>(layers_.size());
  tape.batch_ = n;
  tape.blocks_ = B;
  tape.layers_.resize(static_cast<size_t>(L));
  embed(x, t, n, dirs, condition, tape);
  const double* in = tape.input.data();
  for (int64_t l = 0; l < L; ++l) {
    const Linear& lin = layers_[static_cast<size_t>(l)];
    MlpTape::Layer& layer = tape.layers_[static_cast<size_t>(l)];
    grow(layer.pre, B * n * lin.out);
    double* pre = layer.pre.data();
    // The value block starts from the bias and the tangent blocks from zero (the bias is
    // constant); the product adds onto them (beta = 1), which spares the BLAS its own pass to
    // clear C and this loop a second pass to add the bias.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < lin.out; ++j) pre[i * lin.out + j] = lin.bias[j];
    std::memset(pre + n * lin.out, 0, sizeof(double) * static_cast<size_t>((B - 1) * n * lin.out));
    vmath::gemm(false, true, B * n, lin.out, lin.in, 1.0, in, lin.in, lin.weight, lin.in, 1.0, pre, lin.out);
    if (l == L - 1) break;
    grow(layer.act, B * n * lin.out);
    grow(layer.slope, n * lin.out);
    const bool curve = reverse && B > 1;
    if (curve) grow(layer.curve, n * lin.out);
    activate(layer, n, lin.out, B, curve);
    in = layer.act.data();
  }
}

void MlpKernel::forward_trace(const double* x, const double* t, int64_t n, double* out, double* trace,
                              Workspace& workspace) const {
  SDEGEN_CHECK(out_dim_ == in_dim_, "MlpKernel::forward_trace needs a net from R^d to R^d, got ", in_dim_, " -> ",
               out_dim_);
  const int64_t d = in_dim_, chunks = (n + kTraceChunk - 1) / kTraceChunk;
  workspace.tape(static_cast<size_t>(at::get_num_threads() - 1));  // every thread's, before they start
  const auto run_chunks = [&](int64_t first, int64_t last) {
    MlpTape& tape = workspace.tape(static_cast<size_t>(at::get_thread_num()));
    for (int64_t c = first; c < last; ++c) {
      const int64_t start = c * kTraceChunk, m = std::min(kTraceChunk, n - start);
      run(x + start * d, t + start, m, {false, true}, /*reverse=*/false, tape);
      const double* o = tape.output();
      std::memcpy(out + start * d, o, sizeof(double) * static_cast<size_t>(m * d));
      for (int64_t i = 0; i < m; ++i) {
        double sum = 0.0;
        for (int64_t j = 0; j < d; ++j) sum += o[(1 + j) * m * d + i * d + j];
        trace[start + i] = sum;
      }
    }
  };
  if (at::get_num_threads() <= 1 || chunks <= 1) return run_chunks(0, chunks);
  // Each thread's GEMMs are one chunk's: the BLAS's own threads would only contend with these.
  const SerialBlas serial;
  at::parallel_for(0, chunks, 1, run_chunks);
}

void MlpKernel::backward(MlpTape& tape, double* grad_output, double* grad_x) const {
  const int64_t n = tape.batch_, B = tape.blocks_, L = static_cast<int64_t>(layers_.size());
  SDEGEN_CHECK(static_cast<int64_t>(tape.layers_.size()) == L, "MlpKernel::backward: the tape holds no forward pass "
               "of this net");
  int64_t widest = in_dim_ + embedding_dim_;
  for (const auto& lin : layers_) widest = std::max(widest, std::max(lin.in, lin.out));
  grow(tape.grad_a, B * n * widest);
  grow(tape.grad_b, B * n * widest);
  double* G = grad_output;  // dL / d(this layer's output stack)
  for (int64_t l = L - 1; l >= 0; --l) {
    const Linear& lin = layers_[static_cast<size_t>(l)];
    const MlpTape::Layer& layer = tape.layers_[static_cast<size_t>(l)];
    const int64_t m = n * lin.out;
    if (l < L - 1) {
      // Through the activation: h = sigma(p), dh_k = sigma'(p) dp_k, so
      // dL/dp = dL/dh sigma'(p) + sum_k dL/d(dh_k) sigma''(p) dp_k and dL/d(dp_k) = dL/d(dh_k) sigma'(p).
      const double *S = layer.slope.data(), *C = layer.curve.data(), *p = layer.pre.data();
      for (int64_t i = 0; i < m; ++i) {
        double g = G[i] * S[i];
        for (int64_t k = 1; k < B; ++k) {
          g += G[k * m + i] * C[i] * p[k * m + i];
          G[k * m + i] *= S[i];
        }
        G[i] = g;
      }
    }
    const double* in = l == 0 ? tape.input.data() : tape.layers_[static_cast<size_t>(l - 1)].act.data();
    // Every block contributes to the weight's gradient (dp_k = W dz_k); only the value to the bias's.
    vmath::gemm(true, false, lin.out, lin.in, B * n, 1.0, G, lin.out, in, lin.in, 1.0, grad_of(lin.weight_tensor),
                lin.in);
    double* gb = grad_of(lin.bias_tensor);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < lin.out; ++j) gb[j] += G[i * lin.out + j];
    if (l > 0) {
      double* next = G == tape.grad_a.data() ? tape.grad_b.data() : tape.grad_a.data();
      vmath::gemm(false, false, B * n, lin.in, lin.out, 1.0, G, lin.out, lin.weight, lin.in, 0.0, next, lin.in);
      G = next;
    } else if (grad_x) {
      // The input's tangent blocks are constants (unit vectors, the embedding's derivative): x
      // reaches the loss through the value block only.
      vmath::gemm(false, false, n, in_dim_, lin.out, 1.0, G, lin.out, lin.weight, lin.in, 0.0, grad_x, in_dim_);
    }
  }
}

double* Workspace::get(size_t slot, int64_t size) {
  if (buffers_.size() <= slot) buffers_.resize(slot + 1);
  grow(buffers_[slot], size);
  return buffers_[slot].data();
}

MlpTape& Workspace::tape(size_t slot) {
  while (tapes_.size() <= slot) tapes_.push_back(std::make_unique<MlpTape>());
  return *tapes_[slot];
}

}  // namespace sdegen
