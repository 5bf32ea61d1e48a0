#pragma once
// The figures of a trained model (io/plot.h draws them): the inputs computed from the model,
// and plot_model, which draws every figure that fits the model's dimension into a directory.
#include <string>
#include <vector>

#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/image_evaluate.h"
#include "sdegen/io/plot.h"
#include "sdegen/model/factory.h"

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
  // Image models.
  double guidance = kDefaultGuidance;  // classifier-free guidance weight of the trajectories
  int64_t snapshots = 9;    // times shown per trajectory, from the prior to the image (>= 2)
};

// The generation of images as snapshots: x_t at `count` states of the solve, evenly spaced in its
// steps from the prior draw, the last one the finished image (after the final denoising step of a
// model whose data end stops short of t = 1).
struct ImageTrajectories {
  std::vector<double> times;  // [count]
  torch::Tensor frames;       // [n * count, *shape]: each image's snapshots in a row, in time order
};
// Refused: count < 2, or more snapshots than the solve has states.
ImageTrajectories image_trajectories(const GenerativeModel& model, const torch::Tensor& x0,
                                     const SamplerOptions& options, const Guidance& guidance, int64_t count);

// Draws into out_dir (created): 1-D: density.png, trajectories.png (probability-flow ODE beside
// the SDE with the reverse diffusion, or the model's own SDE), fokker_planck.png (the ODE's
// density over time, where the prior std is at most 3); 2-D: samples.png, density.png,
// trajectories.png; images: trajectories.png, a strip of x_t from the prior to the image for one
// sample per class (8 when unconditional); any model: loss.png when the log exists. Returns the
// PNG paths.
std::vector<std::string> plot_model(const TrainedModel& trained, const std::string& out_dir,
                                    const PlotModelOptions& options = {}, const std::string& run_dir = "");

}  // namespace sdegen
