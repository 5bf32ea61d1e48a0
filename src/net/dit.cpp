#include "sdegen/net/dit.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "sdegen/core/check.h"
#include "sdegen/core/json_fields.h"

namespace sdegen {
namespace {

// As the U-Net's: t in [0, 1] spans the ~1000 radians of DDPM's integer steps at the highest
// frequency.
constexpr double kMaxTimeFrequency = 1000.0;

// x (1 + scale) + shift, with shift and scale [B, hidden] broadcast over the tokens.
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

// y = x W^T + b by aten::linear, the path of PyTorch's F.linear: a contiguous 3-D input [B, N, in]
// goes through one addmm with the bias folded in. torch::nn::Linear's own forward (LibTorch 1.13)
// runs matmul and then adds the bias in a second pass over the output: measured 5% slower on the
// blocks' linear maps at the training step's shapes, 15% on fc1 in a 500-image sampling call.
torch::Tensor linear(const torch::nn::Linear& l, const torch::Tensor& x) {
  return torch::linear(x, l->weight, l->bias);
}

torch::nn::LayerNorm plain_layer_norm(int64_t hidden) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden}).elementwise_affine(false).eps(1e-6));
}

// DiT's initialisation of a linear map: Xavier-uniform weights, zero bias.
torch::nn::Linear xavier_linear(int64_t in, int64_t out) {
  torch::nn::Linear l(in, out);
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(l->weight);
  l->bias.zero_();
  return l;
}

torch::nn::Linear zero_linear(int64_t in, int64_t out) {
  torch::nn::Linear l(in, out);
  torch::NoGradGuard no_grad;
  l->weight.zero_();
  l->bias.zero_();
  return l;
}

// The 1-D half of the position embedding: [n, dim] for positions 0 .. n - 1.
torch::Tensor sincos_1d(int64_t n, int64_t dim) {
  const auto opts = torch::TensorOptions(torch::kDouble);
  const torch::Tensor omega = torch::pow(10000.0, -torch::arange(dim / 2, opts) / static_cast<double>(dim / 2));
  const torch::Tensor angles = torch::arange(n, opts).unsqueeze(1) * omega.unsqueeze(0);
  return torch::cat({torch::sin(angles), torch::cos(angles)}, 1);
}

}  // namespace

void check_dit_options(const DiTOptions& o) {
  SDEGEN_CHECK(o.in_channels() >= 1, "DiT: in_channels must be >= 1, got ", o.in_channels());
  SDEGEN_CHECK(o.out_channels() >= 0, "DiT: out_channels must be >= 0 (0 means in_channels), got ", o.out_channels());
  SDEGEN_CHECK(o.patch() >= 1, "DiT: patch must be >= 1, got ", o.patch());
  SDEGEN_CHECK(o.height() >= 1 && o.width() >= 1 && o.height() % o.patch() == 0 && o.width() % o.patch() == 0,
               "DiT: a ", o.height(), "x", o.width(), " image cannot be cut into ", o.patch(), "x", o.patch(),
               " patches: height and width must be positive multiples of patch");
  SDEGEN_CHECK(o.hidden() >= 4 && o.hidden() % 4 == 0,
               "DiT: hidden must be a positive multiple of 4 (the position embedding's sin and cos of two "
               "coordinates), got ",
               o.hidden());
  SDEGEN_CHECK(o.heads() >= 1 && o.hidden() % o.heads() == 0, "DiT: heads must be >= 1 and divide hidden = ",
               o.hidden(), ", got ", o.heads());
  SDEGEN_CHECK(o.depth() >= 1, "DiT: depth must be >= 1, got ", o.depth());
  SDEGEN_CHECK(std::isfinite(o.mlp_ratio()) && o.mlp_ratio() > 0 &&
                   std::llround(o.hidden() * o.mlp_ratio()) >= 1,
               "DiT: mlp_ratio must be positive and give at least one hidden feature, got ", o.mlp_ratio());
  SDEGEN_CHECK(o.num_classes() >= 0, "DiT: num_classes must be >= 0 (0 means unconditional), got ", o.num_classes());
}

torch::Tensor dit_patchify(const torch::Tensor& x, int64_t p) {
  SDEGEN_CHECK(x.dim() == 4 && p >= 1 && x.size(2) % p == 0 && x.size(3) % p == 0,
               "dit_patchify: expected [B, C, H, W] with H and W multiples of ", p, ", got ", x.sizes());
  const int64_t b = x.size(0), c = x.size(1), gh = x.size(2) / p, gw = x.size(3) / p;
  return x.reshape({b, c, gh, p, gw, p}).permute({0, 2, 4, 3, 5, 1}).reshape({b, gh * gw, p * p * c});
}

torch::Tensor dit_unpatchify(const torch::Tensor& tokens, int64_t p, int64_t c, int64_t h, int64_t w) {
  SDEGEN_CHECK(p >= 1 && h % p == 0 && w % p == 0 && tokens.dim() == 3 && tokens.size(1) == (h / p) * (w / p) &&
                   tokens.size(2) == p * p * c,
               "dit_unpatchify: tokens ", tokens.sizes(), " are not the ", p, "x", p, " patches of a ", c, "x", h,
               "x", w, " image");
  const int64_t b = tokens.size(0), gh = h / p, gw = w / p;
  return tokens.reshape({b, gh, gw, p, p, c}).permute({0, 5, 1, 3, 2, 4}).reshape({b, c, h, w});
}

torch::Tensor dit_position_embedding(int64_t grid_h, int64_t grid_w, int64_t dim) {
  SDEGEN_CHECK(grid_h >= 1 && grid_w >= 1 && dim >= 4 && dim % 4 == 0,
               "dit_position_embedding: needs a grid of at least 1x1 and dim a positive multiple of 4, got ", grid_h,
               "x", grid_w, " and ", dim);
  const torch::Tensor rows = sincos_1d(grid_h, dim / 2), cols = sincos_1d(grid_w, dim / 2);
  // Token (i, j), row-major: the row's features, then the column's.
  return torch::cat({rows.repeat_interleave(grid_w, 0), cols.repeat({grid_h, 1})}, 1);
}

DiTBlockImpl::DiTBlockImpl(int64_t hidden, int64_t heads_, double mlp_ratio) : heads(heads_) {
  const int64_t mlp = std::llround(hidden * mlp_ratio);
  norm1 = register_module("norm1", plain_layer_norm(hidden));
  qkv = register_module("qkv", xavier_linear(hidden, 3 * hidden));
  projection = register_module("projection", xavier_linear(hidden, hidden));
  norm2 = register_module("norm2", plain_layer_norm(hidden));
  fc1 = register_module("fc1", xavier_linear(hidden, mlp));
  fc2 = register_module("fc2", xavier_linear(mlp, hidden));
  modulation = register_module("modulation", zero_linear(hidden, 6 * hidden));
}

torch::Tensor DiTBlockImpl::forward(const torch::Tensor& h, const torch::Tensor& c) {
  const std::vector<torch::Tensor> m = linear(modulation, c).chunk(6, 1);
  const int64_t b = h.size(0), n = h.size(1), hidden = h.size(2), d = hidden / heads;
  // Multi-head self-attention over the tokens.
  const torch::Tensor qkv_ = linear(qkv, modulate(norm1->forward(h), m[0], m[1]))
                                 .reshape({b, n, 3, heads, d})
                                 .permute({2, 0, 3, 1, 4});  // [3, B, heads, N, d]
  const torch::Tensor q = qkv_[0], k = qkv_[1], v = qkv_[2];
  const torch::Tensor weights = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(d)), -1);
  const torch::Tensor attended = torch::matmul(weights, v).transpose(1, 2).reshape({b, n, hidden});
  torch::Tensor out = h + m[2].unsqueeze(1) * linear(projection, attended);
  const torch::Tensor mlp = linear(fc2, torch::gelu(linear(fc1, modulate(norm2->forward(out), m[3], m[4])), "tanh"));
  return out + m[5].unsqueeze(1) * mlp;
}

DiTImpl::DiTImpl(const DiTOptions& options_) : options(options_) {
  check_dit_options(options);
  const int64_t hidden = options.hidden(), p = options.patch();
  patch_embedding = register_module(
      "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels(), hidden, p).stride(p)));
  position_embedding = register_buffer(
      "position_embedding",
      dit_position_embedding(options.height() / p, options.width() / p, hidden).to(torch::kFloat).unsqueeze(0));
  time_features = register_module(
      "time_features", SinusoidalTimeEmbedding(SinusoidalTimeEmbeddingOptions(hidden).max_frequency(kMaxTimeFrequency)));
  time_hidden = register_module("time_hidden", torch::nn::Linear(hidden, hidden));
  time_output = register_module("time_output", torch::nn::Linear(hidden, hidden));
  if (options.num_classes() > 0)
    class_embedding = register_module("class_embedding", torch::nn::Embedding(options.num_classes() + 1, hidden));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth(); ++i) {
    DiTBlock block(hidden, options.heads(), options.mlp_ratio());
    blocks->push_back(block);
    block_list_.push_back(block);
  }
  final_norm = register_module("final_norm", plain_layer_norm(hidden));
  final_modulation = register_module("final_modulation", zero_linear(hidden, 2 * hidden));
  final_linear = register_module("final_linear", zero_linear(hidden, p * p * options.resolved_out_channels()));
  // DiT's initialisation of the rest: the patch map as a linear one (Xavier on its flattened
  // weight), the time MLP and the class embedding at N(0, 0.02^2).
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(patch_embedding->weight.view({hidden, -1}));
  patch_embedding->bias.zero_();
  for (auto* l : {&time_hidden, &time_output}) {
    torch::nn::init::normal_((*l)->weight, 0.0, 0.02);
    (*l)->bias.zero_();
  }
  if (class_embedding) torch::nn::init::normal_(class_embedding->weight, 0.0, 0.02);
}

torch::Tensor DiTImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition) {
  check_network_inputs("DiT", shape(), options.num_classes(), x, t, condition);
  const int64_t batch = x.size(0);
  const torch::Tensor times = (t.dim() == 0 ? t.expand({batch}) : t).to(x.dtype());
  torch::Tensor c = linear(time_output, torch::silu(linear(time_hidden, time_features->forward(times))));
  if (class_embedding)
    c = c + class_embedding->forward(label_rows(condition, options.num_classes(), batch, x.device()));
  // Every modulation starts with a SiLU of c: applied once here.
  c = torch::silu(c);
  torch::Tensor h = patch_embedding->forward(x).flatten(2).transpose(1, 2) + position_embedding;
  for (auto& block : block_list_) h = block->forward(h, c);
  const std::vector<torch::Tensor> m = linear(final_modulation, c).chunk(2, 1);
  h = linear(final_linear, modulate(final_norm->forward(h), m[0], m[1]));
  return dit_unpatchify(h, options.patch(), options.resolved_out_channels(), options.height(), options.width());
}

nlohmann::json DiTImpl::config() const { return to_json(options); }

void DiTImpl::pretty_print(std::ostream& stream) const {
  stream << "sdegen::DiT(in_channels=" << options.in_channels() << ", size=" << options.height() << "x"
         << options.width() << ", patch=" << options.patch() << ", hidden=" << options.hidden()
         << ", depth=" << options.depth() << ", heads=" << options.heads() << ", mlp_ratio=" << options.mlp_ratio();
  if (options.num_classes() > 0) stream << ", num_classes=" << options.num_classes();
  stream << ")";
}

nlohmann::json to_json(const DiTOptions& o) {
  return {{"type", "dit"},
          {"in_channels", o.in_channels()},
          {"height", o.height()},
          {"width", o.width()},
          {"out_channels", o.out_channels()},
          {"patch", o.patch()},
          {"hidden", o.hidden()},
          {"depth", o.depth()},
          {"heads", o.heads()},
          {"mlp_ratio", o.mlp_ratio()},
          {"num_classes", o.num_classes()}};
}

DiTOptions dit_options_from_json(const nlohmann::json& j) {
  static const std::vector<std::string> keys = {"type",   "in_channels", "height", "width",     "out_channels", "patch",
                                                "hidden", "depth",       "heads",  "mlp_ratio", "num_classes"};
  const JsonFields f(j, "DiT", keys);
  f.expect_type("dit");
  DiTOptions o = DiTOptions(f.integer("in_channels"), f.integer("height"), f.integer("width"))
                     .out_channels(f.integer("out_channels"))
                     .patch(f.integer("patch"))
                     .hidden(f.integer("hidden"))
                     .depth(f.integer("depth"))
                     .heads(f.integer("heads"))
                     .mlp_ratio(f.number("mlp_ratio"))
                     .num_classes(f.integer("num_classes"));
  check_dit_options(o);
  return o;
}

}  // namespace sdegen
