// sdegen compare: train every parameterisation on one dataset under the same wall-clock budget,
// evaluate each the same way, and print one table (the paper's 1-D comparison by default).
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "apps/commands.h"
#include "sdegen/core/check.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/figures.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/io/csv.h"
#include "sdegen/io/plot.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/optim.h"
#include "sdegen/train/recipe.h"
#include "sdegen/train/trainer.h"

namespace sdegen::app {
namespace {

struct CompareArgs {
  std::string data = "laplace5";
  std::vector<std::string> models = {"sde", "ode", "flow", "diffusion", "score", "vdm"};
  double budget = 50.0;  // training seconds per model
  int64_t n_train = 1000, n_val = 8000;
  double val_fraction = 0.2;
  int64_t elbo_time_samples = 16;
  uint64_t seed = 0;
  int threads = 1;
  std::string device = "cpu";
  std::string out = "runs/compare";
  bool quick = false, plots = true;
};

bool is_csv(const std::string& spec) {
  return spec.size() > 4 && spec.compare(spec.size() - 4, 4, ".csv") == 0;
}

// Training rows and evaluation data (held-out rows and a second data sample of the same size,
// the reference of the sample metrics), all in data units.
struct CompareData {
  torch::Tensor train;
  EvalData eval;
};

CompareData load_compare_data(const CompareArgs& a) {
  if (is_csv(a.data)) {
    const TrainValSplit s = split_train_val(load_csv(a.data).x, a.val_fraction, a.seed);
    // The reference sample: training rows, as many as there are held-out rows (or all of them).
    const int64_t m = std::min(s.train.size(0), s.val.size(0));
    return {s.train, EvalData{s.val.slice(0, 0, m), s.train.slice(0, 0, m), nullptr, a.data}};
  }
  const DensityPtr density = make_density(a.data);
  torch::manual_seed(a.seed);
  const torch::Tensor train = density->sample(a.n_train);
  return {train, make_eval_data(a.data, a.n_val, a.seed + 1)};
}

// Steps that fit the budget: the mean time of the training step itself (loss_and_gradient and
// the optimiser's update, as train() runs them) on a fresh copy, over a tenth of the budget (at
// most 2 s, at least 3 steps), after a warm-up step (the first allocates).
int64_t steps_for_budget(const nlohmann::json& config, const torch::Tensor& z, int64_t batch, double lr,
                         double budget) {
  ModelPtr probe = make_model(config);
  torch::optim::Adam opt(probe->parameters(), torch::optim::AdamOptions(lr));
  const torch::Tensor rows = z.slice(0, 0, std::min<int64_t>(batch, z.size(0)));
  auto step = [&] {
    probe->loss_and_gradient(rows);
    optimizer_step(opt);
  };
  step();
  const double window = std::min(2.0, 0.1 * budget);
  int trials = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (trials < 3 || elapsed < window) {
    step();
    ++trials;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return std::clamp<int64_t>(static_cast<int64_t>(budget / (elapsed / trials)), 20, 1000000);
}

struct Row {
  std::string model;
  int64_t steps = 0;
  double train_seconds = 0;
  EvalResult eval;
  // Sample distance (W1 in 1-D, sliced W otherwise) at 10 and 50 evaluations and adaptive.
  double at10 = NAN, at50 = NAN, adaptive = NAN;
  int64_t adaptive_nfe = 0;
  std::string fixed_solver;
};

double distance(const torch::Tensor& samples, const EvalData& data) {
  return data.x.size(1) == 1 ? wasserstein1(samples, data.x) : sliced_wasserstein(samples, data.x);
}

// Samples at a fixed number of function evaluations: heun (2 per step) for a probability flow,
// euler-maruyama (1 per step) for the general sde.
double distance_at(const TrainedModel& t, const EvalData& data, int nfe, std::string& solver) {
  SamplerOptions o;
  const bool flow = t.model->has_probability_flow();
  o.solver = flow ? "heun" : "euler-maruyama";
  o.steps = flow ? nfe / 2 : nfe;
  solver = o.solver;
  torch::NoGradGuard no_grad;
  return distance(draw_samples(*t.model, t.standardizer, data.x.size(0), o).x, data);
}

Row run_model(const CompareArgs& a, const std::string& kind, const CompareData& data) {
  Row row;
  row.model = kind;
  const std::string dir = (std::filesystem::path(a.out) / kind).string();
  const Standardizer st = fit_standardizer(data.train);
  const torch::Tensor z = st.transform(data.train);
  const Recipe recipe = recommended_recipe(kind);
  const nlohmann::json config = model_config(kind, z.size(1), recipe.model);
  TrainOptions options;
  options.lr(recipe.lr).decay(recipe.decay).seed(a.seed).threads(a.threads).log_every(25);
  torch::manual_seed(a.seed);
  row.steps = steps_for_budget(config, z, options.batch(), options.lr(), a.budget);
  options.steps(row.steps);
  torch::manual_seed(a.seed);
  ModelPtr model = make_model(config);
  TrainSetup setup;
  setup.overwrite = true;
  setup.extra = {{"data", a.data}, {"standardizer", st.to_json()}};
  setup.progress = nullptr;
  setup.validator = {};  // evaluated below, on the held-out data, once
  const TrainResult r = train(model, z, options, dir, setup);
  row.train_seconds = r.seconds;

  const TrainedModel trained = load_trained_model(dir);
  EvalOptions eo;
  eo.seed = a.seed;
  eo.elbo_time_samples = a.elbo_time_samples;
  eo.likelihood_options.adaptive = a.quick ? AdaptiveOptions{1e-4, 1e-4} : AdaptiveOptions{1e-5, 1e-5};
  eo.sampler.solver = trained.model->has_probability_flow() ? "dopri5" : "euler-maruyama";
  eo.sampler.steps = 200;  // euler-maruyama for sde: its finest setting stands in for "adaptive"
  row.eval = evaluate(*trained.model, trained.standardizer, data.eval, eo);
  if (row.eval.samples.defined()) {
    row.adaptive = distance(row.eval.samples, data.eval);
    row.adaptive_nfe = row.eval.sample_nfe;
  }
  row.at10 = distance_at(trained, data.eval, 10, row.fixed_solver);
  row.at50 = distance_at(trained, data.eval, 50, row.fixed_solver);
  return row;
}

std::string cell(const std::optional<Estimate>& e, bool with_se) {
  if (!e) return "-";
  return with_se ? fmt::format("{:.3f} ± {:.3f}", e->mean, e->se) : fmt::format("{:.3f}", e->mean);
}

void print_table(const std::vector<Row>& rows, const CompareData& data, const std::optional<Estimate>& truth,
                 double reference, double train_distance) {
  const bool one_d = data.eval.x.size(1) == 1;
  const std::string dist = one_d ? "W1" : "sliced W";
  fmt::print("\n{:<10} {:>8} {:>10} {:>18} {:>8} {:>9} {:>9} {:>16} {:>8}\n", "model", "steps", "log-lik",
             "ELBO ± se", "gap", dist + "@10", dist + "@50", dist + "@adaptive", "train s");
  for (const Row& r : rows) {
    const auto& e = r.eval;
    // The gap to the true average log density: of the likelihood where it exists, else of the ELBO.
    std::string gap = "-";
    if (truth) gap = fmt::format("{:.3f}", truth->mean - (e.log_likelihood ? e.log_likelihood->mean : e.elbo.mean));
    const std::string adaptive =
        std::isnan(r.adaptive) ? "-" : fmt::format("{:.4f} ({})", r.adaptive, r.adaptive_nfe);
    fmt::print("{:<10} {:>8} {:>10} {:>18} {:>8} {:>9.4f} {:>9.4f} {:>16} {:>8.1f}\n", r.model, r.steps,
               cell(e.log_likelihood, false), cell(e.elbo, true), gap, r.at10, r.at50, adaptive, r.train_seconds);
  }
  fmt::print("\n{} held-out points of '{}'{}. Two data samples of that size are {} = {:.4f} apart.\n",
             data.eval.x.size(0), data.eval.source,
             truth ? fmt::format("; true average log density {:.3f} ± {:.3f}", truth->mean, truth->se) : "", dist,
             reference);
  // A model of the training rows can be no closer than they are, unless it smooths them.
  fmt::print("The {} training rows themselves are {} = {:.4f} from the held-out points.\n", data.train.size(0), dist,
             train_distance);
  fmt::print("gap: true average log density minus the model's log-likelihood (ELBO where there is none).\n");
  fmt::print("@10/@50: function evaluations (heun; euler-maruyama for sde); adaptive: dopri5, NFE in brackets "
             "(sde: euler-maruyama, 200 steps).\n");
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

void write_record(const CompareArgs& a, const std::vector<Row>& rows, const CompareData& data) {
  nlohmann::json record = {{"data", a.data},
                           {"n_train", data.train.size(0)},
                           {"n_eval", data.eval.x.size(0)},
                           {"budget_seconds", a.budget},
                           {"seed", a.seed},
                           {"threads", a.threads},
                           {"quick", a.quick},
                           // The sample distance's floors: two data samples, and the training rows.
                           {"reference_distance", distance(data.eval.reference, data.eval)},
                           {"train_distance", distance(data.train, data.eval)},
                           {"models", nlohmann::json::array()}};
  for (const Row& r : rows) {
    nlohmann::json m = to_json(r.eval);
    m["model"] = r.model;
    m["steps"] = r.steps;
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

void make_plots(const CompareArgs& a, const std::vector<Row>& rows, const CompareData& data) {
  const std::filesystem::path out(a.out);
  std::vector<LossRun> losses;
  for (const Row& r : rows) losses.push_back({r.model, (out / r.model / "log.csv").string()});
  plot_loss_curves((out / "loss.png").string(), losses);
  if (data.eval.x.size(1) == 1) plot_densities(a, rows, data, (out / "densities.png").string());
  PlotModelOptions po;
  po.n = a.quick ? 1000 : 4000;
  po.paths = a.quick ? 40 : 120;
  po.steps = 100;
  for (const Row& r : rows) {
    const std::string dir = (out / r.model).string();
    // A model that trained badly can blow up along a trajectory: say so, keep the other plots.
    try {
      plot_model(load_trained_model(dir), (out / r.model / "plots").string(), po, dir);
    } catch (const NumericError& e) {
      fmt::print("  no plots for {}: {}\n", r.model, e.what());
    }
  }
}

void run(CompareArgs& a) {
  apply_runtime(a.threads, a.seed, a.device);
  if (a.quick) {
    a.budget = std::min(a.budget, 3.0);
    a.n_val = std::min<int64_t>(a.n_val, 1000);
    a.elbo_time_samples = std::min<int64_t>(a.elbo_time_samples, 4);
  }
  SDEGEN_CHECK(a.budget > 0, "--budget must be positive, got ", a.budget);
  SDEGEN_CHECK(!a.models.empty(), "--models needs at least one model");
  for (const auto& m : a.models) check_name("model", m, model_names());
  const auto start = std::chrono::steady_clock::now();
  const CompareData data = load_compare_data(a);
  std::filesystem::create_directories(a.out);
  fmt::print("comparing {} on '{}' ({} training rows, {}-D), {:.0f} s of training each\n", join(a.models), a.data,
             data.train.size(0), data.train.size(1), a.budget);
  std::vector<Row> rows;
  for (const auto& kind : a.models) {
    fmt::print("  {:<10} ", kind);
    std::fflush(stdout);
    rows.push_back(run_model(a, kind, data));
    fmt::print("{} steps in {:.1f} s, evaluated\n", rows.back().steps, rows.back().train_seconds);
  }
  std::optional<Estimate> truth = rows.front().eval.true_log_likelihood;
  const double reference = distance(data.eval.reference, data.eval);
  print_table(rows, data, truth, reference, distance(data.train, data.eval));
  write_record(a, rows, data);
  if (a.plots) {
    if (gnuplot_available()) make_plots(a, rows, data);
    else fmt::print("gnuplot is not installed: no plots (scripts/setup.sh installs gnuplot-nox)\n");
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("wrote {}/compare.json{} in {:.0f} s\n", a.out, a.plots ? " and the plots" : "", seconds);
}

}  // namespace

void register_compare(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Train every parameterisation on one dataset with the same budget and compare them");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--data", a->data, "Data: " + join(density_names()) + ", or a numeric CSV file (*.csv)");
  cmd->add_option("--models", a->models, "Models to compare")->check(one_of(model_names(), "model"));
  cmd->add_option("--budget", a->budget, "Training seconds per model (steps are fitted to it)")->check(positive());
  cmd->add_option("--n-train", a->n_train, "Training points drawn from a built-in density")->check(positive());
  cmd->add_option("--n-val", a->n_val, "Held-out points for the likelihood, ELBO and sample metrics")
      ->check(positive());
  cmd->add_option("--val-fraction", a->val_fraction, "Share of a CSV file held out");
  cmd->add_option("--elbo-samples", a->elbo_time_samples, "Draws of t per point for the ELBO")->check(positive());
  cmd->add_option("--seed", a->seed, "Random seed (data, training, evaluation)");
  cmd->add_option("--threads", a->threads, "Intra-op threads")->check(positive());
  cmd->add_option("--device", a->device, "Device (cpu; cuda where LibTorch has it)");
  cmd->add_option("--out", a->out, "Output directory: one run per model, compare.json, plots");
  cmd->add_flag("--quick", a->quick, "A fast smoke run: 3 s per model, 1000 evaluation points");
  cmd->add_flag("!--no-plots", a->plots, "Skip the plots");
  cmd->callback([a] { run(*a); });
}

}  // namespace sdegen::app
