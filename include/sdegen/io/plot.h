#pragma once
// PNG figures drawn by gnuplot. Each function writes its data files and a gnuplot script beside
// the PNG (<stem>.gp, <stem>_*.dat), so a figure can be restyled and redrawn by hand, then runs
// gnuplot on the script. These functions see only numbers, never a model: eval/figures.h turns
// trained models into these inputs.
//
// The program is $SDEGEN_GNUPLOT when set, else `gnuplot` on the PATH. IoError when it is missing
// ("gnuplot not found ...; install gnuplot-nox (scripts/setup.sh)"), exits non-zero (its error
// output is in the message) or leaves no PNG.
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace sdegen {

struct FigureSize {
  int width = 900, height = 600;  // pixels
};

// Whether the gnuplot program can be run.
bool gnuplot_available();

// Writes script to <png stem>.gp, runs gnuplot on it in the PNG's directory and checks that the
// PNG exists. The script must set the output itself (see gnuplot_header).
void run_gnuplot(const std::string& png, const std::string& script);

// The terminal, output and font lines every figure starts with.
std::string gnuplot_header(const std::string& png, const FigureSize& size);

// A 1-D density: the model's density and (optionally) the true one on a grid, over a histogram
// of data or model samples.
struct Density1dPlot {
  std::vector<double> x;                      // grid
  std::vector<double> model;                  // model density on x
  std::optional<std::vector<double>> truth;   // true density on x
  torch::Tensor samples;                      // [n] or [n, 1]: histogram (optional)
  std::string samples_label = "data samples";
  int bins = 80;
  std::string title = "density", xlabel = "x", model_label = "model";
};
void plot_density_1d(const std::string& png, const Density1dPlot& plot, const FigureSize& size = {});

// Paths of a 1-D process from the prior (t = 0) to the data (t = 1), one panel per process,
// side by side on shared axes; each path coloured by where it ends.
struct TrajectoryPanel {
  std::string title;
  std::vector<double> times;  // [T]
  torch::Tensor paths;        // [T, n] (or [T, n, 1])
};
void plot_trajectories_1d(const std::string& png, const std::vector<TrajectoryPanel>& panels,
                          const std::string& ylabel = "x", const FigureSize& size = {1400, 600});

// A heat map of values[row][col] on the grid x (columns) by y (rows): a Fokker-Planck density
// over (x, t) or a 2-D density over (x1, x2).
struct HeatmapPlot {
  std::vector<double> x, y;
  std::vector<std::vector<double>> values;  // [y.size()][x.size()]
  std::string title, xlabel = "x", ylabel = "t", cblabel = "density";
  bool equal_axes = false;
};
void plot_heatmap(const std::string& png, const HeatmapPlot& plot, const FigureSize& size = {});

// Loss curves from training logs (log.csv of sdegen train): the "loss" column of each run, and
// every validation column ("val..."), against the step.
struct LossRun {
  std::string label, log_csv;
};
void plot_loss_curves(const std::string& png, const std::vector<LossRun>& runs, const FigureSize& size = {});

// The axes of a 2-D scatter: their labels, and whether one unit is as long on both.
struct ScatterAxes {
  std::string x = "x1", y = "x2";
  bool equal = true;
};

// 2-D model samples beside 2-D data, two panels on the same axes.
void plot_samples_2d(const std::string& png, const torch::Tensor& samples, const torch::Tensor& data,
                     const std::string& samples_title = "model samples", const std::string& data_title = "data",
                     const FigureSize& size = {1300, 620}, const ScatterAxes& axes = {});

// 2-D paths [T, n, 2] from the prior to the data, with their start and end points, over data
// points (optional, [m, 2]).
void plot_trajectories_2d(const std::string& png, const torch::Tensor& paths, const torch::Tensor& data = {},
                          const std::string& title = "trajectories", const FigureSize& size = {800, 760});

}  // namespace sdegen
