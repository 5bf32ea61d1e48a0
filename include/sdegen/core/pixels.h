#pragma once
// The one pixel scaling between 8-bit values and model units: v in {0, ..., 255} is
// x = v / 127.5 - 1, so 0 is -1 and 255 is 1 (data/images.h explains the dequantisation and
// bits-per-dimension conventions built on it). In core, below both the image readers (data) and
// the PNG writer (io), which use it.
#include <torch/torch.h>

#include "sdegen/core/check.h"

namespace sdegen {

constexpr double kPixelScale = 127.5;  // model units per 8-bit step: x = v / kPixelScale - 1

// uint8 (any shape) -> float32 v / 127.5 - 1.
inline torch::Tensor pixels_to_model(const torch::Tensor& pixels) {
  SDEGEN_CHECK(pixels.defined(), "pixels_to_model: the pixel tensor is undefined");
  SDEGEN_CHECK(pixels.scalar_type() == torch::kUInt8, "pixels_to_model expects uint8 pixels, got ",
               pixels.scalar_type());
  return pixels.to(torch::kFloat).div_(kPixelScale).sub_(1.0);
}

// Model units (any shape, floating) -> uint8 round((clamp(x, -1, 1) + 1) * 127.5). NaN is refused.
inline torch::Tensor model_to_pixels(const torch::Tensor& x) {
  SDEGEN_CHECK(x.defined() && x.is_floating_point(), "model_to_pixels expects a floating tensor");
  SDEGEN_CHECK(!torch::isnan(x).any().item<bool>(), "model_to_pixels: ", torch::isnan(x).sum().item<int64_t>(),
               " of ", x.numel(), " values are NaN");
  return (x.clamp(-1.0, 1.0) + 1.0).mul_(kPixelScale).round_().to(torch::kUInt8);
}

}  // namespace sdegen
