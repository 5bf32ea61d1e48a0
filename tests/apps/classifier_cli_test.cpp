// sdegen train-classifier end to end on a tiny labelled folder of PNG images, and its refusals.
#include <regex>

#include "apps/cli_support.h"
#include "sdegen/io/png.h"

namespace sdegen {
namespace {

using test::CliTest;
using test::run_sdegen;

class ClassifierCli : public CliTest {
 protected:
  // DIR/<a|b>/<k>.png: 8x8 grey images, class a bright on the left, class b on the right.
  std::string folder(const std::string& name, int per_class, const std::vector<std::string>& classes = {"a", "b"}) {
    const std::string root = path(name);
    for (size_t c = 0; c < classes.size(); ++c) {
      std::filesystem::create_directories(root + "/" + classes[c]);
      for (int k = 0; k < per_class; ++k) {
        torch::Tensor img = torch::full({1, 8, 8}, 20 + 3 * k, torch::kUInt8);
        img.narrow(2, c == 0 ? 0 : 4, 4).fill_(200 + k);
        write_png(root + "/" + classes[c] + "/" + std::to_string(k) + ".png", img);
      }
    }
    return root;
  }
};

TEST_F(ClassifierCli, TrainsOnAFolderAndPrintsTheTestAccuracy) {
  const std::string data = folder("images", 15), out = path("clf");
  const std::string command = "train-classifier --data " + data + " --out " + out + " --batch 8";
  const test::Outcome r = run_sdegen(command + " --epochs 3");
  ASSERT_EQ(r.code, 0) << r.output;
  // 30 images: a seeded 10% (3) held out.
  EXPECT_NE(r.output.find("trained a classifier on '" + data + "' (27 images of 1x8x8, 2 classes)"), std::string::npos)
      << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("test accuracy ([0-9.]+) on 3 images"))) << r.output;
  EXPECT_GE(std::stod(m[1]), 0.0);
  EXPECT_LE(std::stod(m[1]), 1.0);
  EXPECT_NE(r.output.find("classifier epoch 3/3"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::is_regular_file(out + "/config.json"));
  EXPECT_TRUE(std::filesystem::is_regular_file(out + "/weights.pt"));
  EXPECT_CLI_ERROR(run_sdegen(command), "'" + out + "' already holds a classifier; pass --overwrite");
  const test::Outcome again = run_sdegen(command + " --overwrite --epochs 1");
  EXPECT_NE(again.output.find("classifier epoch 1/1"), std::string::npos) << again.output;
  EXPECT_EQ(again.code, 0) << again.output;
}

TEST_F(ClassifierCli, RefusesBadData) {
  EXPECT_CLI_ERROR(run_sdegen("train-classifier --data " + path("nope") + " --out " + path("clf")),
                   "unknown data '" + path("nope") + "'; valid: fashion-mnist, or a folder of labelled PNG images");
  const std::string data = folder("images", 4);
  EXPECT_CLI_ERROR(run_sdegen("train-classifier --data " + data + " --test " + folder("other", 2, {"a", "c"}) +
                              " --out " + path("clf")),
                   "have the classes [a, c], the training images '" + data + "' have [a, b]");
  EXPECT_CLI_ERROR(run_sdegen("train-classifier --data " + data), "--out is required for a folder of images");
  EXPECT_CLI_ERROR(run_sdegen("train-classifier --data fashion-mnist --test " + data + " --out " + path("clf")),
                   "--test and --image-size apply to a folder of images");
  const std::string flat = path("flat");
  std::filesystem::create_directories(flat);
  for (int k = 0; k < 3; ++k)
    write_png(flat + "/" + std::to_string(k) + ".png", torch::zeros({1, 8, 8}, torch::kUInt8));
  EXPECT_CLI_ERROR(run_sdegen("train-classifier --data " + flat + " --out " + path("clf")),
                   "a classifier needs labelled images of >= 2 classes; '" + flat + "' has no labels");
  EXPECT_FALSE(std::filesystem::exists(path("clf")));
}

}  // namespace
}  // namespace sdegen
