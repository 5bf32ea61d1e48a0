#include "sdegen/io/png.h"

#include <png.h>

#include <filesystem>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"
#include "sdegen/core/pixels.h"
#include "sdegen/io/csv.h"

namespace sdegen {

namespace {

// The largest image read_png accepts: a corrupt or hostile header can claim 2^31 x 2^31 pixels,
// which should be an error naming the file, not an allocation failure.
constexpr uint64_t kMaxPngBytes = uint64_t{1} << 31;

// Frees libpng's state on every path out (png_image_free is a no-op on a freed image).
struct ImageGuard {
  png_image* image;
  ~ImageGuard() { png_image_free(image); }
};

std::string png_message(const png_image& image) {
  return image.message[0] ? std::string(image.message) : std::string("unknown libpng error");
}

std::string size_text(int64_t width, int64_t height) {
  return std::to_string(width) + "x" + std::to_string(height);
}

}  // namespace

torch::Tensor read_png(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IoError("'" + path + "' is a folder, not a PNG file");
  if (!std::filesystem::exists(path, ec)) throw IoError("cannot read PNG '" + path + "': no such file");

  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  ImageGuard guard{&image};
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    throw IoError("cannot read PNG '" + path + "': " + png_message(image));

  // 8-bit grey or RGB keeping the file's alpha (dropped below rather than composited), without
  // the palette (expanded) or the linear flag (16-bit files are scaled to 8 bits).
  const bool colour = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = (colour ? PNG_FORMAT_FLAG_COLOR : 0) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0);
  // A 16-bit file without gamma information is sRGB-encoded like an 8-bit one (libpng's default
  // takes it as linear and brightens it on the way to 8 bits).
  image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;

  const int64_t channels = PNG_IMAGE_SAMPLE_CHANNELS(image.format);
  const int64_t height = image.height, width = image.width;
  // In 64 bits: libpng's PNG_IMAGE_SIZE multiplies in 32 and can wrap round.
  const uint64_t bytes = static_cast<uint64_t>(channels) * image.width * image.height;
  if (bytes > kMaxPngBytes)
    throw IoError("PNG '" + path + "' claims " + size_text(width, height) +
                  " pixels (width x height), more than read_png accepts (2 GiB decoded)");
  torch::Tensor hwc = torch::empty({height, width, channels}, torch::kUInt8);
  if (!png_image_finish_read(&image, nullptr, hwc.data_ptr<uint8_t>(), 0, nullptr))
    throw IoError("cannot read PNG '" + path + "': " + png_message(image));
  const int64_t kept = colour ? 3 : 1;
  return hwc.slice(2, 0, kept).permute({2, 0, 1}).contiguous();
}

void write_png(const std::string& path, const torch::Tensor& image) {
  SDEGEN_CHECK(image.defined() && image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
               "PNG '", path, "': the image must be [C, H, W] with C = 1 or 3, got shape ",
               image.defined() ? image.sizes() : torch::IntArrayRef{});
  SDEGEN_CHECK(image.scalar_type() == torch::kUInt8, "PNG '", path, "': the image must be uint8, got ",
               image.scalar_type());
  SDEGEN_CHECK(image.size(1) > 0 && image.size(2) > 0, "PNG '", path, "': the image is empty (",
               image.sizes(), ")");
  SDEGEN_CHECK(image.size(1) <= PNG_UINT_31_MAX && image.size(2) <= PNG_UINT_31_MAX, "PNG '", path,
               "': the image is too large for PNG (", image.sizes(), ")");
  const torch::Tensor hwc = image.detach().to(torch::kCPU).permute({1, 2, 0}).contiguous();

  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.size(2));
  png.height = static_cast<png_uint_32>(image.size(1));
  png.format = image.size(0) == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  ImageGuard guard{&png};
  // Two passes: the first (no buffer) asks how many bytes the encoded file needs.
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, hwc.data_ptr<uint8_t>(), 0, nullptr))
    throw IoError("cannot encode PNG '" + path + "': " + png_message(png));
  std::string encoded(size, '\0');
  if (!png_image_write_to_memory(&png, encoded.data(), &size, 0, hwc.data_ptr<uint8_t>(), 0, nullptr))
    throw IoError("cannot encode PNG '" + path + "': " + png_message(png));
  encoded.resize(size);
  write_file_atomic(path, encoded);
}

void write_image_grid(const std::string& path, const torch::Tensor& images, int64_t columns,
                      int64_t padding) {
  SDEGEN_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
               "image grid '", path, "': images must be [N, C, H, W] with C = 1 or 3, got shape ",
               images.defined() ? images.sizes() : torch::IntArrayRef{});
  SDEGEN_CHECK(images.size(0) > 0, "image grid '", path, "': no images to write");
  SDEGEN_CHECK(columns >= 1, "image grid '", path, "': columns must be at least 1, got ", columns);
  SDEGEN_CHECK(padding >= 0, "image grid '", path, "': padding must be non-negative, got ", padding);
  const torch::Tensor x = images.detach().to(torch::kCPU, torch::kFloat);
  const int64_t nan = torch::isnan(x).sum().item<int64_t>();
  SDEGEN_CHECK(nan == 0, "image grid '", path, "': ", nan, " of ", x.numel(),
               " pixel values are NaN (did sampling diverge?)");

  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t rows = (n + columns - 1) / columns;
  // Cells of (H + padding) x (W + padding), the image in each cell's lower right corner, so that
  // the padding falls above and left of every image; one more strip closes the bottom and right.
  torch::Tensor cells = torch::full({rows * columns, c, h + padding, w + padding}, 255, torch::kUInt8);
  cells.slice(0, 0, n).slice(2, padding).slice(3, padding).copy_(model_to_pixels(x));
  torch::Tensor grid = torch::full({c, rows * (h + padding) + padding, columns * (w + padding) + padding},
                                   255, torch::kUInt8);
  grid.slice(1, 0, rows * (h + padding))
      .slice(2, 0, columns * (w + padding))
      .copy_(cells.view({rows, columns, c, h + padding, w + padding})
                 .permute({2, 0, 3, 1, 4})
                 .reshape({c, rows * (h + padding), columns * (w + padding)}));
  write_png(path, grid);
}

}  // namespace sdegen
