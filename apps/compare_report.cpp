// sdegen compare's report: the table, compare.json and the plots.
#include <fmt/core.h>

#include <filesystem>

#include "apps/compare.h"
#include "sdegen/core/error.h"
#include "sdegen/eval/figures.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/io/csv.h"
#include "sdegen/io/plot.h"

namespace sdegen::app {
namespace {

std::string cell(const std::optional<Estimate>& e, bool with_se) {
  if (!e) return "-";
  return with_se ? fmt::format("{:.3f} ± {:.3f}", e->mean, e->se) : fmt::format("{:.3f}", e->mean);
}

// An untrusted figure is shown as such, never as a number.
std::string likelihood_cell(const Row& r) {
  if (r.eval.likelihood_failed > 0) return fmt::format("untrusted({})", r.eval.likelihood_failed);
  return cell(r.eval.log_likelihood, false);
}

std::string elbo_cell(const Row& r) {
  if (r.eval.elbo_failed > 0) return fmt::format("untrusted({})", r.eval.elbo_failed);
  return cell(r.eval.elbo, true);
}

std::string number(double v, const char* format = "{:.4f}") {
  return std::isfinite(v) ? fmt::format(format, v) : "-";
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

// Every model's density on one figure against the true density (1-D).
void plot_densities(const CompareArgs& a, const std::vector<Row>& rows, const CompareData& data,
                    const std::string& png) {
  const torch::Tensor x = data.eval.x.flatten();
  const double lo = x.min().item<double>(), hi = x.max().item<double>(), pad = 0.05 * (hi - lo);
  std::vector<double> grid;
  const int points = a.quick ? 120 : 400;
  for (int i = 0; i < points; ++i) grid.push_back(lo - pad + (hi - lo + 2 * pad) * i / (points - 1));
  std::string data_block = "$density << EOD\n";
  std::vector<std::vector<double>> columns;
  std::vector<std::string> names;
  if (data.eval.density && data.eval.density->has_log_prob()) {
    const torch::Tensor t = torch::tensor(grid, torch::kDouble).unsqueeze(1);
    const torch::Tensor p = data.eval.density->log_prob(t).exp();
    columns.emplace_back(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
    names.push_back("true density");
  }
  for (const Row& r : rows) {
    if (r.baseline) continue;
    const TrainedModel t = load_trained_model((std::filesystem::path(a.out) / r.model).string());
    if (!t.model->has_probability_flow()) continue;
    columns.push_back(model_density_1d(*t.model, t.standardizer, grid));
    names.push_back(r.model);
  }
  if (columns.empty()) return;
  for (size_t i = 0; i < grid.size(); ++i) {
    data_block += fmt::format("{:.6g}", grid[i]);
    for (const auto& c : columns) data_block += fmt::format(" {:.6g}", c[i]);
    data_block += "\n";
  }
  data_block += "EOD\n";
  std::string script = gnuplot_header(png, {1100, 650}) + data_block;
  script += "set xlabel 'x'\nset ylabel 'density'\nset key outside right top vertical\nset grid\n";
  script += "set yrange [0:*]\nset offsets 0, 0, graph 0.08, 0\n";  // headroom above the peaks
  script += fmt::format("set title 'Densities through the probability-flow ODE: {}'\nplot ", a.data);
  for (size_t c = 0; c < columns.size(); ++c) {
    if (c) script += ", \\\n     ";
    const bool truth = names[c] == "true density";
    script += fmt::format("$density using 1:{} with lines lw {} {} title '{}'", c + 2, truth ? 3 : 2,
                          truth ? "lc rgb 'black' dt 2" : "", names[c]);
  }
  run_gnuplot(png, script + "\n");
}

}  // namespace

double distance(const torch::Tensor& samples, const EvalData& data) {
  return data.x.size(1) == 1 ? wasserstein1(samples, data.x) : sliced_wasserstein(samples, data.x);
}

void print_table(const std::vector<Row>& rows, const CompareData& data) {
  const bool one_d = data.eval.x.size(1) == 1;
  const std::string dist = one_d ? "W1" : "sliced W";
  const std::optional<Estimate> truth = rows.front().eval.true_log_likelihood;
  fmt::print("\n{:<10} {:>8} {:>7} {:>10} {:>18} {:>8} {:>9} {:>9} {:>16} {:>8}\n", "model", "steps", "kept",
             "log-lik", "ELBO ± se", "gap", dist + "@10", dist + "@50", dist + "@adaptive", "train s");
  for (const Row& r : rows) {
    const auto& e = r.eval;
    // The gap to the true average log density: of the likelihood where it exists, else of the ELBO.
    std::string gap = "-";
    const std::optional<Estimate>& figure = e.log_likelihood ? e.log_likelihood : e.elbo;
    if (truth && figure) gap = fmt::format("{:.3f}", truth->mean - figure->mean);
    const std::string adaptive = std::isnan(r.adaptive) ? "-" : fmt::format("{:.4f} ({})", r.adaptive, r.adaptive_nfe);
    const std::string steps = r.baseline ? "-" : fmt::format("{}{}", r.steps, r.stopped_early ? "*" : "");
    const std::string kept = r.best_step >= 0 ? std::to_string(r.best_step) : "-";
    fmt::print("{:<10} {:>8} {:>7} {:>10} {:>18} {:>8} {:>9} {:>9} {:>16} {:>8.1f}\n", r.model, steps, kept,
               likelihood_cell(r), r.baseline ? "-" : elbo_cell(r), gap, number(r.at10),
               number(r.at50), adaptive, r.train_seconds);
  }
  const double reference = distance(data.eval.reference, data.eval);
  fmt::print("\n{} test points of '{}'{}. Two data samples of that size are {} = {:.4f} apart.\n",
             data.eval.x.size(0), data.eval.source,
             truth ? fmt::format("; true average log density {:.3f} ± {:.3f}", truth->mean, truth->se) : "", dist,
             reference);
  // A model of the training rows can be no closer than they are, unless it smooths them.
  fmt::print("The {} training rows themselves are {} = {:.4f} from the test points.\n", data.train.size(0), dist,
             distance(data.train, data.eval));
  for (const Row& r : rows) {
    if (r.baseline) fmt::print("{}: {} (chosen on {} validation rows)\n", r.model, r.choice, data.val.size(0));
    if (!r.eval.likelihood_problem.empty()) fmt::print("{}: log-likelihood untrusted: {}\n", r.model, r.eval.likelihood_problem);
    if (r.eval.elbo_failed > 0) fmt::print("{}: ELBO untrusted: {} rows non-finite\n", r.model, r.eval.elbo_failed);
  }
  fmt::print("kept: the step whose weights were kept (best validation figure); * stopped early.\n");
  if (truth) fmt::print("gap: true average log density minus the model's log-likelihood (ELBO where there is none).\n");
  fmt::print("@10/@50: function evaluations (heun; euler-maruyama for sde); adaptive: dopri5, NFE in brackets "
             "(sde: euler-maruyama, 200 steps).\n");
}

void write_record(const CompareArgs& a, const std::vector<Row>& rows, const CompareData& data) {
  nlohmann::json record = {{"data", a.data},
                           {"test", a.test.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.test)},
                           {"n_train", data.train.size(0)},
                           {"n_val", data.val.size(0)},
                           {"n_eval", data.eval.x.size(0)},
                           {"budget_seconds", a.budget},
                           {"seed", a.seed},
                           {"threads", a.threads},
                           {"quick", a.quick},
                           // The sample distance's floors: two data samples, and the training rows.
                           {"reference_distance", distance(data.eval.reference, data.eval)},
                           {"train_distance", distance(data.train, data.eval)},
                           {"models", nlohmann::json::array()},
                           {"baselines", nlohmann::json::array()}};
  for (const Row& r : rows) {
    if (r.baseline) {
      record["baselines"].push_back({{"model", r.model},
                                     {"choice", r.choice},
                                     {"log_likelihood", r.eval.log_likelihood->mean},
                                     {"log_likelihood_stderr", r.eval.log_likelihood->se},
                                     {"fit_seconds", r.train_seconds}});
      continue;
    }
    nlohmann::json m = to_json(r.eval);
    m["model"] = r.model;
    m["steps"] = r.steps;
    m["best_step"] = r.best_step;
    m["stopped_early"] = r.stopped_early;
    m["train_seconds"] = r.train_seconds;
    m["distance_at_10"] = number_or_null(r.at10);
    m["distance_at_50"] = number_or_null(r.at50);
    m["distance_adaptive"] = number_or_null(r.adaptive);
    m["adaptive_nfe"] = r.adaptive_nfe;
    m["fixed_solver"] = r.fixed_solver;
    record["models"].push_back(m);
  }
  write_file_atomic((std::filesystem::path(a.out) / "compare.json").string(), record.dump(2) + "\n");
}

void make_plots(const CompareArgs& a, const std::vector<Row>& rows, const CompareData& data) {
  const std::filesystem::path out(a.out);
  std::vector<LossRun> losses;
  for (const Row& r : rows)
    if (!r.baseline) losses.push_back({r.model, (out / r.model / "log.csv").string()});
  plot_loss_curves((out / "loss.png").string(), losses);
  if (data.eval.x.size(1) == 1) plot_densities(a, rows, data, (out / "densities.png").string());
  PlotModelOptions po;
  po.n = a.quick ? 1000 : 4000;
  po.paths = a.quick ? 40 : 120;
  po.steps = 100;
  for (const Row& r : rows) {
    if (r.baseline) continue;
    const std::string dir = (out / r.model).string();
    // A model that trained badly can blow up along a trajectory: say so, keep the other plots.
    try {
      plot_model(load_trained_model(dir), (out / r.model / "plots").string(), po, dir);
    } catch (const NumericError& e) {
      fmt::print("  no plots for {}: {}\n", r.model, e.what());
    }
  }
}

}  // namespace sdegen::app
