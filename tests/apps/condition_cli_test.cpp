// sdegen train --condition-columns and sdegen sample --condition: a table whose generated columns
// follow a conditioning column, learned and sampled through the program, and bad names and values
// refused by name.
#include <cmath>
#include <fstream>
#include <random>

#include "apps/cli_support.h"
#include "sdegen/data/csv_data.h"

namespace sdegen::test {
namespace {

using ConditionCli = CliTest;

// c in {-2, 2}; y1 = c and y2 = -c, each with noise 0.2.
std::string write_table(const std::string& file) {
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(0.0, 0.2);
  std::ofstream csv(file);
  csv << "y1,c,y2\n";
  for (int i = 0; i < 400; ++i) {
    const double c = i % 2 == 0 ? -2.0 : 2.0;
    csv << c + noise(rng) << "," << c << "," << -c + noise(rng) << "\n";
  }
  return file;
}

TEST_F(ConditionCli, TrainsOnTheOtherColumnsAndSamplesGivenTheCondition) {
  const std::string data = write_table(path("table.csv")), run = path("R");
  const Outcome t = run_sdegen("train --data " + data + " --condition-columns c --model flow --steps 800 --batch 128 "
                               "--width 32 --depth 2 --lr 3e-3 --threads 1 --out " + run);
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_NE(t.output.find("generating y1, y2 given c"), std::string::npos) << t.output;
  EXPECT_NE(t.output.find("val_nelbo"), std::string::npos) << t.output;  // a conditional model's ELBO
  for (const double c : {-2.0, 2.0}) {
    const std::string out = path("s.csv");
    const Outcome s = run_sdegen("sample --checkpoint " + run + " --condition 'c = " + std::to_string(c) +
                                 "' --n 300 --solver heun --steps 20 --out " + out);
    ASSERT_EQ(s.code, 0) << s.output;
    const CsvData samples = load_csv(out);
    ASSERT_EQ(samples.columns, (std::vector<std::string>{"y1", "y2"}));
    ASSERT_EQ(samples.x.size(0), 300);
    EXPECT_NEAR(samples.x.select(1, 0).mean().item<double>(), c, 0.3) << "c = " << c;
    EXPECT_NEAR(samples.x.select(1, 1).mean().item<double>(), -c, 0.3) << "c = " << c;
  }
  // A file of observations: one sample per row, written beside it (its extra column ignored).
  {
    std::ofstream obs(path("obs.csv"));
    obs << "note,c\n";
    for (int i = 0; i < 40; ++i) obs << i << "," << (i % 3 == 0 ? 2.0 : -2.0) << "\n";
  }
  const Outcome f = run_sdegen("sample --checkpoint " + run + " --condition-file " + path("obs.csv") +
                               " --solver heun --steps 20 --out " + path("f.csv"));
  ASSERT_EQ(f.code, 0) << f.output;
  const CsvData per_row = load_csv(path("f.csv"));
  ASSERT_EQ(per_row.columns, (std::vector<std::string>{"c", "y1", "y2"}));
  ASSERT_EQ(per_row.x.size(0), 40);
  const torch::Tensor c = per_row.x.select(1, 0), y1 = per_row.x.select(1, 1);
  EXPECT_LT((y1 - c).abs().gt(1.0).to(torch::kDouble).mean().item<double>(), 0.1);  // each row follows its c
  // No condition: the unconditional model, both modes.
  const Outcome free = run_sdegen("sample --checkpoint " + run + " --n 300 --out " + path("u.csv"));
  ASSERT_EQ(free.code, 0) << free.output;
  EXPECT_NE(free.output.find("no --condition: drawing from the unconditional model"), std::string::npos);
  const double upper = load_csv(path("u.csv")).x.select(1, 0).gt(0).to(torch::kDouble).mean().item<double>();
  EXPECT_GT(upper, 0.25);
  EXPECT_LT(upper, 0.75);

  // Bad values and names, each by name.
  auto refused = [&](const std::string& args, const std::string& fragment) {
    const Outcome o = run_sdegen(args);
    EXPECT_NE(o.code, 0) << args << "\n" << o.output;
    EXPECT_NE(o.output.find(fragment), std::string::npos) << args << "\n" << o.output;
  };
  const std::string sample = "sample --checkpoint " + run + " --n 5 --out " + path("x.csv") + " --condition ";
  refused(sample + "d=1", "the model is conditioned on c; it has no 'd'");
  refused(sample + "c=abc", "the value of 'c' must be a finite number, got 'abc'");
  refused(sample + "c=nan", "must be a finite number");
  refused(sample + "c=1,c=2", "gives 'c' twice");
  refused("sample --checkpoint " + run + " --condition-file " + path("table.csv") + " --n 5 --out " + path("x.csv"),
          "--n: with --condition-file each row gives one sample");
  refused("sample --checkpoint " + run + " --condition-file " + path("u.csv") + " --out " + path("x.csv"),
          "has no column 'c' (the model is conditioned on c); its columns are y1, y2");
  refused("eval --checkpoint " + run, "eval of a model trained with --condition-columns (c) is not built yet");
  // Resuming goes on only with the columns the run was trained with.
  const std::string more = "train --data " + path("table.csv") + " --model flow --steps 900 --batch 128 --width 32 "
                           "--depth 2 --lr 3e-3 --threads 1 --resume --out " + run;
  refused(more, "it was trained with --condition-columns c, and this run gives none");
  const Outcome resumed = run_sdegen(more + " --condition-columns c");
  EXPECT_EQ(resumed.code, 0) << resumed.output;
}

TEST_F(ConditionCli, BadColumnsAndModelsAreRefusedBeforeAnythingIsWritten) {
  const std::string data = write_table(path("table.csv")), run = path("R");
  auto refused = [&](const std::string& args, const std::string& fragment) {
    const Outcome o = run_sdegen("train --data " + data + " --steps 2 --out " + run + " " + args);
    EXPECT_NE(o.code, 0) << args << "\n" << o.output;
    EXPECT_NE(o.output.find(fragment), std::string::npos) << args << "\n" << o.output;
    EXPECT_FALSE(std::filesystem::exists(run)) << args;
  };
  refused("--condition-columns nope", "has no column 'nope'; its columns are y1, c, y2");
  refused("--condition-columns y1,c,y2", "names every column");
  refused("--condition-columns c,c", "names 'c' twice");
  refused("--condition-columns c --model sde", "the 'sde' model takes no condition vector");
  const Outcome density = run_sdegen("train --data moons --condition-columns c --steps 2 --out " + run);
  EXPECT_NE(density.code, 0);
  EXPECT_NE(density.output.find("is a built-in density"), std::string::npos) << density.output;
  // An unconditional run refuses --condition.
  ASSERT_EQ(run_sdegen("train --data " + data + " --steps 5 --width 8 --depth 1 --out " + run).code, 0);
  const Outcome s = run_sdegen("sample --checkpoint " + run + " --condition c=1 --n 5 --out " + path("x.csv"));
  EXPECT_NE(s.code, 0);
  EXPECT_NE(s.output.find("this model takes no condition vector"), std::string::npos) << s.output;
}

}  // namespace
}  // namespace sdegen::test
