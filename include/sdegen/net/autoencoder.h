#pragma once
// The convolutional encoder and decoder of a KL autoencoder (latent diffusion's "KL-f4" family,
// Rombach et al. 2022, made small), for images [B, C, H, W]:
//   encoder: conv3x3 -> for each level: a residual block, then (all but the last) a stride-2 conv
//            -> a residual block -> GroupNorm, SiLU, conv3x3 to 2 latent_channels: the mean and
//            the log-variance of a diagonal Gaussian over latents [B, latent_channels, H/2^k, W/2^k]
//   decoder: conv3x3 from the latents -> a residual block -> for each level, coarsest first: a
//            residual block, then (all but the finest) nearest-neighbour upsampling and a conv3x3
//            to the finer level's channels -> GroupNorm, SiLU, conv3x3 to C channels.
// k = channels.size() - 1 halvings: the default {16, 32, 64} maps 28x28 images to 4x7x7 latents.
// A residual block is GroupNorm, SiLU, conv3x3, GroupNorm, SiLU, conv3x3, added to its input
// (through a 1x1 conv where the channel count changes); the blocks carry no time or label.
// This is not a network of net/network.h's interface ((x, t, condition) -> x): it maps between two
// spaces. model/autoencoder.h trains it; model/latent.h puts a generative model on its latents.
#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace sdegen {

struct AutoencoderOptions {
  AutoencoderOptions(int64_t in_channels, int64_t height, int64_t width)
      : in_channels_(in_channels), height_(height), width_(width) {}
  TORCH_ARG(int64_t, in_channels);          // >= 1
  TORCH_ARG(int64_t, height);               // >= 1, divisible by 2^(levels - 1)
  TORCH_ARG(int64_t, width);                // >= 1, divisible by 2^(levels - 1)
  TORCH_ARG(int64_t, latent_channels) = 4;  // >= 1 (latent diffusion's f4 models: 3 or 4)
  // Channels of each level, finest first; one halving between levels. Each a multiple of groups.
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{16, 32, 64};
  TORCH_ARG(int64_t, groups) = 8;           // GroupNorm groups, >= 1

 public:
  int64_t halvings() const { return static_cast<int64_t>(channels_.size()) - 1; }
  std::vector<int64_t> latent_shape() const {
    return {latent_channels_, height_ >> halvings(), width_ >> halvings()};
  }
};

// Throws InvalidArgument naming the first option out of range or the numbers that do not fit
// together (an image not divisible by the halvings, channels not divisible by groups).
void check_autoencoder_options(const AutoencoderOptions& options);

// A diagonal Gaussian over latents: mean and log-variance, both [B, *latent_shape].
struct LatentPosterior {
  torch::Tensor mean, logvar;
};

class AutoencoderNetImpl : public torch::nn::Module {
 public:
  explicit AutoencoderNetImpl(const AutoencoderOptions& options);

  // x: [B, in_channels, height, width] -> the posterior over latents [B, *latent_shape].
  LatentPosterior encode(const torch::Tensor& x);
  // z: [B, *latent_shape] -> images [B, in_channels, height, width] (not clamped).
  torch::Tensor decode(const torch::Tensor& z);

  AutoencoderOptions options;
  torch::nn::Sequential encoder{nullptr}, decoder{nullptr};
};
TORCH_MODULE(AutoencoderNet);

// Every option under its own name plus "type": "autoencoder".
nlohmann::json to_json(const AutoencoderOptions& options);
// Refuses a missing, ill-typed or unknown key, or an out-of-range value, naming it.
AutoencoderOptions autoencoder_options_from_json(const nlohmann::json& json);

}  // namespace sdegen
