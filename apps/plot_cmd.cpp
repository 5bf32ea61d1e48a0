// sdegen plot: draw the figures of a trained model that fit its dimension (PNG, by gnuplot).
#include <fmt/core.h>

#include <filesystem>

#include "apps/commands.h"
#include "sdegen/core/check.h"
#include "sdegen/eval/figures.h"
#include "sdegen/eval/image_evaluate.h"

namespace sdegen::app {
namespace {

struct PlotArgs {
  std::string checkpoint, out = "plots";
  PlotModelOptions options;
  int threads = 1;
  bool guidance_given = false;
};

void run(PlotArgs& a) {
  apply_runtime(a.threads, 0, "cpu");
  SDEGEN_CHECK(std::filesystem::is_directory(a.checkpoint), "--checkpoint '", a.checkpoint,
               "' is not a directory; give the run directory of sdegen train");
  const TrainedModel t = load_trained_model(a.checkpoint);
  SDEGEN_CHECK(!t.latent && t.model->kind() != "autoencoder", "'", a.checkpoint, "' holds ",
               t.latent ? "a latent model, whose trajectories are latents" : "an autoencoder, which has none",
               "; plot draws the trajectories of pixel models. See its images with sdegen sample (a latent model) or "
               "sdegen eval --samples-out (an autoencoder's reconstructions)");
  if (!a.guidance_given) a.options.guidance = default_guidance(*t.model);
  for (const std::string& png : plot_model(t, a.out, a.options, a.checkpoint)) fmt::print("wrote {}\n", png);
}

}  // namespace

void register_plot(CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plot", "Draw a trained model's figures (density, trajectories, loss; for images a strip of x_t) as PNG");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--checkpoint", a->checkpoint, "Run directory of a trained model (from sdegen train)")->required();
  cmd->add_option("--data", a->options.data, "Data to plot against (default: the model's training data)");
  cmd->add_option("--n", a->options.n, "Samples for histograms and scatter plots")->check(positive());
  cmd->add_option("--paths", a->options.paths, "Trajectories drawn")->check(positive());
  cmd->add_option("--steps", a->options.steps, "Steps of the trajectory solvers")->check(positive());
  cmd->add_option("--guidance", a->options.guidance,
                  "Image models: guidance weight of the trajectory strip (one sample per class; default: 1 for a "
                  "model trained without label dropout)");
  cmd->add_option("--snapshots", a->options.snapshots,
                  "Image models: states shown per trajectory, evenly spaced in the Heun steps, the last the image")
      ->check(CLI::Range(int64_t{2}, int64_t{1000}));
  cmd->add_option("--threads", a->threads, "Intra-op threads")->check(thread_count());
  cmd->add_option("--out", a->out, "Output directory");
  cmd->callback([a, cmd] {
    a->guidance_given = cmd->count("--guidance") > 0;
    run(*a);
  });
}

}  // namespace sdegen::app
