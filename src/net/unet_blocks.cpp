#include "sdegen/net/unet_blocks.h"

#include <cmath>

namespace sdegen {
namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

torch::nn::Conv2d conv1x1(int64_t in, int64_t out) { return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)); }

torch::nn::GroupNorm group_norm(int64_t groups, int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels));
}

}  // namespace

UNetResBlockImpl::UNetResBlockImpl(int64_t in_channels, int64_t out_channels, int64_t embedding_dim, int64_t groups,
                                   double dropout)
    : dropout_(dropout) {
  norm1 = register_module("norm1", group_norm(groups, in_channels));
  conv1 = register_module("conv1", conv3x3(in_channels, out_channels));
  embedding_projection = register_module("embedding_projection", torch::nn::Linear(embedding_dim, out_channels));
  norm2 = register_module("norm2", group_norm(groups, out_channels));
  conv2 = register_module("conv2", conv3x3(out_channels, out_channels));
  if (in_channels != out_channels) skip = register_module("skip", conv1x1(in_channels, out_channels));
}

torch::Tensor UNetResBlockImpl::forward(const torch::Tensor& h, const torch::Tensor& emb) {
  torch::Tensor r = conv1->forward(torch::silu(norm1->forward(h)));
  r = r + embedding_projection->forward(emb).unsqueeze(-1).unsqueeze(-1);
  r = torch::dropout(torch::silu(norm2->forward(r)), dropout_, is_training());
  r = conv2->forward(r);
  return (skip ? skip->forward(h) : h) + r;
}

UNetAttentionBlockImpl::UNetAttentionBlockImpl(int64_t channels, int64_t heads, int64_t groups) : heads_(heads) {
  norm = register_module("norm", group_norm(groups, channels));
  qkv = register_module("qkv", conv1x1(channels, 3 * channels));
  projection = register_module("projection", conv1x1(channels, channels));
}

torch::Tensor UNetAttentionBlockImpl::forward(const torch::Tensor& h) {
  const int64_t batch = h.size(0), channels = h.size(1), positions = h.size(2) * h.size(3);
  const int64_t head_channels = channels / heads_;
  // [B, 3C, H, W] -> three [B, heads, head_channels, positions].
  const auto qkv_heads = qkv->forward(norm->forward(h)).reshape({batch, 3, heads_, head_channels, positions}).unbind(1);
  const torch::Tensor& q = qkv_heads[0];
  const torch::Tensor& k = qkv_heads[1];
  const torch::Tensor& v = qkv_heads[2];
  // weights[b, head, i, j]: how much position i attends to position j (softmax over j).
  const torch::Tensor weights =
      torch::softmax(torch::matmul(q.transpose(-1, -2), k) / std::sqrt(static_cast<double>(head_channels)), -1);
  const torch::Tensor attended = torch::matmul(v, weights.transpose(-1, -2));  // [B, heads, hc, positions]
  return h + projection->forward(attended.reshape(h.sizes()));
}

UNetStageImpl::UNetStageImpl(const Spec& spec, int64_t embedding_dim, int64_t heads, int64_t groups, double dropout)
    : resample_kind_(spec.resample) {
  if (spec.in_channels > 0)
    res = register_module("res", UNetResBlock(spec.in_channels, spec.out_channels, embedding_dim, groups, dropout));
  if (spec.attention) attention = register_module("attention", UNetAttentionBlock(spec.out_channels, heads, groups));
  if (spec.resample != Resample::None) {
    const int64_t c = spec.resample_channels;
    resample = register_module("resample", conv3x3(c, c, spec.resample == Resample::Down ? 2 : 1));
  }
}

torch::Tensor UNetStageImpl::forward(torch::Tensor h, const torch::Tensor& emb) {
  if (res) h = res->forward(h, emb);
  if (attention) h = attention->forward(h);
  if (resample_kind_ == Resample::Up) {
    // Nearest-neighbour doubling, then the conv below smooths the blocky result.
    namespace F = torch::nn::functional;
    h = F::interpolate(h, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{2 * h.size(2), 2 * h.size(3)})
                              .mode(torch::kNearest));
  }
  if (resample) h = resample->forward(h);
  return h;
}

}  // namespace sdegen
