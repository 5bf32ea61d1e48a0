// Every figure kind writes a PNG (signature and size checked); gnuplot's absence and failure are
// clear errors. Skipped where gnuplot is not installed.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sdegen/core/error.h"
#include "sdegen/io/plot.h"
#include "support/support.h"

namespace sdegen {
namespace {
namespace fs = std::filesystem;

class Plot : public ::testing::Test {
 protected:
  fs::path dir = fs::path(test::temp_path("plots_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())));
  void SetUp() override {
    if (!gnuplot_available()) GTEST_SKIP() << "gnuplot is not installed";
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string png(const std::string& name) const { return (dir / name).string(); }
  static void expect_png(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char sig[8] = {};
    in.read(sig, 8);
    const unsigned char expected[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    EXPECT_EQ(std::memcmp(sig, expected, 8), 0) << path << " is not a PNG";
    EXPECT_GT(fs::file_size(path), 1000u) << path;
  }
};

TEST_F(Plot, Density1d) {
  Density1dPlot p;
  for (int i = 0; i <= 200; ++i) p.x.push_back(-4 + 8.0 * i / 200);
  for (double x : p.x) p.model.push_back(std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI));
  p.truth = p.model;
  p.samples = torch::randn({2000});
  plot_density_1d(png("density.png"), p);
  expect_png(png("density.png"));
  EXPECT_TRUE(fs::exists(dir / "density.gp"));
}

TEST_F(Plot, TrajectoriesHeatmapSamplesLoss) {
  const torch::Tensor t = torch::linspace(0, 1, 21, torch::kDouble);
  std::vector<double> times(t.data_ptr<double>(), t.data_ptr<double>() + 21);
  const torch::Tensor paths = torch::randn({1, 30}, torch::kDouble) * (1 + 2 * t.unsqueeze(1));
  plot_trajectories_1d(png("paths.png"), {{"ODE", times, paths}, {"SDE", times, paths + 0.1}});
  expect_png(png("paths.png"));

  HeatmapPlot h;
  h.x = {0, 1, 2};
  h.y = {0, 0.5, 1};
  h.values = {{1, 2, 3}, {2, 3, 4}, {3, 4, 5}};
  plot_heatmap(png("heat.png"), h);
  expect_png(png("heat.png"));

  plot_samples_2d(png("samples.png"), torch::randn({300, 2}), torch::randn({300, 2}));
  expect_png(png("samples.png"));
  plot_trajectories_2d(png("paths2d.png"), torch::randn({11, 20, 2}), torch::randn({100, 2}));
  expect_png(png("paths2d.png"));

  {
    std::ofstream log(dir / "log.csv");
    log << "step,loss,lr,val_w1\n";
    for (int s = 1; s <= 50; ++s) log << s << "," << 1.0 / s << ",0.001," << (s % 10 == 0 ? "0.5" : "") << "\n";
  }
  plot_loss_curves(png("loss.png"), {{"flow", (dir / "log.csv").string()}});
  expect_png(png("loss.png"));
}

TEST_F(Plot, MissingOrFailingGnuplotIsAClearError) {
  HeatmapPlot h;
  h.x = {0, 1};
  h.y = {0, 1};
  h.values = {{1, 2}, {3, 4}};
  ::setenv("SDEGEN_GNUPLOT", "/nonexistent/gnuplot", 1);
  EXPECT_THROW_WITH(plot_heatmap(png("h.png"), h), IoError, "gnuplot not found");
  ::unsetenv("SDEGEN_GNUPLOT");
  EXPECT_THROW_WITH(run_gnuplot(png("bad.png"), "this is not gnuplot\n"), IoError, "gnuplot failed");
  EXPECT_THROW_WITH(plot_heatmap((dir / "h.jpg").string(), h), InvalidArgument, ".png");
}

}  // namespace
}  // namespace sdegen
