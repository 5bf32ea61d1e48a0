// sdegen train --resume end to end: a run stopped at step 15 and resumed to step 30 writes the
// log an uninterrupted 30-step run writes (the same losses, learning rates and gradient norms)
// and ends with the same checkpoint.
#include <nlohmann/json.hpp>

#include "apps/cli_support.h"

namespace sdegen::test {
namespace {

class CliResume : public CliTest {};

// The step, loss, lr and grad_norm columns of log.csv: seconds differ between runs, and the
// validation columns are compared through the checkpoints.
std::vector<std::string> log_columns(const std::string& path) {
  std::vector<std::string> out;
  for (const std::string& line : read_lines(path)) {
    size_t end = 0;
    for (int comma = 0; comma < 4 && end != std::string::npos; ++comma) end = line.find(',', end + (comma > 0));
    out.push_back(line.substr(0, end));
  }
  return out;
}

TEST_F(CliResume, ResumedRunRepeatsTheUninterruptedRun) {
  // A constant learning rate: a schedule over --steps would differ between 15 and 30 steps. The
  // validations fall at steps 15 and 30 in both runs, so the best weights (those sampling uses)
  // are chosen from the same candidates.
  const std::string common =
      "train --data gmm1d --model flow --n-train 200 --n-val 50 --width 8 --depth 1 --lr 0.01 --decay none "
      "--batch 32 --seed 4 --log-every 5 --val-every 15 --patience 0 --out ";
  const Outcome straight = run_sdegen(common + path("straight") + " --steps 30");
  ASSERT_EQ(straight.code, 0) << straight.output;
  const Outcome first = run_sdegen(common + path("resumed") + " --steps 15");
  ASSERT_EQ(first.code, 0) << first.output;
  ASSERT_EQ(log_columns(path("resumed/log.csv")).size(), 4u);  // header and steps 5, 10, 15
  const Outcome second = run_sdegen(common + path("resumed") + " --steps 30 --resume");
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("30 steps"), std::string::npos) << second.output;

  const auto want = log_columns(path("straight/log.csv")), got = log_columns(path("resumed/log.csv"));
  ASSERT_EQ(want.size(), 7u);  // header and steps 5 .. 30
  EXPECT_EQ(got, want);
  std::ifstream a(path("straight/checkpoint/config.json")), b(path("resumed/checkpoint/config.json"));
  const nlohmann::json ca = nlohmann::json::parse(a), cb = nlohmann::json::parse(b);
  EXPECT_EQ(cb.at("step"), 30);
  EXPECT_EQ(cb.at("model"), ca.at("model"));
  EXPECT_EQ(cb.at("extra"), ca.at("extra"));

  // Both checkpoints sample the same points from the same seed.
  const std::string sample = " --solver heun --steps 4 --n 20 --seed 1 --out ";
  ASSERT_EQ(run_sdegen("sample --checkpoint " + path("straight") + sample + path("a.csv")).code, 0);
  ASSERT_EQ(run_sdegen("sample --checkpoint " + path("resumed") + sample + path("b.csv")).code, 0);
  EXPECT_EQ(read_lines(path("a.csv")), read_lines(path("b.csv")));
}

TEST_F(CliResume, ResumeWithoutACheckpointIsRefused) {
  const Outcome r = run_sdegen("train --data gmm1d --model flow --steps 5 --width 4 --resume --out " + path("none"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("checkpoint"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sdegen::test
