// sdegen compare: every parameterisation and the classical baselines on one dataset, trained
// and evaluated the same way; the report is in compare_report.cpp.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "apps/commands.h"
#include "apps/compare.h"
#include "sdegen/core/check.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/baselines.h"
#include "sdegen/io/plot.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/optim.h"
#include "sdegen/train/recipe.h"
#include "sdegen/train/trainer.h"

namespace sdegen::app {
namespace {

// Refuses an --out that holds an earlier comparison (its record or any model's run), unless
// --overwrite: that work is not replaced by accident.
void check_out_dir(const CompareArgs& a) {
  if (a.overwrite) return;
  const std::filesystem::path out(a.out);
  std::vector<std::string> found;
  if (std::filesystem::exists(out / "compare.json")) found.push_back((out / "compare.json").string());
  for (const auto& kind : model_names())
    if (has_checkpoint((out / kind).string())) found.push_back((out / kind).string());
  SDEGEN_CHECK(found.empty(), "--out '", a.out, "' already holds an earlier comparison (", join(found),
               "); choose another --out, or pass --overwrite to replace it");
}

// A CSV: --test's rows, or a share of --data held out, are the test rows; the rest is split into
// training and validation rows. A built-in density: fresh draws for each.
CompareData load_compare_data(const CompareArgs& a) {
  CompareData d;
  if (is_csv_name(a.data)) {
    torch::Tensor rows = load_csv(a.data).x;
    torch::Tensor test;
    if (!a.test.empty()) {
      test = load_csv(a.test).x;
      check_dimension(rows.size(1), test.size(1), a.test);
    } else {
      const TrainValSplit s = split_train_val(rows, a.test_fraction, a.seed + 1);
      rows = s.train, test = s.val;
    }
    const TrainValSplit s = split_train_val(rows, a.val_fraction, a.seed);
    d.train = s.train, d.val = s.val;
    d.eval = eval_data_from_rows(test, a.test.empty() ? a.data + " (held-out rows)" : a.test, a.seed + 2);
    return d;
  }
  SDEGEN_CHECK(a.test.empty(), "--test is for CSV data; '", a.data, "' draws its own test points");
  const DensityPtr density = make_density(a.data);
  torch::manual_seed(a.seed);
  d.train = density->sample(a.n_train);
  d.val = density->sample(std::max<int64_t>(100, a.n_train / 4));
  d.eval = make_eval_data(a.data, a.n_val, a.seed + 1);
  return d;
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
  const Recipe recipe = recommended_recipe(kind, z.size(0), z.size(1));
  const nlohmann::json config = model_config(kind, z.size(1), recipe.model);
  TrainOptions options = recipe.options;
  options.seed(a.seed).threads(a.threads).log_every(25);
  torch::manual_seed(a.seed);
  if (a.budget > 0) {
    options.steps(steps_for_budget(config, z, options.batch(), options.lr(), a.budget));
    options.val_every(std::max<int64_t>(1, options.steps() / kValidationsPerRun));
    // The budget is the run: every model gets its seconds and its whole learning-rate schedule,
    // and validation only chooses the weights kept. Stopping early on laplace5's 250 validation
    // rows, whose figure wanders by 0.01 nats from one validation to the next, ended flow at
    // 23,805 steps (held-out -3.008); run to the budget's end (58,970 steps) it kept the weights of
    // step 44,220 and reached -2.996 (scripts/run.sh, 2026-12-05).
    options.patience(0);
  }
  row.steps = options.steps();
  torch::manual_seed(a.seed);
  ModelPtr model = make_model(config);
  TrainSetup setup;
  setup.overwrite = a.overwrite;
  setup.extra = {{"data", a.data}, {"standardizer", st.to_json()}};
  setup.progress = nullptr;
  setup.val = st.transform(data.val);
  setup.validator = make_validator(recipe.validation, data.val.size(0));
  const TrainResult r = train(model, z, options, dir, setup);
  row.steps = r.steps;
  row.best_step = r.best_step;
  row.stopped_early = r.stopped_early;
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

// The classical estimators on the same standardised rows, mapped back to data units as the
// models are (log p(y) = log p(z) - sum log std).
std::vector<Row> run_baselines(const CompareData& data, uint64_t seed) {
  const Standardizer st = fit_standardizer(data.train);
  const torch::Tensor train = st.transform(data.train), val = st.transform(data.val), test = st.transform(data.eval.x);
  const double log_jacobian = st.std.log().sum().item<double>();
  std::vector<Row> rows;
  for (const char* name : {"gaussian", "mixture", "kde"}) {
    const auto start = std::chrono::steady_clock::now();
    const std::string n = name;
    const BaselineFit fit = n == "gaussian" ? fit_gaussian(train, val, test)
                            : n == "mixture" ? fit_mixture(train, val, test, {1, 2, 3, 4, 6, 8, 12, 16, 24, 32}, seed)
                                             : fit_kde(train, val, test);
    Row row;
    row.model = name;
    row.baseline = true;
    row.choice = fit.choice;
    row.eval.log_likelihood = mean_and_se(fit.test_log_prob - log_jacobian);
    if (data.eval.density && data.eval.density->has_log_prob())
      row.eval.true_log_likelihood = mean_and_se(data.eval.density->log_prob(data.eval.x));
    row.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rows.push_back(row);
  }
  return rows;
}

void run(CompareArgs& a) {
  // The comparison's models are small MLPs whose fused float64 kernels run on the CPU, and its
  // baselines (mixtures, KDE) are CPU code; it has not been made to run anywhere else.
  SDEGEN_CHECK(apply_runtime(a.threads, a.seed, a.device).is_cpu(), "--device ", a.device,
               ": compare runs on the CPU; train and sample take --device cuda");
  if (a.quick) {
    a.budget = std::min(a.budget, 3.0);
    a.n_val = std::min<int64_t>(a.n_val, 1000);
    a.elbo_time_samples = std::min<int64_t>(a.elbo_time_samples, 4);
  }
  SDEGEN_CHECK(a.budget >= 0 && std::isfinite(a.budget), "--budget must be >= 0 (0: each model's recipe), got ",
               a.budget);
  SDEGEN_CHECK(!a.models.empty(), "--models needs at least one model");
  for (size_t i = 0; i < a.models.size(); ++i) {
    check_name("model", a.models[i], model_names());
    SDEGEN_CHECK(std::find(a.models.begin(), a.models.begin() + static_cast<std::ptrdiff_t>(i), a.models[i]) ==
                     a.models.begin() + static_cast<std::ptrdiff_t>(i),
                 "--models lists '", a.models[i], "' twice; each model trains into its own folder once");
  }
  check_data_spec(a.data, /*csv_ok=*/true);
  check_out_dir(a);
  const auto start = std::chrono::steady_clock::now();
  std::filesystem::create_directories(a.out);
  const CompareData data = load_compare_data(a);
  fmt::print("comparing {} on '{}' ({} training rows, {} validation rows, {}-D), {}\n", join(a.models), a.data,
             data.train.size(0), data.val.size(0), data.train.size(1),
             a.budget > 0 ? fmt::format("{:.0f} s of training each", a.budget) : std::string("each model's recipe"));
  std::vector<Row> rows;
  for (const auto& kind : a.models) {
    fmt::print("  {:<10} ", kind);
    std::fflush(stdout);
    rows.push_back(run_model(a, kind, data));
    fmt::print("{} steps in {:.1f} s, evaluated\n", rows.back().steps, rows.back().train_seconds);
  }
  if (a.baselines)
    for (Row& r : run_baselines(data, a.seed)) rows.push_back(std::move(r));
  print_table(rows, data);
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
      "compare", "Train every parameterisation and the classical baselines on one dataset and compare them");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--data", a->data, "Data: " + join(density_names()) + ", or a numeric CSV file (*.csv)");
  cmd->add_option("--test", a->test, "CSV file of test rows (default: held out from a CSV --data)");
  cmd->add_option("--models", a->models, "Models to compare")->check(one_of(model_names(), "model"));
  cmd->add_option("--budget", a->budget,
                  "Training seconds per model, steps fitted to it (0: each model's recipe, with early stopping)");
  cmd->add_option("--n-train", a->n_train, "Training points drawn from a built-in density")->check(positive());
  cmd->add_option("--n-val", a->n_val, "Test points drawn from a built-in density")->check(positive());
  cmd->add_option("--val-fraction", a->val_fraction, "Share of the training rows held out for validation");
  cmd->add_option("--test-fraction", a->test_fraction, "Share of a CSV --data held out as test rows (without --test)");
  cmd->add_option("--elbo-samples", a->elbo_time_samples, "Draws of t per point for the ELBO")->check(positive());
  cmd->add_option("--seed", a->seed, "Random seed (data, training, evaluation)")->check(seed_value());
  cmd->add_option("--threads", a->threads, "Intra-op threads")->check(thread_count());
  cmd->add_option("--device", a->device, "Device: cpu (compare runs on the CPU; train and sample take cuda)");
  cmd->add_option("--out", a->out, "Output directory: one run per model, compare.json, plots");
  cmd->add_flag("--overwrite", a->overwrite, "Replace an earlier comparison in --out");
  cmd->add_flag("--quick", a->quick, "A fast smoke run: 3 s per model, 1000 evaluation points");
  cmd->add_flag("!--no-plots", a->plots, "Skip the plots");
  cmd->add_flag("!--no-baselines", a->baselines, "Skip the Gaussian, mixture and kernel density baselines");
  cmd->callback([a] { run(*a); });
}

}  // namespace sdegen::app
