// PNG reading and writing: exact round trips, the conversions of RGBA, grey+alpha, palette and
// 16-bit files (built byte by byte here, as libpng's simplified writer makes none of them
// without gamma information), broken files refused by name, and the grid layout.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "sdegen/core/error.h"
#include "sdegen/data/images.h"
#include "sdegen/io/png.h"
#include "support/support.h"

namespace sdegen {
namespace {
namespace fs = std::filesystem;

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

std::string chunk(const std::string& type, const std::string& data) {
  std::string out;
  put_u32(out, static_cast<uint32_t>(data.size()));
  const std::string body = type + data;
  out += body;
  put_u32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
  return out;
}

// A PNG file: `rows` holds the raw samples of each row (big-endian for 16 bits), no filter bytes.
std::string png_bytes(uint32_t w, uint32_t h, int depth, int colour_type, const std::vector<std::string>& rows,
                      const std::string& extra_chunks = "") {
  std::string ihdr;
  put_u32(ihdr, w);
  put_u32(ihdr, h);
  ihdr += {static_cast<char>(depth), static_cast<char>(colour_type), 0, 0, 0};
  std::string raw;
  for (const auto& r : rows) raw += '\0' + r;  // filter type 0 (none) before each row
  uLongf size = compressBound(raw.size());
  std::string idat(size, '\0');
  compress(reinterpret_cast<Bytef*>(idat.data()), &size, reinterpret_cast<const Bytef*>(raw.data()), raw.size());
  idat.resize(size);
  return "\x89PNG\r\n\x1a\n" + chunk("IHDR", ihdr) + extra_chunks + chunk("IDAT", idat) + chunk("IEND", "");
}

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s += static_cast<char>(v);
  return s;
}

class Png : public ::testing::Test {
 protected:
  fs::path dir = fs::path(test::temp_path("png_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  std::string write(const std::string& name, const std::string& contents) const {
    std::ofstream(path(name), std::ios::binary) << contents;
    return path(name);
  }
  static torch::Tensor random_image(int64_t c, int64_t h, int64_t w) {
    return torch::randint(0, 256, {c, h, w}, torch::kLong).to(torch::kUInt8);
  }
};

TEST_F(Png, GreyRoundTripIsExact) {
  const torch::Tensor image = random_image(1, 5, 7);
  write_png(path("g.png"), image);
  const torch::Tensor back = read_png(path("g.png"));
  ASSERT_EQ(back.sizes(), image.sizes());
  EXPECT_EQ(back.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(back, image));
}

TEST_F(Png, RgbRoundTripIsExact) {
  torch::Tensor image = random_image(3, 4, 6);
  image[0][0][0] = 0, image[1][0][0] = 255;  // both ends of the range
  write_png(path("c.png"), image);
  const torch::Tensor back = read_png(path("c.png"));
  ASSERT_EQ(back.sizes(), image.sizes());
  EXPECT_TRUE(torch::equal(back, image));
}

TEST_F(Png, RgbaKeepsTheColourAndDropsAlpha) {
  // 2 x 1: an opaque pixel and a fully transparent one whose colour must survive as stored.
  write("rgba.png", png_bytes(2, 1, 8, 6, {bytes({10, 20, 30, 255, 200, 150, 100, 0})}));
  const torch::Tensor back = read_png(path("rgba.png"));
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{3, 1, 2}));
  EXPECT_TRUE(torch::equal(back.flatten(), torch::tensor({10, 200, 20, 150, 30, 100}, torch::kUInt8)));
}

TEST_F(Png, GreyAlphaBecomesGrey) {
  write("ga.png", png_bytes(2, 1, 8, 4, {bytes({77, 255, 190, 0})}));
  const torch::Tensor back = read_png(path("ga.png"));
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_TRUE(torch::equal(back.flatten(), torch::tensor({77, 190}, torch::kUInt8)));
}

TEST_F(Png, PaletteBecomesRgb) {
  const std::string plte = chunk("PLTE", bytes({255, 0, 0, 1, 2, 3}));
  write("p.png", png_bytes(3, 1, 8, 3, {bytes({1, 0, 1})}, plte));
  const torch::Tensor back = read_png(path("p.png"));
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{3, 1, 3}));
  EXPECT_TRUE(torch::equal(back[0][0], torch::tensor({1, 255, 1}, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(back[2][0], torch::tensor({3, 0, 3}, torch::kUInt8)));
}

TEST_F(Png, SixteenBitsScaleToEightWithoutAGammaChange) {
  // v * 257 is the 16-bit value of v; libpng's default would take the file as linear and turn
  // 128 * 257 into about 188. 0x1270 and 0x12f0 are 18.4 and 18.9 times 257: rounded, not cut.
  write("g16.png", png_bytes(5, 1, 16, 0, {bytes({0, 0, 128, 128, 255, 255, 0x12, 0x70, 0x12, 0xF0})}));
  const torch::Tensor grey = read_png(path("g16.png"));
  ASSERT_EQ(grey.sizes(), (std::vector<int64_t>{1, 1, 5}));
  EXPECT_TRUE(torch::equal(grey.flatten(), torch::tensor({0, 128, 255, 18, 19}, torch::kUInt8)));
  write("c16.png", png_bytes(1, 1, 16, 2, {bytes({18, 18, 100, 100, 230, 230})}));
  EXPECT_TRUE(torch::equal(read_png(path("c16.png")).flatten(), torch::tensor({18, 100, 230}, torch::kUInt8)));
}

TEST_F(Png, BrokenFilesAreRefusedByName) {
  const std::string text = write("text.png", "this is not a PNG file\n");
  EXPECT_THROW_WITH(read_png(text), IoError, text);
  const std::string empty = write("empty.png", "");
  EXPECT_THROW_WITH(read_png(empty), IoError, empty);
  EXPECT_THROW_WITH(read_png(path("missing.png")), IoError, "missing.png': no such file");
  EXPECT_THROW_WITH(read_png(dir.string()), IoError, "is a folder");

  write_png(path("whole.png"), random_image(3, 16, 16));
  std::ifstream in(path("whole.png"), std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t keep : {size_t{20}, whole.size() / 2, whole.size() - 13}) {  // in IHDR, in IDAT, before IEND
    const std::string cut = write("cut" + std::to_string(keep) + ".png", whole.substr(0, keep));
    EXPECT_THROW_WITH(read_png(cut), IoError, cut);
  }
  std::string corrupt = whole;
  corrupt[whole.size() / 2] ^= 0x55;  // inside IDAT: its CRC no longer matches
  EXPECT_THROW_WITH(read_png(write("crc.png", corrupt)), IoError, "crc.png");
}

TEST_F(Png, WriteRefusesBadImagesAndPathsByName) {
  EXPECT_THROW_WITH(write_png(path("f.png"), torch::zeros({1, 2, 2})), InvalidArgument, "must be uint8");
  EXPECT_THROW_WITH(write_png(path("f.png"), torch::zeros({2, 2, 2}, torch::kUInt8)), InvalidArgument,
                    "C = 1 or 3");
  EXPECT_THROW_WITH(write_png(path("no/such/dir/f.png"), torch::zeros({1, 2, 2}, torch::kUInt8)), IoError,
                    "no/such/dir/f.png");
  EXPECT_FALSE(fs::exists(path("f.png")));
}

TEST_F(Png, GridPlacesImagesRowMajorOnWhite) {
  // 5 images of 2 x 3 in 3 columns with padding 1: 2 rows, 3 * 4 + 1 = 13 wide, 2 * 3 + 1 = 7 high.
  torch::Tensor images = torch::full({5, 1, 2, 3}, -1.0);
  images[4][0][1][2] = 200 / kPixelScale - 1;  // image 4: row 1, column 1
  images[0][0][0][0] = 7.0;                    // clamped to 255
  write_image_grid(path("grid.png"), images, 3, 1);
  const torch::Tensor grid = read_png(path("grid.png"));
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{1, 7, 13}));
  EXPECT_EQ(grid[0][1 * 3 + 1 + 1][1 * 4 + 1 + 2].item<int>(), 200);
  EXPECT_EQ(grid[0][1][1].item<int>(), 255);
  EXPECT_EQ(grid[0][1][2].item<int>(), 0);
  EXPECT_EQ(grid[0][0].min().item<int>(), 255);                      // top border
  EXPECT_EQ(grid[0].select(1, 4).min().item<int>(), 255);            // between columns 0 and 1
  EXPECT_EQ(grid[0].slice(0, 4, 6).slice(1, 9, 12).min().item<int>(), 255);  // the empty sixth cell
  // Every image pixel but the two set above is black: 5 * 6 - 2 zeros.
  EXPECT_EQ((grid == 0).sum().item<int64_t>(), 28);
}

TEST_F(Png, GridWithoutPaddingTilesExactly) {
  const torch::Tensor images = torch::rand({4, 3, 5, 2}) * 2 - 1;
  write_image_grid(path("tiles.png"), images, 2, 0);
  const torch::Tensor grid = read_png(path("tiles.png"));
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{3, 10, 4}));
  EXPECT_TRUE(torch::equal(grid.slice(1, 5, 10).slice(2, 0, 2), model_to_pixels(images[2])));
  EXPECT_TRUE(torch::equal(grid.slice(1, 0, 5).slice(2, 2, 4), model_to_pixels(images[1])));
}

TEST_F(Png, GridRefusesNanAndBadLayouts) {
  torch::Tensor images = torch::zeros({2, 1, 3, 3});
  images[1][0][2][2] = std::nan("");
  EXPECT_THROW_WITH(write_image_grid(path("nan.png"), images, 2), InvalidArgument, "1 of 18 pixel values are NaN");
  EXPECT_FALSE(fs::exists(path("nan.png")));
  EXPECT_THROW_WITH(write_image_grid(path("g.png"), torch::zeros({2, 1, 3, 3}), 0), InvalidArgument, "columns");
  EXPECT_THROW_WITH(write_image_grid(path("g.png"), torch::zeros({2, 2, 3, 3}), 1), InvalidArgument, "C = 1 or 3");
  EXPECT_THROW_WITH(write_image_grid(path("g.png"), torch::zeros({0, 1, 3, 3}), 1), InvalidArgument, "no images");
}

}  // namespace
}  // namespace sdegen
