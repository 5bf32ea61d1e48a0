// Pixel scaling, dequantisation, bits per dimension, and folders of PNG images.
#include "sdegen/data/images.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"
#include "sdegen/io/png.h"

namespace sdegen {

namespace fs = std::filesystem;

torch::Tensor dequantize_pixels(const torch::Tensor& x_scaled_8bit) {
  const torch::Tensor& x = x_scaled_8bit;
  SDEGEN_CHECK(x.defined() && x.is_floating_point(), "dequantize_pixels expects floating model units");
  if (x.numel() == 0) return x.clone();
  const torch::Tensor v = (x + 1.0) * kPixelScale;
  const torch::Tensor level = v.round();
  const double off_grid = (v - level).abs().max().item<double>();
  SDEGEN_CHECK(off_grid <= 1e-3, "dequantize_pixels expects 8-bit values v / 127.5 - 1, but a value lies ", off_grid,
               " of a step off that grid (already dequantised, or not image data?)");
  const double lo = level.min().item<double>(), hi = level.max().item<double>();
  SDEGEN_CHECK(lo >= 0 && hi <= 255, "dequantize_pixels expects values in [-1, 1], got levels from ", lo, " to ", hi,
               " (of 0..255)");
  return (level + torch::rand_like(x) - 0.5) / kPixelScale - 1.0;
}

double bits_per_dim(double nll_nats_per_image, int64_t dims) {
  SDEGEN_CHECK(dims >= 1, "bits_per_dim needs at least one dimension, got ", dims);
  SDEGEN_CHECK(!std::isnan(nll_nats_per_image), "bits_per_dim: the negative log-likelihood is NaN");
  const double d = static_cast<double>(dims);
  return (nll_nats_per_image + d * std::log(kPixelScale)) / (d * std::log(2.0));
}

namespace {

std::vector<fs::path> sorted_entries(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind('.', 0) != 0) entries.push_back(it->path());
  if (ec) throw IoError("cannot list image folder '" + dir.string() + "': " + ec.message());
  std::sort(entries.begin(), entries.end());
  return entries;
}

bool is_png_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png";
}

void require_png_name(const fs::path& p, const char* where) {
  if (!is_png_name(p))
    throw IoError("'" + p.string() + "' is not a .png file; " + where +
                  " may hold only PNG images (names starting with '.' are skipped)");
}

std::string channel_text(int64_t c) { return std::to_string(c) + (c == 1 ? " channel (grey)" : " channels (RGB)"); }

torch::Tensor resize(const torch::Tensor& pixels, int64_t size) {
  if (pixels.size(1) == size && pixels.size(2) == size) return pixels;
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{size, size});
  // Area averaging shrinks without aliasing; it cannot enlarge, where bilinear is the usual choice.
  if (size > pixels.size(1) || size > pixels.size(2))
    options.mode(torch::kBilinear).align_corners(false);
  else
    options.mode(torch::kArea);
  const torch::Tensor out = F::interpolate(pixels.unsqueeze(0).to(torch::kFloat), options).squeeze(0);
  return out.round().clamp(0, 255).to(torch::kUInt8);
}

// Reads the images in order, each checked against the first.
class FolderReader {
 public:
  explicit FolderReader(int64_t image_size) : image_size_(image_size) {}

  void add(const fs::path& path) {
    torch::Tensor image = read_png(path.string());
    const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
    if (images_.empty()) {
      first_ = path.string(), c_ = c, h_ = h, w_ = w;
    } else if (c != c_) {
      throw IoError("'" + path.string() + "' has " + channel_text(c) + ", expected " + channel_text(c_) +
                    " like '" + first_ + "'");
    } else if (image_size_ == 0 && (h != h_ || w != w_)) {
      throw IoError("'" + path.string() + "' is " + std::to_string(w) + "x" + std::to_string(h) + ", expected " +
                    std::to_string(w_) + "x" + std::to_string(h_) + " like '" + first_ +
                    "' (width x height; pass an image size to resize them all)");
    }
    images_.push_back(image_size_ > 0 ? resize(image, image_size_) : image);
  }

  torch::Tensor stacked() const { return pixels_to_model(torch::stack(images_)); }

 private:
  int64_t image_size_;
  std::vector<torch::Tensor> images_;
  std::string first_;
  int64_t c_ = 0, h_ = 0, w_ = 0;
};

}  // namespace

ImageData load_image_folder(const std::string& dir, int64_t image_size) {
  SDEGEN_CHECK(image_size >= 0, "image size must be 0 (keep) or positive, got ", image_size);
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw IoError("image folder '" + dir + "' does not exist");
  if (!fs::is_directory(dir, ec)) throw IoError("'" + dir + "' is not a folder of images");

  std::vector<fs::path> files, classes;
  for (const fs::path& p : sorted_entries(dir)) {
    if (fs::is_directory(p, ec)) {
      classes.push_back(p);
    } else {
      require_png_name(p, "an image folder");
      files.push_back(p);
    }
  }
  if (files.empty() && classes.empty()) throw IoError("image folder '" + dir + "' holds no PNG images");
  if (!files.empty() && !classes.empty())
    throw IoError("image folder '" + dir + "' mixes PNG files ('" + files.front().string() +
                  "') with class folders ('" + classes.front().string() +
                  "'); put every image in a class folder, or none");

  ImageData data;
  data.source = dir;
  FolderReader reader(image_size);
  if (classes.empty()) {
    for (const fs::path& f : files) reader.add(f);
    data.x = reader.stacked();
    return data;
  }
  std::vector<int64_t> labels;
  for (size_t k = 0; k < classes.size(); ++k) {
    const std::vector<fs::path> members = sorted_entries(classes[k]);
    if (members.empty()) throw IoError("class folder '" + classes[k].string() + "' holds no PNG images");
    for (const fs::path& f : members) {
      if (fs::is_directory(f, ec))
        throw IoError("'" + f.string() + "' is a folder inside the class folder '" + classes[k].string() +
                      "'; class folders may hold only PNG images");
      require_png_name(f, "a class folder");
      reader.add(f);
      labels.push_back(static_cast<int64_t>(k));
    }
    data.class_names.push_back(classes[k].filename().string());
  }
  data.x = reader.stacked();
  data.labels = torch::tensor(labels, torch::kLong);
  return data;
}

}  // namespace sdegen
