// Data-parallel training (train/distributed.h) against one process: N processes with a global
// batch B give the per-step losses of one process with batch B. The test starts this same test
// binary as the workers (DataParallelWorker.Run, skipped unless the variables below are set), on
// the loopback, in double precision.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sdegen/core/error.h"
#include "sdegen/model/factory.h"
#include "sdegen/net/unet.h"
#include "sdegen/train/distributed.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"

extern char** environ;

namespace sdegen {
namespace {

// A case's model, data and options, the same in every process.
struct Case {
  ModelPtr model;
  torch::Tensor x, val, labels, val_labels;
  TrainOptions options;
};

Case make_case(const std::string& name, int64_t steps) {
  Case c;
  c.options.batch(8).steps(steps).threads(1).seed(3).log_every(1).ema_decay(0.9).grad_clip(1.0).val_every(2);
  torch::manual_seed(11);
  if (name == "mlp") {
    // flow with its fused step, 2-D rows, a batch of 7 (shares of 3 and 4 rows).
    c.options.batch(7);
    c.model = make_model(model_config("flow", 2, {{"net", {{"width", 16}, {"depth", 2}}}}));
    c.x = torch::randn({64, 2}, torch::kDouble) * 0.5 + 0.3;
    c.val = torch::randn({10, 2}, torch::kDouble);
  } else {
    // A class-conditional U-Net on 1x4x4 images, autograd, with label dropout.
    const nlohmann::json unet = to_json(UNetOptions(1, 4, 4)
                                            .base_channels(8)
                                            .channel_mult({1, 2})
                                            .blocks_per_level(1)
                                            .attention_resolutions({2})
                                            .groups(4)
                                            .num_classes(2)
                                            .dropout(0.0));
    c.model = make_model(model_config("flow", 16, {{"net", unet}, {"dtype", "float64"}, {"p_uncond", 0.3}}));
    c.x = torch::randn({32, 1, 4, 4}, torch::kDouble);
    c.val = torch::randn({6, 1, 4, 4}, torch::kDouble);
    c.labels = torch::randint(0, 2, {32}, torch::kLong);
    c.val_labels = torch::randint(0, 2, {6}, torch::kLong);
  }
  return c;
}

std::vector<double> train_case(const std::string& name, int64_t steps, const std::string& out, bool resume,
                               const CommunicatorPtr& group) {
  Case c = make_case(name, steps);
  TrainSetup setup;
  setup.val = c.val;
  setup.labels = c.labels;
  setup.val_labels = c.val_labels;
  setup.resume = resume;
  setup.overwrite = !resume;
  setup.progress = nullptr;
  setup.group = group;
  if (name == "mlp") {
    const torch::Tensor y = c.x.narrow(0, 0, 4);
    EXPECT_TRUE(c.model->has_fused_step(y)) << "the MLP case must run the fused step";
  }
  return train(c.model, c.x, c.options, out, setup).losses;
}

void write_losses(const std::string& path, const std::vector<double>& losses) {
  std::ofstream out(path);
  out.precision(17);
  for (const double l : losses) out << l << "\n";
}

std::vector<double> read_losses(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> v;
  for (double l; in >> l;) v.push_back(l);
  return v;
}

// Runs the case in `world` worker processes (this binary, DataParallelWorker.Run) and returns
// each rank's losses.
std::vector<std::vector<double>> run_workers(const std::string& name, int64_t world, int64_t steps,
                                             const std::string& out, bool resume) {
  const std::string port = std::to_string(free_loopback_port());
  std::vector<pid_t> pids;
  std::vector<std::string> files;
  for (int64_t r = 0; r < world; ++r) {
    files.push_back(out + ".rank" + std::to_string(r));
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
    for (const std::string& v : std::vector<std::string>{
             "RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(world), "MASTER_ADDR=127.0.0.1",
          "MASTER_PORT=" + port, "SDEGEN_DP_CASE=" + name, "SDEGEN_DP_STEPS=" + std::to_string(steps),
          "SDEGEN_DP_OUT=" + out, "SDEGEN_DP_RESUME=" + std::string(resume ? "1" : "0"),
          "SDEGEN_DP_LOSSES=" + files.back()})
      env.push_back(v);
    std::vector<std::string> args = {"worker", "--gtest_filter=DataParallelWorker.Run"};
    std::vector<char*> argv, envp;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data()), 0);
    pids.push_back(pid);
  }
  std::vector<std::vector<double>> losses;
  for (size_t r = 0; r < pids.size(); ++r) {
    int status = 0;
    waitpid(pids[r], &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker rank " << r << " failed";
    losses.push_back(read_losses(files[r]));
  }
  return losses;
}

TEST(DataParallelWorker, Run) {
  const char* name = std::getenv("SDEGEN_DP_CASE");
  if (name == nullptr) GTEST_SKIP() << "a worker of DataParallel's tests; runs only when they start it";
  const std::optional<DistributedEnv> env = distributed_environment();
  ASSERT_TRUE(env.has_value());
  const CommunicatorPtr group = connect(*env, std::chrono::seconds(60));
  if (std::string(name) == "agree" || std::string(name) == "disagree") {
    // Writes 1 when check_replicas_agree throws, else 0.
    torch::Tensor w = torch::linspace(-1.0, 2.0, 7, torch::kDouble);
    if (std::string(name) == "disagree" && env->rank == 1) w[3] += 1e-6;
    double threw = 0;
    try {
      check_replicas_agree(*group, {w}, "test weights");
    } catch (const DistributedError& e) {
      threw = std::string(e.what()).find("the ranks' test weights differ") != std::string::npos ? 1 : 2;
    }
    write_losses(std::getenv("SDEGEN_DP_LOSSES"), {threw});
    return;
  }
  const std::vector<double> losses = train_case(name, std::atoll(std::getenv("SDEGEN_DP_STEPS")),
                                                std::getenv("SDEGEN_DP_OUT"),
                                                std::string(std::getenv("SDEGEN_DP_RESUME")) == "1", group);
  write_losses(std::getenv("SDEGEN_DP_LOSSES"), losses);
}

class DataParallel : public ::testing::TestWithParam<std::string> {
 protected:
  std::filesystem::path dir = test::temp_path("data_parallel_" + GetParam());
  void SetUp() override {
    if (!distributed_available()) GTEST_SKIP() << "built without c10d's Gloo (libgloo-dev)";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

void expect_same_losses(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-9) << what << ", step " << i + 1;
}

TEST_P(DataParallel, TwoProcessesGiveTheLossesOfOne) {
  const int64_t steps = 6;
  const std::vector<double> one = train_case(GetParam(), steps, path("one"), false, nullptr);
  const std::vector<std::vector<double>> two = run_workers(GetParam(), 2, steps, path("two"), false);
  ASSERT_EQ(two.size(), 2u);
  expect_same_losses(two[0], one, "rank 0 against one process");
  // Every rank reports the same (reduced) losses.
  expect_same_losses(two[1], two[0], "rank 1 against rank 0");
  // The losses move: a test of equal numbers must not pass on a run that did nothing.
  EXPECT_NE(one.front(), one.back());
}

TEST_P(DataParallel, ResumesWithAnotherNumberOfProcesses) {
  const int64_t steps = 6;
  const std::vector<double> straight = train_case(GetParam(), steps, path("straight"), false, nullptr);
  // 2 processes to step 3, then 1 process to the end.
  const std::vector<std::vector<double>> first = run_workers(GetParam(), 2, 3, path("a"), false);
  const std::vector<double> rest = train_case(GetParam(), steps, path("a"), true, nullptr);
  std::vector<double> joined = first[0];
  joined.insert(joined.end(), rest.begin(), rest.end());
  expect_same_losses(joined, straight, "2 processes then 1");
  // 1 process to step 3, then 2 processes to the end.
  const std::vector<double> head = train_case(GetParam(), 3, path("b"), false, nullptr);
  const std::vector<std::vector<double>> tail = run_workers(GetParam(), 2, steps, path("b"), true);
  joined = head;
  joined.insert(joined.end(), tail[0].begin(), tail[0].end());
  expect_same_losses(joined, straight, "1 process then 2");
}

INSTANTIATE_TEST_SUITE_P(Models, DataParallel, ::testing::Values("mlp", "unet"));

TEST(DataParallelReplicas, DifferingWeightsAreCaughtOnEveryRank) {
  if (!distributed_available()) GTEST_SKIP() << "built without c10d's Gloo (libgloo-dev)";
  const std::string out = test::temp_path("data_parallel_replicas");
  const auto same = run_workers("agree", 2, 0, out, false);
  const auto differ = run_workers("disagree", 2, 0, out, false);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(same[r], std::vector<double>{0}) << "rank " << r;
    EXPECT_EQ(differ[r], std::vector<double>{1}) << "rank " << r;
  }
  for (int r = 0; r < 2; ++r) std::filesystem::remove(out + ".rank" + std::to_string(r));
}

TEST(DataParallelShards, SplitTheBatchIntoContiguousShares) {
  EXPECT_EQ(shard_range(8, 0, 2), (std::pair<int64_t, int64_t>{0, 4}));
  EXPECT_EQ(shard_range(8, 1, 2), (std::pair<int64_t, int64_t>{4, 8}));
  EXPECT_EQ(shard_range(7, 2, 3), (std::pair<int64_t, int64_t>{4, 7}));
  EXPECT_THROW(shard_range(2, 0, 3), InvalidArgument);
}

}  // namespace
}  // namespace sdegen
