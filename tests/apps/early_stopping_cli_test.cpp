// Training with its defaults on a small table of the user's own: it validates as it goes, stops
// on its own once the validation figure stalls, and keeps the best weights for sampling.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "apps/cli_support.h"

namespace sdegen::test {
namespace {

using EarlyStopping = CliTest;

TEST_F(EarlyStopping, ASmallTableStopsEarlyAndKeepsTheBestWeights) {
  // 200 rows, 20 correlated columns: far too few rows for a recipe's worth of steps.
  torch::manual_seed(4);
  const torch::Tensor mix = torch::randn({20, 20}, torch::kDouble) / 4.0;
  const torch::Tensor rows = torch::randn({200, 20}, torch::kDouble).mm(mix) + torch::linspace(-2, 2, 20, torch::kDouble);
  {
    std::ofstream csv(path("table.csv"));
    for (int j = 0; j < 20; ++j) csv << (j ? "," : "") << "c" << j;
    csv << "\n" << std::setprecision(17);
    for (int64_t i = 0; i < 200; ++i)
      for (int64_t j = 0; j < 20; ++j) csv << rows[i][j].item<double>() << (j == 19 ? "\n" : ",");
  }
  const std::string run = path("R");
  const Outcome t = run_sdegen("train --data " + path("table.csv") + " --model flow --out " + run);
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_NE(t.output.find("stopped early at step"), std::string::npos) << t.output;
  const nlohmann::json config = nlohmann::json::parse(read_file(run + "/checkpoint/config.json"));
  const int64_t last = config.at("step").get<int64_t>(), best = config.at("best").at("step").get<int64_t>();
  EXPECT_LT(last, config.at("train").at("steps").get<int64_t>()) << "it did not stop early";
  EXPECT_LT(best, last);
  // Stopped after `patience` validations without a better figure, counted from the best.
  const auto& train = config.at("train");
  EXPECT_EQ(last - best, train.at("patience").get<int64_t>() * train.at("val_every").get<int64_t>());
  // The validation figure logged at the kept step is the lowest of the run.
  const std::string metric = config.at("best").at("metric").get<std::string>();
  std::ifstream log(run + "/log.csv");
  std::string line;
  std::getline(log, line);
  const std::vector<std::string> header = split_csv_line(line);
  const size_t column = std::find(header.begin(), header.end(), metric) - header.begin();
  ASSERT_LT(column, header.size()) << metric << " not in " << line;
  double lowest = INFINITY, at_best = NAN;
  int validations = 0;
  while (std::getline(log, line)) {
    const std::vector<std::string> cells = split_csv_line(line);
    if (cells.size() <= column || cells[column].empty()) continue;
    const double v = std::stod(cells[column]);
    ++validations;
    lowest = std::min(lowest, v);
    if (std::stoll(cells[0]) == best) at_best = v;
  }
  EXPECT_GT(validations, 5);
  EXPECT_EQ(at_best, lowest);
  EXPECT_NEAR(config.at("best").at("value").get<double>(), lowest, 1e-9 * std::abs(lowest));
}

}  // namespace
}  // namespace sdegen::test
