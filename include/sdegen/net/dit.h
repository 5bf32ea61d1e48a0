#pragma once
// A diffusion transformer (DiT; Peebles & Xie 2023) for images or latents [B, C, H, W], behind
// the network interface (net/network.h):
//   x -> p x p patches, each mapped linearly (a stride-p convolution) to a token of `hidden`
//        features, plus fixed 2-D sine-cosine position embeddings: [B, N, hidden], N = HW / p^2
//   t -> sinusoidal features -> Linear -> SiLU -> Linear (+ a class embedding whose last row is
//        the null label) = c
//   depth blocks with adaLN-Zero: a linear map of SiLU(c), zero at initialisation, gives a shift,
//   a scale and a gate for each half of the block,
//        h = h + gate_a * Attention(LN(h) (1 + scale_a) + shift_a)
//        h = h + gate_m * MLP(LN(h) (1 + scale_m) + shift_m)
//   so every block starts as the identity;
//   a final adaLN layer (zero at initialisation) and a linear map (zero) back to p x p x C values
//   per token, which unpatchify puts back in place.
// A fresh net outputs exactly 0, as the U-Net does.
#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "sdegen/net/network.h"
#include "sdegen/net/time_embedding.h"

namespace sdegen {

struct DiTOptions {
  DiTOptions(int64_t in_channels, int64_t height, int64_t width)
      : in_channels_(in_channels), height_(height), width_(width) {}
  TORCH_ARG(int64_t, in_channels);       // >= 1
  TORCH_ARG(int64_t, height);            // >= 1, divisible by patch
  TORCH_ARG(int64_t, width);             // >= 1, divisible by patch
  TORCH_ARG(int64_t, out_channels) = 0;  // >= 0; 0 means in_channels
  TORCH_ARG(int64_t, patch) = 2;         // patch side p; DiT's best, /2
  // The transformer's width (features per token): a multiple of 4 (the position embedding's sin
  // and cos of two coordinates) and of heads. DiT-S has 384; 128 at depth 4 makes a
  // net of about 1.2M parameters, most of them in the blocks' modulation and MLP.
  TORCH_ARG(int64_t, hidden) = 128;
  TORCH_ARG(int64_t, depth) = 4;         // blocks, >= 1 (DiT-S: 12)
  TORCH_ARG(int64_t, heads) = 4;         // attention heads, dividing hidden (DiT-S: 6)
  TORCH_ARG(double, mlp_ratio) = 4.0;    // the MLP's hidden features per token feature, > 0
  TORCH_ARG(int64_t, num_classes) = 0;   // >= 0; 0 means unconditional

 public:
  int64_t resolved_out_channels() const { return out_channels_ > 0 ? out_channels_ : in_channels_; }
  int64_t tokens() const { return (height_ / patch_) * (width_ / patch_); }
};

// Throws InvalidArgument naming the first option out of range or the numbers that do not fit
// together (an image not divisible into patches, hidden not divisible by 4 or by heads).
void check_dit_options(const DiTOptions& options);

// Patches of x [B, C, H, W] as tokens [B, (H/p)(W/p), p p C], row-major over the patch grid, each
// token's values ordered (row in patch, column in patch, channel); dit_unpatchify inverts it.
torch::Tensor dit_patchify(const torch::Tensor& x, int64_t patch);
torch::Tensor dit_unpatchify(const torch::Tensor& tokens, int64_t patch, int64_t channels, int64_t height,
                             int64_t width);
// The fixed 2-D sine-cosine position embedding of a grid_h x grid_w patch grid: [grid_h grid_w,
// dim], the first dim / 2 features from the row, the rest from the column, each half
// [sin(pos w_k), cos(pos w_k)] with w_k = 10000^(-k / (dim / 4)), k < dim / 4.
torch::Tensor dit_position_embedding(int64_t grid_h, int64_t grid_w, int64_t dim);

// One transformer block with adaLN-Zero conditioning (above).
class DiTBlockImpl : public torch::nn::Module {
 public:
  DiTBlockImpl(int64_t hidden, int64_t heads, double mlp_ratio);
  // h: [B, N, hidden]; c: [B, hidden], the conditioning embedding after its SiLU.
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& c);

  int64_t heads;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};  // no affine parameters: adaLN supplies them
  torch::nn::Linear qkv{nullptr}, projection{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Linear modulation{nullptr};  // c -> 6 hidden (shift, scale, gate twice); zero at first
};
TORCH_MODULE(DiTBlock);

class DiTImpl : public NetworkImpl {
 public:
  explicit DiTImpl(const DiTOptions& options);

  // x: [B, in_channels, height, width]; t: [B] or 0-dim, in [0, 1]; labels (num_classes > 0):
  // [B] in [0, num_classes) or kNullLabel, none meaning kNullLabel for every example.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition = {}) override;
  std::vector<int64_t> shape() const override { return {options.in_channels(), options.height(), options.width()}; }
  int64_t num_classes() const override { return options.num_classes(); }
  nlohmann::json config() const override;
  void pretty_print(std::ostream& stream) const override;

  DiTOptions options;
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::Tensor position_embedding;  // [1, N, hidden] buffer, fixed
  SinusoidalTimeEmbedding time_features{nullptr};
  torch::nn::Linear time_hidden{nullptr}, time_output{nullptr};
  torch::nn::Embedding class_embedding{nullptr};  // num_classes + 1 rows (the last: no label)
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};
  torch::nn::Linear final_modulation{nullptr}, final_linear{nullptr};  // both zero at first

 protected:
  FORWARD_HAS_DEFAULT_ARGS({2, torch::nn::AnyValue(Condition())})

 private:
  std::vector<DiTBlock> block_list_;  // the blocks again, typed
};
TORCH_MODULE(DiT);

// Every option under its own name plus "type": "dit".
nlohmann::json to_json(const DiTOptions& options);
// Refuses a missing, ill-typed or unknown key, or an out-of-range value, naming it.
DiTOptions dit_options_from_json(const nlohmann::json& json);

}  // namespace sdegen
