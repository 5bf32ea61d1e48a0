#pragma once
// PNG images in and out (libpng's simplified API), and grids of samples.
//
// Reading gives 8-bit grey or RGB, whatever the file holds:
//   - palette images become RGB, 16-bit channels become 8-bit (round(v / 257));
//   - alpha is dropped, not composited: grey+alpha gives grey and RGBA gives RGB with the colour
//     values as stored, the same pixels as PIL's convert("RGB"), which torchvision uses;
//   - values are delivered as sRGB: files without gamma information (almost all) come back as
//     stored; a file whose gAMA chunk says it is not sRGB is converted to sRGB.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace sdegen {

// The image in `path` as uint8 [C, H, W] with C = 1 (grey) or 3 (RGB). IoError naming the file
// when it is missing, a folder, not a PNG, truncated or corrupt (libpng's reason included).
torch::Tensor read_png(const std::string& path);

// Writes uint8 [C, H, W], C = 1 or 3, as an 8-bit PNG. The file is written to a temporary name
// beside `path` and renamed into place. A wrong dtype or shape is an InvalidArgument, a file that
// cannot be written an IoError, each naming the path.
void write_png(const std::string& path, const torch::Tensor& image);

// Writes images float [N, C, H, W] in model units [-1, 1] (clamped, then mapped to 0..255 by
// model_to_pixels in data/images.h) as one PNG: `columns` images per row, row-major (image k at
// row k / columns, column k % columns), so that a caller can put one row per class. `padding`
// white pixels separate the images and surround the grid, and cells past the last image are
// white: the grid is columns * (W + padding) + padding wide and rows * (H + padding) + padding
// high, rows = ceil(N / columns). NaN pixels are refused (InvalidArgument), as are columns < 1,
// padding < 0, an empty batch and C other than 1 or 3.
void write_image_grid(const std::string& path, const torch::Tensor& images, int64_t columns,
                      int64_t padding = 2);

}  // namespace sdegen
