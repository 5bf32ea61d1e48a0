// Nothing lost, nothing silently wrong: each case first reproduces a way the program used to lose
// work or print a wrong result, then asserts the exit code, the message naming the problem, and
// that what was saved before still loads and samples.
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "apps/cli_support.h"
#include "sdegen/data/csv_data.h"

namespace sdegen::test {
namespace {

namespace fs = std::filesystem;
using Robust = CliTest;

const std::string kTiny = " --width 8 --depth 1 --n-train 200 --n-val 100 --log-every 10";

// The samples file holds n finite rows.
void expect_finite_samples(const std::string& file, int64_t n) {
  const CsvData s = load_csv(file);
  EXPECT_EQ(s.x.size(0), n);
  EXPECT_TRUE(torch::isfinite(s.x).all().item<bool>());
}

// 1. A diverging resume must not replace the good checkpoint.
TEST_F(Robust, DivergenceKeepsTheGoodCheckpoint) {
  const std::string run = path("R");
  ASSERT_EQ(run_sdegen("train --data moons --steps 100 --checkpoint-every 20" + kTiny + " --out " + run).code, 0);
  const Outcome bad =
      run_sdegen("train --data moons --steps 200 --lr 1e6 --checkpoint-every 50" + kTiny + " --out " + run + " --resume");
  EXPECT_NE(bad.code, 0) << bad.output;
  EXPECT_NE(bad.output.find("the last good checkpoint is"), std::string::npos) << bad.output;
  const Outcome s = run_sdegen("sample --checkpoint " + run + " --steps 10 --n 50 --out " + path("s.csv"));
  ASSERT_EQ(s.code, 0) << s.output;
  expect_finite_samples(path("s.csv"), 50);
  // Resuming with a sane learning rate goes on from it.
  const Outcome good = run_sdegen("train --data moons --steps 120" + kTiny + " --out " + run + " --resume");
  EXPECT_EQ(good.code, 0) << good.output;
}

// 2. Finite but huge values: standardised robustly, and the checkpoint reads back.
TEST_F(Robust, HugeFiniteValuesTrainAndTheCheckpointLoads) {
  std::ofstream csv(path("huge.csv"));
  csv << "a,b\n";
  for (int i = 0; i < 60; ++i) csv << (1.0 + 0.01 * i) * 1e200 << "," << (i % 7) * 0.5 << "\n";
  csv.close();
  const std::string run = path("R");
  const Outcome t = run_sdegen("train --data " + path("huge.csv") + " --steps 20 --width 8 --depth 1 --out " + run);
  ASSERT_EQ(t.code, 0) << t.output;
  const nlohmann::json config = nlohmann::json::parse(read_file(run + "/checkpoint/config.json"));
  const double sd = config["extra"]["standardizer"]["std"][0].get<double>();
  EXPECT_TRUE(sd > 1.6e199 && sd < 1.8e199) << sd;  // 0.59e200 spread evenly: sd = 1.70e199
  const Outcome s = run_sdegen("sample --checkpoint " + run + " --steps 10 --n 40 --out " + path("s.csv"));
  ASSERT_EQ(s.code, 0) << s.output;
  expect_finite_samples(path("s.csv"), 40);
}

// 3. Damaged weights files are refused by name, by resume and by sample; nothing is written.
TEST_F(Robust, DamagedWeightsAreRefusedByName) {
  const std::string run = path("R");
  ASSERT_EQ(run_sdegen("train --data moons --steps 30" + kTiny + " --out " + run).code, 0);
  auto damage = [](const std::string& file) {
    std::string bytes = read_file(file);
    for (size_t i = 0; i < 64; ++i) bytes[bytes.size() / 2 + i] = 'x';
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    return bytes;
  };
  const std::string ema = run + "/checkpoint/ema.pt", best = run + "/checkpoint/best.pt";
  const std::string ema_bytes = damage(ema);
  const std::string log_before = read_file(run + "/log.csv");
  EXPECT_CLI_ERROR(run_sdegen("train --data moons --steps 60" + kTiny + " --out " + run + " --resume"),
                   "checkpoint '" + ema + "' is corrupt");
  EXPECT_EQ(read_file(ema), ema_bytes);
  EXPECT_EQ(read_file(run + "/log.csv"), log_before);
  // Sampling reads the kept (best) weights, which are intact; once they are damaged too, it
  // refuses them by name instead of sampling from garbage.
  EXPECT_EQ(run_sdegen("sample --checkpoint " + run + " --steps 5 --n 10 --out " + path("s.csv")).code, 0);
  damage(best);
  EXPECT_CLI_ERROR(run_sdegen("sample --checkpoint " + run + " --n 10 --out " + path("s2.csv")),
                   "checkpoint '" + best + "' is corrupt");
}

// 4. --threads has a bound, named in the message.
TEST_F(Robust, ThreadsAboveTheBoundAreRefused) {
  EXPECT_CLI_ERROR(run_sdegen("train --threads 100000 --steps 1 --out " + path("R")), "whole number of threads in [1, ");
  EXPECT_CLI_ERROR(run_sdegen("sample --oracle --threads 500 --out " + path("s.csv")), "(4 per CPU of this machine)");
  EXPECT_FALSE(fs::exists(path("R")));
}

// 5. run.json feeds back to --config; a refused run leaves it alone; trailing garbage and
// non-integer numbers are refused clearly, integral ones accepted.
TEST_F(Robust, RunJsonRoundTripsThroughConfig) {
  const std::string run = path("R");
  ASSERT_EQ(run_sdegen("train --data gmm1d --steps 20" + kTiny + " --out " + run).code, 0);
  const std::string recorded = read_file(run + "/run.json");
  EXPECT_EQ(recorded.find("\"\""), std::string::npos) << "an unset choice was written as \"\": " << recorded;
  const Outcome again = run_sdegen("train --config " + run + "/run.json --out " + path("R2"));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(path("R2") + "/checkpoint/config.json"))["model"],
            nlohmann::json::parse(read_file(run + "/checkpoint/config.json"))["model"]);
  // Refused (a checkpoint is there): run.json is not touched.
  EXPECT_CLI_ERROR(run_sdegen("train --data gmm1d --steps 7 --out " + run), "already holds a checkpoint");
  EXPECT_EQ(read_file(run + "/run.json"), recorded);

  std::ofstream(path("trail.json")) << R"({"steps": 20} garbage)";
  EXPECT_CLI_ERROR(run_sdegen("train --config " + path("trail.json") + " --out " + path("T")), "not valid JSON");
  std::ofstream(path("frac.json")) << R"({"steps": 1.5})";
  EXPECT_CLI_ERROR(run_sdegen("train --config " + path("frac.json") + " --out " + path("T")),
                   "option 'steps' = 1.5");
  std::ofstream(path("exp.json")) << R"({"steps": 2e1, "data": "gmm1d", "width": 8, "depth": 1, "n-train": 50})";
  const Outcome e = run_sdegen("train --config " + path("exp.json") + " --out " + path("E"));
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(path("E") + "/run.json"))["steps"], 20);
  EXPECT_FALSE(fs::exists(path("T")));
}

// 6. compare protects an earlier --out and refuses a model listed twice.
TEST_F(Robust, CompareProtectsEarlierResults) {
  const std::string out = path("C");
  fs::create_directories(out);
  std::ofstream(out + "/compare.json") << "{\"earlier\": true}\n";
  EXPECT_CLI_ERROR(run_sdegen("compare --quick --models flow --out " + out), "already holds an earlier comparison");
  EXPECT_EQ(read_file(out + "/compare.json"), "{\"earlier\": true}\n");
  EXPECT_CLI_ERROR(run_sdegen("compare --quick --models flow flow --out " + path("D")), "lists 'flow' twice");
  EXPECT_FALSE(fs::exists(path("D")));
}

// 7. Sampling times outside [0, 1] are refused.
TEST_F(Robust, SampleTimesOutsideTheUnitIntervalAreRefused) {
  for (const char* args : {"--t0 -0.5", "--t1 1.5", "--t0 0.5 --t1 0.4", "--t1 nan"})
    EXPECT_CLI_ERROR(run_sdegen(std::string("sample --oracle --n 10 ") + args + " --out " + path("s.csv")),
                     "need 0 <= t0 < t1 <= 1");
  EXPECT_FALSE(fs::exists(path("s.csv")));
}

// 8. Seeds that do not fit are refused rather than wrapped or saturated.
TEST_F(Robust, SeedsThatDoNotFitAreRefused) {
  for (const char* seed : {"-1", "99999999999999999999", "18446744073709551616", "1.5", "abc"})
    EXPECT_CLI_ERROR(run_sdegen(std::string("sample --oracle --n 10 --seed ") + seed + " --out " + path("s.csv")),
                     "must be a whole number in [0, 18446744073709551615]");
  EXPECT_EQ(run_sdegen("sample --oracle --n 10 --steps 5 --seed 18446744073709551615 --out " + path("s.csv")).code, 0);
}

// 9. Messages that name the problem.
TEST_F(Robust, UnclearMessagesNowNameTheProblem) {
  fs::create_directories(path("table.csv"));
  EXPECT_CLI_ERROR(run_sdegen("train --data " + path("table.csv") + " --out " + path("R")), "is a directory, not a CSV file");
  std::ofstream(path("mac.csv"), std::ios::binary) << "a,b\r1,2\r3,4\r5,6\r7,9\r";
  EXPECT_EQ(run_sdegen("train --data " + path("mac.csv") + " --steps 2 --width 4 --depth 1 --out " + path("M")).code, 0);
  fs::create_directories(path("out_dir"));
  EXPECT_CLI_ERROR(run_sdegen("sample --oracle --n 10 --steps 5 --out " + path("out_dir")), "it is a directory");
  EXPECT_CLI_ERROR(run_sdegen("fokker-planck --cells 2000000000 --out " + path("fp.csv")), "cells in [1, 100000]");
  EXPECT_CLI_ERROR(run_sdegen("fokker-planck --times 0.9 --max-steps 3 --out " + path("fp.csv")), "raise --max-steps");
  EXPECT_CLI_ERROR(run_sdegen("train --data unknown --out " + path("U")), "or a numeric CSV file (*.csv)");
  std::ofstream(path("neg.json")) << R"({"weights": [1.3, -0.3], "means": [[0], [1]], "stds": [[1], [1]]})";
  const Outcome neg = run_sdegen("sample --oracle --data " + path("neg.json") + " --out " + path("s.csv"));
  EXPECT_CLI_ERROR(neg, "weight 2 of 2 is -0.3");
  EXPECT_EQ(neg.output.find('\n'), neg.output.size() - 1) << "a one-line message: " << neg.output;
}

}  // namespace
}  // namespace sdegen::test
