// sdegen plot: draw the figures of a trained model that fit its dimension (PNG, by gnuplot).
#include <fmt/core.h>

#include <filesystem>

#include "apps/commands.h"
#include "sdegen/core/check.h"
#include "sdegen/eval/figures.h"

namespace sdegen::app {
namespace {

struct PlotArgs {
  std::string checkpoint, out = "plots";
  PlotModelOptions options;
  int threads = 1;
};

void run(PlotArgs& a) {
  apply_runtime(a.threads, 0, "cpu");
  SDEGEN_CHECK(std::filesystem::is_directory(a.checkpoint), "--checkpoint '", a.checkpoint,
               "' is not a directory; give the run directory of sdegen train");
  const TrainedModel t = load_trained_model(a.checkpoint);
  SDEGEN_CHECK(t.images.is_null(), "'", a.checkpoint, "' holds an image model; sdegen plot draws vector models ",
               "only so far: draw a grid with sdegen sample --out grid.png");
  for (const std::string& png : plot_model(t, a.out, a.options, a.checkpoint)) fmt::print("wrote {}\n", png);
}

}  // namespace

void register_plot(CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand("plot", "Draw a trained model's figures (density, trajectories, loss) as PNG");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--checkpoint", a->checkpoint, "Run directory of a trained model (from sdegen train)")->required();
  cmd->add_option("--data", a->options.data, "Data to plot against (default: the model's training data)");
  cmd->add_option("--n", a->options.n, "Samples for histograms and scatter plots")->check(positive());
  cmd->add_option("--paths", a->options.paths, "Trajectories drawn")->check(positive());
  cmd->add_option("--steps", a->options.steps, "Steps of the trajectory solvers")->check(positive());
  cmd->add_option("--threads", a->threads, "Intra-op threads")->check(thread_count());
  cmd->add_option("--out", a->out, "Output directory");
  cmd->callback([a] { run(*a); });
}

}  // namespace sdegen::app
