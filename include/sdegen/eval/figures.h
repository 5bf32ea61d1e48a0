#pragma once
// The figures of a trained model (io/plot.h draws them): the inputs computed from the model,
// and plot_model, which draws every figure that fits the model's dimension into a directory.
#include <string>
#include <vector>

#include "sdegen/eval/evaluate.h"
#include "sdegen/io/plot.h"

namespace sdegen {

// The model's density exp(log p) on `points` of x (data units) through its probability flow.
std::vector<double> model_density_1d(const GenerativeModel& model, const Standardizer& st,
                                     const std::vector<double>& x, const LikelihoodOptions& options = {});

// The paths of n samples: states [T, n, d] in data units and their times, from the prior to the data.
struct Trajectories {
  std::vector<double> times;
  torch::Tensor paths;
};
Trajectories model_trajectories(const GenerativeModel& model, const Standardizer& st, int64_t n,
                                const SamplerOptions& options);

// The model's log density on a cells x cells grid over [lo, hi]^2 of (x1, x2), in data units.
HeatmapPlot model_density_2d(const GenerativeModel& model, const Standardizer& st, double x_lo, double x_hi,
                             double y_lo, double y_hi, int64_t cells = 80, const LikelihoodOptions& options = {});

struct PlotModelOptions {
  int64_t n = 2000;         // samples for histograms and scatter plots
  int64_t paths = 120;      // trajectories drawn
  int steps = 100;          // steps of the trajectory solvers
  std::string data;         // data spec for the reference (default: the model's training data)
  std::string log_csv;      // training log for the loss curves (default: <run_dir>/log.csv)
};

// Draws into out_dir (created): 1-D: density.png, trajectories.png (probability-flow ODE beside
// the SDE with the reverse diffusion, or the model's own SDE), fokker_planck.png (the ODE's
// density over time, where the prior std is at most 3); 2-D: samples.png, density.png,
// trajectories.png; any dimension: loss.png when the log exists. Returns the PNG paths.
std::vector<std::string> plot_model(const TrainedModel& trained, const std::string& out_dir,
                                    const PlotModelOptions& options = {}, const std::string& run_dir = "");

}  // namespace sdegen
