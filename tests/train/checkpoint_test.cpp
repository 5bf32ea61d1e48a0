// Checkpoints: layout, weights round trip, and refusal of missing, corrupt or mismatched ones.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "sdegen/model/factory.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"
#include "train/tiny_model.h"

namespace sdegen {
namespace {

namespace fs = std::filesystem;
using test::make_tiny;
using test::max_abs_diff;
using test::TempDir;
using test::tiny_data;

TrainOptions short_run() { return TrainOptions().steps(6).batch(16).lr(1e-2).ema_decay(0.9); }

// A directory with a 6-step checkpoint of a 2-D TinyModel, and that model.
struct Trained {
  explicit Trained(const std::string& name, nlohmann::json extra = nlohmann::json::object()) : dir(name) {
    model = make_tiny();
    TrainSetup setup;
    setup.progress = nullptr;
    setup.extra = std::move(extra);
    train(model, tiny_data(), short_run(), dir.str(), setup);
  }
  TempDir dir;
  std::shared_ptr<test::TinyModel> model;
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

TEST(Checkpoint, LayoutAndConfig) {
  Trained t("layout", {{"standardizer", {{"mean", {1.0, 2.0}}}}, {"data", "toy:moons"}});
  const std::string ckpt = checkpoint_dir(t.dir.str());
  for (const char* file : {"config.json", "model.pt", "ema.pt", "optimizer.pt", "rng.pt"})
    EXPECT_TRUE(fs::is_regular_file(fs::path(ckpt) / file)) << file;
  EXPECT_FALSE(fs::exists(t.dir / "checkpoint.tmp"));
  EXPECT_FALSE(fs::exists(t.dir / "checkpoint.old"));
  const nlohmann::json config = load_checkpoint_config(t.dir.str());
  EXPECT_EQ(config.at("step"), 6);
  EXPECT_EQ(config.at("kind"), "tiny");
  EXPECT_EQ(config.at("dim"), 2);
  EXPECT_EQ(config.at("ema"), true);
  EXPECT_EQ(config.at("model"), t.model->config());
  EXPECT_EQ(config.at("train"), to_json(short_run()));
  EXPECT_EQ(config.at("extra").at("data"), "toy:moons");
  EXPECT_EQ(config.at("extra").at("standardizer").at("mean"), nlohmann::json({1.0, 2.0}));
}

TEST(Checkpoint, LoadWeightsGivesTheLastIterateOrTheAverage) {
  Trained t("weights");
  auto fresh = make_tiny(99);
  load_weights(t.dir.str(), *fresh, Weights::kLast);
  EXPECT_EQ(max_abs_diff(fresh->net->output->weight, t.model->net->output->weight), 0.0);

  auto averaged = make_tiny(99);
  load_weights(t.dir.str(), *averaged);
  EXPECT_GT(max_abs_diff(averaged->net->output->weight, t.model->net->output->weight), 0.0);
  // The average lies between the initial and the final weights, not on either.
  auto initial = make_tiny();
  EXPECT_GT(max_abs_diff(averaged->net->output->weight, initial->net->output->weight), 0.0);
}

TEST(Checkpoint, MissingCheckpointIsRefused) {
  TempDir dir("missing");
  auto model = make_tiny();
  EXPECT_THROW_WITH(load_checkpoint_config(dir.str()), IoError, "no checkpoint in '" + dir.str());
  EXPECT_THROW_WITH(load_weights(dir.str(), *model), IoError, "checkpoint");
}

TEST(Checkpoint, CorruptOrTruncatedFilesAreRefusedNamingTheFile) {
  Trained t("corrupt");
  const std::string model_pt = (fs::path(checkpoint_dir(t.dir.str())) / "model.pt").string();
  const std::string ema_pt = (fs::path(checkpoint_dir(t.dir.str())) / "ema.pt").string();
  auto model = make_tiny(99);
  const torch::Tensor before = model->net->output->weight.clone();

  write_bytes(model_pt, "this is not a zip archive, just garbage bytes \x01\x02\x03");
  EXPECT_THROW_WITH(load_weights(t.dir.str(), *model, Weights::kLast), IoError,
                    "checkpoint '" + model_pt + "' is corrupt or unreadable");
  EXPECT_EQ(max_abs_diff(model->net->output->weight, before), 0.0);  // untouched

  std::string bytes;
  {
    std::ifstream in(ema_pt, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  write_bytes(ema_pt, bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW_WITH(load_weights(t.dir.str(), *model, Weights::kAverage), IoError,
                    "checkpoint '" + ema_pt + "' is corrupt or unreadable");

  fs::remove(ema_pt);
  EXPECT_THROW_WITH(load_weights(t.dir.str(), *model, Weights::kAverage), IoError,
                    "checkpoint file '" + ema_pt + "' is missing");

  const std::string config = (fs::path(checkpoint_dir(t.dir.str())) / "config.json").string();
  write_bytes(config, "{\"format\": \"sdegen-checkpoint\", \"version\": 1, \"step\": ");
  EXPECT_THROW_WITH(load_checkpoint_config(t.dir.str()), IoError,
                    "checkpoint '" + config + "' is corrupt or unreadable");
}

TEST(Checkpoint, MissingOrIllTypedKeysAreRefused) {
  Trained t("keys");
  const std::string config_path = (fs::path(checkpoint_dir(t.dir.str())) / "config.json").string();
  const nlohmann::json config = load_checkpoint_config(t.dir.str());
  nlohmann::json broken = config;
  broken.erase("dim");
  write_bytes(config_path, broken.dump());
  EXPECT_THROW_WITH(load_checkpoint_config(t.dir.str()), IoError,
                    "checkpoint '" + config_path + "' has no 'dim' key");
  broken = config;
  broken["step"] = "six";
  write_bytes(config_path, broken.dump());
  EXPECT_THROW_WITH(load_checkpoint_config(t.dir.str()), IoError, "'step' must be an integer");
  broken = config;
  broken["train"].erase("lr");
  write_bytes(config_path, broken.dump());
  EXPECT_THROW_WITH(load_checkpoint_config(t.dir.str()), IoError, "missing key 'lr'");
}

TEST(Checkpoint, AnotherModelIsRefused) {
  Trained t("mismatch");
  auto one_d = make_tiny(7, 1);
  EXPECT_THROW_WITH(load_weights(t.dir.str(), *one_d), InvalidArgument,
                    "was trained on 2-D data, this run has 1-D");
  test::TinyModel other_kind(2, 8, "flow");
  EXPECT_THROW_WITH(load_weights(t.dir.str(), other_kind), InvalidArgument,
                    "holds a 'tiny' model, this run has a 'flow' model");
  test::TinyModel wider(2, 16);
  EXPECT_THROW_WITH(load_weights(t.dir.str(), wider), InvalidArgument, "holds a model configured as");

  // A resume of another model is refused the same way, before anything is trained.
  TrainSetup setup;
  setup.progress = nullptr;
  setup.resume = true;
  EXPECT_THROW_WITH(train(one_d, tiny_data(200, 1), short_run().steps(12), t.dir.str(), setup),
                    InvalidArgument, "was trained on 2-D data, this run has 1-D");
}

// A checkpoint written before an option existed (here the flow's coupling, added after the images
// issue) stores no key for it; it still loads and resumes, the option at its default.
TEST(Checkpoint, ACheckpointFromBeforeAnOptionExistedStillLoads) {
  TempDir dir("older");
  ModelPtr model = make_model(model_config("flow", 2));
  TrainSetup setup;
  setup.progress = nullptr;
  train(model, tiny_data(), short_run(), dir.str(), setup);
  const std::string file = (fs::path(checkpoint_dir(dir.str())) / "config.json").string();
  nlohmann::json config = load_checkpoint_config(dir.str());
  ASSERT_TRUE(config.at("model").contains("coupling"));
  config["model"].erase("coupling");
  config["model"].erase("coupling_epsilon");
  write_bytes(file, config.dump());

  ModelPtr fresh = make_model(model_config("flow", 2));
  torch::manual_seed(3);
  const torch::Tensor before = torch::randn({4});
  torch::manual_seed(3);
  EXPECT_NO_THROW(load_weights(dir.str(), *fresh, Weights::kLast));
  // Reading the older configuration builds a model to fill in the defaults; it draws nothing.
  EXPECT_TRUE(torch::equal(torch::randn({4}), before));
  EXPECT_LT(max_abs_diff(fresh->parameters().front(), model->parameters().front()), 1e-15);
  setup.resume = true;
  EXPECT_EQ(train(fresh, tiny_data(), short_run().steps(8), dir.str(), setup).steps, 8);

  // Another value of the new option is still another model.
  config = load_checkpoint_config(dir.str());
  config["model"]["coupling"] = "ot";
  write_bytes(file, config.dump());
  ModelPtr independent = make_model(model_config("flow", 2));
  EXPECT_THROW_WITH(load_weights(dir.str(), *independent), InvalidArgument, "holds a model configured as");
}

TEST(Checkpoint, AnInterruptedSaveFallsBackToTheOldCheckpoint) {
  Trained t("old");
  fs::rename(checkpoint_dir(t.dir.str()), t.dir / "checkpoint.old");
  EXPECT_EQ(find_checkpoint(t.dir.str()), t.dir / "checkpoint.old");
  auto model = make_tiny(99);
  load_weights(t.dir.str(), *model, Weights::kLast);
  EXPECT_EQ(max_abs_diff(model->net->output->weight, t.model->net->output->weight), 0.0);
}

}  // namespace
}  // namespace sdegen
