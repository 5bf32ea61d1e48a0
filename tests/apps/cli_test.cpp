// The sdegen program end to end: exit codes, messages on bad input, and a tiny train-and-sample
// run. The binary's path comes from CTest (SDEGEN_BIN).
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/cli_support.h"

namespace {

using sdegen::test::Outcome;
Outcome sdegen(const std::string& args) { return sdegen::test::run_sdegen(args); }
using Cli = sdegen::test::CliTest;

// Whether help shows `option` (its name and type) with default `value`: "--steps INT=50" as
// CLI11 2.3 writes it (Debian 12), "--steps INT [50]" as 2.4 does (Debian 13).
bool shows_default(const std::string& help, const std::string& option, const std::string& value) {
  return help.find(option + "=" + value) != std::string::npos || help.find(option + " [" + value + "]") != std::string::npos;
}

TEST_F(Cli, HelpShowsDefaults) {
  const Outcome r = sdegen("sample --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--solver"), std::string::npos);
  EXPECT_TRUE(shows_default(r.output, "unipc,ddpm,reverse-diffusion,edm,consistency}", "heun")) << r.output;
  EXPECT_TRUE(shows_default(r.output, "--steps INT:POSITIVE", "50")) << r.output;
  EXPECT_FALSE(shows_default(r.output, "--steps INT:POSITIVE", "49"));
}

TEST_F(Cli, OracleSampleWritesOneRowPerSample) {
  const Outcome r = sdegen("sample --oracle --data gmm2d --solver rk4 --steps 10 --n 300 --out " + path("s.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(rows(path("s.csv")), 300);
  EXPECT_NE(r.output.find("sliced Wasserstein"), std::string::npos);
}

// The stochastic samplers' options, with their defaults, in sample's and eval's help; ddpm and
// edm with churn end to end on the oracle (vp: a > 0 at t = 0, which edm needs).
TEST_F(Cli, StochasticSamplersSampleAndShowTheirOptions) {
  for (const std::string command : {"sample", "eval"}) {
    const Outcome h = sdegen(command + " --help");
    EXPECT_EQ(h.code, 0);
    for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
             {"--churn FLOAT:NONNEGATIVE", "0"},
             {"--s-tmin FLOAT:NONNEGATIVE", "0"},
             {"--s-tmax FLOAT", "inf"},
             {"--s-noise FLOAT:POSITIVE", "1"},
             {"--pc-predictor TEXT:{euler-maruyama,reverse-diffusion}", "euler-maruyama"}})
      EXPECT_TRUE(shows_default(h.output, flag, value)) << command << ": " << flag << "\n" << h.output;
  }
  for (const std::string solver : {"ddpm --steps 30", "edm --steps 15 --churn 5 --s-tmax 10",
                                   "pc --pc-predictor reverse-diffusion --steps 30"}) {
    const Outcome r = sdegen("sample --oracle --data gmm1d --schedule vp --n 200 --solver " + solver + " --out " +
                             path("s.csv"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(rows(path("s.csv")), 200);
  }
  const Outcome refused = sdegen("sample --oracle --solver edm --out " + path("s.csv"));
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("start at t0 > 0 or use the ve or edm schedule"), std::string::npos) << refused.output;
  const Outcome churn = sdegen("sample --oracle --solver heun --churn 2 --out " + path("s.csv"));
  EXPECT_NE(churn.code, 0);
  EXPECT_NE(churn.output.find("options of the edm solver"), std::string::npos) << churn.output;
}

TEST_F(Cli, FokkerPlanckWritesTheDensityBesideTheExactOne) {
  const Outcome r = sdegen("fokker-planck --data gmm1d --schedule linear --sigma 1 --times 0.5 --cells 200 --out " +
                       path("fp.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(rows(path("fp.csv")), 200);
}

TEST_F(Cli, BadInputExitsNonZeroNamingTheProblem) {
  auto expect_error = [](const Outcome& r, const std::string& fragment) {
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_NE(r.output.find(fragment), std::string::npos) << r.output;
  };
  expect_error(sdegen("sample --oracle --solver leapfrog"), "unknown solver 'leapfrog'");
  expect_error(sdegen("sample --oracle --schedule cosine"), "unknown schedule 'cosine'");
  expect_error(sdegen("sample --oracle --steps 0"), "must be a positive number");
  expect_error(sdegen("sample --oracle --data nope"), "unknown data 'nope'");
  expect_error(sdegen("sample --oracle --sigma loud --solver euler-maruyama"), "cannot read diffusion 'loud'");
  expect_error(sdegen("sample --oracle --sigma 1 --solver heun"), "deterministic");
  std::ofstream(path("bad.json")) << R"({"weights": [0.5, 0.6], "means": [[0], [1]], "stds": [[1], [1]]})";
  expect_error(sdegen("sample --oracle --data " + path("bad.json")), "sum to 1");
  std::ofstream(path("neg.json")) << R"({"weights": [0.5, 0.5], "means": [[0], [1]], "stds": [[1], [-1]]})";
  expect_error(sdegen("sample --oracle --data " + path("neg.json")), "stds must be positive");
  std::ofstream(path("broken.json")) << R"({"weights": [0.5, )";
  expect_error(sdegen("sample --oracle --data " + path("broken.json")), "not valid JSON");
  expect_error(sdegen("sample --checkpoint " + path("missing")), "checkpoint");
}

TEST_F(Cli, TinyTrainThenSampleFromTheCheckpoint) {
  const std::string run = path("run");
  const Outcome t = sdegen("train --data gmm1d --model flow --steps 40 --n-train 200 --n-val 100 --width 8 --depth 1 "
                       "--log-every 10 --val-every 20 --out " + run);
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_TRUE(std::filesystem::exists(run + "/checkpoint/config.json"));
  EXPECT_EQ(rows(run + "/log.csv"), 4);
  const Outcome s = sdegen("sample --checkpoint " + run + " --solver heun --steps 5 --n 50 --out " + path("s.csv"));
  ASSERT_EQ(s.code, 0) << s.output;
  EXPECT_EQ(rows(path("s.csv")), 50);
  // A second fresh run into the same directory must not silently replace the checkpoint.
  const Outcome again = sdegen("train --data gmm1d --model flow --steps 5 --n-train 50 --out " + run);
  EXPECT_NE(again.code, 0);
  EXPECT_TRUE(std::filesystem::exists(run + "/checkpoint/config.json"));
}

TEST_F(Cli, TrainRefusesAMalformedCsv) {
  std::ofstream(path("d.csv")) << "x,y\n1,2\n3,abc\n";
  const Outcome r = sdegen("train --data " + path("d.csv") + " --steps 5 --out " + path("run"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("line 3, column 2"), std::string::npos) << r.output;
}

TEST_F(Cli, TrainReadsAJsonConfigFlagsWinAndTheRunIsRecorded) {
  const std::string run = path("run");
  std::ofstream(path("c.json")) << R"({"data": "gmm1d", "model": "sde", "steps": 50, "n_train": 100, "n-val": 50,
    "width": 8, "depth": 1, "model-config": {"sigma_knots": 4}, "out": ")" << run << R"("})";
  const Outcome t = sdegen("train --config " + path("c.json") + " --steps 3");
  ASSERT_EQ(t.code, 0) << t.output;
  std::ifstream saved(run + "/checkpoint/config.json");
  const nlohmann::json config = nlohmann::json::parse(saved);
  EXPECT_EQ(config["model"]["kind"], "sde");
  EXPECT_EQ(config["model"]["sigma_knots"], 4);
  std::ifstream recorded(run + "/run.json");
  const nlohmann::json options = nlohmann::json::parse(recorded);
  EXPECT_EQ(options["steps"], 3);  // the flag beat the file
  EXPECT_EQ(options["n-train"], 100);
  EXPECT_EQ(options["resume"], false);
  // The general model samples with its own diffusion, and refuses an ODE solver by name.
  const Outcome s = sdegen("sample --checkpoint " + run + " --solver euler-maruyama --steps 5 --n 20 --out " +
                           path("s.csv"));
  ASSERT_EQ(s.code, 0) << s.output;
  EXPECT_EQ(rows(path("s.csv")), 20);
  const Outcome h = sdegen("sample --checkpoint " + run + " --solver heun --n 20 --out " + path("h.csv"));
  EXPECT_NE(h.code, 0);
  EXPECT_NE(h.output.find("no probability-flow ODE"), std::string::npos) << h.output;
}

TEST_F(Cli, BadConfigFilesAndMismatchedDataAreRefused) {
  std::ofstream(path("typo.json")) << R"({"stepz": 4})";
  Outcome r = sdegen("train --config " + path("typo.json") + " --out " + path("a"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("unknown option 'stepz'"), std::string::npos) << r.output;
  std::ofstream(path("broken.json")) << R"({"steps": )";
  r = sdegen("train --config " + path("broken.json") + " --out " + path("a"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;
  std::ofstream(path("bad.json")) << R"({"model": "gan"})";
  r = sdegen("train --config " + path("bad.json") + " --out " + path("a"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("unknown model 'gan'"), std::string::npos) << r.output;
  r = sdegen("train --model ode --model-config '{\"stepz\": 3}' --steps 1 --out " + path("a"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("'stepz'"), std::string::npos) << r.output;
  // Resuming on data of another dimension names both dimensions and keeps the checkpoint.
  std::ofstream(path("two.csv")) << "a,b\n1,2\n3,4\n5,7\n2,2\n";
  std::ofstream(path("three.csv")) << "a,b,c\n1,2,3\n3,4,5\n5,7,1\n2,2,2\n";
  const std::string run = path("run");
  ASSERT_EQ(sdegen("train --data " + path("two.csv") + " --steps 2 --width 4 --out " + run).code, 0);
  r = sdegen("train --data " + path("three.csv") + " --steps 4 --width 4 --resume --out " + run);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("has 3 columns but the model was trained on 2"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(run + "/checkpoint/model.pt"));
}

bool is_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 8> sig{};
  in.read(reinterpret_cast<char*>(sig.data()), 8);
  const std::array<unsigned char, 8> expected{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return in.good() && sig == expected && std::filesystem::file_size(path) > 1000;
}

// The README's main job in its quick form: every model trains, is evaluated, and is drawn.
TEST_F(Cli, QuickCompareTrainsEvaluatesAndPlotsEveryModel) {
  const std::string out = path("compare");
  const Outcome r = sdegen("compare --quick --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* model : {"sde", "ode", "flow", "diffusion", "score", "vdm"})
    EXPECT_NE(r.output.find(std::string("\n") + model + " "), std::string::npos) << "no table row for " << model;
  EXPECT_NE(r.output.find("true average log density"), std::string::npos) << r.output;
  std::ifstream in(out + "/compare.json");
  const nlohmann::json record = nlohmann::json::parse(in);
  ASSERT_EQ(record["models"].size(), 6u);
  // The distance floors, two data samples and the training rows (1000 each here): a few tenths
  // for laplace5, whose spread is ~6.
  for (const char* key : {"reference_distance", "train_distance"}) {
    const double w = record[key].get<double>();
    EXPECT_TRUE(w > 0.0 && w < 1.0) << key << " = " << w;
  }
  EXPECT_NE(r.output.find("training rows themselves are W1 = "), std::string::npos) << r.output;
  const double truth = record["models"][0]["true_log_likelihood"].get<double>();
  EXPECT_NEAR(truth, -3.0, 0.15);  // laplace5's average log density
  for (const auto& m : record["models"]) {
    const std::string kind = m["model"];
    // Plausible for a few seconds of training: within a few nats of the truth, never above it by
    // much. The ELBO is a Monte Carlo estimate (a few draws of t per point), so "much" allows three
    // of its standard errors beyond 0.3: the flow's drift term is heavy-tailed, and one draw
    // of it came out 0.31 above the truth on a loaded machine.
    const double elbo = m["elbo"].get<double>(), se = m["elbo_stderr"].get<double>();
    EXPECT_TRUE(std::isfinite(elbo) && elbo < truth + 0.3 + 3.0 * se && elbo > truth - 4.0)
        << kind << " ELBO " << elbo << " +- " << se;
    if (kind == "sde") {
      EXPECT_TRUE(m["log_likelihood"].is_null());
    } else {
      const double ll = m["log_likelihood"].get<double>();
      EXPECT_TRUE(ll < truth + 0.3 && ll > truth - 2.0) << kind << " log-likelihood " << ll;
      EXPECT_GE(ll, elbo - 4 * m["elbo_stderr"].get<double>()) << kind << ": the ELBO bounds the likelihood";
    }
    for (const char* key : {"distance_at_10", "distance_at_50", "distance_adaptive"}) {
      ASSERT_TRUE(m[key].is_number()) << kind << " " << key;
      const double w = m[key].get<double>();
      EXPECT_TRUE(w > 0 && w < 100) << kind << " " << key << " = " << w;
    }
    EXPECT_LT(m["distance_at_50"].get<double>(), 3.0) << kind;  // the data's spread is ~5
    EXPECT_GT(m["steps"].get<int64_t>(), 0);
    EXPECT_GT(m["train_seconds"].get<double>(), 0.0);
    EXPECT_TRUE(is_png(out + "/" + kind + "/plots/trajectories.png")) << kind;
  }
  EXPECT_TRUE(is_png(out + "/densities.png"));
  EXPECT_TRUE(is_png(out + "/loss.png"));
  EXPECT_TRUE(is_png(out + "/flow/plots/density.png"));
}

}  // namespace
