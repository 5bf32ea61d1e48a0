// sdegen train --condition-columns and sdegen sample --condition: a table whose generated columns
// follow a conditioning column, learned and sampled through the program, and bad names and values
// refused by name.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "apps/cli_support.h"
#include "sdegen/data/csv_data.h"

namespace sdegen::test {
namespace {

using ConditionCli = CliTest;

// c in {-2, 2}; y1 = c and y2 = -c, each with noise 0.2.
std::string write_table(const std::string& file, unsigned seed = 1) {
  std::mt19937 rng(seed);
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
  // eval on fresh rows, given each row's c: log p(y1, y2 | c) of two independent N(+-c, 0.2^2) is
  // -log(2 pi 0.04) - 1 = 0.381 nats; the unconditional model's would be 0.381 - log 2 = -0.312.
  const Outcome e = run_sdegen("eval --checkpoint " + run + " --data " + write_table(path("fresh.csv"), 2) +
                               " --sample-solver heun --sample-steps 20 --out " + path("eval.json") +
                               " --samples-out " + path("es.csv"));
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_NE(e.output.find("given each row's 1 condition columns"), std::string::npos) << e.output;
  const nlohmann::json j = nlohmann::json::parse(read_file(path("eval.json")));
  EXPECT_EQ(j["condition_columns"], nlohmann::json::array({"c"}));
  EXPECT_EQ(j["dim"], 2);
  const double truth = -std::log(2 * M_PI * 0.04) - 1.0;
  EXPECT_GT(j["log_likelihood"].get<double>(), truth - 0.3) << e.output;
  EXPECT_LT(j["log_likelihood"].get<double>(), truth + 0.15) << e.output;
  EXPECT_TRUE(j["elbo"].is_number()) << e.output;  // given the conditions (its 8 draws of t per row are noisy)
  // Samples that ignored c would put half the rows' y1 4 units away: a sliced distance near 1.
  EXPECT_LT(j["sliced_w"].get<double>(), 4.0 * j["sliced_w_reference"].get<double>()) << e.output;
  // The samples: one per reference row (half of the 400), beside its condition.
  const CsvData drawn = load_csv(path("es.csv"));
  ASSERT_EQ(drawn.columns, (std::vector<std::string>{"c", "y1", "y2"}));
  ASSERT_EQ(drawn.x.size(0), 200);
  EXPECT_LT((drawn.x.select(1, 1) - drawn.x.select(1, 0)).abs().gt(1.0).to(torch::kDouble).mean().item<double>(), 0.1);
  // plot: the samples at each row's condition beside the rows (c against y1; y1 against y2), and the loss.
  const Outcome p = run_sdegen("plot --checkpoint " + run + " --n 200 --steps 10 --out " + path("plots"));
  ASSERT_EQ(p.code, 0) << p.output;
  for (const char* png : {"samples.png", "samples_generated.png", "loss.png"})
    EXPECT_GT(std::filesystem::file_size(path("plots/") + png), 1000u) << png;
  EXPECT_NE(p.output.find("samples_generated.png"), std::string::npos) << p.output;
  refused("eval --checkpoint " + run + " --data laplace5", "is evaluated on a CSV file with those columns");
  refused("eval --checkpoint " + run + " --data " + path("u.csv"), "has no column 'c'");
  // Resuming goes on only with the columns the run was trained with.
  const std::string more = "train --data " + path("table.csv") + " --model flow --steps 900 --batch 128 --width 32 "
                           "--depth 2 --lr 3e-3 --threads 1 --resume --out " + run;
  refused(more, "it was trained with --condition-columns c, and this run gives none");
  const Outcome resumed = run_sdegen(more + " --condition-columns c");
  EXPECT_EQ(resumed.code, 0) << resumed.output;
}

// reflow of a teacher trained with --condition-columns draws its pairs at the observations of the
// teacher's training rows, and the student learns the conditional coupling: at c = 2, one Euler
// step of the student gives the mean and spread of the teacher's flow solved in 20 Heun steps,
// which one Euler step of the teacher does not. A student trained on unconditional pairs would
// put half its samples near -2.
TEST_F(ConditionCli, ReflowTrainsAConditionalOneStepStudent) {
  const std::string data = write_table(path("table.csv")), teacher = path("T"), student = path("S");
  ASSERT_EQ(run_sdegen("train --data " + data + " --condition-columns c --model flow --steps 800 --batch 128 "
                       "--width 32 --depth 2 --lr 3e-3 --threads 1 --out " + teacher).code, 0);
  const std::string reflow = "reflow --checkpoint " + teacher + " --pairs 2000 --solver rk4 --solver-steps 20 "
                             "--batch 128 --lr 3e-3 --threads 1 --out " + student;
  const Outcome r = run_sdegen(reflow + " --steps 1500");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("straightness (0: straight paths): teacher"), std::string::npos) << r.output;
  // One Euler step at c = 2: samples [300, 2] of (y1, y2) around (2, -2).
  auto draw = [&](const std::string& run, const std::string& solver) {
    const std::string out = path("one.csv");
    const Outcome o = run_sdegen("sample --checkpoint " + run + " --condition c=2 --n 300 --seed 4 --out " + out +
                                 " --solver " + solver);
    EXPECT_EQ(o.code, 0) << o.output;
    return load_csv(out).x;
  };
  const torch::Tensor from_student = draw(student, "euler --steps 1"), from_teacher = draw(teacher, "euler --steps 1");
  const torch::Tensor target = draw(teacher, "heun --steps 20");  // the teacher's flow, solved closely
  for (int64_t j = 0; j < 2; ++j) {
    const double mean = target.select(1, j).mean().item<double>(), spread = target.select(1, j).std().item<double>();
    EXPECT_NEAR(mean, j == 0 ? 2.0 : -2.0, 0.15) << "column " << j;
    // Measured: the teacher's spread 0.31 and 0.33, the student's one step 0.31 and 0.33, the
    // teacher's one step 0.52 and 0.43.
    EXPECT_NEAR(from_student.select(1, j).mean().item<double>(), mean, 0.1) << "column " << j;
    const double student_gap = std::abs(from_student.select(1, j).std().item<double>() - spread);
    EXPECT_LT(student_gap, 0.05) << "column " << j;
    EXPECT_LT(student_gap, std::abs(from_teacher.select(1, j).std().item<double>() - spread)) << "column " << j;
  }
  // The student learned no unconditional model (no condition dropout): a draw without c is refused.
  const Outcome free = run_sdegen("sample --checkpoint " + student + " --n 5 --out " + path("free.csv"));
  EXPECT_NE(free.code, 0);
  EXPECT_NE(free.output.find("no unconditional model to draw from; give --condition"), std::string::npos)
      << free.output;
  // Resuming reads the saved pairs (with their conditions) rather than drawing new ones.
  const Outcome resumed = run_sdegen(reflow + " --steps 1600 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find("drawing"), std::string::npos) << resumed.output;
  // A consistency student takes no condition vector: distillation is refused by name.
  const Outcome d = run_sdegen("distill --checkpoint " + teacher + " --steps 5 --out " + path("D"));
  EXPECT_NE(d.code, 0);
  EXPECT_NE(d.output.find("a consistency student takes no condition vector"), std::string::npos) << d.output;
  EXPECT_FALSE(std::filesystem::exists(path("D")));
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
