// IDX files (MNIST, Fashion-MNIST), gzipped or plain, and the Fashion-MNIST splits.
#include <zlib.h>

#include <cstdio>
#include <filesystem>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"
#include "sdegen/data/images.h"

namespace sdegen {

namespace {

// The whole file, decompressed when gzipped (zlib reads plain files as they are).
std::string read_maybe_gzipped(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IoError("'" + path + "' is a folder, not an IDX file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw IoError("cannot open IDX file '" + path + "'");
  gzbuffer(f, 1 << 20);
  std::string bytes;
  constexpr unsigned kChunk = 1u << 22;
  for (;;) {
    const size_t at = bytes.size();
    bytes.resize(at + kChunk);
    const int got = gzread(f, bytes.data() + at, kChunk);
    bytes.resize(at + static_cast<size_t>(std::max(got, 0)));
    if (got <= 0) break;
  }
  int code = Z_OK;
  const std::string message = gzerror(f, &code);
  gzclose(f);
  if (code != Z_OK && code != Z_STREAM_END)
    throw IoError("cannot read IDX file '" + path + "': " + message + " (a truncated or corrupt gzip file?)");
  return bytes;
}

uint32_t big_endian_u32(const std::string& b, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// A file whose contents are wrong is an IoError (a bad file, not a bad argument).
template <typename... Args>
void require(bool ok, const Args&... pieces) {
  if (!ok) throw IoError(detail::concat(pieces...));
}

std::string hex(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

// The dimensions of an IDX file of unsigned bytes with `rank` dimensions, after checking its
// magic number, that no dimension is zero, and that exactly their product of bytes follows.
std::vector<uint64_t> idx_dims(const std::string& bytes, const std::string& path, uint32_t rank,
                               const char* what) {
  const uint32_t magic = 0x0800u | rank;
  const size_t header = 4 * (1 + rank);
  require(bytes.size() >= 4, "IDX file '", path, "' has ", bytes.size(),
               " bytes, too short for an IDX header");
  require(big_endian_u32(bytes, 0) == magic, "'", path, "' is not an IDX ", what, " file: magic number ",
               hex(big_endian_u32(bytes, 0)), ", expected ", hex(magic));
  require(bytes.size() >= header, "IDX file '", path, "' ends inside its header (", bytes.size(),
               " bytes, the header has ", header, ")");
  std::vector<uint64_t> dims;
  for (uint32_t k = 0; k < rank; ++k) dims.push_back(big_endian_u32(bytes, 4 + 4 * k));
  require(dims[0] > 0, "IDX file '", path, "' holds no ", what, " (its count is 0)");
  uint64_t per_item = 1;  // at most (2^32 - 1)^2: no overflow
  for (uint32_t k = 1; k < rank; ++k) {
    require(dims[k] > 0, "IDX file '", path, "': dimension ", k + 1, " of its header is 0");
    per_item *= dims[k];
  }
  const uint64_t body = bytes.size() - header;
  std::string shape = std::to_string(dims[0]);
  for (uint32_t k = 1; k < rank; ++k) shape += " x " + std::to_string(dims[k]);
  // Compared by division: dims[0] * per_item can overflow 64 bits in a corrupt header.
  require(body / per_item >= dims[0], "IDX file '", path, "' is truncated: its header promises ", shape,
               " bytes of ", what, " but ", body, " follow");
  require(body == dims[0] * per_item, "IDX file '", path, "' has ", body - dims[0] * per_item,
               " trailing bytes after the ", shape, " bytes of ", what, " its header promises");
  return dims;
}

std::string find_fashion_file(const std::string& dir, const std::string& name) {
  const std::string gz = (std::filesystem::path(dir) / (name + ".gz")).string();
  const std::string plain = (std::filesystem::path(dir) / name).string();
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(plain, ec)) return plain;
  throw IoError("Fashion-MNIST file '" + gz + "' not found (nor '" + name +
                "' without .gz); install Debian's package dataset-fashion-mnist "
                "(apt-get install dataset-fashion-mnist) or pass the folder that holds the files");
}

}  // namespace

ImageData read_idx(const std::string& images_path, const std::string& labels_path) {
  const std::string image_bytes = read_maybe_gzipped(images_path);
  const std::vector<uint64_t> d = idx_dims(image_bytes, images_path, 3, "images");
  const std::string label_bytes = read_maybe_gzipped(labels_path);
  const std::vector<uint64_t> l = idx_dims(label_bytes, labels_path, 1, "labels");
  require(l[0] == d[0], "IDX labels '", labels_path, "' hold ", l[0], " labels but the images '",
               images_path, "' hold ", d[0], " images");

  const auto n = static_cast<int64_t>(d[0]), h = static_cast<int64_t>(d[1]), w = static_cast<int64_t>(d[2]);
  ImageData data;
  // from_blob borrows the bytes; pixels_to_model and to(kLong) copy them out.
  auto* pixels = const_cast<char*>(image_bytes.data() + 16);
  data.x = pixels_to_model(torch::from_blob(pixels, {n, 1, h, w}, torch::kUInt8));
  auto* labels = const_cast<char*>(label_bytes.data() + 8);
  data.labels = torch::from_blob(labels, {n}, torch::kUInt8).to(torch::kLong);
  const int64_t classes = data.labels.max().item<int64_t>() + 1;
  for (int64_t k = 0; k < classes; ++k) data.class_names.push_back(std::to_string(k));
  data.source = images_path;
  return data;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

ImageData load_fashion_mnist(const std::string& split, const std::string& dir) {
  check_name("Fashion-MNIST split", split, {"train", "test"});
  const std::string prefix = split == "train" ? "train" : "t10k";
  // Looked up one after the other, so that a missing folder is reported by its image file.
  const std::string images = find_fashion_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels = find_fashion_file(dir, prefix + "-labels-idx1-ubyte");
  ImageData data = read_idx(images, labels);
  const auto classes = static_cast<int64_t>(fashion_mnist_classes().size());
  require(data.num_classes() <= classes, "Fashion-MNIST labels '", data.source, "' reach ",
               data.num_classes() - 1, ", expected 0..", classes - 1);
  data.class_names = fashion_mnist_classes();
  return data;
}

}  // namespace sdegen
