#pragma once
// A U-Net for images [B, C, H, W], conditioned on time (and optionally a class label), in the
// style of DDPM (Ho et al. 2020) and ADM (Dhariwal & Nichol 2021):
//   t -> sinusoidal features -> Linear -> SiLU -> Linear (+ class embedding) = emb
//   x -> conv3x3 -> down path: per level blocks_per_level residual blocks (+ self-attention at
//   attention_resolutions), a stride-2 conv between levels -> middle (res, attention, res) ->
//   up path: the mirror image, each block fed the matching down activation concatenated to its
//   input, nearest-neighbour upsampling + conv3x3 between levels -> GroupNorm, SiLU, conv3x3.
// The last conv starts at zero, so a fresh net outputs exactly 0: a model that wraps it starts
// from its prediction's neutral value (zero noise, zero velocity) rather than from noise.
#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "sdegen/net/network.h"
#include "sdegen/net/time_embedding.h"
#include "sdegen/net/unet_blocks.h"

namespace sdegen {

struct UNetOptions {
  UNetOptions(int64_t in_channels, int64_t height, int64_t width)
      : in_channels_(in_channels), height_(height), width_(width) {}
  TORCH_ARG(int64_t, in_channels);      // image channels, >= 1 (1 grey, 3 RGB)
  TORCH_ARG(int64_t, height);           // >= 1, divisible by 2^(levels - 1)
  TORCH_ARG(int64_t, width);            // >= 1, divisible by 2^(levels - 1)
  TORCH_ARG(int64_t, out_channels) = 0;  // >= 0; 0 means in_channels (a prediction of x's shape)
  // The first level's channels, and the number of sinusoidal time features (so even): DDPM's
  // 128 for 32x32 CIFAR-10 cut to 32, which keeps a 28x28 net near 1.6M parameters.
  TORCH_ARG(int64_t, base_channels) = 32;
  // Channels per level as multiples of base_channels; one entry per level, each level but the
  // last halves the image: 28x28 -> 14x14 -> 7x7 at 32, 64, 64 channels.
  TORCH_ARG(std::vector<int64_t>, channel_mult) = std::vector<int64_t>{1, 2, 2};
  TORCH_ARG(int64_t, blocks_per_level) = 2;  // >= 1; DDPM's and ADM's 2
  // The levels' heights at which each residual block is followed by self-attention; an entry
  // that matches no level is refused. 7: only the 7x7 level of a 28x28 image, where attention
  // over 49 positions is cheap (at 28x28 it would be 784^2 weights per head and example).
  // The middle block always has attention.
  TORCH_ARG(std::vector<int64_t>, attention_resolutions) = std::vector<int64_t>{7};
  TORCH_ARG(int64_t, attention_heads) = 1;  // >= 1, dividing the channels where there is attention; DDPM's 1
  TORCH_ARG(double, dropout) = 0.1;         // in [0, 1), residual blocks only; DDPM's CIFAR-10 value
  TORCH_ARG(int64_t, groups) = 8;           // GroupNorm groups, dividing every level's channels: 4 per group at 32
  TORCH_ARG(int64_t, num_classes) = 0;      // >= 0; 0 means unconditional
  TORCH_ARG(int64_t, time_embedding_dim) = 0;  // >= 0; 0 means 4 * base_channels (DDPM's width)

 public:
  int64_t resolved_out_channels() const { return out_channels_ > 0 ? out_channels_ : in_channels_; }
  int64_t resolved_time_embedding_dim() const {
    return time_embedding_dim_ > 0 ? time_embedding_dim_ : 4 * base_channels_;
  }
  int64_t levels() const { return static_cast<int64_t>(channel_mult_.size()); }
};

// Throws InvalidArgument naming the first option out of range, or the numbers that do not fit
// together (an image size that cannot be halved per level, channels not divisible by groups or
// heads, an attention resolution that matches no level).
void check_unet_options(const UNetOptions& options);

class UNetImpl : public NetworkImpl {
 public:
  explicit UNetImpl(const UNetOptions& options);

  // x: [B, in_channels, height, width]; t: [B] or 0-dim, t in [0, 1]; labels (num_classes > 0):
  // [B] in [0, num_classes) or kNullLabel, none meaning kNullLabel for every example.
  // Returns [B, out_channels, height, width] in x's dtype.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition = {}) override;
  std::vector<int64_t> shape() const override {
    return {options.in_channels(), options.height(), options.width()};
  }
  int64_t num_classes() const override { return options.num_classes(); }
  nlohmann::json config() const override;
  void pretty_print(std::ostream& stream) const override;

  UNetOptions options;
  SinusoidalTimeEmbedding time_features{nullptr};
  torch::nn::Linear time_hidden{nullptr}, time_output{nullptr};
  torch::nn::Embedding class_embedding{nullptr};  // num_classes + 1 rows (the last: no label)
  torch::nn::Conv2d input_conv{nullptr};
  torch::nn::ModuleList down{nullptr};  // stages, each pushing one skip activation
  UNetResBlock middle_res1{nullptr}, middle_res2{nullptr};
  UNetAttentionBlock middle_attention{nullptr};
  torch::nn::ModuleList up{nullptr};  // stages, each popping one skip activation
  torch::nn::GroupNorm output_norm{nullptr};
  torch::nn::Conv2d output_conv{nullptr};  // starts at zero

 protected:
  FORWARD_HAS_DEFAULT_ARGS({2, torch::nn::AnyValue(Condition())})

 private:
  // The stages again, typed, so forward iterates without AnyModule dispatch.
  std::vector<UNetStage> down_stages_, up_stages_;
};
TORCH_MODULE(UNet);

// Every option under its own name plus "type": "unet", so a checkpoint can rebuild the net.
nlohmann::json to_json(const UNetOptions& options);
// Refuses a missing, ill-typed or unknown key, or an out-of-range value, naming it.
UNetOptions unet_options_from_json(const nlohmann::json& json);

}  // namespace sdegen
