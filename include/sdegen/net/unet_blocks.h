#pragma once
// The U-Net's building blocks (net/unet.h assembles them), DDPM/ADM style. Each works on
// [B, C, H, W] in the input's dtype and normalises each example on its own (GroupNorm), so the
// examples of a batch never mix.
#include <torch/torch.h>

#include <cstdint>

namespace sdegen {

// GroupNorm, SiLU, conv3x3, + a per-channel bias projected from the embedding, GroupNorm, SiLU,
// dropout, conv3x3; added to the input (through a 1x1 conv when the channel count changes).
class UNetResBlockImpl : public torch::nn::Module {
 public:
  UNetResBlockImpl(int64_t in_channels, int64_t out_channels, int64_t embedding_dim, int64_t groups, double dropout);
  // h: [B, in, H, W]; emb: [B, embedding_dim], already through SiLU (the net applies it once
  // for every block). Returns [B, out, H, W].
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& emb);

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear embedding_projection{nullptr};
  torch::nn::Conv2d skip{nullptr};  // only when in != out

 private:
  double dropout_;
};
TORCH_MODULE(UNetResBlock);

// Multi-head self-attention over the H * W positions of each example, added to the input:
// GroupNorm, q, k, v by one 1x1 conv, softmax(q^T k / sqrt(head channels)) v, 1x1 projection.
class UNetAttentionBlockImpl : public torch::nn::Module {
 public:
  UNetAttentionBlockImpl(int64_t channels, int64_t heads, int64_t groups);
  torch::Tensor forward(const torch::Tensor& h);

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d qkv{nullptr}, projection{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(UNetAttentionBlock);

// One step of a U-Net path, the unit that pushes (down) or pops (up) one skip activation:
// a residual block with optional attention, then an optional resampling, or a resampling alone
// (the down path's stride-2 conv between levels).
class UNetStageImpl : public torch::nn::Module {
 public:
  enum class Resample { None, Down, Up };
  struct Spec {
    int64_t in_channels = 0, out_channels = 0;  // the residual block's; in_channels 0: no block
    bool attention = false;
    Resample resample = Resample::None;
    int64_t resample_channels = 0;  // channels through the resampling conv
  };
  UNetStageImpl(const Spec& spec, int64_t embedding_dim, int64_t heads, int64_t groups, double dropout);
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& emb);

  UNetResBlock res{nullptr};
  UNetAttentionBlock attention{nullptr};
  torch::nn::Conv2d resample{nullptr};

 private:
  Resample resample_kind_;
};
TORCH_MODULE(UNetStage);

}  // namespace sdegen
