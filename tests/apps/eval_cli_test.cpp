// sdegen eval and sdegen plot end to end: a tiny model trained in the test, then evaluated and
// plotted; bad input refused with a message.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sdegen/io/plot.h"
#include "apps/cli_support.h"

namespace {
namespace fs = std::filesystem;

using sdegen::test::Outcome;
Outcome run(const std::string& args) { return sdegen::test::run_sdegen(args); }

class EvalCli : public ::testing::Test {
 protected:
  fs::path dir = fs::path(sdegen::test::temp_path("evalcli"));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& n) const { return (dir / n).string(); }
};

TEST_F(EvalCli, TrainThenEvalWritesFiniteJson) {
  const Outcome t = run("train --data gmm1d --model flow --steps 50 --width 16 --depth 2 --n-val 200 --out " + path("run"));
  ASSERT_EQ(t.code, 0) << t.output;
  const Outcome e = run("eval --checkpoint " + path("run") + " --n 300 --out " + path("eval.json"));
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_NE(e.output.find("log-likelihood"), std::string::npos) << e.output;
  std::ifstream in(path("eval.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  for (const char* key : {"log_likelihood", "elbo", "elbo_stderr", "true_log_likelihood", "w1", "sliced_w", "mmd", "energy"})
    EXPECT_TRUE(j.at(key).is_number() && std::isfinite(j.at(key).get<double>())) << key << ": " << j.dump();
  for (const char* key : {"reconstruction", "prior", "drift"})
    EXPECT_TRUE(std::isfinite(j.at("elbo_terms").at(key).get<double>())) << key;
  EXPECT_EQ(j.at("n").get<int>(), 300);
  // The schedule's log-SNR ends: infinite for flow's linear schedule, so null.
  EXPECT_EQ(j.at("schedule").at("name"), "linear");
  EXPECT_TRUE(j.at("schedule").at("lambda_0").is_null() && j.at("schedule").at("lambda_1").is_null()) << j.dump();

  const Outcome h = run("eval --checkpoint " + path("run") + " --hutchinson --solver rk4 --steps 20 --no-samples --n 100 --out " +
                        path("h.json"));
  ASSERT_EQ(h.code, 0) << h.output;
  std::ifstream hin(path("h.json"));
  const nlohmann::json hj = nlohmann::json::parse(hin);
  EXPECT_EQ(hj.at("likelihood_method"), "hutchinson");
  EXPECT_TRUE(hj.at("w1").is_null());

  if (sdegen::gnuplot_available()) {
    const Outcome p = run("plot --checkpoint " + path("run") + " --n 300 --paths 20 --steps 20 --out " + path("plots"));
    ASSERT_EQ(p.code, 0) << p.output;
    for (const char* f : {"density.png", "trajectories.png", "fokker_planck.png", "loss.png"})
      EXPECT_TRUE(fs::exists(dir / "plots" / f)) << f << "\n" << p.output;
  }
}

TEST_F(EvalCli, BadInputIsRefused) {
  const Outcome missing = run("eval --checkpoint " + path("nothing") + " --data gmm1d --out " + path("x.json"));
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.output.find("is not a directory"), std::string::npos) << missing.output;

  ASSERT_EQ(run("train --data gmm1d --model flow --steps 5 --width 8 --depth 1 --n-val 10 --out " + path("run")).code, 0);
  const Outcome dim = run("eval --checkpoint " + path("run") + " --data gmm2d --out " + path("x.json"));
  EXPECT_NE(dim.code, 0);
  EXPECT_NE(dim.output.find("model was trained on 1"), std::string::npos) << dim.output;
  EXPECT_FALSE(fs::exists(path("x.json")));

  const Outcome solver = run("eval --checkpoint " + path("run") + " --solver leapfrog");
  EXPECT_NE(solver.code, 0);
  EXPECT_NE(solver.output.find("unknown likelihood solver 'leapfrog'"), std::string::npos) << solver.output;
}

// The held-out likelihood against the validation figure training kept (val_nll for flow): close on
// data from the training density, far below it on the same density shifted by 8 standard
// deviations, where eval must warn of overfitting.
TEST_F(EvalCli, HeldOutFarBelowValidationWarnsOfOverfitting) {
  const Outcome t = run("train --data gmm1d --model flow --steps 200 --width 16 --depth 2 --n-val 300 --out " + path("run"));
  ASSERT_EQ(t.code, 0) << t.output;
  const Outcome same = run("eval --checkpoint " + path("run") + " --n 400 --no-samples --out " + path("same.json"));
  ASSERT_EQ(same.code, 0) << same.output;
  EXPECT_EQ(same.output.find("overfitted"), std::string::npos) << same.output;
  std::ifstream in(path("same.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("overfitting").at("metric"), "val_nll") << j.dump();
  EXPECT_FALSE(j.at("overfitting").at("warning").get<bool>()) << j.dump();

  ASSERT_EQ(run("sample --oracle --data gmm1d --solver dopri5 --n 200 --out " + path("draw.csv")).code, 0);
  const auto rows = sdegen::test::read_csv_rows(path("draw.csv"));
  double mean = 0, sq = 0;
  for (const auto& r : rows) mean += r[0] / rows.size(), sq += r[0] * r[0] / rows.size();
  const double shift = 8 * std::sqrt(sq - mean * mean);
  {
    std::ofstream out(path("shifted.csv"));
    for (const auto& r : rows) out << r[0] + shift << "\n";
  }
  const Outcome far = run("eval --checkpoint " + path("run") + " --data " + path("shifted.csv") + " --no-samples --out " +
                          path("far.json"));
  ASSERT_EQ(far.code, 0) << far.output;
  EXPECT_NE(far.output.find("may have overfitted"), std::string::npos) << far.output;
  std::ifstream fin(path("far.json"));
  EXPECT_TRUE(nlohmann::json::parse(fin).at("overfitting").at("warning").get<bool>());
}

}  // namespace
