// sdegen sample: draw samples from a model by integrating its generative SDE or ODE.
#include <chrono>
#include <cmath>
#include <fmt/core.h>

#include "apps/commands.h"
#include "sdegen/core/check.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/image_evaluate.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/io/csv.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/io/png.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/sample/sampler.h"

namespace sdegen::app {
namespace {

struct SampleArgs {
  bool oracle = false;
  std::string checkpoint;
  std::string data = "gmm1d";
  std::string schedule = "linear";
  SamplerOptions sampler;
  std::string sigma = "0";
  int64_t n = 1000;
  uint64_t seed = 0;
  int threads = 1;
  std::string device = "cpu";
  std::string out = "samples.csv";
  int64_t n_reference = 10000;
  // Image models.
  int64_t label = -1;      // -1: one row per class (labelled) or unconditional
  double guidance = kDefaultGuidance;  // classifier-free guidance weight w: 0 unconditional, 1 conditional
  bool guidance_given = false;         // --guidance on the command line (refused for unconditional models)
  int64_t columns = 10;    // images per row of the grid
  // Tables trained with --condition-columns: "name=value,..." for every sample; empty: none observed.
  std::string condition;
  // Or a CSV file of observations (columns by name, others ignored): one sample per row.
  std::string condition_file;
  bool n_given = false;
};

// The observations of --condition-file: its columns named `names`, in that order, [rows, k] data units.
torch::Tensor read_conditions(const std::string& file, const std::vector<std::string>& names) {
  // load_csv refuses malformed rows, NaN and infinities by line.
  return select_columns(load_csv(file), names, "--condition-file",
                        " (the model is conditioned on " + join(names) + ")");
}

// The values of --condition "name=value,..." in the order of the model's condition columns.
std::vector<double> parse_condition(const std::string& text, const std::vector<std::string>& names) {
  std::vector<double> values(names.size(), std::nan(""));
  std::vector<bool> seen(names.size(), false);
  for (const std::string& item : split_trimmed(text)) {
    const auto eq = item.find('=');
    SDEGEN_CHECK(eq != std::string::npos, "--condition: expected name=value, got '", item, "'");
    const std::string name = trim(item.substr(0, eq)), value = trim(item.substr(eq + 1));
    const auto at = std::find(names.begin(), names.end(), name);
    SDEGEN_CHECK(at != names.end(), "--condition: the model is conditioned on ", join(names), "; it has no '", name,
                 "'");
    const size_t j = static_cast<size_t>(at - names.begin());
    SDEGEN_CHECK(!seen[j], "--condition gives '", name, "' twice");
    size_t used = 0;
    double v = std::nan("");
    try {
      v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SDEGEN_CHECK(used == value.size() && used > 0 && std::isfinite(v), "--condition: the value of '", name, "' must be ",
                 "a finite number, got '", value, "'");
    values[j] = v, seen[j] = true;
  }
  for (size_t j = 0; j < names.size(); ++j)
    SDEGEN_CHECK(seen[j], "--condition gives no value for '", names[j], "' (the model is conditioned on ",
                 join(names), ")");
  return values;
}

// How close the samples are, beside how much two data samples of the same size differ.
void report_distance(const Density& data, const torch::Tensor& x, int64_t n_reference) {
  const torch::Tensor ref = data.sample(n_reference), ref2 = data.sample(x.size(0));
  const bool one_d = data.dim() == 1;
  const double dist = one_d ? wasserstein1(x, ref) : sliced_wasserstein(x, ref);
  const double base = one_d ? wasserstein1(ref2, ref) : sliced_wasserstein(ref2, ref);
  fmt::print("{} to {} fresh data points: {:.4f} (two data samples: {:.4f})\n",
             one_d ? "Wasserstein-1" : "sliced Wasserstein", n_reference, dist, base);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void run_oracle(SampleArgs& a) {
  const DensityPtr data = make_density(a.data);
  const GaussianMixture* mixture = data->mixture();
  SDEGEN_CHECK(mixture != nullptr, "--oracle needs Gaussian-mixture data (its marginals are exact); '",
               a.data, "' is not one");
  const GmmOracle model(*mixture, make_schedule(a.schedule));
  const torch::Tensor x0 = model.schedule().prior_std() * torch::randn({a.n, data->dim()}, torch::kDouble);
  const auto start = std::chrono::steady_clock::now();
  const Solution sol = sample(model, x0, a.sampler);
  const double seconds = seconds_since(start);
  sol.check();
  write_csv(a.out, sol.x);
  fmt::print("sampled {} points of '{}' (oracle, schedule {}) with {}: {} function evaluations, {:.3f} s\n",
             a.n, a.data, a.schedule, a.sampler.solver, sol.nfe, seconds);
  report_distance(*data, sol.x, a.n_reference);
  fmt::print("wrote {}\n", a.out);
}

// An image model: a PNG grid, one row per class (or --label's class) when it is conditional.
void run_images(SampleArgs& a, const TrainedModel& t) {
  const ModelPtr& model = t.model;
  SDEGEN_CHECK(a.out.size() > 4 && a.out.compare(a.out.size() - 4, 4, ".png") == 0,
               "an image model writes a PNG grid: --out must end in .png, got '", a.out, "'");
  const int64_t classes = model->num_classes();
  SDEGEN_CHECK(a.label == -1 || (a.label >= 0 && a.label < classes),
               "--label must be -1 (every class) or a class in [0, ", classes, "), got ", a.label);
  SDEGEN_CHECK(classes > 0 || (a.label == -1 && !a.guidance_given),
               "--label and --guidance need a class-conditional model; this one is unconditional");
  if (!a.guidance_given) a.guidance = default_guidance(*model);
  torch::Tensor labels;
  int64_t n = a.n;
  if (classes > 0) {
    // One row of `columns` images per class, or --n images of one class.
    labels = a.label >= 0 ? torch::full({n}, a.label, torch::kLong)
                          : torch::arange(classes, torch::kLong).repeat_interleave(a.columns);
    n = labels.size(0);
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor x0 = sample_model_prior(*model, n);
  const auto start = std::chrono::steady_clock::now();
  // In batches, which are faster per image on the CPU (ImageEvalOptions::batch).
  const int64_t batch = ImageEvalOptions().batch;
  std::vector<torch::Tensor> images;
  int64_t nfe = 0;
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t m = std::min(batch, n - i);
    const Condition condition = labels.defined() ? Condition(labels.narrow(0, i, m)) : Condition();
    const Solution sol = generate(*model, x0.narrow(0, i, m), a.sampler, {condition, a.guidance});
    sol.check();
    images.push_back((t.latent ? t.latent->decode(sol.x) : sol.x).to(torch::kCPU, torch::kFloat));
    nfe = sol.nfe;
  }
  const double seconds = seconds_since(start);
  write_image_grid(a.out, torch::cat(images), a.columns);
  fmt::print("sampled {} images from {} ({} model{}{}) with {}: {} function evaluations, {:.3f} s\n", n,
             a.checkpoint, model->kind(), t.latent ? " in an autoencoder's latents, decoded" : "",
             classes > 0 ? fmt::format(", guidance {}, {}", a.guidance,
                                       a.label >= 0 ? "class " + t.images.at("classes").at(a.label).get<std::string>()
                                                    : std::string("one row per class"))
                         : std::string(),
             a.sampler.solver, nfe, seconds);
  fmt::print("wrote {}\n", a.out);
}

void run_checkpoint(SampleArgs& a, const torch::Device& device) {
  TrainedModel t = load_trained_model(a.checkpoint);
  t.to(device);  // the prior draws follow the model (drawn on the CPU: a seed gives the same on any device)
  SDEGEN_CHECK(t.model->kind() != "autoencoder", "'", a.checkpoint, "' holds an autoencoder, which maps images to ",
               "latents and back and samples nothing; train a model on its latents (sdegen train --latent ",
               a.checkpoint, ") and sample that, or see its reconstructions with sdegen eval --checkpoint ",
               a.checkpoint, " --samples-out recon.png");
  if (!t.images.is_null()) return run_images(a, t);
  const ModelPtr& model = t.model;
  const Standardizer& st = t.standardizer;
  torch::NoGradGuard no_grad;
  SDEGEN_CHECK((a.condition.empty() && a.condition_file.empty()) || model->condition_dim() > 0,
               a.condition.empty() ? "--condition-file" : "--condition", ": this model takes no condition ",
               "vector (it was trained without --condition-columns)");
  SDEGEN_CHECK(a.condition.empty() || a.condition_file.empty(), "give --condition (one observation for every ",
               "sample) or --condition-file (one sample per row), not both");
  SDEGEN_CHECK(a.condition_file.empty() || !a.n_given, "--n: with --condition-file each row gives one sample");
  const torch::Tensor observed = a.condition_file.empty() ? torch::Tensor()
                                                          : read_conditions(a.condition_file, t.condition_columns);
  if (observed.defined()) a.n = observed.size(0);
  const torch::Tensor x0 = sample_model_prior(*model, a.n);
  SDEGEN_CHECK(model->condition_dim() > 0 || model->num_classes() > 0 || !a.guidance_given,
               "--guidance needs a conditional model; this one is unconditional");
  Guidance guidance;
  if (!a.condition.empty()) {
    guidance.condition.vector = t.condition_rows(parse_condition(a.condition, t.condition_columns), a.n);
    guidance.weight = a.guidance_given ? a.guidance : 1.0;  // the conditional model unless asked
  } else if (observed.defined()) {
    guidance.condition.vector = t.condition_standardizer.transform(observed);
    guidance.weight = a.guidance_given ? a.guidance : 1.0;
  } else if (model->condition_dim() > 0) {
    SDEGEN_CHECK(learned_unconditional_map(*model), "the model was trained without condition dropout (p_uncond 0; ",
                 "a reflowed student learns its teacher's conditional flow), so it has no unconditional model to ",
                 "draw from; give --condition or --condition-file (", join(t.condition_columns), ")");
    fmt::print("no --condition: drawing from the unconditional model (the model is conditioned on {})\n",
               join(t.condition_columns));
  }
  const auto start = std::chrono::steady_clock::now();
  const Solution sol = generate(*model, x0, a.sampler, guidance);
  const double seconds = seconds_since(start);
  sol.check();
  const torch::Tensor x = st.inverse(sol.x.to(torch::kCPU));
  if (observed.defined()) {  // each sample beside the observation it was drawn for
    std::vector<std::string> header = t.condition_columns;
    header.insert(header.end(), t.columns.begin(), t.columns.end());
    write_csv(a.out, torch::cat({observed, x}, 1), t.columns.empty() ? std::vector<std::string>{} : header);
  } else {
    write_csv(a.out, x, t.columns);
  }
  const std::string& spec = t.data;
  fmt::print("sampled {} points from {} ({} model) with {}: {} function evaluations, {:.3f} s\n", a.n,
             a.checkpoint, model->kind(), a.sampler.solver, sol.nfe, seconds);
  const auto names = density_names();
  if (std::find(names.begin(), names.end(), spec) != names.end()) report_distance(*make_density(spec), x, a.n_reference);
  fmt::print("wrote {}\n", a.out);
}

void run(SampleArgs& a) {
  const torch::Device device = apply_runtime(a.threads, a.seed, a.device);
  SDEGEN_CHECK(a.oracle != !a.checkpoint.empty(),
               "sample needs one model: --checkpoint DIR (a trained run) or --oracle (the exact model of --data)");
  SDEGEN_CHECK(!a.oracle || device.is_cpu(), "--oracle samples on the CPU (the exact mixture's field); drop --device");
  a.sampler.diffusion = parse_diffusion(a.sigma);
  if (a.oracle) run_oracle(a);
  else run_checkpoint(a, device);
}

}  // namespace

void register_sample(CLI::App& app) {
  auto args = std::make_shared<SampleArgs>();
  CLI::App* cmd = app.add_subcommand("sample", "Draw samples from a model by integrating its SDE or ODE");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--checkpoint", args->checkpoint, "Run directory of a trained model (from sdegen train)");
  cmd->add_flag("--oracle", args->oracle, "Sample the exact model of --data (Gaussian mixtures)");
  cmd->add_option("--data", args->data,
                  "Data: " + join(density_names()) + ", or a mixture JSON file");
  cmd->add_option("--schedule", args->schedule, "Affine schedule")
      ->check(one_of(schedule_names(), "schedule"));
  cmd->add_option("--solver", args->sampler.solver,
                  "Solver (ddpm, reverse-diffusion and edm draw their own noise and take no --sigma; consistency, "
                  "with --steps K evaluations, samples a consistency model)")
      ->check(one_of(solver_names_with_consistency(), "solver"));
  cmd->add_option("--steps", args->sampler.steps, "Steps of a fixed-step solver")
      ->check(positive());
  cmd->add_option("--grid", args->sampler.grid,
                  "Time grid: uniform, lambda, edm or flow (uniform in a/(a+b)) (default: lambda for "
                  "ddim/dpm++2m/dpm++3m/unipc, flow for abm3/abm4, edm for edm, else uniform)")
      ->check(one_of(grid_kind_names(), "time grid"));
  cmd->add_option("--time", args->sampler.time,
                  "Variable the fixed-grid ODE solvers step in: schedule (t) or flow (a/(a+b), the linear "
                  "schedule's time) (default: flow for abm3/abm4, else schedule)")
      ->check(one_of(sampling_time_names(), "sampling time"));
  cmd->add_option("--rho", args->sampler.rho, "Exponent of the edm grid")->check(positive());
  cmd->add_option("--sigma", args->sigma,
                  "Diffusion of the SDE solvers: a number (constant sigma), 'reverse' (sigma^2 = b^2 "
                  "lambda'; infinite where a = 0, so refused from t = 0 under linear, trig and vp-cosine: "
                  "use --t0 > 0) or 'reverse:SCALE'");
  add_stochastic_sampler_options(cmd, args->sampler.edm, args->sampler.pc);
  cmd->add_option("--rtol", args->sampler.adaptive.rtol, "dopri5 relative tolerance")->check(positive());
  cmd->add_option("--atol", args->sampler.adaptive.atol, "dopri5 absolute tolerance")->check(positive());
  cmd->add_option("--max-steps", args->sampler.adaptive.max_steps, "dopri5 step limit")->check(positive());
  cmd->add_option("--t0", args->sampler.t0, "Start time (0 = prior)");
  cmd->add_option("--t1", args->sampler.t1, "End time (1 = data)");
  cmd->add_option("--n", args->n, "Number of samples")->check(positive());
  cmd->add_option("--seed", args->seed, "Random seed")->check(seed_value());
  cmd->add_option("--threads", args->threads, "Intra-op threads")->check(thread_count());
  cmd->add_option("--device", args->device,
                  "Device: cpu, or cuda[:N] with a CUDA LibTorch (the prior is drawn on the CPU and moved, so a "
                  "seed gives the same start on any device)");
  cmd->add_option("--out", args->out, "Output: a CSV, one sample per row; a PNG grid for an image model");
  cmd->add_option("--label", args->label, "Image models: the class to draw (-1: one row per class)");
  cmd->add_option("--guidance", args->guidance,
                  "Conditional models: classifier-free guidance weight (0: unconditional, 1: conditional, >1: sharper; "
                  "default: 1 for tables with --condition or --condition-file, a model trained without label dropout, a consistency model or a reflowed student)");
  cmd->add_option("--columns", args->columns, "Image models: images per row of the grid")->check(positive());
  cmd->add_option("--condition", args->condition,
                  "Tables trained with --condition-columns: the observed values, name=value,... in data units, for "
                  "every sample (none: the unconditional model); --guidance weighs it");
  cmd->add_option("--condition-file", args->condition_file,
                  "Tables trained with --condition-columns: a CSV file of observations (those columns by name; "
                  "others ignored), one sample per row, written beside its observation");
  cmd->callback([args, cmd] {
    args->guidance_given = cmd->count("--guidance") > 0;
    args->n_given = cmd->count("--n") > 0;
    run(*args);
  });
}

}  // namespace sdegen::app
