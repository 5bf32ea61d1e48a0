// gnuplot figures: data files and a script beside the PNG, then one gnuplot run.
#include "sdegen/io/plot.h"

#include <fmt/core.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/io/csv.h"

namespace sdegen {
namespace fs = std::filesystem;
namespace {

std::string program() {
  const char* p = std::getenv("SDEGEN_GNUPLOT");
  return p && *p ? p : "gnuplot";
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A double-quoted gnuplot string.
std::string gp_string(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

std::string stem(const std::string& png) {
  SDEGEN_CHECK(fs::path(png).extension() == ".png", "plot output must end in .png, got '", png, "'");
  return (fs::path(png).parent_path() / fs::path(png).stem()).string();
}

// Writes <png stem>_<suffix>.dat and returns its file name (relative to the PNG's directory).
std::string write_data(const std::string& png, const std::string& suffix, const std::string& text) {
  const std::string path = stem(png) + "_" + suffix + ".dat";
  write_file_atomic(path, text);
  return fs::path(path).filename().string();
}

std::vector<double> to_vector(const torch::Tensor& x) {
  const torch::Tensor c = x.detach().to(torch::kCPU, torch::kDouble).contiguous().reshape({-1});
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

torch::Tensor as_2d(const torch::Tensor& x, const char* what) {
  SDEGEN_CHECK(x.defined() && x.dim() == 2 && x.size(1) == 2 && x.size(0) > 0, what, " must be [n, 2], got ",
               x.defined() ? x.sizes() : torch::IntArrayRef{});
  return x.detach().to(torch::kCPU, torch::kDouble).contiguous();
}

std::string points_text(const torch::Tensor& x) {
  const auto a = x.accessor<double, 2>();
  std::string s;
  for (int64_t i = 0; i < x.size(0); ++i) s += fmt::format("{:.9g} {:.9g}\n", a[i][0], a[i][1]);
  return s;
}

// A range [lo, hi] covering values with a 5% margin.
std::pair<double, double> padded_range(double lo, double hi) {
  const double pad = hi > lo ? 0.05 * (hi - lo) : 0.5;
  return {lo - pad, hi + pad};
}

const char* kPalette =
    "set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')\n";

}  // namespace

bool gnuplot_available() { return std::system((shell_quote(program()) + " --version > /dev/null 2>&1").c_str()) == 0; }

std::string gnuplot_header(const std::string& png, const FigureSize& size) {
  return fmt::format(
      "set terminal pngcairo size {},{} noenhanced font 'DejaVu Sans,13' linewidth 1.5\n"
      "set output {}\nset encoding utf8\nset key box opaque\nset grid lc rgb '#dddddd'\n",
      size.width, size.height, gp_string(fs::path(png).filename().string()));
}

void run_gnuplot(const std::string& png, const std::string& script) {
  const std::string gp = stem(png) + ".gp", log = stem(png) + ".log";
  const fs::path dir = fs::absolute(fs::path(png)).parent_path();
  SDEGEN_CHECK(fs::is_directory(dir), "plot directory '", dir.string(), "' does not exist");
  write_file_atomic(gp, script);
  fs::remove(png);
  const std::string cmd = "cd " + shell_quote(dir.string()) + " && " + shell_quote(program()) + " " +
                          shell_quote(fs::path(gp).filename().string()) + " > " +
                          shell_quote(fs::path(log).filename().string()) + " 2>&1";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 127)
    throw IoError("gnuplot not found (tried '" + program() +
                  "'); install gnuplot-nox (scripts/setup.sh) or set SDEGEN_GNUPLOT to its path");
  if (code != 0) {
    std::ifstream in(dir / fs::path(log).filename());
    std::stringstream err;
    err << in.rdbuf();
    throw IoError(fmt::format("gnuplot failed on {} (exit code {}): {}", gp, code, err.str()));
  }
  if (!fs::exists(png) || fs::file_size(png) == 0) throw IoError("gnuplot wrote no PNG at " + png + " (script " + gp + ")");
  fs::remove(dir / fs::path(log).filename());
}

void plot_density_1d(const std::string& png, const Density1dPlot& p, const FigureSize& size) {
  SDEGEN_CHECK(!p.x.empty() && p.model.size() == p.x.size(), "density plot needs a grid and the model's density on it");
  SDEGEN_CHECK(!p.truth || p.truth->size() == p.x.size(), "true density must have one value per grid point");
  SDEGEN_CHECK(p.bins > 0, "histogram bins must be positive, got ", p.bins);
  std::string curves;
  for (size_t i = 0; i < p.x.size(); ++i)
    curves += fmt::format("{:.9g} {:.9g} {:.9g}\n", p.x[i], p.model[i], p.truth ? (*p.truth)[i] : 0.0);
  const std::string cf = write_data(png, "curves", curves);
  std::string s = gnuplot_header(png, size);
  s += fmt::format("set title {}\nset xlabel {}\nset ylabel 'density'\nset key top left\n", gp_string(p.title),
                   gp_string(p.xlabel));
  double top = *std::max_element(p.model.begin(), p.model.end());
  if (p.truth) top = std::max(top, *std::max_element(p.truth->begin(), p.truth->end()));
  s += fmt::format("set xrange [{:.9g}:{:.9g}]\n", p.x.front(), p.x.back());
  std::vector<std::string> plots;
  if (p.samples.defined() && p.samples.numel() > 0) {
    // Normalised histogram, binned here so that the bars' area is 1 over the samples in range.
    const std::vector<double> v = to_vector(p.samples);
    const double lo = p.x.front(), hi = p.x.back(), w = (hi - lo) / p.bins;
    std::vector<double> counts(p.bins, 0.0);
    for (double x : v)
      if (x >= lo && x < hi) counts[std::min<int64_t>(p.bins - 1, static_cast<int64_t>((x - lo) / w))] += 1;
    std::string h;
    for (int b = 0; b < p.bins; ++b) h += fmt::format("{:.9g} {:.9g}\n", lo + (b + 0.5) * w, counts[b] / (v.size() * w));
    const std::string hf = write_data(png, "histogram", h);
    for (double c : counts) top = std::max(top, c / (v.size() * w));
    s += fmt::format("set boxwidth {:.9g} absolute\nset style fill solid 0.35 noborder\n", w);
    plots.push_back(fmt::format("{} using 1:2 with boxes lc rgb '#8fa8c8' title {}", gp_string(hf),
                                gp_string(fmt::format("{} ({})", p.samples_label, v.size()))));
  }
  s += fmt::format("set yrange [0:{:.9g}]\n", 1.4 * top);  // room for the key above the curves
  if (p.truth) plots.push_back(fmt::format("{} using 1:3 with lines lw 2 dt 2 lc rgb 'black' title 'true density'", gp_string(cf)));
  plots.push_back(fmt::format("{} using 1:2 with lines lw 2.5 lc rgb '#d62728' title {}", gp_string(cf), gp_string(p.model_label)));
  s += "plot " + join(plots, ", \\\n     ") + "\n";
  run_gnuplot(png, s);
}

void plot_trajectories_1d(const std::string& png, const std::vector<TrajectoryPanel>& panels,
                          const std::string& ylabel, const FigureSize& size) {
  SDEGEN_CHECK(!panels.empty(), "trajectory plot needs at least one panel");
  double lo = INFINITY, hi = -INFINITY, end_lo = INFINITY, end_hi = -INFINITY;  // colours: by end point
  std::vector<std::string> files;
  for (size_t k = 0; k < panels.size(); ++k) {
    const TrajectoryPanel& p = panels[k];
    const torch::Tensor x = p.paths.detach().to(torch::kCPU, torch::kDouble).reshape({p.paths.size(0), -1}).contiguous();
    SDEGEN_CHECK(x.size(0) == static_cast<int64_t>(p.times.size()) && x.size(0) > 1, "panel '", p.title, "' has ",
                 x.size(0), " states for ", p.times.size(), " times");
    const auto a = x.accessor<double, 2>();
    std::string text;
    for (int64_t j = 0; j < x.size(1); ++j) {
      for (int64_t i = 0; i < x.size(0); ++i) text += fmt::format("{:.6g} {:.9g} {:.9g}\n", p.times[i], a[i][j], a[x.size(0) - 1][j]);
      text += "\n";
    }
    lo = std::min(lo, x.min().item<double>());
    hi = std::max(hi, x.max().item<double>());
    end_lo = std::min(end_lo, x[-1].min().item<double>());
    end_hi = std::max(end_hi, x[-1].max().item<double>());
    files.push_back(write_data(png, fmt::format("paths{}", k), text));
  }
  const auto [ylo, yhi] = padded_range(lo, hi);
  std::string s = gnuplot_header(png, size);
  s += kPalette;
  s += fmt::format("unset colorbox\nunset key\nset xlabel 't  (0 = prior, 1 = data)'\nset ylabel {}\nset xrange [0:1]\n"
                   "set yrange [{:.9g}:{:.9g}]\nset cbrange [{:.9g}:{:.9g}]\n",
                   gp_string(ylabel), ylo, yhi, end_lo, end_hi);
  s += fmt::format("set multiplot layout 1,{} margins 0.06,0.98,0.12,0.9 spacing 0.06\n", panels.size());
  for (size_t k = 0; k < panels.size(); ++k)
    s += fmt::format("set title {}\nplot {} using 1:2:3 with lines lw 0.8 lc palette notitle\n", gp_string(panels[k].title),
                     gp_string(files[k]));
  s += "unset multiplot\n";
  run_gnuplot(png, s);
}

void plot_heatmap(const std::string& png, const HeatmapPlot& p, const FigureSize& size) {
  SDEGEN_CHECK(p.x.size() > 1 && p.y.size() > 1 && p.values.size() == p.y.size(),
               "heat map needs at least 2 x 2 cells and one row of values per y");
  std::string text;
  for (size_t r = 0; r < p.y.size(); ++r) {
    SDEGEN_CHECK(p.values[r].size() == p.x.size(), "heat map row ", r, " has ", p.values[r].size(), " values for ",
                 p.x.size(), " x");
    for (size_t c = 0; c < p.x.size(); ++c) text += fmt::format("{:.9g} {:.9g} {:.9g}\n", p.x[c], p.y[r], p.values[r][c]);
    text += "\n";
  }
  const std::string f = write_data(png, "grid", text);
  std::string s = gnuplot_header(png, size);
  s += kPalette;
  s += fmt::format("set title {}\nset xlabel {}\nset ylabel {}\nset cblabel {}\nunset grid\nunset key\n", gp_string(p.title),
                   gp_string(p.xlabel), gp_string(p.ylabel), gp_string(p.cblabel));
  s += fmt::format("set xrange [{:.9g}:{:.9g}]\nset yrange [{:.9g}:{:.9g}]\n", p.x.front(), p.x.back(), p.y.front(),
                   p.y.back());
  if (p.equal_axes) s += "set size ratio -1\n";
  s += fmt::format("plot {} using 1:2:3 with image notitle\n", gp_string(f));
  run_gnuplot(png, s);
}

void plot_loss_curves(const std::string& png, const std::vector<LossRun>& runs, const FigureSize& size) {
  SDEGEN_CHECK(!runs.empty(), "loss plot needs at least one run");
  std::vector<std::string> plots;
  bool any_val = false;
  for (size_t k = 0; k < runs.size(); ++k) {
    std::ifstream in(runs[k].log_csv);
    if (!in) throw IoError("cannot read training log '" + runs[k].log_csv + "'");
    std::string line;
    std::getline(in, line);
    std::vector<std::string> cols;
    std::stringstream hs(line);
    for (std::string c; std::getline(hs, c, ',');) cols.push_back(c);
    SDEGEN_CHECK(cols.size() >= 2 && cols[0] == "step", "'", runs[k].log_csv, "' is not a training log (header '",
                 line, "')");
    std::vector<std::string> texts(cols.size());
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ls(line);
      for (std::string c; std::getline(ls, c, ',');) f.push_back(c);
      for (size_t c = 1; c < f.size() && c < cols.size(); ++c)
        if (!f[c].empty()) texts[c] += f[0] + " " + f[c] + "\n";
    }
    for (size_t c = 1; c < cols.size(); ++c) {
      const bool val = cols[c].rfind("val", 0) == 0;
      if ((cols[c] != "loss" && !val) || texts[c].empty()) continue;
      any_val |= val;
      const std::string f = write_data(png, fmt::format("run{}_{}", k, cols[c]), texts[c]);
      plots.push_back(fmt::format("{} using 1:2 with {} lw {} lc {} dt {} axes {} title {}", gp_string(f),
                                  val ? "linespoints pt 7 ps 0.8" : "lines", val ? 2 : 1.2, k + 1, val ? 2 : 1, val ? "x1y2" : "x1y1",
                                  gp_string(runs[k].label + " " + cols[c])));
    }
  }
  SDEGEN_CHECK(!plots.empty(), "no loss column in the training logs");
  std::string s = gnuplot_header(png, size);
  s += "set title 'training'\nset xlabel 'step'\nset ylabel 'training loss'\nset key top right\n";
  if (any_val) s += "set y2label 'validation (dashed)'\nset y2tics\nset ytics nomirror\n";
  s += "plot " + join(plots, ", \\\n     ") + "\n";
  run_gnuplot(png, s);
}

void plot_samples_2d(const std::string& png, const torch::Tensor& samples, const torch::Tensor& data,
                     const std::string& samples_title, const std::string& data_title, const FigureSize& size,
                     const ScatterAxes& axes) {
  const torch::Tensor a = as_2d(samples, "samples"), b = as_2d(data, "data");
  const torch::Tensor both = torch::cat({a, b});
  const auto [xlo, xhi] = padded_range(both.select(1, 0).min().item<double>(), both.select(1, 0).max().item<double>());
  const auto [ylo, yhi] = padded_range(both.select(1, 1).min().item<double>(), both.select(1, 1).max().item<double>());
  const std::string fa = write_data(png, "samples", points_text(a)), fb = write_data(png, "data", points_text(b));
  std::string s = gnuplot_header(png, size);
  s += fmt::format("set xrange [{:.9g}:{:.9g}]\nset yrange [{:.9g}:{:.9g}]\nset xlabel {}\nset ylabel {}\n{}",
                   xlo, xhi, ylo, yhi, gp_string(axes.x), gp_string(axes.y), axes.equal ? "set size ratio -1\n" : "");
  s += "unset key\nset multiplot layout 1,2\n";
  s += fmt::format("set title {}\nplot {} with points pt 7 ps 0.35 lc rgb '#d62728' notitle\n",
                   gp_string(fmt::format("{} ({})", samples_title, a.size(0))), gp_string(fa));
  s += fmt::format("set title {}\nplot {} with points pt 7 ps 0.35 lc rgb '#1f77b4' notitle\n",
                   gp_string(fmt::format("{} ({})", data_title, b.size(0))), gp_string(fb));
  s += "unset multiplot\n";
  run_gnuplot(png, s);
}

void plot_trajectories_2d(const std::string& png, const torch::Tensor& paths, const torch::Tensor& data,
                          const std::string& title, const FigureSize& size) {
  SDEGEN_CHECK(paths.defined() && paths.dim() == 3 && paths.size(2) == 2 && paths.size(0) > 1,
               "2-D trajectories must be [T, n, 2], got ", paths.defined() ? paths.sizes() : torch::IntArrayRef{});
  const torch::Tensor p = paths.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const auto a = p.accessor<double, 3>();
  std::string text;
  for (int64_t j = 0; j < p.size(1); ++j) {
    for (int64_t i = 0; i < p.size(0); ++i) text += fmt::format("{:.9g} {:.9g}\n", a[i][j][0], a[i][j][1]);
    text += "\n";
  }
  const std::string fp = write_data(png, "paths", text);
  const std::string f0 = write_data(png, "start", points_text(p[0])), f1 = write_data(png, "end", points_text(p[-1]));
  std::string s = gnuplot_header(png, size);
  s += fmt::format("set title {}\nset xlabel 'x1'\nset ylabel 'x2'\nset size ratio -1\nset key top right\n", gp_string(title));
  std::vector<std::string> plots;
  if (data.defined() && data.numel() > 0)
    plots.push_back(fmt::format("{} with points pt 7 ps 0.25 lc rgb '#bbbbbb' title 'data'",
                                gp_string(write_data(png, "data", points_text(as_2d(data, "data"))))));
  plots.push_back(fmt::format("{} with lines lw 0.6 lc rgb '#6a8caf' title 'paths'", gp_string(fp)));
  plots.push_back(fmt::format("{} with points pt 7 ps 0.5 lc rgb 'black' title 'prior draws (t = 0)'", gp_string(f0)));
  plots.push_back(fmt::format("{} with points pt 7 ps 0.5 lc rgb '#d62728' title 'samples (t = 1)'", gp_string(f1)));
  s += "plot " + join(plots, ", \\\n     ") + "\n";
  run_gnuplot(png, s);
}

}  // namespace sdegen
