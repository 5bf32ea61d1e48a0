#pragma once
// Image data sets: Fashion-MNIST's IDX files, folders of PNG images (labelled by sub-folder, as
// torchvision's ImageFolder), the one pixel scaling between 8-bit values and model units, and
// the dequantisation and bits-per-dimension conventions for likelihoods.
//
// Pixel scaling. An 8-bit value v in {0, ..., 255} is x = v / 127.5 - 1 in model units, so 0 is
// -1 and 255 is 1; model_to_pixels is the inverse (clamped, rounded). Every loader and the image
// grid writer go through these two functions.
//
// Dequantisation and bits per dimension. Pixel v stands for the bin [v - 1/2, v + 1/2) of the
// continuous pixel line, centred on v, so that training values (bin centres) and dequantised
// values share one scale:
//   dequantize_pixels: z = (v + u - 1/2) / 127.5 - 1,  u ~ U[0, 1)  (z within 1/255 of v / 127.5 - 1).
// Writing y = v + u in [0, 256) for the usual dequantised pixel (a bin of width 1 per value),
// z = (y - 1/2) / 127.5 - 1 is affine with dz/dy = 1/127.5 in every dimension, so a model
// density p_Z gives p_Y(y) = p_Z(z) / 127.5^D and, for D = C H W dimensions,
//   bits/dim = (NLL_Z + D ln 127.5) / (D ln 2),   NLL_Z = -ln p_Z(z) in nats per image,
// the figure reported in the literature (a bound on the discrete model's -log2 P(v) / D when
// NLL_Z is averaged over u). Check: the uniform density on the image of [0, 256)^D, a cube of
// side 256 / 127.5, has NLL_Z = D ln(256 / 127.5) and so exactly 8 bits/dim; the uniform
// density on [-1, 1]^D gives log2(255).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sdegen/core/pixels.h"

namespace sdegen {

struct ImageData {
  torch::Tensor x;                       // [N, C, H, W] float32 in [-1, 1]
  torch::Tensor labels;                  // [N] int64 in [0, num_classes()), undefined when unlabelled
  std::vector<std::string> class_names;  // empty when unlabelled
  std::string source;                    // the folder or file the images came from

  int64_t size() const { return x.size(0); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  bool labelled() const { return labels.defined(); }
  // The images (and labels) at `rows` [k] int64, named `source_name`: a split of this set.
  ImageData select(const torch::Tensor& rows, const std::string& source_name) const {
    ImageData out = *this;
    out.x = x.index_select(0, rows);
    if (labelled()) out.labels = labels.index_select(0, rows);
    out.source = source_name;
    return out;
  }
  std::vector<int64_t> shape() const { return {x.size(1), x.size(2), x.size(3)}; }  // {C, H, W}
};

// x on the 8-bit grid (v / 127.5 - 1, as the loaders give) -> (v + u - 1/2) / 127.5 - 1 with a
// fresh u ~ U[0, 1) per element from torch's default generator, in x's dtype and device. Values
// off the grid (by more than 1e-3 of a step, e.g. already dequantised data) or outside [-1, 1]
// are refused: dequantising twice would widen the bins silently. (Not named `dequantize`: ATen's
// at::dequantize, found by argument-dependent lookup, would make every unqualified call ambiguous.)
torch::Tensor dequantize_pixels(const torch::Tensor& x_scaled_8bit);

// (nll + dims ln 127.5) / (dims ln 2): see the header comment. dims >= 1; nll not NaN.
double bits_per_dim(double nll_nats_per_image, int64_t dims);

// IDX files as LeCun's MNIST and Zalando's Fashion-MNIST ship them, gzipped or plain: images
// IDX3 (magic 0x00000803, then N, rows, columns as big-endian uint32, then N rows columns bytes)
// and labels IDX1 (magic 0x00000801, then N, then N bytes). Refused (IoError) naming the file
// and the numbers: a file that cannot be read, a wrong magic, a truncated or over-long file,
// zero images, differing counts. The classes are named "0", "1", ... up to the largest label.
ImageData read_idx(const std::string& images_path, const std::string& labels_path);

// Fashion-MNIST's "train" (60000 images) or "test" (10000) split from `dir`, 1 x 28 x 28 with the
// ten class names (T-shirt/top, Trouser, ..., Ankle boot). The files are
// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or the same without .gz). Missing files are an
// IoError naming the path and Debian's package dataset-fashion-mnist; another split an
// InvalidArgument listing the valid ones.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
ImageData load_fashion_mnist(const std::string& split, const std::string& dir = kFashionMnistDir);
const std::vector<std::string>& fashion_mnist_classes();

// Every PNG image in `dir`, in sorted (byte-wise) path order:
//   - dir/<class>/*.png: labelled, classes numbered by their sorted folder names;
//   - dir/*.png: unlabelled.
// Names starting with '.' are skipped. Refused (IoError), by name: a folder holding both PNG
// files and class folders, any other file (only .png is read), a folder inside a class folder,
// an empty folder or class, a file that is not a PNG or is truncated, and an image whose channel
// count differs from the first one's. With image_size = 0 the images must also share the first
// one's width and height; with image_size > 0 each is resized to image_size x image_size (area
// averaging when no side grows, bilinear otherwise) and rounded back to 8-bit values, as
// torchvision's Resize does on PIL images, so the data stay on the grid dequantize_pixels expects.
ImageData load_image_folder(const std::string& dir, int64_t image_size = 0);

}  // namespace sdegen
