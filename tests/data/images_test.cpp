// Image data: the pixel scaling, dequantisation and bits per dimension; IDX files written here
// byte by byte (plain and gzipped) and each kind of broken one; Fashion-MNIST as Debian ships
// it; folders of PNG images, labelled and flat, with each refusal naming the file.
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "sdegen/core/error.h"
#include "sdegen/data/images.h"
#include "sdegen/io/png.h"
#include "support/support.h"

namespace sdegen {
namespace {
namespace fs = std::filesystem;

TEST(PixelScaling, MapsTheEndsToPlusMinusOneAndRoundTrips) {
  const torch::Tensor v = torch::arange(256, torch::kLong).to(torch::kUInt8);
  const torch::Tensor x = pixels_to_model(v);
  EXPECT_EQ(x.scalar_type(), torch::kFloat);
  EXPECT_EQ(x[0].item<float>(), -1.0f);
  EXPECT_EQ(x[255].item<float>(), 1.0f);
  EXPECT_NEAR(x[51].item<double>(), 51 / 127.5 - 1, 1e-7);
  EXPECT_TRUE(torch::equal(model_to_pixels(x), v));
  EXPECT_TRUE(torch::equal(model_to_pixels(torch::tensor({-3.0, 2.0, 0.0})), torch::tensor({0, 255, 128}, torch::kUInt8)));
}

TEST(Dequantize, StaysInEachPixelsBinAndFillsIt) {
  torch::manual_seed(0);
  const torch::Tensor v = torch::arange(256, torch::kDouble).repeat({400, 1});  // [400, 256]
  const torch::Tensor z = dequantize_pixels(v / 127.5 - 1);
  const torch::Tensor offset = (z + 1) * 127.5 - v;  // in 8-bit steps: must lie in [-1/2, 1/2)
  EXPECT_GE(offset.min().item<double>(), -0.5);
  EXPECT_LT(offset.max().item<double>(), 0.5);
  // Centred on the training value, and spread over the whole bin for every pixel value.
  EXPECT_LT(offset.mean(0).abs().max().item<double>(), 0.06);
  EXPECT_LT(offset.amin(0).max().item<double>(), -0.45);
  EXPECT_GT(offset.amax(0).min().item<double>(), 0.45);
  EXPECT_EQ(z.scalar_type(), torch::kDouble);
}

TEST(Dequantize, RefusesValuesOffTheGridOrOutOfRange) {
  const torch::Tensor x = pixels_to_model(torch::tensor({0, 17, 255}, torch::kUInt8));
  EXPECT_THROW_WITH(dequantize_pixels(dequantize_pixels(x) + 0.001), InvalidArgument, "off that grid");
  EXPECT_THROW_WITH(dequantize_pixels(x + 2.0), InvalidArgument, "values in [-1, 1]");
  EXPECT_THROW_WITH(dequantize_pixels(torch::zeros({2}, torch::kUInt8)), InvalidArgument, "floating");
}

TEST(BitsPerDim, UniformDensitiesGiveTheirKnownValues) {
  const int64_t d = 784;
  // Uniform on the image of [0, 256)^D, a cube of side 256 / 127.5: exactly 8 bits.
  EXPECT_NEAR(bits_per_dim(d * std::log(256 / 127.5), d), 8.0, 1e-12);
  // Uniform on [-1, 1]^D: side 2, i.e. 255 steps of the 8-bit grid.
  EXPECT_NEAR(bits_per_dim(d * std::log(2.0), d), std::log2(255.0), 1e-12);
  EXPECT_THROW_WITH(bits_per_dim(1.0, 0), InvalidArgument, "at least one dimension");
  EXPECT_THROW_WITH(bits_per_dim(std::nan(""), 3), InvalidArgument, "NaN");
}

// Files in a fresh folder per test, removed afterwards.
class Files : public ::testing::Test {
 protected:
  fs::path dir = fs::path(test::temp_path("images_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  std::string write(const std::string& name, const std::string& contents, bool gzip = false) const {
    fs::create_directories(fs::path(path(name)).parent_path());
    if (gzip) {
      gzFile f = gzopen(path(name).c_str(), "wb");
      gzwrite(f, contents.data(), static_cast<unsigned>(contents.size()));
      gzclose(f);
    } else {
      std::ofstream(path(name), std::ios::binary) << contents;
    }
    return path(name);
  }
  // An 8 x 8 (or h x w) PNG of one value, in its own folder path.
  std::string png(const std::string& name, int value, int64_t c = 1, int64_t h = 8, int64_t w = 8) const {
    fs::create_directories(fs::path(path(name)).parent_path());
    write_png(path(name), torch::full({c, h, w}, value, torch::kUInt8));
    return path(name);
  }
};

std::string idx(uint32_t magic, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::vector<uint32_t> header{magic};
  header.insert(header.end(), dims.begin(), dims.end());
  std::string out;
  for (uint32_t v : header)
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
  return out + payload;
}

std::string counting_bytes(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>((i * 37) % 256);
  return s;
}

using Idx = Files;

TEST_F(Idx, RoundTripsPlainAndGzipped) {
  for (bool gz : {false, true}) {
    const std::string images = write(gz ? "i.gz" : "i", idx(0x803, {3, 2, 4}, counting_bytes(24)), gz);
    const std::string labels = write(gz ? "l.gz" : "l", idx(0x801, {3}, std::string("\x02\x00\x02", 3)), gz);
    const ImageData d = read_idx(images, labels);
    ASSERT_EQ(d.x.sizes(), (std::vector<int64_t>{3, 1, 2, 4}));
    EXPECT_TRUE(torch::equal(model_to_pixels(d.x).flatten(),
                             torch::from_blob(counting_bytes(24).data(), {24}, torch::kUInt8)));
    EXPECT_TRUE(torch::equal(d.labels, torch::tensor({2, 0, 2}, torch::kLong)));
    EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "1", "2"}));
    EXPECT_EQ(d.shape(), (std::vector<int64_t>{1, 2, 4}));
    EXPECT_EQ(d.source, images);
  }
}

TEST_F(Idx, RefusesBrokenFilesWithTheNumbers) {
  const std::string labels = write("l", idx(0x801, {2}, "\x01\x01"));
  const std::string swapped = write("swapped", idx(0x801, {2}, "\x01\x01"));
  EXPECT_THROW_WITH(read_idx(swapped, labels), IoError, "swapped' is not an IDX images file: magic number 0x00000801, expected 0x00000803");
  const std::string short_ = write("short", idx(0x803, {2, 3, 3}, counting_bytes(17)));
  EXPECT_THROW_WITH(read_idx(short_, labels), IoError, "promises 2 x 3 x 3 bytes of images but 17 follow");
  const std::string long_ = write("long", idx(0x803, {2, 3, 3}, counting_bytes(19)));
  EXPECT_THROW_WITH(read_idx(long_, labels), IoError, "long' has 1 trailing bytes");
  const std::string header = write("header", idx(0x803, {2}, ""));
  EXPECT_THROW_WITH(read_idx(header, labels), IoError, "ends inside its header (8 bytes, the header has 16)");
  const std::string none = write("none", idx(0x803, {0, 3, 3}, ""));
  EXPECT_THROW_WITH(read_idx(none, labels), IoError, "holds no images");
  const std::string three = write("three", idx(0x803, {3, 1, 1}, "abc"));
  EXPECT_THROW_WITH(read_idx(three, labels), IoError, "hold 2 labels but the images '" + three + "' hold 3 images");
  EXPECT_THROW_WITH(read_idx(path("missing"), labels), IoError, "missing");

  // A gzip stream cut short is an error, not a short file read as complete.
  const std::string gz = write("cut.gz", idx(0x803, {2, 30, 30}, counting_bytes(1800)), true);
  std::ifstream in(gz, std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = write("cut2.gz", whole.substr(0, whole.size() / 2));
  EXPECT_THROW_WITH(read_idx(cut, labels), IoError, "cut2.gz");
}

TEST(FashionMnist, LoadsBothSplitsWithTenBalancedClasses) {
  for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", 60000}, {"test", 10000}}) {
    const ImageData d = load_fashion_mnist(split);
    ASSERT_EQ(d.x.sizes(), (std::vector<int64_t>{n, 1, 28, 28})) << split;
    EXPECT_EQ(d.x.scalar_type(), torch::kFloat);
    EXPECT_EQ(d.x.min().item<float>(), -1.0f);
    EXPECT_EQ(d.x.max().item<float>(), 1.0f);
    ASSERT_EQ(d.num_classes(), 10);
    EXPECT_EQ(d.class_names.front(), "T-shirt/top");
    EXPECT_EQ(d.class_names.back(), "Ankle boot");
    EXPECT_EQ(d.labels.min().item<int64_t>(), 0);
    EXPECT_EQ(d.labels.max().item<int64_t>(), 9);
    // Zalando's splits hold exactly n / 10 images of each class.
    EXPECT_TRUE(torch::equal(torch::bincount(d.labels), torch::full({10}, n / 10, torch::kLong))) << split;
  }
}

TEST(FashionMnist, NamesThePackageAndTheValidSplits) {
  EXPECT_THROW_WITH(load_fashion_mnist("val"), InvalidArgument, "valid: train, test");
  EXPECT_THROW_WITH(load_fashion_mnist("train", "/nonexistent/fm"), IoError, "dataset-fashion-mnist");
  EXPECT_THROW_WITH(load_fashion_mnist("test", "/nonexistent/fm"), IoError,
                    "/nonexistent/fm/t10k-images-idx3-ubyte.gz");
}

using ImageFolder = Files;

TEST_F(ImageFolder, LabelsBySortedClassFolders) {
  png("b/2.png", 30);
  png("b/1.png", 20);
  png("a/9.png", 10);
  write("a/.DS_Store", "not an image");  // hidden: skipped, as is a hidden folder
  write(".cache/notes.txt", "not a class");
  const ImageData d = load_image_folder(dir.string());
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(torch::equal(d.labels, torch::tensor({0, 1, 1}, torch::kLong)));
  ASSERT_EQ(d.x.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  // a/9.png, then b/1.png, then b/2.png.
  EXPECT_TRUE(torch::equal(model_to_pixels(d.x).amax({1, 2, 3}), torch::tensor({10, 20, 30}, torch::kUInt8)));
}

TEST_F(ImageFolder, AFlatFolderIsUnlabelled) {
  png("x.png", 5, 3);
  png("y.png", 6, 3);
  const ImageData d = load_image_folder(dir.string());
  EXPECT_FALSE(d.labelled());
  EXPECT_EQ(d.num_classes(), 0);
  EXPECT_EQ(d.shape(), (std::vector<int64_t>{3, 8, 8}));
  EXPECT_EQ(d.size(), 2);
}

TEST_F(ImageFolder, RefusesADifferentSizeOrChannelCountByName) {
  const std::string first = png("a/y.png", 1);
  const std::string other = png("b/x.png", 1, 1, 12, 10);
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError,
                    "'" + other + "' is 10x12, expected 8x8 like '" + first + "'");
  fs::remove(other);
  const std::string rgb = png("b/x.png", 1, 3);
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError,
                    "'" + rgb + "' has 3 channels (RGB), expected 1 channel (grey) like '" + first + "'");
}

TEST_F(ImageFolder, RefusesFilesThatAreNotPngImagesByName) {
  png("a/0.png", 1);
  const std::string notes = write("a/notes.txt", "hello");
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError, "'" + notes + "' is not a .png file");
  fs::remove(notes);
  const std::string fake = write("a/1.png", "not a png");
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError, fake);
  const std::string cut = write("a/1.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16));
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError, cut);
}

TEST_F(ImageFolder, RefusesEmptyFoldersAndMixedLayouts) {
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError, "holds no PNG images");
  png("a/0.png", 1);
  fs::create_directories(dir / "b");
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError, "class folder '" + path("b") + "' holds no PNG images");
  png("b/0.png", 1);
  png("top.png", 1);
  EXPECT_THROW_WITH(load_image_folder(dir.string()), IoError, "mixes PNG files");
  EXPECT_THROW_WITH(load_image_folder(path("nowhere")), IoError, "does not exist");
}

TEST_F(ImageFolder, ResizesByAreaWhenShrinkingAndBilinearlyWhenEnlarging) {
  // 6 x 6 with one bright corner pixel -> 2 x 2: the area average is 255 / 9 = 28.3 -> 28
  // (bilinear would sample pixel (1, 1) alone and give 0).
  torch::Tensor big = torch::zeros({1, 6, 6}, torch::kUInt8);
  big[0][0][0] = 255;
  fs::create_directories(dir / "big");
  write_png(path("big/0.png"), big);
  ImageData d = load_image_folder(path("big"), 2);
  ASSERT_EQ(d.x.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_TRUE(torch::equal(model_to_pixels(d.x).flatten(), torch::tensor({28, 0, 0, 0}, torch::kUInt8)));
  // 2 x 2 columns of 0 and 255 -> 4 x 4: half-pixel bilinear gives 0, 63.75, 191.25, 255 per row.
  fs::create_directories(dir / "small");
  write_png(path("small/0.png"), torch::tensor({0, 255, 0, 255}, torch::kUInt8).view({1, 2, 2}));
  png("small/1.png", 9, 1, 3, 5);  // another size: allowed when resizing
  d = load_image_folder(path("small"), 4);
  ASSERT_EQ(d.x.sizes(), (std::vector<int64_t>{2, 1, 4, 4}));
  EXPECT_TRUE(torch::equal(model_to_pixels(d.x[0][0][3]), torch::tensor({0, 64, 191, 255}, torch::kUInt8)));
  EXPECT_EQ(model_to_pixels(d.x[1]).max().item<int>(), 9);
  EXPECT_THROW_WITH(load_image_folder(path("small"), -1), InvalidArgument, "image size");
}

}  // namespace
}  // namespace sdegen
