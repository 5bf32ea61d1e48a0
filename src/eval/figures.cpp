// Figures of a trained model: the numbers from the model, the drawing by io/plot.
#include "sdegen/eval/figures.h"

#include <cmath>
#include <filesystem>

#include "sdegen/core/check.h"
#include "sdegen/eval/fokker_planck.h"
#include "sdegen/io/png.h"
#include "sdegen/model/affine_model.h"

namespace sdegen {
namespace fs = std::filesystem;
namespace {

// Where the model's probability flow ends: t = 1, or an affine model's data end when its
// prediction is singular at t = 1.
double flow_end(const GenerativeModel& model) {
  if (const auto* affine = dynamic_cast<const AffineModel*>(&model))
    if (affine->options().prediction != Prediction::Velocity) return affine->time_range().second;
  return 1.0;
}

// The density at every point, or NumericError when some points' solves blew up: a figure has
// no way to show a missing value, and a made-up one would be drawn as the model's.
torch::Tensor density_of(const LikelihoodResult& l) {
  if (l.invalid > 0)
    throw NumericError(detail::concat("model density: the likelihood of ", l.invalid, " of ", l.log_prob.size(0),
                                      " points cannot be trusted (their solves blew up); narrow the plotted range"));
  return l.log_prob.exp();
}

std::vector<double> linspace(double lo, double hi, int64_t n) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * i / (n - 1);
  return v;
}

std::vector<double> to_vector(const torch::Tensor& x) {
  const torch::Tensor c = x.detach().to(torch::kCPU, torch::kDouble).contiguous().reshape({-1});
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// The SDE shown beside the ODE: the reverse diffusion of a marginal field, or the model's own SDE.
std::optional<std::pair<std::string, SamplerOptions>> sde_panel(const GenerativeModel& model, int steps) {
  SamplerOptions o;
  o.solver = "euler-maruyama";
  o.steps = steps;
  if (model.field()) {
    o.diffusion = parse_diffusion("reverse");
    // The reverse diffusion is infinite where a(t) = 0 (the prior end of the linear schedule):
    // start where training did.
    // Start where one Euler-Maruyama step's variance sigma^2 dt is at most 1 (in standardised
    // units): otherwise the first steps throw paths far out before the drift pulls them back.
    if (const auto* affine = dynamic_cast<const AffineModel*>(&model)) {
      o.t0 = affine->time_range().first;
      const double dt = 1.0 / steps;
      while (o.t0 < 0.2 && std::pow(diffusion_at(o.diffusion, affine->schedule(), o.t0), 2) * dt > 1.0) o.t0 += 1e-3;
    }
    return std::make_pair(std::string("SDE, reverse diffusion (Euler-Maruyama)"), o);
  }
  if (!model.has_probability_flow()) return std::make_pair(std::string("SDE, learned diffusion (Euler-Maruyama)"), o);
  return std::nullopt;  // a deterministic model without a marginal field (ode)
}

}  // namespace

std::vector<double> model_density_1d(const GenerativeModel& model, const Standardizer& st,
                                     const std::vector<double>& x, const LikelihoodOptions& options) {
  const torch::Tensor pts = torch::tensor(x, torch::kDouble).reshape({-1, 1});
  return to_vector(density_of(model_log_likelihood(model, st, pts, options)));
}

Trajectories model_trajectories(const GenerativeModel& model, const Standardizer& st, int64_t n,
                                const SamplerOptions& options) {
  Trajectories t;
  std::vector<torch::Tensor> states;
  draw_samples(model, st, n, options, [&](double time, const torch::Tensor& x) {
    t.times.push_back(time);
    states.push_back(x.detach().clone());
  });
  t.paths = torch::stack(states);
  return t;
}

HeatmapPlot model_density_2d(const GenerativeModel& model, const Standardizer& st, double x_lo, double x_hi,
                             double y_lo, double y_hi, int64_t cells, const LikelihoodOptions& options) {
  SDEGEN_CHECK(cells > 1, "density grid needs at least 2 cells per side, got ", cells);
  HeatmapPlot h;
  h.x = linspace(x_lo, x_hi, cells);
  h.y = linspace(y_lo, y_hi, cells);
  const torch::Tensor gx = torch::tensor(h.x, torch::kDouble), gy = torch::tensor(h.y, torch::kDouble);
  const auto mesh = torch::meshgrid({gy, gx}, "ij");
  const torch::Tensor pts = torch::stack({mesh[1].reshape({-1}), mesh[0].reshape({-1})}, 1);
  const std::vector<double> p = to_vector(density_of(model_log_likelihood(model, st, pts, options)));
  for (int64_t r = 0; r < cells; ++r) h.values.emplace_back(p.begin() + r * cells, p.begin() + (r + 1) * cells);
  h.xlabel = "x1";
  h.ylabel = "x2";
  h.cblabel = "model density";
  h.equal_axes = true;
  return h;
}

ImageTrajectories image_trajectories(const GenerativeModel& model, const torch::Tensor& x0,
                                     const SamplerOptions& options, const Guidance& guidance, int64_t count) {
  SDEGEN_CHECK(count >= 2, "image trajectories need at least 2 snapshots (the prior and the image), got ", count);
  torch::NoGradGuard no_grad;
  std::vector<double> times;
  std::vector<torch::Tensor> states;
  const Solution sol = generate(model, x0, options, guidance, [&](double t, const torch::Tensor& x) {
    times.push_back(t);
    states.push_back(x.detach().clone());
  });
  sol.check();
  const int64_t recorded = static_cast<int64_t>(states.size());
  SDEGEN_CHECK(count <= recorded, "the solve has ", recorded, " states; ", count,
               " snapshots need a solver with more steps");
  ImageTrajectories r;
  std::vector<torch::Tensor> picked;
  for (int64_t k = 0; k + 1 < count; ++k) {
    const int64_t i = (k * (recorded - 1) + (count - 1) / 2) / (count - 1);
    r.times.push_back(times[static_cast<size_t>(i)]);
    picked.push_back(states[static_cast<size_t>(i)]);
  }
  r.times.push_back(times.back());
  picked.push_back(sol.x);
  const torch::Tensor stacked = torch::stack(picked, 1);  // [n, count, *shape]
  std::vector<int64_t> sizes{-1};
  for (int64_t d = 2; d < stacked.dim(); ++d) sizes.push_back(stacked.size(d));
  r.frames = stacked.reshape(sizes);
  return r;
}

namespace {

// An image model's figure: the trajectory strip, one sample per class (guided) or 8.
void plot_image_trajectories(const TrainedModel& trained, const std::string& png, const PlotModelOptions& o) {
  const GenerativeModel& model = *trained.model;
  const int64_t classes = model.num_classes();
  torch::manual_seed(0);
  const torch::Tensor x0 = sample_model_prior(model, classes > 0 ? classes : 8);
  // The probability flow, or for the general sde model (which has none) its learned diffusion.
  SamplerOptions sampler;
  sampler.solver = model.has_probability_flow() ? "heun" : "euler-maruyama";
  sampler.steps = o.steps;
  const Guidance guidance = classes > 0 ? Guidance{Condition(torch::arange(classes, torch::kLong)), o.guidance}
                                        : Guidance{};
  const ImageTrajectories t = image_trajectories(model, x0, sampler, guidance, o.snapshots);
  write_image_grid(png, t.frames.to(torch::kFloat), static_cast<int64_t>(t.times.size()));
}

// loss.png from the training log (o.log_csv, else <run_dir>/log.csv) when there is one.
void plot_loss(const GenerativeModel& model, const std::string& out_dir, const PlotModelOptions& o,
               const std::string& run_dir, std::vector<std::string>& written) {
  const std::string log = !o.log_csv.empty() ? o.log_csv : run_dir.empty() ? "" : (fs::path(run_dir) / "log.csv").string();
  if (log.empty() || !fs::exists(log)) return;
  const std::string png = (fs::path(out_dir) / "loss.png").string();
  plot_loss_curves(png, {{model.kind(), log}});
  written.push_back(png);
}

// A model trained with --condition-columns: one sample per data row at that row's condition (the
// conditional model, o.steps Heun steps), shown beside the rows themselves. samples.png puts
// the first condition column against the first generated column that varies; samples_generated.png
// the first two generated columns that vary, where there are two.
void plot_conditional(const TrainedModel& trained, const std::string& spec, const PlotModelOptions& o,
                      const std::string& out_dir, std::vector<std::string>& written) {
  const GenerativeModel& model = *trained.model;
  const EvalData data = conditional_eval_data(trained, spec, 0);
  // A seeded shuffle of the rows (the target half), not the file's first rows, which may be sorted.
  const int64_t k = data.observed, n = std::min<int64_t>(o.n, data.target.size(0));
  const torch::Tensor rows = data.target.narrow(0, 0, n), observed = rows.narrow(1, 0, k);
  Condition condition;
  condition.vector = trained.condition_standardizer.transform(observed);
  SamplerOptions heun;
  heun.solver = "heun";
  heun.steps = o.steps;
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  const Solution sol = generate(model, sample_model_prior(model, n), heun, Guidance{condition, 1.0});
  sol.check();
  const torch::Tensor all_drawn = trained.standardizer.inverse(sol.x), all_given = rows.narrow(1, k, rows.size(1) - k);
  // The generated columns shown: the first two that vary in the training rows (a constant column,
  // whose standardisation sits at its floor, has nothing to show), else the first.
  std::vector<int64_t> shown;
  const Standardizer& st = trained.standardizer;
  for (int64_t j = 0; j < st.dim() && shown.size() < 2; ++j) {
    const double floor = kConstantColumnTolerance * std::max(1.0, std::fabs(st.mean[j].item<double>()));
    if (st.std[j].item<double>() > 2.0 * floor) shown.push_back(j);
  }
  if (shown.empty()) shown.push_back(0);
  const torch::Tensor columns = torch::tensor(shown, torch::kLong);
  const torch::Tensor drawn = all_drawn.index_select(1, columns), given = all_given.index_select(1, columns);
  const std::string& c1 = trained.condition_columns.front();
  const std::string& y1 = trained.columns[static_cast<size_t>(shown[0])];
  const std::string name = model.kind() + " model";
  const std::string joint = (fs::path(out_dir) / "samples.png").string();
  plot_samples_2d(joint, torch::stack({observed.select(1, 0), drawn.select(1, 0)}, 1),
                  torch::stack({observed.select(1, 0), given.select(1, 0)}, 1),
                  name + ": " + y1 + " drawn at each row's " + join(trained.condition_columns), "data: " + spec,
                  {1300, 620}, {c1, y1, false});
  written.push_back(joint);
  if (shown.size() < 2) return;
  const std::string& y2 = trained.columns[static_cast<size_t>(shown[1])];
  const std::string pair = (fs::path(out_dir) / "samples_generated.png").string();
  // Each axis fills its panel: a table's columns need not share a scale.
  plot_samples_2d(pair, drawn, given,
                  name + ": " + y1 + ", " + y2 + " drawn at each row's " + join(trained.condition_columns),
                  "data: " + spec, {1300, 620}, {y1, y2, false});
  written.push_back(pair);
}

}  // namespace

std::vector<std::string> plot_model(const TrainedModel& trained, const std::string& out_dir,
                                    const PlotModelOptions& o, const std::string& run_dir) {
  SDEGEN_CHECK(trained.model->has_elbo(), "sdegen plot draws a model's density, paths and Fokker-Planck check; the '",
               trained.model->kind(), "' model is a map from noise to data with none of them: draw its samples with ",
               "sdegen sample --solver consistency");
  if (!trained.images.is_null()) {
    fs::create_directories(out_dir);
    std::vector<std::string> written{(fs::path(out_dir) / "trajectories.png").string()};
    plot_image_trajectories(trained, written.front(), o);
    plot_loss(*trained.model, out_dir, o, run_dir, written);
    return written;
  }
  GenerativeModel& model = *trained.model;
  const Standardizer& st = trained.standardizer;
  fs::create_directories(out_dir);
  const auto png = [&](const std::string& name) { return (fs::path(out_dir) / name).string(); };
  std::vector<std::string> written;
  const std::string spec = o.data.empty() ? trained.data : o.data;
  SDEGEN_CHECK(!spec.empty(), "no data to plot against: give the data spec");
  if (model.condition_dim() > 0) {
    plot_conditional(trained, spec, o, out_dir, written);
    plot_loss(model, out_dir, o, run_dir, written);
    return written;
  }
  const EvalData data = make_eval_data(spec, o.n, 0);
  check_dimension(model.dim(), data.x.size(1), spec);
  const std::string name = model.kind() + " model";
  SamplerOptions ode;
  ode.solver = "heun";
  ode.steps = o.steps;
  const auto sde = sde_panel(model, o.steps);

  if (model.dim() == 1) {
    const double lo = data.x.min().item<double>(), hi = data.x.max().item<double>(), pad = 0.1 * (hi - lo);
    if (model.has_probability_flow()) {
      Density1dPlot d;
      d.x = linspace(lo - pad, hi + pad, 400);
      d.model = model_density_1d(model, st, d.x);
      if (data.density && data.density->has_log_prob())
        d.truth = to_vector(data.density->log_prob(torch::tensor(d.x, torch::kDouble).reshape({-1, 1})).exp());
      d.samples = draw_samples(model, st, o.n, SamplerOptions{}).x;
      d.samples_label = "model samples";
      d.title = name + " on " + spec + ": density from the likelihood";
      d.model_label = "model density (probability flow)";
      plot_density_1d(png("density.png"), d);
      written.push_back(png("density.png"));
    }
    std::vector<TrajectoryPanel> panels;
    torch::manual_seed(0);
    if (model.has_probability_flow()) {
      const Trajectories t = model_trajectories(model, st, o.paths, ode);
      panels.push_back({"probability-flow ODE (Heun)", t.times, t.paths});
    }
    if (sde) {
      torch::manual_seed(0);  // the same prior draws as the ODE panel
      const Trajectories t = model_trajectories(model, st, o.paths, sde->second);
      panels.push_back({sde->first, t.times, t.paths});
    }
    plot_trajectories_1d(png("trajectories.png"), panels, "x (data units)");
    written.push_back(png("trajectories.png"));

    const auto flow = model.sde(DiffusionSpec{});
    if (model.has_probability_flow() && flow->prior_std() <= 3.0) {
      // The ODE's density from the prior on a grid in standardised units, shown in data units.
      const double z_lim = std::max(4.0 * flow->prior_std(), 1.2 * st.transform(data.x).abs().max().item<double>());
      FokkerPlanckOptions fo;
      fo.grid = {-z_lim, z_lim, 400};
      const double end = flow_end(model);
      for (int k = 0; k <= 50; ++k) fo.times.push_back(k == 50 ? end : end * k / 50.0);  // the last exactly end
      const double s = flow->prior_std();
      const auto p0 = density_on_grid([s](const torch::Tensor& z) { return -0.5 * (z / s).pow(2).reshape({-1}); },
                                      fo.grid);
      torch::NoGradGuard no_grad;
      const FokkerPlanckResult fp = solve_fokker_planck(*flow, p0, 0.0, end, fo);
      HeatmapPlot h;
      const double mean = st.mean[0].item<double>(), sd = st.std[0].item<double>();
      for (double z : fp.x) h.x.push_back(mean + sd * z);
      h.y = fp.times;
      for (const auto& row : fp.density) {
        std::vector<double> r;
        for (double p : row) r.push_back(std::sqrt(std::max(p, 0.0) / sd));
        h.values.push_back(r);
      }
      h.title = name + ": density of the probability-flow ODE over time (Fokker-Planck)";
      h.xlabel = "x (data units)";
      h.ylabel = "t  (0 = prior, 1 = data)";
      h.cblabel = "sqrt(density)";
      plot_heatmap(png("fokker_planck.png"), h);
      written.push_back(png("fokker_planck.png"));
    }
  } else if (model.dim() == 2) {
    const torch::Tensor samples = draw_samples(model, st, o.n, SamplerOptions{}).x;
    plot_samples_2d(png("samples.png"), samples, data.x, name + " samples", "data: " + spec);
    written.push_back(png("samples.png"));
    if (model.has_probability_flow()) {
      const torch::Tensor lo = std::get<0>(data.x.min(0)), hi = std::get<0>(data.x.max(0)), pad = 0.1 * (hi - lo);
      HeatmapPlot h = model_density_2d(model, st, (lo - pad)[0].item<double>(), (hi + pad)[0].item<double>(),
                                       (lo - pad)[1].item<double>(), (hi + pad)[1].item<double>(), 70);
      h.title = name + " on " + spec + ": density from the likelihood";
      plot_heatmap(png("density.png"), h, {800, 720});
      written.push_back(png("density.png"));
    }
    torch::manual_seed(0);
    const Trajectories t = model_trajectories(model, st, o.paths, model.has_probability_flow() ? ode : sde->second);
    plot_trajectories_2d(png("trajectories.png"), t.paths, data.x.narrow(0, 0, std::min<int64_t>(1000, data.x.size(0))),
                         name + ": paths from the prior to the data");
    written.push_back(png("trajectories.png"));
  }
  plot_loss(model, out_dir, o, run_dir, written);
  return written;
}

}  // namespace sdegen
