// The training loop: it learns, it is reproducible, it resumes exactly, it stops cleanly on NaN,
// and it logs what it did.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "sdegen/train/checkpoint.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"
#include "train/tiny_model.h"

namespace sdegen {
namespace {

namespace fs = std::filesystem;
using test::make_tiny;
using test::max_abs_diff;
using test::read_lines;
using test::split_csv_line;
using test::TempDir;
using test::tiny_data;

TrainSetup quiet() {
  TrainSetup setup;
  setup.progress = nullptr;
  return setup;
}

// Options that exercise every part of the step: warm-up, cosine decay, clipping, averaging.
TrainOptions busy(int64_t steps) {
  return TrainOptions()
      .steps(steps)
      .batch(32)
      .lr(2e-2)
      .warmup_steps(3)
      .decay("cosine")
      .lr_min(1e-3)
      .grad_clip(1.0)
      .ema_decay(0.9)
      .seed(5)
      .log_every(1);
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  return std::accumulate(v.begin() + from, v.begin() + to, 0.0) / static_cast<double>(to - from);
}

struct Interrupted {};

TEST(Train, AFewStepsReduceTheLoss) {
  TempDir dir("learns");
  const TrainResult r = train(make_tiny(), tiny_data(), TrainOptions().steps(80).batch(32).lr(2e-2),
                              dir.str(), quiet());
  ASSERT_EQ(r.losses.size(), 80u);
  EXPECT_EQ(r.steps, 80);
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(r.final_loss, r.losses.back());
  // Starts near E|y|^2 / d = 2.75; can only get down to the data's variance, 0.25.
  EXPECT_LT(mean(r.losses, 70, 80), 0.5 * mean(r.losses, 0, 10));
  EXPECT_EQ(r.checkpoint, checkpoint_dir(dir.str()));
}

TEST(Train, SameSeedSameLossesOtherSeedOtherLosses) {
  TempDir a("seed_a"), b("seed_b"), c("seed_c");
  const TrainResult ra = train(make_tiny(), tiny_data(), busy(15), a.str(), quiet());
  torch::manual_seed(4242);  // whatever happened to the global generator before does not matter
  const TrainResult rb = train(make_tiny(), tiny_data(), busy(15), b.str(), quiet());
  EXPECT_EQ(ra.losses, rb.losses);
  const TrainResult rc = train(make_tiny(), tiny_data(), busy(15).seed(6), c.str(), quiet());
  EXPECT_NE(ra.losses, rc.losses);
}

TEST(Train, ResumeContinuesExactlyAsAnUninterruptedRun) {
  TempDir straight("straight"), broken("broken");
  auto reference_model = make_tiny();
  const TrainResult reference = train(reference_model, tiny_data(), busy(20), straight.str(), quiet());

  // Killed after step 13; the last checkpoint is at step 10.
  TrainSetup setup = quiet();
  setup.progress = [](const StepReport& r) {
    if (r.step == 13) throw Interrupted{};
  };
  EXPECT_THROW(train(make_tiny(), tiny_data(), busy(20).checkpoint_every(5), broken.str(), setup),
               Interrupted);
  EXPECT_EQ(load_checkpoint_config(broken.str()).at("step"), 10);

  // A model built differently: everything must come from the checkpoint.
  auto resumed_model = make_tiny(1234);
  TrainSetup resume = quiet();
  resume.resume = true;
  const TrainResult resumed = train(resumed_model, tiny_data(), busy(20).checkpoint_every(5), broken.str(), resume);
  EXPECT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.start_step, 10);
  ASSERT_EQ(resumed.losses.size(), 10u);
  EXPECT_EQ(resumed.losses, std::vector<double>(reference.losses.begin() + 10, reference.losses.end()));
  for (const auto& p : reference_model->named_parameters())
    EXPECT_EQ(max_abs_diff(p.value(), resumed_model->named_parameters()[p.key()]), 0.0) << p.key();
  auto ref_avg = make_tiny(1), resumed_avg = make_tiny(2);
  load_weights(straight.str(), *ref_avg);
  load_weights(broken.str(), *resumed_avg);
  EXPECT_EQ(max_abs_diff(ref_avg->net->output->weight, resumed_avg->net->output->weight), 0.0);

  // The log keeps rows 1..10 of the first run (11..13 were lost with it) and appends 11..20.
  const auto lines = read_lines(broken / "log.csv");
  ASSERT_EQ(lines.size(), 21u);
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_EQ(split_csv_line(lines[i])[0], std::to_string(i));
  const auto reference_lines = read_lines(straight / "log.csv");
  for (size_t col : {1, 2, 3}) EXPECT_EQ(split_csv_line(lines[15])[col], split_csv_line(reference_lines[15])[col]);
}

TEST(Train, ResumeWithoutACheckpointOrAFreshRunOverOneIsRefused) {
  TempDir dir("refusals");
  TrainSetup resume = quiet();
  resume.resume = true;
  EXPECT_THROW_WITH(train(make_tiny(), tiny_data(), busy(4), dir.str(), resume), IoError,
                    "cannot resume: no checkpoint in '" + dir.str());
  train(make_tiny(), tiny_data(), busy(4), dir.str(), quiet());
  EXPECT_THROW_WITH(train(make_tiny(), tiny_data(), busy(4), dir.str(), quiet()), InvalidArgument,
                    "already holds a checkpoint");
  TrainSetup overwrite = quiet();
  overwrite.overwrite = true;
  EXPECT_NO_THROW(train(make_tiny(), tiny_data(), busy(4), dir.str(), overwrite));
  EXPECT_THROW_WITH(train(make_tiny(), tiny_data(), busy(3), dir.str(), resume), InvalidArgument,
                    "is at step 4, beyond steps = 3");
  // Resuming a finished run to its own end does nothing.
  const TrainResult done = train(make_tiny(), tiny_data(), busy(4), dir.str(), resume);
  EXPECT_TRUE(done.losses.empty());
  EXPECT_EQ(done.start_step, 4);
}

TEST(Train, BadDataIsRefused) {
  TempDir dir("bad_data");
  torch::Tensor data = tiny_data();
  EXPECT_THROW_WITH(train(make_tiny(), data.slice(1, 0, 1), busy(4), dir.str(), quiet()), InvalidArgument,
                    "training data must have shape [n >= 1, 2]");
  data[3][1] = std::numeric_limits<double>::infinity();
  EXPECT_THROW_WITH(train(make_tiny(), data, busy(4), dir.str(), quiet()), InvalidArgument,
                    "training data contain NaN or infinite values");
  EXPECT_THROW_WITH(train(make_tiny(), tiny_data(), busy(4).lr(0), dir.str(), quiet()), InvalidArgument,
                    "'lr'");
}

TEST(Train, FloatDataTrainsADoubleModel) {
  TempDir dir("float");
  const TrainResult r = train(make_tiny(), tiny_data().to(torch::kFloat), busy(5), dir.str(), quiet());
  EXPECT_EQ(r.losses.size(), 5u);
}

TEST(Train, NanLossStopsNamingTheStepAndKeepsTheLastGoodCheckpoint) {
  TempDir straight("nan_ref"), dir("nan");
  const TrainResult reference = train(make_tiny(), tiny_data(), busy(12), straight.str(), quiet());

  auto model = make_tiny();
  model->nan_at = 8;
  EXPECT_THROW_WITH(train(model, tiny_data(), busy(12).checkpoint_every(5), dir.str(), quiet()),
                    NumericError,
                    "loss became nan at step 8; the last good checkpoint is '" + checkpoint_dir(dir.str()) +
                        "' (step 5); lower --lr or --grad-clip");
  // The weights that led to the failure (after step 7) are not saved: only a state known to be
  // good replaces a checkpoint.
  EXPECT_EQ(load_checkpoint_config(dir.str()).at("step"), 5);
  auto loaded = make_tiny(3);
  EXPECT_NO_THROW(load_weights(dir.str(), *loaded));

  // The checkpoint is the state after step 5, random streams included: resuming it (without the
  // fault) gives the uninterrupted run's losses.
  TrainSetup resume = quiet();
  resume.resume = true;
  const TrainResult resumed = train(make_tiny(9), tiny_data(), busy(12).checkpoint_every(5), dir.str(), resume);
  EXPECT_EQ(resumed.losses, std::vector<double>(reference.losses.begin() + 5, reference.losses.end()));
}

TEST(Train, NanLossBeforeAnyCheckpointWithNonFiniteWeightsWritesNone) {
  TempDir dir("nan_weights");
  auto model = make_tiny();
  model->nan_at = 3;
  // A training step that has already poisoned the weights: nothing may be saved.
  TrainSetup setup = quiet();
  setup.progress = [&](const StepReport& r) {
    if (r.step == 2) {
      torch::NoGradGuard no_grad;
      model->net->output->bias.fill_(std::numeric_limits<double>::quiet_NaN());
    }
  };
  EXPECT_THROW_WITH(train(model, tiny_data(), busy(12), dir.str(), setup), NumericError,
                    "loss became nan at step 3; no checkpoint was written; lower --lr");
  EXPECT_FALSE(has_checkpoint(dir.str()));
}

TEST(Train, LogHasTheExpectedHeaderAndRows) {
  TempDir dir("log");
  TrainSetup setup = quiet();
  setup.val = tiny_data(40);
  const TrainResult r =
      train(make_tiny(), tiny_data(), busy(12).log_every(5).val_every(4), dir.str(), setup);
  const auto lines = read_lines(dir / "log.csv");
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "step,loss,lr,grad_norm,seconds,val_nelbo");
  const std::vector<std::string> steps = {"4", "5", "8", "10", "12"};
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto cells = split_csv_line(lines[i + 1]);
    ASSERT_EQ(cells.size(), 6u) << lines[i + 1];
    EXPECT_EQ(cells[0], steps[i]);
    EXPECT_EQ(cells[5].empty(), steps[i] == "5" || steps[i] == "10") << lines[i + 1];
  }
  // Row "5" averages the loss of step 5 alone (row "4" came just before).
  EXPECT_NEAR(std::stod(split_csv_line(lines[2])[1]), r.losses[4], 1e-8 * r.losses[4]);
  EXPECT_NEAR(std::stod(split_csv_line(lines[2])[2]), learning_rate(busy(12), 5), 1e-12);
  ASSERT_EQ(r.validation.size(), 1u);
  EXPECT_EQ(r.validation[0].name, "val_nelbo");
  EXPECT_NEAR(std::stod(split_csv_line(lines[5])[5]), r.validation[0].value, 1e-8 * std::abs(r.validation[0].value));
}

TEST(Train, ValidationIsPluggableAndDoesNotDisturbTraining) {
  TempDir plain("val_plain"), validated("val_on");
  const TrainResult without = train(make_tiny(), tiny_data(), busy(10), plain.str(), quiet());

  TrainSetup setup = quiet();
  setup.val = tiny_data(30);
  const Validator nelbo = nelbo_validator(1, 7);  // chunks of 7 rows
  int calls = 0;
  setup.validator.columns = {"val_nelbo", "val_rows"};
  setup.validator.fn = [&](GenerativeModel& model, const torch::Tensor& val, const Condition& condition) {
    ++calls;
    EXPECT_FALSE(model.is_training());
    std::vector<double> values = nelbo.fn(model, val, condition);
    values.push_back(static_cast<double>(val.size(0)));
    return values;
  };
  const TrainResult with = train(make_tiny(), tiny_data(), busy(10).val_every(3), validated.str(), setup);
  EXPECT_EQ(calls, 4);  // steps 3, 6, 9, 10
  EXPECT_EQ(with.losses, without.losses);
  ASSERT_EQ(with.validation.size(), 2u);
  EXPECT_EQ(with.validation[1].value, 30.0);
  EXPECT_GT(with.validation[0].value, 0.0);
  EXPECT_EQ(read_lines(validated / "log.csv")[0], "step,loss,lr,grad_norm,seconds,val_nelbo,val_rows");
}

TEST(Train, ValidationSeesTheAveragedWeights) {
  TempDir dir("val_ema");
  auto model = make_tiny();
  TrainSetup setup = quiet();
  setup.val = tiny_data(50);
  setup.validator.columns = {"bias"};
  setup.validator.fn = [](GenerativeModel& m, const torch::Tensor&, const Condition&) -> std::vector<double> {
    return {dynamic_cast<test::TinyModel&>(m).net->output->bias[0].item<double>()};
  };
  const TrainResult r = train(model, tiny_data(), busy(10), dir.str(), setup);
  auto averaged = make_tiny(3);
  load_weights(dir.str(), *averaged);
  EXPECT_EQ(r.validation[0].value, averaged->net->output->bias[0].item<double>());
  // ... and the model is back on its last iterate afterwards.
  EXPECT_NE(r.validation[0].value, model->net->output->bias[0].item<double>());
  EXPECT_TRUE(model->is_training());
}

TEST(Progress, PlainLinesOnLogRowsOnly) {
  std::ostringstream os;
  const ProgressFn progress = stream_progress(os, /*terminal=*/false);
  StepReport r;
  r.step = 3;
  r.steps = 10;
  r.mean_loss = 1.5;
  r.steps_per_second = 2.0;
  progress(r);
  EXPECT_EQ(os.str(), "");
  r.log_row = true;
  r.validation = {{"val_nelbo", 0.25}};
  progress(r);
  EXPECT_NE(os.str().find("step 3/10  loss 1.5"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("0:04 left"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("val_nelbo 0.25"), std::string::npos) << os.str();
  EXPECT_EQ(format_duration(3725), "1:02:05");
  EXPECT_EQ(format_duration(65), "1:05");
}

TEST(Progress, TerminalBarIsRedrawnInPlace) {
  std::ostringstream os;
  const ProgressFn progress = stream_progress(os, /*terminal=*/true);
  StepReport r;
  r.step = 5;
  r.steps = 10;
  r.loss = 0.5;
  r.steps_per_second = 5.0;
  progress(r);
  EXPECT_EQ(os.str().rfind("\r", 0), 0u);
  EXPECT_NE(os.str().find("[############............]  50%"), std::string::npos) << os.str();
  r.step = 10;
  progress(r);
  EXPECT_EQ(os.str().back(), '\n');
}

}  // namespace
}  // namespace sdegen
