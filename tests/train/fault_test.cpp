// Faults during training and on disk: a checkpoint is only ever replaced by a state known to be
// good, a damaged checkpoint is refused by file name, and the last good one stays loadable and
// resumable after each fault.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "sdegen/io/integrity.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/optim.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"
#include "train/tiny_model.h"

namespace sdegen {
namespace {

namespace fs = std::filesystem;
using test::make_tiny;
using test::TempDir;
using test::tiny_data;

TrainSetup quiet() {
  TrainSetup setup;
  setup.progress = nullptr;
  return setup;
}

TrainOptions options(int64_t steps) {
  return TrainOptions().steps(steps).batch(32).lr(2e-2).ema_decay(0.9).seed(3).log_every(5);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Overwrites 64 bytes in the middle of a file, as a failing disk or a stray write would.
void damage(const std::string& path) {
  std::string bytes = read_bytes(path);
  ASSERT_GT(bytes.size(), 200u);
  for (size_t i = 0; i < 64; ++i) bytes[bytes.size() / 2 + i] = static_cast<char>(0xff);
  write_bytes(path, bytes);
}

// The weights kept in dir load and give a finite loss on the data: the checkpoint is good.
void expect_good_checkpoint(const std::string& dir, int64_t step) {
  EXPECT_EQ(load_checkpoint_config(dir).at("step"), step);
  auto model = make_tiny(11);
  for (Weights w : {Weights::kBest, Weights::kAverage, Weights::kLast}) {
    ASSERT_NO_THROW(load_weights(dir, *model, w));
    model->eval();
    EXPECT_TRUE(std::isfinite(model->loss(tiny_data(64)).item<double>()));
  }
}

TEST(Fault, NanInjectedAtAChosenStepKeepsTheLastGoodCheckpointResumable) {
  TempDir straight("fault_ref"), dir("fault_nan");
  const TrainResult reference = train(make_tiny(), tiny_data(), options(30), straight.str(), quiet());
  auto model = make_tiny();
  model->nan_at = 23;
  EXPECT_THROW_WITH(train(model, tiny_data(), options(30).checkpoint_every(10), dir.str(), quiet()), NumericError,
                    "loss became nan at step 23; the last good checkpoint is '" + checkpoint_dir(dir.str()) +
                        "' (step 20)");
  expect_good_checkpoint(dir.str(), 20);
  TrainSetup resume = quiet();
  resume.resume = true;
  const TrainResult resumed = train(make_tiny(9), tiny_data(), options(30).checkpoint_every(10), dir.str(), resume);
  EXPECT_EQ(resumed.losses, std::vector<double>(reference.losses.begin() + 20, reference.losses.end()));
}

TEST(Fault, WeightsThatGiveANonFiniteLossAreNotSaved) {
  // A step leaves finite but useless weights behind (here: an output bias of 1e300, whose
  // square overflows): the periodic checkpoint must not replace the good one with them.
  TempDir dir("fault_probe");
  auto model = make_tiny();
  TrainSetup setup = quiet();
  setup.progress = [&](const StepReport& r) {
    if (r.step == 14) {
      torch::NoGradGuard no_grad;
      model->net->output->bias.fill_(1e300);
    }
  };
  EXPECT_THROW_WITH(train(model, tiny_data(), options(30).checkpoint_every(5).ema_decay(0), dir.str(), setup),
                    NumericError, "at step 15; the last good checkpoint is '" + checkpoint_dir(dir.str()) + "' (step 10)");
  expect_good_checkpoint(dir.str(), 10);
}

TEST(Fault, NonFiniteAveragesAreNotSaved) {
  TempDir dir("fault_probe_ema");
  auto other = make_tiny();
  Ema ema(*other, 0.9);
  torch::optim::Adam opt(other->parameters(), torch::optim::AdamOptions(1e-3));
  BatchSampler batches(10, 4, 1);
  {
    torch::NoGradGuard no_grad;
    other->net->output->bias.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  ema.update(*other);
  {
    torch::NoGradGuard no_grad;
    other->net->output->bias.fill_(0.5);
  }
  EXPECT_THROW_WITH(save_checkpoint(dir.str(), {*other, opt, batches, &ema}, {}), NumericError,
                    "the moving average of 'net.output.bias' holds NaN or infinite values");
  EXPECT_FALSE(has_checkpoint(dir.str()));
}

TEST(Fault, ADivergingResumeKeepsTheGoodCheckpoint) {
  // The reproduction on the library: 100 good steps, then a resume with lr = 1e6.
  TempDir dir("fault_diverge");
  train(make_tiny(), tiny_data(), options(100).checkpoint_every(20), dir.str(), quiet());
  const std::string good = read_bytes(checkpoint_dir(dir.str()) + "/model.pt");
  TrainSetup resume = quiet();
  resume.resume = true;
  try {
    train(make_tiny(), tiny_data(), options(200).lr(1e6).checkpoint_every(50), dir.str(), resume);
  } catch (const NumericError&) {
  }
  // Whatever the diverging run did, the checkpoint on disk is a good one.
  const int64_t step = load_checkpoint_config(dir.str()).at("step").get<int64_t>();
  EXPECT_GE(step, 100);
  expect_good_checkpoint(dir.str(), step);
  // And a sane resume goes on from it.
  if (step < 200) {
    EXPECT_NO_THROW(train(make_tiny(), tiny_data(), options(200), dir.str(), resume));
  }
}

TEST(Fault, DamagedFilesAreRefusedByNameAndNothingIsOverwritten) {
  for (const std::string file : {"model.pt", "ema.pt", "optimizer.pt", "rng.pt"}) {
    TempDir dir("fault_damage_" + file.substr(0, file.find('.')));
    train(make_tiny(), tiny_data(), options(10), dir.str(), quiet());
    const std::string path = checkpoint_dir(dir.str()) + "/" + file;
    damage(path);
    const std::string damaged = read_bytes(path);
    TrainSetup resume = quiet();
    resume.resume = true;
    EXPECT_THROW_WITH(train(make_tiny(), tiny_data(), options(20), dir.str(), resume), IoError,
                      "checkpoint '" + path + "' is corrupt or unreadable: its CRC-32");
    EXPECT_EQ(read_bytes(path), damaged) << "the failed resume wrote over " << file;
    EXPECT_EQ(load_checkpoint_config(dir.str()).at("step"), 10);
    if (file == "model.pt" || file == "ema.pt") {
      auto model = make_tiny();
      EXPECT_THROW_WITH(load_weights(dir.str(), *model, file == "ema.pt" ? Weights::kAverage : Weights::kLast),
                        IoError, path);
    }
  }
}

TEST(Fault, TruncatedFilesAreRefusedByName) {
  TempDir dir("fault_truncated");
  train(make_tiny(), tiny_data(), options(10), dir.str(), quiet());
  const std::string path = checkpoint_dir(dir.str()) + "/ema.pt";
  const std::string bytes = read_bytes(path);
  write_bytes(path, bytes.substr(0, bytes.size() - 10));
  auto model = make_tiny();
  EXPECT_THROW_WITH(load_weights(dir.str(), *model), IoError,
                    "checkpoint '" + path + "' is corrupt or unreadable: it is " + std::to_string(bytes.size() - 10) +
                        " bytes, config.json recorded " + std::to_string(bytes.size()));
}

// A checkpoint from before checksums were recorded: its non-finite or mis-shaped contents are
// still refused by the checks on the values themselves.
void forget_checksums(const std::string& dir) {
  const std::string config_path = checkpoint_dir(dir) + "/config.json";
  nlohmann::json config = nlohmann::json::parse(read_bytes(config_path));
  config.erase("files");
  write_bytes(config_path, config.dump(2));
}

TEST(Fault, NonFiniteWeightsInAnUncheckedCheckpointAreRefusedByName) {
  TempDir dir("fault_nan_file"), scratch("fault_nan_scratch");
  train(make_tiny(), tiny_data(), options(10), dir.str(), quiet());
  // The same model with a NaN weight, saved as a module archive over model.pt.
  auto model = make_tiny();
  load_weights(dir.str(), *model, Weights::kLast);
  {
    torch::NoGradGuard no_grad;
    model->net->output->weight[0][0] = std::numeric_limits<double>::quiet_NaN();
  }
  torch::serialize::OutputArchive archive;
  model->save(archive);
  const std::string path = checkpoint_dir(dir.str()) + "/model.pt";
  archive.save_to(path);
  forget_checksums(dir.str());
  auto fresh = make_tiny();
  EXPECT_THROW_WITH(load_weights(dir.str(), *fresh, Weights::kLast), IoError,
                    "checkpoint '" + path + "' is corrupt or unreadable: 'net.output.weight' holds NaN");
  TrainSetup resume = quiet();
  resume.resume = true;
  EXPECT_THROW_WITH(train(make_tiny(), tiny_data(), options(20), dir.str(), resume), IoError, path);
}

TEST(Fault, AnOptimiserStateOfTheWrongShapeIsRefusedAndTheLiveOneKept) {
  TempDir narrow("fault_opt_narrow"), wide("fault_opt_wide");
  train(make_tiny(), tiny_data(), options(10), narrow.str(), quiet());
  // The optimiser state of a model with other layer sizes, put in its place.
  auto big = std::make_shared<test::TinyModel>(2, 12);
  train(big, tiny_data(), options(10), wide.str(), quiet());
  fs::copy_file(checkpoint_dir(wide.str()) + "/optimizer.pt", checkpoint_dir(narrow.str()) + "/optimizer.pt",
                fs::copy_options::overwrite_existing);
  forget_checksums(narrow.str());

  auto model = make_tiny();
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  BatchSampler batches(200, 32, 1);
  Ema ema(*model, 0.9);
  const std::string path = checkpoint_dir(narrow.str()) + "/optimizer.pt";
  EXPECT_THROW_WITH(load_checkpoint(narrow.str(), {*model, opt, batches, &ema}), IoError, path);
  EXPECT_EQ(optimizer_state_problem(opt), "");
  EXPECT_TRUE(opt.state().empty()) << "the failed load changed the live optimiser";
}

TEST(Fault, AConfigurationWithANonFiniteNumberIsNeverWritten) {
  TempDir dir("fault_json");
  TrainSetup setup = quiet();
  setup.extra = {{"standardizer", {{"mean", {0.0}}, {"std", {std::numeric_limits<double>::infinity()}}}}};
  EXPECT_THROW_WITH(train(make_tiny(), tiny_data(), options(5), dir.str(), setup), InvalidArgument,
                    "the configuration's 'extra.standardizer.std[0]' is not a finite number");
  EXPECT_FALSE(has_checkpoint(dir.str()));
}

TEST(Fault, CheckpointsRecordTheirFilesChecksums) {
  TempDir dir("fault_digest");
  train(make_tiny(), tiny_data(), options(5), dir.str(), quiet());
  const nlohmann::json config = load_checkpoint_config(dir.str());
  for (const char* file : {"model.pt", "ema.pt", "optimizer.pt", "rng.pt"}) {
    ASSERT_TRUE(config.at("files").contains(file)) << file;
    EXPECT_TRUE(digest_from_json(config.at("files").at(file)) ==
                file_digest(checkpoint_dir(dir.str()) + "/" + file))
        << file;
  }
}

TEST(Integrity, NonFiniteJsonPathNamesTheNumber) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(non_finite_json_path({{"a", 1.0}, {"b", {1.0, 2.0}}}), "");
  EXPECT_EQ(non_finite_json_path({{"a", 1.0}, {"b", {1.0, inf}}}), "b[1]");
  EXPECT_EQ(non_finite_json_path({{"x", {{"y", {{{"z", std::nan("")}}}}}}}), "x.y[0].z");
  EXPECT_EQ(non_finite_json_path(nlohmann::json::array({nlohmann::json::array({0.0, -inf})})), "[0][1]");
}

}  // namespace
}  // namespace sdegen
