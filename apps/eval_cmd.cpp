// sdegen eval: evaluate a trained model on data (likelihood, ELBO, sample distances), print a
// table and write the JSON of eval/evaluate.h.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "apps/commands.h"
#include "apps/image_eval.h"
#include "sdegen/core/check.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/io/csv.h"
#include "sdegen/model/consistency_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/process/loglinear.h"

namespace sdegen::app {
namespace {

struct EvalArgs {
  std::string checkpoint;
  std::string data;  // empty: the data the model was trained on
  int64_t n = 2000;
  EvalOptions options;
  std::string solver = "dopri5";
  int steps = 100;
  double rtol = 1e-5, atol = 1e-5;
  std::string sample_solver;  // empty: dopri5, or euler-maruyama for the sde model
  int sample_steps = 100;
  EdmOptions edm;  // --sample-solver edm
  PcOptions pc;    // --sample-solver pc
  bool no_samples = false, no_likelihood = false;
  int threads = 1;
  std::string device = "cpu";
  std::string out = "eval.json";
  std::string samples_out;
  // Image models (apps/image_eval.cpp).
  std::string classifier;
  std::vector<double> guidance = ImageEvalOptions().guidance;
  int64_t likelihood_n = 100;
};

// An image checkpoint: the image metrics, with the image defaults for what was not given.
void run_images(EvalArgs& a, TrainedModel& t, const CLI::App& command) {
  SDEGEN_CHECK(a.data.empty() || a.data == "fashion-mnist" || std::filesystem::is_directory(a.data), "--data '",
               a.data, "': an image model is evaluated on fashion-mnist or a folder of PNG images");
  ImageEvalArgs i;
  i.checkpoint = a.checkpoint;
  i.data = a.data;
  i.classifier = a.classifier;
  i.threads = a.threads;
  i.out = a.out;
  i.grid = a.samples_out;
  ImageEvalOptions& o = i.options;
  if (command.count("--n")) o.n = a.n;
  o.guidance = command.count("--guidance") ? a.guidance : std::vector<double>{default_guidance(*t.model)};
  if (command.count("--sample-solver")) o.sampler.solver = a.sample_solver;
  if (command.count("--sample-steps")) o.sampler.steps = a.sample_steps;
  o.sampler.edm = a.edm;
  o.sampler.pc = a.pc;
  o.elbo_n = o.n;
  o.elbo_time_samples = a.options.elbo_time_samples;
  o.likelihood_n = a.no_likelihood ? 0 : std::min(a.likelihood_n, o.n);
  o.likelihood.solver = a.solver;
  o.likelihood.steps = a.steps;
  o.likelihood.probes = a.options.probes;
  if (command.count("--rtol")) o.likelihood.adaptive.rtol = a.rtol;
  if (command.count("--atol")) o.likelihood.adaptive.atol = a.atol;
  o.seed = a.options.seed;
  if (t.model->kind() == "autoencoder") {
    // Its reconstructions alone (apps/image_eval.cpp): it samples nothing.
    o.elbo_n = o.likelihood_n = 0;
  } else if (!t.model->has_elbo()) {
    // A consistency model: one evaluation unless told otherwise, and no likelihood of any kind.
    if (!command.count("--sample-solver")) o.sampler.solver = consistency_solver_name();
    if (!command.count("--sample-steps")) o.sampler.steps = 1;
    fmt::print("the '{}' model has no ELBO or likelihood: its samples alone are measured\n", t.model->kind());
    o.elbo_n = o.likelihood_n = 0;
  } else if (!t.model->has_probability_flow()) {
    // The general sde model: its learned diffusion samples it (Euler-Maruyama, 50 steps, as many
    // evaluations as the default 25 Heun steps), and its ELBO is its only likelihood.
    if (!command.count("--sample-solver")) o.sampler.solver = "euler-maruyama";
    if (!command.count("--sample-steps")) o.sampler.steps = 50;
    if (o.likelihood_n > 0)
      fmt::print("the '{}' model has no probability flow: its bits per dimension come from its ELBO only\n",
                 t.model->kind());
    o.likelihood_n = 0;
  } else if (t.model->num_classes() > 0 && !learned_unconditional_map(*t.model)) {
    // Trained without label dropout (a reflowed student): bits per dimension measure the
    // unconditional model, here the never-trained null label's; a number, but not this model's.
    fmt::print("the model learned no unconditional map (no label dropout): its bits per dimension are not "
               "measured\n");
    o.elbo_n = o.likelihood_n = 0;
  }
  if (t.latent && o.likelihood_n > 0) {
    // The probability flow of latents gives a likelihood of latents, not of pixels: the ELBO of
    // the latents is reported instead, labelled as such.
    fmt::print("a latent model: its likelihood is of latents, reported as the ELBO per latent dimension; no pixel "
               "bits per dimension\n");
    o.likelihood_n = 0;
  }
  SDEGEN_CHECK(!a.no_samples, "--no-samples: an image model's metrics are all about its samples; ",
               "for bits per dimension alone use --n with the test images to use");
  SDEGEN_CHECK(i.grid.empty() || (i.grid.size() > 4 && i.grid.compare(i.grid.size() - 4, 4, ".png") == 0),
               "an image model's --samples-out is a PNG grid: it must end in .png, got '", i.grid, "'");
  run_image_eval(i, t);
}

std::string opt(const std::optional<Estimate>& e) {
  return e ? fmt::format("{:10.4f} +- {:.4f}", e->mean, e->se) : std::string("         -");
}

void print_table(const EvalResult& r) {
  fmt::print("{} model on '{}' ({}-D{}, {} points), nats per point:\n", r.kind, r.source, r.dim,
             r.observed > 0 ? fmt::format(" given each row's {} condition columns", r.observed) : std::string(), r.n);
  if (!r.likelihood_problem.empty())
    fmt::print("  log-likelihood        untrusted: {}\n", r.likelihood_problem);
  else
    fmt::print("  log-likelihood      {}{}\n", opt(r.log_likelihood),
               r.log_likelihood ? fmt::format("  ({}, {} evaluations)", r.likelihood_method, r.likelihood_nfe)
                                : std::string("  (no probability flow)"));
  if (r.true_log_likelihood) {
    fmt::print("  true log density    {}\n", opt(r.true_log_likelihood));
    if (r.log_likelihood)
      fmt::print("  gap to the truth    {:10.4f}\n", r.true_log_likelihood->mean - r.log_likelihood->mean);
  }
  if (r.bits_per_dim) fmt::print("  bits per dimension  {:10.4f}\n", *r.bits_per_dim);
  if (r.elbo_failed > 0)
    fmt::print("  ELBO                  untrusted: {} of {} rows non-finite (terms below: the others)\n", r.elbo_failed,
               r.n);
  else if (!r.elbo)
    fmt::print("  ELBO                         -  (none: the model is a map from noise to data, not an SDE)\n");
  else
    fmt::print("  ELBO                {}\n", opt(r.elbo));
  fmt::print("    reconstruction    {}\n", opt(r.reconstruction));
  fmt::print("    prior KL          {}\n", opt(r.prior));
  fmt::print("    drift KL          {}\n", opt(r.drift));
  if (r.samples.defined()) {
    if (r.observed > 0)
      fmt::print("sample distances of rows [condition, generated] ({} samples at the reference rows' conditions, "
                 "{}, {} evaluations)   model   two data samples\n",
                 r.samples.size(0), r.sampler, r.sample_nfe);
    else
      fmt::print("sample distances ({} samples, {}, {} evaluations)   model   two data samples\n", r.samples.size(0),
                 r.sampler, r.sample_nfe);
    const auto row = [](const char* name, const std::optional<SampleDistance>& m) {
      if (m) fmt::print("  {:<24} {:12.5f} {:12.5f}\n", name, m->model, m->reference);
    };
    row("Wasserstein-1", r.metrics.w1);
    row("Kolmogorov-Smirnov", r.metrics.ks);
    row("sliced Wasserstein", r.metrics.sliced_w);
    row("MMD (RBF, median)", r.metrics.mmd);
    row("energy distance", r.metrics.energy);
    if (r.straightness)
      fmt::print("straightness of the probability flow (0: straight paths at constant speed)   {:.5f}\n",
                 *r.straightness);
  }
}

// The log-SNR an affine model's schedule has at its ends (and knots), which vdm learns; null for
// other models and for infinite values.
nlohmann::json schedule_json(const GenerativeModel& model) {
  const auto* affine = dynamic_cast<const AffineModel*>(&model);
  if (!affine) return nullptr;
  const AffineSchedule& s = affine->schedule();
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j = {{"name", s.name()}, {"lambda_0", number(s.lambda(0.0))}, {"lambda_1", number(s.lambda(1.0))}};
  if (const auto* loglinear = dynamic_cast<const LogLinearSchedule*>(&s); loglinear && loglinear->pieces() > 1) {
    const int64_t k = loglinear->pieces();
    std::vector<double> knots;
    for (int64_t i = 0; i <= k; ++i) knots.push_back(s.lambda(static_cast<double>(i) / k));
    j["lambda_knots"] = knots;
  }
  return j;
}

void print_schedule(const nlohmann::json& j) {
  if (j.is_null() || j["lambda_0"].is_null() || j["lambda_1"].is_null()) return;
  fmt::print("  schedule {}: lambda(0) = {:.4f}, lambda(1) = {:.4f}\n", j["name"].get<std::string>(),
             j["lambda_0"].get<double>(), j["lambda_1"].get<double>());
}

// The held-out figure on these rows against the validation figure training kept its weights by
// (both per row, in data units: the likelihood for val_nll, the ELBO for val_nelbo): far below
// it, the model fits its training rows better than the data. Returns the comparison (null without
// a validation figure) and prints a warning when it is far.
nlohmann::json overfitting_check(const TrainedModel& t, const EvalResult& r) {
  const auto best = t.config.find("best");
  if (best == t.config.end()) return nullptr;
  const std::string metric = best->at("metric").get<std::string>();
  const bool nll = metric == "val_nll";
  const std::optional<Estimate>& here = nll ? r.log_likelihood : r.elbo;
  if ((!nll && metric != "val_nelbo") || !here) return nullptr;
  const double validation = -best->at("value").get<double>() - t.standardizer.std.log().sum().item<double>();
  const double gap = validation - here->mean, allowed = std::max(1.0, 4.0 * here->se);
  const bool far = gap > allowed;
  const char* what = nll ? "log-likelihood" : "ELBO";
  if (far)
    fmt::print("warning: the {} here ({:.3f}) is {:.3f} nats per row below the validation figure training kept "
               "(step {}: {:.3f}): the model may have overfitted its training rows. Lower --patience or --steps, "
               "or train on more rows.\n",
               what, here->mean, gap, best->at("step").get<int64_t>(), validation);
  return {{"metric", metric}, {"validation", validation}, {"gap", gap}, {"allowed", allowed}, {"warning", far}};
}

void run(EvalArgs& a, const CLI::App& command) {
  const torch::Device device = apply_runtime(a.threads, a.options.seed, a.device);
  SDEGEN_CHECK(!a.checkpoint.empty(), "eval needs --checkpoint DIR (the run directory of sdegen train)");
  SDEGEN_CHECK(std::filesystem::is_directory(a.checkpoint), "--checkpoint '", a.checkpoint,
               "' is not a directory; give the run directory of sdegen train");
  TrainedModel t = load_trained_model(a.checkpoint);
  t.to(device);  // data go to the model's device; figures, samples and images come back to the CPU
  if (!t.images.is_null()) return run_images(a, t, command);
  const std::string spec = a.data.empty() ? t.data : a.data;
  SDEGEN_CHECK(!spec.empty(), "the checkpoint records no data; pass --data SPEC|FILE.csv");
  const bool conditional = !t.condition_columns.empty();
  const EvalData data = conditional ? conditional_eval_data(t, spec, a.options.seed)
                                    : make_eval_data(spec, a.n, a.options.seed);
  check_dimension(t.model->dim(), data.x.size(1) - data.observed, spec);
  EvalOptions o = a.options;
  o.likelihood = !a.no_likelihood;
  o.samples = !a.no_samples;
  o.likelihood_options.solver = a.solver;
  o.likelihood_options.steps = a.steps;
  o.likelihood_options.adaptive.rtol = a.rtol;
  o.likelihood_options.adaptive.atol = a.atol;
  o.sampler.solver = a.sample_solver;
  o.sampler.steps = a.sample_steps;
  // A consistency model generates in one evaluation unless told otherwise.
  if (!t.model->has_elbo() && !command.count("--sample-steps")) o.sampler.steps = 1;
  o.sampler.edm = a.edm;
  o.sampler.pc = a.pc;
  const EvalResult r = evaluate(*t.model, t.standardizer, data, o, t.condition_standardizer);
  print_table(r);
  nlohmann::json j = to_json(r);
  j["overfitting"] = overfitting_check(t, r);
  j["checkpoint"] = a.checkpoint;
  j["schedule"] = schedule_json(*t.model);
  j["condition_columns"] = t.condition_columns;
  print_schedule(j["schedule"]);
  write_file_atomic(a.out, j.dump(2) + "\n");
  fmt::print("wrote {}\n", a.out);
  if (!a.samples_out.empty() && r.samples.defined()) {
    std::vector<std::string> header;  // [condition columns, generated columns] where they are named
    if (!t.columns.empty()) {
      header = t.condition_columns;
      header.insert(header.end(), t.columns.begin(), t.columns.end());
    }
    write_csv(a.samples_out, r.samples, header);
    fmt::print("wrote {}\n", a.samples_out);
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a trained model: likelihood, ELBO, sample distances");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--checkpoint", a->checkpoint, "Run directory of a trained model (from sdegen train)")->required();
  cmd->add_option("--data", a->data,
                  "Data: " + join(density_names()) + ", a mixture JSON or a numeric CSV file; for an image "
                  "model the test images: fashion-mnist (its test split) or a folder; for a model trained with "
                  "--condition-columns a CSV file with its columns, evaluated given each row's condition (default: "
                  "the data the model was trained on; an image model's own training folder is split in halves for "
                  "fd_floor)");
  cmd->add_option("--n", a->n, "Evaluation points, and samples drawn (images: 1000 per guidance weight)")
      ->check(positive());
  cmd->add_option("--solver", a->solver, "Likelihood ODE solver (dopri5 adaptive, or fixed-step)")
      ->check(one_of({"dopri5", "euler", "midpoint", "heun", "rk4"}, "likelihood solver"));
  cmd->add_option("--steps", a->steps, "Steps of a fixed-step likelihood solver")->check(positive());
  cmd->add_option("--rtol", a->rtol, "dopri5 relative tolerance (likelihood; images: 1e-4)")->check(positive());
  cmd->add_option("--atol", a->atol, "dopri5 absolute tolerance (likelihood; images: 1e-4)")->check(positive());
  cmd->add_flag("--hutchinson", a->options.hutchinson,
                "Hutchinson's divergence estimate (Rademacher probes) instead of the exact one");
  cmd->add_option("--exact-max-dim", a->options.exact_max_dim, "Exact divergence up to this dimension");
  cmd->add_option("--probes", a->options.probes, "Hutchinson probes per point")->check(positive());
  cmd->add_option("--elbo-time-samples", a->options.elbo_time_samples, "Draws of t per point for the ELBO")
      ->check(positive());
  cmd->add_option("--quantization", a->options.quantization,
                  "Bin width of the data's quantisation (data units); > 0 reports bits per dimension");
  cmd->add_option("--sample-solver", a->sample_solver,
                  "Sampler for the sample metrics (default: dopri5, euler-maruyama for sde, consistency for a "
                  "consistency model)")
      ->check(one_of(solver_names_with_consistency(), "solver"));
  cmd->add_option("--sample-steps", a->sample_steps,
                  "Steps of a fixed-step sampler (images: heun, 25 steps; a consistency model: 1)")
      ->check(positive());
  add_stochastic_sampler_options(cmd, a->edm, a->pc);
  cmd->add_option("--projections", a->options.projections, "Sliced Wasserstein directions")->check(positive());
  cmd->add_flag("--no-likelihood", a->no_likelihood, "Skip the likelihood");
  cmd->add_flag("--no-samples", a->no_samples, "Skip sampling and the sample metrics");
  cmd->add_option("--seed", a->options.seed, "Random seed (data draws, t draws, samples)")->check(seed_value());
  cmd->add_option("--threads", a->threads, "Intra-op threads")->check(thread_count());
  cmd->add_option("--device", a->device,
                  "Device of the model's solves: cpu, or cuda[:N] with a CUDA LibTorch (the data and prior draws "
                  "are made on the CPU and moved; an image model's classifier measures on the CPU)");
  cmd->add_option("--out", a->out, "Output JSON");
  cmd->add_option("--samples-out", a->samples_out,
                  "Also write the samples (CSV, data units; images: a PNG grid of the first guidance weight's)");
  cmd->add_option("--classifier", a->classifier,
                  "Images: the metrics' classifier directory (sdegen train-classifier; default for fashion-mnist: "
                  "the cached one, trained on first use)");
  cmd->add_option("--guidance", a->guidance,
                  "Images: classifier-free guidance weights to measure, comma-separated (0: unconditional, 1: "
                  "conditional; default 2, and 1 for a model trained without label dropout: a consistency model or a "
                  "reflowed student)")
      ->delimiter(',');
  cmd->add_option("--likelihood-n", a->likelihood_n,
                  "Images: test images whose bits per dimension the probability flow gives (Hutchinson)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a, cmd] { run(*a, *cmd); });
}

}  // namespace sdegen::app
